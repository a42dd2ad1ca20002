from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from datachonk_hooks.cli import cli, main
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import TOKEN, commit_files, config_yaml, git, publish


@pytest.fixture
def fast_sandbox() -> Iterator[Sandbox]:
    """Runs take a fraction of a second (time scale 20)."""
    with Sandbox(token=TOKEN, time_scale=20) as server:
        server.add_job(66666, project_id=67890, name="Cancelled one", outcome="cancelled")
        yield server


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        assert "Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    return invoke


def test_run_triggers_the_commit_at_head(repo: Path, fast_sandbox: Sandbox, run_cli) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = run_cli("run")
    assert result.code == 0, result.err
    [run] = fast_sandbox.runs
    assert (run.job_id, run.git_sha, run.git_branch) == (11111, head, "main")
    assert run.cause == "Add orders model"
    assert result.out.splitlines() == [
        f"Triggered run {run.id} of job 11111 for {head[:7]} on main",
        f"{fast_sandbox.url}/deploy/12345/projects/67890/runs/{run.id}/",
    ]


@pytest.mark.parametrize("command", ["run", "dbt-run"])
def test_run_refuses_a_commit_origin_does_not_have(
    repo: Path, fast_sandbox: Sandbox, run_cli, command: str
) -> None:
    head = commit_files(repo, {"models/more.sql": "select 3"}, "Not pushed yet")
    result = run_cli(command)
    assert result.code == 2
    assert result.err == (
        f"Error: {head[:7]} is not on origin yet: push it first (`datachonk push"
        " --trigger-dbt-run`), or pass --allow-unpushed\n"
    )
    assert fast_sandbox.runs == []
    allowed = run_cli(command, "--allow-unpushed")
    assert allowed.code == 0, allowed.err
    [run] = fast_sandbox.runs
    assert run.git_sha == head


def test_dbt_run_alias_with_job_id_and_cause(repo: Path, fast_sandbox: Sandbox, run_cli) -> None:
    result = run_cli("dbt-run", "--job-id", "22222", "--cause", "Nightly\nrefresh")
    assert result.code == 0, result.err
    [run] = fast_sandbox.runs
    assert (run.job_id, run.cause) == (22222, "Nightly refresh")


def test_run_at_an_older_ref(repo: Path, fast_sandbox: Sandbox, run_cli) -> None:
    older = git(repo, "rev-parse", "HEAD~1")
    assert run_cli("run", "--ref", "HEAD~1").code == 0
    [run] = fast_sandbox.runs
    assert run.git_sha == older and run.git_branch is None
    assert run.cause == "Configure dbt Cloud"


def test_dry_run_sends_nothing(repo: Path, fast_sandbox: Sandbox, run_cli) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = run_cli("run", "--dry-run")
    assert result.code == 0
    assert fast_sandbox.requests == []
    assert f"POST {fast_sandbox.url}/api/v2/accounts/12345/jobs/11111/run/" in result.out
    assert "token from environment variable DBT_CLOUD_API_TOKEN" in result.out
    body = json.loads(result.out[result.out.index("{") :])
    assert body == {"cause": "Add orders model", "git_sha": head, "git_branch": "main"}


def test_dry_run_json(repo: Path, run_cli) -> None:
    result = run_cli("run", "--dry-run", "--json", "--job-id", "22222")
    data = json.loads(result.out)
    assert data["dry_run"] is True and data["job_id"] == 22222 and data["account_id"] == 12345


@pytest.mark.parametrize(
    ("job_id", "code", "expected"),
    [
        ("11111", 0, "succeeded"),
        ("33333", 1, "failing step"),
        ("66666", 3, "was cancelled"),
    ],
)
def test_run_wait_exit_codes(repo: Path, run_cli, job_id: str, code: int, expected: str) -> None:
    result = run_cli("run", "--wait", "--job-id", job_id)
    assert result.code == code, result.err
    assert expected in result.out + result.err
    assert "Queued" in result.err  # progress lines go to stderr


def test_run_wait_timeout_exits_4(repo: Path, run_cli) -> None:
    result = run_cli("run", "--wait", "--job-id", "44444", "--timeout", "1")
    assert result.code == 4
    assert "gave up waiting after 1s" in result.err


def test_run_wait_json_prints_the_final_run(repo: Path, run_cli) -> None:
    result = run_cli("run", "--wait", "--json")
    assert result.code == 0
    data = json.loads(result.out)
    assert data["status_humanized"] == "Success" and data["is_complete"] is True


def test_watch_and_cancel(repo: Path, fast_sandbox: Sandbox, run_cli) -> None:
    assert run_cli("run", "--job-id", "44444").code == 0
    [run] = fast_sandbox.runs
    cancelled = run_cli("cancel", str(run.id))
    assert cancelled.code == 0 and "Cancelled" in cancelled.out
    watched = run_cli("watch", str(run.id), "--json")
    assert watched.code == 3
    assert json.loads(watched.out)["status"] == 30


