"""trigger.py: pushes and refs become trigger plans; plans are delivered through the ledger."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import DbtCloudError
from datachonk_hooks.cloud.transport import RetryPolicy, Timeouts
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.clients import ClientPool, new_client
from datachonk_hooks.delivery.ledger import Ledger, TriggerState
from datachonk_hooks.delivery.planning import (
    TriggerPlan,
    UnpushedCommitError,
    literal_cause,
    plan_manual_trigger,
    plan_push_update,
)
from datachonk_hooks.delivery.trigger import deliver, trigger_through_ledger
from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode
from datachonk_hooks.push.gitrepo import ZERO_SHA
from datachonk_hooks.push.updates import PushUpdate
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.config import load_settings
from datachonk_hooks.settings.credentials import resolve_token
from tests.helpers import (
    GENERATED_SQL,
    HAND_SQL,
    TOKEN,
    commit_files,
    config_yaml,
    git,
    remote_and_clone,
)

ENV = {"DBT_CLOUD_API_TOKEN": TOKEN}
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, budget=2.0)


class Work:
    """A clone whose main is pushed to a bare remote (origin), with a configured project."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def repo(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.path))

    def commit(self, files: dict[str, str], message: str) -> str:
        return commit_files(self.path, files, message)

    def sha(self, ref: str) -> str:
        return git(self.path, "rev-parse", ref)

    def update(self, local: str = "main", remote_ref: str = "refs/heads/main") -> PushUpdate:
        """The update `git push origin <local>:<remote_ref>` would describe."""
        tracking = f"refs/remotes/origin/{remote_ref.removeprefix('refs/heads/')}"
        known = git(self.path, "for-each-ref", "--format=%(objectname)", tracking)
        return PushUpdate(f"refs/heads/{local}", self.sha(local), remote_ref, known or ZERO_SHA)

    def plan(self, update: PushUpdate | None = None, env: Mapping[str, str] = ENV, **kw: object):
        return plan_push_update(self.repo, update or self.update(), "origin", env, **kw)  # type: ignore[arg-type]


@pytest.fixture
def work(tmp_path: Path, sandbox: Sandbox) -> Work:
    _, path = remote_and_clone(tmp_path)
    commit_files(
        path,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "datachonk.yaml": config_yaml(sandbox.url),
            "models/staging/stg_customers.sql": HAND_SQL,
        },
        "Start the dbt project",
    )
    git(path, "push", "--quiet", "origin", "main")
    return Work(path)


def fast_pool(env: Mapping[str, str] = ENV, read_timeout: float | None = None) -> ClientPool:
    def factory(host: str, account_id: int, env: Mapping[str, str]) -> DbtCloudClient:
        timeouts = Timeouts(connect=1.0, read=read_timeout) if read_timeout else Timeouts()
        return DbtCloudClient(host, account_id, resolve_token(env), timeouts, retry=FAST)

    return ClientPool(env, factory=factory)


# ----------------------------------------------------------------------------- plan a push


def test_generated_model_triggers_the_job_for_the_pushed_commit(
    work: Work, sandbox: Sandbox
) -> None:
    work.commit({"models/staging/stg_payments.sql": HAND_SQL}, "Hand-written first")
    sha = work.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders\n\nbody")
    plan = work.plan()
    assert plan.skipped is None and not plan.needs_connect
    assert [(m.path, m.names, m.change, m.reason) for m in plan.models] == [
        ("models/staging/stg_orders.sql", ("stg_orders",), "added", "marker")
    ]
    assert plan.trigger == TriggerPlan(
        sandbox.url,
        12345,
        11111,
        TriggerRequest(cause="Add stg_orders (+1 more commit)", git_sha=sha, git_branch="main"),
    )
    assert plan.trigger.url == f"{sandbox.url}/api/v2/accounts/12345/jobs/11111/run/"
    data = plan.to_json()
    assert data["trigger"]["body"] == {
        "cause": "Add stg_orders (+1 more commit)",
        "git_sha": sha,
        "git_branch": "main",
    }
    assert data["sha"] == sha and data["skipped"] is None
    json.dumps(data)


