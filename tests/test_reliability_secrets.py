"""Secrets: the API token never shows up anywhere it could be read or committed.

One scenario runs every command (and the push, the waiter, a crash, the local API and
failures) with a recognisable token, then scans every stdout and stderr, the waiter's log,
crash logs, the ledger file, datachonk.yaml and the home folder for it: zero hits. Debug
logging (`-v`) must not show the Authorization header. Plain-http hosts other than loopback
are refused before anything is sent, and the credentials file keeps to its rules.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import requests

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.config import load_settings
from datachonk_hooks.settings.credentials import Token
from tests.e2e import BIN, Clone, pre_commit_clone, settled
from tests.helpers import GENERATED_SQL, TOKEN, config_yaml, git, publish
from tests.reliability import (
    HOOK,
    JOB,
    Scenario,
    assert_clean,
    attempt,
    no_waiters_left,
    wait_for,
    waiter_pids,
)

CRASH = """
import os, sys
from datachonk_hooks import cli
from datachonk_hooks.commands import history
def boom(records):
    raise RuntimeError("boom with " + os.environ["DBT_CLOUD_API_TOKEN"])
history.history_lines = boom
sys.exit(cli.main(["history"]))
"""


@pytest.mark.slow
def test_every_command_and_scenario_keeps_the_token_secret(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    codes: dict[str, int] = {}

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = scenario.run(clone.path, HOOK, *args, env=clone.env, stdin=stdin)
        codes[" ".join(args)] = done.returncode
        return done

    with no_waiters_left(clone.path):
        # a push through the hook; the waiter's command line carries no token
        cloud.fail("slow", method="POST", path=r"/run/$", delay=1.0)
        pushed_sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
        scenario.push(clone, "origin", "main")
        for pid in waiter_pids(clone.path):
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes()
            scenario.keep(argv)
            assert TOKEN.encode() not in argv
        wait_for(lambda: settled(clone) and not waiter_pids(clone.path), 30, "the waiter")

        # every command, with debug logging where it talks to dbt Cloud
        run_sha = clone.commit({"models/marts/orders.sql": GENERATED_SQL}, "Add marts")
        clone.push("--no-verify", "--quiet", "origin", "main")  # `run` triggers it below
        verbose = cli("-v", "run", "--wait", "--timeout", "60")
        assert "datachonk_hooks.cloud.client: POST /api/v2/accounts/12345/jobs/11111/run/" in (
            verbose.stderr
        )
        assert "Authorization" not in verbose.stderr and "Token " not in verbose.stderr
        cli("run", "--dry-run")
        cli("run", "--dry-run", "--json")
        cli("run", "--json")  # already triggered: says so, triggers nothing
        cli("-v", "dbt-run", "--job-id", "22222", "--cause", "By hand")
        run_id = next(r.id for r in cloud.runs if r.git_sha == run_sha and r.job_id == JOB)
        cli("-v", "watch", str(run_id), "--json")
        cli("cancel", str(run_id))
        cli("-v", "rerun", "--job-id", "33333", "--json")
        cli("history")
        cli("history", "--json")
        cli("retry")
        cli("-v", "status")
        cli("status", "--json")
        cli("projects", "--json")
        cli("jobs")
        cli("doctor")
        cli("-v", "manifest", "--job-id", "11111", "-o", str(tmp_path / "manifest"))
        line = f"refs/heads/main {run_sha} refs/heads/main {pushed_sha}\n"
        cli("pre-push", "--dry-run", "origin", str(remote), stdin=line)
        cli("pre-push", "--dry-run", "--json", "origin", str(remote), stdin=line)
        cli("install")
        cli("install", "--uninstall")
        datachonk = scenario.run(
            clone.path, str(BIN / "datachonk"), "push", "--wait", "origin", "main", env=clone.env
        )
        codes["datachonk push --wait"] = datachonk.returncode
        cli(
            "connect",
            "--token-stdin",
            "--host",
            cloud.url,
            "--account-id",
            "12345",
            "--project-id",
            "67890",
            "--job-id",
            "11111",
            stdin=TOKEN + "\n",
        )

        # failures: a revoked token, an outage, a crash with the token in its traceback
        cloud.set_tokens({})
        revoked = cli("-v", "run", "--force")
        cloud.set_tokens({TOKEN: "account_admin"})
        cloud.stop()
        down = cli("status")
        cloud.start()
        crashed = scenario.run(clone.path, sys.executable, "-c", CRASH, env=clone.env)
        retried = cli("retry")

        # the local API
        from tests.test_server import Served

        served = Served(["--port", "0"], scenario.env(clone.env), clone.path)
        try:
            scenario.keep("\n".join(served.lines))
            key = next(ln for ln in served.lines if ln.startswith("API key")).rsplit(" ", 1)[1]
            for method, path in (("GET", "status"), ("POST", "trigger-run")):
                answer = requests.request(
                    method,
                    f"{served.url()}/api/dbt-cloud/{path}",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                )
                scenario.keep(answer.content)
        finally:
            scenario.keep(served.stop())

    rerun: tuple[int, str | None] = (33333, None)  # a rerun is not a commit's trigger
    counts = scenario.count(
        group="secrets",
        scenario="every command, the hook, the waiter, a crash and the local API",
        path=f"{len(codes) + 4} commands",
        cloud=cloud,
        expected=[(JOB, pushed_sha), (JOB, run_sha), (22222, run_sha), rerun],
        clones=[clone],
        not_in_ledger=[rerun],
    )
    assert codes["-v run --wait --timeout 60"] == 0
    assert codes["connect --token-stdin --host " + cloud.url + " --account-id 12345"
                 " --project-id 67890 --job-id 11111"] == 0  # fmt: skip
    assert revoked.returncode == 5 and "rejected the API token" in revoked.stderr
    assert down.returncode == 5
    assert crashed.returncode == 70 and "details saved to" in crashed.stderr
    assert list(scenario.tmpdir.glob("datachonk-hooks-crash-*.log"))
    assert retried.returncode == 0
    assert all(code in (0, 2, 3, 5) for code in codes.values()), codes
    assert_clean(counts)  # leaks included


def test_the_leak_scan_finds_a_planted_token(
    tmp_path: Path, dbt_repo: Path, scenario: Scenario
) -> None:
    """The scanner behind every "token leaks" figure really finds the token."""
    clone = Clone(dbt_repo, dbt_repo, dict(os.environ))
    (scenario.tmpdir / "datachonk-hooks-crash-x.log").write_text(f"oops {TOKEN}")
    (dbt_repo / ".git" / "datachonk").mkdir()
    (dbt_repo / ".git" / "datachonk" / "waiter.log").write_text(f"Token {TOKEN}\n{TOKEN}")
    scenario.keep(f"stderr {TOKEN}".encode())
    assert scenario.leaks(None, [clone]) == 4


def test_credentials_file_rules_hold(
    tmp_path: Path, dbt_repo: Path, sandbox: Sandbox, scenario: Scenario
) -> None:
    """Stored by `connect`: mode 0600 in a 0700 folder, per account, never in the repository;
    a file others may read is refused, and no message quotes the token."""
    env = {k: v for k, v in os.environ.items() if k != "DBT_CLOUD_API_TOKEN"}
    clone = Clone(dbt_repo, dbt_repo, env)
    args = ["--host", sandbox.url, "--account-id", "12345", "--project-id", "67890"]
    connected = scenario.run(
        dbt_repo, HOOK, "connect", "--token-stdin", *args, "--job-id", "11111",
        env=env, stdin=TOKEN,
    )  # fmt: skip
    assert connected.returncode == 0, connected.stderr
    path = Path(os.environ["HOME"]) / ".config" / "datachonk-hooks" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().count(TOKEN) == 1
    assert TOKEN not in (dbt_repo / "datachonk.yaml").read_text()
    assert scenario.run(dbt_repo, HOOK, "status", env=env).returncode == 0
    git(dbt_repo, "add", "--all")
    assert TOKEN not in git(dbt_repo, "diff", "--cached")  # nothing to commit holds it
    publish(dbt_repo)  # `run` needs a pushed commit

    path.chmod(0o644)
    refused = scenario.run(dbt_repo, HOOK, "run", env=env)
    assert refused.returncode == 2
    assert "credentials file" in refused.stderr and "chmod 600" in refused.stderr
    path.chmod(0o600)

    pasted = config_yaml(sandbox.url, extra=f"    token: {TOKEN}\n")
    (dbt_repo / "datachonk.yaml").write_text(pasted)
    told = scenario.run(dbt_repo, HOOK, "run", env=env)
    assert told.returncode == 2
    assert "must not be written in datachonk.yaml" in told.stderr
    (dbt_repo / "datachonk.yaml").write_text(config_yaml(sandbox.url))  # the user removes it
    counts = scenario.count(
        group="secrets",
        scenario="credentials file rules, a token pasted into datachonk.yaml",
        path="connect, status, run",
        cloud=sandbox,
        expected=[],
        clones=[clone],
    )
    assert counts.leaks == 0  # no message, log or ledger copied it anywhere
    assert not sandbox.runs


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("http://127.0.0.1:8089", True),
        ("http://127.5.6.7", True),
        ("http://localhost:8089", True),
        ("http://[::1]:8089", True),
        ("http://dbt.example.com", False),
        ("http://10.0.0.8:8089", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io", False),
        ("http://[::ffff:7f00:1]", False),
        ("https://ab123.us1.dbt.com", True),
    ],
)
def test_plain_http_only_for_loopback(host: str, allowed: bool) -> None:
    for text, env in (
        (config_yaml(host), {}),
        (config_yaml("https://ab123.us1.dbt.com"), {"DBT_CLOUD_HOST": host}),
    ):
        settings = attempt(
            partial(load_settings, text, source="datachonk.yaml", env=env), ConfigError
        )
        if isinstance(settings, ConfigError):
            assert not allowed, settings
            assert "https is required" in str(settings) or "not a valid host" in str(settings)
        else:
            assert allowed
            assert (settings.host or "").startswith(host.split(":", maxsplit=1)[0])


def test_plain_http_host_is_refused_before_anything_is_sent(
    dbt_repo: Path, scenario: Scenario
) -> None:
    (dbt_repo / "datachonk.yaml").write_text(config_yaml("https://ab123.us1.dbt.com"))
    env = {**os.environ, "DBT_CLOUD_API_TOKEN": TOKEN, "DBT_CLOUD_HOST": "http://192.0.2.1"}
    done = scenario.run(dbt_repo, HOOK, "run", env=env, timeout=20)
    assert done.returncode == 2
    assert "so the API token would travel unencrypted" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_debug_logging_never_shows_the_authorization_header(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    import http.client

    http.client.HTTPConnection.debuglevel = 0  # what -v leaves it at
    with DbtCloudClient(sandbox.url, 12345, Token(TOKEN, "test")) as client:
        run = client.trigger_run(JOB, TriggerRequest("Add orders", git_sha="a" * 40))
        client.get_run(run.id)
    sandbox.set_tokens({})
    with (
        DbtCloudClient(sandbox.url, 12345, Token(TOKEN, "test")) as client,
        pytest.raises(Exception, match="rejected the API token") as refused,
    ):
        client.get_run(run.id)
    assert "POST /api/v2/accounts/12345/jobs/11111/run/ -> 200" in caplog.text
    assert TOKEN not in caplog.text + str(refused.value) + repr(refused.value)
    assert "Authorization" not in caplog.text
    assert all(TOKEN not in str(record.args) for record in caplog.records)
    assert not [r for r in caplog.records if "Token " in r.getMessage()]
