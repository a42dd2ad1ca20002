"""The ledger file's tables, and the migrations that bring an older file up to date.

Kept apart from the code that opens the file (`store`) because it only ever grows: one more
tuple of statements per version, each applied once, in order, inside one transaction.
"""

from __future__ import annotations

#: Bumped whenever the tables change; `_MIGRATIONS[n]` takes a file from version n to n + 1.
SCHEMA_VERSION = 4

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE IF NOT EXISTS pushes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            remote_name TEXT NOT NULL,
            remote_url TEXT NOT NULL,
            git_pid INTEGER,
            tracking_before TEXT NOT NULL,
            foreground INTEGER NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS triggers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            account_id INTEGER NOT NULL,
            job_id INTEGER NOT NULL,
            sha TEXT NOT NULL,
            branch TEXT,
            request TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            run_id INTEGER,
            run_url TEXT,
            run_status INTEGER,
            push_id INTEGER REFERENCES pushes (id),
            source TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_attempt_at TEXT,
            claimed_by TEXT,
            claimed_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS triggers_key ON triggers (account_id, job_id, sha)",
        "CREATE INDEX IF NOT EXISTS triggers_push ON triggers (push_id)",
        "CREATE INDEX IF NOT EXISTS triggers_state ON triggers (state)",
    ),
    # 2: the landing waiter of a push ("pid@host"), so a waiter that was killed is noticed
    ("ALTER TABLE pushes ADD COLUMN waiter TEXT",),
    # 3: every ref of every push that carried a trigger's commit (landing is judged per
    # commit: one landed ref is enough), and dbt Cloud refusing a token (for honest lines)
    (
        """
        CREATE TABLE IF NOT EXISTS trigger_refs (
            trigger_id INTEGER NOT NULL REFERENCES triggers (id),
            push_id INTEGER NOT NULL REFERENCES pushes (id),
            remote_ref TEXT NOT NULL,
            PRIMARY KEY (trigger_id, push_id, remote_ref)
        )
        """,
        "CREATE INDEX IF NOT EXISTS trigger_refs_push ON trigger_refs (push_id)",
        # the commits the `git push` command line named (a sha, a detached HEAD): the
        # waiter looks for the refs pre-commit did not show among tracking refs moved to them
        "ALTER TABLE pushes ADD COLUMN pushed_tips TEXT",
        # when a send of the trigger last ended without knowing whether dbt Cloud created the
        # run (no answer, a sender that died mid-send): it is not sent again for a while
        "ALTER TABLE triggers ADD COLUMN unknown_since TEXT",
        "INSERT OR IGNORE INTO trigger_refs (trigger_id, push_id, remote_ref)"
        " SELECT id, push_id, 'refs/heads/' || branch FROM triggers"
        " WHERE push_id IS NOT NULL AND branch IS NOT NULL",
        """
        CREATE TABLE IF NOT EXISTS token_refusals (
            host TEXT NOT NULL,
            account_id INTEGER NOT NULL,
            status INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (host, account_id)
        )
        """,
    ),
    # 4: how a followed run ended (the outcome lines and notifications), and when the
    # developer was told; runs that ended before this version are not told again
    (
        "ALTER TABLE triggers ADD COLUMN finished_at TEXT",
        "ALTER TABLE triggers ADD COLUMN duration_s REAL",
        "ALTER TABLE triggers ADD COLUMN failed_step_index INTEGER",
        "ALTER TABLE triggers ADD COLUMN failed_step TEXT",
        "ALTER TABLE triggers ADD COLUMN error_line TEXT",
        "ALTER TABLE triggers ADD COLUMN log_tail TEXT",
        "ALTER TABLE triggers ADD COLUMN told_at TEXT",
        "UPDATE triggers SET told_at = updated_at WHERE state = 'finished'",
        # who follows the run ("pid@host"; NOT_FOLLOWED: nobody will), so one process does
        "ALTER TABLE triggers ADD COLUMN followed_by TEXT",
        "ALTER TABLE triggers ADD COLUMN followed_at TEXT",
        # versions before 4 recorded the retired default host when none was configured:
        # an undelivered trigger goes to the host configured when it is sent (the same one
        # if cloud.getdbt.com is configured on purpose), never to that one by default
        "UPDATE triggers SET host = '' WHERE host = 'https://cloud.getdbt.com'"
        " AND run_id IS NULL AND state IN ('awaiting_push', 'pending', 'sending')",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION
