"""`connect`: point this repository at a dbt Cloud account and job, or `--forget` its token.

The work (asking, checking, writing datachonk.yaml, storing the token) is
`account`'s; this only turns the flags into its calls and says what it did.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from datachonk_hooks.commands.context import AppContext
from datachonk_hooks.errors import ExitCode


@dataclass(frozen=True)
class ConnectFlags:
    """The flags of `connect` as typed (None: not given)."""

    host: str | None
    account_id: int | None
    project_id: int | None
    job_id: int | None
    token_stdin: bool
    forget: bool


def connect_command(app: AppContext, flags: ConnectFlags) -> int:
    """Connect (asking for what the flags leave open), or remove the stored token."""
    from datachonk_hooks.account.connect import ConnectOptions, connect
    from datachonk_hooks.account.connect import forget as forget_stored

    ws = app.workspace()
    if flags.forget:
        if flags.token_stdin or flags.project_id or flags.job_id:
            raise click.UsageError("--forget takes only --host and --account-id")
        removed = forget_stored(ws, flags.host, flags.account_id)
        click.echo(
            f"removed the stored token from {' and '.join(removed)}"
            if removed
            else "no stored token for this account; nothing to remove"
        )
        return ExitCode.OK
    options = ConnectOptions(
        flags.host, flags.account_id, flags.project_id, flags.job_id, flags.token_stdin
    )
    connect(ws, options, echo=click.echo)
    return ExitCode.OK
