"""CI mode, rerun and the production manifest, against real repositories and the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from datachonk_hooks.cli import main
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import Token
from tests.e2e import eventually
from tests.helpers import GENERATED_SQL, HAND_SQL, TOKEN, commit_files, config_yaml, git


@pytest.fixture
def fast() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, time_scale=20) as server:
        yield server


@pytest.fixture
def checkout(tmp_path: Path, fast: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CI checkout: a clone of a remote whose main already held a configured project."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(remote), str(seed))
    git(seed, "checkout", "--quiet", "-b", "main")
    commit_files(
        seed,
        {
            "dbt_project.yml": "name: shop\n",
            "datachonk.yaml": config_yaml(fast.url),
            "models/staging/stg_customers.sql": HAND_SQL,
        },
        "Start",
    )
    git(seed, "push", "--quiet", "origin", "main")
    monkeypatch.chdir(seed)
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    return seed


def github_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sha: str, before: str, branch: str = "main"
) -> Path:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": before, "after": sha}))
    summary = tmp_path / "summary.md"
    for name, value in {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": sha,
        "GITHUB_REF_NAME": branch,
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(summary),
    }.items():
        monkeypatch.setenv(name, value)
    return summary


def push(checkout: Path, files: dict[str, str], message: str) -> tuple[str, str]:
    before = git(checkout, "rev-parse", "HEAD")
    sha = commit_files(checkout, files, message)
    git(checkout, "push", "--quiet", "origin", "HEAD")
    return before, sha


def test_github_push_with_generated_model_triggers_and_waits(
    checkout: Path,
    fast: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before, sha = push(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    summary = github_env(monkeypatch, tmp_path, sha, before)
    assert main(["run", "--wait"]) == 0
    out = capsys.readouterr()
    [run] = fast.runs
    assert (run.git_sha, run.git_branch, run.cause) == (sha, "main", "Add orders")
    assert "generated model added: models/staging/stg_orders.sql" in out.out
    assert "\r" not in out.err  # plain lines in CI, no live line
    report = summary.read_text()
    assert "| 11111 |" in report and "Success" in report and sha[:7] in report
    assert TOKEN not in out.out + out.err + report


def test_github_push_without_generated_models_does_nothing(
    checkout: Path,
    fast: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before, sha = push(checkout, {"models/staging/stg_items.sql": HAND_SQL}, "Hand-written")
    github_env(monkeypatch, tmp_path, sha, before)
    assert main(["run", "--wait"]) == 0
    assert "nothing to trigger" in capsys.readouterr().out
    assert fast.runs == []


def test_github_failing_run_fails_the_job(
    checkout: Path, fast: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, sha = push(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    github_env(monkeypatch, tmp_path, sha, before)
    assert main(["run", "--wait", "--job-id", "33333"]) == 1


def test_github_new_branch_compares_with_the_other_branches(
    checkout: Path, fast: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(checkout, "checkout", "--quiet", "-b", "feature/x")
    sha = commit_files(checkout, {"models/marts/orders.sql": GENERATED_SQL}, "Add orders")
    git(checkout, "push", "--quiet", "origin", "feature/x")
    github_env(monkeypatch, tmp_path, sha, "0" * 40, branch="feature/x")
    assert main(["run"]) == 0
    [run] = fast.runs
    assert (run.git_sha, run.git_branch) == (sha, "feature/x")


def test_github_before_missing_from_the_clone_compares_with_the_other_branches(
    checkout: Path,
    fast: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    git(checkout, "checkout", "--quiet", "-b", "feature/y")
    sha = commit_files(checkout, {"models/marts/orders.sql": GENERATED_SQL}, "Add marts")
    git(checkout, "push", "--quiet", "origin", "feature/y")
    github_env(monkeypatch, tmp_path, sha, "1" * 40, branch="feature/y")  # as in a shallow clone
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "generated model added: models/marts/orders.sql" in out
    assert "stg_orders" not in out  # main's history is not part of this push
    [run] = fast.runs
    assert (run.git_sha, run.git_branch) == (sha, "feature/y")


def test_github_force_push_compares_with_what_the_branch_held(
    checkout: Path,
    fast: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, replaced = push(checkout, {"models/staging/stg_items.sql": HAND_SQL}, "Hand-written")
    git(checkout, "reset", "--quiet", "--hard", "HEAD~1")
    sha = commit_files(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    git(checkout, "push", "--quiet", "--force", "origin", "HEAD")
    github_env(monkeypatch, tmp_path, sha, replaced)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "generated model added: models/staging/stg_orders.sql" in out
    assert "stg_items" not in out
    [run] = fast.runs
    assert (run.git_sha, run.git_branch, run.cause) == (sha, "main", "Add orders")


def test_ci_cause_and_timeout_flags(
    checkout: Path,
    fast: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before, sha = push(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    summary = github_env(monkeypatch, tmp_path, sha, before)
    assert main(["run", "--cause", ""]) == 2
    assert "--cause: the cause must not be empty" in capsys.readouterr().err
    assert main(["run", "--wait", "--timeout", "9999999"]) == 2
    assert "--timeout: expected a positive number of seconds" in capsys.readouterr().err
    assert fast.runs == []
    code = main(["run", "--wait", "--timeout", "1", "--job-id", "44444", "--cause", "CI\nnow"])
    assert code == 4
    assert "gave up waiting after 1s" in capsys.readouterr().err
    [run] = fast.runs
    assert (run.job_id, run.cause) == (44444, "CI now")
    assert "| 44444 |" in summary.read_text()


def test_gitlab_variables(checkout: Path, fast: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    before, sha = push(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    for name, value in {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_BEFORE_SHA": before,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 0
    assert [(r.git_sha, r.git_branch) for r in fast.runs] == [(sha, "main")]
    assert main(["run"]) == 0  # a retried pipeline starts no second run
    assert len(fast.runs) == 1


def test_another_ci_takes_head_but_not_a_commit_origin_lacks(
    checkout: Path,
    fast: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`CI=true` alone (no CI's own variables) takes HEAD. A shell that merely exports it may
    hold a commit never pushed: refused as outside CI mode, unless --allow-unpushed."""
    monkeypatch.setenv("CI", "true")
    model = {"models/staging/stg_orders.sql": GENERATED_SQL}
    unpushed = commit_files(checkout, model, "Add orders")

    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert f"{unpushed[:7]} is not on origin yet: push it first" in err
    assert fast.runs == []

    git(checkout, "push", "--quiet", "origin", "HEAD")
    assert main(["run"]) == 0
    assert [(r.git_sha, r.git_branch) for r in fast.runs] == [(unpushed, "main")]

    other = commit_files(checkout, {"models/staging/stg_items.sql": GENERATED_SQL}, "Add items")
    assert main(["run", "--allow-unpushed"]) == 0
    assert [r.git_sha for r in fast.runs] == [unpushed, other]


