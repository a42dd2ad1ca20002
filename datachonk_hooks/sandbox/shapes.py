"""The JSON the simulator answers with, shaped field for field like dbt Cloud's: runs (with
their steps and step logs), triggers, jobs, projects and environments, as of `now`."""

from __future__ import annotations

import json

from datachonk_hooks.sandbox.parsing import _OVERRIDES
from datachonk_hooks.sandbox.simulation import _dbt_logs, _progress, _updated
from datachonk_hooks.sandbox.state import Account
from datachonk_hooks.sandbox.wire import (
    _FIRST_STEP_ID,
    CANCELLED,
    ERROR,
    FIRST_RUN_ID,
    QUEUED,
    RUNNING,
    STATUS_NAMES,
    SUCCESS,
    TERMINAL,
    _Environment,
    _hms,
    _humanize,
    _Job,
    _Progress,
    _Project,
    _Run,
)

# Fields whose values never vary in this simulation, written as they appear on the wire.
_RUN_FIXED = (
    '{"dbt_version": "versionless", "owner_thread_id": null, "deferring_run_id": null,'
    ' "has_docs_generated": false, "has_sources_generated": false, "blocked_by": [],'
    ' "last_checked_at": null, "last_heartbeat_at": null, "should_start_at": null,'
    ' "trigger": null, "job": null, "environment": null, "retrying_run_id": null,'
    ' "used_repo_cache": null}'
)
_JOB_FIXED = (
    '{"generate_docs": false, "run_generate_sources": false, "run_compare_changes": false,'
    ' "description": "", "dbt_version": null, "raw_dbt_version": null, "state": 1,'
    ' "run_failure_count": 0, "deferring_job_definition_id": null,'
    ' "deferring_environment_id": null, "lifecycle_webhooks": false,'
    ' "lifecycle_webhooks_url": null, "settings": {"threads": 4, "target_name": "default"},'
    ' "schedule": {"cron": "0 6 * * *", "date": {"type": "every_day"},'
    ' "time": {"type": "at_exact_hours", "hours": [6]}}, "is_deferrable": false,'
    ' "triggers_on_draft_pr": false, "job_completion_trigger_condition": null,'
    ' "generate_sources": false, "cron_humanized": "At 06:00 AM", "next_run": null,'
    ' "next_run_humanized": null}'
)
_PROJECT_FIXED = (
    '{"description": "", "connection_id": null, "repository_id": null,'
    ' "semantic_layer_config_id": null, "skipped_setup": false, "state": 1,'
    ' "dbt_project_subdirectory": null, "docs_job_id": null, "freshness_job_id": null, "type": 0,'
    ' "connection": null, "docs_job": null, "freshness_job": null, "group_permissions": []}'
)

_ENVIRONMENT_FIXED = (
    '{"connection_id": null, "credentials_id": null, "repository_id": null,'
    ' "extended_attributes_id": null, "custom_branch": null, "use_custom_branch": false,'
    ' "dbt_project_subdirectory": null, "supports_docs": false, "created_by_id": null,'
    ' "is_deferrable": true, "enable_model_query_history": false, "enable_dbt_state": false,'
    ' "primary_profile_id": null}'
)


