"""The doctor's checks of what pushes trigger: the project, the git remote, the jobs and the
route the current branch takes."""

from __future__ import annotations

from collections.abc import Iterator

from datachonk_hooks.cloud.errors import DbtCloudError, NotFoundError
from datachonk_hooks.cloud.records import Job
from datachonk_hooks.commands.doctor.findings import Findings
from datachonk_hooks.commands.doctor.report import CONNECT, NEEDS_HOST, Check
from datachonk_hooks.errors import DatachonkError


def check_project(found: Findings) -> Check:
    name = "project"
    settings = found.settings
    if settings is not None and settings.host is None:
        return Check(name, None, NEEDS_HOST)
    if settings is None or not found.connected:
        return Check(name, None, "needs a working connection")
    if settings.project_id is None:
        return Check(name, False, "no project_id in datachonk.yaml", CONNECT)
    if found.projects is None:
        job = found.job(settings.job_id) if settings.job_id else None
        if isinstance(job, Job) and job.project_id == settings.project_id:
            return Check(
                name,
                True,
                f"{settings.project_id} (seen through job {job.id}: the token"
                " may not list projects)",
            )
        return Check(name, None, f"{settings.project_id}: the token may not list projects")
    listed = next((p for p in found.projects if p.id == settings.project_id), None)
    if listed is None:
        return Check(
            name,
            False,
            f"account {settings.account_id} has no project {settings.project_id}",
            f"{CONNECT} to choose one (`datachonk-hook projects` lists them)",
        )
    return Check(name, True, f"{listed.id} {listed.name}")


def check_remote(found: Findings) -> Check:
    """Pushes trigger only for the remote dbt Cloud builds from: it must exist here, and
    when dbt Cloud tells the project's repository, be that repository."""
    from datachonk_hooks.push.gitrepo import same_repository

    name = "git remote"
    if found.settings is None or found.repo is None:
        return Check(name, None, "needs datachonk.yaml and a repository")
    remote = found.settings.remote
    fix = (
        "set deploy.dbt_cloud.remote to the remote dbt Cloud builds from"
        " (`git remote -v` lists them)"
    )
    try:
        url = found.repo.remotes[remote].url or ""
    except (KeyError, ValueError):
        return Check(name, False, f"this clone has no remote {remote!r}", fix)
    project = next((p for p in found.projects or () if p.id == found.settings.project_id), None)
    if project is None or project.repository_url is None:
        return Check(name, True, f"pushes to {remote} ({url}) trigger")
    if not same_repository(url, project.repository_url, found.repo.workdir):
        return Check(
            name,
            False,
            f"{remote} is {url}, but dbt Cloud project {project.id} builds from"
            f" {project.repository_url}",
            fix,
        )
    return Check(name, True, f"pushes to {remote} trigger; dbt Cloud builds from {url} too")


def check_jobs(found: Findings) -> Iterator[Check]:
    settings = found.settings
    if settings is not None and settings.host is None:
        yield Check("job", None, NEEDS_HOST)
        return
    if settings is None or not found.connected:
        yield Check("job", None, "needs a working connection")
        return
    if settings.job_id is None and not settings.jobs:
        yield Check("job", False, "no job_id in datachonk.yaml", CONNECT)
        return
    if settings.job_id is not None:
        yield _check_job(found, "job", settings.job_id, settings.project_id)
    for index, route in enumerate(settings.jobs):
        name = f"jobs[{index}] ({route.branch})"
        if route.job_id is None:
            yield Check(name, True, "no job: pushes to these branches trigger nothing")
        else:
            yield _check_job(found, name, route.job_id, settings.project_id)


def _check_job(found: Findings, name: str, job_id: int, project_id: int | None) -> Check:
    job = found.job(job_id)
    if isinstance(job, NotFoundError):
        return Check(
            name,
            False,
            f"no job {job_id} in the account",
            "pick an existing job (`datachonk-hook jobs` lists them)",
        )
    if isinstance(job, DbtCloudError):
        return Check(name, False, f"job {job_id}: {job}", "check the token's permissions")
    if not job.active:
        return Check(
            name,
            False,
            f"{job.id} {job.name} is deactivated",
            "reactivate it in dbt Cloud, or choose another job",
        )
    if project_id is not None and job.project_id not in (None, project_id):
        return Check(
            name,
            False,
            f"{job.id} {job.name} belongs to project {job.project_id}, not {project_id}",
            "choose a job of the configured project",
        )
    return Check(name, True, f"{job.id} {job.name} (active, in project {job.project_id})")


def check_branch_route(found: Findings) -> Iterator[Check]:
    """Which `jobs:` entry the current branch resolves to (information, always ok)."""
    from datachonk_hooks.push.gitrepo import branch_of

    if found.settings is None or not found.settings.configured or found.repo is None:
        return
    try:
        branch = branch_of(found.repo, "HEAD")
    except DatachonkError:
        return
    if branch is None:
        return
    target = found.settings.target_for_branch(branch)
    if target.job_id is None:
        yield Check(f"branch {branch}", True, f"{target.source}: pushes trigger nothing")
        return
    extras = [
        f"schema {target.schema_override}" if target.schema_override else "",
        "select changed models" if target.select_changed else "",
        "wait for the run" if target.wait else "",
        "" if target.auto_trigger else "only by hand (auto_trigger false)",
    ]
    detail = ", ".join(e for e in extras if e)
    yield Check(
        f"branch {branch}",
        True,
        f"pushes trigger job {target.job_id} via {target.source}"
        + (f"; {detail}" if detail else ""),
    )