def test_no_generated_model_is_skipped(work: Work) -> None:
    work.commit({"models/staging/stg_payments.sql": HAND_SQL, "README.md": "x\n"}, "By hand")
    plan = work.plan()
    assert (plan.trigger, plan.models, plan.needs_connect) == (None, (), False)
    assert plan.skipped == "no DataChonk-generated models in the push"


@pytest.mark.parametrize(
    ("update", "skipped"),
    [
        (PushUpdate("(delete)", ZERO_SHA, "refs/heads/old", "1" * 40), "a deleted ref"),
        (
            PushUpdate("refs/tags/v1", "TIP", "refs/tags/v1", ZERO_SHA),
            "refs/tags/v1 is not a branch",
        ),
        (PushUpdate("HEAD", "TIP", "refs/notes/x", ZERO_SHA), "refs/notes/x is not a branch"),
        (PushUpdate("x", "9" * 40, "refs/heads/x", ZERO_SHA), "9999999 is not a commit"),
    ],
)
def test_refs_that_never_trigger(work: Work, update: PushUpdate, skipped: str) -> None:
    tip = work.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    if update.local_sha == "TIP":
        update = PushUpdate(update.local_ref, tip, update.remote_ref, update.remote_sha)
    plan = work.plan(update)
    assert (plan.trigger, plan.skipped) == (None, skipped)


@pytest.mark.parametrize("how", ["committed later", "unstaged edit", "staged edit"])
def test_config_is_read_from_the_pushed_commit(work: Work, sandbox: Sandbox, how: str) -> None:
    pushed = work.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    other = config_yaml(sandbox.url, job_id=22222, extra="    cause: 'from the work tree'\n")
    if how == "committed later":
        work.commit({"datachonk.yaml": other}, "Switch jobs")
    else:
        (work.path / "datachonk.yaml").write_text(other)
        if how == "staged edit":
            git(work.path, "add", "datachonk.yaml")
    update = PushUpdate("refs/heads/main", pushed, "refs/heads/main", work.sha("origin/main"))
    plan = work.plan(update)
    assert plan.trigger is not None
    assert (plan.trigger.job_id, plan.trigger.request.cause) == (11111, "Add stg_orders")
    assert plan.settings is not None and plan.settings.source == f"datachonk.yaml@{pushed[:7]}"


def test_broken_work_tree_config_does_not_matter_when_the_commit_has_one(work: Work) -> None:
    work.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    (work.path / "datachonk.yaml").write_text("deploy: [unclosed\n")
    assert work.plan().trigger is not None


