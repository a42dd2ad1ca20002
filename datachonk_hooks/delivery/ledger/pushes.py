"""The ledger's pushes: recording what the hook saw, settling each push once its waiter knows
whether it landed (its triggers become pending, or push-failed), and finding pushes nobody
will settle any more (their waiter died) so `retry` can.

Landing is judged per commit: a trigger is linked to every ref of every push that carried
its commit (`trigger_refs`), and a push that failed leaves it to another still in flight.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime

from datachonk_hooks.delivery.ledger.owners import default_owner, push_abandoned
from datachonk_hooks.delivery.ledger.records import (
    LedgerError,
    PushRecord,
    TriggerRecord,
    TriggerState,
    as_utc,
)
from datachonk_hooks.delivery.ledger.rows import LedgerRows


class PushLedger(LedgerRows):
    """Pushes and their landing."""

    def record_push(
        self,
        *,
        remote_name: str,
        remote_url: str,
        git_pid: int | None,
        tracking_before: Mapping[str, str],
        foreground: bool,
        pushed_tips: Sequence[str] = (),
    ) -> PushRecord:
        """Remember a push the hook saw, in state "waiting", before it lands."""
        now = self._now()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO pushes (remote_name, remote_url, git_pid, tracking_before,"
                " foreground, state, reason, created_at, updated_at, pushed_tips)"
                " VALUES (?, ?, ?, ?, ?, 'waiting', NULL, ?, ?, ?)",
                (
                    remote_name,
                    remote_url,
                    git_pid,
                    json.dumps(dict(tracking_before), sort_keys=True),
                    int(foreground),
                    now,
                    now,
                    json.dumps(list(pushed_tips)),
                ),
            )
            row = conn.execute("SELECT * FROM pushes WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return self._push(row)

    @staticmethod
    def _push_exists(conn: sqlite3.Connection, push_id: int) -> bool:
        return conn.execute("SELECT 1 FROM pushes WHERE id = ?", (push_id,)).fetchone() is not None

    def get_push(self, push_id: int) -> PushRecord | None:
        with self._guard():
            row = self._db.execute("SELECT * FROM pushes WHERE id = ?", (push_id,)).fetchone()
        return None if row is None else self._push(row)

    def pushes_after(self, push_id: int) -> list[PushRecord]:
        """Pushes recorded after `push_id` (0 for all), oldest first."""
        with self._guard():
            rows = self._db.execute(
                "SELECT * FROM pushes WHERE id > ? ORDER BY id", (push_id,)
            ).fetchall()
        return [self._push(row) for row in rows]

    def last_push_id(self) -> int:
        with self._guard():
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) AS last FROM pushes").fetchone()
        return int(row["last"])

    def _settle_push(
        self,
        push_id: int,
        push_state: str,
        reason: str | None,
        trigger_state: TriggerState,
        *,
        only_waiting: bool = False,
    ) -> list[TriggerRecord]:
        """Move a push to its final state and its AWAITING_PUSH triggers along with it.

        A trigger another push still waits for is left to that push when this one failed or
        expired: its commit may yet land through the other, whose waiter judges it. With
        `only_waiting`, a push something else has settled meanwhile is left alone.
        """
        now = self._now()
        with self._write() as conn:
            found = conn.execute(
                "UPDATE pushes SET state = ?, reason = ?, updated_at = ? WHERE id = ?"
                + (" AND state = 'waiting'" if only_waiting else ""),
                (push_state, reason, now, push_id),
            )
            if found.rowcount == 0:
                if only_waiting and self._push_exists(conn, push_id):
                    return []
                raise LedgerError(f"there is no push {push_id} in the ledger {self.path}")
            ids = self._awaiting_ids(conn, push_id)
            if push_state != "landed":
                ids = [i for i in ids if not self._waited_for_elsewhere(conn, i, push_id)]
            return [
                self._update_trigger(conn, trigger_id, state=trigger_state.value, reason=reason)
                for trigger_id in ids
            ]

    _PUSH_TRIGGERS = (
        "(push_id = ? OR id IN (SELECT trigger_id FROM trigger_refs WHERE push_id = ?))"
    )

    def _awaiting_ids(self, conn: sqlite3.Connection, push_id: int) -> list[int]:
        return [
            int(row["id"])
            for row in conn.execute(
                f"SELECT id FROM triggers WHERE {self._PUSH_TRIGGERS} AND state = ? ORDER BY id",
                (push_id, push_id, TriggerState.AWAITING_PUSH.value),
            )
        ]

    @staticmethod
    def _waited_for_elsewhere(
        conn: sqlite3.Connection, trigger_id: int, push_id: int | None
    ) -> bool:
        """Whether a push (other than `push_id`) that carried this trigger's commit is still
        in flight."""
        row = conn.execute(
            "SELECT 1 FROM trigger_refs JOIN pushes ON pushes.id = trigger_refs.push_id"
            " WHERE trigger_refs.trigger_id = ? AND trigger_refs.push_id IS NOT ?"
            " AND pushes.state = 'waiting' LIMIT 1",
            (trigger_id, push_id),
        ).fetchone()
        return row is not None

    def settle_judged(
        self,
        push_id: int,
        landed: Mapping[int, str | None],
        failed: Sequence[int],
        reason: str | None,
    ) -> list[TriggerRecord]:
        """Record a waiter's judgement of its push in one transaction: the push's state, the
        triggers whose commit landed (id -> the branch it landed on, when another than its
        own) become PENDING, and those that did not become PUSH_FAILED unless another push
        of the commit is still in flight. Returns the triggers that failed.

        One transaction, the push's state first: of two waiters judging one commit at once,
        the later sees the earlier's push settled, so the commit is never left waiting for
        a push that is over.
        """
        state = "failed" if failed and not landed else "landed"
        now = self._now()
        with self._write() as conn:
            conn.execute(
                "UPDATE pushes SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                (state, reason if failed else None, now, push_id),
            )
            for trigger_id, branch in landed.items():
                row = self._must_get(conn, trigger_id)
                if row["state"] == TriggerState.AWAITING_PUSH:
                    self._update_trigger(
                        conn,
                        trigger_id,
                        state=TriggerState.PENDING.value,
                        reason=None,
                        **self._branch_change(row, branch),
                    )
            return [
                record
                for trigger_id in failed
                if (record := self._fail_unless_carried(conn, trigger_id, push_id, reason or ""))
            ]

    def _fail_unless_carried(
        self, conn: sqlite3.Connection, trigger_id: int, push_id: int | None, reason: str
    ) -> TriggerRecord | None:
        """PUSH_FAILED for a trigger not sent yet, unless a push other than `push_id` that
        carried its commit is still in flight; the failed record, or None."""
        row = self._must_get(conn, trigger_id)
        if row["state"] not in (TriggerState.AWAITING_PUSH, TriggerState.PENDING):
            return None
        if self._waited_for_elsewhere(conn, trigger_id, push_id):
            return None
        return self._update_trigger(
            conn, trigger_id, state=TriggerState.PUSH_FAILED.value, reason=reason
        )

    def retarget_branch(self, trigger_id: int, branch: str) -> TriggerRecord:
        """A trigger not sent yet is asked for `branch`, where its commit really landed."""
        return self._move(
            trigger_id,
            (TriggerState.AWAITING_PUSH, TriggerState.PENDING),
            **self._branch_change(self._must_get(self._db, trigger_id), branch),
        )

    def trigger_did_not_land(
        self, trigger_id: int, push_id: int | None, reason: str
    ) -> TriggerRecord:
        """No ref that carried the commit reached the remote: PUSH_FAILED, unless a push
        other than `push_id` (None: any push) that carried it is still in flight."""
        with self._write() as conn:
            failed = self._fail_unless_carried(conn, trigger_id, push_id, reason)
            return failed or self._trigger(self._must_get(conn, trigger_id))

    def refs_of(self, trigger_id: int) -> list[tuple[PushRecord, str]]:
        """Every (push, remote ref) that carried the trigger's commit, oldest push first."""
        with self._guard():
            rows = self._db.execute(
                "SELECT pushes.*, trigger_refs.remote_ref AS carried_ref FROM trigger_refs"
                " JOIN pushes ON pushes.id = trigger_refs.push_id"
                " WHERE trigger_refs.trigger_id = ? ORDER BY pushes.id, trigger_refs.remote_ref",
                (trigger_id,),
            ).fetchall()
        return [(self._push(row), str(row["carried_ref"])) for row in rows]

    def mark_push_landed(self, push_id: int) -> list[TriggerRecord]:
        """The push reached the remote: its triggers become deliverable; returns them."""
        return self._settle_push(push_id, "landed", None, TriggerState.PENDING)

    def mark_push_failed(self, push_id: int, reason: str) -> list[TriggerRecord]:
        """The push was rejected or failed: its triggers are never sent; returns them."""
        return self._settle_push(push_id, "failed", reason, TriggerState.PUSH_FAILED)

    def expire_push(self, push_id: int, reason: str) -> list[TriggerRecord]:
        """The waiter gave up before knowing: keep the triggers PENDING for `retry`."""
        return self._settle_push(push_id, "expired", reason, TriggerState.PENDING)

    def set_push_waiter(self, push_id: int, owner: str | None = None) -> None:
        """Note the landing waiter of a push (`pid@host`, default this process): `retry`
        tells by it a push whose waiter was killed from one that is still waited for."""
        with self._write() as conn:
            conn.execute(
                "UPDATE pushes SET waiter = ?, updated_at = ? WHERE id = ?",
                (owner or default_owner(), self._now(), push_id),
            )

    def _push_abandoned(self, row: sqlite3.Row, now: datetime) -> bool:
        """Whether nobody will settle this push any more, so `retry` must (`push_abandoned`)."""
        if row["state"] != "waiting":
            return False
        git_pid = None if row["git_pid"] is None else int(row["git_pid"])
        created = as_utc(datetime.fromisoformat(row["created_at"]))
        return push_abandoned(created, row["waiter"], git_pid, now, self._stale_after)

    def abandoned_pushes(self) -> list[PushRecord]:
        """Pushes still "waiting" that no waiter will settle (see `_push_abandoned`)."""
        now = as_utc(self._clock())
        with self._guard():
            rows = self._db.execute(
                "SELECT * FROM pushes WHERE state = 'waiting' ORDER BY id"
            ).fetchall()
        return [self._push(row) for row in rows if self._push_abandoned(row, now)]

    def expire_abandoned_pushes(self, reason: str) -> list[PushRecord]:
        """Expire the abandoned pushes: their triggers become PENDING for `retry`, which
        checks that the push landed before sending (as for a push the waiter gave up on)."""
        expired = []
        for push in self.abandoned_pushes():
            self._settle_push(push.id, "expired", reason, TriggerState.PENDING, only_waiting=True)
            expired.append(push)
        return expired

    def triggers_for_push(self, push_id: int) -> list[TriggerRecord]:
        """The triggers whose commit this push carried (recorded by it, or linked to it)."""
        return self._select_triggers(f"WHERE {self._PUSH_TRIGGERS} ORDER BY id", (push_id, push_id))
