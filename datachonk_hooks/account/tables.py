"""How the account commands show projects and jobs: aligned tables and JSON.

Project names, job names and dbt Cloud's messages are text from outside: every cell goes
through `sanitize` before its width is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datachonk_hooks.cloud.records import Project
from datachonk_hooks.sanitize import sanitize

if TYPE_CHECKING:
    from datachonk_hooks.account.listings import JobRow


def projects_json(projects: Sequence[Project]) -> list[dict[str, Any]]:
    return [{"id": p.id, "name": p.name} for p in projects]


def projects_table(projects: Sequence[Project]) -> list[str]:
    if not projects:
        return ["no projects in this account"]
    return table(["ID", "NAME"], [[str(p.id), p.name] for p in projects])


def jobs_table(rows: Sequence[JobRow], *, with_project: bool = False) -> list[str]:
    if not rows:
        return ["no jobs"]
    header = ["ID", "NAME", *(["PROJECT"] if with_project else [])]
    header += ["ENVIRONMENT", "TYPE", "ACTIVE", "TRIGGERS", "LAST RUN"]
    body = []
    for row in rows:
        job = row.job
        cells = [str(job.id), job.name, *([str(job.project_id or "-")] if with_project else [])]
        cells += [
            str(job.environment_id or "-"),
            job.job_type or "-",
            "yes" if job.active else "no",
            ",".join(job.triggers) or "-",
            row.last_run.status.label if row.last_run else "never ran",
        ]
        body.append(cells)
    return table(header, body)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, no trailing spaces; cells are sanitized first
    (names come from dbt Cloud), so the widths are those of what is shown."""
    lines = [[sanitize(str(cell)) for cell in line] for line in [header, *rows]]
    widths = [max(len(cell) for cell in column) for column in zip(*lines, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