def test_config_in_the_dbt_project_folder(work: Work, sandbox: Sandbox) -> None:
    (work.path / "analytics").mkdir()
    for name in ("dbt_project.yml", "datachonk.yaml", "models"):
        git(work.path, "mv", name, f"analytics/{name}")
    work.commit({"analytics/models/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    plan = work.plan()
    assert plan.trigger is not None and plan.trigger.job_id == 11111
    assert plan.settings is not None and plan.settings.source is not None
    assert plan.settings.source.startswith("analytics/datachonk.yaml@")


def untrack_config(work: Work) -> None:
    """The pushed commits carry no datachonk.yaml; the file stays on disk, untracked."""
    git(work.path, "rm", "--quiet", "--cached", "datachonk.yaml")
    work.commit({".gitignore": "datachonk.yaml\n"}, "Keep datachonk.yaml local")


def test_work_tree_config_is_used_when_the_pushed_tree_has_none(
    work: Work, sandbox: Sandbox
) -> None:
    untrack_config(work)
    (work.path / "datachonk.yaml").write_text(config_yaml(sandbox.url, job_id=22222))
    work.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    plan = work.plan()
    assert plan.trigger is not None and plan.trigger.job_id == 22222
    assert plan.settings is not None and plan.settings.source == str(
        work.path.resolve() / "datachonk.yaml"
    )


def test_work_tree_detect_rules_count_when_the_pushed_tree_has_no_config(
    work: Work, sandbox: Sandbox
) -> None:
    untrack_config(work)
    rules = "    detect:\n      marker: '(?i)made by robots'\n"
    (work.path / "datachonk.yaml").write_text(config_yaml(sandbox.url, extra=rules))
    work.commit({"models/staging/stg_orders.sql": "-- Made by robots\nselect 1\n"}, "Robots")
    plan = work.plan()
    assert [m.path for m in plan.models] == ["models/staging/stg_orders.sql"]
    assert plan.trigger is not None


def test_detect_rules_from_the_pushed_commit(work: Work, sandbox: Sandbox) -> None:
    rules = "    detect:\n      marker: '(?i)made by robots'\n      trailer: 'Robot: yes'\n"
    work.commit({"datachonk.yaml": config_yaml(sandbox.url, extra=rules)}, "Robot rules")
    work.commit({"models/a.sql": "-- made by robots\nselect 1\n"}, "Marker")
    work.commit({"models/b.sql": "select 2\n"}, "Trailer\n\nRobot: yes")
    work.commit({"models/c.sql": GENERATED_SQL}, "The default marker no longer counts")
    plan = work.plan()
    assert [(m.path, m.reason) for m in plan.models] == [
        ("models/a.sql", "marker"),
        ("models/b.sql", "trailer"),
    ]


@pytest.mark.parametrize(
    ("auto", "force", "triggered"),
    [(True, False, True), (False, False, False), (False, True, True)],
)
def test_auto_trigger_and_force(
    work: Work, sandbox: Sandbox, auto: bool, force: bool, triggered: bool
) -> None:
    text = config_yaml(sandbox.url).replace("auto_trigger: true", f"auto_trigger: {auto}".lower())
    work.commit({"datachonk.yaml": text, "models/a.sql": GENERATED_SQL}, "Add a")
    plan = work.plan(force=force)
    assert (plan.trigger is not None) is triggered
    assert plan.skipped == (None if triggered else "auto_trigger is false")
    assert [m.path for m in plan.models] == ["models/a.sql"]


def test_force_triggers_without_generated_models(work: Work) -> None:
    sha = work.commit({"models/b.sql": HAND_SQL}, "By hand")
    plan = work.plan(force=True, cause="  Deploy\nnow  ")
    assert plan.models == ()
    assert plan.trigger is not None
    assert plan.trigger.request == TriggerRequest(
        cause="Deploy now", git_sha=sha, git_branch="main"
    )


JOBS = """\
    jobs:
      - branch: main
        job_id: 22222
      - branch: "feature/*"
        job_id: 44444
      - branch: "feature/special"
        job_id: 55555
"""


@pytest.mark.parametrize(
    ("remote_ref", "job_id"),
    [
        ("refs/heads/main", 22222),
        ("refs/heads/feature/x", 44444),
        ("refs/heads/feature/special", 44444),  # the first match wins
        ("refs/heads/hotfix", 11111),  # the job_id fallback
        ("refs/heads/Main", 11111),  # case-sensitive, like git
    ],
)
def test_jobs_route_by_the_pushed_branch(
    work: Work, sandbox: Sandbox, remote_ref: str, job_id: int
) -> None:
    work.commit({"datachonk.yaml": config_yaml(sandbox.url, extra=JOBS)}, "Routes")
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    plan = work.plan(work.update("main", remote_ref))
    assert plan.trigger is not None
    assert plan.trigger.job_id == job_id
    assert plan.trigger.request.git_branch == remote_ref.removeprefix("refs/heads/")


def test_no_job_for_the_branch(work: Work, sandbox: Sandbox) -> None:
    text = config_yaml(sandbox.url, extra=JOBS).replace("    job_id: 11111\n", "")
    work.commit({"datachonk.yaml": text, "models/a.sql": GENERATED_SQL}, "Routes only")
    plan = work.plan(work.update("main", "refs/heads/hotfix"))
    assert (plan.trigger, plan.skipped) == (None, "no job for branch hotfix")


@pytest.mark.parametrize(
    ("select_changed", "steps"),
    [
        (True, ("dbt build --select a+ b+ customers+ orders+",)),
        (False, None),
    ],
)
def test_select_changed(
    work: Work, sandbox: Sandbox, select_changed: bool, steps: tuple[str, ...] | None
) -> None:
    extra = f"    select_changed: {str(select_changed).lower()}\n"
    schema = "# Generated by DataChonk\nmodels:\n  - name: customers\n  - name: orders\n"
    work.commit(
        {
            "datachonk.yaml": config_yaml(sandbox.url, extra=extra),
            "models/a.sql": GENERATED_SQL,
            "models/b.py": "# generated with DataChonk\ndef model(dbt, session): ...\n",
            "models/schema.yml": schema,
            "models/hand.sql": HAND_SQL,
        },
        "Models",
    )
    plan = work.plan()
    assert plan.trigger is not None
    assert plan.trigger.request.steps_override == steps
    body = plan.trigger.request.body()
    assert body.get("steps_override") == (list(steps) if steps else None)


def test_select_changed_without_model_names_sends_no_override(work: Work, sandbox: Sandbox) -> None:
    extra = "    select_changed: true\n"
    work.commit({"datachonk.yaml": config_yaml(sandbox.url, extra=extra)}, "Select changed")
    work.commit({"models/x.sql": HAND_SQL}, "By hand")
    plan = work.plan(force=True)
    assert plan.trigger is not None and plan.trigger.request.steps_override is None


def test_not_configured_needs_connect(work: Work) -> None:
    git(work.path, "rm", "--quiet", "datachonk.yaml")
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a, no config")
    plan = work.plan()
    assert plan.trigger is None and plan.needs_connect
    assert plan.skipped == "no dbt Cloud connection is configured"
    assert [m.path for m in plan.models] == ["models/a.sql"]


def test_environment_alone_configures_the_connection(work: Work, sandbox: Sandbox) -> None:
    git(work.path, "rm", "--quiet", "datachonk.yaml")
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a, no config")
    env = {
        **ENV,
        "DBT_CLOUD_HOST": sandbox.url,
        "DBT_CLOUD_ACCOUNT_ID": "12345",
        "DBT_CLOUD_JOB_ID": "44444",
    }
    plan = work.plan(env=env)
    assert plan.trigger is not None
    assert (plan.trigger.host, plan.trigger.job_id) == (sandbox.url, 44444)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{subject}", "Add orders (+2 more commits)"),
        ("{branch}: {subject} by {author}", "main: Add orders by Test Author"),
        ("{short_sha} x{commits} [{models}]", "{short} x3 [a, b, orders]"),
        ("{sha}", "{sha}"),
    ],
)
def test_cause_template(work: Work, sandbox: Sandbox, template: str, expected: str) -> None:
    extra = f"    cause: {json.dumps(template)}\n"
    work.commit({"datachonk.yaml": config_yaml(sandbox.url, extra=extra)}, "Cause")
    work.commit({"models/a.sql": GENERATED_SQL, "models/b.sql": GENERATED_SQL}, "Add a and b")
    sha = work.commit({"models/orders.sql": GENERATED_SQL}, "Add orders")
    plan = work.plan()
    assert plan.trigger is not None
    assert plan.trigger.request.cause == expected.format(short=sha[:7], sha=sha)


