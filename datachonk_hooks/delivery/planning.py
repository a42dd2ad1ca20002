"""Planning a trigger: settings + a commit (pushed, or named by hand) -> a `TriggerPlan`.

Plans decide *what* would be sent and nothing else (no network, no ledger), so `--dry-run`
shows exactly what a real run sends; `trigger` then records and sends them. The hook plans
every pushed ref, so the cloud and cause modules are imported only once a trigger is due.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pygit2

from datachonk_hooks.delivery.pushed_config import PushedConfig
from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode
from datachonk_hooks.push.detect import GeneratedModel, detect_generated
from datachonk_hooks.push.gitrepo import CommitInfo, branch_of, resolve_commit
from datachonk_hooks.push.updates import PushRange, PushUpdate, on_remote, pushed_range
from datachonk_hooks.settings.records import JobTarget, Settings

if TYPE_CHECKING:
    from datachonk_hooks.cloud.trigger_request import TriggerRequest
    from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord


@dataclass(frozen=True)
class TriggerPlan:
    """A trigger ready to send: where, which job, and the exact body.

    `host` None: a push planned while no host was configured. It is recorded all the same
    (with an empty host in the ledger) and stays pending; `deliver` sends it to the host
    configured when it is sent (`ClientPool.host_for`), and the ledger then notes that host.
    """

    host: str | None
    account_id: int
    job_id: int
    request: TriggerRequest
    #: which setting chose the job: "--job-id", "job_id" or "jobs[N] (branch GLOB)"
    route: str = "job_id"

    @property
    def url(self) -> str | None:
        """Where the trigger is POSTed; None while no host is configured."""
        if self.host is None:
            return None
        return f"{self.host}/api/v2/accounts/{self.account_id}/jobs/{self.job_id}/run/"

    def add_to(
        self,
        ledger: Ledger,
        *,
        source: str,
        push_id: int | None = None,
        remote_ref: str | None = None,
        awaiting_push: bool = False,
        force: bool = False,
    ) -> tuple[TriggerRecord, bool]:
        """Record this trigger in the ledger: (its row, whether it is new); see `add_trigger`."""
        return ledger.add_trigger(
            host=self.host or "",  # "": no host yet; `deliver` takes the one configured then
            account_id=self.account_id,
            job_id=self.job_id,
            request=self.request,
            source=source,
            push_id=push_id,
            remote_ref=remote_ref,
            awaiting_push=awaiting_push,
            force=force,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "account_id": self.account_id,
            "job_id": self.job_id,
            "route": self.route,
            "method": "POST",
            "url": self.url,
            "body": self.request.body(),
        }


class UnpushedCommitError(DatachonkError):
    """A manual trigger for a commit the remote dbt Cloud builds from does not have (exit 2)."""

    exit_code = ExitCode.USAGE


def literal_cause(text: str) -> str:
    """A cause given on the command line: one line, at most 255 characters, not empty."""
    from datachonk_hooks.push.cause import clean, truncate

    cause = truncate(clean(text))
    if not cause:
        raise ConfigError("--cause: the cause must not be empty")
    return cause


def require_pushed(repo: pygit2.Repository, remote: str, sha: str) -> None:
    """Refuse a commit no remote-tracking ref of `remote` reaches: dbt Cloud clones from
    there, and its run would fail at the clone step."""
    if not on_remote(repo, remote, sha):
        raise UnpushedCommitError(
            f"{sha[:7]} is not on {remote} yet: push it first (`datachonk push"
            " --trigger-dbt-run`), or pass --allow-unpushed"
        )


def plan_manual_trigger(
    settings: Settings,
    repo: pygit2.Repository,
    ref: str,
    *,
    job_id: int | None = None,
    cause: str | None = None,
    branch: str | None = None,
    steps_override: tuple[str, ...] | None = None,
    allow_unpushed: bool = False,
) -> TriggerPlan:
    """The trigger for the commit at `ref` (`datachonk-hook run`, the local API).

    The branch is `branch` when given, else the one `ref` names. The job is `job_id`, else
    `Settings.manual_job` chooses. A commit the configured remote does not have is refused
    (dbt Cloud clones from there and its run would fail at the clone step) unless
    `allow_unpushed`.
    """
    from datachonk_hooks.cloud.trigger_request import TriggerRequest
    from datachonk_hooks.push.cause import CauseContext, build_cause

    commit = CommitInfo.of(resolve_commit(repo, ref))
    branch = branch if branch is not None else branch_of(repo, ref)
    context = CauseContext(
        subject=commit.subject, sha=commit.sha, branch=branch, author=commit.author
    )
    account_id = settings.require_account_id()
    host = settings.require_host()
    target = settings.target_for_branch(branch)
    request = TriggerRequest(
        cause=literal_cause(cause) if cause is not None else build_cause(context, settings.cause),
        git_sha=commit.sha,
        git_branch=branch,
        steps_override=steps_override,
        schema_override=target.schema_override if job_id is None else None,
    )
    chosen, route = settings.manual_job(branch, job_id)
    if not allow_unpushed:
        require_pushed(repo, settings.remote, commit.sha)
    return TriggerPlan(
        host=host,
        account_id=account_id,
        job_id=chosen,
        request=request,
        route=route,
    )


@dataclass(frozen=True)
class UpdatePlan:
    """What one pushed ref leads to: the generated models found and the trigger, if any."""

    update: PushUpdate
    models: tuple[GeneratedModel, ...] = ()
    trigger: TriggerPlan | None = None
    settings: Settings | None = None
    #: why nothing is triggered (None when `trigger` is set)
    skipped: str | None = None
    #: the repository has generated models but no dbt Cloud connection
    needs_connect: bool = False
    #: the remote dbt Cloud builds from, when the push went to another one
    other_remote: str | None = None
    #: one line each for the user: files of the push too large to read, say
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "local_ref": self.update.local_ref,
            "remote_ref": self.update.remote_ref,
            "sha": self.update.local_sha,
            "models": [
                {"path": m.path, "names": list(m.names), "change": m.change, "reason": m.reason}
                for m in self.models
            ],
            "trigger": self.trigger.to_json() if self.trigger else None,
            "skipped": self.skipped,
        }


def is_build_remote(
    repo: pygit2.Repository, configured: str, remote: str, remote_url: str | None = None
) -> bool:
    """Whether a push to `remote` (a name, or a URL when pushed to one) reaches the remote
    dbt Cloud builds from: the same name, or a URL of that remote (fetch or push URL, in any
    spelling of the same repository)."""
    from datachonk_hooks.push.gitrepo import same_repository

    if remote == configured:
        return True
    try:
        found = repo.remotes[configured]
        urls = [url for url in (found.url, found.push_url) if url]
    except (KeyError, ValueError, pygit2.GitError):
        return False
    pushed = [url for url in (remote, remote_url) if url]
    base = repo.workdir or repo.path
    return any(same_repository(url, other, base) for url in urls for other in pushed)


def plan_push_update(
    repo: pygit2.Repository,
    update: PushUpdate,
    remote: str,
    env: Mapping[str, str],
    *,
    force: bool = False,
    cause: str | None = None,
    remote_tips: Iterable[str] | None = None,
    remote_url: str | None = None,
) -> UpdatePlan:
    """Decide what `update` triggers: detection on the pushed range, then the job.

    `force` (`datachonk push --trigger-dbt-run`) triggers even without generated models and
    with `auto_trigger: false`. Only a push to the remote dbt Cloud builds from
    (`deploy.dbt_cloud.remote`, by name or by URL) triggers. Without a configured host the
    trigger is planned all the same, with host None: the push is recorded, nothing is sent
    anywhere, and it stays pending until a host is configured (see `TriggerPlan`).
    """
    if update.is_delete:
        return UpdatePlan(update, skipped="a deleted ref")
    branch = update.branch
    if branch is None:
        return UpdatePlan(update, skipped=f"{update.remote_ref} is not a branch")
    pushed = pushed_range(repo, update, remote, remote_tips)
    if pushed is None:
        return UpdatePlan(update, skipped=f"{update.local_sha[:7]} is not a commit")
    config = PushedConfig(repo, pushed.tip)
    rules = config.default_rules()
    settings: Settings | None = None
    if rules is None:
        settings = config.load(env)
        rules = settings.detect
    notes: list[str] = []
    models = tuple(detect_generated(repo, pushed.tip, pushed.commits, pushed.base, rules, notes))
    if not models and not force:
        skipped = "no DataChonk-generated models in the push"
        return UpdatePlan(update, skipped=skipped, notes=tuple(notes))
    settings = settings or config.load(env)
    if not is_build_remote(repo, settings.remote, remote, remote_url):
        return UpdatePlan(
            update,
            models,
            settings=settings,
            skipped=f"pushed to {remote}; dbt Cloud builds from {settings.remote}",
            other_remote=settings.remote,
        )
    if not settings.configured:
        return UpdatePlan(
            update,
            models,
            settings=settings,
            skipped="no dbt Cloud connection is configured",
            needs_connect=bool(models),
        )
    target = settings.target_for_branch(branch)
    if not target.auto_trigger and not force:
        where = "" if target.source == "job_id" else f" ({target.source})"
        return UpdatePlan(
            update, models, settings=settings, skipped=f"auto_trigger is false{where}"
        )
    if target.job_id is None:
        why = (
            f"{target.source} says never trigger for branch {branch}"
            if target.source != "job_id"
            else f"no job for branch {branch}"
        )
        return UpdatePlan(update, models, settings=settings, skipped=why)
    plan = _push_trigger(settings, target, target.job_id, pushed, models, branch, cause)
    return UpdatePlan(update, models, plan, settings, notes=tuple(notes))


def _push_trigger(
    settings: Settings,
    target: JobTarget,
    job_id: int,
    pushed: PushRange,
    models: tuple[GeneratedModel, ...],
    branch: str,
    cause: str | None,
) -> TriggerPlan:
    """The trigger of a pushed ref that has a job: its cause, and the changed models as
    steps_override when `select_changed` asks for that."""
    from datachonk_hooks.cloud.trigger_request import TriggerRequest
    from datachonk_hooks.push.cause import CauseContext, build_cause

    tip = CommitInfo.of(pushed.tip)
    names = tuple(dict.fromkeys(name for m in models for name in m.names))
    context = CauseContext(
        subject=tip.subject,
        sha=tip.sha,
        branch=branch,
        author=tip.author,
        commits=max(1, len(pushed.commits)),
        models=names,
    )
    # Deleted models cannot be selected; dbt would only warn about them.
    selectable = tuple(dict.fromkeys(n for m in models if m.change != "deleted" for n in m.names))
    steps = (f"dbt build --select {' '.join(f'{n}+' for n in selectable)}",)
    request = TriggerRequest(
        cause=literal_cause(cause) if cause else build_cause(context, settings.cause),
        git_sha=tip.sha,
        git_branch=branch,
        steps_override=steps if target.select_changed and selectable else None,
        schema_override=target.schema_override,
    )
    return TriggerPlan(
        settings.host, settings.require_account_id(), job_id, request, route=target.source
    )
