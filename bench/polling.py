"""Polling a long run: the monitor's adaptive polling against a fixed 5-second poll.

The simulator and the watcher share one fake clock that only moves when the watcher sleeps,
so a 30-minute run takes a second of real time, and the requests the simulator received are
counted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.records import Run
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.monitor.watcher import ChangeLines, watch_run
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import Token

TOKEN = "dbtc_bench_polling_token"
PROJECT_ID = 67890
JOB_ID = 77777
QUEUED_S = 5.0
STARTING_S = 5.0
FIXED_INTERVAL = 5.0


class FakeClock:
    """A monotonic clock that moves only when someone sleeps."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class _Discard:
    """A stream for the watcher's progress lines, which nobody reads here."""

    def write(self, text: str, /) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@dataclass(frozen=True)
class PollResult:
    """How one way of polling followed one run."""

    method: str
    #: simulated seconds from the trigger to the run's end
    run_seconds: float
    #: GET requests for the run
    requests: int
    #: simulated seconds between the run's end and the watcher noticing it
    late: float


@dataclass(frozen=True)
class PollComparison:
    running_s: float
    adaptive: PollResult
    fixed: PollResult

    @property
    def request_share(self) -> float:
        return self.adaptive.requests / self.fixed.requests

    @property
    def late_limit(self) -> float:
        """The budget: 10 % of the run's elapsed time or 30 s, whichever is smaller."""
        return min(0.1 * self.adaptive.run_seconds, 30.0)


def _run_gets(cloud: Sandbox, run_id: int) -> int:
    suffix = f"/runs/{run_id}"
    return sum(
        1 for r in cloud.requests if r.method == "GET" and r.path.rstrip("/").endswith(suffix)
    )


def _trigger(client: DbtCloudClient, clock: FakeClock, cause: str) -> tuple[Run, float]:
    run = client.trigger_run(JOB_ID, TriggerRequest(cause=cause))
    return run, clock()


class PollBench:
    """One simulator on a fake clock, and a client whose retries sleep on that clock."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.cloud = Sandbox(token=TOKEN)
        self.client: DbtCloudClient | None = None

    def __enter__(self) -> PollBench:
        self.cloud.start()
        self.cloud.set_clock(self.clock)
        self.client = DbtCloudClient(
            host=self.cloud.url,
            account_id=self.cloud.account_id,
            token=Token(TOKEN, "the benchmark"),
            sleep=self.clock.advance,
            clock=self.clock,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        self.cloud.stop()

    def compare(self, running_s: float) -> PollComparison:
        """Follow one run of `running_s` with the monitor, and another with a fixed poll."""
        assert self.client is not None
        client, clock, cloud = self.client, self.clock, self.cloud
        total = QUEUED_S + STARTING_S + running_s
        cloud.add_job(
            JOB_ID,
            project_id=PROJECT_ID,
            name=f"a {running_s:.0f} s run",
            queued_s=QUEUED_S,
            starting_s=STARTING_S,
            running_s=running_s,
        )
        run, started = _trigger(client, clock, "bench: adaptive polling")
        before = _run_gets(cloud, run.id)
        result = watch_run(
            client,
            run.id,
            timeout=10 * total,
            reporter=ChangeLines(_Discard()),
            clock=clock,
            sleep=clock.advance,
        )
        if result.exit_code is not ExitCode.OK:
            raise RuntimeError(f"the watched run did not succeed: {result.message}")
        adaptive = PollResult(
            "monitor.watch_run", total, _run_gets(cloud, run.id) - before, clock() - started - total
        )
        run, started = _trigger(client, clock, "bench: fixed polling")
        before = _run_gets(cloud, run.id)
        while not client.get_run(run.id).is_complete:
            clock.advance(FIXED_INTERVAL)
        fixed = PollResult(
            f"fixed {FIXED_INTERVAL:.0f} s poll",
            total,
            _run_gets(cloud, run.id) - before,
            clock() - started - total,
        )
        return PollComparison(running_s, adaptive, fixed)
