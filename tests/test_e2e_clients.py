"""The two most used third-party clients, `dbt-cloud-cli` and `dbtc`, against `sandbox --tls`.

Both speak only https to `DBT_CLOUD_HOST` and send slashless paths, so this is where the
simulator proves it is a local dbt Cloud for any client, not only ours. Each scenario runs a
client as a real subprocess (from its own venv, see `tests.clients`) and asserts what the
client got: its JSON output, its exit code, dbtc's return values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from datachonk_hooks.sandbox import Sandbox
from tests.clients import Clients, ClientsVenv, client_env, ensure_clients_venv
from tests.e2e import eventually
from tests.helpers import TOKEN

pytestmark = pytest.mark.slow

ACCOUNT = 12345
SHA = "0123456789abcdef0123456789abcdef01234567"
SUCCESS, ERROR, CANCELLED, RUNNING = 10, 20, 30, 3
JAFFLE_JOBS = [11111, 22222, 33333, 44444]


@dataclass(frozen=True)
class Finished:
    """Runs made before the scenarios, all ended: what the read-only scenarios look at."""

    success: int  # job 11111, with SHA on main
    error: int  # job 33333
    pages: tuple[int, ...]  # three successful runs of job 22222, oldest first
    cancelled: int  # a fourth run of job 22222, cancelled at once


@pytest.fixture(scope="session")
def clients_venv() -> ClientsVenv:
    return ensure_clients_venv()


@pytest.fixture(scope="module")
def cloud() -> Iterator[Sandbox]:
    """One https sandbox; at 20x a plain run takes a quarter of a second, 44444 thirty."""
    with Sandbox(token=TOKEN, time_scale=20, tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def clients(clients_venv: ClientsVenv, cloud: Sandbox) -> Clients:
    host, bundle = cloud.url.removeprefix("https://"), cloud.ca_bundle
    assert bundle is not None, "the sandbox serves plain http"
    return Clients(clients_venv, client_env(host, TOKEN, ACCOUNT, bundle))


@pytest.fixture(scope="module")
def finished(cloud: Sandbox) -> Finished:
    session = requests.Session()
    session.trust_env = False  # else a REQUESTS_CA_BUNDLE in the environment beats `verify`
    session.verify = str(cloud.ca_bundle)
    session.headers["Authorization"] = f"Token {TOKEN}"
    base = f"{cloud.url}/api/v2/accounts/{ACCOUNT}"

    def trigger(job_id: int, **body: str) -> int:
        answer = session.post(f"{base}/jobs/{job_id}/run/", json={"cause": "fixture", **body})
        assert answer.status_code == 200, answer.text
        run_id: int = answer.json()["data"]["id"]
        return run_id

    made = Finished(
        success=trigger(11111, git_sha=SHA, git_branch="main"),
        error=trigger(33333),
        pages=tuple(trigger(22222) for _ in range(3)),
        cancelled=trigger(22222),
    )
    assert session.post(f"{base}/runs/{made.cancelled}/cancel/").status_code == 200
    ids = (made.success, made.error, *made.pages, made.cancelled)
    eventually(lambda: all(cloud.run_status(i) >= SUCCESS for i in ids), timeout=30)
    return made


def run_of(cloud: Sandbox, run_id: int) -> tuple[str, str | None, str | None]:
    (run,) = [run for run in cloud.runs if run.id == run_id]
    return run.cause, run.git_sha, run.git_branch


# ------------------------------------------------------------------ dbt-cloud-cli


def test_dbt_cloud_lists_and_gets_projects(clients: Clients) -> None:
    listed = clients.dbt_cloud("project", "list").ok()
    assert {p["id"]: p["name"] for p in listed["data"]} == {
        67890: "jaffle_shop",
        67891: "marketing",
    }
    got = clients.dbt_cloud("project", "get", "--project-id", "67890").ok()
    assert (got["data"]["id"], got["data"]["name"]) == (67890, "jaffle_shop")


def test_dbt_cloud_lists_jobs_of_a_project_and_gets_one(clients: Clients) -> None:
    listed = clients.dbt_cloud("job", "list", "--project-id", "67890").ok()
    assert sorted(job["id"] for job in listed["data"]) == JAFFLE_JOBS
    got = clients.dbt_cloud("job", "get", "--job-id", "11111").ok()
    assert (got["data"]["id"], got["data"]["project_id"]) == (11111, 67890)
    assert got["data"]["name"] == "DataChonk CI"


def test_dbt_cloud_runs_jobs_and_waits_to_their_end(clients: Clients, cloud: Sandbox) -> None:
    """`job run --wait` polls `GET /runs/{id}` (slashless) every 5 s until the run ends."""
    how = ("--cause", "dbt-cloud-cli e2e", "--git-sha", SHA, "--git-branch", "main", "--wait")
    good = clients.start("dbt-cloud", "job", "run", "--job-id", "11111", *how)
    bad = clients.start("dbt-cloud", "job", "run", "--job-id", "33333", *how)
    succeeded, failed = clients.finish(good), clients.finish(bad)
    run = succeeded.ok()["data"]
    assert (run["job_definition_id"], run["status"]) == (11111, SUCCESS)
    assert run_of(cloud, run["id"]) == ("dbt-cloud-cli e2e", SHA, "main")
    assert failed.returncode == 1
    assert "Job run failed with ERROR status" in failed.stderr
    assert (failed.json()["data"]["job_definition_id"], failed.json()["data"]["status"]) == (
        33333,
        ERROR,
    )


def test_dbt_cloud_gets_a_run_with_related(clients: Clients, finished: Finished) -> None:
    related = ("--include-related", "trigger", "--include-related", "job")
    got = clients.dbt_cloud("run", "get", "--run-id", str(finished.success), *related).ok()
    run = got["data"]
    assert (run["id"], run["status"]) == (finished.success, SUCCESS)
    assert (run["trigger"]["git_sha"], run["trigger"]["git_branch"]) == (SHA, "main")
    assert run["job"]["id"] == 11111


def test_dbt_cloud_lists_runs_with_a_filter_and_a_page(
    clients: Clients, finished: Finished
) -> None:
    page = ("--order-by", "id", "--limit", "2", "--offset", "1")
    listed = clients.dbt_cloud(
        "run", "list", "--job-id", "22222", "--status", "Succeeded", *page
    ).ok()
    assert [run["id"] for run in listed["data"]] == list(finished.pages[1:])
    pagination = listed["extra"]["pagination"]
    assert (pagination["count"], pagination["total_count"]) == (2, 3)


def test_dbt_cloud_lists_artifacts_and_gets_the_manifest(
    clients: Clients, finished: Finished
) -> None:
    run_id = str(finished.success)
    listed = clients.dbt_cloud("run", "list-artifacts", "--run-id", run_id).ok()
    assert "manifest.json" in listed["data"]
    manifest = clients.dbt_cloud(
        "run", "get-artifact", "--run-id", run_id, "--path", "manifest.json"
    )
    assert "manifest" in manifest.ok()["metadata"]["dbt_schema_version"]
    assert manifest.json()["metadata"]["env"]["DBT_CLOUD_RUN_ID"] == run_id


def test_dbt_cloud_cancels_a_running_run(clients: Clients, cloud: Sandbox) -> None:
    started = clients.dbt_cloud("job", "run", "--job-id", "44444", "--cause", "to cancel").ok()
    run_id = started["data"]["id"]
    eventually(lambda: cloud.run_status(run_id) == RUNNING)
    cancelled = clients.dbt_cloud("run", "cancel", "--run-id", str(run_id)).ok()
    assert (cancelled["data"]["id"], cancelled["data"]["status"]) == (run_id, CANCELLED)
    got = clients.dbt_cloud("run", "get", "--run-id", str(run_id)).ok()
    assert (got["data"]["status"], got["data"]["is_cancelled"]) == (CANCELLED, True)


def test_dbt_cloud_reads_the_account_and_environments(clients: Clients) -> None:
    assert clients.dbt_cloud("account", "get").ok()["data"]["id"] == ACCOUNT
    assert ACCOUNT in [a["id"] for a in clients.dbt_cloud("account", "list").ok()["data"]]
    environments = clients.dbt_cloud("environment", "list", "--project-id", "67890").ok()
    assert environments["data"]
    assert {env["project_id"] for env in environments["data"]} == {67890}


# ------------------------------------------------------------------ dbtc


def test_dbtc_lists_and_gets_projects(clients: Clients) -> None:
    listed = clients.dbtc("projects", "list").ok()
    assert {p["id"]: p["name"] for p in listed["data"]} == {
        67890: "jaffle_shop",
        67891: "marketing",
    }
    got = clients.dbtc("projects", "get", "--project-id", "67890").ok()
    assert (got["data"]["id"], got["data"]["name"]) == (67890, "jaffle_shop")


def test_dbtc_lists_jobs_of_a_project_and_gets_one(clients: Clients) -> None:
    """dbtc filters with `project_id__in=[67890]`."""
    listed = clients.dbtc("jobs", "list", "--project-id", "67890").ok()
    assert sorted(job["id"] for job in listed["data"]) == JAFFLE_JOBS
    got = clients.dbtc("jobs", "get", "--job-id", "11111").ok()
    assert (got["data"]["id"], got["data"]["name"]) == (11111, "DataChonk CI")


def test_dbtc_triggers_jobs_and_polls_to_their_end(clients: Clients, cloud: Sandbox) -> None:
    payload = f'{{"cause": "dbtc e2e", "git_sha": "{SHA}", "git_branch": "main"}}'
    how = ("--payload", payload, "--poll-interval", "1")
    good = clients.start("dbtc", "jobs", "trigger", "--job-id", "11111", *how)
    bad = clients.start("dbtc", "jobs", "trigger", "--job-id", "33333", *how)
    succeeded, failed = clients.finish(good).ok()["data"], clients.finish(bad).ok()["data"]
    assert (succeeded["job_definition_id"], succeeded["status"]) == (11111, SUCCESS)
    assert run_of(cloud, succeeded["id"]) == ("dbtc e2e", SHA, "main")
    assert (failed["job_definition_id"], failed["status"]) == (33333, ERROR)
    assert run_of(cloud, failed["id"]) == ("dbtc e2e", SHA, "main")


def test_dbtc_api_reads_runs_pages_and_artifacts(clients: Clients, finished: Finished) -> None:
    """Through the Python API: `status="success"` goes out as `status__in=[10]`."""
    got, listed, artifacts, manifest = clients.dbtc_api(
        ("get_run", [ACCOUNT, finished.success], {"include_related": ["trigger", "job"]}),
        (
            "list_runs",
            [ACCOUNT],
            {"job_definition_id": 22222, "status": "success", "order_by": "id"}
            | {"limit": 2, "offset": 1},
        ),
        ("list_run_artifacts", [ACCOUNT, finished.success], {}),
        ("get_run_artifact", [ACCOUNT, finished.success, "manifest.json"], {}),
    )
    assert (got["data"]["trigger"]["git_sha"], got["data"]["job"]["id"]) == (SHA, 11111)
    assert [run["id"] for run in listed["data"]] == list(finished.pages[1:])
    assert listed["extra"]["pagination"]["total_count"] == 3
    assert "manifest.json" in artifacts["data"]
    assert manifest["metadata"]["env"]["DBT_CLOUD_RUN_ID"] == str(finished.success)


def test_dbtc_reruns_from_failure(clients: Clients, cloud: Sandbox, finished: Finished) -> None:
    eventually(lambda: all(run.status >= SUCCESS for run in cloud.runs if run.job_id == 33333))
    rerun = clients.dbtc(
        "jobs", "trigger-from-failure", "--job-id", "33333", "--poll-interval", "1"
    ).ok()
    run_id = rerun["data"]["id"]
    assert (rerun["data"]["job_definition_id"], rerun["data"]["status"]) == (33333, ERROR)
    (got,) = clients.dbtc_api(("get_run", [ACCOUNT, run_id], {"include_related": ["trigger"]}))
    assert got["data"]["trigger"]["cause"].startswith("Rerun from failure of run ")


def test_dbtc_cancel_is_redirected_into_a_405(clients: Clients, cloud: Sandbox) -> None:
    """dbtc posts to `.../cancel` without the slash: the redirect re-sends it as a GET, which
    dbt Cloud refuses, so the run goes on (as it would on dbt Cloud)."""
    trigger = ("trigger_job", [ACCOUNT, 44444, {"cause": "dbtc cancel"}], {"should_poll": False})
    (started,) = clients.dbtc_api(trigger)
    run_id = started["data"]["id"]
    (answer,) = clients.dbtc_api(("cancel_run", [ACCOUNT, run_id], {}))
    assert answer == {"detail": 'Method "GET" not allowed.'}
    assert cloud.run_status(run_id) != CANCELLED
    sent = [(r.method, r.path) for r in cloud.requests if f"/runs/{run_id}/cancel" in r.path]
    path = f"/api/v2/accounts/{ACCOUNT}/runs/{run_id}/cancel"
    assert sent == [("POST", path), ("GET", f"{path}/")]


def test_dbtc_api_reads_the_account_environments_and_users(clients: Clients) -> None:
    account, accounts, environments, users = clients.dbtc_api(
        ("get_account", [ACCOUNT], {}),
        ("list_accounts", [], {}),
        ("list_environments", [ACCOUNT, 67890], {}),
        ("list_users", [ACCOUNT], {}),
    )
    assert account["data"]["id"] == ACCOUNT
    assert ACCOUNT in [a["id"] for a in accounts["data"]]
    assert {env["project_id"] for env in environments["data"]} == {67890}
    assert users["data"]
    for user in users["data"]:
        assert ACCOUNT in [permission["account_id"] for permission in user["permissions"]]


def test_dbtc_api_gets_run_timing(clients: Clients, finished: Finished) -> None:
    """`GET /api/v3/accounts/{a}/projects/{p}/runs/{r}/timing/`, which dbtc calls."""
    (timing,) = clients.dbtc_api(
        ("get_run_timing_details", [ACCOUNT, 67890, finished.success], {}),
    )
    assert timing.get("status", {}).get("is_success") is True, timing
