"""`datachonk-hook connect` end to end: prompts and flags, the simulator over real HTTP,
real files; the token never shows up anywhere but the credentials store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import credentials_path, find_stored_token
from tests.helpers import TOKEN, publish, run_cli

CONFIG = """\
# DataChonk settings (this comment must survive)
project_name: "jaffle shop"   # DataChonk's own key
generate:
    - models/staging
deploy:
  dbt_cloud:
    auto_trigger: true   # trigger on push
"""


run = run_cli


@pytest.fixture
def repo(dbt_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (dbt_repo / "datachonk.yaml").write_text(CONFIG)
    monkeypatch.chdir(dbt_repo)
    return dbt_repo


def flags(sandbox: Sandbox, *extra: str, account: str = "12345") -> list[str]:
    return ["connect", "--host", sandbox.url, "--account-id", account, *extra, "--token-stdin"]


def assert_nothing_written(repo: Path) -> None:
    assert (repo / "datachonk.yaml").read_text() == CONFIG
    assert not credentials_path().exists()


def assert_token_only_in_the_store(repo: Path) -> None:
    for path in repo.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert stat.S_IMODE(credentials_path().stat().st_mode) == 0o600


def test_interactive_connect(repo: Path, sandbox: Sandbox) -> None:
    answers = f"{sandbox.url}\n12345\n{TOKEN}\n1\n2\n"
    result = run("connect", stdin=answers)
    assert result.code == 0, result.err
    out = result.out
    # no default: cloud.getdbt.com stopped serving API clients (more in test_no_host.py)
    assert "Access URL (Account settings in dbt Cloud; like https://ab123.us1.dbt.com): " in out
    assert "API token (input is hidden): " in out
    assert "Projects in account 12345:\n  1) 67890  jaffle_shop\n  2) 67891  marketing\n" in out
    assert "  2) 22222  Production daily (scheduled)\n" in out
    assert "job:     22222 Production daily\n" in out
    text = (repo / "datachonk.yaml").read_text()
    assert text == CONFIG.replace(
        "  dbt_cloud:\n",
        f"  dbt_cloud:\n    host: {sandbox.url}\n    account_id: 12345\n    project_id: 67890\n"
        "    job_id: 22222\n",
    )
    assert find_stored_token(sandbox.url, 12345) is not None
    assert_token_only_in_the_store(repo)


def test_interactive_reprompts_bad_answers(repo: Path, sandbox: Sandbox) -> None:
    answers = f"ftp://x\n{sandbox.url}\nabc\n0\n12345\nnot a token\n{TOKEN}\n7\n1\n1\n"
    result = run("connect", stdin=answers)
    assert result.code == 0, result.err
    assert "only https:// URLs are supported" in result.out + result.err
    assert "contains spaces" in result.out + result.err
    assert "job:     11111 DataChonk CI" in result.out


def test_flags_connect(repo: Path, sandbox: Sandbox) -> None:
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN)
    assert result.code == 0, result.err
    path = credentials_path()
    assert result.out.splitlines() == [
        f"dbt Cloud at {sandbox.url} accepted the token for account 12345",
        "project: 67890 jaffle_shop",
        "job:     11111 DataChonk CI",
        f"saved host, account_id, project_id and job_id under deploy.dbt_cloud in"
        f" {repo / 'datachonk.yaml'}",
        f"stored the token in the credentials file {path} (mode 0600)",
        "next: commit datachonk.yaml (the hook reads it from the pushed commit), then run"
        " `datachonk-hook doctor`",
    ]
    assert json.loads(path.read_text())["tokens"] == [
        {"host": sandbox.url, "account_id": 12345, "token": TOKEN}
    ]
    assert_token_only_in_the_store(repo)
    assert [r.path for r in sandbox.requests] == [
        "/api/v3/accounts/12345/projects/",
        "/api/v2/accounts/12345/jobs/",
    ]


def test_stored_token_then_triggers_runs(repo: Path, sandbox: Sandbox) -> None:
    publish(repo)
    assert run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN).code == 0
    result = run("run")
    assert result.code == 0, result.err
    assert [run.job_id for run in sandbox.runs] == [11111]
    status = run("status")
    assert f"token:      from credentials file {credentials_path()}" in status.out


def test_token_stdin_alone_rotates_the_token(repo: Path, sandbox: Sandbox) -> None:
    assert run(*flags(sandbox, "--project-id", "67890", "--job-id", "22222"), stdin=TOKEN).code == 0
    before = (repo / "datachonk.yaml").read_text()
    new_token = "dbtc_rotated_token_value_0123456789"
    sandbox.set_tokens({new_token: "account_admin"})
    result = run("connect", "--token-stdin", stdin=new_token + "\n")
    assert result.code == 0, result.err
    assert new_token not in result.out + result.err
    assert (repo / "datachonk.yaml").read_text() == before
    stored = find_stored_token(sandbox.url, 12345)
    assert stored is not None and stored.value == new_token


def test_config_flag_and_creating_the_file(dbt_repo: Path, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.chdir(dbt_repo / "models")
    target = dbt_repo / "conf" / "datachonk.yaml"
    args = flags(sandbox, "--project-id", "67891", "--job-id", "55555")
    result = run("--config", str(target), *args, stdin=TOKEN)
    assert result.code == 0, result.err
    assert target.read_text() == (
        f"deploy:\n  dbt_cloud:\n    host: {sandbox.url}\n    account_id: 12345\n"
        "    project_id: 67891\n    job_id: 55555\n"
    )
    assert not (dbt_repo / "datachonk.yaml").exists()


def test_without_a_file_it_goes_to_the_repository_root(dbt_repo: Path, sandbox, monkeypatch):
    monkeypatch.chdir(dbt_repo / "models" / "staging")
    args = flags(sandbox, "--project-id", "67890", "--job-id", "11111")
    assert run(*args, stdin=TOKEN).code == 0
    assert (dbt_repo / "datachonk.yaml").is_file()


# --------------------------------------------------------------------------- refusals


def test_wrong_token(repo: Path, sandbox: Sandbox) -> None:
    args = flags(sandbox, "--project-id", "67890", "--job-id", "11111")
    result = run(*args, stdin="dbtc_not_the_right_token_at_all_000")
    assert result.code == 5
    assert result.err == (
        f"Error: dbt Cloud at {sandbox.url} rejected the token (HTTP 401): check that it was"
        f" copied whole and is not revoked, and that {sandbox.url} is the access URL of account"
        " 12345 (Account settings). Nothing was saved.\n"
    )
    assert_nothing_written(repo)


def test_wrong_host_on_the_legacy_host(
    repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator plays cloud.getdbt.com refusing a cell-based account's token."""
    monkeypatch.setattr("datachonk_hooks.account.workspace.LEGACY_HOST", "127.0.0.1")
    sandbox.set_tokens({"dbtc_someone_else": "account_admin"})
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN)
    assert result.code == 5
    assert result.err == (
        f"Error: dbt Cloud at {sandbox.url} rejected the token (HTTP 401). Accounts with their"
        " own access URL answer 401 on this legacy host: pass --host with the access URL shown"
        " under Account settings (such as https://ab123.us1.dbt.com). Nothing was saved.\n"
    )
    assert_nothing_written(repo)


