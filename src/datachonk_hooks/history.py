"""`datachonk-hook history`: the ledger's recent triggers, for people and for programs.

Branch names, causes and reasons come from commits and from dbt Cloud's answers. The lines
for people pass them through `sanitize` (also text a ledger written by an older version
holds unsanitized); the JSON keeps the recorded values, which `json.dumps` escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datachonk_hooks.dbt_cloud import RunStatus
from datachonk_hooks.ledger import TriggerRecord, TriggerState
from datachonk_hooks.sanitize import sanitize

_NEEDS_ATTENTION = (TriggerState.PENDING, TriggerState.PUSH_FAILED)


def status_text(record: TriggerRecord) -> str:
    """The run's status when known, else the trigger's own state."""
    if record.run_status is not None:
        return RunStatus(record.run_status).label
    return record.state.value.replace("_", " ")


def history_lines(records: Sequence[TriggerRecord]) -> list[str]:
    if not records:
        return ["no triggers recorded yet"]
    header = f"{'when (UTC)':16}  {'commit':7}  {'branch':16}  {'job':>14}  {'run':>14}  status"
    lines = [header]
    for r in records:
        when = r.created_at.strftime("%Y-%m-%d %H:%M")
        run = str(r.run_id) if r.run_id is not None else "-"
        branch = sanitize(r.branch or "-")[:16]
        lines.append(
            f"{when:16}  {r.sha[:7]:7}  {branch:16}  {r.job_id:>14}  {run:>14}  {status_text(r)}"
        )
        lines.append(f"{'':16}  cause: {sanitize(r.request.cause)}")
        if r.state in _NEEDS_ATTENTION and r.reason:
            lines.append(f"{'':16}  why: {sanitize(r.reason)}")
    return lines


def history_json(records: Sequence[TriggerRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "created_at": r.created_at.isoformat(),
            "sha": r.sha,
            "branch": r.branch,
            "host": r.host,
            "account_id": r.account_id,
            "job_id": r.job_id,
            "state": r.state.value,
            "reason": r.reason,
            "run_id": r.run_id,
            "run_url": r.run_url,
            "run_status": status_text(r) if r.run_status is not None else None,
            "cause": r.request.cause,
            "source": r.source,
            "attempts": r.attempts,
        }
        for r in records
    ]
