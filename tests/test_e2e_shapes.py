"""Every push shape through every hook manager: one run per landed commit that carries
generated models, none for anything else, counted at the simulator.

Each manager gets one clone (with a bare `origin` that refuses refs/heads/aaa, a bare
`backup`, and its own simulator) shared by the scenarios below; every scenario makes its own
commits and counts the runs of its own shas, and waits until the clone is quiet (every push
judged, every waiter ended) before counting, so an exact count is final.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datachonk_hooks.commands.install import config_hooks_supported, git_version
from datachonk_hooks.delivery.ledger import TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import (
    BIN,
    HUSKY_PRE_PUSH,
    LEFTHOOK_CONFIG,
    LEFTHOOK_SCRIPT,
    PRE_COMMIT_CONFIG,
    Clone,
    eventually,
    hook_env,
    make_clone,
    make_remote,
    quiet,
    runs_for,
)
from tests.helpers import GENERATED_SQL, HAND_SQL, TOKEN, git

pytestmark = pytest.mark.slow

MANAGERS = ["pre-commit", "prek", "lefthook", "husky", "git-config", "standalone"]

#: the remote's update hook: refs/heads/aaa is protected, and refs/heads/frozen may be created
#: but never moved; everything else lands
REFUSE_AAA = """#!/bin/sh
if [ "$1" = refs/heads/aaa ]; then
    echo "aaa is protected" >&2
    exit 1
fi
if [ "$1" = refs/heads/frozen ] && [ "$2" != 0000000000000000000000000000000000000000 ]; then
    echo "frozen is protected" >&2
    exit 1
fi
"""


@dataclass
class Bed:
    """One manager's clone, its remotes and its own dbt Cloud."""

    manager: str
    clone: Clone
    cloud: Sandbox

    def fresh(self) -> Clone:
        """The clone on main as origin has it, with nothing in flight."""
        eventually(lambda: quiet(self.clone))
        self.clone.run("git", "checkout", "--quiet", "-B", "main", "origin/main")
        return self.clone

    def runs(self, sha: str) -> list[str | None]:
        return runs_for(self.cloud, sha)

    def settle(self) -> None:
        eventually(lambda: quiet(self.clone))


def install_manager(manager: str, clone: Clone, request: pytest.FixtureRequest) -> None:
    """Set the manager up the way its README section says, and commit its files."""
    if manager in ("pre-commit", "prek"):
        (clone.path / ".pre-commit-config.yaml").write_text(PRE_COMMIT_CONFIG)
        clone.run(str(BIN / manager), "install")
    elif manager == "lefthook":
        (clone.path / "lefthook.yml").write_text(LEFTHOOK_CONFIG)
        script = clone.path / ".lefthook" / "pre-push" / "datachonk-dbt-cloud.sh"
        script.parent.mkdir(parents=True)
        script.write_text(LEFTHOOK_SCRIPT)
        clone.run(str(BIN / "lefthook"), "install")
    elif manager == "husky":
        husky: Path = request.getfixturevalue("husky_bin")
        (clone.path / ".husky").mkdir()
        (clone.path / ".husky" / "pre-push").write_text(HUSKY_PRE_PUSH)
        clone.run("node", str(husky))
        assert clone.run("git", "config", "core.hooksPath").stdout.strip() == ".husky/_"
    elif manager == "git-config":
        version = git_version()
        if not config_hooks_supported(version):
            have = ".".join(map(str, version or ())) or "(unknown version)"
            pytest.skip(f"git {have} runs no config-based hooks (hook.<name>.*: git 2.54+)")
        clone.run(str(BIN / "datachonk-hook"), "install", "--git-config")
    else:
        clone.run(str(BIN / "datachonk-hook"), "install")
    clone.run("git", "add", "--all")
    clone.run("git", "commit", "--quiet", "--allow-empty", "-m", f"Use {manager}")


@pytest.fixture(scope="module", params=MANAGERS)
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    manager: str = request.param
    top = tmp_path_factory.mktemp(f"shapes-{manager}")
    env = hook_env(tmp_path_factory.getbasetemp() / "pre-commit-home-shapes")
    with Sandbox(token=TOKEN, time_scale=20) as cloud:
        remote = make_remote(top, cloud.url)
        update = remote / "hooks" / "update"
        update.write_text(REFUSE_AAA)
        update.chmod(0o755)
        backup = top / "backup.git"
        git(top, "init", "--quiet", "--bare", "--initial-branch=main", str(backup))
        clone = make_clone(top, "work", remote, env)
        clone.run("git", "remote", "add", "backup", str(backup))
        install_manager(manager, clone, request)
        clone.push("origin", "main")  # the manager's files; nothing generated
        bed = Bed(manager, clone, cloud)
        bed.settle()
        assert cloud.runs == []
        yield bed
        bed.settle()


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


# ----------------------------------------------------------------------------- the shapes


