"""The one place that turns settings + a commit into a dbt Cloud trigger.

`plan_*` functions decide *what* would be sent (pure, used by `--dry-run` too); the CLI and
the landing waiter then send the plan through the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygit2

from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode
from datachonk_hooks.push.detect import GeneratedModel, detect_generated, project_folders
from datachonk_hooks.push.gitrepo import CommitInfo, branch_of, read_blob, resolve_commit, work_tree
from datachonk_hooks.push.updates import PushUpdate, on_remote, pushed_range
from datachonk_hooks.settings.config import CONFIG_NAME, DetectRules, Settings, find_config_file

if TYPE_CHECKING:
    # Only needed once something is to be triggered: the hook imports this module on every
    # push, and a push without generated models should not pay for HTTP or SQLite modules.
    from datachonk_hooks.cloud.client import DbtCloudClient, RetryPolicy
    from datachonk_hooks.cloud.records import Run
    from datachonk_hooks.cloud.trigger_request import TriggerRequest
    from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord
    from datachonk_hooks.settings.credentials import Token


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
    if not allow_unpushed and not on_remote(repo, settings.remote, commit.sha):
        raise UnpushedCommitError(
            f"{commit.sha[:7]} is not on {settings.remote} yet: push it first (`datachonk push"
            " --trigger-dbt-run`), or pass --allow-unpushed"
        )
    return TriggerPlan(
        host=host,
        account_id=account_id,
        job_id=chosen,
        request=request,
        route=route,
    )


#: seconds to wait for dbt Cloud to answer one request (the client's read timeout)
ENV_HTTP_TIMEOUT = "DATACHONK_HTTP_TIMEOUT"
#: seconds one request may spend in retries (5xx, 429, unreachable) before it gives up
ENV_RETRY_BUDGET = "DATACHONK_RETRY_BUDGET"


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 86400:  # also refuses nan and inf
        raise ConfigError(f"{name}: expected a number of seconds above 0, got {raw[:40]!r}")
    return value


#: every DATACHONK_* variable holding seconds (the landing timeout is read by landing.py)
SECONDS_VARIABLES = (ENV_HTTP_TIMEOUT, ENV_RETRY_BUDGET, "DATACHONK_LANDING_TIMEOUT")


def check_seconds_env(env: Mapping[str, str]) -> None:
    """Raise a one-line ConfigError for the first invalid DATACHONK_* seconds value.

    For the CLI (exit 2): someone is there to fix the typo, and a default would hide it.
    """
    for name in SECONDS_VARIABLES:
        _seconds(env, name)


def without_bad_seconds(env: Mapping[str, str], warn: Callable[[str], None]) -> dict[str, str]:
    """`env` without its invalid DATACHONK_* seconds values, each dropped with a warning.

    For the hook and the waiter: they run unattended, so a typo in the environment must
    not stop a trigger (nor crash the waiter); the default applies and the log says why.
    """
    kept = dict(env)
    for name in SECONDS_VARIABLES:
        try:
            _seconds(env, name)
        except ConfigError as exc:
            warn(f"warning: {exc}; using the default")
            kept.pop(name, None)
    return kept


def client_options(env: Mapping[str, str], retry: RetryPolicy | None = None) -> dict[str, Any]:
    """Timeouts and retry policy for a client: `retry` (or the default), with the read
    timeout and retry budget from the environment when set there.

    Slow networks need a longer read timeout than 30 s, and scripts (and the reliability
    suite) a shorter one; a bad value is a ConfigError, never a silent default.
    """
    from dataclasses import replace

    from datachonk_hooks.cloud.client import RetryPolicy, Timeouts

    options: dict[str, Any] = {}
    read = _seconds(env, ENV_HTTP_TIMEOUT)
    if read is not None:
        options["timeouts"] = Timeouts(connect=min(Timeouts().connect, read), read=read)
    budget = _seconds(env, ENV_RETRY_BUDGET)
    if budget is not None:
        options["retry"] = replace(retry or RetryPolicy(), budget=budget)
    elif retry is not None:
        options["retry"] = retry
    return options


def new_client(
    host: str,
    account_id: int,
    env: Mapping[str, str],
    *,
    token: Token | None = None,
    retry: RetryPolicy | None = None,
) -> DbtCloudClient:
    """The one way a client is made: the token from the environment or the store unless
    given, the timeouts and retry budget as `client_options` says."""
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.settings.credentials import resolve_token

    if token is None:
        token = resolve_token(env, host=host, account_id=account_id)
    return DbtCloudClient(host, account_id, token, **client_options(env, retry))


def make_client(settings: Settings, env: Mapping[str, str]) -> DbtCloudClient:
    """A client for the configured account; a ConfigError when the account or the host is
    not configured (the account first: without one, `connect` sets up both)."""
    account_id = settings.require_account_id()
    return new_client(settings.require_host(), account_id, env)


# ----------------------------------------------------------------------------- pushes


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


def settings_text_at(repo: pygit2.Repository, commit: pygit2.Commit) -> tuple[str, str] | None:
    """(text, label) of datachonk.yaml in the commit: at the root, else by a dbt project."""

    # The root first: walking the tree for dbt projects costs tens of ms in a large repository.
    def folders() -> Iterator[str]:
        yield ""
        yield from (f for f in project_folders(commit.tree) if f)

    for folder in folders():
        path = f"{folder}/{CONFIG_NAME}" if folder else CONFIG_NAME
        data = _config_blob(repo, commit, path)
        if data is not None:
            label = f"{path}@{str(commit.id)[:7]}"
            try:
                return data.decode("utf-8"), label
            except UnicodeDecodeError:
                raise ConfigError(f"{label}: not UTF-8 text; save the file as UTF-8") from None
    return None


def _config_blob(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> bytes | None:
    """The file's bytes in the commit (None: no such file), or a ConfigError when it is over
    `limits.MAX_FILE_BYTES`: judged from the object header, before the blob is read."""
    from datachonk_hooks.push.limits import MAX_FILE_BYTES, blob_size, too_large

    try:
        entry = commit.tree[path]
    except KeyError:
        return None
    if not isinstance(entry, pygit2.Blob):
        return None
    size = blob_size(repo, entry.id)
    if size > MAX_FILE_BYTES:
        raise ConfigError(too_large(f"{path}@{str(commit.id)[:7]}", size))
    return read_blob(commit, path)


class _PushedConfig:
    """datachonk.yaml as pushed, read once: the commit's file, else the work tree's."""

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit) -> None:
        self.found = settings_text_at(repo, commit)
        top = work_tree(repo)
        self.path = None if self.found is not None else find_config_file(top, top)

    def default_rules(self) -> DetectRules | None:
        """The default detection rules when the file cannot hold custom ones, else None.

        The hook runs on every push; a datachonk.yaml that never mentions `detect` uses the
        default rules, so the YAML parser is only loaded once something was found.
        """
        if self.found is not None:
            text = self.found[0]
        else:
            from datachonk_hooks.push.limits import MAX_FILE_BYTES

            try:
                if self.path and self.path.stat().st_size > MAX_FILE_BYTES:
                    return None  # `load` says it is too large
                text = self.path.read_text(encoding="utf-8", errors="replace") if self.path else ""
            except OSError:
                text = ""
        if "detect" not in text:
            return DetectRules()
        from datachonk_hooks.prepush import (
            prefilter,  # rules parsed from this text by an earlier push
        )

        known = prefilter.known_rules(text)
        return None if known is None else DetectRules(*known)

    def load(self, env: Mapping[str, str]) -> Settings:
        from datachonk_hooks.prepush import prefilter
        from datachonk_hooks.settings.config import load_settings, load_settings_file

        if self.found is not None:
            text, label = self.found
            settings = load_settings(text, source=label, env=env)
            if "detect" in text:  # so the next push of this file need not parse it
                prefilter.learn_rules(text, settings.detect.marker, settings.detect.trailer)
            return settings
        return load_settings_file(self.path, env=env)


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


def settings_at(repo: pygit2.Repository, commit: pygit2.Commit, env: Mapping[str, str]) -> Settings:
    """Settings as pushed: datachonk.yaml from the commit, else the work tree's file."""
    return _PushedConfig(repo, commit).load(env)


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
    config = _PushedConfig(repo, pushed.tip)
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
    plan = TriggerPlan(
        settings.host, settings.require_account_id(), target.job_id, request, route=target.source
    )
    return UpdatePlan(update, models, plan, settings, notes=tuple(notes))


