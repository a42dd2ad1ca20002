"""The `Ledger`: one class over the ledger file, made of its groups of operations (pushes
and landing, triggers and claims, runs and their followers, token notes), so callers keep
one object to open, use and close.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from datachonk_hooks.delivery.ledger.backlog import LEDGER_FILE
from datachonk_hooks.delivery.ledger.location import state_dir
from datachonk_hooks.delivery.ledger.owners import STALE_AFTER
from datachonk_hooks.delivery.ledger.records import LedgerError, utcnow
from datachonk_hooks.delivery.ledger.runs import RunLedger
from datachonk_hooks.delivery.ledger.tokens import TokenNotes
from datachonk_hooks.delivery.ledger.triggers import TriggerLedger
from datachonk_hooks.fileio import private_dir

if TYPE_CHECKING:
    import pygit2


class Ledger(TriggerLedger, RunLedger, TokenNotes):
    """Transactional access to the ledger file; open one per process and close it."""

    @classmethod
    def for_repo(
        cls,
        repo: pygit2.Repository,
        *,
        clock: Callable[[], datetime] = utcnow,
        busy_timeout: float = 10.0,
        stale_after: timedelta = STALE_AFTER,
    ) -> Ledger:
        """The ledger of `repo`'s clone: `<git common dir>/datachonk/ledger.sqlite3`."""
        folder = state_dir(repo)
        try:
            private_dir(folder)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the ledger folder {folder} ({exc.strerror or exc}); "
                "check that you may write to the repository's .git folder"
            ) from None
        return cls(
            folder / LEDGER_FILE,
            clock=clock,
            busy_timeout=busy_timeout,
            stale_after=stale_after,
        )
