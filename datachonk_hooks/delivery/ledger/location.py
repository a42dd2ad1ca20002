"""Where a clone's ledger lives: `<git common dir>/datachonk/ledger.sqlite3`, one file shared
by every worktree of the clone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from datachonk_hooks.delivery.ledger.backlog import LEDGER_FILE, STATE_DIR
from datachonk_hooks.delivery.ledger.records import LedgerError

if TYPE_CHECKING:
    import pygit2


def state_dir(repo: pygit2.Repository) -> Path:
    """`<git common dir>/datachonk`: the package's state, shared by all worktrees."""
    return common_dir(repo) / STATE_DIR


def ledger_file(repo: pygit2.Repository) -> Path:
    """Where the clone's ledger is (it may not exist yet)."""
    return state_dir(repo) / LEDGER_FILE


def common_dir(repo: pygit2.Repository) -> Path:
    """The git common dir: `.git` of the main worktree, shared by every linked worktree.

    pygit2 gives a linked worktree's own folder (`.git/worktrees/<name>/`); like
    `git rev-parse --git-common-dir`, follow the `commondir` file found there.
    """
    git_dir = Path(repo.path)
    pointer = git_dir / "commondir"
    try:
        target = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return git_dir.resolve()
    except OSError as exc:
        raise LedgerError(f"cannot read {pointer} ({exc.strerror or exc})") from None
    return (git_dir / target).resolve() if target else git_dir.resolve()