# ----------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class Delivery:
    """The outcome of trying to deliver one ledger trigger."""

    record: TriggerRecord
    run: Run | None = None
    error: DatachonkError | None = None
    #: another process holds it, or it was already delivered
    skipped: bool = False
    #: the run already existed in dbt Cloud (started elsewhere, or by a send whose answer
    #: was lost) and was taken as this trigger's
    adopted: bool = False


@dataclass
class ClientPool:
    """One client per (host, account), created on first use, all closed together."""

    env: Mapping[str, str]
    factory: Callable[[str, int, Mapping[str, str]], DbtCloudClient] | None = None
    #: the host configured now, for triggers recorded while none was (see `host_for`);
    #: called only when such a trigger is sent. Default: DBT_CLOUD_HOST alone.
    configured_host: Callable[[], str | None] | None = None
    _clients: dict[tuple[str, int], DbtCloudClient] = field(default_factory=dict)

    @classmethod
    def of(cls, client: DbtCloudClient) -> ClientPool:
        """A pool holding one ready client (its owner closes it); its host is the
        configured one."""
        pool = cls(env={}, configured_host=lambda: client.host)
        pool._clients[(client.host, client.account_id)] = client
        return pool

    def host_for(self, record: TriggerRecord) -> str:
        """Where to send `record`: its recorded host, else the host configured now.

        A push made while no host was configured records its trigger with an empty host
        rather than guessing one (there is no default host any more); it goes to whatever
        host is configured when it is finally sent, so fixing datachonk.yaml (or setting
        DBT_CLOUD_HOST) and running `retry` delivers it. Still none: a NoHostError, which
        keeps the trigger pending with that message as its reason, and nothing is sent.
        """
        if record.host:
            return record.host
        if self.configured_host is not None:
            host = self.configured_host()
        else:
            from datachonk_hooks.settings.config import load_settings_file

            host = load_settings_file(None, env=self.env).host
        if host is None:
            from datachonk_hooks.settings.config import NoHostError

            raise NoHostError()
        return host

    def get(self, host: str, account_id: int) -> DbtCloudClient:
        key = (host, account_id)
        if key not in self._clients:
            self._clients[key] = (self.factory or new_client)(host, account_id, self.env)
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


