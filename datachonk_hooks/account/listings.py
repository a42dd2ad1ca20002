"""`datachonk-hook projects` and `jobs`: the account's projects and jobs, read from dbt Cloud.

Read-only; how they are shown is `tables`' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datachonk_hooks.account.workspace import Workspace, client_for
from datachonk_hooks.cloud.records import Job, Project, Run


def list_projects(ws: Workspace) -> list[Project]:
    settings = ws.settings()
    with client_for(settings, ws.env) as client:
        return client.list_projects()


@dataclass(frozen=True)
class JobRow:
    """A job and its most recent run (None when it never ran)."""

    job: Job
    last_run: Run | None

    def to_json(self) -> dict[str, Any]:
        job, run = self.job, self.last_run
        return {
            "id": job.id,
            "name": job.name,
            "project_id": job.project_id,
            "environment_id": job.environment_id,
            "job_type": job.job_type,
            "active": job.active,
            "triggers": list(job.triggers),
            "last_run": None
            if run is None
            else {
                "id": run.id,
                "status": int(run.status),
                "status_humanized": run.status.label,
                "href": run.href,
                "created_at": run.created_at.isoformat() if run.created_at else None,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            },
        }


def list_jobs(ws: Workspace, project_id: int | None = None) -> list[JobRow]:
    """The jobs of `project_id` (default: the configured project, else the whole account)."""
    settings = ws.settings()
    project_id = project_id or settings.project_id
    with client_for(settings, ws.env) as client:
        jobs = client.list_jobs(project_id)
        return [JobRow(job, next(iter(client.list_runs(job.id, limit=1)), None)) for job in jobs]
