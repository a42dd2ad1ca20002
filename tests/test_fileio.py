"""One atomic write for datachonk.yaml, the credentials file and manifest.json."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.records import Run
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.commands.manifest import MANIFEST, download_manifest
from datachonk_hooks.errors import ConfigError, ExitCode
from datachonk_hooks.fileio import atomic_write


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_gets_what_open_would_give(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "new.yaml"
    atomic_write(path, "a: 1\r\nb: é\n")
    assert path.read_bytes() == "a: 1\r\nb: é\n".encode()  # UTF-8, newlines untouched
    assert mode_of(path) == 0o644
    os.umask(0o077)
    other = tmp_path / "private.yaml"
    atomic_write(other, b"x")
    assert mode_of(other) == 0o600


def test_an_existing_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "kept.yaml"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write(path, "new")
    assert (path.read_text(), mode_of(path)) == ("new", 0o640)


def test_an_explicit_mode_wins_and_is_set_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("old")
    path.chmod(0o644)
    seen: list[int] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        seen.append(mode_of(Path(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write(path, '{"tokens": []}', mode=0o600)
    assert seen == [0o600]
    assert (path.read_text(), mode_of(path)) == ('{"tokens": []}', 0o600)


def test_the_content_is_replaced_in_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to the rename the old file is whole; the new one is complete before it."""
    path = tmp_path / "manifest.json"
    path.write_bytes(b"old")
    real_replace = os.replace
    seen: list[tuple[bytes, bytes]] = []

    def replace(src: Any, dst: Any) -> None:
        seen.append((Path(dst).read_bytes(), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write(path, b"new" * 100_000)
    assert seen == [(b"old", b"new" * 100_000)]
    assert path.read_bytes() == b"new" * 100_000
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_disk_failure_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "datachonk.yaml"
    path.write_text("old: 1\n")

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write(path, "new: 2\n" * 1000)
    monkeypatch.undo()
    assert path.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["datachonk.yaml"]


def test_an_interrupt_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "new.yaml", "x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_taken_temporary_name_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = tmp_path / f".b-{'00' * 6}.tmp"
    taken.write_text("someone else's")
    names = iter([b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(os, "urandom", lambda size: next(names))
    atomic_write(tmp_path / "b", "2")
    assert (tmp_path / "b").read_text() == "2"
    assert taken.read_text() == "someone else's"


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nowhere" / "x", "1")


# --- manifest.json goes through it -----------------------------------------------------------


class _Client:
    """The two calls download_manifest makes, answered without a server."""

    def list_runs(self, job_id: int, **kwargs: object) -> list[Run]:
        return [Run(id=7, job_id=job_id, status=RunStatus.SUCCESS)]

    def get_artifact(self, run_id: int, path: str) -> bytes:
        return json.dumps({"nodes": {}}).encode()


def fake_client() -> DbtCloudClient:
    return cast(DbtCloudClient, _Client())


def test_the_manifest_gets_a_normal_mode(tmp_path: Path, umask_022: None) -> None:
    saved = download_manifest(fake_client(), 11111, tmp_path / "prod")
    assert saved.path == tmp_path / "prod" / MANIFEST
    assert json.loads(saved.path.read_text()) == {"nodes": {}}
    assert mode_of(saved.path) == 0o644  # not mkstemp's 0600: other tools read it


def test_a_manifest_that_cannot_be_written_is_one_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "prod"
    out.mkdir()

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(ConfigError) as caught:
        download_manifest(fake_client(), 11111, out)
    monkeypatch.undo()
    assert str(caught.value) == f"{out / MANIFEST}: cannot write the file (No space left on device)"
    assert caught.value.exit_code == ExitCode.USAGE
    assert list(out.iterdir()) == []


def test_a_manifest_folder_that_is_a_file_is_one_clean_error(tmp_path: Path) -> None:
    out = tmp_path / "prod"
    out.write_text("not a folder")
    expected = f"{out / MANIFEST}: cannot write the file (File exists)"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        download_manifest(fake_client(), 11111, out)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000, as some containers and CI images have it."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("open_umask")
def test_private_folders_and_files_whatever_the_umask(tmp_path: Path) -> None:
    from datachonk_hooks.fileio import open_private_append, private_dir, private_file

    target = tmp_path / "home" / ".config" / "datachonk-hooks"
    private_dir(target)
    for folder in (tmp_path / "home", tmp_path / "home" / ".config", target):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    log = target / "waiter.log"
    os.close(open_private_append(log))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    loose = target / "loose"
    loose.write_text("x")
    private_file(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


@pytest.mark.usefixtures("open_umask")
def test_the_ledger_and_the_credentials_are_private_whatever_the_umask(
    dbt_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datachonk_hooks.delivery.ledger import Ledger, state_dir
    from datachonk_hooks.push.gitrepo import open_repo
    from datachonk_hooks.settings.credentials import credentials_path, store_token

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "fresh-home" / ".config"))
    store_token("https://ab123.us1.dbt.com", 12345, "dbtc_secret_for_the_umask_test")
    path = credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent):  # ~/.config was created too
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    repo = open_repo(dbt_repo)
    with Ledger.for_repo(repo) as ledger:
        assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir(repo).stat().st_mode) == 0o700
