"""One-line settings errors, and how a bad value or key is shown in them.

A ConfigError's message is all a user sees in their `git push` output, so it is one line, says
where (`datachonk.yaml:4:17: ...`) and never quotes anything that looks like an API token.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from datachonk_hooks.errors import ConfigError

# Values never quoted back in a message: dbt Cloud token prefixes and long opaque strings.
_SECRET_VALUE = re.compile(r"(?i)\bdbt[cu]_|^[A-Za-z0-9_\-]{32,}$")

_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]+")

Pos = tuple[int, int]  # 1-based line and column


def config_error(message: str) -> ConfigError:
    """A ConfigError whose message is guaranteed to be one line."""
    return ConfigError(_LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], message))


def located(source: str, pos: Pos) -> str:
    return f"{source}:{pos[0]}:{pos[1]}"


def show_key(key: object) -> str:
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return str(key)
    return show(key)


def show(value: object) -> str:
    """A short, one-line rendering of a bad value; anything that looks like a token is hidden."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value)) if value.bit_length() <= 256 else "a very large integer"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        if _SECRET_VALUE.search(value.strip()):
            return "a value that looks like an API token (not shown)"
        return repr(str(value) if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (set, frozenset)):
        return "a set"
    return "a tagged value" if hasattr(value, "tag") else f"a {type(value).__name__}"
