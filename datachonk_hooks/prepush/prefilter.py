"""The pre-push hook's fast path: a push that certainly triggers nothing costs a git call or two.

The hook is `always_run`, so its process starts on every push, and most pushes touch no
dbt model at all. Importing pygit2 alone costs about 70 ms; this module answers "nothing to
do" with the standard library's cheapest modules and `git diff` instead, and otherwise
lets the normal hook (`hook.pre_push_main`, the slow path) decide.

It may only skip when the slow path would certainly record, print and start nothing, so
anything unusual falls through: a dry run, a forced or foreground trigger, a delete, a tag, a
new branch whose base cannot be told from the remote-tracking refs (`base_of`), a pre-commit
push of several refs (the hook records those for the waiter), a push of more commit
ranges than `FAST_PATH_REFS`, unreadable input.
For each pushed ref with a base this clone has the push is skipped when:

- no changed path is named `dbt_project.yml` or `datachonk.yaml`; so the model paths are
  those of the pushed tree's current project files, and the settings did not change;
- no changed path with a model suffix lies under `models/` or under the model paths of
  its nearest `dbt_project.yml` (none above it: `models/`), a superset of the slow path's
  rule. Each project file's `model-paths` come from a small cache keyed by its blob id,
  filled by the slow path (`detect`), so a miss falls through and the next push hits;
- the ledger holds no trigger the next waiter would deliver (`Ledger.deliverable`, judged
  by the same `owners` checks: a claim or a waiting push whose process died; a pending
  trigger once it has rested), so the backlog still reaches a waiter, and no run whose
  follower died, so a waiter takes it over. Work a live waiter holds stays its own. Runs
  that ended untold (`Ledger.untold`) do not need the slow path: `tell_outcomes` prints
  their lines.

The cache (`fast_cache`) also keeps the detection rules parsed from a datachonk.yaml with a
`detect:` section, so a push of hand-written models does not import ruamel.yaml while that
file is unchanged.

This module decides; its helpers each do one part, with the standard library's cheapest
modules only: `fast_push` (git processes, the push's updates and changed paths),
`fast_models` (the model-path rules), `fast_cache` (the cache file, and what this process
learned for the slow path) and `fast_ledger` (the ledger's backlog, and outcomes to tell).
"""

from __future__ import annotations

import os
import sys

from datachonk_hooks.prepush.fast_cache import (
    State,
    activate,
)
from datachonk_hooks.prepush.fast_ledger import has_backlog
from datachonk_hooks.prepush.fast_models import (
    paths_reason,
)
from datachonk_hooks.prepush.fast_push import (
    DIFF,
    Git,
    TrackingTips,
    Update,
    base_of,
    from_pre_commit,
    from_stdin,
    git_common_dir,
)

#: `typing` and `collections.abc` cost the hook more than a git call: the annotations are
#: strings (`from __future__ import annotations`), and type checkers take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "ENV_DRY_RUN",
    "ENV_FORCE",
    "ENV_FOREGROUND",
    "Verdict",
    "check",
]

#: hook.ENV_DRY_RUN, ENV_FORCE and ENV_FOREGROUND: each means more than detection
ENV_DRY_RUN = "DATACHONK_DRY_RUN"
ENV_FORCE = "DATACHONK_FORCE_TRIGGER"
ENV_FOREGROUND = "DATACHONK_PUSH_FOREGROUND"
#: The most commit ranges (a ref's old and new commit; refs with the same pair count once)
#: one push may carry for the fast path to judge it. Each costs a `git diff` and a new
#: branch a `git rev-list`, which add up with thousands of refs (a mirror or a migration:
#: about 4 ms a ref): such a push takes the slow path, which reads the refs in one process
#: under the hook's time limit (`watchdog`).
FAST_PATH_REFS = 64


class Verdict:
    """What the fast path decided, and why (the reason is for tests and debugging)."""

    __slots__ = ("reason", "skip")

    def __init__(self, skip: bool, reason: str) -> None:
        self.skip = skip
        self.reason = reason

    def __repr__(self) -> str:
        return f"Verdict(skip={self.skip}, reason={self.reason!r})"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def check(
    env: Mapping[str, str],
    stdin_lines: Callable[[], list[str]],
    *,
    dry_run: bool = False,
    remote: str | None = None,
) -> Verdict:
    """Decide whether the push certainly triggers nothing (skip) or needs the slow path.

    Reads git's stdin through `stdin_lines` only when pre-commit is not running the hook (as
    `hook.read_push` does); the caller keeps the lines for the slow path. A strange push
    falls through; the caller also falls through on any exception.
    """
    State.backlog = None
    early = None
    if dry_run or _truthy(env.get(ENV_DRY_RUN)):
        early = "a dry run"
    elif _truthy(env.get(ENV_FORCE)) or env.get(ENV_FOREGROUND):
        early = "`datachonk push` runs the hook"
    if early is not None:
        common = git_common_dir(env)
        if common is not None:  # the slow path still uses (and fills) the cache
            activate(common)
        return Verdict(False, early)
    if any(
        env.get(k) for k in ("PRE_COMMIT_TO_REF", "PRE_COMMIT_SOURCE", "PRE_COMMIT_LOCAL_BRANCH")
    ):
        from datachonk_hooks.push.gitpush import git_push_command

        command = git_push_command()
        if command is not None and command.several_refs:  # pre-commit shows only the first
            return Verdict(False, "a push of several refs, of which pre-commit shows one")
        updates = from_pre_commit(env)
    else:
        updates = from_stdin(stdin_lines())
    if isinstance(updates, str):
        return Verdict(False, updates)
    try:
        reason = _why_not_skip(env, updates, remote)
    except (OSError, ValueError, UnicodeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    return Verdict(reason is None, reason or "nothing to do")


def _why_not_skip(
    env: Mapping[str, str], updates: Sequence[Update], remote: str | None = None
) -> str | None:
    """Why the updates need the slow path, or None when they certainly trigger nothing."""
    common = git_common_dir(env)
    if common is None:
        return "no git common dir"
    activate(common)  # the slow path, if it runs, reads and fills the cache too
    reason = None
    for update in updates:
        if set(update.local_sha) == {"0"}:
            reason = "a delete"
        elif not update.remote_ref.startswith("refs/heads/"):
            reason = f"{update.remote_ref} is not a branch"
    # the verdict depends on the commits alone: refs pushed at the same range count once
    updates = list({(u.local_sha, u.remote_sha): u for u in updates}.values())
    if reason is None and len(updates) > FAST_PATH_REFS:
        reason = f"a push of {len(updates)} different commit ranges"
    bases: list[str | None] = []
    if reason is None:
        tracking = TrackingTips(remote)
        for update in updates:
            base, reason = base_of(update, tracking)
            if reason is not None:
                break
            bases.append(base)
    diffs = (
        []
        if reason
        else [
            Git([*DIFF, base, u.local_sha, "--"]) if base else None
            for u, base in zip(updates, bases, strict=True)
        ]
    )
    # While git diffs: the ledger. Known either way, so a slow path that records nothing
    # need not open the ledger (and import what that takes) again.
    State.backlog = has_backlog(common, activate(common))
    changed = [diff.output() if diff else b"" for diff in diffs]  # reap every process
    if reason is None:
        reason = paths_reason(updates, changed)
    if reason is None and State.backlog:
        return "the ledger holds triggers to deliver"
    return reason


def main() -> int:  # pragma: no cover - a debugging aid, run with `python -m`
    """Print the verdict for git's stdin (or pre-commit's variables) without running the hook."""
    verdict = check(os.environ, lambda: sys.stdin.read().splitlines())
    print(verdict)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
