"""Shared fixtures: an isolated environment, real git repositories, a real simulator."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import (
    FOREIGN_PREFIXES,
    GENERATED_SQL,
    GIT_IDENTITY,
    TOKEN,
    FakeClock,
    add_origin,
    commit_files,
    config_yaml,
    git,
    publish,
)

pytest_plugins = ["tests.e2e", "tests.reliability"]

if TYPE_CHECKING:
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.sandbox import Sandbox


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's git config, dbt Cloud variables or home folder."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(FOREIGN_PREFIXES) or name == "CI":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def no_waiter_outlives_its_test(tmp_path: Path) -> Iterator[None]:
    """Landing waiters follow their runs for as long as the job's timeout allows, also after
    the test's simulator has stopped: once the test is over, those started in its folder
    are ended, so they neither pile up nor poll a later test's simulator on a reused port."""
    yield
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            if b"datachonk_hooks" not in command or b"land" not in command:
                continue
            if not Path(os.readlink(entry / "cwd")).is_relative_to(tmp_path):
                continue
            os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    from datachonk_hooks.sandbox import Sandbox

    with Sandbox(token=TOKEN) as server:
        yield server


@pytest.fixture
def dbt_repo(tmp_path: Path) -> Path:
    """A git repository on branch main holding a small dbt project (not yet configured)."""
    repo = tmp_path / "work"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_files(
        repo,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "models/staging/stg_orders.sql": GENERATED_SQL,
        },
        "Add stg_orders",
    )
    add_origin(repo)  # where dbt Cloud would clone from (nothing pushed yet)
    return repo


# ----------------------------------------------------------------------------- commands and runs


@pytest.fixture
def fast_sandbox() -> Iterator[Sandbox]:
    """Runs take a fraction of a second (time scale 20)."""
    from datachonk_hooks.sandbox import Sandbox

    with Sandbox(token=TOKEN, time_scale=20) as server:
        yield server


@pytest.fixture
def repo(dbt_repo: Path, fast_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`dbt_repo` configured for `fast_sandbox`, published to origin, the current folder, with
    the token in the environment: where the commands run."""
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml(fast_sandbox.url)}, "Configure dbt Cloud")
    commit_files(dbt_repo, {"models/orders.sql": "select 1"}, "Add orders model")
    publish(dbt_repo)
    monkeypatch.chdir(dbt_repo)
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    return dbt_repo


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`datachonk-hook ARGS` in this process: (exit code, stdout, stderr)."""
    from datachonk_hooks.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def clock(sandbox: Sandbox) -> FakeClock:
    """Simulated time for `sandbox` and whatever polls it."""
    fake = FakeClock()
    sandbox.set_clock(fake)
    return fake


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[DbtCloudClient]:
    """A client of `sandbox`'s account."""
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.settings.credentials import Token

    with DbtCloudClient(sandbox.url, 12345, Token(TOKEN, "t")) as c:
        yield c