def run_json(account: Account, run: _Run, include: set[str]) -> dict[str, object]:
    now = account.clock.now()
    p, job = _progress(run, now), run.job
    done = p.status in TERMINAL
    end = p.finished_s if p.finished_s is not None else now
    queued = (p.started_s if p.started_s is not None else end) - run.created_s
    ran = end - p.started_s if p.started_s is not None else 0.0
    data: dict[str, object] = {
        "id": run.id,
        "trigger_id": run.trigger_id,
        "account_id": account.account_id,
        "environment_id": job.environment_id,
        "project_id": job.project_id,
        "job_definition_id": job.id,
        "status": p.status,
        **json.loads(_RUN_FIXED),
    }
    data.update(
        job_id=job.id,
        status_humanized=STATUS_NAMES[p.status],
        status_message=p.message,
        git_branch=run.trigger.git_branch,
        git_sha=run.trigger.git_sha,
        executed_by_thread_id=None if p.dequeued_s is None else f"scheduler-run-{run.id}",
        artifacts_saved=p.status == SUCCESS,
        artifact_s3_path=f"prod-us-c1/runs/{run.id}/artifacts/target" if done else None,
        notifications_sent=done,
        created_at=account.clock.stamp(run.created_s),
        updated_at=account.clock.stamp(_updated(run, p)),
        dequeued_at=account.clock.stamp(p.dequeued_s),
        started_at=account.clock.stamp(p.started_s),
        finished_at=account.clock.stamp(p.finished_s),
        run_steps=steps_json(account, run, p, now) if "run_steps" in include else [],
        in_progress=not done,
        is_complete=done,
        is_success=p.status == SUCCESS,
        is_error=p.status == ERROR,
        is_cancelled=p.status == CANCELLED,
        is_running=p.status == RUNNING,
        duration=_hms(end - run.created_s),
        queued_duration=_hms(queued),
        run_duration=_hms(ran),
        duration_humanized=_humanize(end - run.created_s),
        queued_duration_humanized=_humanize(queued),
        run_duration_humanized=_humanize(ran),
        created_at_humanized=f"{_humanize(now - run.created_s)} ago",
        finished_at_humanized=f"{_humanize(now - end)} ago" if done else "0 minutes from now",
        can_retry=p.status == ERROR,
        retry_not_supported_reason=None if p.status == ERROR else "RETRY_NOT_FAILED_RUN",
        href=f"{account.url}/deploy/{account.account_id}/projects/{job.project_id}/runs/{run.id}/",
    )
    if "trigger" in include:
        data["trigger"] = trigger_json(account, run)
    if "job" in include:
        data["job"] = job_json(account, job)
    if "environment" in include:
        environment = _Environment(job.environment_id, job.project_id)
        data["environment"] = environment_json(account, environment)
    return data


def environment_json(account: Account, environment: _Environment) -> dict[str, object]:
    """An environment (its own endpoints, or a run's `include_related=environment`): each
    is its project's Production deployment here, with the fields v2 and v3 both give."""
    stamp = account.clock.stamp(0)
    return {
        "id": environment.id,
        "account_id": account.account_id,
        "project_id": environment.project_id,
        "name": "Production",
        "type": "deployment",
        "deployment_type": "production",
        "dbt_version": "versionless",
        "raw_dbt_version": "versionless",
        "state": 1,
        **json.loads(_ENVIRONMENT_FIXED),
        "created_at": stamp,
        "updated_at": stamp,
    }


def trigger_json(account: Account, run: _Run) -> dict[str, object]:
    t = run.trigger
    data: dict[str, object] = {"id": run.trigger_id, "cause": t.cause}
    data.update(dict.fromkeys(_OVERRIDES), job_definition_id=run.job.id, job=None)
    data.update(t.other_overrides, created_at=account.clock.stamp(run.created_s))
    data.update(git_sha=t.git_sha, git_branch=t.git_branch, schema_override=t.schema_override)
    data.update(steps_override=list(t.steps_override) if t.steps_override else None)
    return {**data, "cause_humanized": t.cause, "cause_category": t.cause_category}


def job_json(account: Account, job: _Job) -> dict[str, object]:
    created = f"{account.clock.at(job.created_s):%Y-%m-%dT%H:%M:%S.%f}+00:00"
    data: dict[str, object] = json.loads(_JOB_FIXED)
    data.update(
        id=job.id,
        account_id=account.account_id,
        project_id=job.project_id,
        environment_id=job.environment_id,
        name=job.name,
        execute_steps=list(job.execute_steps),
        # a job whose runs "time out" has the timeout its runs exceed
        execution={"timeout_seconds": round(job.running_s) if job.outcome == "cancelled" else 0},
        deactivated=not job.active,
        job_type=job.job_type,
        triggers={
            "github_webhook": job.job_type == "ci",
            "git_provider_webhook": job.job_type == "ci",
            "schedule": job.job_type == "scheduled",
            "on_merge": job.job_type == "merge",
        },
        created_at=created,
        updated_at=created,
    )
    return data


