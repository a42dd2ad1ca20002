"""push.py: git's stdin and pre-commit's variables as PushUpdate records, and pushed ranges."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.push.gitrepo import ZERO_SHA
from datachonk_hooks.push.updates import (
    PushInputError,
    PushUpdate,
    pushed_range,
    tracking_refs,
    updates_from_pre_commit,
    updates_from_stdin,
)
from tests.helpers import GENERATED_SQL, commit_files, git

A = "a" * 40
B = "b" * 40
SHA256 = "c" * 64


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    return bare


@pytest.fixture
def work(tmp_path: Path, remote: Path) -> Path:
    """A clone of `remote` whose main (two commits) is pushed and tracked as origin/main."""
    path = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", str(remote), str(path))
    git(path, "checkout", "--quiet", "-b", "main")
    commit_files(path, {"dbt_project.yml": "name: shop\n"}, "Root")
    commit_files(path, {"models/a.sql": GENERATED_SQL}, "Add a")
    git(path, "push", "--quiet", "origin", "main")
    return path


def sha_of(path: Path, ref: str) -> str:
    return git(path, "rev-parse", ref)


def subjects(commits: tuple[pygit2.Commit, ...]) -> list[str]:
    return [c.message.strip() for c in commits]


# ----------------------------------------------------------------------------- git's stdin


def test_stdin_multi_line_with_blank_lines() -> None:
    lines = [
        "",
        f"refs/heads/main {A} refs/heads/main {B}\n",
        "   ",
        f"refs/heads/f1 {B} refs/heads/f1 {ZERO_SHA}",
        f"refs/tags/v1 {A} refs/tags/v1 {ZERO_SHA}",
        "",
    ]
    updates = updates_from_stdin(lines)
    assert updates == [
        PushUpdate("refs/heads/main", A, "refs/heads/main", B),
        PushUpdate("refs/heads/f1", B, "refs/heads/f1", ZERO_SHA),
        PushUpdate("refs/tags/v1", A, "refs/tags/v1", ZERO_SHA),
    ]
    assert [(u.is_new_ref, u.is_delete, u.branch) for u in updates] == [
        (False, False, "main"),
        (True, False, "f1"),
        (True, False, None),
    ]


def test_stdin_empty_means_nothing_to_push() -> None:
    assert updates_from_stdin([]) == []
    assert updates_from_stdin(["", "\n"]) == []


def test_stdin_delete_line() -> None:
    [update] = updates_from_stdin([f"(delete) {ZERO_SHA} refs/heads/x {A}"])
    assert update == PushUpdate("(delete)", ZERO_SHA, "refs/heads/x", A)
    assert update.is_delete and not update.is_new_ref
    assert update.branch == "x"


def test_stdin_sha256_object_names() -> None:
    zero = "0" * 64
    [new, delete] = updates_from_stdin(
        [
            f"refs/heads/main {SHA256} refs/heads/main {zero}",
            f"(delete) {zero} refs/heads/y {SHA256}",
        ]
    )
    assert new.local_sha == SHA256 and new.is_new_ref and not new.is_delete
    assert delete.is_delete and delete.remote_sha == SHA256


def test_stdin_local_ref_as_the_user_typed_it() -> None:
    [update] = updates_from_stdin([f"HEAD~ {A} refs/heads/other {ZERO_SHA}"])
    assert (update.local_ref, update.branch) == ("HEAD~", "other")


@pytest.mark.parametrize(
    ("bad", "number"),
    [
        (f"refs/heads/main {A} refs/heads/main", 2),  # three fields
        (f"refs/heads/main {A} refs/heads/main {B} extra", 2),  # five fields
        (f"refs/heads/main {A[:39]} refs/heads/main {B}", 2),  # short sha
        (f"refs/heads/main {A} refs/heads/main {'g' * 40}", 2),  # not hex
        (f"refs/heads/main {A.upper()} refs/heads/main {B}", 2),  # git writes lowercase
        (f"refs/heads/main {'a' * 50} refs/heads/main {B}", 2),  # neither SHA-1 nor SHA-256
        ("garbage", 2),
    ],
)
def test_stdin_malformed_line_names_its_number(bad: str, number: int) -> None:
    lines = [f"refs/heads/ok {A} refs/heads/ok {B}", bad, f"refs/heads/z {A} refs/heads/z {B}"]
    with pytest.raises(PushInputError, match=rf"line {number} ") as raised:
        updates_from_stdin(lines)
    assert bad.strip()[:40] in str(raised.value)


def test_stdin_line_number_counts_blank_lines() -> None:
    with pytest.raises(PushInputError, match="line 3 "):
        updates_from_stdin(["", f"refs/heads/a {A} refs/heads/a {B}", "nonsense here"])


# ----------------------------------------------------------------------------- pre-commit


def test_pre_commit_from_and_to(work: Path) -> None:
    repo = pygit2.Repository(str(work))
    base = sha_of(work, "HEAD~1")
    tip = sha_of(work, "HEAD")
    env = {
        "PRE_COMMIT_FROM_REF": base,
        "PRE_COMMIT_TO_REF": tip,
        "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main",
        "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/release",
        "PRE_COMMIT_REMOTE_NAME": "origin",
    }
    assert updates_from_pre_commit(env, repo) == [
        PushUpdate("refs/heads/main", tip, "refs/heads/release", base)
    ]


@pytest.mark.parametrize(
    ("from_name", "to_name"),
    [
        ("PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF"),
        ("PRE_COMMIT_ORIGIN", "PRE_COMMIT_SOURCE"),  # legacy names
    ],
)
def test_pre_commit_symbolic_refs_are_resolved(work: Path, from_name: str, to_name: str) -> None:
    repo = pygit2.Repository(str(work))
    [update] = updates_from_pre_commit({from_name: "HEAD~1", to_name: "HEAD"}, repo)
    assert update == PushUpdate(
        "HEAD", sha_of(work, "HEAD"), "refs/heads/main", sha_of(work, "HEAD~1")
    )


@pytest.mark.parametrize(
    ("local_branch", "expected_local", "expected_remote"),
    [
        ("refs/heads/main", "refs/heads/main", "refs/heads/main"),
        ("main", "main", "refs/heads/main"),
        ("HEAD", "HEAD", "refs/heads/main"),
    ],
)
def test_pre_commit_root_push_without_from_and_to(
    work: Path, local_branch: str, expected_local: str, expected_remote: str
) -> None:
    """pre-commit leaves FROM/TO unset for a push containing a root commit."""
    repo = pygit2.Repository(str(work))
    env = {"PRE_COMMIT_LOCAL_BRANCH": local_branch, "PRE_COMMIT_REMOTE_NAME": "origin"}
    [update] = updates_from_pre_commit(env, repo)
    assert update == PushUpdate(expected_local, sha_of(work, "main"), expected_remote, ZERO_SHA)
    assert update.is_new_ref


def test_pre_commit_root_push_uses_the_given_remote_branch(work: Path) -> None:
    repo = pygit2.Repository(str(work))
    env = {
        "PRE_COMMIT_LOCAL_BRANCH": "HEAD",
        "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/other",
        "PRE_COMMIT_FROM_REF": "HEAD~1",  # ignored without a TO
    }
    [update] = updates_from_pre_commit(env, repo)
    assert update == PushUpdate("HEAD", sha_of(work, "HEAD"), "refs/heads/other", ZERO_SHA)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PRE_COMMIT_FROM_REF": "no-such-ref", "PRE_COMMIT_TO_REF": "HEAD"}, "FROM_REF"),
        ({"PRE_COMMIT_FROM_REF": "HEAD~9", "PRE_COMMIT_TO_REF": "HEAD"}, "FROM_REF"),
        ({"PRE_COMMIT_FROM_REF": "HEAD~1", "PRE_COMMIT_TO_REF": "nope"}, "TO_REF"),
        ({"PRE_COMMIT_LOCAL_BRANCH": "refs/heads/missing"}, "TO_REF"),
    ],
)
def test_pre_commit_ref_that_names_nothing(work: Path, env: dict[str, str], variable: str) -> None:
    repo = pygit2.Repository(str(work))
    with pytest.raises(PushInputError, match=f"PRE_COMMIT_{variable}=.* does not name a commit"):
        updates_from_pre_commit(env, repo)


# ----------------------------------------------------------------------------- pushed range


def test_existing_branch(work: Path) -> None:
    base = sha_of(work, "HEAD")
    commit_files(work, {"models/b.sql": GENERATED_SQL}, "Add b")
    tip = commit_files(work, {"models/c.sql": GENERATED_SQL}, "Add c")
    repo = pygit2.Repository(str(work))
    pushed = pushed_range(
        repo, PushUpdate("refs/heads/main", tip, "refs/heads/main", base), "origin"
    )
    assert pushed is not None
    assert str(pushed.tip.id) == tip
    assert pushed.base is not None and str(pushed.base.id) == base
    assert subjects(pushed.commits) == ["Add b", "Add c"]  # oldest first


def test_new_branch_hides_what_the_remote_tracking_refs_have(work: Path) -> None:
    fork = sha_of(work, "HEAD")
    git(work, "checkout", "--quiet", "-b", "feature")
    commit_files(work, {"models/b.sql": GENERATED_SQL}, "Add b")
    tip = commit_files(work, {"models/c.sql": GENERATED_SQL}, "Add c")
    repo = pygit2.Repository(str(work))
    update = PushUpdate("refs/heads/feature", tip, "refs/heads/feature", ZERO_SHA)
    pushed = pushed_range(repo, update, "origin")
    assert pushed is not None
    assert subjects(pushed.commits) == ["Add b", "Add c"]
    assert pushed.base is not None and str(pushed.base.id) == fork


def test_tracking_refs_of_another_remote_do_not_hide(work: Path) -> None:
    git(work, "checkout", "--quiet", "-b", "feature")
    tip = commit_files(work, {"models/b.sql": GENERATED_SQL}, "Add b")
    repo = pygit2.Repository(str(work))
    update = PushUpdate("refs/heads/feature", tip, "refs/heads/feature", ZERO_SHA)
    pushed = pushed_range(repo, update, "upstream")  # nothing tracked for "upstream"
    assert pushed is not None
    assert subjects(pushed.commits) == ["Root", "Add a", "Add b"]
    assert pushed.base is None


def test_force_push_whose_remote_sha_is_missing_locally(work: Path) -> None:
    """Someone else pushed X (not fetched); we force-push a rewrite of our own history."""
    fork = sha_of(work, "HEAD~1")
    git(work, "reset", "--quiet", "--hard", "HEAD~1")
    tip = commit_files(work, {"models/b.sql": GENERATED_SQL}, "Rewritten")
    repo = pygit2.Repository(str(work))
    unknown = "1234567890" * 4
    assert unknown not in repo
    update = PushUpdate("refs/heads/main", tip, "refs/heads/main", unknown)
    pushed = pushed_range(repo, update, "origin")
    assert pushed is not None
    # origin/main (the old "Add a") does not contain the rewrite: only it is new
    assert subjects(pushed.commits) == ["Rewritten"]
    assert pushed.base is not None and str(pushed.base.id) == fork


def test_annotated_tag_peels_to_its_commit(work: Path) -> None:
    git(work, "tag", "-a", "v1", "-m", "Release 1")
    tag_object = sha_of(work, "refs/tags/v1")
    commit = sha_of(work, "v1^{commit}")
    assert tag_object != commit
    repo = pygit2.Repository(str(work))
    update = PushUpdate("refs/tags/v1", tag_object, "refs/tags/v1", ZERO_SHA)
    pushed = pushed_range(repo, update, "origin")
    assert pushed is not None
    assert str(pushed.tip.id) == commit
    assert pushed.commits == ()  # the commit is on origin/main already


@pytest.mark.parametrize(
    "update",
    [
        PushUpdate("(delete)", ZERO_SHA, "refs/heads/x", A),
        PushUpdate("refs/heads/x", "0" * 64, "refs/heads/x", "0" * 64),
        PushUpdate("refs/heads/x", "9" * 40, "refs/heads/x", ZERO_SHA),  # not in the repo
    ],
)
def test_deletes_and_unknown_objects_have_no_range(work: Path, update: PushUpdate) -> None:
    assert pushed_range(pygit2.Repository(str(work)), update, "origin") is None


def test_a_tag_of_a_tree_is_not_a_commit(work: Path) -> None:
    tree = sha_of(work, "HEAD^{tree}")
    repo = pygit2.Repository(str(work))
    update = PushUpdate("refs/tags/t", tree, "refs/tags/t", ZERO_SHA)
    assert pushed_range(repo, update, "origin") is None


def test_new_ref_for_commits_the_remote_already_has(work: Path) -> None:
    tip = sha_of(work, "main")
    repo = pygit2.Repository(str(work))
    update = PushUpdate("refs/heads/main", tip, "refs/heads/release", ZERO_SHA)
    pushed = pushed_range(repo, update, "origin")
    assert pushed is not None
    assert pushed.commits == ()
    assert pushed.base is not None and pushed.base.id == pushed.tip.id  # an empty diff


def test_root_push_has_no_base(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(path))
    commit_files(path, {"dbt_project.yml": "name: shop\n"}, "Root")
    tip = commit_files(path, {"models/a.sql": GENERATED_SQL}, "Add a")
    repo = pygit2.Repository(str(path))
    pushed = pushed_range(repo, PushUpdate("HEAD", tip, "refs/heads/main", ZERO_SHA), "origin")
    assert pushed is not None
    assert pushed.base is None
    assert subjects(pushed.commits) == ["Root", "Add a"]


@pytest.mark.parametrize(
    ("tips", "expected", "base_ref"),
    [
        ([], ["Root", "Add a", "Add b"], None),  # the remote had nothing before the push
        (["HEAD~2"], ["Add a", "Add b"], "HEAD~2"),  # it had only the root
        (["HEAD~1", "HEAD~2"], ["Add b"], "HEAD~1"),
        (["HEAD~1", "9" * 40], ["Add b"], "HEAD~1"),  # unknown tips are ignored
    ],
)
def test_remote_tips_replace_the_tracking_refs(
    work: Path, tips: list[str], expected: list[str], base_ref: str | None
) -> None:
    tip = commit_files(work, {"models/b.sql": GENERATED_SQL}, "Add b")
    git(work, "push", "--quiet", "origin", "main")  # origin/main now is the tip
    repo = pygit2.Repository(str(work))
    resolved = [sha_of(work, t) if t.startswith("HEAD") else t for t in tips]
    update = PushUpdate("refs/heads/main", tip, "refs/heads/main", ZERO_SHA)
    assert pushed_range(repo, update, "origin").commits == ()  # type: ignore[union-attr]
    pushed = pushed_range(repo, update, "origin", remote_tips=resolved)
    assert pushed is not None
    assert subjects(pushed.commits) == expected
    if base_ref is None:
        assert pushed.base is None
    else:
        assert pushed.base is not None and str(pushed.base.id) == sha_of(work, base_ref)


def test_tracking_refs(tmp_path: Path, work: Path, remote: Path) -> None:
    git(work, "push", "--quiet", "origin", "main:release")
    other = tmp_path / "other.git"
    git(tmp_path, "init", "--quiet", "--bare", str(other))
    git(work, "remote", "add", "upstream", str(other))
    git(work, "push", "--quiet", "upstream", "main:elsewhere")
    # refs under refs/remotes/origin/fork/: newer git refuses `remote add` of a name nested in
    # another's, but a config written by hand or by an older git still holds one
    git(work, "config", "remote.origin/fork.url", str(other))
    git(work, "config", "remote.origin/fork.fetch", "+refs/heads/*:refs/remotes/origin/fork/*")
    git(work, "fetch", "--quiet", "origin/fork")
    clone = tmp_path / "clone"  # a normal clone also has refs/remotes/origin/HEAD
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    main = sha_of(work, "main")
    assert tracking_refs(pygit2.Repository(str(work)), "origin") == {
        "refs/remotes/origin/main": main,
        "refs/remotes/origin/release": main,
    }
    assert tracking_refs(pygit2.Repository(str(work)), "upstream") == {
        "refs/remotes/upstream/elsewhere": main
    }
    clone_refs = tracking_refs(pygit2.Repository(str(clone)), "origin")
    assert git(clone, "symbolic-ref", "refs/remotes/origin/HEAD") == "refs/remotes/origin/main"
    assert clone_refs == {"refs/remotes/origin/main": main, "refs/remotes/origin/release": main}
    assert tracking_refs(pygit2.Repository(str(work)), "nowhere") == {}
    assert tracking_refs(pygit2.Repository(str(work)), "origin/fork") == {
        "refs/remotes/origin/fork/elsewhere": main
    }
