"""How DataChonk's models and commits are recognised, and checking the rules a file sets.

The marker pattern comes from a pushed file and runs in every push's hook, so it is refused
unless it compiles and cannot take exponential time (`safe_regex`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datachonk_hooks.settings.defaults import DEFAULT_MARKER, DEFAULT_TRAILER
from datachonk_hooks.settings.messages import config_error, show

_TRAILER = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*:[ \t]*\S[^\r\n]*")


@dataclass(frozen=True)
class DetectRules:
    """How a DataChonk-generated model or commit is recognised."""

    marker: str = DEFAULT_MARKER
    trailer: str = DEFAULT_TRAILER


def parse_marker(value: object, *, where: str) -> str:
    """A regular expression that compiles and cannot take exponential time (`safe_regex`):
    the pattern comes from a pushed file and runs in every push's hook."""
    from datachonk_hooks.settings.safe_regex import UnsafePatternError, check_pattern

    if not isinstance(value, str) or not value.strip():
        raise config_error(f"{where}: expected a non-empty regular expression, got {show(value)}")
    try:
        check_pattern(value)
        re.compile(value)
    except UnsafePatternError as exc:
        raise config_error(f"{where}: refused regular expression {show(value)}: {exc}") from None
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise config_error(f"{where}: invalid regular expression: {exc}") from None
    return str(value)


def parse_trailer(value: object, *, where: str) -> str:
    if not isinstance(value, str) or not _TRAILER.fullmatch(value):
        raise config_error(
            f"{where}: expected a commit trailer like {show(DEFAULT_TRAILER)} (Key: value),"
            f" got {show(value)}"
        )
    return str(value)