def project_json(
    account: Account, project: _Project, repository: bool = False
) -> dict[str, object]:
    """A project; `repository`: with its repository object (`include_related=repository`),
    shaped as dbt Cloud's (`remote_url` is what it clones)."""
    stamp = account.clock.stamp(project.created_s)
    data = {"id": project.id, "name": project.name, "account_id": account.account_id}
    data = {**data, **json.loads(_PROJECT_FIXED), "created_at": stamp, "updated_at": stamp}
    repository_id = 900000 + project.id if project.repository_url else None
    data["repository_id"] = repository_id
    if repository:
        data["repository"] = project.repository_url and {
            "id": repository_id,
            "account_id": account.account_id,
            "project_id": project.id,
            "remote_url": project.repository_url,
            "remote_backend": "git",
            "git_clone_strategy": "deploy_key",
            "state": 1,
            "created_at": stamp,
            "updated_at": stamp,
        }
    return data


def steps_json(account: Account, run: _Run, p: _Progress, now: float) -> list[dict[str, object]]:
    """The three setup steps take a few seconds, the dbt commands share the rest of the
    Running phase; the last step carries the run's outcome."""
    names, done, span = run.step_names, p.status in TERMINAL, run.job.running_s
    setup = min(5.0, span / (2 * len(names)))
    commands = len(names) - 3
    # offsets into the Running phase; the last is exactly `span`, so the final step ends
    # on the very float the run finishes at
    bounds = [setup * i for i in range(4)]
    bounds += [3 * setup + (span - 3 * setup) * j / commands for j in range(1, commands)]
    bounds.append(span)
    end = p.finished_s if p.finished_s is not None else now
    steps: list[dict[str, object]] = []
    for i, name in enumerate(names):
        begin = stop = None
        if p.started_s is not None:
            begin, stop = p.started_s + bounds[i], p.started_s + bounds[i + 1]
        if begin is None or stop is None or end < begin:
            if done:
                continue  # a step that never started is not reported for a finished run
            status, finished = QUEUED, None
        elif stop <= end:
            status, finished = (p.status if stop == p.finished_s else SUCCESS), stop
        else:
            status, finished = (CANCELLED if done else RUNNING), None
        logs = "" if status == QUEUED else step_logs(account, run, i, name, status)
        steps.append(
            {
                "id": _FIRST_STEP_ID + (run.id - FIRST_RUN_ID) * 100 + i,
                "run_id": run.id,
                "account_id": account.account_id,
                "index": i + 1,
                "name": name,
                "status": status,
                "status_humanized": STATUS_NAMES[status],
                "logs": logs,
                "debug_logs": logs,
                "created_at": account.clock.stamp(run.created_s),
                "started_at": account.clock.stamp(begin if status != QUEUED else None),
                "finished_at": account.clock.stamp(finished),
                "duration": _hms((finished or end) - begin if begin is not None else 0),
            }
        )
    return steps


def step_logs(account: Account, run: _Run, index: int, name: str, status: int) -> str:
    if index == 0:
        ref = run.trigger.git_sha or run.trigger.git_branch or "main"
        lines = [
            "Cloning into 'target'...",
            "Successfully cloned repository.",
            f"Checked out {ref}.",
        ]
    elif index == 1:
        profile = f"/tmp/jobs/{run.id}/.dbt/profiles.yml"
        lines = ["Using connection 'Snowflake'", f"Writing profile to {profile}", "Done."]
    elif index == 2:
        lines = ["Running with dbt=1.9.1", "Installing dbt-labs/dbt_utils", "Up to date!"]
    else:
        command = name.removeprefix("Invoke dbt with `").removesuffix("`")
        lines = _dbt_logs(command, account.project_slug(run), failing=status == ERROR)
    return "\n".join(lines[:3] if status in (RUNNING, CANCELLED) else lines)
