"""The simulator's endpoints: one small function per route of the Admin API, given the
account (locked) and the call (the id in the path, the query, the body) and answering as
dbt Cloud does. The table that maps method and path to these is `routes`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from datachonk_hooks.sandbox.accounts import account_json, account_user_json, user_json
from datachonk_hooks.sandbox.filters import narrow, soft_state
from datachonk_hooks.sandbox.parsing import (
    _list_param,
    _ordering,
    _page,
    _parse_trigger,
)
from datachonk_hooks.sandbox.shapes import environment_json, job_json, project_json, run_json
from datachonk_hooks.sandbox.simulation import _artifact, _progress, _updated
from datachonk_hooks.sandbox.state import Account
from datachonk_hooks.sandbox.wire import (
    ERROR,
    SUCCESS,
    TERMINAL,
    _ApiError,
    _Call,
    _json_response,
    _ok,
    _Progress,
    _Response,
    _Run,
    _Trigger,
)


@dataclass(frozen=True)
class _RunRow:
    """A run with its progress at the time of one list request, to filter and sort on."""

    run: _Run
    progress: _Progress

    def value(self, name: str) -> float | None:
        """The run's field `name` as lists filter and sort on it."""
        p = self.progress
        return {
            "id": self.run.id,
            "job_definition_id": self.run.job.id,
            "project_id": self.run.job.project_id,
            "environment_id": self.run.job.environment_id,
            "status": p.status,
            "created_at": self.run.created_s,
            "finished_at": p.finished_s,
            "updated_at": _updated(self.run, p),
        }[name]

    def sort_key(self, order_by: str) -> tuple[bool, float, int]:
        value = self.value(order_by.lstrip("-"))
        return (value is None, value or 0.0, self.run.id)  # NULLs last, as Postgres sorts them


def trigger(account: Account, call: _Call) -> _Response:
    job = account.job(call.key)
    if call.body_error is not None:
        raise call.body_error
    run = account.create_run(job, _parse_trigger(call.body))
    return _ok(run_json(account, run, {"trigger", "job"}))


def rerun(account: Account, call: _Call) -> _Response:
    """Retry from failure when the job's latest run errored, else a plain new run."""
    job = account.job(call.key)
    runs = [run for run in account.runs.values() if run.job.id == job.id]
    if runs and _progress(runs[-1], account.clock.now()).status == ERROR:
        cause = f"Rerun from failure of run {runs[-1].id}"
        trigger = replace(runs[-1].trigger, cause=cause, cause_category="rerun")
    else:
        trigger = _Trigger(cause="Triggered via rerun API")
    return _ok(run_json(account, account.create_run(job, trigger), {"trigger", "job"}))


def get_run(account: Account, call: _Call) -> _Response:
    wanted = set(_list_param(call.query, "include_related"))
    include = wanted & {"trigger", "job", "run_steps", "environment"}
    return _ok(run_json(account, account.run(call.key), include))


def cancel(account: Account, call: _Call) -> _Response:
    run, now = account.run(call.key), account.clock.now()
    if _progress(run, now).status not in TERMINAL:
        run = account.runs[run.id] = replace(run, cancelled_s=now)
    return _ok(run_json(account, run, set()))


def list_runs(account: Account, call: _Call) -> _Response:
    query, now = call.query, account.clock.now()
    rows = [_RunRow(run, _progress(run, now)) for run in account.runs.values()]
    filters: dict[str, object] = {"state": "all", "account_id": account.account_id}
    rows = soft_state(rows, query, filters)
    names = ("job_definition_id", "project_id", "project_id__in", "environment_id", "status")
    rows = narrow(rows, query, (*names, "status__in"), _RunRow.value, filters)
    order_by = _ordering(query, ("id", "created_at", "updated_at", "finished_at", "status"))
    rows.sort(key=lambda row: row.sort_key(order_by), reverse=order_by.startswith("-"))
    page, extra = _page(rows, query, filters, order_by)
    include = {"trigger", "job", "environment"} & set(_list_param(query, "include_related"))
    return _ok([run_json(account, row.run, include) for row in page], extra)


def list_jobs(account: Account, call: _Call) -> _Response:
    jobs = list(account.jobs.values())
    filters: dict[str, object] = {"state": "active", "account_id": account.account_id}
    jobs = soft_state(jobs, call.query, filters)
    names = ("project_id", "project_id__in", "environment_id")
    jobs = narrow(jobs, call.query, names, getattr, filters)
    needle = (call.query.get("name__icontains") or [""])[-1]
    jobs = [job for job in jobs if needle.lower() in job.name.lower()]
    order_by = _ordering(call.query, ("id", "name", "created_at"))
    field = {"created_at": "created_s"}.get(order_by.lstrip("-"), order_by.lstrip("-"))
    jobs.sort(key=lambda job: (getattr(job, field), job.id), reverse=order_by.startswith("-"))
    page, extra = _page(jobs, call.query, filters, order_by)
    return _ok([job_json(account, job) for job in page], extra)


def get_job(account: Account, call: _Call) -> _Response:
    return _ok(job_json(account, account.job(call.key)))


def list_projects(account: Account, call: _Call) -> _Response:
    needle = (call.query.get("name__icontains") or [""])[-1].lower()
    projects = [p for p in account.projects.values() if needle in p.name.lower()]
    order_by = _ordering(call.query, ("id", "name"))
    field = order_by.lstrip("-")
    projects.sort(key=lambda p: (getattr(p, field), p.id), reverse=order_by.startswith("-"))
    page, extra = _page(projects, call.query, {"account_id": account.account_id}, order_by)
    related = ",".join(call.query.get("include_related") or []).split(",")
    return _ok([project_json(account, project, "repository" in related) for project in page], extra)