def test_cause_argument_beats_the_template(work: Work) -> None:
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    plan = work.plan(cause="By hand")
    assert plan.trigger is not None and plan.trigger.request.cause == "By hand"


def test_new_branch_for_commits_the_remote_has(work: Work) -> None:
    """`git push origin main:release` after main was pushed: nothing new, nothing detected."""
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "push", "--quiet", "origin", "main")
    plan = work.plan(work.update("main", "refs/heads/release"))
    assert plan.trigger is None and plan.models == ()


PROBE = """
import sys, pygit2
from datachonk_hooks.push.updates import PushUpdate
from datachonk_hooks.delivery.planning import plan_push_update
repo = pygit2.Repository(".")
update = PushUpdate("refs/heads/main", sys.argv[1], "refs/heads/main", sys.argv[2])
plan = plan_push_update(repo, update, "origin", {})
print(plan.skipped, any(name.split(".")[0] == "ruamel" for name in sys.modules))
"""


NOTHING = "no DataChonk-generated models in the push"


@pytest.mark.parametrize(
    ("files", "skipped", "imported", "local_config"),
    [
        ({"models/b.sql": HAND_SQL}, NOTHING, False, False),
        ({"README.md": "docs\n"}, NOTHING, False, False),
        ({"models/b.sql": HAND_SQL}, NOTHING, False, True),  # the work tree's file stands in
        ({"models/a.sql": GENERATED_SQL}, "None", True, False),  # the settings are needed then
    ],
)
def test_yaml_parser_is_only_imported_when_needed(
    work: Work, files: dict[str, str], skipped: str, imported: bool, local_config: bool
) -> None:
    if local_config:
        untrack_config(work)
    base = work.sha("origin/main")
    tip = work.commit(files, "Change")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, tip, base],
        cwd=work.path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"{skipped} {imported}"


