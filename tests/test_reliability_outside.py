"""Nothing from outside can hang a push, start a second run, or reach the terminal (issue 12).

Hostile repositories (huge files, a catastrophic marker), slow or lying dbt Clouds (a
dripping answer, a redirect, ids out of range, absurd Retry-After, long messages), text
that tries to drive the terminal or hide itself, odd environments (a bad DATACHONK_* value,
umask 000) and a local API fed hostile requests: each through real pushes (pre-commit, the
detached waiter), the real CLI or a real `datachonk-hook serve` against the simulator. Each
scenario counts what it did at the simulator, in the ledger and in every output, then
asserts what the issue promised: the push returned within PUSH_BOUND and started nothing,
or the trigger stayed pending with a clean one-line reason and `retry` delivered one run.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from datachonk_hooks.delivery.ledger import TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import Clone, make_clone, pre_commit_clone
from tests.helpers import GENERATED_SQL, TOKEN, config_yaml, git
from tests.reliability import HOOK, JOB, Scenario, assert_clean, no_waiters_left, wait_for
from tests.test_reliability_races import RUN_POST, idle, the_trigger, triggers

GROUP_INPUT = "hostile input"
GROUP_SERVERS = "slow or lying servers"
GROUP_INJECTION = "injection"
GROUP_LIMITS = "limits"
MODEL = {"models/staging/stg_orders.sql": GENERATED_SQL}
MiB = 1 << 20
#: seconds a whole `git push` through the hook may take, whatever the repository holds
PUSH_BOUND = 3.0
#: MiB any process of such a push may hold (git itself included); a 5.7 MB datachonk.yaml
#: once took 667 MB
PEAK_MIB = 200
FOREVER = 10_000
ESC, BEL = "\x1b", "\x07"
#: what a stranger's text may carry to drive a terminal: clear the screen, retitle the
#: window, ring the bell, turn the rest of the line around
HOSTILE = f"boom {ESC}[2J{ESC}]0;pwned{BEL}\u202e gnp.exe"
#: bidi overrides and isolates, zero-width characters
INVISIBLE = "\u202a\u202b\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u2060\ufeff"


def datachonk_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("datachonk:")]


def posts(cloud: Sandbox) -> int:
    """Trigger POSTs dbt Cloud received (whatever it answered)."""
    return sum(1 for r in cloud.requests if r.method == "POST" and r.path.endswith("/run/"))


def unsafe(text: str) -> list[str]:
    """Characters of `text` that must never reach a terminal or a log (whitespace aside)."""
    return [
        f"U+{ord(c):04X}"
        for c in text
        if (ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0 or c in INVISIBLE
    ]


def nothing_recorded(clone: Clone) -> bool:
    return triggers(clone) == []


@pytest.fixture
def elsewhere() -> Iterator[Sandbox]:
    """A second server on another port: where a hostile redirect points."""
    with Sandbox(token=TOKEN) as server:
        yield server


# ----------------------------------------------------------------------------- hostile input


#: runs a command, then prints its seconds and the peak resident memory (KiB) of it and
#: every process it waited for (git, pre-commit, the hook; not the detached waiter)
_MEASURED = """\
import resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.call(sys.argv[1:])
took = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"measured: {took:.3f} {peak}", file=sys.stderr)
sys.exit(code)
"""


def measured_push(scenario: Scenario, clone: Clone) -> tuple[str, float]:
    """`git push origin main`, timed like `Scenario.push`: (its output, peak memory in MiB)."""
    done = scenario.run(
        clone.path,
        sys.executable,
        "-c",
        _MEASURED,
        "git",
        "push",
        "origin",
        "main",
        env=clone.env,
        timeout=60,
    )
    output, _, figures = (done.stdout + done.stderr).rpartition("measured: ")
    seconds, peak_kib = figures.split()
    scenario.note_push(done, float(seconds))
    return output, int(peak_kib) / 1024


def _hostile_push(
    tmp_path: Path, remote: Path, env: dict[str, str], scenario: Scenario, files: dict[str, str]
) -> tuple[Clone, str, str, float]:
    """Commit `files` and push them through pre-commit: (clone, sha, output, peak MiB)."""
    clone = pre_commit_clone(tmp_path, remote, env)
    sha = clone.commit(files, "Hostile input")
    with no_waiters_left(clone.path):
        output, peak = measured_push(scenario, clone)
    return clone, sha, output, peak


def _count_hostile(
    scenario: Scenario, cloud: Sandbox, clone: Clone, name: str, peak: float
) -> None:
    counts = scenario.count(
        group=GROUP_INPUT,
        scenario=f"{name} (peak memory {peak:.0f} MiB)",
        path="git push (pre-commit hook)",
        cloud=cloud,
        expected=[],
        clones=[clone],
    )
    assert_clean(counts)
    assert counts.pushes == 1 and counts.max_push_s < PUSH_BOUND, counts
    assert cloud.runs == [] and posts(cloud) == 0
    assert nothing_recorded(clone)
    assert peak < PEAK_MIB, peak


def _big_config(host: str, size: int) -> str:
    text = config_yaml(host)
    filler = "# " + "x" * 60 + "\n"
    return text + filler * ((size - len(text)) // len(filler) + 1)


@pytest.mark.slow
def test_a_2_mib_datachonk_yaml_is_refused_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    config = _big_config(cloud.url, 2 * MiB)
    clone, sha, output, peak = _hostile_push(
        tmp_path, remote, env, scenario, {"datachonk.yaml": config, **MODEL}
    )
    _count_hostile(scenario, cloud, clone, "2 MiB datachonk.yaml", peak)
    size = len(config.encode())
    assert datachonk_lines(output) == [
        f"datachonk: datachonk.yaml@{sha[:7]}: too large ({size} bytes, limit 1 MiB)",
        f"datachonk: nothing triggered for refs/heads/main; the push goes on. Once the file is"
        f" fixed: `datachonk-hook run --ref {sha[:12]}`",
    ], output


@pytest.mark.slow
def test_a_catastrophic_marker_is_refused_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    config = config_yaml(cloud.url) + "    detect:\n      marker: '(a+)+$'\n"
    model = "-- " + "a" * 34 + "!\nselect 1 as id\n"
    clone, sha, output, peak = _hostile_push(
        tmp_path,
        remote,
        env,
        scenario,
        {"datachonk.yaml": config, "models/staging/stg_orders.sql": model},
    )
    _count_hostile(scenario, cloud, clone, "catastrophic marker '(a+)+$' and a 34-'a' model", peak)
    [reason, hint] = datachonk_lines(output)
    assert reason.startswith(
        f"datachonk: datachonk.yaml@{sha[:7]}:9:15: deploy.dbt_cloud.detect.marker: refused"
        " regular expression '(a+)+$'"
    ), reason
    assert hint.startswith("datachonk: nothing triggered for refs/heads/main"), hint


@pytest.mark.slow
def test_a_2_mib_dbt_project_yml_is_refused_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    project = "name: shop\nmodel-paths: [models]\n" + ("# " + "x" * 60 + "\n") * (2 * MiB // 63)
    clone, sha, output, peak = _hostile_push(
        tmp_path, remote, env, scenario, {"dbt_project.yml": project, **MODEL}
    )
    _count_hostile(scenario, cloud, clone, "2 MiB dbt_project.yml", peak)
    size = len(project.encode())
    assert datachonk_lines(output)[0] == (
        f"datachonk: dbt_project.yml@{sha[:7]}: too large ({size} bytes, limit 1 MiB)"
    ), output


@pytest.mark.slow
def test_a_100_mb_single_line_model_is_skipped_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    huge = clone.path / "models" / "huge.sql"
    huge.parent.mkdir(parents=True, exist_ok=True)
    with huge.open("w") as out:  # one line, the marker at its start
        out.write("-- generated by datachonk ")
        for _ in range(100):
            out.write("a" * 1_000_000)
    clone.run("git", "add", "models/huge.sql")
    clone.run("git", "commit", "--quiet", "-m", "A huge model")
    sha = git(clone.path, "rev-parse", "HEAD")
    with no_waiters_left(clone.path):
        output, peak = measured_push(scenario, clone)
    _count_hostile(scenario, cloud, clone, "100 MB single-line model", peak)
    size = huge.stat().st_size
    assert datachonk_lines(output) == [
        f"datachonk: models/huge.sql@{sha[:7]}: too large ({size} bytes, limit 16 MiB);"
        " not checked for the marker"
    ], output


# ----------------------------------------------------------------------------- slow or lying


@pytest.mark.slow
def test_a_dripping_trigger_answer_ends_run_in_time_and_retry_adopts_the_run(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """dbt Cloud accepts the trigger, then answers a byte a second, and so do its run lists
    from then on: `run` gives up within its HTTP timeout plus its retry budget (~9 s with
    Python's start), the trigger stays pending, and `retry` later adopts the run."""
    quick = {**env, "DATACHONK_HTTP_TIMEOUT": "2", "DATACHONK_RETRY_BUDGET": "4"}
    clone = make_clone(tmp_path, "work", remote, quick)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    cloud.fail("drip", method="POST", path=RUN_POST)
    started = scenario.start(clone.path, HOOK, "run", env=quick)
    wait_for(lambda: posts(cloud) == 1, 30, "the trigger POST")
    cloud.fail("drip", method="GET", path=r"/runs/$", times=FOREVER)
    first = scenario.finish(started, timeout=60, label="run")
    took = time.monotonic() - started[1]
    pending = the_trigger(clone)
    cloud.clear_faults()
    later = scenario.cli(clone, "retry", env=quick)
    counts = scenario.count(
        group=GROUP_SERVERS,
        scenario=f"trigger accepted, then answers drip 1 byte/s: run ended in {took:.1f} s,"
        " retry adopted the run",
        path="datachonk-hook run, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert took < 9.5, (took, first.stdout, first.stderr)
    assert first.returncode == 5, first.stdout + first.stderr
    assert "no complete answer within 2 s" in first.stderr
    assert "the trigger stays pending" in first.stdout
    assert (pending.state, pending.run_id) == (TriggerState.PENDING, None)
    assert later.returncode == 0, later.stdout + later.stderr
    assert posts(cloud) == 1
    assert_clean(counts)


@pytest.mark.slow
def test_a_redirected_trigger_starts_nothing_and_stays_pending(
    tmp_path: Path,
    remote: Path,
    env: dict[str, str],
    cloud: Sandbox,
    elsewhere: Sandbox,
    scenario: Scenario,
) -> None:
    """A 302 to another port answers the trigger POST: not followed, an error, pending."""
    clone = pre_commit_clone(tmp_path, remote, {**env, "DATACHONK_RETRY_BUDGET": "3"})
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("redirect", method="POST", path=RUN_POST, port=elsewhere.port)
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone), 60, "the waiter")
    pending = the_trigger(clone)
    log = clone.waiter_log()
    runs_meanwhile = len(cloud.runs)
    retried = scenario.cli(clone, "retry")  # the redirect was a one-off
    counts = scenario.count(
        group=GROUP_SERVERS,
        scenario="302 to another port for the trigger POST, then retry",
        path="git push (pre-commit hook, waiter), retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert pushed.returncode == 0
    assert elsewhere.requests == [] and elsewhere.runs == []
    assert runs_meanwhile == 0
    assert (pending.state, pending.run_id) == (TriggerState.PENDING, None), log
    assert pending.reason is not None and "redirect (HTTP 302)" in pending.reason
    assert f":{elsewhere.port}/" in pending.reason
    assert "redirect (HTTP 302)" in log and "stays pending" in log, log
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert_clean(counts)


@pytest.mark.slow
def test_run_ids_out_of_range_never_crash_and_the_run_is_delivered_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """Every answer's id is 2^64+5 (the waiter), then -5 (`retry`): a bad response each
    time, the trigger pending; once ids are sane again `retry` adopts the one run."""
    clone = pre_commit_clone(tmp_path, remote, {**env, "DATACHONK_RETRY_BUDGET": "3"})
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("odd_id", times=FOREVER, id=2**64 + 5)
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone), 60, "the waiter")
    huge = the_trigger(clone)
    cloud.clear_faults()
    cloud.fail("odd_id", times=FOREVER, id=-5)
    negative = scenario.cli(clone, "retry")
    still = the_trigger(clone)
    cloud.clear_faults()
    retried = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP_SERVERS,
        scenario="run id 2^64+5 (waiter), then -5 (retry), then sane ids (retry)",
        path="git push (pre-commit hook, waiter), retry, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert pushed.returncode == 0
    log = clone.waiter_log()
    assert (huge.state, huge.run_id) == (TriggerState.PENDING, None), log
    assert huge.reason is not None and "which is no id" in huge.reason
    assert "a bug" not in log and "Traceback" not in log
    output = negative.stdout + negative.stderr
    assert negative.returncode == 5, output
    assert "which is no id" in output and "Traceback" not in output
    assert (still.state, still.run_id) == (TriggerState.PENDING, None)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert posts(cloud) == 1
    assert_clean(counts)


