"""`datachonk-hook doctor`: every check passing, and each one failing with its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datachonk_hooks.cli import main
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import Ledger
from datachonk_hooks.push.gitrepo import open_repo
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import credentials_path, store_token
from tests.helpers import TOKEN, commit_files, config_yaml, git

PRE_COMMIT_CONFIG = """\
repos:
  - repo: https://github.com/datachonk/datachonk-hooks
    rev: v0.1.0
    hooks:
      - id: datachonk-dbt-cloud
"""
BIN = Path(sys.executable).parent


class Report:
    def __init__(self, code: int, out: str) -> None:
        self.code, self.out = code, out
        self.marks: dict[str, tuple[str, str]] = {}
        for line in out.splitlines()[:-1]:
            mark, rest = line[:4].strip(), line[6:]
            name, _, detail = rest.partition(": ")
            self.marks[name] = (mark, detail)

    def mark(self, name: str) -> str:
        return self.marks[name][0]

    def detail(self, name: str) -> str:
        return self.marks[name][1]

    @property
    def failed(self) -> list[str]:
        return [name for name, (mark, _) in self.marks.items() if mark == "FAIL"]


@pytest.fixture
def doctor(capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> Report:
        code = main(["doctor", *args])
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        assert captured.err == ""
        return Report(code, captured.out)

    return invoke


@pytest.fixture(scope="session")
def pre_commit_hook(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pre-push hook the real `pre-commit install -t pre-push` writes (run once)."""
    scratch = tmp_path_factory.mktemp("pre-commit-scratch")
    git(scratch, "init", "--quiet")
    (scratch / ".pre-commit-config.yaml").write_text(PRE_COMMIT_CONFIG)
    env = {**os.environ, "PRE_COMMIT_HOME": str(scratch / ".pre-commit-home")}
    subprocess.run(
        [BIN / "pre-commit", "install", "-t", "pre-push"],
        cwd=scratch,
        env=env,
        check=True,
        capture_output=True,
    )
    return (scratch / ".git" / "hooks" / "pre-push").read_text()