# ----------------------------------------------------------------------------- manual


@pytest.fixture
def settings(sandbox: Sandbox):
    return load_settings(config_yaml(sandbox.url, extra=JOBS), source="datachonk.yaml", env=ENV)


@pytest.mark.parametrize(
    ("ref", "branch", "job_id", "route"),
    [
        ("HEAD", "main", 22222, "jobs[0] (branch main)"),
        ("main", "main", 22222, "jobs[0] (branch main)"),
        ("feature/x", "feature/x", 44444, "jobs[1] (branch feature/*)"),
        ("origin/main", "main", 22222, "jobs[0] (branch main)"),
        ("HEAD~1", None, 11111, "job_id"),
        ("v1", None, 11111, "job_id"),
    ],
)
def test_plan_manual_trigger(
    work: Work, settings, sandbox: Sandbox, ref: str, branch: str | None, job_id: int, route: str
) -> None:
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "push", "--quiet", "origin", "main")
    git(work.path, "branch", "feature/x")
    git(work.path, "tag", "-a", "v1", "-m", "Release", "HEAD")
    plan = plan_manual_trigger(settings, work.repo, ref)
    sha = git(work.path, "rev-parse", f"{ref}^{{commit}}")
    subject = git(work.path, "log", "-1", "--format=%s", sha)
    assert plan == TriggerPlan(
        sandbox.url,
        12345,
        job_id,
        TriggerRequest(cause=subject, git_sha=sha, git_branch=branch),
        route=route,
    )


def test_plan_manual_trigger_job_and_cause_flags(work: Work, settings) -> None:
    plan = plan_manual_trigger(settings, work.repo, "HEAD", job_id=33333, cause=" By\thand ")
    assert (plan.job_id, plan.request.cause) == (33333, "By hand")


@pytest.mark.parametrize("cause", ["", "  \n\t "])
def test_empty_literal_cause(work: Work, settings, cause: str) -> None:
    with pytest.raises(ConfigError, match="must not be empty"):
        plan_manual_trigger(settings, work.repo, "HEAD", cause=cause)


def test_literal_cause_is_cut_to_255() -> None:
    cause = literal_cause("x" * 300)
    assert len(cause) == 255 and cause.endswith("…")


def test_a_manual_trigger_needs_a_pushed_commit(work: Work, settings) -> None:
    """dbt Cloud clones from the configured remote: a commit it lacks would fail there."""
    pushed = work.sha("HEAD")
    unpushed = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    message = (
        f"{unpushed[:7]} is not on origin yet: push it first (`datachonk push"
        " --trigger-dbt-run`), or pass --allow-unpushed"
    )
    with pytest.raises(UnpushedCommitError, match=f"^{re.escape(message)}$"):
        plan_manual_trigger(settings, work.repo, "HEAD")
    assert UnpushedCommitError.exit_code == ExitCode.USAGE
    assert plan_manual_trigger(settings, work.repo, "HEAD~1").request.git_sha == pushed
    allowed = plan_manual_trigger(settings, work.repo, "HEAD", allow_unpushed=True)
    assert allowed.request.git_sha == unpushed


def test_a_manual_trigger_looks_at_the_configured_remote(work: Work, sandbox: Sandbox) -> None:
    settings = load_settings(
        config_yaml(sandbox.url, extra="    remote: upstream\n"), source="datachonk.yaml", env=ENV
    )
    with pytest.raises(UnpushedCommitError, match="is not on upstream yet"):
        plan_manual_trigger(settings, work.repo, "HEAD")


def test_plan_manual_trigger_needs_an_account(work: Work) -> None:
    with pytest.raises(ConfigError, match="no dbt Cloud account id"):
        plan_manual_trigger(load_settings(None, source="x", env={}), work.repo, "HEAD")


# ----------------------------------------------------------------------------- delivery


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as opened:
        yield opened