@pytest.mark.slow
def test_an_absurd_retry_after_is_capped(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = make_clone(tmp_path, "work", remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    cloud.fail("429", method="POST", path=RUN_POST, times=FOREVER, retry_after=1e308)
    started = time.monotonic()
    first = scenario.cli(clone, "run", env={**env, "DATACHONK_RETRY_BUDGET": "3"})
    took = time.monotonic() - started
    cloud.clear_faults()
    retried = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP_SERVERS,
        scenario="429 with Retry-After: 1e308, then retry",
        path="datachonk-hook run, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert first.returncode == 5, first.stdout + first.stderr
    [line] = first.stderr.splitlines()
    assert "retry after 300s" in line, line
    assert len(line) < 400 and "0" * 10 not in line, line
    assert took < 10, took  # neither slept nor waited for the header's 1e308 s
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert_clean(counts)


@pytest.mark.slow
def test_a_long_server_message_is_cut_with_an_ellipsis(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = make_clone(tmp_path, "work", remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    message = "The warehouse said: " + "x" * 380
    cloud.fail("500", method="POST", path=RUN_POST, times=FOREVER, message=message)
    first = scenario.cli(clone, "run", env={**env, "DATACHONK_RETRY_BUDGET": "2"})
    pending = the_trigger(clone)
    cloud.clear_faults()
    retried = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP_SERVERS,
        scenario="500 with a 400-character message, then retry",
        path="datachonk-hook run, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert first.returncode == 5, first.stdout + first.stderr
    [line] = first.stderr.splitlines()
    assert "The warehouse said: xxx" in line and "\u2026" in line, line
    assert "RuntimeError" not in line and "x" * 300 not in line, line
    assert pending.reason is not None and "\u2026" in pending.reason
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert_clean(counts)


# ----------------------------------------------------------------------------- injection


@pytest.mark.slow
def test_a_hostile_server_message_reaches_no_terminal_and_no_log(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, {**env, "DATACHONK_RETRY_BUDGET": "3"})
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("500", method="POST", path=RUN_POST, times=FOREVER, message=HOSTILE)
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone), 60, "the waiter")
    pending = the_trigger(clone)
    history = scenario.cli(clone, "history")
    during = scenario.cli(clone, "retry")
    status = scenario.cli(clone, "status")
    cloud.clear_faults()
    after = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP_INJECTION,
        scenario="500 whose message holds ESC[2J, an OSC title, BEL and U+202E",
        path="git push (pre-commit hook, waiter), history, retry, status, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    log = clone.waiter_log()
    assert pushed.returncode == 0
    assert pending.state is TriggerState.PENDING and pending.reason, log
    assert "boom" in pending.reason and "gnp.exe" in pending.reason
    assert "boom" in log and "boom" in history.stdout, (log, history.stdout)
    assert "boom" in during.stdout + during.stderr
    seen = {
        "waiter.log": log,
        "history": history.stdout + history.stderr,
        "retry (during)": during.stdout + during.stderr,
        "status": status.stdout + status.stderr,
        "retry (after)": after.stdout + after.stderr,
        "ledger reason": pending.reason,
    }
    assert {name: unsafe(text) for name, text in seen.items() if unsafe(text)} == {}
    assert during.returncode == 5 and after.returncode == 0, after.stdout + after.stderr
    assert_clean(counts)


@pytest.mark.slow
def test_invisible_characters_in_a_commit_subject_never_reach_the_cause(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    subject = f"Add\u202e stg_\u200borders\u2066 model\u2069{ESC}[2J\ufeff"
    sha = clone.commit(MODEL, subject)
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone) and len(cloud.runs) == 1, 60, "the run")
    history = scenario.cli(clone, "history")
    counts = scenario.count(
        group=GROUP_INJECTION,
        scenario="commit subject with bidi, zero-width and ESC characters",
        path="git push (pre-commit hook, waiter), history",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    [run] = cloud.runs
    assert pushed.returncode == 0
    assert "stg_orders" in run.cause and unsafe(run.cause) == [], run.cause
    assert unsafe(history.stdout + history.stderr) == [], history.stdout
    assert unsafe(pushed.stdout + pushed.stderr) == []
    assert unsafe(clone.waiter_log()) == []
    assert_clean(counts)


# ----------------------------------------------------------------------------- limits


@pytest.mark.slow
def test_a_bad_landing_timeout_in_the_push_environment_still_delivers(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, {**env, "DATACHONK_LANDING_TIMEOUT": "abc"})
    sha = clone.commit(MODEL, "Add stg_orders")
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone) and len(cloud.runs) == 1, 60, "the run")
    counts = scenario.count(
        group=GROUP_LIMITS,
        scenario="DATACHONK_LANDING_TIMEOUT=abc in the push's environment",
        path="git push (pre-commit hook, waiter)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    output = pushed.stdout + pushed.stderr
    log = clone.waiter_log()
    assert pushed.returncode == 0, output
    assert (
        "datachonk: warning: DATACHONK_LANDING_TIMEOUT: expected a number of seconds above 0,"
        " got 'abc'; using the default"
    ) in output, output
    assert "triggered run" in log and "a bug" not in log, log
    assert the_trigger(clone).state in (TriggerState.TRIGGERED, TriggerState.FINISHED)
    assert_clean(counts)


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.mark.slow
def test_files_stay_private_under_umask_000(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """The token comes from the environment (no `connect`); git, the hook and the waiter
    all run under umask 000, as in some containers and CI images."""
    clone = pre_commit_clone(tmp_path, remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    state = clone.path / ".git" / "datachonk"
    with no_waiters_left(clone.path):
        started = time.monotonic()
        pushed = scenario.run(
            clone.path,
            "sh",
            "-c",
            'umask 000 && exec git push "$@"',
            "sh",
            "origin",
            "main",
            env=clone.env,
            timeout=60,
        )
        scenario.note_push(pushed, time.monotonic() - started)
        wait_for(lambda: idle(clone) and len(cloud.runs) == 1, 60, "the run")
    counts = scenario.count(
        group=GROUP_LIMITS,
        scenario="umask 000 for git, the hook and the waiter (token from the environment)",
        path="git push (pre-commit hook, waiter)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    modes = {
        ".git/datachonk": _mode(state),
        "ledger.sqlite3": _mode(state / "ledger.sqlite3"),
        "waiter.log": _mode(state / "waiter.log"),
    }
    assert modes == {".git/datachonk": "0o700", "ledger.sqlite3": "0o600", "waiter.log": "0o600"}
    loose = {
        str(p.relative_to(state)): _mode(p)
        for p in state.rglob("*")
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    }
    assert loose == {}, loose
    home = Path(os.environ["HOME"])  # nothing of ours there either, nor open to others
    opened = {
        str(p.relative_to(home)): _mode(p)
        for p in home.rglob("*")
        if stat.S_IMODE(p.lstat().st_mode) & 0o077 and not p.is_symlink()
    }
    assert opened == {}, opened
    assert_clean(counts)


# ----------------------------------------------------------------------------- local API

API_KEY = "reliability-api-key-0123456789abcdef"
TRIGGER_RUN = "/api/dbt-cloud/trigger-run"


class LocalApi:
    """`datachonk-hook serve` in a real process in the clone, its output kept for the scan."""

    def __init__(self, scenario: Scenario, clone: Clone) -> None:
        self.scenario = scenario
        env = {**clone.env, "DATACHONK_API_KEY": API_KEY}
        self.started = scenario.start(clone.path, HOOK, "serve", "--port", "0", env=env)
        process = self.started[0]
        assert process.stderr is not None
        self.lines: list[str] = []
        for raw in process.stderr:  # up to "Press Ctrl+C"; serve prints it at once
            self.lines.append(raw.decode().rstrip("\n"))
            if self.lines[-1].startswith("Press Ctrl+C"):
                break
        line = next(line for line in self.lines if line.startswith("DataChonk local API on "))
        self.url = line.split()[4]

    def post(self, body: bytes | Iterator[bytes]) -> requests.Response:
        """POST to trigger-run; an iterator goes out chunked (no Content-Length)."""
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        return requests.post(f"{self.url}{TRIGGER_RUN}", data=body, headers=headers, timeout=30)

    def peak_mib(self) -> float:
        """The server process's peak resident memory so far (VmHWM), in MiB."""
        status = Path(f"/proc/{self.started[0].pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1]) / 1024

    def stop(self) -> int:
        """Ctrl+C, as a user would; the exit code goes into the report."""
        self.started[0].send_signal(signal.SIGINT)
        self.scenario.keep("\n".join(self.lines))
        return self.scenario.finish(self.started, timeout=20, label="serve").returncode


def _served_clone(
    tmp_path: Path, remote: Path, env: dict[str, str], scenario: Scenario
) -> tuple[Clone, str, LocalApi]:
    clone = make_clone(tmp_path, "work", remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    return clone, sha, LocalApi(scenario, clone)


@pytest.mark.slow
def test_the_local_api_refuses_control_characters_before_dbt_cloud_sees_them(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone, sha, api = _served_clone(tmp_path, remote, env, scenario)
    try:
        refused = [
            api.post(json.dumps(body).encode())
            for body in (
                {"git_branch": f"main{ESC}0{BEL}"},
                {"git_branch": "feat/\u202egnp"},
                {"cause": f"deploy{ESC}]0;pwned{BEL}"},
                {"cause": "deploy \u2066x\u2069\u200b"},
            )
        ]
        requests_meanwhile = len(cloud.requests)
        accepted = api.post(json.dumps({"cause": "Deploy stg_orders"}).encode())
    finally:
        stopped = api.stop()
    counts = scenario.count(
        group=GROUP_INJECTION,
        scenario="local API: control, bidi and zero-width characters in git_branch and cause",
        path="datachonk-hook serve (4 refused, 1 good trigger)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert [r.status_code for r in refused] == [422] * 4, [r.text for r in refused]
    for response in refused:
        assert "control, bidi or zero-width" in response.json()["error"]["message"]
        assert unsafe(response.text) == [] and "pwned" not in response.text
    assert requests_meanwhile == 0
    assert accepted.status_code == 200, accepted.text
    [run] = cloud.runs
    assert (run.git_sha, run.cause) == (sha, "Deploy stg_orders")
    assert stopped == 0
    assert_clean(counts)


@pytest.mark.slow
def test_the_local_api_caps_request_bodies(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone, sha, api = _served_clone(tmp_path, remote, env, scenario)
    chunk, chunks = b"x" * MiB, 300

    def body() -> Iterator[bytes]:  # 300 MiB, chunked, without a size to refuse it by
        yield b'{"cause": "'
        yield from (chunk for _ in range(chunks))
        yield b'"}'

    try:
        started = time.monotonic()
        before = api.peak_mib()
        huge = api.post(body())
        took = time.monotonic() - started
        peak = api.peak_mib()
        accepted = api.post(json.dumps({"cause": "Deploy stg_orders"}).encode())
    finally:
        stopped = api.stop()
    counts = scenario.count(
        group=GROUP_LIMITS,
        scenario=f"local API: a chunked 300 MiB body (413 after {took:.1f} s, server peak"
        f" {peak:.0f} MiB), then a good trigger",
        path="datachonk-hook serve",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert huge.status_code == 413, huge.text[:300]
    assert huge.json()["error"]["message"] == "request bodies are limited to 64 KiB"
    assert peak - before < 32, (before, peak)  # the body was never held whole
    assert accepted.status_code == 200, accepted.text
    assert stopped == 0
    assert_clean(counts)


# ----------------------------------------------------------------------------- the waiter


@pytest.mark.slow
def test_the_waiter_ends_by_itself_against_a_dripping_dbt_cloud(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """The trigger is accepted, then every answer drips a byte a second: the waiter gives
    up within its HTTP timeout and retry budget, the trigger pending; `retry` adopts."""
    quick = {**env, "DATACHONK_HTTP_TIMEOUT": "2", "DATACHONK_RETRY_BUDGET": "4"}
    clone = pre_commit_clone(tmp_path, remote, quick)
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("drip", method="POST", path=RUN_POST)
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        returned = time.monotonic()
        wait_for(lambda: posts(cloud) == 1, 30, "the trigger POST")
        cloud.fail("drip", method="GET", path=r"/runs/$", times=FOREVER)
        wait_for(lambda: idle(clone), 30, "the waiter to give up")
        lived = time.monotonic() - returned
    pending = the_trigger(clone)
    cloud.clear_faults()
    retried = scenario.cli(clone, "retry", env=quick)
    counts = scenario.count(
        group=GROUP_SERVERS,
        scenario=f"answers drip 1 byte/s: the waiter gave up {lived:.1f} s after the push,"
        " retry adopted the run",
        path="git push (pre-commit hook, waiter), retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    log = clone.waiter_log()
    assert pushed.returncode == 0
    assert lived < 2 + 4 + 3, (lived, log)
    assert (pending.state, pending.run_id) == (TriggerState.PENDING, None), log
    assert "no complete answer within 2 s" in log and "stays pending" in log, log
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert posts(cloud) == 1
    assert_clean(counts)
