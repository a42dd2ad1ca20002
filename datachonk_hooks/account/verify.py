"""Checking what `connect` was given with dbt Cloud: the token, the project and the job.

Nothing is saved until this passes, so every refusal is one line that says which part is wrong
and ends in "Nothing was saved.". When an id was not given, the user picks from a numbered list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import click

from datachonk_hooks.account.workspace import Echo, is_legacy_host
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    DbtCloudError,
    NotFoundError,
    PermissionDeniedError,
)
from datachonk_hooks.cloud.records import Job, Project
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings.defaults import EXAMPLE_HOST

NOTHING_SAVED = "Nothing was saved."


class RefusedError(DbtCloudError):
    """dbt Cloud turned the connection down; the message says which part is wrong (exit 5)."""


#: What to do about a project or job id that was not given: ask with a numbered list,
#: refuse (scripts must say), or leave datachonk.yaml's value alone (the local API).
Missing = Literal["ask", "error", "keep"]


def refusal(error: DbtCloudError, host: str, account_id: int, *, job_id: int | None = None) -> str:
    """The one-line message for dbt Cloud turning `connect` down, by what is wrong."""
    if isinstance(error, AuthenticationError):
        if is_legacy_host(host):
            return (
                f"dbt Cloud at {host} rejected the token (HTTP 401). Accounts with their own"
                " access URL answer 401 on this legacy host: pass --host with the access URL"
                f" shown under Account settings (such as {EXAMPLE_HOST})."
                f" {NOTHING_SAVED}"
            )
        return (
            f"dbt Cloud at {host} rejected the token (HTTP 401): check that it was copied"
            f" whole and is not revoked, and that {host} is the access URL of account"
            f" {account_id} (Account settings). {NOTHING_SAVED}"
        )
    if isinstance(error, PermissionDeniedError):
        if job_id is not None:
            return (
                f"the token may not read job {job_id} (HTTP 403); it needs the Job Runner or"
                f" Job Admin permission set. {NOTHING_SAVED}"
            )
        return (
            f"the token may not list the projects of account {account_id} (HTTP 403). Use a"
            " service token with the Job Admin permission set; a Job Runner token can run jobs"
            " but not list projects, so pass --project-id and --job-id with it."
            f" {NOTHING_SAVED}"
        )
    if isinstance(error, NotFoundError):
        return (
            f"dbt Cloud at {host} has no account {account_id} that this token can see"
            " (HTTP 404): the account id is the number after /accounts/ in dbt Cloud's URLs"
            f" ({EXAMPLE_HOST}/accounts/12345/...), and the token must belong to that"
            f" account. {NOTHING_SAVED}"
        )
    text = str(error)
    return f"{text}{'' if text.endswith('.') else '.'} {NOTHING_SAVED}"


def verify(
    client: DbtCloudClient,
    project_id: int | None,
    job_id: int | None,
    missing: Missing,
    defaults: tuple[int | None, int | None],
    echo: Echo,
) -> tuple[tuple[Project, ...] | None, Project | None, Job | None]:
    """(the account's projects, the project, the job), each checked with dbt Cloud."""
    host, account_id = client.host, client.account_id
    try:
        projects = tuple(client.list_projects())
    except PermissionDeniedError as exc:
        if project_id is None or job_id is None:
            raise RefusedError(refusal(exc, host, account_id), status=403) from None
        # A Job Runner token cannot list projects but can read the job it is meant to run.
        job = _get_job(client, job_id)
        _check_job_project(job, project_id)
        echo("note: this token may not list projects; the project was checked through the job")
        return None, Project(project_id, "", account_id), job
    except DbtCloudError as exc:
        raise RefusedError(refusal(exc, host, account_id), status=exc.status) from None
    if project_id is None and missing == "keep":
        if job_id is not None:
            raise ConfigError(f"a job_id needs its project_id too. {NOTHING_SAVED}")
        return projects, None, None
    if not projects:
        raise ConfigError(
            f"account {account_id} has no projects yet; create one in dbt Cloud, then connect"
            f" again. {NOTHING_SAVED}"
        )
    project = _pick(
        "project",
        projects,
        project_id,
        label=lambda p: p.name,
        ask=missing == "ask",
        default=defaults[0],
        echo=echo,
        where=f"account {account_id}",
    )
    if job_id is None and missing == "keep":
        return projects, project, None
    try:
        jobs = client.list_jobs(project.id)
    except DbtCloudError as exc:
        raise RefusedError(refusal(exc, host, account_id), status=exc.status) from None
    if not jobs:
        raise ConfigError(
            f"project {project.id} ({project.name}) has no jobs; create a deploy job in dbt"
            f" Cloud (Deploy > Jobs), then connect again. {NOTHING_SAVED}"
        )
    if job_id is not None and job_id not in {job.id for job in jobs}:
        other = _get_job_or_none(client, job_id)
        if other is not None:  # say where the job is, when it exists elsewhere
            _check_job_project(other, project.id)
    job = _pick(
        "job",
        jobs,
        job_id,
        label=_job_label,
        ask=missing == "ask",
        default=defaults[1],
        echo=echo,
        where=f"project {project.id} ({project.name})",
    )
    return projects, project, job


_Item = TypeVar("_Item", Project, Job)


def _pick(
    kind: str,
    items: Sequence[_Item],
    wanted: int | None,
    *,
    label: Callable[[_Item], str],
    ask: bool,
    default: int | None,
    echo: Echo,
    where: str,
) -> _Item:
    """The item with id `wanted`, else the user's choice from a numbered list."""
    by_id = {item.id: item for item in items}
    if wanted is not None:
        if wanted not in by_id:
            known = ", ".join(f"{item.id} {label(item)}".strip() for item in items[:10])
            raise ConfigError(f"{where} has no {kind} {wanted} (it has: {known}). {NOTHING_SAVED}")
        return by_id[wanted]
    if not ask:
        raise ConfigError(
            f"--{kind}-id is needed with --token-stdin (there is no {kind}_id in"
            f" datachonk.yaml to keep). {NOTHING_SAVED}"
        )
    if len(items) == 1:
        echo(f"{kind}: {items[0].id} {label(items[0])} (the only one in {where})")
        return items[0]
    echo(f"{kind.capitalize()}s in {where}:")
    width = len(str(len(items)))
    for number, item in enumerate(items, start=1):
        echo(f"  {number:>{width}}) {item.id}  {label(item)}")
    ids = [item.id for item in items]
    choice = click.prompt(
        kind.capitalize(),
        type=click.IntRange(1, len(items)),
        default=ids.index(default) + 1 if default in ids else 1,
    )
    return items[int(choice) - 1]


def _job_label(job: Job) -> str:
    details = [job.job_type or "job"] + ([] if job.active else ["deactivated"])
    return f"{job.name} ({', '.join(details)})"


def _get_job(client: DbtCloudClient, job_id: int) -> Job:
    try:
        return client.get_job(job_id)
    except NotFoundError:
        raise ConfigError(
            f"dbt Cloud at {client.host} has no job {job_id} in account"
            f" {client.account_id}. {NOTHING_SAVED}"
        ) from None
    except DbtCloudError as exc:
        message = refusal(exc, client.host, client.account_id, job_id=job_id)
        raise RefusedError(message, status=exc.status) from None


def _get_job_or_none(client: DbtCloudClient, job_id: int) -> Job | None:
    try:
        return client.get_job(job_id)
    except DbtCloudError:
        return None


def _check_job_project(job: Job, project_id: int) -> None:
    if job.project_id is not None and job.project_id != project_id:
        raise ConfigError(
            f"job {job.id} ({job.name}) belongs to project {job.project_id},"
            f" not to project {project_id}. {NOTHING_SAVED}"
        )
