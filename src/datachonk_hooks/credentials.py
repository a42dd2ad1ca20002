"""Where the dbt Cloud API token comes from, and how secrets are kept out of text.

The token is wrapped in `Token`, whose repr never shows the value, so that a stray debug print
or a traceback in a log cannot leak it. Every message that may quote a server answer goes
through `redact` before it reaches a user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from datachonk_hooks.errors import ConfigError

ENV_TOKEN = "DBT_CLOUD_API_TOKEN"
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Token:
    """An API token and where it was found (shown to users instead of the value)."""

    value: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"<token from {self.source}>"


def resolve_token(env: Mapping[str, str]) -> Token:
    """The token to use, or a ConfigError that says how to provide one."""
    value = env.get(ENV_TOKEN, "").strip()
    if value:
        return Token(value, f"environment variable {ENV_TOKEN}")
    raise ConfigError(
        f"no dbt Cloud API token: set {ENV_TOKEN} to a service token with permission to run"
        " jobs, or run `datachonk-hook connect` to store one"
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of a useful length) replaced, for messages and logs."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
