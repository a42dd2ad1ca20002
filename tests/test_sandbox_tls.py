"""`sandbox --tls`: the simulator over https with a throw-away CA, for clients that speak only
https, and our own client reaching it through REQUESTS_CA_BUNDLE. Real handshakes, a real
subprocess, real requests; the tests that need trustme (the tls extra) skip without it."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest
import requests

from tests.helpers import TOKEN, commit_files, config_yaml, publish, run_cli

if TYPE_CHECKING:
    from datachonk_hooks.sandbox import Sandbox

BIN = Path(sys.executable).parent
JOBS = "/api/v2/accounts/12345/jobs/"
needs_trustme = pytest.mark.skipif(
    importlib.util.find_spec("trustme") is None, reason="needs the tls extra (trustme)"
)


@pytest.fixture
def tls_sandbox() -> Iterator[Sandbox]:
    from datachonk_hooks.sandbox import Sandbox

    with Sandbox(token=TOKEN, time_scale=20, tls=True) as server:
        yield server


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CA bundle from the developer's environment decides what is trusted."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


def _handshake(port: int, name: str, context: ssl.SSLContext) -> set[tuple[str, str]]:
    """Connect to 127.0.0.1 asking for `name`; the certificate's subject alternative names."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        cert = tls.getpeercert() or {}
    alt_names: tuple[tuple[str, str], ...] = cert.get("subjectAltName", ())  # type: ignore[assignment]
    names: set[tuple[str, str]] = set()
    for kind, value in alt_names:
        text = value.strip()  # IPv6 shows in full form: compare it parsed
        names.add((kind, str(ipaddress.ip_address(text)) if kind == "IP Address" else text))
    return names


@needs_trustme
@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_the_certificate_verifies_with_the_ca_bundle_only(tls_sandbox: Sandbox, name: str) -> None:
    trusting = ssl.create_default_context(cafile=str(tls_sandbox.ca_bundle))
    names = _handshake(tls_sandbox.port, name, trusting)
    assert {("IP Address", "127.0.0.1"), ("DNS", "localhost"), ("IP Address", "::1")} <= names
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_sandbox.port, name, ssl.create_default_context())


@needs_trustme
def test_https_url_and_a_private_ca_bundle_that_goes_with_the_sandbox(no_ca_env) -> None:
    from datachonk_hooks.sandbox import Sandbox

    assert Sandbox().ca_bundle is None
    sandbox = Sandbox(token=TOKEN, tls=True).start()
    try:
        bundle = sandbox.ca_bundle
        assert bundle is not None and bundle.is_file()
        assert sandbox.url == f"https://127.0.0.1:{sandbox.port}"
        assert bundle.parent.stat().st_mode & 0o777 == 0o700
        answer = requests.get(
            sandbox.url + JOBS, headers={"Authorization": f"Token {TOKEN}"}, verify=str(bundle)
        )
        assert answer.status_code == 200
        assert [job["id"] for job in answer.json()["data"]][:2] == [11111, 22222]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(sandbox.url + JOBS, timeout=10)
        sandbox.stop()
        assert not bundle.parent.exists()
        sandbox.start()  # a restart serves the same CA from the same path
        assert sandbox.ca_bundle == bundle and bundle.is_file()
        assert requests.get(sandbox.url + JOBS, verify=str(bundle), timeout=10).status_code == 401
    finally:
        sandbox.stop()
    assert not bundle.parent.exists()


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The stream's lines as they come, so a test waits for one with a deadline."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], pattern: str, seen: list[str]) -> re.Match[str]:
    deadline = time.monotonic() + 60
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(lines.get(timeout=left))
        except queue.Empty:
            break
        if match := re.search(pattern, seen[-1]):
            return match
    raise AssertionError(f"no line matching {pattern!r} in {seen}")


@needs_trustme
def test_the_sandbox_command_prints_what_to_export_and_serves_https(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(name, None)
    command = [str(BIN / "datachonk-hook"), "sandbox", "--tls", "--port", "0", "--token", "t"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines, seen = _lines(process.stdout), list[str]()
        url = _wait_for(lines, r"dbt Cloud sandbox at (https://127\.0\.0\.1:(\d+)) ", seen)
        bundle = _wait_for(lines, r"^  export REQUESTS_CA_BUNDLE=(\S+)$", seen).group(1)
        assert _wait_for(lines, r"^  export SSL_CERT_FILE=(\S+)$", seen).group(1) == bundle
        host = _wait_for(lines, r"^  export DBT_CLOUD_HOST=(\S+)$", seen).group(1)
        assert host == f"127.0.0.1:{url.group(2)}"
        assert any(line.endswith(bundle) and "CA bundle" in line for line in seen)
        assert Path(bundle).is_relative_to(tmp_path)
        answer = requests.get(
            f"https://{host}{JOBS}", headers={"Authorization": "Token t"}, verify=bundle
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    assert process.stderr.read() == ""
    assert not Path(bundle).parent.exists()


def test_tls_without_trustme_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['trustme'] = None\n"
        "from datachonk_hooks.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "sandbox", "--tls", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == ("Error: --tls needs the tls extra: pip install 'datachonk-hooks[tls]'\n")


@needs_trustme
def test_run_wait_reaches_an_https_sandbox_through_requests_ca_bundle(
    dbt_repo: Path, tls_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_ca_env
) -> None:
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml(tls_sandbox.url)}, "Configure")
    publish(dbt_repo)
    monkeypatch.chdir(dbt_repo)
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)

    # without the CA bundle: one clear line, exit 5 (unreachable), and no retries: the same
    # certificate would be met again (a retried run would spend the whole 60 s budget)
    monkeypatch.setenv("DATACHONK_RETRY_BUDGET", "60")
    started = time.monotonic()
    refused = run_cli("run")
    assert refused.code == 5
    assert time.monotonic() - started < 30
    monkeypatch.delenv("DATACHONK_RETRY_BUDGET")
    [line] = refused.err.splitlines()
    assert "TLS certificate is not trusted" in line and "REQUESTS_CA_BUNDLE" in line
    assert tls_sandbox.runs == []

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_sandbox.ca_bundle))
    done = run_cli("run", "--wait")
    assert done.code == 0, done.out + done.err
    [run] = tls_sandbox.runs
    assert run.status == 10 and run.job_id == 11111


@needs_trustme
def test_a_bare_dbt_cloud_host_means_https(
    dbt_repo: Path, tls_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, no_ca_env
) -> None:
    """The printed `DBT_CLOUD_HOST=127.0.0.1:PORT` serves our client too."""
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml("http://127.0.0.1:9")}, "Configure")
    publish(dbt_repo)
    monkeypatch.chdir(dbt_repo)
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    monkeypatch.setenv("DBT_CLOUD_HOST", tls_sandbox.url.removeprefix("https://"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_sandbox.ca_bundle))
    done = run_cli("run", "--wait")
    assert done.code == 0, done.out + done.err
    assert [run.status for run in tls_sandbox.runs] == [10]
