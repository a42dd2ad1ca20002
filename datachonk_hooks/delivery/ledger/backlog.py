"""What the hook's fast path and the `Ledger` both ask of the ledger file, said once.

The fast path (`prepush.fast_ledger`) reads the file with bare `sqlite3` on pushes that touch
no model, and `Ledger` runs the same SQL, so the two never disagree about which triggers
still wait for delivery or which runs need a follower. This module imports nothing: the
fast path imports it on every push.
"""

from __future__ import annotations

#: the package's folder under the git common dir (`location.state_dir`), and the ledger file
STATE_DIR = "datachonk"
LEDGER_FILE = "ledger.sqlite3"

#: trigger states the hook may act on (`Ledger.deliverable` keeps a subset of these rows:
#: pending ones, sending ones with a stale claim, and those awaiting an abandoned push)
BACKLOG_STATES = ("pending", "sending", "awaiting_push")
#: a WHERE condition: the trigger is in one of BACKLOG_STATES
IN_BACKLOG = "state IN (" + ", ".join(f"'{state}'" for state in BACKLOG_STATES) + ")"

#: How long a pending trigger rests after its last attempt before a push that triggers
#: nothing hands it to a waiter again. What keeps a trigger pending (no token, no host, dbt
#: Cloud down or refusing) rarely ends between two pushes; retrying on each one would put
#: every docs-only push back on the slow path (pygit2, a waiter) only to fail again.
#: `datachonk-hook retry` and any push that triggers still deliver it at once.
PENDING_REST_SECONDS = 600
#: when the pending trigger rested longest had its last attempt (NULL: none is pending)
OLDEST_PENDING = "SELECT MIN(updated_at) FROM triggers WHERE state = 'pending'"
#: The claims of triggers being sent; one that is stale (`owners.claim_stale`) is the next
#: waiter's to send (`Ledger.deliverable`), a live one is its sender's.
SENDING_CLAIMS = "SELECT claimed_by, claimed_at FROM triggers WHERE state = 'sending'"
#: The waiting pushes that triggers await; one nobody will settle (`owners.push_abandoned`)
#: leaves its triggers to the next waiter (`Ledger.deliverable`), a live one to its own.
AWAITED_PUSHES = (
    "SELECT DISTINCT p.created_at, p.waiter, p.git_pid FROM triggers t"
    " JOIN pushes p ON p.id = t.push_id WHERE t.state = 'awaiting_push' AND p.state = 'waiting'"
)

#: a WHERE condition: the run ended and the developer was not told how (`Ledger.untold`)
UNTOLD = "state = 'finished' AND told_at IS NULL"

#: Unfinished runs of pushes triggered at or after `?` (ISO text in UTC: now minus
#: `owners.FOLLOW_FOR`), with their follower: the runs someone should follow to their end.
#: Those whose follower is gone (`owners.follower_gone`) nobody follows any more, and the
#: next waiter takes them over (`Ledger.unfollowed_runs`).
RUNS_TO_FOLLOW = (
    "SELECT id, followed_by FROM triggers WHERE state = 'triggered' AND run_id IS NOT NULL"
    " AND push_id IS NOT NULL AND created_at >= ? ORDER BY id"
)
