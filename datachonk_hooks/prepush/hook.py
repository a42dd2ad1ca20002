"""`datachonk-hook pre-push`: record what a push should trigger, start the waiter, exit 0.

The hook never holds a push up: with nothing to do it returns at once, and the network is
only used after the push, by the detached waiter (or by `datachonk push` in the
foreground). It exits non-zero only for a broken configuration, and only in strict mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode
from datachonk_hooks.push.updates import (
    PushUpdate,
    tracking_refs,
    updates_from_pre_commit,
    updates_from_stdin,
)

if TYPE_CHECKING:
    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.delivery.trigger import TriggerPlan, UpdatePlan

ENV_DRY_RUN = "DATACHONK_DRY_RUN"
ENV_STRICT = "DATACHONK_STRICT"
#: set by `datachonk push`: record only; it delivers in the foreground after `git push`
ENV_FOREGROUND = "DATACHONK_PUSH_FOREGROUND"
#: set by `datachonk push --trigger-dbt-run`: trigger without generated models too
ENV_FORCE = "DATACHONK_FORCE_TRIGGER"
#: set by `datachonk push --cause`
ENV_CAUSE = "DATACHONK_CAUSE"
PREFIX = "datachonk:"
#: seconds the hook waits for a ledger another process has locked. Writers hold it for
#: milliseconds; one holding it longer must not hold the push up (the CLI waits 10 s).
LEDGER_BUSY_TIMEOUT = 2.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class PushInput:
    """The push as the hook sees it."""

    remote_name: str
    remote_url: str
    updates: tuple[PushUpdate, ...]
    source: str  # "pre-commit" or "git"


def read_push(
    env: Mapping[str, str],
    stdin_lines: Callable[[], Sequence[str]],
    repo: pygit2.Repository,
    remote: str | None,
    url: str | None,
) -> PushInput:
    """From pre-commit's variables when it runs us, else from git's stdin and arguments."""
    if any(
        env.get(k) for k in ("PRE_COMMIT_TO_REF", "PRE_COMMIT_SOURCE", "PRE_COMMIT_LOCAL_BRANCH")
    ):
        name = env.get("PRE_COMMIT_REMOTE_NAME") or remote or "origin"
        return PushInput(
            name,
            env.get("PRE_COMMIT_REMOTE_URL") or url or name,
            tuple(updates_from_pre_commit(env, repo)),
            "pre-commit",
        )
    name = remote or "origin"
    return PushInput(name, url or name, tuple(updates_from_stdin(stdin_lines())), "git")


def run_pre_push(
    repo: pygit2.Repository,
    push: PushInput,
    env: Mapping[str, str],
    *,
    dry_run: bool,
    echo: Callable[[str], None],
    echo_json: Callable[[object], None] | None = None,
    git_dry_run: bool | None = None,
) -> int:
    """Plan every update; record and hand over the triggers (or print them for a dry run).

    `git_dry_run`: the push is `git push --dry-run` (default: read from the `git push`
    process), which never lands: the lines say "would" and nothing is recorded. Under
    pre-commit, which shows the hook only the first ref, a `git push` of several refs is
    recorded even when that ref triggers nothing, so the waiter looks at the others.
    """
    from datachonk_hooks.delivery.trigger import plan_push_update
    from datachonk_hooks.prepush.watchdog import set_stage, stand_down

    strict = _truthy(env.get(ENV_STRICT))
    force = _truthy(env.get(ENV_FORCE))
    plans = []
    for update in push.updates:
        set_stage(f"reading {update.remote_ref} at {update.local_sha[:7]}", update.local_sha)
        try:
            plan = plan_push_update(
                repo,
                update,
                push.remote_name,
                env,
                force=force,
                cause=env.get(ENV_CAUSE),
                remote_url=push.remote_url,
            )
            plans.append(plan)
            for note in plan.notes:
                echo(f"{PREFIX} {note}")
        except ConfigError as exc:
            echo(f"{PREFIX} {exc}")
            if strict:
                return ExitCode.USAGE
            echo(
                f"{PREFIX} nothing triggered for {update.remote_ref}; the push goes on. Once the"
                f" file is fixed: `datachonk-hook run --ref {update.local_sha[:12]}`"
            )
    if dry_run:
        _show_dry_run(plans, echo, echo_json)
        return ExitCode.OK
    for configured in sorted({p.other_remote for p in plans if p.other_remote}):
        echo(
            f"{PREFIX} this push goes to {push.remote_name}, but dbt Cloud builds from"
            f" {configured} (deploy.dbt_cloud.remote): nothing triggered"
        )
    if any(p.needs_connect for p in plans):
        echo(
            f"{PREFIX} this push has DataChonk-generated models but no dbt Cloud connection"
            " is configured; run `datachonk-hook connect` to trigger runs on push"
        )
    triggers = [(p.update, p.trigger) for p in plans if p.trigger is not None]
    from datachonk_hooks.prepush import prefilter
    from datachonk_hooks.push.gitpush import git_push_command

    command = git_push_command()
    others = push.source == "pre-commit" and command is not None and command.several_refs
    if not triggers and not others and prefilter.ledger_is_idle():  # nothing to deliver
        return ExitCode.OK
    if git_dry_run is None:
        git_dry_run = command is not None and command.dry_run
    if git_dry_run:
        for _, trigger in triggers:
            if trigger.host is None:
                from datachonk_hooks.settings.config import NoHostError

                echo(
                    f"{PREFIX} {_describe(trigger)} {_for(trigger)} would stay pending:"
                    f" {NoHostError()} (dry run: nothing recorded)"
                )
                continue
            echo(
                f"{PREFIX} {_describe(trigger)} would run {_for(trigger)} once the push lands"
                " (dry run: nothing recorded)"
            )
        return ExitCode.OK
    stand_down()  # the watchdog must not cut the ledger write or the waiter's start
    _hand_over(
        repo,
        push,
        env,
        triggers,
        echo,
        git_pid=command.pid if command is not None else None,
        watch_other_refs=others and not force,
        pushed_tips=_tips(repo, command.sources) if others and command is not None else (),
    )
    return ExitCode.OK


def _tips(repo: pygit2.Repository, sources: Sequence[str]) -> tuple[str, ...]:
    """The commits that refspec sources name (`a1b2c3d`, `HEAD`), skipping what is no commit."""
    tips = []
    for source in sources:
        try:
            tips.append(str(repo.revparse_single(source).peel(pygit2.Commit).id))
        except (KeyError, ValueError, pygit2.GitError):
            continue
    return tuple(dict.fromkeys(tips))


def _describe(trigger: TriggerPlan) -> str:
    return f"dbt Cloud job {trigger.job_id}"


def _for(trigger: TriggerPlan) -> str:
    sha = (trigger.request.git_sha or "")[:7]
    return f"for {sha} ({trigger.request.git_branch})"


def _show_dry_run(
    plans: Sequence[UpdatePlan],
    echo: Callable[[str], None],
    echo_json: Callable[[object], None] | None,
) -> None:
    import json

    if echo_json is not None:
        echo_json({"dry_run": True, "updates": [p.to_json() for p in plans]})
        return
    echo("Dry run: nothing is recorded or sent.")
    if not plans:
        echo("no refs to push")
    for plan in plans:
        update = plan.update
        echo(f"{update.local_ref} {update.local_sha[:7]} -> {update.remote_ref}")
        for model in plan.models:
            names = ", ".join(model.names) or "no model names"
            echo(f"  {model.change:8} {model.path} ({names}; by {model.reason})")
        if plan.trigger is None:
            echo(f"  nothing to trigger: {plan.skipped}")
            continue
        if plan.trigger.url is None:
            from datachonk_hooks.settings.config import NoHostError

            echo(f"  would stay pending: {NoHostError()}")
        else:
            echo(f"  would POST {plan.trigger.url}")
        for line in json.dumps(plan.trigger.request.body(), indent=2).splitlines():
            echo(f"  {line}")


def _hand_over(
    repo: pygit2.Repository,
    push: PushInput,
    env: Mapping[str, str],
    triggers: Sequence[tuple[PushUpdate, TriggerPlan]],
    echo: Callable[[str], None],
    *,
    git_pid: int | None,
    watch_other_refs: bool = False,
    pushed_tips: Sequence[str] = (),
) -> None:
    """Record the triggers as awaiting the push, and start the waiter when there is work.

    First the outcome lines of runs that ended since the last push or command. Each line
    says what will really happen: "will run" only with a token dbt Cloud has not refused;
    without one, or after a refusal, the trigger is recorded and stays pending.
    `watch_other_refs`: record the push without triggers too, for the waiter to look at the
    refs the hook was not shown.
    """
    from datachonk_hooks.delivery.landing import spawn_waiter
    from datachonk_hooks.delivery.ledger import Ledger, TriggerState, ledger_file

    foreground = bool(env.get(ENV_FOREGROUND))
    if not triggers and not watch_other_refs and not ledger_file(repo).exists():
        return
    from datachonk_hooks.prepush.watchdog import time_left

    with Ledger.for_repo(repo, busy_timeout=time_left(LEDGER_BUSY_TIMEOUT)) as ledger:
        from datachonk_hooks.monitor.outcomes import tell

        tell(ledger, echo)  # how earlier runs ended: from the ledger, no network
        # triggers to deliver, or runs nobody follows any more (their waiter was killed):
        # this push's waiter takes them over
        has_backlog = bool(ledger.deliverable() or ledger.unfollowed_runs())
        if not triggers and not has_backlog and not watch_other_refs:
            return
        record = ledger.record_push(
            remote_name=push.remote_name,
            remote_url=push.remote_url,
            git_pid=git_pid,
            tracking_before=tracking_refs(repo, push.remote_name),
            foreground=foreground,
            pushed_tips=pushed_tips,
        )
        waits = False
        for update, trigger in triggers:
            row, created = trigger.add_to(
                ledger,
                source="push",
                push_id=record.id,
                remote_ref=update.remote_ref,
                awaiting_push=True,
            )
            sha, job = row.sha[:7], row.job_id
            if row.state is TriggerState.AWAITING_PUSH:
                waits = True
            if created:
                echo(f"{PREFIX} {_promise(ledger, trigger, env)}")
            elif row.run_id is not None:
                echo(f"{PREFIX} {sha} already triggered run {row.run_id} of job {job}")
            elif row.state is not TriggerState.PUSH_FAILED and row.push_id != record.id:
                echo(f"{PREFIX} {sha} is already queued for job {job} ({row.state})")
    if not foreground and (waits or has_backlog or watch_other_refs):
        from datachonk_hooks.delivery.trigger import without_bad_seconds

        # a bad DATACHONK_* number is a warning here and the default for the waiter
        env = without_bad_seconds(env, lambda warning: echo(f"{PREFIX} {warning}"))
        spawn_waiter(repo, record.id, env)


def _promise(ledger: Ledger, trigger: TriggerPlan, env: Mapping[str, str]) -> str:
    """What the hook can honestly say about a trigger it just recorded. The keyring is not
    opened here (it may ask to be unlocked): `connect` notes a token it keeps there.
    Without a host the trigger is recorded and stays pending (see `TriggerPlan`): the line
    says how to set the host, and where to find it."""
    from datachonk_hooks.settings.credentials import token_hint

    what = f"{_describe(trigger)} {_for(trigger)}"
    if trigger.host is None:
        from datachonk_hooks.settings.config import NoHostError

        return f"{what} stays pending: {NoHostError()}"
    try:
        hint = token_hint(env, trigger.host, trigger.account_id)
    except ConfigError as exc:  # an unsafe or damaged credentials file: the waiter says why
        return f"{what} stays pending: {exc}"
    if not hint.found:
        return f"{what} stays pending: no dbt Cloud token (run `datachonk-hook connect`)"
    status = hint.fingerprint and ledger.token_refused(
        trigger.host, trigger.account_id, hint.fingerprint
    )
    if status:
        return (
            f"dbt Cloud refused the token last time (HTTP {status}): run `datachonk-hook"
            f" doctor`; {what} stays pending until then (`datachonk-hook retry`)"
        )
    return f"{_describe(trigger)} will run {_for(trigger)} once the push lands"


def pre_push_main(
    *,
    remote: str | None,
    url: str | None,
    dry_run: bool,
    as_json: bool,
    env: Mapping[str, str] | None,
    stdin_lines: Callable[[], Sequence[str]],
    echo: Callable[[str], None],
    echo_json: Callable[[object], None],
    started: float | None = None,
    time_limit: float | None = None,
) -> int:
    """The whole hook, never raising: a broken hook must not break anyone's push.

    It gives up after `time_limit` seconds (default `watchdog.HOOK_TIME_LIMIT`) counted
    from `started` (a `time.monotonic()`, default now), says so in one line and exits 0.
    """
    from datachonk_hooks.prepush.watchdog import HOOK_TIME_LIMIT, HookTimeout, Watchdog
    from datachonk_hooks.push.gitrepo import open_repo

    env = dict(os.environ if env is None else env)
    strict = _truthy(env.get(ENV_STRICT))
    dry_run = dry_run or _truthy(env.get(ENV_DRY_RUN))
    try:
        with Watchdog(HOOK_TIME_LIMIT if time_limit is None else time_limit, started=started):
            # git runs hooks in the work tree, but `git --git-dir=... push` from elsewhere
            # only tells the hook through GIT_DIR
            repo = open_repo(Path(env.get("GIT_DIR") or Path.cwd()))
            push = read_push(env, stdin_lines, repo, remote, url)
            return run_pre_push(
                repo,
                push,
                env,
                dry_run=dry_run,
                echo=echo,
                echo_json=echo_json if as_json else None,
            )
    except HookTimeout as exc:
        hint = (
            f" To trigger it by hand: `datachonk-hook run --ref {exc.sha[:12]}`" if exc.sha else ""
        )
        echo(f"{PREFIX} {exc}; nothing was triggered; the push goes on.{hint}")
        return ExitCode.OK
    except DatachonkError as exc:
        echo(f"{PREFIX} {exc}")
        if strict and isinstance(exc, ConfigError):
            return ExitCode.USAGE
        echo(f"{PREFIX} nothing was triggered; the push goes on")
        return ExitCode.OK
    except Exception as exc:  # a bug in the hook must not block the push
        echo(f"{PREFIX} unexpected error, nothing triggered ({type(exc).__name__}: {exc})")
        return ExitCode.OK