def test_push_of_a_branch_that_is_not_checked_out(bed: Bed) -> None:
    clone = bed.fresh()
    clone.run("git", "checkout", "--quiet", "-b", "shape-a")
    sha = clone.commit({"models/shape_a/a_orders.sql": GENERATED_SQL}, "Add a_orders")
    clone.run("git", "checkout", "--quiet", "main")
    clone.push("origin", "shape-a")
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["shape-a"]


def test_two_branches_in_one_push_while_a_third_is_checked_out(bed: Bed) -> None:
    clone = bed.fresh()
    clone.run("git", "checkout", "--quiet", "-b", "shape-b1")
    first = clone.commit({"models/shape_b/b1_orders.sql": GENERATED_SQL}, "Add b1_orders")
    clone.run("git", "checkout", "--quiet", "-B", "shape-b2", "main")
    second = clone.commit({"models/shape_b/b2_orders.sql": GENERATED_SQL}, "Add b2_orders")
    clone.run("git", "checkout", "--quiet", "-B", "shape-b3", "main")
    clone.commit({"models/shape_b/b3_orders.sql": GENERATED_SQL}, "Add b3_orders (not pushed)")
    clone.push("origin", "shape-b1", "shape-b2")
    eventually(lambda: bed.runs(first) != [] and bed.runs(second) != [] and quiet(clone))
    assert bed.runs(first) == ["shape-b1"]
    assert bed.runs(second) == ["shape-b2"]
    assert len(bed.cloud.runs) == len({run.git_sha for run in bed.cloud.runs})  # no doubles


def test_two_branches_where_only_the_second_carries_generated_models(bed: Bed) -> None:
    """pre-commit and prek show the hook only the first ref (here docs only): the hook still
    records the push, and the waiter finds the second through its moved tracking ref."""
    clone = bed.fresh()
    clone.run("git", "checkout", "--quiet", "-b", "shape-f1")
    clone.commit({"docs/f1.md": "docs\n"}, "Docs only")
    clone.run("git", "checkout", "--quiet", "-B", "shape-f2", "main")
    sha = clone.commit({"models/shape_f/f2_orders.sql": GENERATED_SQL}, "Add f2_orders")
    clone.run("git", "checkout", "--quiet", "main")
    clone.push("origin", "shape-f1", "shape-f2")
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["shape-f2"]


def test_a_sha_refspec_and_a_glob_beside_a_docs_only_ref(bed: Bed) -> None:
    """Refs that are no local branch tip (a sha, a detached HEAD) and glob refspecs are found
    too when the ref pre-commit shows the hook triggers nothing."""
    clone = bed.fresh()
    clone.run("git", "checkout", "--quiet", "-b", "shape-h1")
    clone.commit({"docs/h1.md": "docs\n"}, "Docs only")
    clone.run("git", "checkout", "--quiet", "--detach", "main")
    sha = clone.commit({"models/shape_h/h2_orders.sql": GENERATED_SQL}, "Add h2_orders")
    clone.run("git", "checkout", "--quiet", "main")
    clone.push("origin", "shape-h1", f"{sha}:refs/heads/shape-h2")
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["shape-h2"]

    clone.run("git", "checkout", "--quiet", "-B", "glob-a", "main")
    clone.commit({"docs/glob.md": "docs\n"}, "Docs only")
    clone.run("git", "checkout", "--quiet", "-B", "glob-z", "main")
    globbed = clone.commit({"models/shape_h/glob_orders.sql": GENERATED_SQL}, "Add glob")
    clone.run("git", "checkout", "--quiet", "main")
    clone.push("origin", "refs/heads/glob-*:refs/heads/glob-*")
    eventually(lambda: bed.runs(globbed) != [] and quiet(clone))
    assert bed.runs(globbed) == ["glob-z"]


def test_one_ref_rejected_while_another_with_the_same_sha_lands(bed: Bed) -> None:
    clone = bed.fresh()
    sha = clone.commit({"models/shape_c/c_orders.sql": GENERATED_SQL}, "Add c_orders")
    clone.run("git", "branch", "-f", "aaa", "HEAD")
    done = clone.push("origin", "main", "aaa", check=False)
    assert done.returncode != 0
    assert "aaa is protected" in done.stderr and "main -> main" in done.stderr
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["main"]


