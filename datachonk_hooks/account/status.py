"""`datachonk-hook status`: whether the configured connection works, checked with one call.

Problems are reported in the Status, not raised, so `status` can always say what it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datachonk_hooks.account.tables import projects_json
from datachonk_hooks.account.workspace import Workspace, client_for
from datachonk_hooks.cloud.errors import DbtCloudError, PermissionDeniedError
from datachonk_hooks.cloud.records import Project
from datachonk_hooks.errors import ConfigError, ExitCode
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.credentials import Token, resolve_token
from datachonk_hooks.settings.records import NoHostError, Settings


@dataclass(frozen=True)
class Status:
    """Whether the connection works, for `status`; never holds the token."""

    host: str | None
    account_id: int | None
    project_id: int | None
    job_id: int | None
    config_file: Path | None
    token_source: str | None
    accepted: bool
    problem: str | None
    projects: tuple[Project, ...] | None  # None: not listed (no connection, or not allowed)
    exit_code: int

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "account_id": self.account_id,
            "project_id": self.project_id,
            "job_id": self.job_id,
            "config_file": str(self.config_file) if self.config_file else None,
            "token_source": self.token_source,
            "accepted": self.accepted,
            "problem": self.problem,
            "projects": None if self.projects is None else projects_json(self.projects),
        }

    def lines(self) -> list[str]:
        def shown(value: object) -> str:
            return "not set" if value is None else str(value)

        if self.accepted:
            connection = "ok, the token is accepted"
        else:
            connection = f"not working: {self.problem}"
        lines = [
            f"config:     {shown(self.config_file)}",
            f"host:       {shown(self.host)}",
            f"account:    {shown(self.account_id)}",
            f"project:    {shown(self.project_id)}",
            f"job:        {shown(self.job_id)}",
            f"token:      {'from ' + self.token_source if self.token_source else 'none found'}",
            f"connection: {connection}",
        ]
        if self.projects is not None:
            lines.append(f"projects:   {len(self.projects)}")
            lines += [f"  {p.id}  {p.name}" for p in self.projects]
        elif self.accepted and self.problem:
            lines.append(f"projects:   {self.problem}")
        return [sanitize(line) for line in lines]


def check_status(ws: Workspace) -> Status:
    """Settings, token source and one call to dbt Cloud; problems are reported, not raised."""
    settings = ws.settings()
    if settings.account_id is None:
        return _status(
            settings,
            token_source=None,
            accepted=False,
            problem="no account configured; run `datachonk-hook connect`",
            projects=None,
            exit_code=ExitCode.USAGE,
        )
    if settings.host is None:
        try:  # stored tokens are kept per host: only the environment's can be told
            source: str | None = resolve_token(ws.env).source
        except ConfigError:
            source = None
        return _status(
            settings,
            token_source=source,
            accepted=False,
            problem=str(NoHostError()),
            projects=None,
            exit_code=ExitCode.USAGE,
        )
    try:
        token = resolve_token(ws.env, host=settings.host, account_id=settings.account_id)
    except ConfigError as exc:
        return _status(
            settings,
            token_source=None,
            accepted=False,
            problem=str(exc),
            projects=None,
            exit_code=exc.exit_code,
        )
    return _ask_dbt_cloud(ws, settings, token)


def _ask_dbt_cloud(ws: Workspace, settings: Settings, token: Token) -> Status:
    """The one call to dbt Cloud: listing the projects tells whether the token is accepted."""
    with client_for(settings, ws.env, token=token) as client:
        try:
            projects = tuple(client.list_projects())
        except PermissionDeniedError:
            return _status(
                settings,
                token_source=token.source,
                accepted=True,
                problem="this token may not list projects (a Job Runner token can still run jobs)",
                projects=None,
                exit_code=ExitCode.OK,
            )
        except DbtCloudError as exc:
            return _status(
                settings,
                token_source=token.source,
                accepted=False,
                problem=str(exc),
                projects=None,
                exit_code=exc.exit_code,
            )
    return _status(
        settings,
        token_source=token.source,
        accepted=True,
        problem=None,
        projects=projects,
        exit_code=ExitCode.OK,
    )


def _status(
    settings: Settings,
    *,
    token_source: str | None,
    accepted: bool,
    problem: str | None,
    projects: tuple[Project, ...] | None,
    exit_code: int,
) -> Status:
    """A Status that shows `settings`' connection with what was found about it."""
    return Status(
        host=settings.host,
        account_id=settings.account_id,
        project_id=settings.project_id,
        job_id=settings.job_id,
        config_file=Path(settings.source) if settings.source else None,
        token_source=token_source,
        accepted=accepted,
        problem=problem,
        projects=projects,
        exit_code=exit_code,
    )
