"""Command-line edge: parse flags, call one function, map domain errors to exit codes.

`datachonk-hook` and `datachonk` are the same click group. No traceback reaches the user:
domain errors become `Error: <one line>` with their documented exit code, an unexpected
crash becomes exit 70 with the traceback saved to a file. Lines that carry text from outside
(dbt Cloud's words, branch names, causes, ledger reasons) are printed through `_say`, which
passes them through the one sanitizer first.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from datachonk_hooks import __version__
from datachonk_hooks.errors import DatachonkError, ExitCode
from datachonk_hooks.sanitize import sanitize

if TYPE_CHECKING:
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.cloud.records import Run
    from datachonk_hooks.delivery.ledger import TriggerRecord
    from datachonk_hooks.monitor.watcher import WatchResult

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    """What every command shares: the environment and where datachonk.yaml is."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    config_path: Path | None = None
    cwd: Path = field(default_factory=Path.cwd)

    def settings(self, *, job_id: int | None = None, timeout: int | None = None) -> Any:
        from datachonk_hooks.push.gitrepo import open_repo, work_tree
        from datachonk_hooks.settings.config import Overrides, find_config_file, load_settings_file

        path = self.config_path
        if path is None:
            try:
                top = work_tree(open_repo(self.cwd))
            except DatachonkError:
                top = None
            path = find_config_file(self.cwd, top)
        return load_settings_file(
            path, env=self.env, overrides=Overrides(job_id=job_id, timeout=timeout)
        )


_pass_app = click.make_pass_decorator(AppContext, ensure=True)
#: commands that run without anyone watching: a bad DATACHONK_* number is a warning there
_UNATTENDED = ("pre-push", "land")
#: commands that do not print how earlier runs ended: the unattended ones (the hook tells
#: in its own way), and the servers and the demo, which are about something else
_UNTOLD = (*_UNATTENDED, "serve", "sandbox", "demo")


def pass_app(fn: F) -> F:
    """Hand a command the AppContext, after checking the DATACHONK_* numbers of seconds.

    A bad one is a one-line error with exit 2 where someone watches, rather than a default
    that hides the typo (unattended commands warn and use the default instead). Checked once
    click has parsed the command's own options, so `--help` works whatever the environment.
    Then, on stderr, one line per run that ended since the developer was last told
    (`outcomes.tell`: from the ledger, no network).
    """

    @functools.wraps(fn)
    def checked(app: AppContext, /, *args: Any, **kwargs: Any) -> Any:
        name = click.get_current_context().info_name
        if name not in _UNATTENDED:
            from datachonk_hooks.delivery.trigger import check_seconds_env

            check_seconds_env(app.env)
        if name not in _UNTOLD:
            from datachonk_hooks.monitor.outcomes import tell_in

            tell_in(app.cwd, lambda line: click.echo(line, err=True))
        return fn(app, *args, **kwargs)

    return cast(F, _pass_app(checked))


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(fn)


def timeout_option(fn: F) -> F:
    return click.option(
        "--timeout",
        type=click.IntRange(min=1),
        metavar="SECONDS",
        help="Give up waiting after this long (exit 4). Default: `timeout` in"
        " datachonk.yaml, else 3600.",
    )(fn)


def _say(text: str, *, err: bool = False) -> None:
    """`click.echo` for text from outside; intended line breaks stay, controls do not."""
    click.echo(sanitize(text, multiline=True), err=err)