#: seconds a trigger whose send got no answer is only looked up, never sent again: dbt Cloud
#: may create the run that late after the POST (at least twice the read timeout)
QUIET_PERIOD = 120.0


def deliver(
    ledger: Ledger, trigger_id: int, pool: ClientPool, *, lookup_first: bool = True
) -> Delivery:
    """Send one pending trigger, exactly once, and record what happened.

    The ledger claim makes this process the only sender. Before the first POST, dbt Cloud is
    asked whether the job already has a run for the commit (another clone, CI, an earlier
    clone of this repository started it); that run is adopted instead of a second one
    (`lookup_first` False, as for `--force`, skips this). A trigger that was attempted before
    (a crash, a lost answer) is looked up among every run of the job since its first attempt
    and adopted when found. When an earlier send ended without an answer (or its sender died
    mid-send), dbt Cloud may still create that run: the lookup waits for that send's read
    timeout to pass, and for QUIET_PERIOD (or twice the read timeout, if longer) after it
    the trigger is only looked up, never sent again. A trigger recorded without a host goes
    to the host configured now (`ClientPool.host_for`); with none it stays pending, sent
    nowhere, like one without a token.
    """
    from datachonk_hooks.cloud.errors import (
        AuthenticationError,
        DbtCloudError,
        PermissionDeniedError,
        UnknownOutcomeError,
    )
    from datachonk_hooks.delivery.ledger import TriggerState, as_utc

    before = ledger.get(trigger_id)
    record = ledger.claim(trigger_id)
    if record is None:
        current = ledger.get(trigger_id)
        assert current is not None
        return Delivery(current, skipped=True)
    sent_at = record.claimed_at or datetime.now(UTC)
    unknown = record.unknown_since
    if before is not None and before.state is TriggerState.SENDING:  # its sender died
        unknown = unknown or before.claimed_at
    adopted = False
    posted_at: datetime | None = None
    host = record.host
    try:
        host = pool.host_for(record)  # no host configured: pending, nothing sent anywhere
        client = pool.get(host, record.account_id)
        run = None
        since = record.first_attempt_at
        if record.attempts > 1 and since is not None:
            run = client.find_run(record.job_id, record.request, since=since)
            quiet = max(QUIET_PERIOD, 2 * client.timeouts.read)
            if run is None and unknown is not None:
                # the unanswered POST may still be on its way: once its read timeout is over
                # dbt Cloud has usually created the run, so wait that long and look again
                answered_by = as_utc(unknown) + timedelta(seconds=client.timeouts.read)
                wait = (answered_by - datetime.now(UTC)).total_seconds()
                if 0 < wait <= client.timeouts.read:
                    import time

                    time.sleep(wait)
                    run = client.find_run(record.job_id, record.request, since=since)
                until = as_utc(unknown) + timedelta(seconds=quiet)
                if run is None and datetime.now(UTC) < until:
                    raise UnknownOutcomeError(
                        f"an earlier send of job {record.job_id} for {record.sha[:7]} got no"
                        " answer and dbt Cloud shows no run for it yet; it is only looked up"
                        f" until {until:%H:%M:%S} UTC, then sent again if none appeared"
                    )
            adopted = run is not None
        elif lookup_first and record.sha:
            run = client.find_run_for_sha(record.job_id, record.sha)
            adopted = run is not None
        if run is None:
            posted_at = datetime.now(UTC)  # the quiet period counts from the last POST
            run = client.trigger_run(record.job_id, record.request, since=since)
    except (DbtCloudError, ConfigError) as exc:
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            ledger.note_token_refused(
                host, record.account_id, exc.status or 401, client.token.fingerprint
            )
        no_answer = isinstance(exc, UnknownOutcomeError)
        pending = ledger.mark_pending(
            trigger_id, str(exc), unknown_since=(posted_at or unknown) if no_answer else None
        )
        return Delivery(pending, error=exc)
    except BaseException:
        ledger.mark_pending(
            trigger_id,
            "interrupted while sending; will be looked up first",
            unknown_since=posted_at or unknown or sent_at,
        )
        raise
    if not record.host:  # recorded without a host: note where its run is
        ledger.record_host(trigger_id, host)
    record = ledger.mark_triggered(
        trigger_id, run_id=run.id, run_url=run.href, run_status=int(run.status)
    )
    ledger.note_token_accepted(host, record.account_id)
    return Delivery(record, run, adopted=adopted)


