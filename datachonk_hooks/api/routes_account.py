"""The account endpoints: connect to dbt Cloud, check the connection, list a project's jobs.

Each does what its command does (`connect`, `status --json`, `jobs --json`) by calling the
same function in `account`; what dbt Cloud said comes back sanitized, and a token
the caller sent is remembered so that no later answer or log line can carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from datachonk_hooks.account.connect import connect_account
from datachonk_hooks.account.listings import JobRow, list_jobs
from datachonk_hooks.account.status import check_status
from datachonk_hooks.account.tables import projects_json
from datachonk_hooks.api.context import PREFIX, ApiContext, log, shown
from datachonk_hooks.api.errors import COMMON_ERRORS
from datachonk_hooks.api.models import (
    ConnectRequest,
    ConnectResponse,
    JobOut,
    JobsResponse,
    ProjectOut,
    StatusResponse,
)
from datachonk_hooks.cloud.records import Project
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.defaults import MAX_ID


def account_router(context: ApiContext) -> APIRouter:
    """The routes for `context`'s repository; the app adds the key requirement."""
    router = APIRouter()
    workspace, known = context.workspace, context.known

    @router.post(
        f"{PREFIX}/connect",
        response_model=ConnectResponse,
        responses=COMMON_ERRORS,
    )
    def connect(body: ConnectRequest) -> ConnectResponse:
        """Check the credentials with dbt Cloud, then store the token and write datachonk.yaml.

        Like `datachonk-hook connect`: nothing is written unless dbt Cloud accepted the token
        and the project and job exist. A project_id or job_id left out keeps datachonk.yaml's.
        """
        token = body.token.get_secret_value()
        known.add(token)
        connection = connect_account(
            workspace.cwd,
            workspace.env,
            account_id=body.account_id,
            token=token,
            host=body.host,
            project_id=body.project_id,
            job_id=body.job_id,
            config_path=workspace.config_path,
            missing="keep",
            echo=log.info,
        )
        job = shown(JobRow(connection.job, None).to_json()) if connection.job else None
        return ConnectResponse(
            host=connection.host,
            account_id=connection.account_id,
            project=_project_out(connection.project) if connection.project else None,
            job=JobOut.model_validate(job) if job else None,
            projects=_projects_out(connection.projects),
            config_file=str(connection.config_file),
            token_stored_in=connection.token_stored_in,
        )

    @router.get(
        f"{PREFIX}/status",
        response_model=StatusResponse,
        responses=COMMON_ERRORS,
    )
    def status() -> StatusResponse:
        """Whether dbt Cloud accepts the token, and the account's projects (`status --json`)."""
        found = check_status(workspace)
        problem = known.redact(found.problem) if found.problem else None
        return StatusResponse.model_validate(shown({**found.to_json(), "problem": problem}))

    @router.get(
        f"{PREFIX}/projects/{{project_id}}/jobs",
        response_model=JobsResponse,
        responses=COMMON_ERRORS,
    )
    def jobs(project_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> JobsResponse:
        """The jobs of one project with their latest runs (`jobs --json`)."""
        rows = list_jobs(workspace, project_id)
        return JobsResponse(
            project_id=project_id,
            jobs=[JobOut.model_validate(shown(row.to_json())) for row in rows],
        )

    return router


def _project_out(project: Project) -> ProjectOut:
    return ProjectOut(id=project.id, name=sanitize(project.name))


def _projects_out(projects: Sequence[Project] | None) -> list[ProjectOut] | None:
    """As `projects --json` spells them, so the two cannot drift."""
    if projects is None:
        return None
    return [ProjectOut.model_validate(shown(item)) for item in projects_json(projects)]