def test_token_without_permission(repo: Path, sandbox: Sandbox) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    result = run(*flags(sandbox, "--project-id", "67890"), stdin=TOKEN)
    assert result.code == 5
    assert result.err == (
        "Error: the token may not list the projects of account 12345 (HTTP 403). Use a service"
        " token with the Job Admin permission set; a Job Runner token can run jobs but not list"
        " projects, so pass --project-id and --job-id with it. Nothing was saved.\n"
    )
    assert_nothing_written(repo)


def test_job_runner_token_with_both_ids(repo: Path, sandbox: Sandbox) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "22222"), stdin=TOKEN)
    assert result.code == 0, result.err
    assert "note: this token may not list projects; the project was checked through the job" in (
        result.out
    )
    assert "project: 67890\n" in result.out
    assert "job_id: 22222" in (repo / "datachonk.yaml").read_text()


def test_job_runner_token_with_a_job_of_another_project(repo: Path, sandbox: Sandbox) -> None:
    sandbox.set_tokens({TOKEN: "job_runner"})
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "55555"), stdin=TOKEN)
    assert result.code == 2
    assert "job 55555 (Marketing build) belongs to project 67891, not to project 67890" in (
        result.err
    )
    assert_nothing_written(repo)


def test_account_that_does_not_exist(repo: Path, sandbox: Sandbox) -> None:
    args = flags(sandbox, "--project-id", "67890", "--job-id", "11111", account="999")
    result = run(*args, stdin=TOKEN)
    assert result.code == 5
    assert result.err == (
        f"Error: dbt Cloud at {sandbox.url} has no account 999 that this token can see (HTTP"
        " 404): the account id is the number after /accounts/ in dbt Cloud's URLs"
        " (https://ab123.us1.dbt.com/accounts/12345/...), and the token must belong to that"
        " account. Nothing was saved.\n"
    )
    assert_nothing_written(repo)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--project-id", "4242", "--job-id", "11111"],
            "account 12345 has no project 4242 (it has: 67890 jaffle_shop, 67891 marketing)",
        ),
        (
            ["--project-id", "67890", "--job-id", "55555"],
            "job 55555 (Marketing build) belongs to project 67891, not to project 67890",
        ),
        (["--project-id", "67890", "--job-id", "4242"], "project 67890 (jaffle_shop) has no job"),
        (["--project-id", "67890"], "--job-id is needed with --token-stdin"),
    ],
)
def test_bad_ids_are_exit_2(repo: Path, sandbox: Sandbox, extra: list[str], message: str) -> None:
    result = run(*flags(sandbox, *extra), stdin=TOKEN)
    assert result.code == 2
    assert message in result.err and result.err.endswith("Nothing was saved.\n")
    assert_nothing_written(repo)


