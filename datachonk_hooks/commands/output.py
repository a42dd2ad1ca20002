"""How the triggering commands show a run: its URL, its watch to the end, its JSON.

`run`, `rerun`, `watch` and `push` all end the same way, and a dry run prints the request
it would have sent; one place for these keeps their output alike.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from datachonk_hooks.commands.context import echo_json, say
from datachonk_hooks.errors import DatachonkError, ExitCode

if TYPE_CHECKING:
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.cloud.records import Run
    from datachonk_hooks.delivery.planning import TriggerPlan
    from datachonk_hooks.monitor.watcher import WatchResult


def follow(
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
        say(run.href, err=as_json)
    if not wait:
        if as_json:
            echo_json(run.to_json())
        return ExitCode.OK, run
    result = watch(client, run.id, timeout, as_json, plain=plain)
    return result.exit_code, result.run or run


def watch(
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
    say(result.message, err=as_json or result.exit_code != ExitCode.OK)
    return result


def print_dry_run(plan: TriggerPlan, env: dict[str, str], as_json: bool) -> int:
    """What a trigger would send, and where its token would come from; nothing is sent."""
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
