"""What every part of the local API shares: the workspace it serves, the secrets it must
never show, a dbt Cloud client, and sanitizing what dbt Cloud says.

The app factory builds one `ApiContext` per app and hands it to the routers and the error
handlers, so no module-level state is shared between apps (tests build many).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from datachonk_hooks.account.workspace import Workspace, client_for
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.credentials import ENV_TOKEN, redact
from datachonk_hooks.settings.records import Settings

# one logger for the whole API, under the name `--debug` output has always shown
log = logging.getLogger("datachonk_hooks.api.server")

PREFIX: Final = "/api/dbt-cloud"
#: the largest request body the API reads; its bodies are a few hundred bytes
MAX_BODY: Final = 64 * 1024


class Secrets:
    """Every token this server has handled, so that no answer or log line can carry one."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        with self._lock:
            self._values.add(value)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        return redact(text, values)


@dataclass(frozen=True)
class ApiContext:
    """One app's state: the repository it serves and the tokens it has seen."""

    workspace: Workspace
    known: Secrets = field(default_factory=Secrets)

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> ApiContext:
        """A context that already knows the token in the environment."""
        context = cls(workspace)
        context.known.add(workspace.env.get(ENV_TOKEN, "").strip())
        return context

    @contextmanager
    def client(self, settings: Settings) -> Iterator[DbtCloudClient]:
        """A client that gives up quickly, like the interactive commands: someone waits."""
        with client_for(settings, self.workspace.env) as dbt_cloud:
            self.known.add(dbt_cloud.token.value)
            yield dbt_cloud


def shown(value: Any) -> Any:
    """dbt Cloud's JSON with every string sanitized, for an answer (names, messages, logs)."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, Mapping):
        return {key: shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shown(item) for item in value]
    return value
