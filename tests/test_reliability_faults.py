"""Fault injection: every failure mode of dbt Cloud, through a real push and through `run`.

Each fault is tried twice: through the real pre-push hook on a real `git push` (pre-commit,
the detached waiter), and through `datachonk-hook run --wait` in the foreground. Either way
the push must go through at once, the trigger must reach dbt Cloud exactly once (after
`datachonk-hook retry` when the fault outlasts the first attempt), the exit codes must be the
documented ones and the ledger must say what really happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from datachonk_hooks.delivery.ledger import TriggerRecord, TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import Clone, make_clone, pre_commit_clone, settled
from tests.helpers import GENERATED_SQL, TOKEN, config_yaml
from tests.reliability import (
    JOB,
    Scenario,
    assert_clean,
    no_waiters_left,
    wait_for,
    waiter_pids,
)

RUN_POST = r"/jobs/\d+/run/$"
RUN_GET = r"/runs/\d+/$"
FOREVER = 10_000  # a fault that lasts until the scenario recovers from it


@dataclass(frozen=True)
class Fault:
    """One way dbt Cloud misbehaves, how it ends, and what the ledger says meanwhile."""

    name: str
    arm: Callable[[Sandbox], object]
    #: the first delivery gives up; `retry` after `recover` delivers
    outlasts: bool = False
    recover: Callable[[Sandbox], object] = Sandbox.clear_faults
    #: part of the pending trigger's reason while the fault lasts
    reason: str = ""
    #: the fault hits reading the run, so the pushed config asks the waiter to watch it
    watch: bool = False
    env: dict[str, str] = field(default_factory=dict)
    #: seconds a request may stay in flight at the server after the client gave up on it
    linger: float = 0.0

    def __str__(self) -> str:
        return self.name


def _revoke(cloud: Sandbox) -> None:
    cloud.set_tokens({})


def _restore(cloud: Sandbox) -> None:
    cloud.set_tokens({TOKEN: "account_admin"})


def _truncate_answers(cloud: Sandbox) -> None:
    """The trigger takes effect but its answer is cut in half; so is one read of the run."""
    cloud.fail("malformed_json", method="POST", path=RUN_POST)
    cloud.fail("malformed_json", method="GET", path=RUN_GET)


FAULTS = [
    Fault(
        "500 twice, then recovers", lambda c: c.fail("500", method="POST", path=RUN_POST, times=2)
    ),
    Fault(
        "502 HTML page twice, then recovers",
        lambda c: c.fail("502_html", method="POST", path=RUN_POST, times=2),
    ),
    Fault(
        "503 twice, then recovers", lambda c: c.fail("503", method="POST", path=RUN_POST, times=2)
    ),
    Fault(
        "503 until after the waiter gives up",
        lambda c: c.fail("503", method="POST", path=RUN_POST, times=FOREVER),
        outlasts=True,
        reason="server error (HTTP 503",
    ),
    Fault(
        "429 with Retry-After: 1",
        lambda c: c.fail("429", method="POST", path=RUN_POST, retry_after=1),
    ),
    Fault(
        "429 without Retry-After, twice",
        lambda c: c.fail("429", method="POST", path=RUN_POST, times=2),
    ),
    Fault(
        "429 with Retry-After: 300 (beyond the retry budget)",
        lambda c: c.fail("429", method="POST", path=RUN_POST, times=FOREVER, retry_after=300),
        outlasts=True,
        reason="rate limiting this account (HTTP 429",
    ),
    Fault(
        "trigger answered after the read timeout",
        lambda c: c.fail("slow", method="POST", path=RUN_POST, delay=2.5),
        env={"DATACHONK_HTTP_TIMEOUT": "1", "DATACHONK_RETRY_BUDGET": "15"},
        linger=3.0,
    ),
    Fault(
        "run created, then the connection dropped",
        lambda c: c.fail("drop_after_create", method="POST", path=RUN_POST),
    ),
    Fault(
        "connection reset before the trigger was read",
        lambda c: c.fail("reset", method="POST", path=RUN_POST),
    ),
    Fault(
        "404 for the run just triggered",
        lambda c: c.fail("404", method="GET", path=RUN_GET, times=3),
        watch=True,
    ),
    Fault("malformed JSON answers", _truncate_answers, watch=True),
    Fault(
        "401 after the token is revoked",
        _revoke,
        outlasts=True,
        recover=_restore,
        reason="rejected the API token (HTTP 401",
    ),
    Fault(
        "refused connections (dbt Cloud down)",
        Sandbox.stop,
        outlasts=True,
        recover=Sandbox.start,
        reason="could not reach dbt Cloud",
    ),
]
WATCHED = "    wait: true\n    timeout: 60\n"


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """Give up within seconds, not the default 90, so outages outlast the waiter quickly."""
    return {**env, "DATACHONK_RETRY_BUDGET": "3"}


def the_trigger(clone: Clone) -> TriggerRecord:
    with clone.ledger() as ledger:
        [record] = ledger.history()
    return record


def commit_model(clone: Clone, cloud: Sandbox, fault: Fault) -> str:
    files = {"models/staging/stg_orders.sql": GENERATED_SQL}
    if fault.watch:
        files["datachonk.yaml"] = config_yaml(cloud.url, extra=WATCHED)
    return clone.commit(files, "Add stg_orders")


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_fault_through_a_real_push(
    fault: Fault,
    tmp_path: Path,
    remote: Path,
    env: dict[str, str],
    cloud: Sandbox,
    scenario: Scenario,
) -> None:
    clone = pre_commit_clone(tmp_path, remote, {**env, **fault.env})
    with no_waiters_left(clone.path):
        sha = commit_model(clone, cloud, fault)
        fault.arm(cloud)
        pushed = scenario.push(clone, "origin", "main")
        runs_when_the_push_returned = len(cloud.runs)
        wait_for(lambda: not waiter_pids(clone.path) and settled(clone), 60, "the waiter")
        time.sleep(fault.linger)  # a late answer must not start a second run either
        first = the_trigger(clone)
        log = clone.waiter_log()
        during = after = None
        if fault.outlasts:
            during = scenario.cli(clone, "retry")
            fault.recover(cloud)
            after = scenario.cli(clone, "retry")
        final = the_trigger(clone)
    counts = scenario.count(
        group="fault injection",
        scenario=fault.name,
        path="git push (pre-commit hook, waiter)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )

    assert pushed.returncode == 0, pushed.stderr
    assert "will run for" in pushed.stdout + pushed.stderr
    if fault.outlasts or fault.linger:
        assert runs_when_the_push_returned == 0  # the push did not wait for dbt Cloud
    if fault.outlasts:
        assert (first.state, first.run_id) == (TriggerState.PENDING, None), log
        assert first.reason is not None and fault.reason in first.reason, first.reason
        assert "stays pending" in log
        assert during is not None and after is not None
        assert during.returncode == 5, during.stdout + during.stderr
        assert "1 trigger(s) still pending" in during.stdout
        assert after.returncode == 0, after.stdout + after.stderr
        assert "triggered run" in after.stdout
    else:
        assert first.state in (TriggerState.TRIGGERED, TriggerState.FINISHED), log
        assert "triggered run" in log
    if fault.watch:
        assert (final.state, final.run_status) == (TriggerState.FINISHED, 10), log
        assert "succeeded" in log
    [run] = cloud.runs
    assert (final.run_id, run.git_sha, run.git_branch) == (run.id, sha, "main")
    assert final.reason is None
    assert_clean(counts)


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_fault_through_run_wait(
    fault: Fault,
    tmp_path: Path,
    remote: Path,
    env: dict[str, str],
    cloud: Sandbox,
    scenario: Scenario,
) -> None:
    clone = make_clone(tmp_path, "work", remote, {**env, **fault.env})
    sha = commit_model(clone, cloud, fault)
    clone.push("--quiet", "origin", "main")  # no hook installed: `run` triggers it
    fault.arm(cloud)
    first = scenario.cli(clone, "run", "--wait", "--timeout", "60")
    time.sleep(fault.linger)
    pending = the_trigger(clone)
    retried = None
    if fault.outlasts:
        fault.recover(cloud)
        retried = scenario.cli(clone, "retry")
    again = scenario.cli(clone, "run")
    final = the_trigger(clone)
    counts = scenario.count(
        group="fault injection",
        scenario=fault.name,
        path="datachonk-hook run --wait",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )

    output = first.stdout + first.stderr
    if fault.outlasts:
        assert first.returncode == 5, output
        assert "the trigger stays pending" in first.stdout
        assert first.stderr.startswith("Error: ") and fault.reason in first.stderr
        assert "Traceback" not in output
        assert pending.state is TriggerState.PENDING and pending.reason
        assert fault.reason in pending.reason
        assert retried is not None
        assert retried.returncode == 0, retried.stdout + retried.stderr
    else:
        assert first.returncode == 0, output
        assert "succeeded" in first.stdout
        assert (pending.state, pending.run_status) == (TriggerState.FINISHED, 10)
    assert again.returncode == 0 and "already triggered run" in again.stdout
    [run] = cloud.runs
    assert (final.run_id, run.git_sha) == (run.id, sha)
    assert_clean(counts)
