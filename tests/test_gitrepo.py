"""gitrepo.py: opening repositories, resolving refs, branches, blobs and commit messages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.errors import GitError
from datachonk_hooks.push.gitrepo import (
    CommitInfo,
    branch_of,
    open_repo,
    read_blob,
    resolve_commit,
    same_repository,
    work_tree,
)
from tests.helpers import GENERATED_SQL, commit_files, git


@pytest.fixture
def repo_path(dbt_repo: Path) -> Path:
    """dbt_repo with a second commit, tags, a feature branch and an origin/main ref."""
    commit_files(dbt_repo, {"models/b.sql": "select 2\n"}, "Second commit\n\nWith a body.")
    git(dbt_repo, "tag", "light")
    git(dbt_repo, "tag", "-a", "v1", "-m", "Release 1", "HEAD~1")
    git(dbt_repo, "branch", "feature", "HEAD~1")
    git(dbt_repo, "update-ref", "refs/remotes/origin/main", "HEAD~1")
    git(dbt_repo, "update-ref", "refs/remotes/origin/team/x", "HEAD")
    return dbt_repo


def test_open_repo_from_a_subfolder(repo_path: Path) -> None:
    repo = open_repo(repo_path / "models" / "staging")
    assert work_tree(repo) == repo_path.resolve()


def test_open_repo_outside_a_repository(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(GitError, match="is not inside a git repository"):
        open_repo(outside)


def test_work_tree_of_a_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    assert work_tree(open_repo(bare)) == bare.resolve()


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("HEAD", "HEAD"),
        ("HEAD~1", "HEAD~1"),
        ("main", "HEAD"),
        ("refs/heads/feature", "HEAD~1"),
        ("light", "HEAD"),
        ("v1", "HEAD~1"),  # annotated: peeled to its commit
        ("refs/tags/v1", "HEAD~1"),
        ("origin/main", "HEAD~1"),
        ("main^{tree}", None),  # a tree cannot be peeled to a commit
    ],
)
def test_resolve_commit(repo_path: Path, ref: str, expected: str | None) -> None:
    repo = open_repo(repo_path)
    if expected is None:
        with pytest.raises(GitError, match="cannot resolve"):
            resolve_commit(repo, ref)
        return
    assert str(resolve_commit(repo, ref).id) == git(repo_path, "rev-parse", expected)


def test_resolve_commit_by_sha_and_abbreviation(repo_path: Path) -> None:
    repo = open_repo(repo_path)
    sha = git(repo_path, "rev-parse", "HEAD~1")
    assert str(resolve_commit(repo, sha).id) == sha
    assert str(resolve_commit(repo, sha[:8]).id) == sha


@pytest.mark.parametrize("ref", ["nope", "HEAD~5", "0" * 40, "main..feature", "", "v1^{blob}"])
def test_resolve_commit_bad_refs(repo_path: Path, ref: str) -> None:
    with pytest.raises(GitError, match="cannot resolve"):
        resolve_commit(open_repo(repo_path), ref)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("HEAD", "main"),
        ("main", "main"),
        ("refs/heads/feature", "feature"),
        ("feature", "feature"),
        ("origin/main", "main"),
        ("refs/remotes/origin/main", "main"),
        ("origin/team/x", "team/x"),
        ("v1", None),
        ("light", None),
        ("HEAD~1", None),
        ("missing", None),
    ],
)
def test_branch_of(repo_path: Path, ref: str, expected: str | None) -> None:
    assert branch_of(open_repo(repo_path), ref) == expected


def test_branch_of_the_remote_head(repo_path: Path) -> None:
    """`origin/HEAD` is the remote's default branch, never a branch named HEAD."""
    git(repo_path, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    repo = open_repo(repo_path)
    assert branch_of(repo, "origin/HEAD") == "main"
    assert branch_of(repo, "refs/remotes/origin/HEAD") == "main"


def test_branch_of_a_sha(repo_path: Path) -> None:
    assert branch_of(open_repo(repo_path), git(repo_path, "rev-parse", "HEAD")) is None


def test_branch_of_detached_head(repo_path: Path) -> None:
    git(repo_path, "checkout", "--quiet", "--detach", "HEAD")
    repo = open_repo(repo_path)
    assert branch_of(repo, "HEAD") is None
    assert branch_of(repo, "main") == "main"


def test_branch_of_head_on_a_slashed_branch(repo_path: Path) -> None:
    git(repo_path, "checkout", "--quiet", "-b", "team/new-models")
    assert branch_of(open_repo(repo_path), "HEAD") == "team/new-models"


def test_branch_of_unborn_head(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "--initial-branch=main", "empty")
    assert branch_of(open_repo(tmp_path / "empty"), "HEAD") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("models/staging/stg_orders.sql", GENERATED_SQL.encode()),
        ("dbt_project.yml", b"name: shop\nversion: '1.0'\nprofile: shop\n"),
        ("models/staging", None),  # a folder
        ("models/missing.sql", None),
        ("models/staging/stg_orders.sql/x", None),
    ],
)
def test_read_blob(repo_path: Path, path: str, expected: bytes | None) -> None:
    commit = resolve_commit(open_repo(repo_path), "HEAD")
    assert read_blob(commit, path) == expected


