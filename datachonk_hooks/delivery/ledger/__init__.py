"""The package's state: one SQLite file under the git common dir, shared by all worktrees.

The ledger is what guarantees that a commit triggers one run and that nothing is lost. A
trigger is keyed by (account_id, job_id, sha); every read-modify-write runs inside one
`BEGIN IMMEDIATE` transaction, so two processes at once (two pushes, two landing waiters, a
waiter and a manual `run`) can never both record, or both claim, the same trigger. Nothing
secret is ever stored: a `TriggerRequest` carries no token.

The modules, each with one job:

- `records`: the typed records (`TriggerRecord`, `PushRecord`, `RunOutcome`, `TriggerState`)
  and `LedgerError`; `rows` reads rows into them;
- `schema` (tables and migrations) and `store` (opening, repairing, transactions);
- the `Ledger`'s operations: `pushes` (pushes and landing), `triggers` (recording, claims,
  delivery), `runs` (status, outcomes, followers), `tokens` (refused tokens), put together
  in `book`;
- `location` (where a clone's ledger is), `owners` ("pid@host" and whether it lives), and
  `backlog`: the SQL the hook's fast path shares with the `Ledger`, importing nothing.

The names below are loaded on first use, not here: the fast path imports `backlog` on
every push, which runs this file first, and must not pay for sqlite3 and the `Ledger`.
"""

from __future__ import annotations

#: `typing` alone would cost the fast path more than this file; type checkers take it as True
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datachonk_hooks.delivery.ledger.backlog import LEDGER_FILE, STATE_DIR
    from datachonk_hooks.delivery.ledger.book import Ledger
    from datachonk_hooks.delivery.ledger.location import common_dir, ledger_file, state_dir
    from datachonk_hooks.delivery.ledger.owners import (
        ABANDONED_AFTER,
        FOLLOW_FOR,
        NOT_FOLLOWED,
        WAITER_START_GRACE,
        follower_gone,
        pid_alive,
    )
    from datachonk_hooks.delivery.ledger.records import (
        SOURCES,
        TERMINAL_RUN_STATUSES,
        LedgerError,
        PushRecord,
        RunOutcome,
        TriggerRecord,
        TriggerState,
        as_utc,
        utcnow,
    )
    from datachonk_hooks.delivery.ledger.schema import _MIGRATIONS, SCHEMA_VERSION

#: each public name, by the module that defines it
_HOMES = {
    "LEDGER_FILE": "backlog",
    "STATE_DIR": "backlog",
    "Ledger": "book",
    "common_dir": "location",
    "ledger_file": "location",
    "state_dir": "location",
    "FOLLOW_FOR": "owners",
    "NOT_FOLLOWED": "owners",
    "follower_gone": "owners",
    "pid_alive": "owners",
    "ABANDONED_AFTER": "owners",
    "WAITER_START_GRACE": "owners",
    "SOURCES": "records",
    "TERMINAL_RUN_STATUSES": "records",
    "LedgerError": "records",
    "PushRecord": "records",
    "RunOutcome": "records",
    "TriggerRecord": "records",
    "TriggerState": "records",
    "as_utc": "records",
    "utcnow": "records",
    "_MIGRATIONS": "schema",
    "SCHEMA_VERSION": "schema",
}

__all__ = [
    "ABANDONED_AFTER",
    "FOLLOW_FOR",
    "LEDGER_FILE",
    "NOT_FOLLOWED",
    "SCHEMA_VERSION",
    "SOURCES",
    "STATE_DIR",
    "TERMINAL_RUN_STATUSES",
    "WAITER_START_GRACE",
    "_MIGRATIONS",
    "Ledger",
    "LedgerError",
    "PushRecord",
    "RunOutcome",
    "TriggerRecord",
    "TriggerState",
    "as_utc",
    "common_dir",
    "follower_gone",
    "ledger_file",
    "pid_alive",
    "state_dir",
    "utcnow",
]


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use (PEP 562), then keep it here."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