def add_trigger(ledger: Ledger, sandbox: Sandbox, sha: str = "a" * 40) -> int:
    request = TriggerRequest(cause="Add orders", git_sha=sha, git_branch="main")
    record, _ = ledger.add_trigger(
        host=sandbox.url, account_id=12345, job_id=11111, request=request, source="push"
    )
    return record.id


def posts(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "POST" and r.path.endswith("/run/"))


def test_deliver_sends_once_and_records_the_run(ledger: Ledger, sandbox: Sandbox) -> None:
    trigger = add_trigger(ledger, sandbox)
    pool = fast_pool()
    try:
        result = deliver(ledger, trigger, pool)
        again = deliver(ledger, trigger, pool)
    finally:
        pool.close()
    assert result.error is None and result.run is not None
    [run] = sandbox.runs
    assert (run.id, run.git_sha, run.git_branch, run.cause) == (
        result.run.id,
        "a" * 40,
        "main",
        "Add orders",
    )
    assert result.record.state is TriggerState.TRIGGERED
    assert (result.record.run_id, result.record.attempts) == (run.id, 1)
    assert again.skipped and again.record.run_id == run.id
    assert posts(sandbox) == 1


def test_a_run_started_elsewhere_for_the_commit_is_adopted(
    ledger: Ledger, sandbox: Sandbox
) -> None:
    """Another clone, CI or an earlier clone started the job for this commit: before its
    first POST the trigger finds that run and takes it, starting nothing."""
    with DbtCloudClient(sandbox.url, 12345, resolve_token(ENV), retry=FAST) as elsewhere:
        started = elsewhere.trigger_run(11111, TriggerRequest("From CI", git_sha="a" * 40))
        for number in range(5):  # the job kept busy since
            elsewhere.trigger_run(11111, TriggerRequest("Other", git_sha=f"{number:040x}"))
    trigger = add_trigger(ledger, sandbox)
    result = deliver(ledger, trigger, fast_pool())
    assert result.adopted and result.run is not None and result.run.id == started.id
    assert result.record.state is TriggerState.TRIGGERED and result.record.run_id == started.id
    assert posts(sandbox) == 6  # the five others and CI's: none from this trigger
    forced = deliver(
        ledger, add_trigger(ledger, sandbox, "b" * 40), fast_pool(), lookup_first=False
    )
    assert forced.run is not None and not forced.adopted and posts(sandbox) == 7


def test_a_lost_answer_is_found_among_many_newer_runs(ledger: Ledger, sandbox: Sandbox) -> None:
    """The run list is read page by page back to the first attempt, not only its newest 20."""
    trigger = add_trigger(ledger, sandbox)
    sandbox.fail("drop_after_create", method="POST", path="/run/$")
    sandbox.fail("500", method="GET", path="/runs/$", times=10)  # the lookups fail a while
    first = deliver(ledger, trigger, fast_pool(), lookup_first=False)
    assert first.error is not None and first.record.state is TriggerState.PENDING
    sandbox.clear_faults()
    with DbtCloudClient(sandbox.url, 12345, resolve_token(ENV), retry=FAST) as busy:
        for number in range(120):  # more than a page of other runs of the job
            busy.trigger_run(11111, TriggerRequest("Other", git_sha=f"{number:040x}"))
    second = deliver(ledger, trigger, fast_pool())
    assert second.run is not None and second.run.id == sandbox.runs[0].id
    assert posts(sandbox) == 121


def test_a_gateway_timeout_is_an_unknown_outcome_not_a_refusal(
    ledger: Ledger, sandbox: Sandbox
) -> None:
    """A 504 says only that a gateway stopped waiting: dbt Cloud behind it created the run.
    It is looked up and adopted, never sent again."""
    trigger = add_trigger(ledger, sandbox)
    sandbox.fail("504_after_create", method="POST", path="/run/$", times=5)
    result = deliver(ledger, trigger, fast_pool(), lookup_first=False)
    assert result.run is not None and result.run.id == sandbox.runs[0].id
    assert posts(sandbox) == 1 and len(sandbox.runs) == 1