def test_read_blob_reads_the_commit_not_the_work_tree(repo_path: Path) -> None:
    (repo_path / "dbt_project.yml").write_text("changed on disk\n")
    commit = resolve_commit(open_repo(repo_path), "HEAD")
    assert read_blob(commit, "dbt_project.yml") == b"name: shop\nversion: '1.0'\nprofile: shop\n"


def test_commit_info(repo_path: Path) -> None:
    commit = resolve_commit(open_repo(repo_path), "HEAD")
    info = CommitInfo.of(commit)
    assert info.sha == str(commit.id)
    assert info.short_sha == info.sha[:7]
    assert info.subject == "Second commit"
    assert info.message == "Second commit\n\nWith a body.\n"
    assert info.author == "Test Author"


def commit_with_git(repo: Path, message: bytes, *config: str) -> pygit2.Commit:
    (repo / "note.txt").write_bytes(message)
    git(repo, "add", "note.txt")
    subprocess.run(
        ["git", *config, "commit", "--quiet", "-F", "-"], cwd=repo, input=message, check=True
    )
    return resolve_commit(open_repo(repo), "HEAD")


def commit_raw(repo: Path, message: bytes, *, encoding: str | None, author: bytes) -> pygit2.Commit:
    """A commit object written byte for byte (git commit would re-encode the message)."""
    tree, parent = git(repo, "rev-parse", "HEAD^{tree}"), git(repo, "rev-parse", "HEAD")
    who = b" <a@example.invalid> 1700000000 +0000\n"
    raw = f"tree {tree}\nparent {parent}\n".encode()
    raw += b"author " + author + who + b"committer " + author + who
    if encoding is not None:
        raw += f"encoding {encoding}\n".encode()
    raw += b"\n" + message
    done = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        cwd=repo,
        input=raw,
        capture_output=True,
        check=True,
    )
    return resolve_commit(open_repo(repo), done.stdout.decode().strip())


def test_commit_info_of_a_latin1_commit_made_by_git(repo_path: Path) -> None:
    commit = commit_with_git(repo_path, b"Caf\xe9 models\n", "-c", "i18n.commitEncoding=latin1")
    assert commit.message_encoding == "latin1"
    info = CommitInfo.of(commit)
    assert (info.subject, info.message) == ("Café models", "Café models\n")


@pytest.mark.parametrize(
    ("encoding", "message", "author", "subject", "name"),
    [
        ("latin1", b"Caf\xe9 models\n", b"Jos\xe9", "Café models", "José"),
        # no encoding header (UTF-8 by default) but latin-1 bytes
        (None, b"Caf\xe9 models\n", b"Jos\xe9", "Caf\ufffd models", "Jos\ufffd"),
        # an encoding Python does not know
        ("x-no-such-enc", b"Caf\xe9 models\n", b"Jos\xe9", "Caf\ufffd models", "Jos\ufffd"),
        # claims latin-1 but is UTF-8: mojibake, not an exception
        ("latin1", "Café\n".encode(), b"Test Author", "CafÃ©", "Test Author"),
    ],
)
def test_commit_info_never_raises_on_odd_encodings(
    repo_path: Path,
    encoding: str | None,
    message: bytes,
    author: bytes,
    subject: str,
    name: str,
) -> None:
    commit = commit_raw(repo_path, message, encoding=encoding, author=author)
    info = CommitInfo.of(commit)
    assert (info.subject, info.author) == (subject, name)
    assert info.message.startswith(subject)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop", True),
        ("ssh://git@GitHub.com/acme/shop.git", "git@github.com:acme/shop", True),
        (
            "https://user@gitlab.example.com:8443/acme/shop/",
            "git@gitlab.example.com:acme/shop",
            True,
        ),
        ("/srv/git/shop.git", "file:///srv/git/shop", True),
        ("git@github.com:acme/shop.git", "git@github.com:acme/shop-fork.git", False),
        ("git@github.com:acme/shop.git", "git@gitlab.com:acme/shop.git", False),
    ],
)
def test_same_repository_whatever_the_url_spelling(first: str, second: str, same: bool) -> None:
    assert same_repository(first, second) is same