def test_another_ci_without_tracking_refs_is_believed(
    checkout: Path, fast: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI that fetched the pushed sha alone has no remote-tracking refs to check against."""
    monkeypatch.setenv("CI", "true")
    _, sha = push(checkout, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    git(checkout, "update-ref", "-d", "refs/remotes/origin/main")

    assert main(["run"]) == 0
    assert [r.git_sha for r in fast.runs] == [sha]


def test_no_ci_flag_keeps_manual_mode(
    checkout: Path, fast: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, sha = push(checkout, {"models/staging/stg_items.sql": HAND_SQL}, "Hand-written")
    github_env(monkeypatch, tmp_path, sha, before)
    assert main(["run", "--no-ci"]) == 0
    assert [r.git_sha for r in fast.runs] == [sha]


def test_rerun_from_failure(checkout: Path, fast: Sandbox, capsys) -> None:
    with DbtCloudClient(fast.url, 12345, Token(TOKEN, "t")) as client:
        failed = client.trigger_run(33333, TriggerRequest("nightly"))
        eventually(lambda: fast.run_status(failed.id) == 20)
    assert main(["rerun", "--job-id", "33333", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] != failed.id
    assert data["cause"] is None or "Rerun" in data["cause"]
    assert len(fast.runs) == 2


def test_manifest_of_the_latest_successful_run(
    checkout: Path, fast: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "--job-id", "11111"]) == 5
    assert "no successful run" in capsys.readouterr().err
    with DbtCloudClient(fast.url, 12345, Token(TOKEN, "t")) as client:
        run = client.trigger_run(11111, TriggerRequest("prod"))
        eventually(lambda: fast.run_status(run.id) == 10)
    assert main(["manifest", "-o", "prod"]) == 0
    out = capsys.readouterr().out
    assert f"from run {run.id} of job 11111" in out
    manifest = json.loads((checkout / "prod" / "manifest.json").read_text())
    assert "nodes" in manifest or "metadata" in manifest