@pytest.fixture
def healthy(
    dbt_repo: Path, sandbox: Sandbox, pre_commit_hook: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Connected, committed, pre-commit configured and installed, nothing pending."""
    commit_files(
        dbt_repo,
        {
            "datachonk.yaml": config_yaml(
                sandbox.url, extra="    jobs:\n      - branch: main\n        job_id: 22222\n"
            ),
            ".pre-commit-config.yaml": PRE_COMMIT_CONFIG,
        },
        "Connect dbt Cloud",
    )
    store_token(sandbox.url, 12345, TOKEN)
    hook = dbt_repo / ".git" / "hooks" / "pre-push"
    hook.write_text(pre_commit_hook)
    hook.chmod(0o755)
    monkeypatch.chdir(dbt_repo)
    return dbt_repo


def set_config(repo: Path, text: str) -> None:
    commit_files(repo, {"datachonk.yaml": text}, "Change datachonk.yaml")


def test_all_checks_pass(healthy: Path, sandbox: Sandbox, doctor) -> None:
    report = doctor()
    assert report.code == 0, report.out
    assert report.out.splitlines() == [
        f"ok    datachonk.yaml: {healthy / 'datachonk.yaml'} is valid",
        "ok    datachonk.yaml in git: the committed version is the one on disk",
        f"ok    token: from credentials file {credentials_path()}",
        f"ok    dbt Cloud: {sandbox.url} accepted the token for account 12345",
        f"ok    host: {sandbox.url} is not the legacy cloud.getdbt.com",
        "ok    project: 67890 jaffle_shop",
        f"ok    git remote: pushes to origin ({healthy.parent / 'work-origin.git'}) trigger",
        "ok    job: 11111 DataChonk CI (active, in project 67890)",
        "ok    jobs[0] (main): 22222 Production daily (active, in project 67890)",
        "ok    branch main: pushes trigger job 22222 via jobs[0] (branch main)",
        "ok    pre-commit: .pre-commit-config.yaml runs hook datachonk-dbt-cloud",
        "ok    pre-push hook: pre-commit's hook is installed at .git/hooks/pre-push",
        "ok    pending triggers: none (nothing triggered yet)",
        "all 13 checks passed",
    ]


def test_the_standalone_hook_is_enough(
    dbt_repo: Path, sandbox: Sandbox, doctor, monkeypatch
) -> None:
    set_config(dbt_repo, config_yaml(sandbox.url))
    store_token(sandbox.url, 12345, TOKEN)
    monkeypatch.chdir(dbt_repo)
    assert main(["install"]) == 0
    report = doctor()
    assert report.code == 0, report.out
    assert "pre-commit" not in report.marks
    assert report.detail("pre-push hook") == (
        "the standalone datachonk hook is at .git/hooks/pre-push"
    )


def test_nothing_set_up_is_failed_checks_not_a_crash(tmp_path: Path, doctor, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = doctor()
    assert report.code == 2
    assert report.out.splitlines()[0] == (
        "FAIL  datachonk.yaml: not found; fix: run `datachonk-hook connect`"
    )
    for name in ("token", "dbt Cloud", "project", "git remote", "job"):
        assert report.mark(name) == "skip"
    assert report.mark("pre-push hook") == "FAIL"
    assert "not inside a git repository" in report.detail("pre-push hook")
    assert report.mark("host") == "skip"
    assert report.mark("pending triggers") == "skip"
    assert report.out.splitlines()[-1] == "2 of 9 checks failed, 7 skipped"


def test_the_configured_remote_must_exist(healthy: Path, sandbox: Sandbox, doctor) -> None:
    set_config(healthy, config_yaml(sandbox.url, extra="    remote: upstream\n"))
    report = doctor()
    assert report.code == 2
    assert report.failed == ["git remote"], report.out
    assert report.detail("git remote") == (
        "this clone has no remote 'upstream'; fix: set deploy.dbt_cloud.remote to the remote"
        " dbt Cloud builds from (`git remote -v` lists them)"
    )


def test_the_remote_is_the_repository_dbt_cloud_builds_from(
    healthy: Path, sandbox: Sandbox, doctor
) -> None:
    origin = healthy.parent / "work-origin.git"
    sandbox.set_repository(67890, f"file://{origin}")  # the same repository, spelled otherwise
    assert doctor().detail("git remote") == (
        f"pushes to origin trigger; dbt Cloud builds from {origin} too"
    )
    sandbox.set_repository(67890, "git@github.com:acme/shop.git")
    report = doctor()
    assert report.failed == ["git remote"], report.out
    assert report.detail("git remote").startswith(
        f"origin is {origin}, but dbt Cloud project 67890 builds from"
        " git@github.com:acme/shop.git; fix: set deploy.dbt_cloud.remote"
    )


def test_invalid_config(healthy: Path, doctor) -> None:
    (healthy / "datachonk.yaml").write_text("deploy:\n  dbt_cloud:\n    job_idd: 1\n")
    report = doctor()
    assert report.code == 2
    assert report.mark("datachonk.yaml") == "FAIL"
    assert "datachonk.yaml:3:5: unknown key deploy.dbt_cloud.job_idd (did you mean job_id?)" in (
        report.detail("datachonk.yaml")
    )


def test_uncommitted_changes(healthy: Path, doctor) -> None:
    path = healthy / "datachonk.yaml"
    path.write_text(path.read_text() + "    wait: true\n")
    report = doctor()
    assert report.code == 2
    assert report.failed == ["datachonk.yaml in git"], report.out
    assert report.detail("datachonk.yaml in git").endswith("; fix: commit datachonk.yaml")


def test_no_token(healthy: Path, sandbox: Sandbox, doctor) -> None:
    """The same words as every other command without a token: where to put one, and how."""
    credentials_path().unlink()
    report = doctor()
    assert report.code == 2
    assert report.mark("token") == "FAIL"
    assert report.detail("token") == (
        "no dbt Cloud API token: set DBT_CLOUD_API_TOKEN to a service token with permission to"
        " run jobs, or run `datachonk-hook connect` to store one for account 12345 at"
        f" {sandbox.url}"
    )
    assert report.mark("dbt Cloud") == "skip"


def test_the_environment_token_comes_first(
    healthy: Path, doctor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    credentials_path().chmod(0o644)  # not even looked at
    report = doctor()
    assert report.code == 0, report.out
    assert report.detail("token") == "from environment variable DBT_CLOUD_API_TOKEN"


def test_the_repository_is_opened_and_the_file_found_once(
    healthy: Path, doctor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datachonk_hooks.push import gitrepo
    from datachonk_hooks.settings import config

    opened: list[Path] = []
    searched: list[Path] = []
    open_repo, find = gitrepo.open_repo, config.find_config_file

    def counting_open(path: Path) -> object:
        opened.append(path)
        return open_repo(path)

    def counting_find(start: Path, stop: Path | None = None) -> Path | None:
        searched.append(start)
        return find(start, stop)

    monkeypatch.setattr(gitrepo, "open_repo", counting_open)
    # the outcome lines, told before every command, look for the ledger on their own
    monkeypatch.setattr("datachonk_hooks.monitor.outcomes.tell_in", lambda folder, echo: None)
    # both import it by name
    for module in ("account.workspace", "commands.doctor.findings"):
        monkeypatch.setattr(f"datachonk_hooks.{module}.find_config_file", counting_find)
    report = doctor()
    assert report.code == 0, report.out
    assert (len(opened), len(searched)) == (1, 1)


def test_a_config_flag_in_another_repository_is_checked_there(
    healthy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config may name a file in another clone: "in git" compares with that one's commit."""
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "--quiet", "--initial-branch=main")
    text = (healthy / "datachonk.yaml").read_text()
    commit_files(other, {"datachonk.yaml": text}, "Connect dbt Cloud")
    (other / "datachonk.yaml").write_text(text + "    wait: true\n")
    code = main(["--config", str(other / "datachonk.yaml"), "doctor"])
    report = Report(code, capsys.readouterr().out)
    assert report.failed == ["datachonk.yaml in git"], report.out
    assert report.detail("pre-push hook") == (
        "pre-commit's hook is installed at .git/hooks/pre-push"
    )


