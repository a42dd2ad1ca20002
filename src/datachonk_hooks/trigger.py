"""The one place that turns settings + a commit into a dbt Cloud trigger.

`plan_*` functions decide *what* would be sent (pure, used by `--dry-run` too); the CLI and
the landing waiter then send the plan through the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pygit2

from datachonk_hooks.cause import CauseContext, build_cause, clean, truncate
from datachonk_hooks.config import Settings
from datachonk_hooks.credentials import resolve_token
from datachonk_hooks.dbt_cloud import DbtCloudClient, TriggerRequest
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.gitrepo import CommitInfo, branch_of, resolve_commit


@dataclass(frozen=True)
class TriggerPlan:
    """A trigger ready to send: where, which job, and the exact body."""

    host: str
    account_id: int
    job_id: int
    request: TriggerRequest

    @property
    def url(self) -> str:
        return f"{self.host}/api/v2/accounts/{self.account_id}/jobs/{self.job_id}/run/"

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "account_id": self.account_id,
            "job_id": self.job_id,
            "method": "POST",
            "url": self.url,
            "body": self.request.body(),
        }


def literal_cause(text: str) -> str:
    """A cause given on the command line: one line, at most 255 characters, not empty."""
    cause = truncate(clean(text))
    if not cause:
        raise ConfigError("--cause: the cause must not be empty")
    return cause


def plan_manual_trigger(
    settings: Settings,
    repo: pygit2.Repository,
    ref: str,
    *,
    job_id: int | None = None,
    cause: str | None = None,
) -> TriggerPlan:
    """The trigger for the commit at `ref` (`datachonk-hook run`)."""
    commit = CommitInfo.of(resolve_commit(repo, ref))
    branch = branch_of(repo, ref)
    context = CauseContext(
        subject=commit.subject, sha=commit.sha, branch=branch, author=commit.author
    )
    request = TriggerRequest(
        cause=literal_cause(cause) if cause is not None else build_cause(context, settings.cause),
        git_sha=commit.sha,
        git_branch=branch,
    )
    return TriggerPlan(
        host=settings.host,
        account_id=settings.require_account_id(),
        job_id=settings.require_job_id(branch, explicit=job_id),
        request=request,
    )


def make_client(settings: Settings, env: Mapping[str, str]) -> DbtCloudClient:
    """A client for the configured account, with the token from the environment or store."""
    return DbtCloudClient(
        host=settings.host, account_id=settings.require_account_id(), token=resolve_token(env)
    )
