"""The ledger's notes on tokens dbt Cloud refused, so the next push with the same token says
so honestly. Only a one-way fingerprint of the token is kept, never the token.
"""

from __future__ import annotations

from datachonk_hooks.delivery.ledger.store import LedgerStore


class TokenNotes(LedgerStore):
    """dbt Cloud's last refusal of a token, per host and account."""

    def note_token_refused(self, host: str, account_id: int, status: int, fingerprint: str) -> None:
        """dbt Cloud answered 401/403 to the token with this fingerprint (`Token.fingerprint`,
        a one-way digest): the next push with the same token says so."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO token_refusals (host, account_id, status, fingerprint,"
                " at) VALUES (?, ?, ?, ?, ?)",
                (host, account_id, status, fingerprint, self._now()),
            )

    def note_token_accepted(self, host: str, account_id: int) -> None:
        """A request with the token went through: forget an earlier refusal."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM token_refusals WHERE host = ? AND account_id = ?",
                (host, account_id),
            )

    def token_refused(self, host: str, account_id: int, fingerprint: str) -> int | None:
        """The HTTP status of dbt Cloud's last refusal of this token, if it refused it."""
        with self._guard():
            row = self._db.execute(
                "SELECT status FROM token_refusals WHERE host = ? AND account_id = ?"
                " AND fingerprint = ?",
                (host, account_id, fingerprint),
            ).fetchone()
        return None if row is None else int(row["status"])