def test_credentials_file_others_can_read(healthy: Path, doctor) -> None:
    credentials_path().chmod(0o644)
    report = doctor()
    assert report.mark("token") == "FAIL"
    assert f"run `chmod 600 {credentials_path()}`" in report.detail("token")


def test_rejected_token(healthy: Path, sandbox: Sandbox, doctor) -> None:
    sandbox.set_tokens({"dbtc_someone_else": "account_admin"})
    report = doctor()
    assert report.failed == ["dbt Cloud"], report.out
    assert report.detail("dbt Cloud") == (
        f"{sandbox.url} rejected the token (HTTP 401); fix: store a valid token: run"
        " `datachonk-hook connect`"
    )
    assert report.mark("project") == "skip"


def test_legacy_host_rejecting_a_cell_based_account(
    healthy: Path, sandbox: Sandbox, doctor, monkeypatch
) -> None:
    monkeypatch.setattr("datachonk_hooks.account.workspace.LEGACY_HOST", "127.0.0.1")
    sandbox.set_tokens({"dbtc_someone_else": "account_admin"})
    report = doctor()
    assert report.failed == ["dbt Cloud", "host"], report.out
    assert report.detail("host") == (
        f"{sandbox.url} is the legacy host, where accounts with their own access URL"
        " (cell-based) answer 401; fix: set deploy.dbt_cloud.host to the access URL shown"
        " under Account settings, such as https://ab123.us1.dbt.com"
    )


def test_legacy_host_that_works(healthy: Path, sandbox: Sandbox, doctor, monkeypatch) -> None:
    monkeypatch.setattr("datachonk_hooks.account.workspace.LEGACY_HOST", "127.0.0.1")
    report = doctor()
    assert report.code == 0
    assert report.detail("host").startswith(f"{sandbox.url} works for this account")


def test_unreachable(healthy: Path, sandbox: Sandbox, doctor) -> None:
    sandbox.stop()
    report = doctor()
    assert report.failed == ["dbt Cloud"], report.out
    assert report.detail("dbt Cloud").startswith(f"could not reach dbt Cloud at {sandbox.url}")
    assert report.mark("job") == "skip"


def test_account_not_found(healthy: Path, sandbox: Sandbox, doctor) -> None:
    text = config_yaml(sandbox.url).replace("12345", "999")
    set_config(healthy, text)
    store_token(sandbox.url, 999, TOKEN)
    report = doctor()
    assert report.failed == ["dbt Cloud"], report.out
    assert "has no account 999 that this token can see (HTTP 404)" in report.detail("dbt Cloud")


