"""The ledger's runs: what dbt Cloud said about a triggered run, how it ended, who follows it
to its end, and which ended runs the developer has not been told about yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from datachonk_hooks.delivery.ledger.backlog import RUNS_TO_FOLLOW, UNTOLD
from datachonk_hooks.delivery.ledger.owners import (
    FOLLOW_FOR,
    NOT_FOLLOWED,
    default_owner,
    follower_gone,
)
from datachonk_hooks.delivery.ledger.records import (
    TERMINAL_RUN_STATUSES,
    RunOutcome,
    TriggerRecord,
    TriggerState,
    as_utc,
    to_text,
)
from datachonk_hooks.delivery.ledger.rows import LedgerRows


class RunLedger(LedgerRows):
    """Runs: their status, their end, their follower, telling the developer."""

    def update_run_status(self, trigger_id: int, run_status: int) -> TriggerRecord:
        """A status seen while watching; a terminal one (10, 20, 30) finishes the trigger."""
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            if row["state"] == TriggerState.FINISHED:
                return self._trigger(row)  # a finished run never changes again
            if run_status in TERMINAL_RUN_STATUSES:
                return self._update_trigger(
                    conn,
                    trigger_id,
                    state=TriggerState.FINISHED.value,
                    run_status=run_status,
                    claimed_by=None,
                    claimed_at=None,
                )
            return self._update_trigger(conn, trigger_id, run_status=run_status)

    def record_outcome(
        self, trigger_id: int, outcome: RunOutcome, *, told: bool = False
    ) -> TriggerRecord:
        """A run's end (see `finish_run`); the record as it is now."""
        return self.finish_run(trigger_id, outcome, told=told)[0]

    def finish_run(
        self, trigger_id: int, outcome: RunOutcome, *, told: bool = False
    ) -> tuple[TriggerRecord, bool]:
        """A run's end, with what the outcome line needs; (the record, whether this call
        recorded the end). `told`: the developer saw it end (a foreground `watch`), so it is
        not told again. A first recorded end is kept: dbt Cloud never changes a finished
        run, and two processes may see the same end (only the first notifies). A status
        that is not an end is just noted."""
        if outcome.status not in TERMINAL_RUN_STATUSES:
            return self.update_run_status(trigger_id, outcome.status), False
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            told_at = self._now() if told else row["told_at"]
            if row["state"] == TriggerState.FINISHED and row["finished_at"] is not None:
                return self._update_trigger(conn, trigger_id, told_at=told_at), False
            finished = self._update_trigger(
                conn,
                trigger_id,
                state=TriggerState.FINISHED.value,
                run_status=outcome.status,
                claimed_by=None,
                claimed_at=None,
                finished_at=to_text(outcome.finished_at or self._clock()),
                duration_s=outcome.duration_s,
                failed_step_index=outcome.failed_step_index,
                failed_step=outcome.failed_step,
                error_line=outcome.error_line,
                log_tail=outcome.log_tail,
                told_at=told_at,
            )
            return finished, True

    def triggers_for_run(self, run_id: int) -> list[TriggerRecord]:
        return self._select_triggers("WHERE run_id = ? ORDER BY id", (run_id,))

    def follow(self, trigger_id: int, owner: str | None = None) -> bool:
        """Claim following a run to its end for `owner` (default: this process); False when
        a live process follows it already, or it has ended or is not to be followed."""
        owner = owner or default_owner()
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            if row["state"] != TriggerState.TRIGGERED or row["run_id"] is None:
                return False
            current = row["followed_by"]
            if current not in (None, owner) and not follower_gone(current):
                return False
            conn.execute(
                "UPDATE triggers SET followed_by = ?, followed_at = ? WHERE id = ?",
                (owner, self._now(), trigger_id),
            )
            return True

    def stop_following(self, trigger_id: int) -> None:
        """Nobody follows this run any more (`follow: false`, or the time limit passed):
        no waiter takes it over; `history` asks dbt Cloud about it."""
        with self._write() as conn:
            conn.execute(
                "UPDATE triggers SET followed_by = ?, followed_at = ? WHERE id = ?",
                (NOT_FOLLOWED, self._now(), trigger_id),
            )

    def untold(self) -> list[TriggerRecord]:
        """Runs that ended since the developer was last told, oldest first."""
        return self._select_triggers(f"WHERE {UNTOLD} ORDER BY updated_at, id")

    def mark_told(self, trigger_ids: Sequence[int]) -> list[int]:
        """Mark outcomes as told; returns the ids this call marked (another process telling
        at the same moment gets the others), so each outcome is told once."""
        marked = []
        with self._write() as conn:
            now = self._now()
            for trigger_id in trigger_ids:
                done = conn.execute(
                    "UPDATE triggers SET told_at = ? WHERE id = ? AND told_at IS NULL",
                    (now, trigger_id),
                )
                if done.rowcount:
                    marked.append(trigger_id)
        return marked

    def unfinished_runs(self, limit: int = 50) -> list[TriggerRecord]:
        """Triggered runs whose end this ledger has not seen, newest first."""
        return self._select_triggers(
            "WHERE state = ? AND run_id IS NOT NULL ORDER BY id DESC LIMIT ?",
            (TriggerState.TRIGGERED.value, limit),
        )

    def unfollowed_runs(self, max_age: timedelta = FOLLOW_FOR) -> list[TriggerRecord]:
        """Unfinished runs of pushes younger than `max_age` that nobody follows although
        someone should (a follower that was killed, or a run delivered by `retry`), oldest
        first: the next waiter takes them over."""
        since = to_text(as_utc(self._clock()) - max_age)
        with self._guard():
            rows = self._db.execute(RUNS_TO_FOLLOW, (since,)).fetchall()
        ids = [row["id"] for row in rows if follower_gone(row["followed_by"])]
        return [record for i in ids if (record := self.get(i)) is not None]
