"""Command-line edge: parse flags, call one function, map domain errors to exit codes.

`datachonk-hook` and `datachonk` are the same click group. Each command here only declares
its options and help, then calls the one function in `commands/` that does its job (loaded
when the command runs, so `--help` stays quick). No traceback reaches the user: `main` turns
domain errors into `Error: <one line>` with their documented exit code, at one place, and an
unexpected crash into exit 70 with the traceback saved to a file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from datachonk_hooks import __version__
from datachonk_hooks.commands.context import AppContext, pass_app, say
from datachonk_hooks.commands.options import (
    connect_options,
    group_options,
    history_options,
    install_options,
    jobs_options,
    json_option,
    manifest_options,
    pre_push_options,
    push_options,
    rerun_options,
    run_options,
    sandbox_options,
    serve_options,
    timeout_option,
)
from datachonk_hooks.errors import DatachonkError, ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="datachonk-hooks")
@group_options
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


# ----------------------------------------------------------------------------- run and watch


@cli.command("run")
@run_options
@pass_app
def run_command(app: AppContext, **flags: Any) -> int:
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
    from datachonk_hooks.commands import run

    return run.run_command(app, run.RunFlags(**flags))


cli.add_command(run_command, name="dbt-run")


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
    from datachonk_hooks.commands import watch

    return watch.watch_command(app, run_id, timeout, as_json)


@cli.command("cancel")
@click.argument("run_id", type=click.IntRange(min=1))
@json_option
@pass_app
def cancel_command(app: AppContext, run_id: int, as_json: bool) -> int:
    """Cancel run RUN_ID."""
    from datachonk_hooks.commands import run

    return run.cancel_command(app, run_id, as_json)


# ----------------------------------------------------------------------------- push hook


@cli.command("pre-push")
@pre_push_options
def pre_push_command(
    remote: str | None, url: str | None, dry_run: bool, as_json: bool, hook_args: tuple[str, ...]
) -> int:
    """The git pre-push hook: note what the push should trigger, then get out of the way.

    Run by pre-commit (reading its PRE_COMMIT_* variables) or by the standalone hook
    (reading git's stdin). It records one trigger per generated-model push in the ledger and
    starts a detached waiter that triggers dbt Cloud once the push has landed. It exits 0
    unless DATACHONK_STRICT=1 and datachonk.yaml is broken (then 2).
    """
    from datachonk_hooks.commands import hook

    return hook.pre_push_command(remote, url, dry_run, as_json, hook_args)


@cli.command("land", hidden=True)
@click.argument("push_id", type=int)
@pass_app
def land_command(app: AppContext, push_id: int) -> int:
    """The detached landing waiter started by the hook (internal)."""
    from datachonk_hooks.commands import hook

    return hook.land_command(app, push_id)


@cli.command("install")
@install_options
@pass_app
def install_command(app: AppContext, uninstall: bool, git_config: bool) -> int:
    """Install the standalone pre-push hook (for repositories without pre-commit).

    Writes it to core.hooksPath, or .git/hooks. A pre-push hook already there is kept as
    pre-push.legacy and runs first. With --git-config, git 2.54 and newer run it from the
    repository's config, beside any other pre-push hooks.
    """
    from datachonk_hooks.commands import install

    return install.install_command(
        app.cwd, remove=uninstall, git_config=git_config, echo=click.echo
    )


@cli.command("retry")
@pass_app
def retry_command(app: AppContext) -> int:
    """Deliver the triggers that are still pending (dbt Cloud was down, a 5xx, a 429).

    A trigger whose earlier attempt had no answer is first looked up in dbt Cloud, so it
    never starts a second run. One pushed while no host was configured goes to the host
    configured now. Exit 0 when nothing is left pending, 5 otherwise.
    """
    from datachonk_hooks.commands import retry

    return retry.retry_command(app)


@cli.command("history")
@history_options
@pass_app
def history_command(app: AppContext, limit: int, as_json: bool, offline: bool) -> int:
    """Recent triggers: commit, branch, job, run, status and cause; pending ones say why.

    Runs the ledger does not know as ended are asked about once each (all asked within
    4 s, each answer within 4 s more), so a run that ended unwatched is not shown as
    Queued; `--offline` skips that.
    """
    from datachonk_hooks.commands import history

    return history.history_command(app, limit, as_json, offline)


@cli.command(
    "push", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@push_options
@pass_app
def push_command(app: AppContext, **flags: Any) -> int:
    """Run `git push GIT_ARGS...`, then trigger dbt Cloud for what landed, in the foreground.

    Put this command's options before the git arguments:
    `datachonk push --wait origin main`. A failed push keeps git's exit code and triggers
    nothing. Needs the pre-push hook (pre-commit or `datachonk-hook install`) to see what is
    pushed.
    """
    from datachonk_hooks.commands import push

    return push.push_command(app, push.PushFlags(**flags))


# ----------------------------------------------------------------------------- rerun / manifest


@cli.command("rerun")
@rerun_options
@pass_app
def rerun_command(
    app: AppContext, job_id: int | None, wait: bool, timeout: int | None, as_json: bool
) -> int:
    """Rerun the job from its point of failure (a fresh run if its last run did not fail).

    The job is --job-id, else the one the current branch resolves to in datachonk.yaml,
    chosen as for `run` (a `job_id: null` entry falls back to the top-level job_id).
    """
    from datachonk_hooks.commands import run

    return run.rerun_command(app, job_id, wait, timeout, as_json)


@cli.command("manifest")
@manifest_options
@pass_app
def manifest_command(app: AppContext, job_id: int | None, out_dir: Path) -> int:
    """Download manifest.json of the job's most recent successful run.

    Ready for `dbt build --select state:modified+ --defer --state ./prod-manifest`.
    """
    from datachonk_hooks.commands import manifest

    return manifest.manifest_command(app, job_id, out_dir)


# ----------------------------------------------------------------------------- account
# (connect, status, projects, jobs, doctor)


@cli.command("connect")
@connect_options
@pass_app
def connect_command(app: AppContext, **flags: Any) -> int:
    """Connect this repository to a dbt Cloud account and job.

    Asks for the access URL, the account id and an API token (hidden), checks them by
    listing the account's projects, lets you pick a project and a job, then writes host,
    account_id, project_id and job_id under deploy.dbt_cloud in datachonk.yaml (comments and
    other keys stay as they are). The token goes to the OS keyring when one is usable, else to
    a credentials file readable only by you; never into the repository. There is no --token
    flag on purpose: pipe the token into --token-stdin instead.
    """
    from datachonk_hooks.commands import connect

    return connect.connect_command(app, connect.ConnectFlags(**flags))


@cli.command("status")
@json_option
@pass_app
def status_command(app: AppContext, as_json: bool) -> int:
    """Whether the dbt Cloud connection works, and the account's projects.

    Shows the host, the account, where the token comes from (never the token) and whether
    dbt Cloud accepts it. Exit 0 when the token is accepted, 2 when something is not set up,
    5 when dbt Cloud refuses or cannot be reached.
    """
    from datachonk_hooks.commands import status

    return status.status_command(app, as_json)


@cli.command("projects")
@json_option
@pass_app
def projects_command(app: AppContext, as_json: bool) -> int:
    """The projects of the configured account: id and name."""
    from datachonk_hooks.commands import status

    return status.projects_command(app, as_json)


@cli.command("jobs")
@jobs_options
@pass_app
def jobs_command(app: AppContext, project_id: int | None, as_json: bool) -> int:
    """The jobs of a project, with the status of each one's most recent run.

    Columns: id, name, environment id, job type, whether it is active, its triggers and the
    status of its most recent run (one request per job for that).
    """
    from datachonk_hooks.commands import status

    return status.jobs_command(app, project_id, as_json)


@cli.command("doctor")
@pass_app
def doctor_command(app: AppContext) -> int:
    """Check the whole setup, one line per check, with a fix for each failure.

    Checks that datachonk.yaml is valid, a token is found and accepted, the host is right
    for the account, the project and jobs exist (active, in the project), the pre-push hook
    is configured and installed, and no triggers are left pending. Exit 0 when all pass,
    2 otherwise.
    """
    from datachonk_hooks.commands import status

    return status.doctor_command(app)


# ----------------------------------------------------------------------------- servers and demo


@cli.command("serve")
@serve_options
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
    from datachonk_hooks.commands import serve

    return serve.serve_command(app, host, port, repo, allow_remote)


@cli.command("sandbox")
@sandbox_options
def sandbox_command(port: int, bind: str, token: str, time_scale: float, tls: bool) -> int:
    """Run the built-in dbt Cloud simulator until Ctrl-C.

    It speaks the dbt Cloud API endpoints this package uses, with account 12345, project
    67890 and jobs 11111 (succeeds), 22222 (succeeds), 33333 (fails), 44444 (long).
    --tls serves https for clients that speak only https; it needs the tls extra:
    pip install 'datachonk-hooks[tls]'.
    """
    from datachonk_hooks.commands import sandbox

    return sandbox.sandbox_command(port, bind, token, time_scale, tls)


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
        say(f"Error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception:  # a bug: keep the details, show one line
        from datachonk_hooks.commands.crash import report_crash

        return report_crash()
    return int(result) if isinstance(result, int) else ExitCode.OK


def _prog_name() -> str:
    """`datachonk` or `datachonk-hook` as typed; the latter for `python -m` and tests."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name in ("datachonk", "datachonk-hook") else "datachonk-hook"