def test_the_rejected_ref_is_the_one_the_hook_was_shown(bed: Bed) -> None:
    """git lists the refs the remote already has first, so pre-commit and prek show the hook
    the protected existing branch; the new branch that landed with the same commit is found
    by the waiter, and through `datachonk push` as well."""
    clone = bed.fresh()
    if "refs/heads/frozen" not in clone.run("git", "ls-remote", "origin").stdout:
        clone.push("origin", "main:frozen")
    for new_branch, pusher in (("shape-g1", "git"), ("shape-g2", "datachonk")):
        clone.run("git", "checkout", "--quiet", "-B", new_branch, "main")
        sha = clone.commit({f"models/shape_g/{new_branch}.sql": GENERATED_SQL}, "Add g")
        clone.run("git", "branch", "-f", "frozen", "HEAD")
        if pusher == "git":
            done = clone.push("origin", "frozen", new_branch, check=False)
        else:
            done = clone.run(
                str(BIN / "datachonk"), "push", "origin", "frozen", new_branch, check=False
            )
        assert done.returncode != 0 and "frozen is protected" in output(done)

        def ran(sha: str = sha) -> bool:
            return bed.runs(sha) != [] and quiet(clone)

        eventually(ran)
        assert bed.runs(sha) == [new_branch], pusher
        clone.run("git", "checkout", "--quiet", "main")


def test_push_to_a_second_remote_then_to_origin(bed: Bed) -> None:
    clone = bed.fresh()
    sha = clone.commit({"models/shape_d/d_orders.sql": GENERATED_SQL}, "Add d_orders")
    done = clone.push("backup", "main")
    assert "dbt Cloud builds from origin" in output(done)
    bed.settle()
    assert bed.runs(sha) == []
    done = clone.push("origin", "main")
    assert f"will run for {sha[:7]}" in output(done)
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["main"]


def test_dry_run_push(bed: Bed) -> None:
    clone = bed.fresh()
    sha = clone.commit({"models/shape_e/e_orders.sql": GENERATED_SQL}, "Add e_orders")
    ledger_file = clone.path / ".git" / "datachonk" / "ledger.sqlite3"
    before = 0
    if ledger_file.exists():
        with clone.ledger() as ledger:
            before = ledger.last_push_id()
    done = clone.push("--dry-run", "origin", "main")
    assert f"would run for {sha[:7]}" in output(done)
    bed.settle()
    assert bed.runs(sha) == []
    if ledger_file.exists():
        with clone.ledger() as ledger:
            assert [p.state for p in ledger.pushes_after(before) if p.state == "failed"] == []
            failed = [t for t in ledger.history(1000) if t.state is TriggerState.PUSH_FAILED]
            assert [t for t in failed if t.sha == sha] == []
    clone.push("origin", "main")  # the real push still triggers it
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["main"]


def test_delete_of_a_branch(bed: Bed) -> None:
    clone = bed.fresh()
    clone.run("git", "checkout", "--quiet", "-b", "shape-f")
    sha = clone.commit({"models/shape_f/f_orders.sql": GENERATED_SQL}, "Add f_orders")
    clone.run("git", "checkout", "--quiet", "main")
    clone.push("origin", "shape-f")
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    runs = len(bed.cloud.runs)
    clone.push("origin", "--delete", "shape-f")
    bed.settle()
    assert len(bed.cloud.runs) == runs
    assert bed.runs(sha) == ["shape-f"]


def test_tag_push(bed: Bed) -> None:
    clone = bed.fresh()
    clone.run("git", "checkout", "--quiet", "-b", "shape-g")
    sha = clone.commit({"models/shape_g/g_orders.sql": GENERATED_SQL}, "Add g_orders")
    clone.run("git", "tag", "--annotate", "--message", "Release g", "v-shape-g")
    clone.run("git", "tag", "v-shape-g-light")
    clone.run("git", "checkout", "--quiet", "main")
    clone.push("origin", "v-shape-g", "v-shape-g-light")
    bed.settle()
    assert bed.runs(sha) == []


def test_docs_only_push_with_trigger_dbt_run(bed: Bed) -> None:
    clone = bed.fresh()
    sha = clone.commit({"docs/shape_h.md": "how the orders model works\n"}, "Docs for orders")
    done = clone.run(str(BIN / "datachonk"), "push", "--trigger-dbt-run", "origin", "main")
    assert "Triggered run" in done.stdout
    eventually(lambda: bed.runs(sha) != [] and quiet(clone))
    assert bed.runs(sha) == ["main"]


def test_manual_run_of_an_unpushed_commit(bed: Bed) -> None:
    clone = bed.fresh()
    sha = clone.commit({"models/shape_i/i_orders.sql": HAND_SQL}, "Add i_orders by hand")
    done = clone.run(str(BIN / "datachonk-hook"), "run", check=False)
    assert done.returncode == 2, output(done)
    message = output(done)
    assert f"{sha[:7]} is not on origin yet" in message
    assert "datachonk push --trigger-dbt-run" in message and "--allow-unpushed" in message
    assert bed.runs(sha) == []


def test_readme_shows_the_configs_tested_here() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for text in (LEFTHOOK_CONFIG, LEFTHOOK_SCRIPT, HUSKY_PRE_PUSH):
        assert text in readme, text
    assert "default_install_hook_types: [pre-commit, pre-push]" in readme
    assert "$ prek install" in readme and "$ lefthook install" in readme
    assert "$ datachonk-hook install --git-config" in readme