def test_rerun_and_manifest_choose_the_job_like_run(
    dbt_repo: Path, fast_sandbox: Sandbox, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route saying `job_id: null` (never on push) falls back to job_id when asked by hand."""
    never = "    jobs:\n      - branch: main\n        job_id: null\n"
    config = config_yaml(fast_sandbox.url, job_id=22222, extra=never)
    commit_files(dbt_repo, {"datachonk.yaml": config}, "Configure dbt Cloud")
    publish(dbt_repo)
    monkeypatch.chdir(dbt_repo)
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    assert json.loads(run_cli("run", "--dry-run", "--json").out)["job_id"] == 22222
    rerun = run_cli("rerun", "--wait", "--json")
    assert rerun.code == 0, rerun.err
    [run] = fast_sandbox.runs
    assert run.job_id == 22222
    assert json.loads(rerun.out)["id"] == run.id
    assert f"Rerunning job 22222: run {run.id}" in rerun.err
    manifest = run_cli("manifest", "-o", "prod")
    assert manifest.code == 0, manifest.err
    assert f"from run {run.id} of job 22222" in manifest.out
    assert (dbt_repo / "prod" / "manifest.json").is_file()


def test_missing_token_is_exit_2(repo: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_CLOUD_API_TOKEN")
    result = run_cli("run")
    assert result.code == 2
    assert result.err.startswith("Error: no dbt Cloud API token: set DBT_CLOUD_API_TOKEN")


def test_missing_account_is_exit_2(dbt_repo: Path, run_cli, monkeypatch) -> None:
    monkeypatch.chdir(dbt_repo)
    result = run_cli("run", "--dry-run")
    assert result.code == 2
    assert "DBT_CLOUD_ACCOUNT_ID" in result.err


def test_bad_config_names_file_line_and_column(repo: Path, run_cli) -> None:
    (repo / "datachonk.yaml").write_text("deploy:\n  dbt_cloud:\n    account_id: twelve\n")
    result = run_cli("run")
    assert result.code == 2
    assert result.err.startswith(f"Error: {repo / 'datachonk.yaml'}:3:17: ")
    assert len(result.err.strip().splitlines()) == 1


def test_environment_overrides_the_file(repo: Path, run_cli, monkeypatch) -> None:
    monkeypatch.setenv("DBT_CLOUD_JOB_ID", "22222")
    assert json.loads(run_cli("run", "--dry-run", "--json").out)["job_id"] == 22222
    assert (
        json.loads(run_cli("run", "--dry-run", "--json", "--job-id", "33333").out)["job_id"]
        == 33333
    )


def test_unreachable_is_exit_5(repo: Path, fast_sandbox: Sandbox, run_cli) -> None:
    fast_sandbox.stop()
    result = run_cli("run")
    assert result.code == 5
    assert "could not reach dbt Cloud" in result.err


def test_unknown_job_is_exit_5(repo: Path, run_cli) -> None:
    result = run_cli("run", "--job-id", "999")
    assert result.code == 5
    assert "no job 999" in result.err


def test_bad_ref_is_exit_2(repo: Path, run_cli) -> None:
    result = run_cli("run", "--ref", "no-such-branch")
    assert result.code == 2
    assert "no-such-branch" in result.err


def test_bad_flag_is_exit_2(run_cli) -> None:
    assert run_cli("run", "--job-id", "abc").code == 2
    assert run_cli("frobnicate").code == 2


def test_outside_a_repository(tmp_path: Path, run_cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBT_CLOUD_ACCOUNT_ID", "12345")
    monkeypatch.setenv("DBT_CLOUD_JOB_ID", "11111")
    result = run_cli("run", "--dry-run")
    assert result.code == 2
    assert "not inside a git repository" in result.err


def test_every_command_has_help() -> None:
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        assert main([name, "--help"]) == 0


def test_python_dash_m_and_both_scripts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "datachonk_hooks", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "dbt-run" in done.stdout
    bin_dir = Path(sys.executable).parent
    for script in ("datachonk-hook", "datachonk"):
        done = subprocess.run(
            [bin_dir / script, "--version"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and "datachonk-hooks" in done.stdout


def test_a_bug_is_exit_70_with_a_log_and_no_traceback(
    repo: Path, run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    from datachonk_hooks.delivery import planning

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom {TOKEN}")

    monkeypatch.setattr(planning, "plan_manual_trigger", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_cli("run")
    assert result.code == 70
    assert "unexpected problem (a bug); details saved to" in result.err
    [log] = tmp_path.glob("datachonk-hooks-crash-*.log")
    text = log.read_text()
    assert "RuntimeError: boom" in text and TOKEN not in text


def test_entry_runs_pre_push_without_click(dbt_repo: Path) -> None:
    code = (
        "import sys; from datachonk_hooks.entry import main; "
        "rc = main(['pre-push', '--dry-run', 'origin', 'url']); "
        "print('click' in sys.modules, rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=dbt_repo, capture_output=True, text=True, check=False
    )
    assert done.stdout.split() == ["False", "0"], done.stderr
    assert "Dry run" in done.stderr


@pytest.mark.parametrize("args", [["pre-push", "--help"], ["pre-push", "--bogus"], ["--help"]])
def test_entry_falls_back_to_click(args: list[str]) -> None:
    from datachonk_hooks.entry import main as entry_main

    assert entry_main(args) == (2 if "--bogus" in args else 0)
