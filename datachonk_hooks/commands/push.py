"""`push`: `git push`, then trigger dbt Cloud for what landed, in the foreground.

The pre-push hook records what the push should trigger, as for a plain `git push`; this
command then delivers those triggers itself and says what happened, and with `--wait` (or
the branch's `wait: true`) watches the runs to their end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from datachonk_hooks.commands.context import AppContext, say, say_err
from datachonk_hooks.commands.output import watch
from datachonk_hooks.errors import ExitCode

if TYPE_CHECKING:
    from datachonk_hooks.delivery.foreground import ForegroundPush


@dataclass(frozen=True)
class PushFlags:
    """The flags of `push` as typed, and the arguments passed on to git."""

    trigger_dbt_run: bool
    cause: str | None
    wait: bool
    timeout: int | None
    git_args: tuple[str, ...]


def push_command(app: AppContext, flags: PushFlags) -> int:
    """Push, deliver what landed, and say it; git's exit code wins when the push failed."""
    from datachonk_hooks.delivery.clients import make_client
    from datachonk_hooks.delivery.foreground import push_and_deliver
    from datachonk_hooks.push.gitpush import PushCommand
    from datachonk_hooks.push.gitrepo import open_repo

    repo = open_repo(app.cwd)
    dry_run = PushCommand(0, ("git", "push", *flags.git_args)).dry_run
    outcome = push_and_deliver(
        repo,
        list(flags.git_args),
        app.env,
        force=flags.trigger_dbt_run,
        cause=flags.cause,
        log=say_err,
    )
    if dry_run:  # the hook said what would run; git pushed nothing
        click.echo("dry run: nothing was pushed, so nothing was triggered", err=True)
        return outcome.git_exit_code
    if outcome.git_exit_code != 0 and not outcome.delivered and not outcome.pending:
        click.echo("git push failed; nothing triggered", err=True)
        return outcome.git_exit_code
    _tell_outcome(outcome, trigger_dbt_run=flags.trigger_dbt_run)
    if outcome.pending:
        return ExitCode.API
    if outcome.git_exit_code != 0:
        return outcome.git_exit_code
    if not outcome.delivered:
        return ExitCode.OK
    settings = app.settings(timeout=flags.timeout)
    if not (flags.wait or settings.target_for_branch(outcome.delivered[0].branch).wait):
        from datachonk_hooks.delivery.landing import spawn_waiter

        for push_id in outcome.push_ids:  # it follows the runs, as after a plain `git push`
            spawn_waiter(repo, push_id, app.env)
        return ExitCode.OK
    worst = ExitCode.OK
    with make_client(settings, app.env) as client:
        for record in outcome.delivered:
            assert record.run_id is not None
            worst = max(worst, watch(client, record.run_id, settings.timeout, False).exit_code)
    return worst


def _tell_outcome(outcome: ForegroundPush, *, trigger_dbt_run: bool) -> None:
    """What the push did: failed refs, nothing to trigger, each run started, each pending."""
    if outcome.git_exit_code != 0:
        click.echo("git push failed for some refs; triggered what landed", err=True)
    elif not outcome.recorded:
        # The hook runs on every push (pre-commit's hook is always_run), and with
        # --trigger-dbt-run it records every pushed branch: it did not run at all.
        click.echo(
            "nothing triggered: no branch was pushed, or the pre-push hook did not run"
            " (install it: `datachonk-hook install`, or `pre-commit install -t pre-push`)"
            if trigger_dbt_run
            else "nothing to trigger: no DataChonk-generated models were pushed",
            err=True,
        )
    for record in outcome.delivered:
        say(
            f"Triggered run {record.run_id} of job {record.job_id} for {record.sha[:7]}"
            f" on {record.branch}"
        )
        if record.run_url:
            say(record.run_url)
    for record in outcome.pending:
        say(f"job {record.job_id} for {record.sha[:7]} stays pending: {record.reason}", err=True)
