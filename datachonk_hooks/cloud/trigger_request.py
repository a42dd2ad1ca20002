"""`TriggerRequest`: the body of a dbt Cloud trigger, on its own.

The pre-push hook records triggers without talking to dbt Cloud; keeping the request apart
from the client (`dbt_cloud`) spares every triggering push the client module's import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TriggerRequest:
    """The body of a trigger POST; `cause` is required by dbt Cloud and must not be empty."""

    cause: str
    git_sha: str | None = None
    git_branch: str | None = None
    steps_override: tuple[str, ...] | None = None
    schema_override: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"cause": self.cause}
        for key in ("git_sha", "git_branch", "schema_override"):
            if value := getattr(self, key):
                body[key] = value
        if self.steps_override:
            body["steps_override"] = list(self.steps_override)
        return body