def test_unreachable(repo: Path, sandbox: Sandbox) -> None:
    sandbox.stop()
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN)
    assert result.code == 5
    assert result.err.startswith(f"Error: could not reach dbt Cloud at {sandbox.url}")
    assert_nothing_written(repo)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--host", "http://dbt.example.com"], TOKEN, "https is required"),
        (["--account-id", "0"], TOKEN, "Invalid value for '--account-id'"),
        (["--host", "ab123.us1.dbt.com"], "", "--token-stdin: nothing was read from stdin"),
        (["--host", "ab123.us1.dbt.com"], f"{TOKEN} {TOKEN}", "the API token contains spaces"),
    ],
)
def test_bad_input_is_exit_2(repo: Path, args: list[str], stdin: str, message: str) -> None:
    result = run("connect", "--account-id", "12345", *args, "--token-stdin", stdin=stdin)
    assert result.code == 2
    assert message in result.err
    assert_nothing_written(repo)


def test_an_unparsable_config_is_refused_before_asking(repo: Path) -> None:
    (repo / "datachonk.yaml").write_text("deploy: [\n")
    result = run("connect", stdin="")
    assert result.code == 2
    assert "invalid YAML" in result.err and "fix it first" in result.err
    assert "Access URL" not in result.out


def test_forget(repo: Path, sandbox: Sandbox) -> None:
    assert run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN).code == 0
    result = run("connect", "--forget")
    assert result.code == 0
    assert (
        result.out == f"removed the stored token from the credentials file {credentials_path()}\n"
    )
    assert find_stored_token(sandbox.url, 12345) is None
    again = run("connect", "--forget")
    assert again.out == "no stored token for this account; nothing to remove\n"
    assert run("connect", "--forget", "--job-id", "1").code == 2


def test_verbose_logs_never_hold_the_token(
    repo: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    args = flags(sandbox, "--project-id", "67890", "--job-id", "11111")
    assert run("-v", *args, stdin=TOKEN).code == 0
    assert "GET /api/v3/accounts/12345/projects/" in caplog.text
    assert TOKEN not in caplog.text


def test_notes_for_the_environment_token_and_the_legacy_host(
    repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    monkeypatch.setattr("datachonk_hooks.account.workspace.LEGACY_HOST", "127.0.0.1")
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN)
    assert result.code == 0, result.err
    assert "note: DBT_CLOUD_API_TOKEN is set here and is used before the stored token" in (
        result.out
    )
    assert f"note: {sandbox.url} works for this account, but getdbt.com URLs are being" in (
        result.out
    )


def test_a_non_utf8_config_is_refused_before_asking(repo: Path) -> None:
    path = repo / "datachonk.yaml"
    path.write_bytes(b"deploy:\n  x: caf\xe9\n")
    result = run("connect", stdin="")
    assert result.code == 2
    assert result.err == (
        f"Error: {path}:2:9: not UTF-8 text (byte 0xe9); save the file as UTF-8\n"
    )
    assert "Access URL" not in result.out
    assert path.read_bytes() == b"deploy:\n  x: caf\xe9\n"


def test_the_file_is_read_once_before_asking_and_once_before_writing(
    repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`connect` checks and takes its defaults from one read; `connect_account` reads again,
    after the prompts, and parses only to check and to edit; the file keeps its mode."""
    from datachonk_hooks.settings import config, config_edit

    path = repo / "datachonk.yaml"
    path.chmod(0o640)
    reads: list[Path] = []
    parses: list[str] = []
    read, parse = config.read_config_text, config_edit._parse

    def counting_read(where: Path) -> str | None:
        reads.append(where)
        return read(where)

    def counting_parse(text: str, source: str) -> tuple[object, object]:
        parses.append(source)
        return parse(text, source)

    monkeypatch.setattr("datachonk_hooks.account.connect.read_config_text", counting_read)
    monkeypatch.setattr(config_edit, "_parse", counting_parse)
    result = run(*flags(sandbox, "--project-id", "67890", "--job-id", "11111"), stdin=TOKEN)
    assert result.code == 0, result.err
    assert reads == [path, path]
    assert parses == [str(path), str(path), str(path), "edited"]  # connect, check, edit, verify
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert "job_id: 11111" in path.read_text()
    assert [p.name for p in repo.iterdir() if p.name.startswith(".datachonk")] == []
