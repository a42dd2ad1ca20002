"""Where the dbt Cloud API token comes from and goes to, and how secrets are kept out of text.

Lookup order: the `DBT_CLOUD_API_TOKEN` environment variable, then the OS keyring (when the
optional `keyring` package has a usable backend), then a credentials file in the user's config
folder. Stored tokens are kept per (host, account), so two accounts never share one.

The token is wrapped in `Token`, whose repr never shows the value, so that a stray debug print
or a traceback in a log cannot leak it. Every message that may quote a server answer goes
through `redact` before it reaches a user.

The git hook imports this module on every push: only the standard library is imported at
module level; platformdirs and keyring are imported when a stored token is looked up.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.fileio import atomic_write, private_dir

ENV_TOKEN = "DBT_CLOUD_API_TOKEN"
REDACTED = "[redacted]"
APP_NAME = "datachonk-hooks"
KEYRING_SERVICE = APP_NAME
CREDENTIALS_NAME = "credentials.json"
FROM_KEYRING = "keyring"
_FILE_VERSION = 1


@dataclass(frozen=True)
class Token:
    """An API token and where it was found (shown to users instead of the value)."""

    value: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"<token from {self.source}>"

    @property
    def fingerprint(self) -> str:
        """A one-way digest, so the ledger can tell "this token was refused" without
        keeping the token (it is never written anywhere)."""
        import hashlib

        return hashlib.sha256(self.value.encode("utf-8")).hexdigest()[:16]


def resolve_token(
    env: Mapping[str, str], *, host: str | None = None, account_id: int | None = None
) -> Token:
    """The token to use, or a ConfigError that says how to provide one.

    Without `host` and `account_id` only the environment is consulted: a stored token
    belongs to one account and is never handed to another.
    """
    value = env.get(ENV_TOKEN, "").strip()
    if value:
        return Token(value, f"environment variable {ENV_TOKEN}")
    stored = find_stored_token(host, account_id) if host and account_id else None
    if stored is not None:
        return stored
    where = f" for account {account_id} at {host}" if host and account_id else ""
    raise ConfigError(
        f"no dbt Cloud API token: set {ENV_TOKEN} to a service token with permission to run"
        f" jobs, or run `datachonk-hook connect` to store one{where}"
    )


def find_stored_token(host: str, account_id: int) -> Token | None:
    """The token stored for (host, account) in the keyring, else in the credentials file."""
    backend = usable_keyring()
    if backend is not None:
        try:
            value = backend.get_password(KEYRING_SERVICE, _keyring_user(host, account_id))
        except Exception:  # a locked or broken keyring: fall back to the file
            value = None
        if value:
            return Token(value, FROM_KEYRING)
    path = credentials_path()
    for entry in _read_entries(path):
        if _same(entry, host, account_id):
            token = entry.get("token")
            if isinstance(token, str) and token:
                return Token(token, f"credentials file {path}")
    return None


def store_token(host: str, account_id: int, value: str) -> str:
    """Keep the token for (host, account); returns where it went, for the user.

    The keyring is preferred; a copy left in the credentials file from earlier is removed
    then, so no stale secret stays on disk.
    """
    value = check_token_text(value)
    backend = usable_keyring()
    if backend is not None:
        try:
            backend.set_password(KEYRING_SERVICE, _keyring_user(host, account_id), value)
        except Exception:  # e.g. the user refused to unlock it: use the file instead
            pass
        else:
            _note_keyring_token(host, account_id, Token(value, FROM_KEYRING).fingerprint)
            return f"the {FROM_KEYRING} ({_backend_name(backend)})"
    path = credentials_path()
    entries = [e for e in _read_entries(path) if not _same(e, host, account_id)]
    entries.append({"host": host, "account_id": account_id, "token": value})
    _write_entries(path, entries)
    return f"the credentials file {path} (mode 0600)"


def forget_token(host: str, account_id: int) -> list[str]:
    """Remove the stored token of (host, account) everywhere; returns where it was found."""
    removed: list[str] = []
    backend = usable_keyring()
    if backend is not None:
        user = _keyring_user(host, account_id)
        try:
            if backend.get_password(KEYRING_SERVICE, user) is not None:
                backend.delete_password(KEYRING_SERVICE, user)
                removed.append(f"the {FROM_KEYRING}")
        except Exception as exc:
            raise ConfigError(
                f"cannot remove the token from the keyring ({type(exc).__name__}); remove the"
                f" entry {KEYRING_SERVICE} / {user} with your keyring tool"
            ) from None
    if _remove_file_entry(host, account_id, strict=True):
        removed.append(f"the credentials file {credentials_path()}")
    return removed


@dataclass(frozen=True)
class TokenHint:
    """What the pre-push hook can tell of the token without opening the keyring, which may
    ask to be unlocked and so hold the push up: whether there is one, and its fingerprint."""

    found: bool
    fingerprint: str | None = None


def token_hint(env: Mapping[str, str], host: str, account_id: int) -> TokenHint:
    """The token of (host, account) as the hook can see it: the environment, the credentials
    file, or the note `connect` leaves there for a token it put in the keyring."""
    value = env.get(ENV_TOKEN, "").strip()
    if value:
        return TokenHint(True, Token(value, ENV_TOKEN).fingerprint)
    for entry in _read_entries(credentials_path()):
        if _same(entry, host, account_id):
            token, fingerprint = entry.get("token"), entry.get("fingerprint")
            if isinstance(token, str) and token:
                return TokenHint(True, Token(token, "file").fingerprint)
            if entry.get("in_keyring") is True:
                return TokenHint(True, fingerprint if isinstance(fingerprint, str) else None)
    return TokenHint(False)


def check_token_text(value: str) -> str:
    """The token without surrounding whitespace, or a ConfigError (never quoting it)."""
    value = value.strip()
    if not value:
        raise ConfigError("the API token is empty")
    if any(char.isspace() or not char.isprintable() or not char.isascii() for char in value):
        raise ConfigError(
            "the API token contains spaces, line breaks, control or non-ASCII characters; paste"
            " only the token (dbt Cloud shows it once when it is created)"
        )
    return value


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of a useful length) replaced, for messages and logs."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


# --- the keyring ------------------------------------------------------------------------------


def usable_keyring() -> Any | None:
    """The keyring backend when `keyring` is installed and has a real one, else None.

    Headless machines get keyring's `fail` backend and tests pin the `null` one; both mean
    "no keyring here", and so does any backend with priority 0 or less.
    """
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        priority = float(backend.priority)
    except Exception:
        return None
    if isinstance(backend, (fail.Keyring, null.Keyring)) or priority <= 0:
        return None
    return backend


def _keyring_user(host: str, account_id: int) -> str:
    return f"{account_id}@{host}"


def _backend_name(backend: object) -> str:
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) and name else type(backend).__name__


# --- the credentials file ---------------------------------------------------------------------


def credentials_path() -> Path:
    """`<user config dir>/datachonk-hooks/credentials.json` (XDG_CONFIG_HOME on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / CREDENTIALS_NAME


def _same(entry: Mapping[str, object], host: str, account_id: int) -> bool:
    return entry.get("host") == host and entry.get("account_id") == account_id


def _read_entries(path: Path) -> list[dict[str, Any]]:
    """The file's entries; none when it does not exist. Refuses a file others can read."""
    try:
        handle = path.open("rb")
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read the credentials file {path} ({exc.strerror})") from None
    with handle:
        mode = os.fstat(handle.fileno()).st_mode
        _refuse_open_permissions(path, mode)
        data = handle.read()
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        document = None
    entries = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(
            f"the credentials file {path} is damaged (not the expected JSON); delete it and run"
            " `datachonk-hook connect` again"
        )
    return [entry for entry in entries if isinstance(entry, dict)]


def _refuse_open_permissions(path: Path, mode: int) -> None:
    """Like ssh with a private key: a token file that others can read is not used."""
    if sys.platform == "win32" or not stat.S_IMODE(mode) & 0o077:
        return
    raise ConfigError(
        f"the credentials file {path} can be read by other users (mode"
        f" {stat.S_IMODE(mode):04o}), so it is not used; run `chmod 600 {path}` and consider"
        " rotating the token"
    )


def _write_entries(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the file atomically; its temporary copy is 0600 from the start."""
    folder = path.parent
    try:
        private_dir(folder)  # ~/.config too, when it is missing: 0700 whatever the umask
        if sys.platform != "win32" and stat.S_IMODE(folder.stat().st_mode) != 0o700:
            folder.chmod(0o700)
        text = json.dumps({"version": _FILE_VERSION, "tokens": entries}, indent=2) + "\n"
        atomic_write(path, text, mode=0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the credentials file {path} ({exc.strerror or exc})"
        ) from None


def _note_keyring_token(host: str, account_id: int, fingerprint: str) -> None:
    """Replace the file's entry for (host, account) by a note that the keyring holds its
    token (no secret: the token's one-way fingerprint), so no stale secret stays on disk and
    the hook knows there is a token without opening the keyring. Best effort."""
    path = credentials_path()
    try:
        entries = [e for e in _read_entries(path) if not _same(e, host, account_id)]
        entries.append(
            {"host": host, "account_id": account_id, "in_keyring": True, "fingerprint": fingerprint}
        )
        _write_entries(path, entries)
    except ConfigError:
        return


def _remove_file_entry(host: str, account_id: int, *, strict: bool) -> bool:
    """Drop the file's entry for (host, account); True when it held a token."""
    path = credentials_path()
    try:
        entries = _read_entries(path)
    except ConfigError:
        if strict:
            raise
        return False
    kept = [e for e in entries if not _same(e, host, account_id)]
    if len(kept) == len(entries):
        return False
    if kept:
        _write_entries(path, kept)
    else:
        path.unlink(missing_ok=True)
    return any(_same(e, host, account_id) and e.get("token") for e in entries)
