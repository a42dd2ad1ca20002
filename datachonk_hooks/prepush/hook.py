"""`datachonk-hook pre-push`: record what a push should trigger, start the waiter, exit 0.

The hook never holds a push up: with nothing to do it returns at once, and the network is
only used after the push, by the detached waiter (or by `datachonk push` in the
foreground). It exits non-zero only for a broken configuration, and only in strict mode.
This module reads the push and plans each ref; `handover` records the result and starts
the waiter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode
from datachonk_hooks.prepush.handover import PREFIX, describe, for_commit, hand_over
from datachonk_hooks.prepush.switches import (
    ENV_CAUSE,
    ENV_DRY_RUN,
    ENV_FORCE,
    ENV_STRICT,
    truthy,
)
from datachonk_hooks.push.updates import PushUpdate, updates_from_pre_commit, updates_from_stdin

if TYPE_CHECKING:
    from datachonk_hooks.delivery.planning import TriggerPlan, UpdatePlan

__all__ = [
    "PushInput",
    "pre_push_main",
    "read_push",
    "run_pre_push",
]


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
    from datachonk_hooks.prepush.watchdog import stand_down

    force = truthy(env.get(ENV_FORCE))
    plans = _plan_updates(repo, push, env, echo, force=force)
    if plans is None:
        return ExitCode.USAGE
    if dry_run:
        _show_dry_run(plans, echo, echo_json)
        return ExitCode.OK
    _say_why_not(plans, push, echo)
    triggers = [(p.update, p.trigger) for p in plans if p.trigger is not None]
    from datachonk_hooks.prepush import fast_ledger
    from datachonk_hooks.push.gitpush import git_push_command

    command = git_push_command()
    others = push.source == "pre-commit" and command is not None and command.several_refs
    if not triggers and not others and fast_ledger.ledger_is_idle():  # nothing to deliver
        return ExitCode.OK
    if git_dry_run is None:
        git_dry_run = command is not None and command.dry_run
    if git_dry_run:
        _show_git_dry_run([trigger for _, trigger in triggers], echo)
        return ExitCode.OK
    stand_down()  # the watchdog must not cut the ledger write or the waiter's start
    hand_over(
        repo,
        push.remote_name,
        push.remote_url,
        env,
        triggers,
        echo,
        git_pid=command.pid if command is not None else None,
        watch_other_refs=others and not force,
        pushed_tips=_tips(repo, command.sources) if others and command is not None else (),
    )
    return ExitCode.OK


def _plan_updates(
    repo: pygit2.Repository,
    push: PushInput,
    env: Mapping[str, str],
    echo: Callable[[str], None],
    *,
    force: bool,
) -> list[UpdatePlan] | None:
    """The plan of every pushed ref, each note echoed; a ref whose configuration is broken
    is skipped with a line saying so, or, in strict mode, None (the hook exits 2)."""
    from datachonk_hooks.delivery.planning import plan_push_update
    from datachonk_hooks.prepush.watchdog import set_stage

    strict = truthy(env.get(ENV_STRICT))
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
                return None
            echo(
                f"{PREFIX} nothing triggered for {update.remote_ref}; the push goes on. Once the"
                f" file is fixed: `datachonk-hook run --ref {update.local_sha[:12]}`"
            )
    return plans


def _say_why_not(plans: Sequence[UpdatePlan], push: PushInput, echo: Callable[[str], None]) -> None:
    """The lines for generated models that trigger nothing: a push to another remote than
    the one dbt Cloud builds from, or no dbt Cloud connection."""
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


def _show_git_dry_run(triggers: Sequence[TriggerPlan], echo: Callable[[str], None]) -> None:
    """What `git push --dry-run` would have triggered; nothing is recorded."""
    for trigger in triggers:
        if trigger.host is None:
            from datachonk_hooks.settings.records import NoHostError

            echo(
                f"{PREFIX} {describe(trigger)} {for_commit(trigger)} would stay pending:"
                f" {NoHostError()} (dry run: nothing recorded)"
            )
            continue
        echo(
            f"{PREFIX} {describe(trigger)} would run {for_commit(trigger)} once the push lands"
            " (dry run: nothing recorded)"
        )


def _tips(repo: pygit2.Repository, sources: Sequence[str]) -> tuple[str, ...]:
    """The commits that refspec sources name (`a1b2c3d`, `HEAD`), skipping what is no commit."""
    tips = []
    for source in sources:
        try:
            tips.append(str(repo.revparse_single(source).peel(pygit2.Commit).id))
        except (KeyError, ValueError, pygit2.GitError):
            continue
    return tuple(dict.fromkeys(tips))


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
            from datachonk_hooks.settings.records import NoHostError

            echo(f"  would stay pending: {NoHostError()}")
        else:
            echo(f"  would POST {plan.trigger.url}")
        for line in json.dumps(plan.trigger.request.body(), indent=2).splitlines():
            echo(f"  {line}")


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
    strict = truthy(env.get(ENV_STRICT))
    dry_run = dry_run or truthy(env.get(ENV_DRY_RUN))
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
