"""Reading repository state through pygit2: commits, branches and files at a commit.

State is always read from commits, never from the work tree: during pre-push, pre-commit
stashes unstaged edits, and the pushed commit is what dbt Cloud will build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygit2

from datachonk_hooks.errors import GitError

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class CommitInfo:
    """What the trigger needs to know about one commit."""

    sha: str
    subject: str
    message: str
    author: str

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @classmethod
    def of(cls, commit: pygit2.Commit) -> CommitInfo:
        message = _decode_message(commit)
        subject = next((line.strip() for line in message.splitlines() if line.strip()), "")
        return cls(str(commit.id), subject, message, _decode_author(commit))


def _decode_message(commit: pygit2.Commit) -> str:
    """The message as text, whatever encoding the commit claims (or lies about)."""
    try:
        return commit.message
    except (UnicodeDecodeError, LookupError):
        return commit.raw_message.decode("utf-8", errors="replace")


def _decode_author(commit: pygit2.Commit) -> str:
    """The author's name; pygit2 decodes it with the commit's (possibly unknown) encoding."""
    try:
        return commit.author.name
    except (UnicodeDecodeError, LookupError):
        return commit.author.raw_name.decode("utf-8", errors="replace")


def open_repo(path: Path) -> pygit2.Repository:
    """The repository containing `path` (searching upward), or a GitError."""
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise GitError(f"{path} is not inside a git repository")
    try:
        return pygit2.Repository(found)
    except pygit2.GitError as exc:
        raise GitError(f"cannot open the git repository at {found}: {exc}") from None


def work_tree(repo: pygit2.Repository) -> Path:
    """The repository's top folder (its work tree), or the git dir of a bare repo."""
    return Path(repo.workdir or repo.path).resolve()


def resolve_commit(repo: pygit2.Repository, ref: str) -> pygit2.Commit:
    """The commit `ref` names (a branch, tag, sha or expression like HEAD~1), tags peeled."""
    try:
        obj = repo.revparse_single(ref)
        return obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise GitError(f"cannot resolve {ref!r} to a commit: {exc}") from None


def branch_of(repo: pygit2.Repository, ref: str) -> str | None:
    """The branch name dbt Cloud should check out for `ref`, when `ref` names a branch.

    HEAD on a branch gives that branch; `refs/heads/x`, `x`, and remote-tracking refs like
    `origin/x` give `x`; a sha, a tag or a detached HEAD give None.
    """
    if ref == "HEAD":
        if repo.head_is_detached or repo.head_is_unborn:
            return None
        return repo.head.shorthand
    local = ref if ref.startswith("refs/heads/") else f"refs/heads/{ref}"
    if local in repo.references:
        return local.removeprefix("refs/heads/")
    remote = ref if ref.startswith("refs/remotes/") else f"refs/remotes/{ref}"
    if remote in repo.references:
        target = repo.references[remote].target
        if isinstance(target, str):  # symbolic: origin/HEAD names the remote's default branch
            remote = target
        _, _, branch = remote.removeprefix("refs/remotes/").partition("/")
        return branch or None
    return None


def read_blob(commit: pygit2.Commit, path: str) -> bytes | None:
    """The content of `path` in the commit's tree, or None when it is not a file there."""
    try:
        entry = commit.tree[path]
    except KeyError:
        return None
    return entry.data if isinstance(entry, pygit2.Blob) else None


def repository_key(url: str, base: str | None = None) -> str:
    """A git URL reduced to `host/path`, so the spellings of one repository compare equal:
    `git@github.com:org/shop.git`, `https://github.com/org/shop`, `ssh://git@github.com/org/shop`.
    A local path (or `file://` URL) becomes a normalised absolute path, a relative one taken
    from `base` (the work tree, where git runs hooks)."""
    import os
    import re

    text = url.strip().rstrip("/").removeprefix("file://").removesuffix(".git")
    match = re.match(r"^(?:[a-z][a-z0-9+.-]*://)(?:[^@/]*@)?([^/:]+)(?::\d+)?/(.*)$", text, re.I)
    if match is None:  # scp-like: [user@]host:path (not a Windows drive or a local path)
        match = re.match(r"^(?:[^@/]*@)?([^/:]{2,}):(?!/)(.*)$", text)
    if match is None:
        path = os.path.join(base, text) if base and not os.path.isabs(text) else text
        return os.path.normpath(path).removesuffix(".git")
    host, path = match.groups()
    return f"{host.lower()}/{path.strip('/')}"


def same_repository(first: str, second: str, base: str | None = None) -> bool:
    """Whether two git URLs name the same repository (host and path; case-blind host)."""
    return repository_key(first, base) == repository_key(second, base)
