"""Token lookup and storage: environment, keyring, credentials file; never the token in text."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import KeyringLocked, PasswordDeleteError

from datachonk_hooks.delivery.clients import ClientPool
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings.credentials import (
    KEYRING_SERVICE,
    Token,
    TokenHint,
    check_token_text,
    credentials_path,
    find_stored_token,
    forget_token,
    resolve_token,
    store_token,
    token_hint,
    usable_keyring,
)
from tests.helpers import TOKEN

HOST = "https://ab123.us1.dbt.com"
OTHER = "dbtc_OTHER_account_token_0123456789"
# keyring is untyped: call its classes through Any
NULL_BACKEND: Any = null.Keyring
FAIL_BACKEND: Any = fail.Keyring


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise PasswordDeleteError(username) from None


class LockedKeyring(MemoryKeyring):
    """A keyring the user refuses to unlock."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("locked")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(NULL_BACKEND())


def test_environment_comes_first(memory_keyring: MemoryKeyring) -> None:
    store_token(HOST, 12345, OTHER)
    token = resolve_token({"DBT_CLOUD_API_TOKEN": f"  {TOKEN}\n"}, host=HOST, account_id=12345)
    assert token == Token(TOKEN, "environment variable DBT_CLOUD_API_TOKEN")


def test_token_repr_and_str_hide_the_value() -> None:
    token = Token(TOKEN, "keyring")
    assert TOKEN not in repr(token) + str(token)


def test_no_token_says_how_to_get_one() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_token({}, host=HOST, account_id=12345)
    message = str(caught.value)
    assert message.startswith("no dbt Cloud API token: set DBT_CLOUD_API_TOKEN")
    assert "datachonk-hook connect" in message and f"account 12345 at {HOST}" in message


def test_without_host_and_account_only_the_environment_counts() -> None:
    store_token(HOST, 12345, TOKEN)
    with pytest.raises(ConfigError):
        resolve_token({})


def test_credentials_file_is_private_and_per_account() -> None:
    assert usable_keyring() is None  # the tests pin keyring's null backend
    where = store_token(HOST, 12345, TOKEN)
    store_token(HOST, 67890, OTHER)
    path = credentials_path()
    assert where == f"the credentials file {path} (mode 0600)"
    assert TOKEN not in where
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left
    assert resolve_token({}, host=HOST, account_id=12345) == Token(
        TOKEN, f"credentials file {path}"
    )
    assert find_stored_token(HOST, 67890) == Token(OTHER, f"credentials file {path}")
    assert find_stored_token("https://emea.dbt.com", 12345) is None


def test_a_failed_write_keeps_the_old_file_and_no_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    store_token(HOST, 12345, TOKEN)
    path = credentials_path()
    before = path.read_bytes()

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(ConfigError) as caught:
        store_token(HOST, 67890, OTHER)
    monkeypatch.undo()
    assert str(caught.value) == (
        f"cannot write the credentials file {path} (No space left on device)"
    )
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_token_is_never_in_a_file_others_can_read(monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    fsync = os.fsync

    def checking_fsync(handle: int) -> None:  # the token is written by now
        modes.append(stat.S_IMODE(os.fstat(handle).st_mode))
        fsync(handle)

    old = os.umask(0)  # even with a umask that lets everyone read new files
    try:
        monkeypatch.setattr(os, "fsync", checking_fsync)
        store_token(HOST, 12345, TOKEN)
    finally:
        os.umask(old)
    assert modes == [0o600]
    assert stat.S_IMODE(credentials_path().stat().st_mode) == 0o600


def test_storing_again_replaces_the_entry() -> None:
    store_token(HOST, 12345, OTHER)
    store_token(HOST, 12345, TOKEN)
    entries = json.loads(credentials_path().read_text())["tokens"]
    assert entries == [{"host": HOST, "account_id": 12345, "token": TOKEN}]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused_with_the_fix(mode: int) -> None:
    store_token(HOST, 12345, TOKEN)
    path = credentials_path()
    path.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        resolve_token({}, host=HOST, account_id=12345)
    message = str(caught.value)
    assert f"run `chmod 600 {path}`" in message
    assert f"mode {mode:04o}" in message
    assert TOKEN not in message and "\n" not in message
    with pytest.raises(ConfigError):  # nor is it rewritten around the problem
        store_token(HOST, 67890, OTHER)
    path.chmod(0o600)
    assert resolve_token({}, host=HOST, account_id=12345).value == TOKEN


def test_a_damaged_file_says_what_to_do() -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=r"damaged .* delete it and run `datachonk-hook connect`"):
        find_stored_token(HOST, 12345)


def test_forget_removes_the_entry_and_the_empty_file() -> None:
    store_token(HOST, 12345, TOKEN)
    store_token(HOST, 67890, OTHER)
    assert forget_token(HOST, 12345) == [f"the credentials file {credentials_path()}"]
    assert find_stored_token(HOST, 12345) is None
    assert find_stored_token(HOST, 67890) is not None
    assert forget_token(HOST, 12345) == []
    forget_token(HOST, 67890)
    assert not credentials_path().exists()