class BusyElsewhereError(DatachonkError):
    """Another process kept sending this trigger for longer than we waited for it."""

    exit_code = ExitCode.TIMEOUT


class AwaitingPushError(DatachonkError):
    """The commit's trigger waits for its push to land; the waiter will send it (exit 2)."""


@dataclass(frozen=True)
class ManualTrigger:
    """The run a manual trigger points at, and whether this call started it."""

    run: Run
    triggered: bool


def trigger_through_ledger(
    repo: pygit2.Repository,
    plan: TriggerPlan,
    client: DbtCloudClient,
    *,
    force: bool,
    echo: Callable[[str], None],
    source: str = "manual",
) -> ManualTrigger:
    """Trigger `plan` unless its commit already started a run of the job (then return that).

    Goes through the ledger like the hook does, so a push and a manual run of the same
    commit start one run; a failed delivery stays pending for `datachonk-hook retry`.
    """
    from datachonk_hooks.delivery.ledger import Ledger, TriggerState

    sha = plan.request.git_sha or ""
    with Ledger.for_repo(repo) as ledger:
        row, created = plan.add_to(ledger, source=source, force=force)
        if not created and row.run_id is not None:
            echo(
                f"{sha[:7]} already triggered run {row.run_id} of job {plan.job_id};"
                " use --force to trigger it again"
            )
            return ManualTrigger(
                client.get_run(row.run_id, related=("job", "trigger")), triggered=False
            )
        if row.state is TriggerState.AWAITING_PUSH:
            raise AwaitingPushError(
                f"{sha[:7]} is waiting for its push to land and will be triggered then (see"
                " `datachonk-hook history`); use --force to trigger it now anyway"
            )
        result = deliver(ledger, row.id, ClientPool.of(client), lookup_first=not force)
        if result.skipped:  # the landing waiter (say) is sending it: its run is ours too
            result = _await_other_sender(ledger, row.id, client, echo)
            if result.run is not None and result.skipped:
                return ManualTrigger(result.run, triggered=False)
    if result.skipped:
        raise BusyElsewhereError(
            f"{sha[:7]} is still being sent to dbt Cloud by another process; see"
            " `datachonk-hook history`"
        )
    if result.error is not None:
        echo(f"the trigger stays pending ({sha[:7]}, job {plan.job_id}); `datachonk-hook retry`")
        raise result.error
    assert result.run is not None
    branch = f" on {plan.request.git_branch}" if plan.request.git_branch else ""
    if result.adopted:
        echo(
            f"{sha[:7]} already has run {result.run.id} of job {plan.job_id} in dbt Cloud"
            " (started elsewhere); not triggered again (use --force to)"
        )
        return ManualTrigger(result.run, triggered=False)
    echo(f"Triggered run {result.run.id} of job {plan.job_id} for {sha[:7]}{branch}")
    return ManualTrigger(result.run, triggered=True)


