"""`retry`: deliver the triggers still pending (dbt Cloud was down, a 5xx, a 429).

The delivery itself is `landing.deliver_pending`, the same the landing waiter uses; this
says first what a live waiter is still doing, so a trigger it is sending is not mistaken
for a lost one.
"""

from __future__ import annotations

import click

from datachonk_hooks.commands.context import AppContext, say
from datachonk_hooks.errors import ExitCode


def retry_command(app: AppContext) -> int:
    """Deliver what is deliverable; exit 0 when nothing is left pending, 5 otherwise."""
    from datachonk_hooks.delivery.clients import ClientPool
    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.delivery.pending import deliver_pending
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
            left = deliver_pending(repo, ledger, pool, app.env, log=say)
    finally:
        pool.close()
    if left:
        click.echo(f"{len(left)} trigger(s) still pending; run `datachonk-hook retry` later")
        return ExitCode.API
    return ExitCode.OK
