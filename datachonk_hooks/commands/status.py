"""`status`, `projects`, `jobs` and `doctor`: what the dbt Cloud connection sees.

Read-only looks at the configured account and at the whole setup. The work is
`account`'s and `commands.doctor`'s; this prints their records as lines or JSON.
"""

from __future__ import annotations

import click

from datachonk_hooks.commands.context import AppContext, echo_json, say
from datachonk_hooks.errors import ExitCode


def status_command(app: AppContext, as_json: bool) -> int:
    """Print the connection's status; its exit code says whether the token is accepted."""
    from datachonk_hooks.account.status import check_status

    status = check_status(app.workspace())
    if as_json:
        echo_json(status.to_json())
    else:
        for line in status.lines():
            click.echo(line)
    return status.exit_code


def projects_command(app: AppContext, as_json: bool) -> int:
    """Print the account's projects."""
    from datachonk_hooks.account.listings import list_projects
    from datachonk_hooks.account.tables import projects_json, projects_table

    projects = list_projects(app.workspace())
    if as_json:
        echo_json(projects_json(projects))
    else:
        for line in projects_table(projects):
            click.echo(line)
    return ExitCode.OK


def jobs_command(app: AppContext, project_id: int | None, as_json: bool) -> int:
    """Print a project's jobs (or every project's), each with its latest run's status."""
    from datachonk_hooks.account.listings import list_jobs
    from datachonk_hooks.account.tables import jobs_table

    rows = list_jobs(app.workspace(), project_id)
    if as_json:
        echo_json([row.to_json() for row in rows])
    else:
        projects = {row.job.project_id for row in rows}
        for line in jobs_table(rows, with_project=len(projects) > 1):
            click.echo(line)
    return ExitCode.OK


def doctor_command(app: AppContext) -> int:
    """Print one line per check of the setup; exit 2 when any fails."""
    from datachonk_hooks.commands.doctor import doctor_lines, run_doctor

    checks = run_doctor(app.workspace())
    for line in doctor_lines(checks):
        say(line)
    return ExitCode.OK if all(check.passed for check in checks) else ExitCode.USAGE
