"""The commands' shared and longer option lists, as decorators (sqlite-utils' model).

cli.py stays a readable list of commands: each one's options that are shared (`--json`,
`--timeout`) or many (`run`, `connect`, `serve`) are one decorator from here. Help texts
are the `--help` output users and the README see, so they change only on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ID = click.IntRange(min=1)


def _apply(fn: F, options: list[Callable[[F], F]]) -> F:
    """Apply `options` so that `--help` lists them in this order."""
    for option in reversed(options):
        fn = option(fn)
    return fn


def group_options(fn: F) -> F:
    """The options of the group itself, before the command name."""
    return _apply(
        fn,
        [
            click.option(
                "--config",
                "config_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="datachonk.yaml to use. Default: the nearest one from the current folder up"
                " to the repository root.",
            ),
            click.option(
                "-v", "--verbose", is_flag=True, help="Log HTTP requests (never the token)."
            ),
        ],
    )


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


def run_options(fn: F) -> F:
    return _apply(
        fn,
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
            click.option(
                "--ci/--no-ci",
                default=None,
                help="CI mode: commit, branch and pushed range from the CI's variables, the same"
                " detection as the hook, plain output. Default: on when CI=true.",
            ),
        ],
    )


def pre_push_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option("--remote", help="Remote name (git's first hook argument)."),
            click.option("--url", help="Remote URL (git's second hook argument)."),
            click.option(
                "--dry-run",
                is_flag=True,
                help="Print the models found and the request per ref; record and send nothing."
                " Also DATACHONK_DRY_RUN=1.",
            ),
            json_option,
            click.argument("hook_args", nargs=-1),
        ],
    )


def push_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "--trigger-dbt-run",
                is_flag=True,
                help="Trigger even without generated models or with auto_trigger: false.",
            ),
            click.option(
                "--cause", help="Cause shown in dbt Cloud. Default: from the pushed commits."
            ),
            click.option("--wait", is_flag=True, help="Watch the triggered runs to their end."),
            timeout_option,
            click.argument("git_args", nargs=-1, type=click.UNPROCESSED),
        ],
    )


def manifest_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "--job-id",
                type=click.IntRange(min=1),
                help="Production job. Default: the job the remote's default branch resolves to.",
            ),
            click.option(
                "-o",
                "--output",
                "out_dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=Path("prod-manifest"),
                show_default=True,
                help="Folder to write manifest.json into.",
            ),
        ],
    )


def connect_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "--host", metavar="URL", help="The account's access URL (Account settings)."
            ),
            click.option(
                "--account-id",
                type=ID,
                metavar="ID",
                help="The number after /accounts/ in dbt Cloud URLs.",
            ),
            click.option(
                "--project-id",
                type=ID,
                metavar="ID",
                help="Project to use (else chosen from a list).",
            ),
            click.option(
                "--job-id", type=ID, metavar="ID", help="Job to trigger (else chosen from a list)."
            ),
            click.option(
                "--token-stdin",
                is_flag=True,
                help="Read the API token from stdin and ask nothing: values not given as flags"
                " are kept from datachonk.yaml.",
            ),
            click.option(
                "--forget",
                is_flag=True,
                help="Remove the stored token of the configured (or --host/--account-id) account.",
            ),
        ],
    )


def serve_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "--host",
                default="127.0.0.1",
                show_default=True,
                help="Address to listen on; one that is not loopback needs --allow-remote.",
            ),
            click.option(
                "--port",
                type=click.IntRange(0, 65535),
                default=8765,
                show_default=True,
                help="Port to listen on; 0 picks a free one (the URL printed at start has it).",
            ),
            click.option(
                "--repo",
                type=click.Path(file_okay=False, path_type=Path),
                help="Repository whose commits trigger-run builds. Default: the current folder's.",
            ),
            click.option(
                "--allow-remote",
                is_flag=True,
                help="Allow a --host other machines can reach (plain http: use only on a trusted"
                " network).",
            ),
        ],
    )


def sandbox_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True),
            click.option(
                "--bind", default="127.0.0.1", show_default=True, help="Address to listen on."
            ),
            click.option(
                "--token",
                default="sandbox-token",
                show_default=True,
                help="Token the simulator accepts.",
            ),
            click.option(
                "--time-scale",
                type=click.FloatRange(min=0.001),
                default=1.0,
                show_default=True,
                help="Simulated seconds per real second (60 makes a 30-minute run take 30 s).",
            ),
            click.option(
                "--tls",
                is_flag=True,
                help="Serve https with a throw-away certificate authority and print how to trust"
                " it (needs the tls extra).",
            ),
        ],
    )


def rerun_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "--job-id", type=click.IntRange(min=1), help="Job to rerun. Default: as `run`."
            ),
            click.option("--wait", is_flag=True, help="Watch the run to its end."),
            timeout_option,
            json_option,
        ],
    )


def install_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option("--uninstall", is_flag=True, help="Remove it and restore a kept hook."),
            click.option(
                "--git-config",
                is_flag=True,
                help="Use git's config-based hooks (git 2.54+): set hook.datachonk.event and"
                " hook.datachonk.command in the repository's config instead of writing a hook"
                " file.",
            ),
        ],
    )


def history_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True
            ),
            click.option(
                "--offline",
                is_flag=True,
                help="Show the statuses the ledger holds; ask dbt Cloud nothing.",
            ),
            json_option,
        ],
    )


def jobs_options(fn: F) -> F:
    return _apply(
        fn,
        [
            click.option(
                "--project-id",
                type=ID,
                metavar="ID",
                help="Project whose jobs to list. Default: project_id from datachonk.yaml,"
                " else all.",
            ),
            json_option,
        ],
    )
