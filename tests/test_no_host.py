"""No configured host: nothing goes to the retired cloud.getdbt.com, on every path.

The legacy host stopped serving API clients on 2026-11-01 and every account has its own
access URL, so a datachonk.yaml without `host` (and no DBT_CLOUD_HOST, no --host) must not
fall back on any host. Each path says so in one line, with where the access URL is found:
the hook records the trigger and keeps it pending until a host is configured, the commands
that talk to dbt Cloud stop with exit 2, `doctor` fails its host check, `connect` asks with
no default or refuses, and the local API answers 400 config_error (in test_server.py).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.clients import ClientPool
from datachonk_hooks.delivery.ledger import Ledger, TriggerState
from datachonk_hooks.delivery.pending import deliver_pending
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import credentials_path
from datachonk_hooks.settings.defaults import EXAMPLE_HOST, SET_HOST
from tests.e2e import BIN, Clone, eventually, make_clone, make_remote, settled
from tests.helpers import (
    GENERATED_SQL,
    TOKEN,
    commit_files,
    config_yaml,
    git,
    publish,
    run_cli,
)

#: the one line every path shows (what is missing, how to set it, where to find it)
NO_HOST = (
    "no dbt Cloud host: set deploy.dbt_cloud.host in datachonk.yaml (or DBT_CLOUD_HOST) to"
    " your account's access URL, shown in dbt Cloud under Account settings; it looks like"
    " https://ab123.us1.dbt.com"
)
#: `connect` says --host first
NO_HOST_CONNECT = (
    "no dbt Cloud host: pass --host, or set deploy.dbt_cloud.host in datachonk.yaml (or"
    " DBT_CLOUD_HOST), to your account's access URL, shown in dbt Cloud under Account"
    " settings; it looks like https://ab123.us1.dbt.com"
)
#: a datachonk.yaml that names the account, project and job, but no host
NO_HOST_CONFIG = (
    "deploy:\n"
    "  dbt_cloud:\n"
    "    account_id: 12345\n"
    "    project_id: 67890\n"
    "    job_id: 11111\n"
    "    auto_trigger: true\n"
)


def test_the_line_is_built_from_the_settings_names() -> None:
    built = f"no dbt Cloud host: {SET_HOST} to your account's access URL, shown in dbt Cloud"
    assert f"{built} under Account settings; it looks like {EXAMPLE_HOST}" == NO_HOST


# ----------------------------------------------------------------------------- no network


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name this process resolves; any host but loopback is refused, so no test
    here can reach the internet (cloud.getdbt.com least of all)."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        looked_up.append(name)
        if name not in ("127.0.0.1", "localhost", "::1"):
            raise socket.gaierror(f"test: no lookups of {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return looked_up


run = run_cli


@pytest.fixture
def no_host_repo(dbt_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dbt repository with a committed and pushed datachonk.yaml that has no host, and
    a token in the environment: everything but the host is set up."""
    commit_files(dbt_repo, {"datachonk.yaml": NO_HOST_CONFIG}, "Configure dbt Cloud, no host")
    publish(dbt_repo)
    monkeypatch.chdir(dbt_repo)
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    return dbt_repo


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["dbt-run", "--job-id", "22222"],
        ["run", "--dry-run"],
        ["rerun"],
        ["watch", "70403103900001"],
        ["cancel", "70403103900001"],
        ["projects"],
        ["jobs"],
        ["manifest"],
    ],
    ids=" ".join,
)
def test_commands_that_talk_to_dbt_cloud_stop_with_the_line(
    no_host_repo: Path, lookups: list[str], args: list[str]
) -> None:
    result = run(*args)
    assert (result.code, result.out, result.err) == (2, "", f"Error: {NO_HOST}\n")
    assert lookups == []
    assert not (no_host_repo / ".git" / "datachonk" / "ledger.sqlite3").exists()


def test_status_reports_the_line(no_host_repo: Path, lookups: list[str]) -> None:
    result = run("status")
    assert result.code == 2
    assert "host:       not set\n" in result.out
    assert "token:      from environment variable DBT_CLOUD_API_TOKEN\n" in result.out
    assert f"connection: not working: {NO_HOST}\n" in result.out
    json_result = run("status", "--json")
    assert json_result.code == 2
    assert '"host": null' in json_result.out and f'"problem": "{NO_HOST}"' in json_result.out
    assert lookups == []


