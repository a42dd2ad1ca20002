"""Teams: environments per branch and superseding, through real pushes and the simulator."""

from __future__ import annotations

from pathlib import Path

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import Clone, eventually, settled
from tests.helpers import GENERATED_SQL, config_yaml

TEAM = """\
    cancel_superseded: true
    jobs:
      - branch: main
        job_id: 44444
      - branch: "wip/*"
        job_id: null
      - branch: "feature/*"
        job_id: 11111
        schema_override: "dbt_{branch}"
        select_changed: true
"""


def configure(clone: Clone, cloud: Sandbox) -> None:
    clone.commit({"datachonk.yaml": config_yaml(cloud.url, extra=TEAM)}, "Team settings")
    clone.push("origin", "main")


def test_feature_branch_runs_the_validation_job_in_its_own_schema(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    configure(clone, cloud)
    clone.run("git", "checkout", "--quiet", "-b", "feature/Add-Orders")
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.push("origin", "feature/Add-Orders")
    eventually(lambda: len(cloud.runs) == 1)
    [run] = cloud.runs
    assert (run.job_id, run.git_sha, run.git_branch) == (11111, sha, "feature/Add-Orders")
    assert run.schema_override == "dbt_feature_add_orders"
    assert run.steps_override == ("dbt build --select stg_orders+",)


def test_null_job_never_triggers(with_pre_commit: Clone, cloud: Sandbox) -> None:
    clone = with_pre_commit
    configure(clone, cloud)
    clone.run("git", "checkout", "--quiet", "-b", "wip/try")
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    done = clone.run("git", "push", "origin", "wip/try")
    assert "will run" not in done.stdout + done.stderr
    dry = clone.run(
        "datachonk-hook", "pre-push", "--dry-run", "origin", str(clone.remote), check=True
    )
    assert dry.returncode == 0
    assert cloud.runs == []


def test_newer_push_cancels_only_our_older_in_flight_run(
    tmp_path: Path, with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    configure(clone, cloud)
    # someone else's run of the same job and branch: never ours to cancel
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.settings.credentials import Token
    from tests.helpers import TOKEN

    with DbtCloudClient(cloud.url, 12345, Token(TOKEN, "test")) as client:
        foreign = client.trigger_run(44444, TriggerRequest("by someone", git_branch="main"))

    first = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 2 and settled(clone))
    second = clone.commit({"models/staging/stg_items.sql": GENERATED_SQL}, "Add items")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 3 and settled(clone))

    def states() -> dict[str, int]:
        return {r.git_sha or "foreign": r.status for r in cloud.runs}

    def first_finished() -> bool:
        with clone.ledger() as ledger:
            record = ledger.find(12345, 44444, first)
        return record is not None and record.state is TriggerState.FINISHED

    # the waiter cancels, records the status, then logs: wait for all three, in any order
    eventually(lambda: states()[first] == 30)
    eventually(lambda: first_finished() and "superseded by" in clone.waiter_log())
    assert states()[second] in (1, 2, 3)  # the newest keeps running
    assert cloud.run_status(foreign.id) != 30  # not ours: left alone
    with clone.ledger() as ledger:
        by_sha = {t.sha: t for t in ledger.history()}
    assert by_sha[first].run_status == 30


def test_finished_runs_are_not_cancelled(with_pre_commit: Clone, cloud: Sandbox) -> None:
    clone = with_pre_commit
    text = config_yaml(cloud.url, extra="    cancel_superseded: true\n")
    clone.commit({"datachonk.yaml": text}, "Settings")
    clone.push("origin", "main")
    first = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add orders")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1)
    eventually(lambda: cloud.run_status(cloud.runs[0].id) == 10)
    clone.commit({"models/staging/stg_items.sql": GENERATED_SQL}, "Add items")
    clone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 2 and settled(clone))
    assert {r.git_sha: cloud.run_status(r.id) for r in cloud.runs}[first] == 10
    assert "superseded" not in clone.waiter_log()