def _await_other_sender(
    ledger: Ledger, trigger_id: int, client: DbtCloudClient, echo: Callable[[str], None]
) -> Delivery:
    """Wait (bounded by one sender's retry budget) while another process sends a trigger.

    Its run is then reported as this call's (`skipped` with `run` set); if it gave up, this
    process sends it once more (looking the run up first, as for any second attempt).
    """
    import time

    from datachonk_hooks.delivery.ledger import TriggerState

    deadline = time.monotonic() + client.retry.budget + client.timeouts.read
    echo("another process is sending this trigger to dbt Cloud right now; waiting for it")
    while time.monotonic() < deadline:
        record = ledger.get(trigger_id)
        assert record is not None
        if record.run_id is not None:
            echo(f"{record.sha[:7]} triggered run {record.run_id} of job {record.job_id}")
            return Delivery(
                record, client.get_run(record.run_id, related=("job", "trigger")), skipped=True
            )
        if record.state is not TriggerState.SENDING:
            return deliver(ledger, trigger_id, ClientPool.of(client))
        time.sleep(0.2)
    current = ledger.get(trigger_id)
    assert current is not None
    return Delivery(current, skipped=True)


def remember_run_status(repo_dir: Path, run: Run) -> None:
    """Note a watched run's status in the ledger when the run is one we triggered; an end
    seen here counts as told (the watcher saw it).

    Best effort: watching works outside a repository and with a broken ledger too.
    """
    from datachonk_hooks.delivery.ledger import Ledger, ledger_file
    from datachonk_hooks.push.gitrepo import open_repo

    try:
        repo = open_repo(repo_dir)
        if not ledger_file(repo).exists():
            return
        from datachonk_hooks.monitor.outcomes import note_run

        with Ledger.for_repo(repo) as ledger:
            for record in ledger.triggers_for_run(run.id):
                # the person watching saw it end: no outcome line for it later
                note_run(ledger, record.id, run, told=True)
    except DatachonkError:
        return


def cancel_superseded(
    ledger: Ledger, newer: TriggerRecord, client: DbtCloudClient
) -> list[TriggerRecord]:
    """Cancel the older runs this package started for the same branch and job.

    Only runs the ledger knows as ours are touched, and only those still queued or running;
    runs someone else started, or that already ended, are left alone.
    """
    from datachonk_hooks.delivery.ledger import TriggerState
    from datachonk_hooks.monitor.outcomes import note_run

    cancelled = []
    for older in ledger.history(500):
        if (
            older.id >= newer.id
            or older.state is not TriggerState.TRIGGERED
            or older.run_id is None
            or (older.host, older.account_id, older.job_id, older.branch)
            != (newer.host, newer.account_id, newer.job_id, newer.branch)
        ):
            continue
        run = client.get_run(older.run_id, related=())
        if not run.is_complete:
            run = client.cancel_run(older.run_id)
            cancelled.append(older)
        # cancelled on purpose (the waiter's log says so): no "re-trigger if needed" line
        note_run(ledger, older.id, run, told=True)
    return cancelled
