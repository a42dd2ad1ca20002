"""`watch`: follow a run to its end; without a RUN_ID, the one this clone just started.

The ledger knows which runs this clone started on which branch, and on which host and
account, so `watch` right after a push needs no id and follows the run where it was
started, even if datachonk.yaml moved on since.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from datachonk_hooks.commands.context import AppContext, say, say_err
from datachonk_hooks.commands.output import watch
from datachonk_hooks.errors import DatachonkError

if TYPE_CHECKING:
    from datachonk_hooks.delivery.ledger import TriggerRecord


def watch_command(app: AppContext, run_id: int | None, timeout: int | None, as_json: bool) -> int:
    """Watch `run_id`, or the branch's latest run, within one `--timeout` in all."""
    from datachonk_hooks.delivery.clients import make_client, new_client

    settings = app.settings(timeout=timeout)
    seconds = settings.timeout
    if run_id is None:
        started = time.monotonic()
        record = latest_run(app, wait=seconds)
        seconds = max(1, seconds - round(time.monotonic() - started))  # one --timeout in all
        assert record.run_id is not None
        run_id = record.run_id
        say(
            f"watching run {run_id} of job {record.job_id} for {record.sha[:7]}"
            f" ({record.branch}), the latest this clone started on that branch",
            err=True,
        )
        # the host and account it was started on, even if datachonk.yaml moved on since
        client = new_client(record.host, record.account_id, app.env)
    else:
        client = make_client(settings, app.env)
    with client:
        return watch(client, run_id, seconds, as_json).exit_code


def latest_run(app: AppContext, *, wait: float) -> TriggerRecord:
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
            record = latest_run_on(ledger, branch, wait=wait, say=say_err)
    if record is None:
        raise NothingToWatchError(
            f"watch: this clone has started no run on {branch} yet; {give_id}, or trigger one"
            " (`datachonk-hook run`)"
        )
    return record