def test_a_send_without_answer_is_not_repeated_in_the_quiet_period(
    ledger: Ledger, sandbox: Sandbox
) -> None:
    """dbt Cloud creates the run 4 s after the POST, the client gives up after 1 s: an
    immediate retry only looks it up (and says until when), then finds and adopts it."""
    trigger = add_trigger(ledger, sandbox)
    sandbox.fail("slow", method="POST", path="/run/$", delay=4.0)
    first = deliver(ledger, trigger, fast_pool(read_timeout=1.0))
    assert first.error is not None and first.record.unknown_since is not None
    assert sandbox.runs == []
    second = deliver(ledger, trigger, fast_pool(read_timeout=1.0))
    assert second.run is None and second.record.state is TriggerState.PENDING
    assert "only looked up until" in (second.record.reason or "")
    deadline = time.monotonic() + 20
    while not sandbox.runs and time.monotonic() < deadline:  # the late run appears
        time.sleep(0.05)
    third = deliver(ledger, trigger, fast_pool(read_timeout=1.0))
    assert third.adopted and third.run is not None and third.run.id == sandbox.runs[0].id
    assert posts(sandbox) == 1


def test_deliver_skips_a_trigger_another_process_holds(ledger: Ledger, sandbox: Sandbox) -> None:
    trigger = add_trigger(ledger, sandbox)
    assert ledger.claim(trigger, owner=f"{os.getpid()}@{os.uname().nodename}") is not None
    result = deliver(ledger, trigger, fast_pool())
    assert result.skipped and result.run is None and result.error is None
    assert result.record.state is TriggerState.SENDING
    assert sandbox.requests == []


def test_second_attempt_adopts_the_run_a_lost_answer_created(
    ledger: Ledger, sandbox: Sandbox
) -> None:
    trigger = add_trigger(ledger, sandbox)
    sandbox.fail("drop_after_create", method="POST", path="/run/$")
    sandbox.fail("500", method="GET", path="/runs/$", times=10)  # and the lookup fails too
    first = deliver(ledger, trigger, fast_pool(), lookup_first=False)  # straight to the POST
    assert isinstance(first.error, DbtCloudError)
    assert first.record.state is TriggerState.PENDING and first.record.reason
    assert len(sandbox.runs) == 1  # created, but the answer never came back
    sandbox.clear_faults()
    second = deliver(ledger, trigger, fast_pool())
    assert second.run is not None and second.run.id == sandbox.runs[0].id
    assert (second.record.state, second.record.attempts) == (TriggerState.TRIGGERED, 2)
    assert posts(sandbox) == 1  # looked up before sending, never POSTed again


def test_retry_after_an_interrupted_attempt_is_exactly_one_run(
    ledger: Ledger, sandbox: Sandbox
) -> None:
    trigger = add_trigger(ledger, sandbox)
    assert ledger.claim(trigger) is not None  # an earlier sender claimed it...
    ledger.mark_pending(trigger, "interrupted while sending")  # ...and failed
    sandbox.fail("drop_after_create", method="POST", path="/run/$")
    result = deliver(ledger, trigger, fast_pool())
    assert result.run is not None, result.error
    [run] = sandbox.runs
    assert result.run.id == run.id
    assert (result.record.state, result.record.run_id) == (TriggerState.TRIGGERED, run.id)
    assert result.record.attempts == 2


@pytest.mark.parametrize("outage", ["stopped", "503"])
def test_delivery_error_leaves_it_pending_with_the_reason(
    ledger: Ledger, sandbox: Sandbox, outage: str
) -> None:
    trigger = add_trigger(ledger, sandbox)
    if outage == "stopped":
        sandbox.stop()
    else:
        sandbox.fail("503", method="POST", times=5)
    result = deliver(ledger, trigger, fast_pool())
    assert isinstance(result.error, DbtCloudError)
    assert result.record.state is TriggerState.PENDING
    assert result.record.reason == str(result.error)
    assert result.record.claimed_by is None
    assert [t.id for t in ledger.deliverable()] == [trigger]


def test_delivery_without_a_token_stays_pending(ledger: Ledger, sandbox: Sandbox) -> None:
    trigger = add_trigger(ledger, sandbox)
    result = deliver(ledger, trigger, ClientPool(env={}))
    assert isinstance(result.error, ConfigError)
    assert result.record.state is TriggerState.PENDING
    assert result.record.reason is not None and "no dbt Cloud API token" in result.record.reason


# ----------------------------------------------------------------------------- through the ledger


