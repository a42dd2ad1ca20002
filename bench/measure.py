"""Timing, peak memory and imports of processes, each side of a pair run alternately."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.repos import BenchError


@dataclass(frozen=True)
class Pair:
    """Timings of a subject and of its floor, taken in alternating rounds."""

    subject: tuple[float, ...]
    floor: tuple[float, ...]

    @property
    def subject_median(self) -> float:
        return statistics.median(self.subject)

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor)

    @property
    def ratio(self) -> float:
        return self.subject_median / self.floor_median


def run(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(cmd), cwd=cwd, env=dict(env), input=stdin, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited with {done.returncode} in {cwd}:\n{done.stdout}{done.stderr}"
        )
    return done


def timed(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin: str | None = None
) -> float:
    """Wall-clock seconds of one successful run of `cmd` (its output is captured)."""
    start = time.perf_counter()
    run(cmd, cwd=cwd, env=env, stdin=stdin)
    return time.perf_counter() - start


def alternate(
    rounds: int, subject: Callable[[], float], floor: Callable[[], float], *, warmup: int = 1
) -> Pair:
    """`rounds` timings of each side, the order swapped every round; warm-up rounds dropped."""
    subject_times: list[float] = []
    floor_times: list[float] = []
    for number in range(warmup + rounds):
        sides = [(subject, subject_times), (floor, floor_times)]
        if number % 2:
            sides.reverse()
        for side, times in sides:
            elapsed = side()
            if number >= warmup:
                times.append(elapsed)
    return Pair(tuple(subject_times), tuple(floor_times))


# ----------------------------------------------------------------------------- memory

_TIME = Path("/usr/bin/time")
_MAXRSS_WRAPPER = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:])
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(rss if sys.platform != "darwin" else rss // 1024, file=sys.stderr)
raise SystemExit(done.returncode)
"""


def peak_memory_kb(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin: str | None = None
) -> tuple[int, str]:
    """(peak resident set size in KiB, how it was measured) of one run of `cmd`."""
    if _TIME.exists() and platform.system() == "Linux":
        done = run([str(_TIME), "-v", *cmd], cwd=cwd, env=env, stdin=stdin)
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        if found:
            return int(found.group(1)), "/usr/bin/time -v"
    done = run([sys.executable, "-c", _MAXRSS_WRAPPER, *cmd], cwd=cwd, env=env, stdin=stdin)
    return int(done.stderr.strip().splitlines()[-1]), "getrusage(RUSAGE_CHILDREN).ru_maxrss"


# ----------------------------------------------------------------------------- imports

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass(frozen=True)
class ImportReport:
    """What `python -X importtime` said about one run."""

    modules: tuple[str, ...]
    #: the sum of every module's own import time, in seconds
    total: float
    #: (cumulative seconds, module) of the slowest top-level imports, slowest first
    slowest: tuple[tuple[float, str], ...]

    def imported(self, package: str) -> bool:
        return any(m == package or m.startswith(f"{package}.") for m in self.modules)


def parse_importtime(stderr: str) -> ImportReport:
    modules: list[str] = []
    total = 0
    top: list[tuple[float, str]] = []
    for line in stderr.splitlines():
        found = _IMPORT_LINE.match(line)
        if not found:
            continue
        own, cumulative, indent, name = found.groups()
        modules.append(name)
        total += int(own)
        if len(indent) <= 1:
            top.append((int(cumulative) / 1e6, name))
    top.sort(reverse=True)
    return ImportReport(tuple(modules), total / 1e6, tuple(top[:5]))


def import_report(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin: str | None = None
) -> ImportReport:
    """`python -X importtime ARGS...` with the benchmark's Python, parsed."""
    done = run([sys.executable, "-X", "importtime", *args], cwd=cwd, env=env, stdin=stdin)
    return parse_importtime(done.stderr)


# ----------------------------------------------------------------------------- the machine


def _first_line(cmd: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (done.stdout.strip().splitlines() or ["unknown"])[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        return _first_line(["sysctl", "-n", "machdep.cpu.brand_string"])
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    if platform.system() == "Darwin":
        raw = _first_line(["sysctl", "-n", "hw.memsize"])
        if raw.isdigit():
            return f"{int(raw) / 1024**3:.1f} GiB"
    return "unknown"


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """The facts that make timings comparable: hardware and tool versions."""
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count() or "unknown"),
        "memory": _memory(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "git": _first_line(["git", "--version"]).removeprefix("git version "),
        "pygit2": _version("pygit2"),
        "pre-commit": _version("pre-commit"),
        "datachonk-hooks": _version("datachonk-hooks"),
    }
