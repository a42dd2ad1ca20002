"""`datachonk-hook doctor`: check the whole setup and say how to fix what is broken.

Every check is one line with a mark (`ok`, `FAIL`, or `skip` when an earlier failure makes
it meaningless) and, for a failure, a fix. Nothing here raises for a broken setup: no config,
no token, no network and no repository are all just failed checks.

The checks are grouped by what they look at: `repository` (datachonk.yaml), `connection`
(token, dbt Cloud, host), `project` (project, remote, jobs, branch route) and `clone` (the
pre-push hook, pending triggers); they share what they found through `findings.Findings`.
"""

from __future__ import annotations

from collections.abc import Iterator

from datachonk_hooks.account.workspace import Workspace
from datachonk_hooks.commands.doctor.clone import (
    HOOK_ID,
    PRE_COMMIT_CONFIG,
    check_hooks,
    check_ledger,
)
from datachonk_hooks.commands.doctor.connection import (
    check_host,
    check_token_accepted,
    check_token_found,
)
from datachonk_hooks.commands.doctor.findings import Findings
from datachonk_hooks.commands.doctor.project import (
    check_branch_route,
    check_jobs,
    check_project,
    check_remote,
)
from datachonk_hooks.commands.doctor.report import CONNECT, NEEDS_HOST, Check, doctor_lines
from datachonk_hooks.commands.doctor.repository import check_committed, check_config

__all__ = [
    "CONNECT",
    "HOOK_ID",
    "NEEDS_HOST",
    "PRE_COMMIT_CONFIG",
    "Check",
    "doctor_lines",
    "run_doctor",
]


def run_doctor(ws: Workspace) -> list[Check]:
    return list(_checks(Findings(ws)))


def _checks(found: Findings) -> Iterator[Check]:
    """Every check in report order; each may use what the earlier ones found."""
    found.locate()
    yield check_config(found)
    yield from check_committed(found)
    yield check_token_found(found)
    yield check_token_accepted(found)
    yield check_host(found)
    yield check_project(found)
    yield check_remote(found)
    yield from check_jobs(found)
    yield from check_branch_route(found)
    yield from check_hooks(found)
    yield check_ledger(found)