def test_a_host_from_the_environment_or_a_flag_is_enough(
    no_host_repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_CLOUD_HOST", sandbox.url)
    result = run("run")
    assert result.code == 0, result.err
    [triggered] = sandbox.runs
    assert triggered.git_sha == git(no_host_repo, "rev-parse", "HEAD")
    with Ledger(no_host_repo / ".git" / "datachonk" / "ledger.sqlite3") as ledger:
        [record] = ledger.history()
    assert record.host == sandbox.url


def test_an_explicit_legacy_host_works_as_before_with_its_notes(
    no_host_repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the default is gone: a configured cloud.getdbt.com is used as given, with the
    "being retired" note, and its 401 still gets the cell-based hint. (The simulator plays
    the legacy host.)"""
    for module in ("account.workspace", "cloud.answers"):
        monkeypatch.setattr(f"datachonk_hooks.{module}.LEGACY_HOST", "127.0.0.1")
    commit_files(no_host_repo, {"datachonk.yaml": config_yaml(sandbox.url)}, "Legacy host")
    doctor = run("doctor")
    assert (
        f"ok    host: {sandbox.url} works for this account (getdbt.com URLs are being retired:"
        " prefer the access URL from Account settings)"
    ) in doctor.out.splitlines()
    assert run("run", "--allow-unpushed").code == 0
    assert len(sandbox.runs) == 1
    sandbox.set_tokens({})
    refused = run("rerun")
    assert refused.code == 5
    assert "cell-based accounts answer 401 on the legacy host" in refused.err


# ----------------------------------------------------------------------------- doctor


def test_doctor_fails_the_host_check_and_skips_what_needs_it(
    no_host_repo: Path, lookups: list[str]
) -> None:
    result = run("doctor")
    assert result.code == 2
    lines = result.out.splitlines()
    assert (
        "FAIL  host: no dbt Cloud host is configured (there is no default: cloud.getdbt.com no"
        " longer serves API clients); fix: set deploy.dbt_cloud.host in datachonk.yaml (or"
        " DBT_CLOUD_HOST) to your account's access URL, shown in dbt Cloud under Account"
        " settings; it looks like https://ab123.us1.dbt.com"
    ) in lines
    for name in ("token", "dbt Cloud", "project", "job"):
        assert f"skip  {name}: needs the dbt Cloud host (see the host check)" in lines, name
    assert lines[0] == f"ok    datachonk.yaml: {no_host_repo / 'datachonk.yaml'} is valid"
    assert lookups == []


def test_doctor_with_nothing_set_up_asks_for_connect_first(
    dbt_repo: Path, monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    monkeypatch.chdir(dbt_repo)
    lines = run("doctor").out.splitlines()
    assert lines[0] == "FAIL  datachonk.yaml: not found; fix: run `datachonk-hook connect`"
    assert "skip  host: needs the account from datachonk.yaml" in lines


# ----------------------------------------------------------------------------- connect


@pytest.fixture
def connect_repo(dbt_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (dbt_repo / "datachonk.yaml").write_text(NO_HOST_CONFIG)
    monkeypatch.chdir(dbt_repo)
    return dbt_repo


def test_connect_token_stdin_without_a_host_saves_nothing(
    connect_repo: Path, lookups: list[str]
) -> None:
    result = run("connect", "--account-id", "12345", "--token-stdin", stdin=TOKEN)
    assert (result.code, result.out, result.err) == (2, "", f"Error: {NO_HOST_CONNECT}\n")
    assert (connect_repo / "datachonk.yaml").read_text() == NO_HOST_CONFIG
    assert not credentials_path().exists()
    assert lookups == []


def test_connect_forget_without_a_host_says_so(connect_repo: Path) -> None:
    result = run("connect", "--forget")
    assert (result.code, result.err) == (2, f"Error: {NO_HOST_CONNECT}\n")


def test_connect_asks_for_the_access_url_with_no_default(
    connect_repo: Path, sandbox: Sandbox
) -> None:
    # an empty answer is asked again: there is no default to take
    answers = f"\n{sandbox.url}\n12345\n{TOKEN}\n1\n1\n"
    result = run("connect", stdin=answers)
    assert result.code == 0, result.err
    prompt = "Access URL (Account settings in dbt Cloud; like https://ab123.us1.dbt.com): "
    assert result.out.count(prompt) == 2
    assert "getdbt" not in result.out
    assert f"    host: {sandbox.url}\n" in (connect_repo / "datachonk.yaml").read_text()
    assert all(r.path.startswith("/api/") for r in sandbox.requests)


def test_connect_offers_the_configured_host(connect_repo: Path, sandbox: Sandbox) -> None:
    (connect_repo / "datachonk.yaml").write_text(config_yaml(sandbox.url))
    result = run("connect", stdin=f"\n\n{TOKEN}\n1\n1\n")  # Enter keeps host and account
    assert result.code == 0, result.err
    assert f"like https://ab123.us1.dbt.com) [{sandbox.url}]: " in result.out


# ----------------------------------------------------------------------------- the hook


def pending_trigger(repo: Path) -> int:
    """A trigger as the hook records it for a push made without a host: host "", pending."""
    import pygit2

    sha = git(repo, "rev-parse", "HEAD")
    request = TriggerRequest(cause="Add stg_orders", git_sha=sha, git_branch="main")
    with Ledger.for_repo(pygit2.Repository(str(repo))) as ledger:
        record, _ = ledger.add_trigger(
            host="", account_id=12345, job_id=11111, request=request, source="push"
        )
    return record.id


def test_delivery_without_a_host_sends_nothing_anywhere(
    no_host_repo: Path, lookups: list[str]
) -> None:
    """The waiter's and `retry`'s delivery: no client is even made, and no name resolved."""
    import pygit2

    trigger_id = pending_trigger(no_host_repo)
    made: list[str] = []

    def factory(host: str, account_id: int, env: Any) -> Any:
        made.append(host)
        raise AssertionError(f"a client for {host} was made")

    repo = pygit2.Repository(str(no_host_repo))
    logged: list[str] = []
    with Ledger.for_repo(repo) as ledger:
        pool = ClientPool({"DBT_CLOUD_API_TOKEN": TOKEN}, factory=factory)
        [left] = deliver_pending(repo, ledger, pool, {}, log=logged.append)
        record = ledger.get(trigger_id)
    assert record is not None
    assert (record.state, record.host, record.reason) == (TriggerState.PENDING, "", NO_HOST)
    assert left.id == trigger_id
    sha = record.sha[:7]
    assert logged == [f"job 11111 for {sha} stays pending: {NO_HOST}"]
    assert (made, lookups) == ([], [])

    retried = run("retry")
    assert retried.code == 5
    assert f"job 11111 for {sha} stays pending: {NO_HOST}" in retried.out
    assert lookups == []
    history = run("history")
    assert f"why: {NO_HOST}" in history.out


@pytest.mark.parametrize("fix", ["DBT_CLOUD_HOST", "datachonk.yaml"])
def test_retry_sends_it_to_the_host_configured_later(
    no_host_repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, fix: str
) -> None:
    trigger_id = pending_trigger(no_host_repo)
    assert run("retry").code == 5
    assert sandbox.requests == []
    if fix == "DBT_CLOUD_HOST":
        monkeypatch.setenv("DBT_CLOUD_HOST", sandbox.url)
    else:
        commit_files(no_host_repo, {"datachonk.yaml": config_yaml(sandbox.url)}, "Set the host")
    result = run("retry")
    assert result.code == 0, result.out + result.err
    [triggered] = sandbox.runs
    assert f"triggered run {triggered.id} of job 11111" in result.out
    with Ledger(no_host_repo / ".git" / "datachonk" / "ledger.sqlite3") as ledger:
        record = ledger.get(trigger_id)
    assert record is not None
    assert (record.state, record.host, record.run_id) == (
        TriggerState.TRIGGERED,
        sandbox.url,  # where it went is recorded once it is sent
        triggered.id,
    )
    assert run("retry").out == "nothing pending\n"


def test_a_manual_run_sends_the_pending_trigger_to_its_host(
    no_host_repo: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` for the commit of a trigger pushed without a host sends that trigger (one run),
    to the host `run` is configured with."""
    trigger_id = pending_trigger(no_host_repo)
    monkeypatch.setenv("DBT_CLOUD_HOST", sandbox.url)
    result = run("run")
    assert result.code == 0, result.err
    [triggered] = sandbox.runs
    assert result.out.startswith(f"Triggered run {triggered.id} of job 11111")
    with Ledger(no_host_repo / ".git" / "datachonk" / "ledger.sqlite3") as ledger:
        [record] = ledger.history()
    assert (record.id, record.host, record.run_id) == (trigger_id, sandbox.url, triggered.id)


def test_hook_dry_run_says_it_would_stay_pending(no_host_repo: Path, lookups: list[str]) -> None:
    import pygit2

    from datachonk_hooks.prepush.hook import PushInput, pre_push_main, run_pre_push
    from datachonk_hooks.push.updates import PushUpdate

    before = git(no_host_repo, "rev-parse", "HEAD")
    sha = commit_files(no_host_repo, {"models/marts/orders.sql": GENERATED_SQL}, "Add orders")
    lines: list[str] = []
    code = pre_push_main(
        remote="origin",
        url=str(no_host_repo.parent / "work-origin.git"),
        dry_run=True,
        as_json=False,
        env={"DBT_CLOUD_API_TOKEN": TOKEN},
        stdin_lines=lambda: [f"refs/heads/main {sha} refs/heads/main {before}"],
        echo=lines.append,
        echo_json=lambda data: None,
    )
    assert code == 0
    assert f"  would stay pending: {NO_HOST}" in lines
    assert not any("would POST" in line for line in lines)
    said: list[str] = []  # `git push --dry-run`: the hook's one line, nothing recorded
    update = PushUpdate("refs/heads/main", sha, "refs/heads/main", before)
    push = PushInput("origin", "origin", (update,), "git")
    repo = pygit2.Repository(str(no_host_repo))
    assert run_pre_push(repo, push, {}, dry_run=False, echo=said.append, git_dry_run=True) == 0
    assert said == [
        f"datachonk: dbt Cloud job 11111 for {sha[:7]} (main) would stay pending: {NO_HOST}"
        " (dry run: nothing recorded)"
    ]
    assert not (no_host_repo / ".git" / "datachonk" / "ledger.sqlite3").exists()
    assert lookups == []


# ----------------------------------------------------------------------------- a real push


@pytest.fixture
def no_host_clone(tmp_path: Path, env: dict[str, str]) -> Clone:
    """A clone with the standalone hook installed, of a remote configured without a host."""
    clone = make_clone(tmp_path, "work", make_remote(tmp_path, "", config=NO_HOST_CONFIG), env)
    clone.run(str(BIN / "datachonk-hook"), "install")
    return clone


@pytest.mark.parametrize("fix", ["datachonk.yaml", "DBT_CLOUD_HOST", "next push"])
def test_a_push_without_a_host_stays_pending_until_one_is_configured(
    no_host_clone: Clone, cloud: Sandbox, fix: str
) -> None:
    clone = no_host_clone
    assert "DBT_CLOUD_HOST" not in clone.env
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    done = clone.push("origin", "main")
    said = [line for line in done.stderr.splitlines() if line.startswith("datachonk:")]
    assert said == [f"datachonk: dbt Cloud job 11111 for {sha[:7]} (main) stays pending: {NO_HOST}"]
    assert git(clone.remote, "rev-parse", "main") == sha  # the push went on

    def judged() -> bool:  # landed, then tried once by the waiter: pending with the reason
        with clone.ledger() as ledger:
            return settled(clone) and all(t.reason for t in ledger.history())

    eventually(judged, timeout=60)
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert (record.state, record.host, record.reason) == (TriggerState.PENDING, "", NO_HOST)
    log = clone.waiter_log()
    assert f"job 11111 for {sha[:7]} stays pending: {NO_HOST}" in log
    assert "getdbt" not in log and "could not reach" not in log  # no host was tried
    assert cloud.requests == []
    history = clone.run(str(BIN / "datachonk-hook"), "history")
    assert f"why: {NO_HOST}" in history.stdout

    if fix == "DBT_CLOUD_HOST":
        clone.env = {**clone.env, "DBT_CLOUD_HOST": cloud.url}
    else:  # fixed and committed (`retry` reads it; the waiter reads HEAD's)
        clone.commit({"datachonk.yaml": config_yaml(cloud.url)}, "Set the access URL")
    if fix == "next push":  # its waiter delivers the backlog to the host configured now
        clone.push("origin", "main")
        eventually(lambda: len(cloud.runs) == 1 and settled(clone), timeout=60)
    else:
        retried = clone.run(str(BIN / "datachonk-hook"), "retry")
        assert "triggered run" in retried.stdout
    assert [(r.git_sha, r.git_branch) for r in cloud.runs] == [(sha, "main")]
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert (record.state, record.host) == (TriggerState.TRIGGERED, cloud.url)
