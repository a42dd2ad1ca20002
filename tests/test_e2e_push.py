"""Whole flows: a real `git push` to a bare remote, the real pre-commit or the standalone
hook, the detached waiter, and the simulator as dbt Cloud."""

from __future__ import annotations

import time
from pathlib import Path

from datachonk_hooks.delivery.ledger import TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import BIN, PRE_COMMIT_CONFIG, Clone, eventually, make_clone, settled
from tests.helpers import GENERATED_SQL, HAND_SQL, config_yaml, git

# ----------------------------------------------------------------------------- pre-commit


def test_push_with_generated_model_triggers_one_run(with_pre_commit: Clone, cloud: Sandbox) -> None:
    clone = with_pre_commit
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.push("origin", "main")
    assert "will run for" in done.stdout + done.stderr  # the hook says what it will do
    eventually(lambda: len(cloud.runs) == 1)
    [run] = cloud.runs
    assert (run.job_id, run.git_sha, run.git_branch) == (11111, sha, "main")
    assert run.cause == "Add stg_orders (+1 more commit)"  # the pre-commit config commit too
    eventually(lambda: settled(clone))
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert (record.state, record.run_id) == (TriggerState.TRIGGERED, run.id)
    assert "triggered run" in clone.waiter_log()


def test_push_without_generated_model_triggers_nothing(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    clone.commit({"models/staging/stg_payments.sql": HAND_SQL}, "Hand-written model")
    clone.push("origin", "main")
    clone.commit({"README.md": "docs\n"}, "Docs only")
    clone.push("origin", "main")
    time.sleep(1.0)
    assert cloud.runs == []
    assert not (clone.path / ".git" / "datachonk" / "ledger.sqlite3").exists()


def test_rejected_push_triggers_nothing(
    tmp_path: Path, with_pre_commit: Clone, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    other = make_clone(tmp_path, "other", remote, env)
    other.commit({"README.md": "someone else\n"}, "Someone else pushed first")
    other.push("origin", "main")
    clone = with_pre_commit
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.push("origin", "main", check=False)
    assert done.returncode != 0 and "rejected" in done.stderr
    eventually(lambda: settled(clone))
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.PUSH_FAILED
    assert cloud.runs == []
    assert "did not land" in clone.waiter_log()


def test_same_commit_again_starts_no_second_run(with_pre_commit: Clone, cloud: Sandbox) -> None:
    clone = with_pre_commit
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1 and settled(clone))
    clone.push("origin", "main:release")  # same commit to a second branch
    clone.push("--force", "origin", "main")  # and again
    done = clone.run(str(BIN / "datachonk-hook"), "run")  # and by hand
    assert "already triggered run" in done.stdout
    time.sleep(1.0)
    assert len(cloud.runs) == 1
    forced = clone.run(str(BIN / "datachonk-hook"), "run", "--force")
    assert "Triggered run" in forced.stdout
    assert len(cloud.runs) == 2


def test_outage_keeps_the_trigger_pending_until_retry(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    cloud.stop()
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.push("origin", "main")
    assert done.returncode == 0

    def tried() -> bool:  # landed, then tried once: pending with the reason
        with clone.ledger() as ledger:
            return settled(clone) and all(t.reason for t in ledger.history())

    eventually(tried, timeout=60)
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.PENDING
    assert record.reason and "could not reach dbt Cloud" in record.reason
    history = clone.run(str(BIN / "datachonk-hook"), "history")
    assert "pending" in history.stdout and "why: could not reach dbt Cloud" in history.stdout
    cloud.start()
    retried = clone.run(str(BIN / "datachonk-hook"), "retry")
    assert "triggered run" in retried.stdout
    assert [(r.git_sha, r.git_branch) for r in cloud.runs] == [(sha, "main")]
    again = clone.run(str(BIN / "datachonk-hook"), "retry")
    assert again.stdout.strip() == "nothing pending"
    assert len(cloud.runs) == 1


def test_pre_commit_multi_ref_push_finds_the_other_refs(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    main_sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.run("git", "checkout", "--quiet", "-b", "feature")
    feature_sha = clone.commit({"models/marts/customers.sql": GENERATED_SQL}, "Add customers")
    clone.push("origin", "main", "feature")
    eventually(lambda: len(cloud.runs) == 2)
    assert {(r.git_sha, r.git_branch) for r in cloud.runs} == {
        (main_sha, "main"),
        (feature_sha, "feature"),
    }


def test_first_push_of_a_root_commit(tmp_path: Path, env: dict[str, str], cloud: Sandbox) -> None:
    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    clone = make_clone(tmp_path, "fresh", bare, env)
    git(clone.path, "checkout", "--quiet", "-b", "main")
    (clone.path / ".pre-commit-config.yaml").write_text(PRE_COMMIT_CONFIG)
    sha = clone.commit(
        {
            "dbt_project.yml": "name: shop\n",
            "datachonk.yaml": config_yaml(cloud.url),
            "models/a.sql": GENERATED_SQL,
        },
        "First commit",
    )
    clone.run(str(BIN / "pre-commit"), "install")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1)
    assert cloud.runs[0].git_sha == sha


# ----------------------------------------------------------------------------- standalone


def test_standalone_hook_two_branch_push(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    main_sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.run("git", "checkout", "--quiet", "-b", "feature")
    feature_sha = clone.commit({"models/marts/customers.sql": GENERATED_SQL}, "Add customers")
    clone.push("origin", "main", "feature")
    eventually(lambda: len(cloud.runs) == 2)
    assert {(r.git_sha, r.git_branch) for r in cloud.runs} == {
        (main_sha, "main"),
        (feature_sha, "feature"),
    }
    eventually(lambda: settled(clone))
    with clone.ledger() as ledger:
        assert {t.push_id for t in ledger.history()} == {1}  # both from the hook's own push


def test_standalone_push_to_a_url(standalone: Clone, remote: Path, cloud: Sandbox) -> None:
    clone = standalone
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.push(str(remote), "main")  # no remote name: no tracking ref, ls-remote decides
    eventually(lambda: len(cloud.runs) == 1)
    assert cloud.runs[0].git_sha == sha


def test_install_keeps_and_chains_an_existing_hook(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    hooks = clone.path / ".git" / "hooks"
    (hooks / "pre-push").unlink()
    (hooks / "pre-push").write_text('#!/bin/sh\ncat > "$(dirname "$0")/../legacy-saw"\n')
    (hooks / "pre-push").chmod(0o755)
    done = clone.run(str(BIN / "datachonk-hook"), "install")
    assert "kept and chained" in done.stdout
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1)
    assert "refs/heads/main" in (clone.path / ".git" / "legacy-saw").read_text()
    clone.run(str(BIN / "datachonk-hook"), "install", "--uninstall")
    assert "legacy-saw" in (hooks / "pre-push").read_text()


def test_failing_legacy_hook_still_stops_the_push(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    legacy = clone.path / ".git" / "hooks" / "pre-push.legacy"
    legacy.write_text("#!/bin/sh\necho 'legacy says no' >&2\nexit 1\n")
    legacy.chmod(0o755)
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    done = clone.push("origin", "main", check=False)
    assert done.returncode != 0 and "legacy says no" in done.stderr
    time.sleep(0.5)
    assert cloud.runs == []


# ----------------------------------------------------------------------------- datachonk push


def test_datachonk_push_wait_delivers_in_the_foreground(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.run(str(BIN / "datachonk"), "push", "--wait", "origin", "main")
    assert f"for {sha[:7]} on main" in done.stdout
    assert "succeeded" in done.stdout
    assert len(cloud.runs) == 1
    time.sleep(0.5)
    assert len(cloud.runs) == 1
    assert clone.waiter_log() == ""  # no waiter was started


def test_datachonk_push_trigger_dbt_run_without_models(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    sha = clone.commit({"models/staging/stg_payments.sql": HAND_SQL}, "Hand-written model")
    done = clone.run(
        str(BIN / "datachonk"), "push", "--trigger-dbt-run", "--cause", "By hand", "origin", "main"
    )
    assert "Triggered run" in done.stdout
    [run] = cloud.runs
    assert (run.git_sha, run.cause) == (sha, "By hand")


def test_datachonk_push_dry_run_says_so(with_pre_commit: Clone, cloud: Sandbox) -> None:
    clone = with_pre_commit
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.run(str(BIN / "datachonk"), "push", "--dry-run", "origin", "main")
    assert f"would run for {sha[:7]} (main)" in done.stdout + done.stderr
    assert "dry run: nothing was pushed, so nothing was triggered" in done.stderr
    assert "install it" not in done.stderr  # the hook did run
    assert cloud.runs == []


def test_datachonk_push_failure_keeps_git_exit_code(
    tmp_path: Path, with_pre_commit: Clone, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    other = make_clone(tmp_path, "other", remote, env)
    other.commit({"README.md": "first\n"}, "Someone else")
    other.push("origin", "main")
    clone = with_pre_commit
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.run(str(BIN / "datachonk"), "push", "origin", "main", check=False)
    assert done.returncode == 1
    assert "nothing triggered" in done.stderr
    assert cloud.runs == []


def test_wait_true_records_the_final_status(with_pre_commit: Clone, cloud: Sandbox) -> None:
    clone = with_pre_commit
    config = config_yaml(cloud.url, job_id=33333, extra="    wait: true\n    timeout: 60\n")
    clone.commit(
        {"datachonk.yaml": config, "models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders"
    )
    clone.push("origin", "main")

    def finished() -> bool:
        with clone.ledger() as ledger:
            return [t.state for t in ledger.history()] == [TriggerState.FINISHED]

    eventually(finished, timeout=40)
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert record.run_status == 20
    assert "failed" in clone.waiter_log()
    history = clone.run(str(BIN / "datachonk-hook"), "history")
    assert "Error" in history.stdout


def test_a_second_clone_and_a_manual_run_adopt_the_run_of_a_pushed_commit(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    """Dedup is not only per ledger: a laptop's push, a second clone pushing the same commit
    to another branch, and `run` in a fresh clone (say, CI) start one run between them."""
    laptop = make_clone(tmp_path, "laptop", remote, env)
    laptop.run(str(BIN / "datachonk-hook"), "install")
    other = make_clone(tmp_path, "other", remote, env)
    sha = laptop.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    laptop.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1 and settled(laptop))

    # `other` was cloned before the push and never fetched: it sees the commit as new
    other.run(str(BIN / "datachonk-hook"), "install")
    other.run("git", "fetch", "--quiet", str(laptop.path), f"{sha}:refs/heads/release")
    done = other.push("origin", "release")
    assert f"will run for {sha[:7]} (release)" in done.stdout + done.stderr
    eventually(lambda: settled(other) and "found its run" in other.waiter_log())
    with other.ledger() as ledger:
        [record] = ledger.history()
    assert record.run_id == cloud.runs[0].id
    assert record.state in (TriggerState.TRIGGERED, TriggerState.FINISHED)  # followed

    fresh = make_clone(tmp_path, "fresh", remote, env)
    done = fresh.run(str(BIN / "datachonk-hook"), "run", "--ref", sha)
    assert f"{sha[:7]} already has run {cloud.runs[0].id} of job 11111 in dbt Cloud" in done.stdout
    assert len(cloud.runs) == 1
    forced = fresh.run(str(BIN / "datachonk-hook"), "run", "--ref", sha, "--force")
    assert "Triggered run" in forced.stdout and len(cloud.runs) == 2
