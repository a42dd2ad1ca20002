"""The reliability suite's measuring kit: run commands and pushes, then count what happened.

Every scenario ends by counting, from the simulator's runs and requests, the ledger and every
output it captured, how many triggers were expected, delivered, duplicated and lost, how many
pushes were blocked and how many times the token leaked. The counts are appended as JSON lines
to the file named by RELIABILITY_RESULTS_FILE (when set), from which
`python -m tests.reliability_report` writes RELIABILITY.md. Counting comes before asserting,
so a scenario that fails still reports its real numbers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from datachonk_hooks.delivery.ledger import Ledger, TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import BIN, Clone
from tests.helpers import TOKEN

RESULTS_ENV = "RELIABILITY_RESULTS_FILE"  # not DATACHONK_*: conftest clears those
#: a `git push` through the hook that takes longer than this counts as blocked. A push takes
#: about a second here (pre-commit's own start-up included); the faults last far longer.
PUSH_BUDGET = 8.0
HOOK = str(BIN / "datachonk-hook")
ACCOUNT = 12345
JOB = 11111
_TOKEN_BYTES = TOKEN.encode()
T = TypeVar("T")
E = TypeVar("E", bound=Exception)
_HOOK_DURATION = re.compile(r"- duration: ([0-9.]+)s")
#: pre-commit's own failure, before any hook runs, when another pre-commit in the same work
#: tree holds the index lock for its `git write-tree` (git takes that lock on every call)
_PRE_COMMIT_INDEX_RACE = re.compile(r"'write-tree'\)[\s\S]*index\.lock': File exists")


@dataclass
class Counts:
    """One row of RELIABILITY.md."""

    nodeid: str
    group: str
    scenario: str
    path: str
    expected: int
    delivered: int
    duplicated: int
    lost: int
    ledger_untrue: int
    pushes: int
    blocked: int
    leaks: int
    max_push_s: float
    max_hook_s: float
    exit_codes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        bad = self.duplicated + self.lost + self.blocked + self.leaks + self.ledger_untrue
        return bad == 0 and self.delivered == self.expected


class Scenario:
    """Runs a scenario's commands, keeps everything they print, and counts at the end."""

    def __init__(self, nodeid: str, tmp_path: Path) -> None:
        self.nodeid = nodeid
        self.tmp_path = tmp_path
        self.tmpdir = tmp_path / "tmp"  # TMPDIR of every command: crash logs land here
        self.tmpdir.mkdir(exist_ok=True)
        self.outputs: list[bytes] = []
        self.push_times: list[float] = []
        self.hook_times: list[float] = []
        self.blocked = 0
        self.exit_codes: list[str] = []
        self.scan_paths: list[Path] = []
        self.counts: Counts | None = None

    def env(self, env: Mapping[str, str], **extra: str) -> dict[str, str]:
        return {**env, "TMPDIR": str(self.tmpdir), **extra}

    def run(
        self,
        cwd: Path,
        *args: str,
        env: Mapping[str, str],
        stdin: str | None = None,
        timeout: float = 120,
        label: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to its end (bounded), keeping its output for the leak scan."""
        done = subprocess.run(
            list(args),
            cwd=cwd,
            env=self.env(env),
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        if label is not None:
            self.exit_codes.append(f"{label} {done.returncode}")
        return subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    def cli(
        self, clone: Clone, *args: str, env: Mapping[str, str] | None = None, label: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`datachonk-hook ARGS` in the clone; its exit code goes into the report."""
        return self.run(
            clone.path, HOOK, *args, env=env or clone.env, label=_label(args) if label else None
        )

    def push(
        self, clone: Clone, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`git push ARGS`, timed: a failed push or one over PUSH_BUDGET counts as blocked."""
        started = time.monotonic()
        done = self.run(clone.path, "git", "push", *args, env=env or clone.env, timeout=60)
        self.note_push(done, time.monotonic() - started)
        return done

    def start(
        self, cwd: Path, *args: str, env: Mapping[str, str]
    ) -> tuple[subprocess.Popen[bytes], float]:
        """Start a command without waiting (to race it against another); see `finish`."""
        process = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return process, time.monotonic()

    def finish(
        self,
        started: tuple[subprocess.Popen[bytes], float],
        timeout: float = 60,
        push: bool = False,
        label: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Wait (bounded) for a started command; a push is timed like `push`."""
        process, began = started
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        seconds = time.monotonic() - began
        self.outputs += [out, err]
        done = subprocess.CompletedProcess(
            process.args,
            process.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
        )
        if push:
            self.note_push(done, seconds)
        elif label is not None:
            self.exit_codes.append(f"{label} {done.returncode}")
        return done

    def finish_racing_push(
        self,
        started: tuple[subprocess.Popen[bytes], float],
        cwd: Path,
        *args: str,
        env: Mapping[str, str],
    ) -> subprocess.CompletedProcess[str]:
        """A push raced against another one in the same work tree.

        pre-commit itself, before it runs any hook, calls `git write-tree`, which takes the
        work tree's index lock: of two pre-commit runs at once in one work tree, one can fail
        there (pre-commit/pre-commit#3395). That push never reached our hook; as its user
        would, it is run again, and the second attempt is the one counted.
        """
        began = started[1]
        done = self.finish(started)
        if done.returncode != 0 and _PRE_COMMIT_INDEX_RACE.search(done.stdout + done.stderr):
            return self.finish(self.start(cwd, *args, env=env), push=True)
        self.note_push(done, time.monotonic() - began)
        return done

    def note_push(self, done: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.push_times.append(seconds)
        self.hook_times += [float(m) for m in _HOOK_DURATION.findall(done.stdout + done.stderr)]
        if done.returncode != 0 or seconds > PUSH_BUDGET:
            self.blocked += 1
        self.exit_codes.append(f"git push {done.returncode}")

    def keep(self, data: bytes | str) -> None:
        """Output captured some other way (a process started with Popen)."""
        self.outputs.append(data.encode() if isinstance(data, str) else data)

    def leaks(self, cloud: Sandbox | None, clones: Iterable[Clone]) -> int:
        """Occurrences of the token in outputs, logs, ledgers, config files and request data."""
        blobs = list(self.outputs)
        paths = [*self.scan_paths, self.tmpdir]
        for clone in clones:
            paths += [clone.path / ".git" / "datachonk", clone.path / "datachonk.yaml"]
            paths += [clone.path / ".git" / "config"]
        home = Path(os.environ.get("HOME", "/nonexistent"))
        credentials = home / ".config" / "datachonk-hooks" / "credentials.json"
        paths.append(home)
        for path in paths:
            blobs += [f.read_bytes() for f in _files(path) if f != credentials]
        if cloud is not None:
            for r in cloud.requests:  # the token belongs in the header, nowhere else
                blobs.append(json.dumps([r.path, r.query, r.body], default=str).encode())
        return sum(blob.count(_TOKEN_BYTES) for blob in blobs)

    def count(
        self,
        *,
        group: str,
        scenario: str,
        path: str,
        cloud: Sandbox | None,
        expected: Iterable[tuple[int, str | None]],
        clones: Iterable[Clone] = (),
        not_in_ledger: Iterable[tuple[int, str | None]] = (),
    ) -> Counts:
        """Count what the scenario did and record it; call before asserting on the counts.

        `expected` are the (job, sha) runs the scenario asked for, each exactly once; the
        ledger must record each with its run, except those `not_in_ledger` (a rerun).
        """
        clones = list(clones)
        wanted = list(expected)
        unledgered = set(not_in_ledger)
        runs = Counter((r.job_id, r.git_sha) for r in (cloud.runs if cloud else []))
        delivered = sum(1 for key in wanted if runs[key] >= 1)
        # a second run for an expected trigger, or any run nobody asked for
        duplicated = sum(n - 1 if key in wanted else n for key, n in runs.items())
        untrue = sum(
            1 for key in wanted if key not in unledgered and not _ledger_agrees(clones, cloud, key)
        )
        counts = Counts(
            nodeid=self.nodeid,
            group=group,
            scenario=scenario,
            path=path,
            expected=len(wanted),
            delivered=delivered,
            duplicated=duplicated,
            lost=len(wanted) - delivered,
            ledger_untrue=untrue,
            pushes=len(self.push_times),
            blocked=self.blocked,
            leaks=self.leaks(cloud, clones),
            max_push_s=round(max(self.push_times, default=0.0), 2),
            max_hook_s=round(max(self.hook_times, default=0.0), 2),
            exit_codes=list(self.exit_codes),
        )
        self.counts = counts
        out = os.environ.get(RESULTS_ENV)
        if out:
            with open(out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(counts)) + "\n")
        return counts


def _label(args: tuple[str, ...]) -> str:
    """`run --wait` for `run --wait --timeout 60`: the command and its telling flags."""
    command = next((a for a in args if not a.startswith("-")), "")
    flags = [a for a in args if a in ("--wait", "--force", "--dry-run")]
    return " ".join([command, *flags])


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    elif path.is_dir():
        for found in sorted(path.rglob("*")):
            if found.is_file() and "objects" not in found.parts:
                yield found


def _ledger_agrees(clones: list[Clone], cloud: Sandbox | None, key: tuple[int, str | None]) -> bool:
    """Some clone's ledger records this trigger as sent, with the id of its one run."""
    runs = [r.id for r in (cloud.runs if cloud else []) if (r.job_id, r.git_sha) == key]
    for clone in clones:
        ledger_file = clone.path / ".git" / "datachonk" / "ledger.sqlite3"
        if not ledger_file.exists():
            continue
        with suppress(Exception), Ledger(ledger_file) as ledger:
            record = ledger.find(ACCOUNT, key[0], key[1] or "")
            if record is None:
                continue
            sent = record.state in (TriggerState.TRIGGERED, TriggerState.FINISHED)
            return sent and record.run_id in runs and len(runs) == 1 and record.reason is None
    return False


def assert_clean(counts: Counts) -> None:
    """The goal of every scenario: all delivered, none twice, nothing blocked or leaked."""
    assert counts.expected == counts.delivered, counts
    assert (counts.duplicated, counts.lost, counts.blocked, counts.leaks) == (0, 0, 0, 0), counts
    assert counts.ledger_untrue == 0, counts


# ----------------------------------------------------------------------------- processes


def processes_under(folder: Path, needle: str = "datachonk_hooks") -> list[int]:
    """Pids of our processes (e.g. landing waiters) whose working folder is under `folder`."""
    found = []
    root = str(folder.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd == root or cwd.startswith(root + "/")) and needle in argv:
            found.append(int(proc.name))
    return found


def waiter_pids(folder: Path) -> list[int]:
    """Landing waiters (`python -m datachonk_hooks land N`) running in `folder`."""
    return [pid for pid in processes_under(folder) if " land " in _argv(pid) + " "]


def _argv(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def attempt(call: Callable[[], T], documented: type[E]) -> T | E:
    """The call's result, or the documented error it raised; any other error propagates."""
    try:
        return call()
    except documented as exc:
        return exc


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def kill(pid: int) -> None:
    """SIGKILL one process we started (directly or through the hook), by its pid."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextmanager
def no_waiters_left(folder: Path, timeout: float = 30.0) -> Iterator[None]:
    """Every waiter started under `folder` must have ended when the block ends; stragglers
    are killed (by pid) so no test leaves a process behind, and then reported."""
    try:
        yield
    finally:
        deadline = time.monotonic() + timeout
        while waiter_pids(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = waiter_pids(folder)
        for pid in left:
            kill(pid)
    assert not left, f"landing waiters still running after the test: {left}"


@pytest.fixture
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    """The scenario a reliability test counts its figures in."""
    return Scenario(request.node.nodeid, tmp_path)