@pytest.mark.parametrize(
    "text", ["", "   \n", f"{TOKEN} extra", f"{TOKEN}\n{TOKEN}", f"{TOKEN}\x00"]
)
def test_token_text_is_checked_without_quoting_it(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_token_text(text)
    assert TOKEN not in str(caught.value)


def test_keyring_is_used_when_usable(memory_keyring: MemoryKeyring) -> None:
    where = store_token(HOST, 12345, TOKEN)
    assert where.startswith("the keyring (") and TOKEN not in where
    assert memory_keyring.passwords == {(KEYRING_SERVICE, f"12345@{HOST}"): TOKEN}
    assert resolve_token({}, host=HOST, account_id=12345) == Token(TOKEN, "keyring")
    # the file keeps only a note, so the hook knows of the token without opening the keyring
    fingerprint = Token(TOKEN, "keyring").fingerprint
    assert json.loads(credentials_path().read_text())["tokens"] == [
        {"host": HOST, "account_id": 12345, "in_keyring": True, "fingerprint": fingerprint}
    ]
    assert TOKEN not in credentials_path().read_text()
    assert token_hint({}, HOST, 12345) == TokenHint(True, fingerprint)
    assert forget_token(HOST, 12345) == ["the keyring"]
    assert memory_keyring.passwords == {}
    assert not credentials_path().exists()
    assert token_hint({}, HOST, 12345) == TokenHint(False)


def test_keyring_store_removes_an_older_file_copy(memory_keyring: MemoryKeyring) -> None:
    keyring.set_keyring(NULL_BACKEND())
    store_token(HOST, 12345, OTHER)
    keyring.set_keyring(memory_keyring)
    store_token(HOST, 12345, TOKEN)
    assert OTHER not in credentials_path().read_text()  # no stale secret stays on disk
    assert find_stored_token(HOST, 12345) == Token(TOKEN, "keyring")


def test_token_hint_reads_the_environment_and_the_file_only() -> None:
    assert token_hint({"DBT_CLOUD_API_TOKEN": TOKEN}, HOST, 12345) == TokenHint(
        True, Token(TOKEN, "env").fingerprint
    )
    assert token_hint({}, HOST, 12345) == TokenHint(False)
    store_token(HOST, 12345, TOKEN)  # the file (null backend)
    assert token_hint({}, HOST, 12345) == TokenHint(True, Token(TOKEN, "file").fingerprint)
    assert token_hint({}, HOST, 99999) == TokenHint(False)  # another account's is not it


def test_keyring_falls_back_to_the_file() -> None:
    store_token(HOST, 12345, TOKEN)  # file (null backend)
    keyring.set_keyring(MemoryKeyring())  # a keyring without this entry
    try:
        assert find_stored_token(HOST, 12345) == Token(
            TOKEN, f"credentials file {credentials_path()}"
        )
    finally:
        keyring.set_keyring(NULL_BACKEND())


def test_a_locked_keyring_means_the_file() -> None:
    keyring.set_keyring(LockedKeyring())
    try:
        where = store_token(HOST, 12345, TOKEN)
        assert where.startswith("the credentials file")
        assert find_stored_token(HOST, 12345) == Token(
            TOKEN, f"credentials file {credentials_path()}"
        )
    finally:
        keyring.set_keyring(NULL_BACKEND())


def test_unusable_backends_and_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    for backend in (NULL_BACKEND(), FAIL_BACKEND()):
        keyring.set_keyring(backend)
        assert usable_keyring() is None
    monkeypatch.setitem(sys.modules, "keyring", None)  # `import keyring` raises ImportError
    assert usable_keyring() is None
    store_token(HOST, 12345, TOKEN)
    assert credentials_path().exists()


def test_client_pool_uses_the_stored_token_of_each_account() -> None:
    store_token("http://127.0.0.1:1", 12345, TOKEN)
    store_token("http://127.0.0.1:1", 67890, OTHER)
    pool = ClientPool(env={})
    try:
        assert pool.get("http://127.0.0.1:1", 12345).token.value == TOKEN
        assert pool.get("http://127.0.0.1:1", 67890).token.value == OTHER
        with pytest.raises(ConfigError):
            pool.get("http://127.0.0.1:2", 12345)
    finally:
        pool.close()


def test_module_import_stays_cheap() -> None:
    import subprocess

    code = (
        "import sys, datachonk_hooks.settings.credentials;"
        " print(sorted(m for m in ('keyring', 'platformdirs', 'tempfile') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_path_is_under_the_user_config_dir(tmp_path: Path) -> None:
    assert credentials_path().parent.name == "datachonk-hooks"
    assert ".config" in credentials_path().parts