def get_project(account: Account, call: _Call) -> _Response:
    related = _list_param(call.query, "include_related")
    return _ok(project_json(account, account.project(call.key), "repository" in related))


def list_environments(account: Account, call: _Call) -> _Response:
    """Every environment of the account (v2), or of one project (v3, `call.parent`)."""
    filters: dict[str, object] = {"state": "active", "account_id": account.account_id}
    if call.parent:
        filters["project_id"] = account.project(call.parent).id
    environments = soft_state(account.environments(call.parent or None), call.query, filters)
    names = () if call.parent else ("project_id", "project_id__in")
    environments = narrow(environments, call.query, names, getattr, filters)
    order_by = _ordering(call.query, ("id",))
    environments.sort(key=lambda e: (e.id, e.project_id), reverse=order_by.startswith("-"))
    page, extra = _page(environments, call.query, filters, order_by)
    return _ok([environment_json(account, environment) for environment in page], extra)


def get_environment(account: Account, call: _Call) -> _Response:
    if call.parent:
        account.project(call.parent)
    environment = account.environment(call.key, call.parent or None)
    return _ok(environment_json(account, environment))


def list_accounts(account: Account, call: _Call) -> _Response:
    """The accounts the token reaches: a token belongs to exactly one account."""
    return _ok([account_json(account)], _whole(1))


def get_account(account: Account, call: _Call) -> _Response:
    return _ok(account_json(account))


def list_users(account: Account, call: _Call) -> _Response:
    users = [user_json(account, user) for user in account.users]
    return _ok(users, _whole(len(users)))


def get_user(account: Account, call: _Call) -> _Response:
    return _ok(account_user_json(account, account.user(call.key)))


def retry_details(account: Account, call: _Call) -> _Response:
    """What a retry of a failed run would redo: its failing step, and none skipped."""
    run = _failed(account, call.key)
    return _ok({"failed_step": run.step_names[-1], "skipped_steps": []})


def retry(account: Account, call: _Call) -> _Response:
    """Run a failed run's job again from the failure, with the failed run's overrides."""
    run = _failed(account, call.key)
    trigger = replace(run.trigger, cause=f"Retry of run {run.id}", cause_category="retry")
    return _ok(run_json(account, account.create_run(run.job, trigger), {"trigger", "job"}))


def run_timing(account: Account, call: _Call) -> _Response:
    """How long a run of the project queued and ran, step by step. dbtc calls this v3 path
    but the published specs lack it, so its shape is the sandbox's own: the run's
    timestamps and durations, and each step's."""
    run = account.run(call.key)
    if run.job.project_id != call.parent:
        raise _ApiError.envelope(404, "Run not found.")
    data = run_json(account, run, {"run_steps"})
    names = ("created_at", "dequeued_at", "started_at", "finished_at", "duration")
    timing = {name: data[name] for name in ("id", "project_id", "status", *names)}
    timing.update(queued_duration=data["queued_duration"], run_duration=data["run_duration"])
    steps = data["run_steps"] if isinstance(data["run_steps"], list) else []
    keys = ("index", "name", "status", "started_at", "finished_at", "duration")
    return _ok({**timing, "steps": [{key: step[key] for key in keys} for step in steps]})


def _failed(account: Account, run_id: int) -> _Run:
    run = account.run(run_id)
    if _progress(run, account.clock.now()).status != ERROR:
        raise _ApiError.envelope(400, "Only a run that ended in error can be retried.")
    return run


def _whole(count: int) -> dict[str, object]:
    """`extra` of a list that is never paged: the pagination block clients read."""
    return {"pagination": {"count": count, "total_count": count}}


def list_artifacts(account: Account, call: _Call) -> _Response:
    run = account.run(call.key)
    succeeded = _progress(run, account.clock.now()).status == SUCCESS
    return _ok(["manifest.json", "run_results.json"] if succeeded else [])


def get_artifact(account: Account, call: _Call) -> _Response:
    """The raw file, no envelope; only a successful run has saved its artifacts."""
    run = account.run(call.key)
    p = _progress(run, account.clock.now())
    if p.status != SUCCESS or call.rest not in ("manifest.json", "run_results.json"):
        raise _ApiError.envelope(404, f"Artifact {call.rest} not found for run {run.id}.")
    kind = "manifest/v12" if call.rest == "manifest.json" else "run-results/v6"
    metadata: dict[str, object] = {
        "dbt_schema_version": f"https://schemas.getdbt.com/dbt/{kind}.json",
        "dbt_version": "1.9.1",
        "generated_at": f"{account.clock.at(p.finished_s or 0):%Y-%m-%dT%H:%M:%S.%f}Z",
        "invocation_id": str(uuid.UUID(int=run.id)),
        "env": {
            "DBT_CLOUD_PROJECT_ID": str(run.job.project_id),
            "DBT_CLOUD_JOB_ID": str(run.job.id),
            "DBT_CLOUD_RUN_ID": str(run.id),
            "DBT_CLOUD_RUN_REASON": run.trigger.cause,
            "DBT_CLOUD_RUN_REASON_CATEGORY": run.trigger.cause_category,
        },
    }
    return _json_response(200, _artifact(call.rest, account.project_slug(run), metadata))