def test_missing_project(healthy: Path, sandbox: Sandbox, doctor) -> None:
    set_config(healthy, config_yaml(sandbox.url).replace("67890", "4242"))
    report = doctor()
    assert report.detail("project").startswith("account 12345 has no project 4242; fix:")
    assert report.mark("job") == "FAIL"  # 11111 is in project 67890
    assert "belongs to project 67890, not 4242" in report.detail("job")


@pytest.mark.parametrize(
    ("job_id", "problem"),
    [
        (4242, "no job 4242 in the account; fix: pick an existing job"),
        (55555, "55555 Marketing build belongs to project 67891, not 67890; fix:"),
        (77777, "77777 Old CI is deactivated; fix: reactivate it in dbt Cloud"),
    ],
)
def test_job_problems(healthy: Path, sandbox: Sandbox, doctor, job_id: int, problem: str) -> None:
    sandbox.add_job(77777, project_id=67890, name="Old CI", active=False)
    extra = f"    jobs:\n      - branch: main\n        job_id: {job_id}\n"
    set_config(healthy, config_yaml(sandbox.url, job_id=job_id, extra=extra))
    report = doctor()
    assert report.code == 2
    assert report.failed == ["job", "jobs[0] (main)"], report.out
    assert report.detail("job").startswith(problem)


def test_a_job_runner_token_checks_the_project_through_the_job(
    healthy: Path, sandbox: Sandbox, doctor
) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    report = doctor()
    assert report.code == 0, report.out
    assert "may not list projects" in report.detail("dbt Cloud")
    assert report.detail("project").startswith("67890 (seen through job 11111")


def test_pre_commit_configured_but_not_installed(healthy: Path, doctor) -> None:
    (healthy / ".git" / "hooks" / "pre-push").unlink()
    report = doctor()
    assert report.failed == ["pre-push hook"], report.out
    assert report.detail("pre-push hook") == (
        "not installed in this clone (.git/hooks/pre-push is missing); fix: run"
        " `pre-commit install -t pre-push`"
    )


def test_hook_id_commented_out_does_not_count(healthy: Path, doctor) -> None:
    text = PRE_COMMIT_CONFIG.replace("- id:", "# - id:")
    commit_files(healthy, {".pre-commit-config.yaml": text}, "Disable the hook")
    report = doctor()
    assert report.failed == ["pre-commit"], report.out
    assert "fix: add hook id datachonk-dbt-cloud to .pre-commit-config.yaml" in (
        report.detail("pre-commit")
    )


def test_someone_elses_pre_push_hook(healthy: Path, doctor) -> None:
    (healthy / ".git" / "hooks" / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    report = doctor()
    assert report.failed == ["pre-push hook"], report.out
    assert "neither pre-commit's nor datachonk's; fix: run `datachonk-hook install`" in (
        report.detail("pre-push hook")
    )


def test_pending_triggers(healthy: Path, sandbox: Sandbox, doctor) -> None:
    sha = git(healthy, "rev-parse", "HEAD")
    with Ledger.for_repo(open_repo(healthy)) as ledger:
        record, _ = ledger.add_trigger(
            host=sandbox.url,
            account_id=12345,
            job_id=11111,
            request=TriggerRequest(cause="Connect dbt Cloud", git_sha=sha, git_branch="main"),
            source="manual",
        )
        ledger.mark_pending(record.id, "dbt Cloud answered HTTP 503")
    report = doctor()
    assert report.failed == ["pending triggers"], report.out
    assert report.detail("pending triggers") == (
        f"1 not delivered; the oldest, job 11111 for {sha[:7]}: dbt Cloud answered HTTP 503;"
        " fix: run `datachonk-hook retry` (`datachonk-hook history` shows them)"
    )


def test_branch_route_shows_the_entry_and_its_options(healthy: Path, doctor) -> None:
    from tests.helpers import git

    git(healthy, "checkout", "--quiet", "-b", "feature/Add-X")
    text = (healthy / "datachonk.yaml").read_text()
    (healthy / "datachonk.yaml").write_text(
        text + "      - branch: 'feature/*'\n        job_id: 11111\n"
        "        schema_override: 'dbt_{branch}'\n        select_changed: true\n"
    )
    report = doctor()
    assert (
        "ok    branch feature/Add-X: pushes trigger job 11111 via jobs[1] (branch feature/*);"
        " schema dbt_feature_add_x, select changed models"
    ) in report.out.splitlines()
