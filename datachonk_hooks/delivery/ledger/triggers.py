"""The ledger's triggers: recording one per (account, job, commit), claiming one for
sending so only one process sends it, what became of the send, and which triggers are due
or being worked on by another live process.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger.backlog import IN_BACKLOG
from datachonk_hooks.delivery.ledger.owners import default_owner, describe_owner
from datachonk_hooks.delivery.ledger.pushes import PushLedger
from datachonk_hooks.delivery.ledger.records import (
    SOURCES,
    LedgerError,
    TriggerRecord,
    TriggerState,
    as_utc,
    to_text,
)
from datachonk_hooks.delivery.ledger.rows import request_json


def since_text(moment: datetime | None) -> str:
    """ " since 12:34:56 UTC", or "" without a time."""
    return f" since {as_utc(moment):%H:%M:%S} UTC" if moment is not None else ""


class TriggerLedger(PushLedger):
    """Triggers: recording, claiming, delivering."""

    def add_trigger(
        self,
        *,
        host: str,
        account_id: int,
        job_id: int,
        request: TriggerRequest,
        source: str,
        push_id: int | None = None,
        remote_ref: str | None = None,
        awaiting_push: bool = False,
        force: bool = False,
    ) -> tuple[TriggerRecord, bool]:
        """Record a trigger unless its (account, job, sha) is already known.

        Returns the record and whether it is new (or re-armed). A row left by a failed push
        is re-armed, because the same commit pushed again must trigger; `force` always adds.
        With `push_id`, the push's ref (`remote_ref`, default the request's branch) is noted
        as carrying the commit, also for a known row not sent yet: landing is judged per
        commit, and any ref that carried it and landed lets it be sent.
        """
        sha = request.git_sha
        if not sha:
            raise ValueError("a trigger needs the commit's sha (request.git_sha)")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, not {source!r}")
        state = TriggerState.AWAITING_PUSH if awaiting_push else TriggerState.PENDING
        if remote_ref is None and request.git_branch:
            remote_ref = f"refs/heads/{request.git_branch}"
        now = self._now()
        with self._write() as conn:
            if push_id is not None and not self._push_exists(conn, push_id):
                raise LedgerError(f"there is no push {push_id} in the ledger {self.path}")
            known = None if force else self._known_trigger(conn, account_id, job_id, sha)
            if known is not None and known["state"] != TriggerState.PUSH_FAILED:
                if known["state"] in (TriggerState.AWAITING_PUSH, TriggerState.PENDING):
                    self._link_ref(conn, int(known["id"]), push_id, remote_ref)
                return self._trigger(known), False
            values: dict[str, object] = {
                "host": host,
                "branch": request.git_branch,
                "request": request_json(request),
                "state": state.value,
                "push_id": push_id,
                "source": source,
            }
            if known is not None:  # left by a failed push: re-armed
                record = self._update_trigger(conn, int(known["id"]), reason=None, **values)
                self._link_ref(conn, record.id, push_id, remote_ref)
                return record, True
            values.update(account_id=account_id, job_id=job_id, sha=sha, attempts=0)
            cursor = conn.execute(
                f"INSERT INTO triggers ({', '.join(values)}, created_at, updated_at)"
                f" VALUES ({', '.join('?' for _ in values)}, ?, ?)",
                (*values.values(), now, now),
            )
            assert cursor.lastrowid is not None
            self._link_ref(conn, cursor.lastrowid, push_id, remote_ref)
            return self._trigger(self._must_get(conn, cursor.lastrowid)), True

    @staticmethod
    def _known_trigger(
        conn: sqlite3.Connection, account_id: int, job_id: int, sha: str
    ) -> sqlite3.Row | None:
        """The trigger already recorded for (account, job, sha): the newest one not left by a
        failed push, else the newest one left by a failed push; None if there is none."""
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM triggers WHERE account_id = ? AND job_id = ? AND sha = ?"
            " ORDER BY (state = ?), id DESC",
            (account_id, job_id, sha, TriggerState.PUSH_FAILED.value),
        ).fetchone()
        return row

    @staticmethod
    def _link_ref(
        conn: sqlite3.Connection, trigger_id: int, push_id: int | None, remote_ref: str | None
    ) -> None:
        """Note that the push's `remote_ref` carried the trigger's commit (with a push only)."""
        if push_id is not None and remote_ref:
            conn.execute(
                "INSERT OR IGNORE INTO trigger_refs (trigger_id, push_id, remote_ref)"
                " VALUES (?, ?, ?)",
                (trigger_id, push_id, remote_ref),
            )

    def claim(self, trigger_id: int, owner: str | None = None) -> TriggerRecord | None:
        """Take a trigger for sending; None when another process holds it or it is not due.

        A PENDING trigger, or a SENDING one whose claim is stale (its owner died, or it has
        held it longer than `stale_after`), becomes SENDING for `owner`. Only one caller can
        win: the check and the update run in one IMMEDIATE transaction.
        """
        owner = owner or default_owner()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM triggers WHERE id = ?", (trigger_id,)).fetchone()
            if row is None:
                return None
            state = row["state"]
            if state == TriggerState.SENDING:
                if not self._is_stale(row["claimed_by"], row["claimed_at"]):
                    return None
            elif state != TriggerState.PENDING:
                return None
            now = self._now()
            return self._update_trigger(
                conn,
                trigger_id,
                state=TriggerState.SENDING.value,
                attempts=int(row["attempts"]) + 1,
                first_attempt_at=row["first_attempt_at"] or now,
                claimed_by=owner,
                claimed_at=now,
            )

    def mark_triggered(
        self, trigger_id: int, *, run_id: int, run_url: str | None, run_status: int
    ) -> TriggerRecord:
        """dbt Cloud accepted the trigger: record its run and release the claim."""
        return self._move(
            trigger_id,
            None,
            state=TriggerState.TRIGGERED.value,
            reason=None,
            run_id=run_id,
            run_url=run_url,
            run_status=run_status,
            claimed_by=None,
            claimed_at=None,
            unknown_since=None,
        )

    def mark_pending(
        self, trigger_id: int, reason: str, *, unknown_since: datetime | None = None
    ) -> TriggerRecord:
        """A delivery failed: back to PENDING with the reason, so `retry` sends it later.

        Only a SENDING or PENDING trigger moves; one whose run is already known (or whose
        push failed) is returned unchanged, so a late failure never causes a second run.
        `unknown_since`: when the last send without an answer went out (dbt Cloud may still
        create its run).
        """
        from datachonk_hooks.sanitize import sanitize  # the reason is mostly dbt Cloud's words

        changes: dict[str, object] = {
            "state": TriggerState.PENDING.value,
            "reason": sanitize(reason),
            "claimed_by": None,
            "claimed_at": None,
        }
        if unknown_since is not None:
            changes["unknown_since"] = to_text(unknown_since)
        return self._move(trigger_id, (TriggerState.SENDING, TriggerState.PENDING), **changes)

    def record_host(self, trigger_id: int, host: str) -> TriggerRecord:
        """Note the host a trigger recorded without one (`host` "": none was configured
        when it was pushed) was sent to. Only an empty host is filled, and only by the
        sender that got the run: while pending, the row keeps "" so that each attempt uses
        the host configured at that time, and a mistyped host is never kept."""
        with self._write() as conn:
            conn.execute(
                "UPDATE triggers SET host = ?, updated_at = ? WHERE id = ? AND host = ''",
                (host, self._now(), trigger_id),
            )
            return self._trigger(self._must_get(conn, trigger_id))

    def deliverable(self) -> list[TriggerRecord]:
        """PENDING triggers, SENDING ones with a stale claim and AWAITING_PUSH ones of an
        abandoned push (`expire_abandoned_pushes` makes those pending), oldest first."""
        abandoned = {push.id for push in self.abandoned_pushes()}
        with self._guard():
            rows = self._db.execute(
                f"SELECT * FROM triggers WHERE {IN_BACKLOG} ORDER BY created_at, id"
            ).fetchall()
        return [
            self._trigger(row)
            for row in rows
            if row["state"] == TriggerState.PENDING
            or (row["state"] == TriggerState.AWAITING_PUSH and row["push_id"] in abandoned)
            or (
                row["state"] == TriggerState.SENDING
                and self._is_stale(row["claimed_by"], row["claimed_at"])
            )
        ]

    def in_flight(self) -> list[tuple[TriggerRecord, str]]:
        """Triggers another live process is working on, with what it is doing: being sent
        (a claim that is not stale), or waiting for its push to land (a push not abandoned).
        `retry` shows these instead of saying there is nothing to do."""
        abandoned = {push.id for push in self.abandoned_pushes()}
        found = []
        for record in self._select_triggers(
            "WHERE state IN (?, ?) ORDER BY id",
            (TriggerState.SENDING.value, TriggerState.AWAITING_PUSH.value),
        ):
            if record.state is TriggerState.SENDING:
                claimed_at = to_text(record.claimed_at) if record.claimed_at else None
                if self._is_stale(record.claimed_by, claimed_at):
                    continue
                sender = describe_owner(record.claimed_by)
                found.append((record, f"being sent by {sender}{since_text(record.claimed_at)}"))
            elif record.push_id is not None and record.push_id not in abandoned:
                push = self.get_push(record.push_id)
                if push is not None and push.state == "waiting":
                    waiter = f" ({describe_owner(push.waiter)})" if push.waiter else ""
                    found.append(
                        (
                            record,
                            f"waiting for its push to {push.remote_name} to land{waiter}"
                            f"{since_text(push.created_at)}",
                        )
                    )
        return found

    def find(self, account_id: int, job_id: int, sha: str) -> TriggerRecord | None:
        """The newest trigger for this (account, job, sha), whatever its state."""
        found = self._select_triggers(
            "WHERE account_id = ? AND job_id = ? AND sha = ? ORDER BY id DESC LIMIT 1",
            (account_id, job_id, sha),
        )
        return found[0] if found else None

    def history(self, limit: int = 50) -> list[TriggerRecord]:
        """The latest triggers, newest first."""
        return self._select_triggers("ORDER BY id DESC LIMIT ?", (limit,))