def manual_plan(work: Work, sandbox: Sandbox) -> TriggerPlan:
    settings = load_settings(config_yaml(sandbox.url), source="datachonk.yaml", env=ENV)
    return plan_manual_trigger(settings, work.repo, "HEAD")


def test_trigger_through_ledger_dedups_and_force_triggers_again(
    work: Work, sandbox: Sandbox
) -> None:
    sha = work.sha("HEAD")
    plan = manual_plan(work, sandbox)
    said: list[str] = []
    with DbtCloudClient(sandbox.url, 12345, resolve_token(ENV), retry=FAST) as client:
        first = trigger_through_ledger(work.repo, plan, client, force=False, echo=said.append).run
        second = trigger_through_ledger(work.repo, plan, client, force=False, echo=said.append).run
        forced = trigger_through_ledger(work.repo, plan, client, force=True, echo=said.append).run
    assert second.id == first.id and forced.id != first.id
    assert said == [
        f"Triggered run {first.id} of job 11111 for {sha[:7]} on main",
        f"{sha[:7]} already triggered run {first.id} of job 11111; use --force to trigger it again",
        f"Triggered run {forced.id} of job 11111 for {sha[:7]} on main",
    ]
    assert [r.id for r in sandbox.runs] == [first.id, forced.id]
    with Ledger.for_repo(work.repo) as ledger:
        records = ledger.history()
    assert [(r.source, r.run_id) for r in records] == [("manual", forced.id), ("manual", first.id)]


def test_trigger_through_ledger_respects_a_push_trigger(work: Work, sandbox: Sandbox) -> None:
    plan = manual_plan(work, sandbox)
    with Ledger.for_repo(work.repo) as ledger:
        push = ledger.record_push(
            remote_name="origin", remote_url="x", git_pid=None, tracking_before={}, foreground=False
        )
        ledger.add_trigger(
            host=plan.host or "",
            account_id=plan.account_id,
            job_id=plan.job_id,
            request=plan.request,
            source="push",
            push_id=push.id,
            awaiting_push=True,
        )
    with (
        DbtCloudClient(sandbox.url, 12345, resolve_token(ENV), retry=FAST) as client,
        pytest.raises(DatachonkError, match="waiting for its push to land"),
    ):
        trigger_through_ledger(work.repo, plan, client, force=False, echo=print)
    assert sandbox.runs == []


def test_trigger_through_ledger_failure_stays_pending(work: Work, sandbox: Sandbox) -> None:
    plan = manual_plan(work, sandbox)
    sandbox.stop()
    said: list[str] = []
    with (
        DbtCloudClient(sandbox.url, 12345, resolve_token(ENV), retry=FAST) as client,
        pytest.raises(DbtCloudError),
    ):
        trigger_through_ledger(work.repo, plan, client, force=False, echo=said.append)
    assert said == [
        f"the trigger stays pending ({work.sha('HEAD')[:7]}, job 11111); `datachonk-hook retry`"
    ]
    with Ledger.for_repo(work.repo) as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.PENDING and record.reason


# ----------------------------------------------------------------------------- clients


def test_new_client_takes_timeouts_and_retry_budget_from_the_environment() -> None:
    env = {**ENV, "DATACHONK_HTTP_TIMEOUT": "2.5", "DATACHONK_RETRY_BUDGET": "7"}
    with new_client("https://cloud.getdbt.com", 12345, env, retry=FAST) as client:
        assert (client.timeouts.connect, client.timeouts.read) == (2.5, 2.5)
        assert client.retry.budget == 7.0
        assert client.retry.attempts == FAST.attempts  # the caller's policy, budget replaced
        assert client.token.value == TOKEN


def test_new_client_keeps_the_callers_policy_without_environment_values() -> None:
    with new_client("https://cloud.getdbt.com", 12345, ENV, retry=FAST) as client:
        assert client.retry == FAST
    with new_client("https://cloud.getdbt.com", 12345, ENV) as client:
        assert client.retry == RetryPolicy()


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", "100000"])
def test_new_client_refuses_a_bad_timeout(value: str) -> None:
    with pytest.raises(ConfigError, match="DATACHONK_HTTP_TIMEOUT: expected a number of seconds"):
        new_client("https://cloud.getdbt.com", 12345, {**ENV, "DATACHONK_HTTP_TIMEOUT": value})
