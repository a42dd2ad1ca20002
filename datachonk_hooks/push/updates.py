"""What a push carries: `PushUpdate` records, their two adapters, and the pushed range.

git hands a pre-push hook one stdin line per ref; pre-commit hands its hooks only the first
ref with something new, in `PRE_COMMIT_*` variables. Both become `PushUpdate` records so the
rest of the package never cares which one ran it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pygit2
from pygit2.enums import SortMode

from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.push.gitrepo import ZERO_SHA

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class PushInputError(DatachonkError):
    """git's stdin or pre-commit's variables did not look like a push."""


@dataclass(frozen=True)
class PushUpdate:
    """One ref of a push, as git describes it."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def is_delete(self) -> bool:
        return self.local_ref == "(delete)" or set(self.local_sha) == {"0"}

    @property
    def is_new_ref(self) -> bool:
        return set(self.remote_sha) == {"0"}

    @property
    def branch(self) -> str | None:
        """The remote branch name (`main` for `refs/heads/main`); None for tags and others."""
        if self.remote_ref.startswith("refs/heads/"):
            return self.remote_ref.removeprefix("refs/heads/")
        return None


@dataclass(frozen=True)
class PushRange:
    """The commits an update brings to the remote and the commit it builds on."""

    update: PushUpdate
    tip: pygit2.Commit
    base: pygit2.Commit | None  # None: the remote has none of the history (root push)
    commits: tuple[pygit2.Commit, ...]  # oldest first


def updates_from_stdin(lines: Iterable[str]) -> list[PushUpdate]:
    """Parse git's pre-push stdin: `<local-ref> SP <local-sha> SP <remote-ref> SP <remote-sha>`."""
    updates = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4 or not (_SHA.match(fields[1]) and _SHA.match(fields[3])):
            raise PushInputError(
                f"pre-push input line {number} is not '<local-ref> <sha> <remote-ref> <sha>':"
                f" {line.strip()[:120]!r}"
            )
        updates.append(PushUpdate(*fields))
    return updates


def updates_from_pre_commit(env: Mapping[str, str], repo: pygit2.Repository) -> list[PushUpdate]:
    """The one update pre-commit describes in its `PRE_COMMIT_*` variables.

    FROM/TO are unset on the first push of a root commit: then the local branch is the tip
    and nothing is on the remote yet. Manual runs may pass symbolic refs (`HEAD~1`).
    """
    to_ref = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_SOURCE")
    from_ref = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_ORIGIN")
    local_ref = env.get("PRE_COMMIT_LOCAL_BRANCH") or "HEAD"
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH") or _default_remote_ref(repo, local_ref)
    if not to_ref:
        to_ref, from_ref = local_ref, None
    local_sha = _resolve_sha(repo, to_ref, "PRE_COMMIT_TO_REF")
    remote_sha = _resolve_sha(repo, from_ref, "PRE_COMMIT_FROM_REF") if from_ref else ZERO_SHA
    return [PushUpdate(local_ref, local_sha, remote_ref, remote_sha)]


def _default_remote_ref(repo: pygit2.Repository, local_ref: str) -> str:
    if local_ref.startswith("refs/"):
        return local_ref
    if local_ref == "HEAD" and not (repo.head_is_detached or repo.head_is_unborn):
        return repo.head.name
    return f"refs/heads/{local_ref}"


def _resolve_sha(repo: pygit2.Repository, ref: str, variable: str) -> str:
    if _SHA.match(ref):
        return ref
    try:
        return str(repo.revparse_single(ref).id)
    except (KeyError, ValueError, pygit2.GitError):
        raise PushInputError(f"{variable}={ref!r} does not name a commit") from None


def tracking_refs(repo: pygit2.Repository, remote: str) -> dict[str, str]:
    """`refs/remotes/<remote>/*` -> sha: what this clone believes the remote holds."""
    prefix = f"refs/remotes/{remote}/"
    # a remote named like `origin/fork` keeps its refs under refs/remotes/origin/fork/
    others = tuple(
        f"refs/remotes/{name}/"
        for name in repo.remotes.names()
        if name and name.startswith(f"{remote}/")
    )
    refs = {}
    for name in repo.references:
        if name.startswith(prefix) and not name.endswith("/HEAD") and not name.startswith(others):
            target = repo.references[name].resolve().target
            refs[name] = str(target)
    return refs


def contains(repo: pygit2.Repository, newer: str, sha: str) -> bool:
    """Whether commit `newer` is `sha` or has it in its history (False for unknown shas)."""
    if newer == sha:
        return True
    try:
        return bool(repo.descendant_of(pygit2.Oid(hex=newer), pygit2.Oid(hex=sha)))
    except (KeyError, ValueError, TypeError, pygit2.GitError):
        return False


def on_remote(repo: pygit2.Repository, remote: str, sha: str) -> bool:
    """Whether `sha` is reachable from a remote-tracking ref of `remote`: whether this clone
    last saw the remote holding it (what dbt Cloud, which clones from there, can build)."""
    return any(contains(repo, tip, sha) for tip in tracking_refs(repo, remote).values())


def pushed_range(
    repo: pygit2.Repository,
    update: PushUpdate,
    remote: str,
    remote_tips: Iterable[str] | None = None,
) -> PushRange | None:
    """The commits `update` sends and its base; None for deletes and non-commit objects.

    Known remote sha: base is that commit. New branch, or a remote sha this clone lacks
    (force push without fetch): the commits are those not reachable from any
    remote-tracking ref of `remote`, as pre-commit computes them, and the base is the first
    parent of the oldest of them. `remote_tips` replaces the current tracking refs when the
    push has already moved them (the waiter looking back at a landed push).
    """
    if update.is_delete:
        return None
    try:
        tip = repo[update.local_sha].peel(pygit2.Commit)  # annotated tags peel to commits
    except (KeyError, ValueError, pygit2.GitError):
        return None
    walker = repo.walk(tip.id, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    known_remote = not update.is_new_ref and _is_commit(repo, update.remote_sha)
    if known_remote:
        base: pygit2.Commit | None = repo[update.remote_sha].peel(pygit2.Commit)
        assert base is not None
        walker.hide(base.id)
        return PushRange(update, tip, base, tuple(walker))
    tips = tracking_refs(repo, remote).values() if remote_tips is None else remote_tips
    for sha in tips:
        if _is_commit(repo, sha):
            walker.hide(pygit2.Oid(hex=sha))
    commits = tuple(walker)
    if not commits:  # a new ref for commits the remote already has
        return PushRange(update, tip, tip, ())
    oldest = commits[0]
    base = oldest.parents[0] if oldest.parents else None
    return PushRange(update, tip, base, commits)


def _is_commit(repo: pygit2.Repository, sha: str) -> bool:
    try:
        repo[sha].peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        return False
    return True
