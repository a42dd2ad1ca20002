"""Between the ledger's rows and its records: reading a row into a `TriggerRecord` or a
`PushRecord` (a row that cannot be read is a damaged ledger), and the row helpers every
group of operations shares (select, get, update one trigger, a claim gone stale).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime
from typing import Any

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger.owners import claim_stale
from datachonk_hooks.delivery.ledger.records import (
    LedgerError,
    PushRecord,
    RunOutcome,
    TriggerRecord,
    TriggerState,
    as_utc,
    from_text,
)
from datachonk_hooks.delivery.ledger.store import LedgerStore


def _outcome(row: sqlite3.Row) -> RunOutcome | None:
    """The outcome columns of a finished trigger (None while its run has not ended)."""
    if row["state"] != TriggerState.FINISHED or row["run_status"] is None:
        return None
    return RunOutcome(
        status=row["run_status"],
        finished_at=from_text(row["finished_at"]),
        duration_s=row["duration_s"],
        failed_step_index=row["failed_step_index"],
        failed_step=row["failed_step"],
        error_line=row["error_line"],
        log_tail=row["log_tail"],
    )


def request_json(request: TriggerRequest) -> str:
    return json.dumps(dataclasses.asdict(request), sort_keys=True)


def request_from_json(text: str) -> TriggerRequest:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the stored request is not an object")
    known = {f.name for f in dataclasses.fields(TriggerRequest)}
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in known}
    if kwargs.get("steps_override") is not None:
        kwargs["steps_override"] = tuple(kwargs["steps_override"])
    return TriggerRequest(**kwargs)


class LedgerRows(LedgerStore):
    """The ledger file, read and written as records (the base of the operations' classes)."""

    def _trigger(self, row: sqlite3.Row) -> TriggerRecord:
        try:
            return TriggerRecord(
                id=row["id"],
                host=row["host"],
                account_id=row["account_id"],
                job_id=row["job_id"],
                sha=row["sha"],
                branch=row["branch"],
                request=request_from_json(row["request"]),
                state=TriggerState(row["state"]),
                reason=row["reason"],
                run_id=row["run_id"],
                run_url=row["run_url"],
                run_status=row["run_status"],
                push_id=row["push_id"],
                source=row["source"],
                attempts=row["attempts"],
                first_attempt_at=from_text(row["first_attempt_at"]),
                claimed_by=row["claimed_by"],
                claimed_at=from_text(row["claimed_at"]),
                created_at=datetime.fromisoformat(row["created_at"]),
                updated_at=datetime.fromisoformat(row["updated_at"]),
                unknown_since=from_text(row["unknown_since"]),
                outcome=_outcome(row),
                told_at=from_text(row["told_at"]),
            )
        except (ValueError, TypeError) as exc:
            raise LedgerError(
                f"the ledger {self.path} holds an unreadable trigger (id {row['id']}: {exc}); "
                "move the file away, pending triggers in it are lost"
            ) from None

    def _push(self, row: sqlite3.Row) -> PushRecord:
        try:
            tracking = json.loads(row["tracking_before"])
            if not isinstance(tracking, dict):
                raise ValueError("tracking_before is not an object")
            return PushRecord(
                id=row["id"],
                remote_name=row["remote_name"],
                remote_url=row["remote_url"],
                git_pid=row["git_pid"],
                tracking_before={str(k): str(v) for k, v in tracking.items()},
                foreground=bool(row["foreground"]),
                state=row["state"],
                reason=row["reason"],
                created_at=datetime.fromisoformat(row["created_at"]),
                waiter=row["waiter"],
                pushed_tips=tuple(json.loads(row["pushed_tips"] or "[]")),
            )
        except (ValueError, TypeError) as exc:
            raise LedgerError(
                f"the ledger {self.path} holds an unreadable push (id {row['id']}: {exc}); "
                "move the file away, pending triggers in it are lost"
            ) from None

    def _select_triggers(self, where: str, params: tuple[object, ...] = ()) -> list[TriggerRecord]:
        with self._guard():
            rows = self._db.execute(f"SELECT * FROM triggers {where}", params).fetchall()
        return [self._trigger(row) for row in rows]

    def _must_get(self, conn: sqlite3.Connection, trigger_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM triggers WHERE id = ?", (trigger_id,)
        ).fetchone()
        if row is None:
            raise LedgerError(f"there is no trigger {trigger_id} in the ledger {self.path}")
        return row

    def _update_trigger(
        self, conn: sqlite3.Connection, trigger_id: int, **values: object
    ) -> TriggerRecord:
        values["updated_at"] = self._now()
        columns = ", ".join(f"{name} = ?" for name in values)
        conn.execute(f"UPDATE triggers SET {columns} WHERE id = ?", (*values.values(), trigger_id))
        return self._trigger(self._must_get(conn, trigger_id))

    def _is_stale(self, claimed_by: str | None, claimed_at: str | None) -> bool:
        """A claim is stale when its owner died (on this host) or it has run out of time."""
        at = None if claimed_at is None else as_utc(datetime.fromisoformat(claimed_at))
        return claim_stale(claimed_by, at, as_utc(self._clock()), self._stale_after)

    def _move(
        self,
        trigger_id: int,
        only_from: tuple[TriggerState, ...] | None,
        **changes: object,
    ) -> TriggerRecord:
        """Change one trigger in a transaction; with `only_from`, other states stay as they are."""
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            if only_from is not None and row["state"] not in only_from:
                return self._trigger(row)
            return self._update_trigger(conn, trigger_id, **changes)

    def get(self, trigger_id: int) -> TriggerRecord | None:
        found = self._select_triggers("WHERE id = ?", (trigger_id,))
        return found[0] if found else None

    @staticmethod
    def _branch_change(row: sqlite3.Row, branch: str | None) -> dict[str, object]:
        if branch is None or branch == row["branch"]:
            return {}
        request = dataclasses.replace(request_from_json(row["request"]), git_branch=branch)
        return {"branch": branch, "request": request_json(request)}
