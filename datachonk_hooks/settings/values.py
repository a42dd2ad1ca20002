"""Reading one setting's value: ids, seconds, booleans, the host URL, the cause template.

Each parser takes the value as YAML, the environment or a flag gives it, and returns it checked
or raises a one-line ConfigError that says `where` (a file position, a variable or a flag).
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from datachonk_hooks.push.cause import MAX_CAUSE
from datachonk_hooks.settings.defaults import (
    CAUSE_FIELDS,
    DEFAULT_REMOTE,
    EXAMPLE_HOST,
    MAX_ID,
    MAX_TIMEOUT,
)
from datachonk_hooks.settings.messages import config_error, show

_DIGITS = re.compile(r"[0-9]+")

_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?"

_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


def normalize_host(value: str, *, where: str) -> str:
    """`scheme://host[:port]` from a URL or a bare host name; https unless the host is loopback.

    The token travels in a header to this host, so anything but TLS to a remote host is refused.
    """
    raw = value.strip()
    if "@" in raw:  # never quoted back: it may hold a password
        raise config_error(f"{where}: a host URL must not contain a user name or password")
    shown = show(raw)
    expected = f"expected the account's access URL such as {EXAMPLE_HOST}"
    if not raw or any(char.isspace() for char in raw):
        raise config_error(f"{where}: {expected}, got {shown}")
    url = raw if "://" in raw else f"https://{raw}"
    url = url.removesuffix("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise config_error(f"{where}: {expected}, got {shown} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise config_error(f"{where}: {expected}, got {shown} (only https:// URLs are supported)")
    hostname = parts.hostname or ""
    if not _valid_hostname(hostname) or port == 0:
        raise config_error(f"{where}: {expected}, got {shown} (not a valid host name)")
    if parts.path or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise config_error(f"{where}: {expected} without a path, got {shown}")
    if scheme == "http" and not _is_loopback(hostname):
        raise config_error(
            f"{where}: {shown} uses http://, so the API token would travel unencrypted;"
            " https is required (http is allowed only for localhost and loopback addresses)"
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    return f"{scheme}://{netloc}" + (f":{port}" if port is not None else "")


def _valid_hostname(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return len(hostname) <= 253 and _HOST_NAME.fullmatch(hostname) is not None
    return True


def _is_loopback(hostname: str) -> bool:
    if hostname.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def parse_id(value: object, *, where: str) -> int:
    """A dbt Cloud id: a positive 64-bit integer, also given as a string of digits."""
    number = _as_int(value)
    if number is None or number < 1:
        raise config_error(f"{where}: expected a positive integer id, got {show(value)}")
    if number > MAX_ID:
        raise config_error(
            f"{where}: expected a positive integer id, got {show(value)} (ids are at most {MAX_ID})"
        )
    return number


def parse_timeout(value: object, *, where: str) -> int:
    """Seconds to watch a run: a positive integer, at most MAX_TIMEOUT (7 days)."""
    number = _as_int(value)
    if number is None or not 1 <= number <= MAX_TIMEOUT:
        raise config_error(
            f"{where}: expected a positive number of seconds, at most {MAX_TIMEOUT} (7 days),"
            f" got {show(value)}"
        )
    return number


def _as_int(value: object) -> int | None:
    """An int from a YAML/flag int or a string of ASCII digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(digits := value.strip()):
        return int(digits) if len(digits) <= 100 else MAX_ID + 1
    return None


def parse_bool(value: object, *, where: str) -> bool:
    if not isinstance(value, bool):
        raise config_error(f"{where}: expected true or false, got {show(value)}")
    return value


def _parse_host(value: object, *, where: str) -> str:
    if not isinstance(value, str):
        raise config_error(f"{where}: expected the account's access URL, got {show(value)}")
    return normalize_host(str(value), where=where)


def _parse_cause(value: object, *, where: str) -> str:
    """A str.format template over CAUSE_FIELDS, checked now so a push never fails on it."""
    allowed = ", ".join("{" + name + "}" for name in CAUSE_FIELDS)
    if not isinstance(value, str) or not value.strip():
        raise config_error(f"{where}: expected a non-empty text with placeholders {allowed}")
    template = str(value)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise config_error(
            f"{where}: invalid template ({exc}); placeholders allowed: {allowed}"
        ) from None
    for _text, name, spec, conversion in fields:
        if name is None:
            continue
        placeholder = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if name not in CAUSE_FIELDS or "{" in (spec or ""):
            raise config_error(
                f"{where}: unknown placeholder {show(placeholder)}; placeholders allowed: {allowed}"
            )
        # A cause is cut to MAX_CAUSE characters: a larger width only costs memory and
        # time on every push ("{subject:>1000000000}" builds a gigabyte), so refuse it.
        if any(int(number) > MAX_CAUSE for number in re.findall(r"\d+", spec or "")):
            raise config_error(
                f"{where}: {show(placeholder)} asks for more than {MAX_CAUSE} characters,"
                f" the longest cause dbt Cloud gets; use a width of at most {MAX_CAUSE}"
            )
    try:
        template.format(**dict.fromkeys(CAUSE_FIELDS, "text"))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise config_error(
            f"{where}: invalid template ({exc}); placeholders allowed: {allowed}"
        ) from None
    return template


def parse_branch(value: object, *, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise config_error(
            f"{where}: expected a branch name or glob such as 'main' or 'feature/*'"
            f" (quote it if it looks like a number), got {show(value)}"
        )
    return str(value)


def parse_schema(value: object, *, where: str) -> str:
    """A schema_override: a schema name, optionally with a {branch} placeholder."""
    if not isinstance(value, str) or not value.strip():
        raise config_error(
            f"{where}: expected a schema name such as dbt_{{branch}}, got {show(value)}"
        )
    rest = value.replace("{branch}", "x")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rest):
        raise config_error(
            f"{where}: {show(value)} is not a schema name: use letters, digits and _, and"
            " {branch} for the branch name"
        )
    return value


def _parse_remote(value: object, *, where: str) -> str:
    """A git remote name: what `git remote` lists, so no spaces, slashes at the ends or `:`."""
    if (
        not isinstance(value, str)
        or not value
        or any(c.isspace() or c in ":\\?*[~^" for c in value)
        or value.startswith(("-", "/"))
        or value.endswith("/")
    ):
        raise config_error(
            f"{where}: expected the name of a git remote such as {show(DEFAULT_REMOTE)}"
            f" (see `git remote`), got {show(value)}"
        )
    return str(value)


#: how each plain `deploy.dbt_cloud` value is read (jobs and detect are mappings of their own)
VALUE_PARSERS: Final[dict[str, Callable[..., Any]]] = {
    "host": _parse_host,
    "account_id": parse_id,
    "project_id": parse_id,
    "job_id": parse_id,
    "auto_trigger": parse_bool,
    "cause": _parse_cause,
    "select_changed": parse_bool,
    "wait": parse_bool,
    "follow": parse_bool,
    "notify": parse_bool,
    "timeout": parse_timeout,
    "cancel_superseded": parse_bool,
    "remote": _parse_remote,
}

#: every key allowed under `deploy.dbt_cloud`: the plain values, then the two mappings
CLOUD_KEYS: Final = (*VALUE_PARSERS, "jobs", "detect")