def echo_json(data: object) -> None:
    import json

    click.echo(json.dumps(data, indent=2, sort_keys=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="datachonk-hooks")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="datachonk.yaml to use. Default: the nearest one from the current folder up to the"
    " repository root.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log HTTP requests (never the token).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Trigger dbt Cloud jobs for pushed DataChonk-generated dbt models, and watch the runs.

    Exit codes: 0 done, 1 run failed, 2 usage or configuration error, 3 run cancelled,
    4 gave up waiting, 5 dbt Cloud unreachable or refused the request (the trigger stays
    pending), 70 internal error, 130 interrupted.
    """
    ctx.obj = AppContext(config_path=config_path)
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


# ----------------------------------------------------------------------------- run


def run_options(fn: F) -> F:
    for option in reversed(
        [
            click.option("--job-id", type=click.IntRange(min=1), help="Job to trigger."),
            click.option("--cause", help="Cause shown in dbt Cloud. Default: the commit subject."),
            click.option("--ref", default="HEAD", show_default=True, help="Commit to build."),
            click.option("--wait", is_flag=True, help="Watch the run to its end."),
            timeout_option,
            click.option("--dry-run", is_flag=True, help="Print the request; send nothing."),
            json_option,
            click.option(
                "--force", is_flag=True, help="Trigger even if this commit already ran this job."
            ),
            click.option(
                "--allow-unpushed",
                is_flag=True,
                help="Trigger a commit the configured remote does not have yet.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@cli.command("run")
@run_options
@click.option(
    "--ci/--no-ci",
    default=None,
    help="CI mode: commit, branch and pushed range from the CI's variables, the same"
    " detection as the hook, plain output. Default: on when CI=true.",
)
@pass_app
def run_command(
    app: AppContext,
    job_id: int | None,
    cause: str | None,
    ref: str,
    wait: bool,
    timeout: int | None,
    dry_run: bool,
    as_json: bool,
    force: bool,
    allow_unpushed: bool,
    ci: bool | None,
) -> int:
    """Trigger the dbt Cloud job for the commit at REF.

    The run gets git_sha and git_branch of that commit, and the cause from --cause or the
    commit's subject line. The job is --job-id, else the `jobs:` entry matching the branch,
    else `job_id` from datachonk.yaml. A commit already triggered for that job (by a push
    or by hand) is not triggered again unless --force. A commit the configured remote
    (`remote:`, default origin) does not have is refused unless --allow-unpushed: dbt
    Cloud clones from there.

    In CI mode (--ci, or CI=true) the commit, branch and pushed range come from GitHub
    Actions' or GitLab CI's variables, and a push without generated models triggers nothing.
    """
    from datachonk_hooks.delivery.trigger import (
        make_client,
        plan_manual_trigger,
        trigger_through_ledger,
    )
    from datachonk_hooks.push.ci import in_ci
    from datachonk_hooks.push.gitrepo import open_repo

    ci_mode = in_ci(app.env) if ci is None else ci
    if ci_mode:
        return _run_ci(app, job_id, cause, wait, timeout, dry_run, as_json, force)
    settings = app.settings(timeout=timeout)
    repo = open_repo(app.cwd)
    plan = plan_manual_trigger(
        settings, repo, ref, job_id=job_id, cause=cause, allow_unpushed=allow_unpushed
    )
    if dry_run:
        return _print_dry_run(plan, app.env, as_json)
    with make_client(settings, app.env) as client:
        run = trigger_through_ledger(repo, plan, client, force=force, echo=_status(as_json)).run
        code, _ = _follow(client, run, wait=wait, timeout=settings.timeout, as_json=as_json)
    return code


def _run_ci(
    app: AppContext,
    job_id: int | None,
    cause: str | None,
    wait: bool,
    timeout: int | None,
    dry_run: bool,
    as_json: bool,
    force: bool,
) -> int:
    """`run --ci`: the CI's push, judged like the hook would, triggered in the foreground.

    Everything, the client and the timeout too, comes from datachonk.yaml as pushed (what
    the hook reads), so the work tree's file is not loaded and `--config` does not apply.
    """
    from dataclasses import replace

    from datachonk_hooks.delivery.trigger import literal_cause, make_client, trigger_through_ledger
    from datachonk_hooks.push.ci import plan_ci_push, summary_lines, write_summary
    from datachonk_hooks.push.gitrepo import open_repo
    from datachonk_hooks.settings.config import parse_timeout

    say = _status(as_json)
    if app.config_path is not None:
        say("note: --config is not used in CI mode; datachonk.yaml is read from the pushed commit")
    # Flags are checked before anything is sent. An empty --cause would otherwise mean
    # "none" to the plan, which then builds one.
    cause = literal_cause(cause) if cause is not None else None
    if timeout is not None:
        timeout = parse_timeout(timeout, where="--timeout")
    repo = open_repo(app.cwd)
    context, update_plan = plan_ci_push(repo, app.env, cause=cause)
    plan, settings = update_plan.trigger, update_plan.settings
    where = f"{context.sha[:7]} on {context.branch}"
    if plan is None or settings is None:
        say(f"nothing to trigger for {where} ({context.provider}): {update_plan.skipped}")
        return ExitCode.OK
    for model in update_plan.models:
        say(f"generated model {model.change}: {model.path}")
    if job_id is not None:
        plan = replace(plan, job_id=job_id, route="--job-id")
    settings.require_host()  # the hook records a push without one; here nothing would be sent
    if dry_run:
        return _print_dry_run(plan, app.env, as_json)
    with make_client(settings, app.env) as client:
        run = trigger_through_ledger(repo, plan, client, force=force, echo=say, source="ci").run
        code, run = _follow(
            client,
            run,
            wait=wait,
            timeout=settings.timeout if timeout is None else timeout,
            as_json=as_json,
            plain=True,
        )
    write_summary(context, summary_lines(context, run, plan.job_id))
    return code


def _follow(
    client: DbtCloudClient,
    run: Run,
    *,
    wait: bool,
    timeout: int,
    as_json: bool,
    plain: bool = False,
) -> tuple[int, Run]:
    """After a trigger or rerun: the run's URL, then its watch to the end or its JSON.

    Returns the exit code and the run as last seen, so callers need no request of their own.
    """
    if run.href:
        _say(run.href, err=as_json)
    if not wait:
        if as_json:
            echo_json(run.to_json())
        return ExitCode.OK, run
    result = _watch(client, run.id, timeout, as_json, plain=plain)
    return result.exit_code, result.run or run


def _status(as_json: bool) -> Callable[[str], None]:
    """Human lines go to stdout, or to stderr when stdout carries JSON."""
    return lambda line: _say(line, err=as_json)


cli.add_command(run_command, name="dbt-run")


def _print_dry_run(plan: Any, env: dict[str, str], as_json: bool) -> int:
    from datachonk_hooks.settings.credentials import resolve_token

    try:
        token = resolve_token(env, host=plan.host, account_id=plan.account_id)
        token_note = f"token from {token.source}"
    except DatachonkError:
        token_note = "no token found (set DBT_CLOUD_API_TOKEN); a real run would stop here"
    if as_json:
        echo_json({"dry_run": True, **plan.to_json()})
        return ExitCode.OK
    click.echo("Dry run: nothing was sent.")
    click.echo(f"host:    {plan.host}")
    click.echo(f"account: {plan.account_id}")
    click.echo(f"job:     {plan.job_id} (from {plan.route})")
    click.echo(f"auth:    {token_note}")
    click.echo(f"POST {plan.url}")
    import json

    click.echo(json.dumps(plan.request.body(), indent=2))
    return ExitCode.OK


# ----------------------------------------------------------------------------- watch / cancel


def _watch(
    client: DbtCloudClient, run_id: int, timeout: int, as_json: bool, *, plain: bool = False
) -> WatchResult:
    """Watch a run and print its outcome; `plain` keeps line output on a terminal (CI mode
    promises it: some CI runners give jobs a pseudo-terminal)."""
    from datachonk_hooks.delivery.trigger import remember_run_status
    from datachonk_hooks.monitor.watcher import ChangeLines, reporter_for, watch_run

    reporter = ChangeLines(sys.stderr) if plain else reporter_for(sys.stderr)
    result = watch_run(client, run_id, timeout=timeout, reporter=reporter)
    if result.run is not None:
        remember_run_status(Path.cwd(), result.run)
    if as_json and result.run is not None:
        echo_json(result.run.to_json())
    _say(result.message, err=as_json or result.exit_code != ExitCode.OK)
    return result


@cli.command("watch")
@click.argument("run_id", type=click.IntRange(min=1), required=False)
@timeout_option
@json_option
@pass_app
def watch_command(app: AppContext, run_id: int | None, timeout: int | None, as_json: bool) -> int:
    """Follow run RUN_ID to its end and exit with its outcome.

    Without RUN_ID: the latest run this clone started on the current branch (what was just
    pushed). On a terminal a single live line shows status, current step and elapsed time;
    otherwise one line per change goes to stderr. When the run fails, the failing step's
    name, the last 30 lines of its logs and the run URL are printed.
    """
    from datachonk_hooks.delivery.trigger import make_client, new_client

    settings = app.settings(timeout=timeout)
    seconds = settings.timeout
    if run_id is None:
        started = time.monotonic()
        record = _latest_run(app, wait=seconds)
        seconds = max(1, seconds - round(time.monotonic() - started))  # one --timeout in all
        assert record.run_id is not None
        run_id = record.run_id
        _say(
            f"watching run {run_id} of job {record.job_id} for {record.sha[:7]}"
            f" ({record.branch}), the latest this clone started on that branch",
            err=True,
        )
        # the host and account it was started on, even if datachonk.yaml moved on since
        client = new_client(record.host, record.account_id, app.env)
    else:
        client = make_client(settings, app.env)
    with client:
        return _watch(client, run_id, seconds, as_json).exit_code


def _latest_run(app: AppContext, *, wait: float) -> TriggerRecord:
    """The ledger's newest run on the branch HEAD is on, for `watch` without a RUN_ID (the
    run of a push still on its way is waited for, up to `wait` seconds); a one-line error
    (exit 2) naming what to do when there is none to choose."""
    from datachonk_hooks.commands.history import NothingToWatchError, latest_run_on
    from datachonk_hooks.delivery.ledger import Ledger, ledger_file
    from datachonk_hooks.push.gitrepo import branch_of, open_repo

    give_id = "give the RUN_ID to watch (`datachonk-hook history` lists the runs)"
    try:
        repo = open_repo(app.cwd)
    except DatachonkError as exc:
        raise NothingToWatchError(f"watch: no RUN_ID given and {exc}; {give_id}") from None
    branch = branch_of(repo, "HEAD")
    if branch is None:
        raise NothingToWatchError(f"watch: HEAD is not on a branch (detached); {give_id}")
    record = None
    if ledger_file(repo).exists():  # watching creates no ledger
        with Ledger.for_repo(repo) as ledger:
            record = latest_run_on(ledger, branch, wait=wait, say=lambda line: _say(line, err=True))
    if record is None:
        raise NothingToWatchError(
            f"watch: this clone has started no run on {branch} yet; {give_id}, or trigger one"
            " (`datachonk-hook run`)"
        )
    return record


@cli.command("cancel")
@click.argument("run_id", type=click.IntRange(min=1))
@json_option
@pass_app
def cancel_command(app: AppContext, run_id: int, as_json: bool) -> int:
    """Cancel run RUN_ID."""
    from datachonk_hooks.delivery.trigger import make_client

    with make_client(app.settings(), app.env) as client:
        run = client.cancel_run(run_id)
    if as_json:
        echo_json(run.to_json())
    else:
        _say(f"run {run.id}: {run.status.label}" + (f" {run.href}" if run.href else ""))
    return ExitCode.OK


# ----------------------------------------------------------------------------- push hook


@cli.command("pre-push")
@click.option("--remote", help="Remote name (git's first hook argument).")
@click.option("--url", help="Remote URL (git's second hook argument).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the models found and the request per ref; record and send nothing."
    " Also DATACHONK_DRY_RUN=1.",
)
@json_option
@click.argument("hook_args", nargs=-1)
def pre_push_command(
    remote: str | None, url: str | None, dry_run: bool, as_json: bool, hook_args: tuple[str, ...]
) -> int:
    """The git pre-push hook: note what the push should trigger, then get out of the way.

    Run by pre-commit (reading its PRE_COMMIT_* variables) or by the standalone hook
    (reading git's stdin). It records one trigger per generated-model push in the ledger and
    starts a detached waiter that triggers dbt Cloud once the push has landed. It exits 0
    unless DATACHONK_STRICT=1 and datachonk.yaml is broken (then 2).
    """
    from datachonk_hooks.prepush.hook import pre_push_main

    if hook_args:  # `pre-push REMOTE URL`, the way git calls hooks
        remote = remote or hook_args[0]
        url = url or (hook_args[1] if len(hook_args) > 1 else None)
    return pre_push_main(
        remote=remote,
        url=url,
        dry_run=dry_run,
        as_json=as_json,
        env=None,
        stdin_lines=lambda: [] if sys.stdin.isatty() else sys.stdin.read().splitlines(),
        echo=lambda line: _say(line, err=True),
        echo_json=echo_json,
    )


@cli.command("land", hidden=True)
@click.argument("push_id", type=int)
@pass_app
def land_command(app: AppContext, push_id: int) -> int:
    """The detached landing waiter started by the hook (internal)."""
    from datachonk_hooks.delivery.landing import run_waiter
    from datachonk_hooks.push.gitrepo import open_repo

    return run_waiter(open_repo(app.cwd), push_id, app.env)


@cli.command("install")
@click.option("--uninstall", is_flag=True, help="Remove it and restore a kept hook.")
@click.option(
    "--git-config",
    is_flag=True,
    help="Use git's config-based hooks (git 2.54+): set hook.datachonk.event and"
    " hook.datachonk.command in the repository's config instead of writing a hook file.",
)
@pass_app
def install_command(app: AppContext, uninstall: bool, git_config: bool) -> int:
    """Install the standalone pre-push hook (for repositories without pre-commit).

    Writes it to core.hooksPath, or .git/hooks. A pre-push hook already there is kept as
    pre-push.legacy and runs first. With --git-config, git 2.54 and newer run it from the
    repository's config, beside any other pre-push hooks.
    """
    from datachonk_hooks.commands import install as installer
    from datachonk_hooks.push.gitrepo import open_repo

    if git_config:
        return _install_git_config(app, uninstall)
    repo = open_repo(app.cwd)
    result = installer.uninstall(repo) if uninstall else installer.install(repo)
    messages = {
        "installed": f"installed the pre-push hook at {result.path}",
        "updated": f"updated the pre-push hook at {result.path}",
        "unchanged": f"the pre-push hook at {result.path} is already installed",
        "uninstalled": f"removed the pre-push hook from {result.path}",
        "absent": f"no datachonk pre-push hook at {result.path}; nothing changed",
    }
    click.echo(messages[result.action])
    if result.legacy is not None:
        kept = "restored" if uninstall else "kept and chained"
        click.echo(f"the previous hook is {kept}: {result.legacy}")
    return ExitCode.OK


def _install_git_config(app: AppContext, uninstall: bool) -> int:
    from datachonk_hooks.commands import install as installer
    from datachonk_hooks.push.gitrepo import open_repo

    repo = open_repo(app.cwd)
    name = f"hook.{installer.CONFIG_HOOK}"
    if uninstall:
        result = installer.uninstall_git_config(repo)
        click.echo(
            f"removed {name} (pre-push) from {result.path}"
            if result.action == "uninstalled"
            else f"no {name} pre-push hook in {result.path}; nothing changed"
        )
        return ExitCode.OK
    installer.require_config_hooks(installer.git_version())
    result = installer.install_git_config(repo)
    command = installer.config_hook_command()
    messages = {
        "installed": f"set {name}.event = pre-push and {name}.command = {command} in {result.path}",
        "updated": f"updated {name}: event pre-push, command {command} in {result.path}",
        "unchanged": f"{name} (pre-push) is already set in {result.path}",
    }
    click.echo(messages[result.action])
    hook_file = installer.hooks_dir(repo) / installer.HOOK
    if installer.is_ours(hook_file):
        click.echo(
            f"the standalone hook {hook_file} would run as well; remove it with"
            " `datachonk-hook install --uninstall`"
        )
    return ExitCode.OK


@cli.command("retry")
@pass_app
def retry_command(app: AppContext) -> int:
    """Deliver the triggers that are still pending (dbt Cloud was down, a 5xx, a 429).

    A trigger whose earlier attempt had no answer is first looked up in dbt Cloud, so it
    never starts a second run. One pushed while no host was configured goes to the host
    configured now. Exit 0 when nothing is left pending, 5 otherwise.
    """
    from datachonk_hooks.delivery.landing import deliver_pending
    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.delivery.trigger import ClientPool
    from datachonk_hooks.push.gitrepo import open_repo

    repo = open_repo(app.cwd)
    # a trigger pushed while no host was configured goes to the host configured now
    pool = ClientPool(app.env, configured_host=lambda: app.settings().host)
    try:
        with Ledger.for_repo(repo) as ledger:
            busy = ledger.in_flight()
            for record, doing in busy:
                click.echo(f"job {record.job_id} for {record.sha[:7]} is {doing}")
            if not ledger.deliverable():
                if not busy:
                    click.echo("nothing pending")
                return ExitCode.OK
            left = deliver_pending(repo, ledger, pool, app.env, log=_say)
    finally:
        pool.close()
    if left:
        click.echo(f"{len(left)} trigger(s) still pending; run `datachonk-hook retry` later")
        return ExitCode.API
    return ExitCode.OK


@cli.command("history")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--offline",
    is_flag=True,
    help="Show the statuses the ledger holds; ask dbt Cloud nothing.",
)
@json_option
@pass_app
def history_command(app: AppContext, limit: int, as_json: bool, offline: bool) -> int:
    """Recent triggers: commit, branch, job, run, status and cause; pending ones say why.

    Runs the ledger does not know as ended are asked about once each (all asked within
    4 s, each answer within 4 s more), so a run that ended unwatched is not shown as
    Queued; `--offline` skips that.
    """
    from datachonk_hooks.commands.history import history_json, history_lines, refresh_statuses
    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.push.gitrepo import open_repo

    with Ledger.for_repo(open_repo(app.cwd)) as ledger:
        records = ledger.history(limit)
        if not offline:
            refreshed = refresh_statuses(
                ledger,
                records,
                app.env,
                configured_host=lambda: app.settings().host,
                told=not as_json,
            )
            records = refreshed.records
            if refreshed.note:
                _say(refreshed.note, err=True)
    if as_json:
        echo_json(history_json(records))
    else:
        for line in history_lines(records):
            click.echo(line)
    return ExitCode.OK


@cli.command(
    "push", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option(
    "--trigger-dbt-run",
    is_flag=True,
    help="Trigger even without generated models or with auto_trigger: false.",
)
@click.option("--cause", help="Cause shown in dbt Cloud. Default: from the pushed commits.")
@click.option("--wait", is_flag=True, help="Watch the triggered runs to their end.")
@timeout_option
@click.argument("git_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def push_command(
    app: AppContext,
    trigger_dbt_run: bool,
    cause: str | None,
    wait: bool,
    timeout: int | None,
    git_args: tuple[str, ...],
) -> int:
    """Run `git push GIT_ARGS...`, then trigger dbt Cloud for what landed, in the foreground.

    Put this command's options before the git arguments:
    `datachonk push --wait origin main`. A failed push keeps git's exit code and triggers
    nothing. Needs the pre-push hook (pre-commit or `datachonk-hook install`) to see what is
    pushed.
    """
    from datachonk_hooks.delivery.landing import push_and_deliver
    from datachonk_hooks.delivery.trigger import make_client
    from datachonk_hooks.push.gitpush import PushCommand
    from datachonk_hooks.push.gitrepo import open_repo

    repo = open_repo(app.cwd)
    dry_run = PushCommand(0, ("git", "push", *git_args)).dry_run
    outcome = push_and_deliver(
        repo,
        list(git_args),
        app.env,
        force=trigger_dbt_run,
        cause=cause,
        log=lambda line: _say(line, err=True),
    )
    if dry_run:  # the hook said what would run; git pushed nothing
        click.echo("dry run: nothing was pushed, so nothing was triggered", err=True)
        return outcome.git_exit_code
    if outcome.git_exit_code != 0 and not outcome.delivered and not outcome.pending:
        click.echo("git push failed; nothing triggered", err=True)
        return outcome.git_exit_code
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
        _say(
            f"Triggered run {record.run_id} of job {record.job_id} for {record.sha[:7]}"
            f" on {record.branch}"
        )
        if record.run_url:
            _say(record.run_url)
    if outcome.pending:
        for record in outcome.pending:
            _say(
                f"job {record.job_id} for {record.sha[:7]} stays pending: {record.reason}",
                err=True,
            )
        return ExitCode.API
    if outcome.git_exit_code != 0:
        return outcome.git_exit_code
    if not outcome.delivered:
        return ExitCode.OK
    settings = app.settings(timeout=timeout)
    if not (wait or settings.target_for_branch(outcome.delivered[0].branch).wait):
        from datachonk_hooks.delivery.landing import spawn_waiter

        for push_id in outcome.push_ids:  # it follows the runs, as after a plain `git push`
            spawn_waiter(repo, push_id, app.env)
        return ExitCode.OK
    worst = ExitCode.OK
    with make_client(settings, app.env) as client:
        for record in outcome.delivered:
            assert record.run_id is not None
            worst = max(worst, _watch(client, record.run_id, settings.timeout, False).exit_code)
    return worst


# ----------------------------------------------------------------------------- rerun / manifest


@cli.command("rerun")
@click.option("--job-id", type=click.IntRange(min=1), help="Job to rerun. Default: as `run`.")
@click.option("--wait", is_flag=True, help="Watch the run to its end.")
@timeout_option
@json_option
@pass_app
def rerun_command(
    app: AppContext, job_id: int | None, wait: bool, timeout: int | None, as_json: bool
) -> int:
    """Rerun the job from its point of failure (a fresh run if its last run did not fail).

    The job is --job-id, else the one the current branch resolves to in datachonk.yaml,
    chosen as for `run` (a `job_id: null` entry falls back to the top-level job_id).
    """
    from datachonk_hooks.delivery.trigger import make_client
    from datachonk_hooks.push.gitrepo import branch_of, open_repo

    settings = app.settings(timeout=timeout)
    if job_id is None:
        job_id, _ = settings.manual_job(branch_of(open_repo(app.cwd), "HEAD"))
    with make_client(settings, app.env) as client:
        run = client.rerun_job(job_id)
        _status(as_json)(f"Rerunning job {job_id}: run {run.id}")
        code, _ = _follow(client, run, wait=wait, timeout=settings.timeout, as_json=as_json)
    return code


@cli.command("manifest")
@click.option(
    "--job-id",
    type=click.IntRange(min=1),
    help="Production job. Default: the job the remote's default branch resolves to.",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("prod-manifest"),
    show_default=True,
    help="Folder to write manifest.json into.",
)
@pass_app
def manifest_command(app: AppContext, job_id: int | None, out_dir: Path) -> int:
    """Download manifest.json of the job's most recent successful run.

    Ready for `dbt build --select state:modified+ --defer --state ./prod-manifest`.
    """
    from datachonk_hooks.commands.manifest import download_manifest
    from datachonk_hooks.delivery.trigger import make_client
    from datachonk_hooks.push.gitrepo import branch_of, open_repo

    settings = app.settings()
    if job_id is None:
        repo = open_repo(app.cwd)
        default_branch = branch_of(repo, "origin/HEAD") or branch_of(repo, "HEAD")
        job_id, _ = settings.manual_job(default_branch)
    target = out_dir if out_dir.is_absolute() else app.cwd / out_dir
    with make_client(settings, app.env) as client:
        saved = download_manifest(client, job_id, target)
    click.echo(
        f"saved {saved.path} ({saved.size:,} bytes) from run {saved.run.id} of job {job_id}"
        + (
            f", finished {saved.run.finished_at:%Y-%m-%d %H:%M} UTC"
            if saved.run.finished_at
            else ""
        )
    )
    click.echo(f"use it with: dbt build --select state:modified+ --defer --state {out_dir}")
    return ExitCode.OK


# ----------------------------------------------------------------------------- account
# (connect, status, projects, jobs, doctor)


def _workspace(app: AppContext) -> Any:
    from datachonk_hooks.commands.account import Workspace

    return Workspace(env=app.env, cwd=app.cwd, config_path=app.config_path)


_ID = click.IntRange(min=1)


@cli.command("connect")
@click.option("--host", metavar="URL", help="The account's access URL (Account settings).")
@click.option(
    "--account-id", type=_ID, metavar="ID", help="The number after /accounts/ in dbt Cloud URLs."
)
@click.option(
    "--project-id", type=_ID, metavar="ID", help="Project to use (else chosen from a list)."
)
@click.option("--job-id", type=_ID, metavar="ID", help="Job to trigger (else chosen from a list).")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read the API token from stdin and ask nothing: values not given as flags are kept"
    " from datachonk.yaml.",
)
@click.option(
    "--forget",
    is_flag=True,
    help="Remove the stored token of the configured (or --host/--account-id) account.",
)
@pass_app
def connect_command(
    app: AppContext,
    host: str | None,
    account_id: int | None,
    project_id: int | None,
    job_id: int | None,
    token_stdin: bool,
    forget: bool,
) -> int:
    """Connect this repository to a dbt Cloud account and job.

    Asks for the access URL, the account id and an API token (hidden), checks them by
    listing the account's projects, lets you pick a project and a job, then writes host,
    account_id, project_id and job_id under deploy.dbt_cloud in datachonk.yaml (comments and
    other keys stay as they are). The token goes to the OS keyring when one is usable, else to
    a credentials file readable only by you; never into the repository. There is no --token
    flag on purpose: pipe the token into --token-stdin instead.
    """
    from datachonk_hooks.commands.account import ConnectOptions, connect
    from datachonk_hooks.commands.account import forget as forget_stored

    ws = _workspace(app)
    if forget:
        if token_stdin or project_id or job_id:
            raise click.UsageError("--forget takes only --host and --account-id")
        removed = forget_stored(ws, host, account_id)
        click.echo(
            f"removed the stored token from {' and '.join(removed)}"
            if removed
            else "no stored token for this account; nothing to remove"
        )
        return ExitCode.OK
    options = ConnectOptions(host, account_id, project_id, job_id, token_stdin)
    connect(ws, options, echo=click.echo)
    return ExitCode.OK


@cli.command("status")
@json_option
@pass_app
def status_command(app: AppContext, as_json: bool) -> int:
    """Whether the dbt Cloud connection works, and the account's projects.

    Shows the host, the account, where the token comes from (never the token) and whether
    dbt Cloud accepts it. Exit 0 when the token is accepted, 2 when something is not set up,
    5 when dbt Cloud refuses or cannot be reached.
    """
    from datachonk_hooks.commands.account import check_status

    status = check_status(_workspace(app))
    if as_json:
        echo_json(status.to_json())
    else:
        for line in status.lines():
            click.echo(line)
    return status.exit_code


@cli.command("projects")
@json_option
@pass_app
def projects_command(app: AppContext, as_json: bool) -> int:
    """The projects of the configured account: id and name."""
    from datachonk_hooks.commands.account import list_projects, projects_json, projects_table

    projects = list_projects(_workspace(app))
    if as_json:
        echo_json(projects_json(projects))
    else:
        for line in projects_table(projects):
            click.echo(line)
    return ExitCode.OK


@cli.command("jobs")
@click.option(
    "--project-id",
    type=_ID,
    metavar="ID",
    help="Project whose jobs to list. Default: project_id from datachonk.yaml, else all.",
)
@json_option
@pass_app
def jobs_command(app: AppContext, project_id: int | None, as_json: bool) -> int:
    """The jobs of a project, with the status of each one's most recent run.

    Columns: id, name, environment id, job type, whether it is active, its triggers and the
    status of its most recent run (one request per job for that).
    """
    from datachonk_hooks.commands.account import jobs_table, list_jobs

    ws = _workspace(app)
    rows = list_jobs(ws, project_id)
    if as_json:
        echo_json([row.to_json() for row in rows])
    else:
        projects = {row.job.project_id for row in rows}
        for line in jobs_table(rows, with_project=len(projects) > 1):
            click.echo(line)
    return ExitCode.OK


@cli.command("doctor")
@pass_app
def doctor_command(app: AppContext) -> int:
    """Check the whole setup, one line per check, with a fix for each failure.

    Checks that datachonk.yaml is valid, a token is found and accepted, the host is right
    for the account, the project and jobs exist (active, in the project), the pre-push hook
    is configured and installed, and no triggers are left pending. Exit 0 when all pass,
    2 otherwise.
    """
    from datachonk_hooks.commands.doctor import doctor_lines, run_doctor

    checks = run_doctor(_workspace(app))
    for line in doctor_lines(checks):
        _say(line)
    return ExitCode.OK if all(check.passed for check in checks) else ExitCode.USAGE


# ----------------------------------------------------------------------------- local API
# (serve)


@cli.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; one that is not loopback needs --allow-remote.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on; 0 picks a free one (the URL printed at start has it).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="Repository whose commits trigger-run builds. Default: the current folder's.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other machines can reach (plain http: use only on a trusted network).",
)
@pass_app
def serve_command(
    app: AppContext, host: str, port: int, repo: Path | None, allow_remote: bool
) -> int:
    """Serve the local integration API (HTTP) for editor extensions, UIs and scripts.

    Endpoints under /api/dbt-cloud/: POST connect, GET status, GET projects/ID/jobs,
    POST trigger-run, GET runs/ID; the schema is at /openapi.json. Every request needs
    `Authorization: Bearer <key>`: the key is DATACHONK_API_KEY, or a random one printed
    once at start. Needs the server extra: pip install 'datachonk-hooks[server]'.
    """
    try:
        from datachonk_hooks.api.server import serve
    except ImportError as exc:
        if exc.name not in ("fastapi", "uvicorn", "starlette", "pydantic"):
            raise
        raise click.ClickException(
            "the local API needs the server extra: pip install 'datachonk-hooks[server]'"
        ) from None
    from datachonk_hooks.commands.account import Workspace

    serve(
        Workspace(app.env, (repo or app.cwd).resolve(), app.config_path),
        host=host,
        port=port,
        allow_remote=allow_remote,
        echo=lambda line: click.echo(line, err=True),
    )
    return ExitCode.OK


# ----------------------------------------------------------------------------- sandbox / demo


@cli.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--token", default="sandbox-token", show_default=True, help="Token the simulator accepts."
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (60 makes a 30-minute run take 30 s).",
)
def sandbox_command(port: int, bind: str, token: str, time_scale: float) -> int:
    """Run the built-in dbt Cloud simulator until Ctrl-C.

    It speaks the dbt Cloud API endpoints this package uses, with account 12345, project
    67890 and jobs 11111 (succeeds), 22222 (succeeds), 33333 (fails), 44444 (long).
    """
    from datachonk_hooks.sandbox import serve

    try:
        serve(bind=bind, port=port, token=token, time_scale=time_scale, echo=click.echo)
    except OSError as exc:
        raise DatachonkError(
            f"cannot listen on {bind}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
    return ExitCode.OK


@cli.command("demo")
@click.option("--keep", is_flag=True, help="Keep the throw-away repository and print its path.")
def demo_command(keep: bool) -> int:
    """Show the whole flow against the simulator; no dbt Cloud account needed."""
    from datachonk_hooks.commands.demo import run_demo

    return run_demo(echo=click.echo, keep=keep)


# ----------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; the console scripts call this."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name=_prog_name(),
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except DatachonkError as exc:
        _say(f"Error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception:  # a bug: keep the details, show one line
        return _report_crash()
    return int(result) if isinstance(result, int) else ExitCode.OK


def _prog_name() -> str:
    """`datachonk` or `datachonk-hook` as typed; the latter for `python -m` and tests."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name in ("datachonk", "datachonk-hook") else "datachonk-hook"


def _report_crash() -> int:
    import tempfile
    import traceback

    from datachonk_hooks.settings.credentials import ENV_TOKEN, redact

    handle, path = tempfile.mkstemp(prefix="datachonk-hooks-crash-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        log.write(f"datachonk-hooks {__version__}, Python {sys.version}\n")
        details = f"argv: {sys.argv}\n\n{traceback.format_exc()}"
        log.write(redact(details, [os.environ.get(ENV_TOKEN, "")]))
    click.echo(
        f"Error: datachonk-hooks hit an unexpected problem (a bug); details saved to {path}",
        err=True,
    )
    return ExitCode.INTERNAL
