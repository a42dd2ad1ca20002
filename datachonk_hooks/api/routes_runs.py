"""The run endpoints: trigger a run for a commit, and read a run's status and steps.

`trigger-run` plans as `datachonk-hook run` does and goes through the repository's trigger
ledger, so a commit starts one run of a job however it is asked (a push's trigger counts
too); a repeat answers the run that commit already started, from dbt Cloud or, when dbt
Cloud cannot be asked, from what the ledger recorded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Annotated

import pygit2
from fastapi import APIRouter, Body
from fastapi import Path as PathParam

from datachonk_hooks.api.context import PREFIX, ApiContext, log, shown
from datachonk_hooks.api.errors import COMMON_ERRORS, TRIGGER_ERRORS
from datachonk_hooks.api.models import RunOut, TriggerRunRequest, TriggerRunResponse
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import DbtCloudError
from datachonk_hooks.cloud.records import Run
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord
from datachonk_hooks.delivery.planning import TriggerPlan, UnpushedCommitError, plan_manual_trigger
from datachonk_hooks.delivery.trigger import trigger_through_ledger
from datachonk_hooks.errors import GitError
from datachonk_hooks.push.gitrepo import open_repo
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.defaults import MAX_ID
from datachonk_hooks.settings.records import Settings


def runs_router(context: ApiContext) -> APIRouter:
    """The routes for `context`'s repository; the app adds the key requirement."""
    router = APIRouter()
    workspace = context.workspace

    @router.post(
        f"{PREFIX}/trigger-run",
        response_model=TriggerRunResponse,
        responses=TRIGGER_ERRORS,
    )
    def trigger_run(
        body: Annotated[TriggerRunRequest | None, Body()] = None,
    ) -> TriggerRunResponse:
        """Trigger a run for a commit through the ledger, like `datachonk-hook run`.

        The same commit and job start one run (a push's trigger counts too) unless `force`.
        """
        wanted = body or TriggerRunRequest()
        settings = workspace.settings()
        repo = open_repo(workspace.cwd)
        plan = plan_api_trigger(settings, repo, wanted)
        with context.client(settings) as dbt_cloud:
            try:
                outcome = trigger_through_ledger(
                    repo,
                    plan,
                    dbt_cloud,
                    force=wanted.force,
                    echo=lambda line: log.info("%s", sanitize(line)),
                )
            except DbtCloudError as exc:
                # a repeat whose run dbt Cloud cannot tell about now: the ledger can
                known = None if wanted.force or not exc.transient else _known_run(repo, plan)
                if known is None:
                    raise
                log.info("%s; answering run %s from the ledger", sanitize(str(exc)), known.run_id)
                return TriggerRunResponse(
                    triggered=False, run=RunOut.model_validate(shown(_ledger_run(known).to_json()))
                )
            run = outcome.run
            if not outcome.triggered:
                run = _whole(run, dbt_cloud, repo, plan)
        return TriggerRunResponse(
            triggered=outcome.triggered, run=RunOut.model_validate(shown(run.to_json()))
        )

    @router.get(
        f"{PREFIX}/runs/{{run_id}}",
        response_model=RunOut,
        responses=COMMON_ERRORS,
    )
    def get_run(run_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> RunOut:
        """A run's status and steps."""
        with context.client(workspace.settings()) as dbt_cloud:
            run = dbt_cloud.get_run(run_id)
        return RunOut.model_validate(shown(run.to_json()))

    return router


def _known_run(repo: pygit2.Repository, plan: TriggerPlan) -> TriggerRecord | None:
    """The run the ledger holds for the plan's commit and job: what a repeated trigger-run
    answers with."""
    sha = plan.request.git_sha
    if not sha:
        return None
    with Ledger.for_repo(repo) as ledger:
        record = ledger.find(plan.account_id, plan.job_id, sha)
    return record if record is not None and record.run_id is not None else None


def _whole(run: Run, dbt_cloud: DbtCloudClient, repo: pygit2.Repository, plan: TriggerPlan) -> Run:
    """A repeat answers the existing run as a first trigger-run would have: with its cause
    and job name, which the ledger's quick status lookup leaves out. Asked once more of dbt
    Cloud (with the job, the trigger and the steps); if that fails, the cause is the one the
    ledger recorded, which is the one sent."""
    if run.cause is not None and run.job_name is not None:
        return run
    try:
        return dbt_cloud.get_run(run.id)
    except DbtCloudError as exc:
        log.info("%s; the run's cause comes from the ledger", sanitize(str(exc)))
        known = _known_run(repo, plan)
        cause = known.request.cause if known is not None and known.run_id == run.id else None
        return replace(run, cause=run.cause or cause)


def _ledger_run(record: TriggerRecord) -> Run:
    """A run as the ledger last knew it (dbt Cloud could not be asked): the ids, commit,
    branch, cause and URL it recorded, the last status seen, and how it ended if it did.
    The job name and the steps are dbt Cloud's alone, so they are left out."""
    assert record.run_id is not None
    outcome = record.outcome
    # a run whose status was never seen was queued when dbt Cloud accepted it
    status = RunStatus(record.run_status) if record.run_status is not None else RunStatus.QUEUED
    duration = outcome.duration_s if outcome is not None else None
    return Run(
        id=record.run_id,
        status=status,
        account_id=record.account_id,
        job_id=record.job_id,
        git_sha=record.sha,
        git_branch=record.request.git_branch,
        cause=record.request.cause,
        href=record.run_url,
        finished_at=outcome.finished_at if outcome is not None else None,
        duration=timedelta(seconds=duration) if duration is not None else None,
    )


def plan_api_trigger(
    settings: Settings, repo: pygit2.Repository, wanted: TriggerRunRequest
) -> TriggerPlan:
    """The trigger for a trigger-run body: `plan_manual_trigger`, so it chooses the job and the
    schema override exactly as `datachonk-hook run` does.

    The commit is git_sha, else the tip of git_branch, else HEAD; the branch is git_branch,
    else the branch that ref names (none for a sha).
    """
    if wanted.git_sha is not None:
        ref, where = wanted.git_sha, "git_sha"
    elif wanted.git_branch is not None:
        ref, where = f"refs/heads/{wanted.git_branch}", "git_branch"
    else:
        ref, where = "HEAD", "HEAD"
    steps = wanted.steps_override
    try:
        return plan_manual_trigger(
            settings,
            repo,
            ref,
            job_id=wanted.job_id,
            cause=wanted.cause,
            branch=wanted.git_branch,
            steps_override=tuple(step.strip() for step in steps) if steps else None,
            allow_unpushed=wanted.allow_unpushed,
        )
    except UnpushedCommitError as exc:
        raise UnpushedCommitError(
            str(exc).replace("pass --allow-unpushed", 'send "allow_unpushed": true')
        ) from None
    except GitError:
        # the API's caller names the field, not a ref they never typed
        raise GitError(
            f"{where}: {ref.removeprefix('refs/heads/')!r} names no commit in the repository"
            + (" (commit or fetch it first)" if where != "HEAD" else "")
        ) from None
