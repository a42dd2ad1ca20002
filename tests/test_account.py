"""`status`, `projects`, `jobs`, refusal messages and the non-interactive `connect_account`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from datachonk_hooks.account.connect import connect_account
from datachonk_hooks.account.tables import table
from datachonk_hooks.account.verify import refusal
from datachonk_hooks.account.workspace import QUICK_RETRY, client_for
from datachonk_hooks.cli import main
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
)
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.config import load_settings
from datachonk_hooks.settings.credentials import credentials_path, store_token
from tests.helpers import TOKEN, config_yaml, publish


@pytest.fixture
def repo(dbt_repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    (dbt_repo / "datachonk.yaml").write_text(config_yaml(sandbox.url))
    store_token(sandbox.url, 12345, TOKEN)
    publish(dbt_repo)
    monkeypatch.chdir(dbt_repo)
    return dbt_repo


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        return code, captured.out, captured.err

    return invoke


# --------------------------------------------------------------------------- messages


LEGACY = "https://cloud.getdbt.com"
CELL = "https://ab123.us1.dbt.com"


def test_401_on_the_legacy_host_points_to_the_access_url() -> None:
    message = refusal(AuthenticationError("x", status=401), LEGACY, 12345)
    assert message == (
        "dbt Cloud at https://cloud.getdbt.com rejected the token (HTTP 401). Accounts with"
        " their own access URL answer 401 on this legacy host: pass --host with the access URL"
        " shown under Account settings (such as https://ab123.us1.dbt.com). Nothing was saved."
    )


def test_401_elsewhere_is_about_the_token() -> None:
    message = refusal(AuthenticationError("x", status=401), CELL, 12345)
    assert message.startswith(f"dbt Cloud at {CELL} rejected the token (HTTP 401): check that")
    assert "legacy" not in message


def test_403_names_the_permission() -> None:
    assert "Job Admin permission set" in refusal(PermissionDeniedError("x"), CELL, 1)
    on_job = refusal(PermissionDeniedError("x"), CELL, 1, job_id=5)
    assert on_job.startswith("the token may not read job 5 (HTTP 403); it needs the Job Runner")


def test_404_is_about_the_account_id() -> None:
    message = refusal(NotFoundError("x"), CELL, 999)
    assert message.startswith(f"dbt Cloud at {CELL} has no account 999 that this token can see")


def test_other_errors_keep_their_message() -> None:
    error = UnreachableError("could not reach dbt Cloud at x: connection refused")
    assert refusal(error, CELL, 1) == f"{error}. Nothing was saved."


def test_table_aligns_columns_without_trailing_spaces() -> None:
    assert table(["ID", "NAME"], [["1", "a"], ["12345", ""]]) == [
        "ID     NAME",
        "1      a",
        "12345",
    ]


# --------------------------------------------------------------------------- status


def test_status(repo: Path, sandbox: Sandbox, cli) -> None:
    code, out, _ = cli("status")
    assert code == 0
    assert out.splitlines() == [
        f"config:     {repo / 'datachonk.yaml'}",
        f"host:       {sandbox.url}",
        "account:    12345",
        "project:    67890",
        "job:        11111",
        f"token:      from credentials file {credentials_path()}",
        "connection: ok, the token is accepted",
        "projects:   2",
        "  67890  jaffle_shop",
        "  67891  marketing",
    ]


def test_status_json(repo: Path, sandbox: Sandbox, cli) -> None:
    code, out, _ = cli("status", "--json")
    assert code == 0
    assert json.loads(out) == {
        "host": sandbox.url,
        "account_id": 12345,
        "project_id": 67890,
        "job_id": 11111,
        "config_file": str(repo / "datachonk.yaml"),
        "token_source": f"credentials file {credentials_path()}",
        "accepted": True,
        "problem": None,
        "projects": [{"id": 67890, "name": "jaffle_shop"}, {"id": 67891, "name": "marketing"}],
    }


def test_status_json_when_the_token_may_not_list_projects(
    repo: Path, sandbox: Sandbox, cli
) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    code, out, _ = cli("status", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == [
        "host",
        "account_id",
        "project_id",
        "job_id",
        "config_file",
        "token_source",
        "accepted",
        "problem",
        "projects",
    ]
    assert (data["accepted"], data["projects"]) == (True, None)


def test_status_with_a_job_runner_token(repo: Path, sandbox: Sandbox, cli) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    code, out, _ = cli("status")
    assert code == 0
    assert "connection: ok, the token is accepted" in out
    assert "projects:   this token may not list projects (a Job Runner token can still run" in out


def test_status_with_a_rejected_token(repo: Path, sandbox: Sandbox, cli) -> None:
    sandbox.set_tokens({"dbtc_someone_else": "account_admin"})
    code, out, _ = cli("status", "--json")
    assert code == 5
    data = json.loads(out)
    assert data["accepted"] is False and "rejected the API token (HTTP 401" in data["problem"]


def test_status_without_a_token(repo: Path, cli) -> None:
    credentials_path().unlink()
    code, out, _ = cli("status")
    assert code == 2
    assert "token:      none found" in out
    assert "connection: not working: no dbt Cloud API token" in out


def test_status_without_any_setup(dbt_repo: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(dbt_repo)
    code, out, _ = cli("status")
    assert code == 2
    assert "account:    not set" in out
    assert "run `datachonk-hook connect`" in out


def test_status_with_the_environment_token(repo: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    code, out, _ = cli("status")
    assert code == 0
    assert "token:      from environment variable DBT_CLOUD_API_TOKEN" in out


# --------------------------------------------------------------------------- projects and jobs


def test_projects(repo: Path, cli) -> None:
    code, out, _ = cli("projects")
    assert code == 0
    assert out == "ID     NAME\n67890  jaffle_shop\n67891  marketing\n"
    code, out, _ = cli("projects", "--json")
    assert json.loads(out) == [
        {"id": 67890, "name": "jaffle_shop"},
        {"id": 67891, "name": "marketing"},
    ]


def test_projects_refused(repo: Path, sandbox: Sandbox, cli) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    code, _, err = cli("projects")
    assert code == 5
    assert err.startswith("Error: the API token is not allowed to do this (HTTP 403")


def test_jobs_of_the_configured_project(repo: Path, sandbox: Sandbox, cli) -> None:
    sandbox.add_job(77777, project_id=67890, name="Old CI", active=False, job_type="ci")
    assert cli("run", "--job-id", "22222")[0] == 0
    code, out, _ = cli("jobs")
    assert code == 0
    lines = out.splitlines()
    assert [re.split(r"\s{2,}", line) for line in lines] == [
        ["ID", "NAME", "ENVIRONMENT", "TYPE", "ACTIVE", "TRIGGERS", "LAST RUN"],
        ["11111", "DataChonk CI", "1", "other", "yes", "-", "never ran"],
        ["22222", "Production daily", "1", "scheduled", "yes", "schedule", "Queued"],
        ["33333", "Nightly (fails)", "1", "other", "yes", "-", "never ran"],
        ["44444", "Long running", "1", "other", "yes", "-", "never ran"],
        ["77777", "Old CI", "1", "ci", "no", "git_provider_webhook,github_webhook", "never ran"],
    ]
    last_run = lines[0].index("LAST RUN")
    assert all(line[last_run - 2 : last_run] == "  " and line[last_run] != " " for line in lines)


def test_jobs_json_and_another_project(repo: Path, sandbox: Sandbox, cli) -> None:
    assert cli("run", "--job-id", "55555")[0] == 0
    code, out, _ = cli("jobs", "--project-id", "67891", "--json")
    assert code == 0
    [job] = json.loads(out)
    [run] = sandbox.runs
    assert job == {
        "id": 55555,
        "name": "Marketing build",
        "project_id": 67891,
        "environment_id": 1,
        "job_type": "other",
        "active": True,
        "triggers": [],
        "last_run": {
            "id": run.id,
            "status": 1,
            "status_humanized": "Queued",
            "href": job["last_run"]["href"],
            "created_at": job["last_run"]["created_at"],
            "finished_at": None,
        },
    }
    assert job["last_run"]["href"].endswith(f"/runs/{run.id}/")


def test_jobs_of_the_whole_account_show_the_project(repo: Path, cli) -> None:
    text = (repo / "datachonk.yaml").read_text().replace("    project_id: 67890\n", "")
    (repo / "datachonk.yaml").write_text(text)
    code, out, _ = cli("jobs")
    assert code == 0
    assert out.splitlines()[0].startswith("ID     NAME              PROJECT  ENVIRONMENT")
    assert "55555  Marketing build   67891" in out


def test_jobs_without_a_token(repo: Path, cli) -> None:
    credentials_path().unlink()
    code, _, err = cli("jobs")
    assert code == 2
    assert err.startswith("Error: no dbt Cloud API token")


# --------------------------------------------------------------------------- connect_account


def test_connect_account_checks_and_writes_only_what_it_was_given(
    dbt_repo: Path, sandbox: Sandbox
) -> None:
    """The local API's way in: no prompts, no project or job needed."""
    connection = connect_account(dbt_repo, {}, account_id=12345, token=TOKEN, host=sandbox.url)
    assert connection.project is None and connection.job is None
    assert [p.id for p in connection.projects or ()] == [67890, 67891]
    assert connection.written_keys == ("host", "account_id")
    assert (dbt_repo / "datachonk.yaml").read_text() == (
        f"deploy:\n  dbt_cloud:\n    host: {sandbox.url}\n    account_id: 12345\n"
    )
    with pytest.raises(ConfigError, match="a job_id needs its project_id"):
        connect_account(dbt_repo, {}, account_id=12345, token=TOKEN, host=sandbox.url, job_id=1)
    both = connect_account(
        dbt_repo,
        {},
        account_id=12345,
        token=TOKEN,
        host=sandbox.url,
        project_id=67890,
        job_id=22222,
    )
    assert both.job is not None and both.job.name == "Production daily"
    assert "job_id: 22222" in (dbt_repo / "datachonk.yaml").read_text()


def test_connect_account_refuses_a_non_utf8_file_before_asking_dbt_cloud(
    dbt_repo: Path, sandbox: Sandbox
) -> None:
    path = dbt_repo / "datachonk.yaml"
    path.write_bytes(b"# caf\xe9\n")
    expected = f"{path}:1:6: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        connect_account(dbt_repo, {}, account_id=12345, token=TOKEN, host=sandbox.url)
    assert sandbox.requests == []
    assert path.read_bytes() == b"# caf\xe9\n"
    assert not credentials_path().exists()


def test_interactive_clients_give_up_quickly_unless_the_environment_says_otherwise() -> None:
    settings = load_settings(
        config_yaml("https://cloud.getdbt.com"), source="datachonk.yaml", env={}
    )
    env = {"DBT_CLOUD_API_TOKEN": TOKEN}
    with client_for(settings, env) as client:
        assert client.retry == QUICK_RETRY
    with client_for(settings, {**env, "DATACHONK_RETRY_BUDGET": "3"}) as client:
        assert (client.retry.attempts, client.retry.budget) == (QUICK_RETRY.attempts, 3.0)
