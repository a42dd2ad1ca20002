"""Command-line edge: parse flags, call one function, map domain errors to exit codes.

`datachonk-hook` and `datachonk` are the same click group. No traceback reaches the user:
domain errors become `Error: <one line>` with their documented exit code, an unexpected
crash becomes exit 70 with the traceback saved to a file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from datachonk_hooks import __version__
from datachonk_hooks.errors import DatachonkError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    """What every command shares: the environment and where datachonk.yaml is."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    config_path: Path | None = None
    cwd: Path = field(default_factory=Path.cwd)

    def settings(self, *, job_id: int | None = None, timeout: int | None = None) -> Any:
        from datachonk_hooks.config import Overrides, find_config_file, load_settings_file
        from datachonk_hooks.gitrepo import open_repo, work_tree

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


pass_app = click.make_pass_decorator(AppContext, ensure=True)


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


def echo_json(data: object) -> None:
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
    4 gave up waiting, 5 dbt Cloud unreachable or refused the request.
    """
    ctx.obj = AppContext(config_path=config_path)
    if verbose:
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
        ]
    ):
        fn = option(fn)
    return fn


@cli.command("run")
@run_options
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
) -> int:
    """Trigger the dbt Cloud job for the commit at REF.

    The run gets git_sha and git_branch of that commit, and the cause from --cause or the
    commit's subject line. The job is --job-id, else the `jobs:` entry matching the branch,
    else `job_id` from datachonk.yaml.
    """
    from datachonk_hooks.gitrepo import open_repo
    from datachonk_hooks.trigger import make_client, plan_manual_trigger

    settings = app.settings(timeout=timeout)
    plan = plan_manual_trigger(settings, open_repo(app.cwd), ref, job_id=job_id, cause=cause)
    if dry_run:
        return _print_dry_run(plan, app.env, as_json)
    with make_client(settings, app.env) as client:
        run = client.trigger_run(plan.job_id, plan.request)
        sha = (plan.request.git_sha or "")[:7]
        where = f" on {plan.request.git_branch}" if plan.request.git_branch else ""
        click.echo(f"Triggered run {run.id} of job {plan.job_id} for {sha}{where}", err=as_json)
        if run.href:
            click.echo(run.href, err=as_json)
        if not wait:
            if as_json:
                echo_json(run.to_json())
            return ExitCode.OK
        return _watch(client, run.id, settings.timeout, as_json)


cli.add_command(run_command, name="dbt-run")


def _print_dry_run(plan: Any, env: dict[str, str], as_json: bool) -> int:
    from datachonk_hooks.credentials import resolve_token

    try:
        token_note = f"token from {resolve_token(env).source}"
    except DatachonkError:
        token_note = "no token found (set DBT_CLOUD_API_TOKEN); a real run would stop here"
    if as_json:
        echo_json({"dry_run": True, **plan.to_json()})
        return ExitCode.OK
    click.echo("Dry run: nothing was sent.")
    click.echo(f"host:    {plan.host}")
    click.echo(f"account: {plan.account_id}")
    click.echo(f"job:     {plan.job_id}")
    click.echo(f"auth:    {token_note}")
    click.echo(f"POST {plan.url}")
    click.echo(json.dumps(plan.request.body(), indent=2))
    return ExitCode.OK


# ----------------------------------------------------------------------------- watch / cancel


def _watch(client: Any, run_id: int, timeout: int, as_json: bool) -> int:
    from datachonk_hooks.monitor import reporter_for, watch_run

    result = watch_run(client, run_id, timeout=timeout, reporter=reporter_for(sys.stderr))
    if as_json and result.run is not None:
        echo_json(result.run.to_json())
    click.echo(result.message, err=as_json or result.exit_code != ExitCode.OK)
    return result.exit_code


@cli.command("watch")
@click.argument("run_id", type=click.IntRange(min=1))
@timeout_option
@json_option
@pass_app
def watch_command(app: AppContext, run_id: int, timeout: int | None, as_json: bool) -> int:
    """Follow run RUN_ID to its end and exit with its outcome.

    On a terminal a single live line shows status, current step and elapsed time; otherwise
    one line per change goes to stderr. When the run fails, the failing step's name, the last
    30 lines of its logs and the run URL are printed.
    """
    from datachonk_hooks.trigger import make_client

    settings = app.settings(timeout=timeout)
    with make_client(settings, app.env) as client:
        return _watch(client, run_id, settings.timeout, as_json)


@cli.command("cancel")
@click.argument("run_id", type=click.IntRange(min=1))
@json_option
@pass_app
def cancel_command(app: AppContext, run_id: int, as_json: bool) -> int:
    """Cancel run RUN_ID."""
    from datachonk_hooks.trigger import make_client

    with make_client(app.settings(), app.env) as client:
        run = client.cancel_run(run_id)
    if as_json:
        echo_json(run.to_json())
    else:
        click.echo(f"run {run.id}: {run.status.label}" + (f" {run.href}" if run.href else ""))
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

    serve(bind=bind, port=port, token=token, time_scale=time_scale, echo=click.echo)
    return ExitCode.OK


@cli.command("demo")
@click.option("--keep", is_flag=True, help="Keep the throw-away repository and print its path.")
def demo_command(keep: bool) -> int:
    """Show the whole flow against the simulator; no dbt Cloud account needed."""
    from datachonk_hooks.demo import run_demo

    return run_demo(echo=click.echo, keep=keep)


# ----------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; the console scripts call this."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except DatachonkError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception:  # a bug: keep the details, show one line
        return _report_crash()
    return int(result) if isinstance(result, int) else ExitCode.OK


def _report_crash() -> int:
    from datachonk_hooks.credentials import ENV_TOKEN, redact

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
