"""The dbt Cloud simulator, exercised over real HTTP the way clients will use it."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from datachonk_hooks import sandbox as sandbox_module
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.sandbox.wire import FIRST_RUN_ID

TOKEN = "dbtc_sandbox_test_token"
ACCOUNT = 12345
RUN_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
JOB_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")


class FakeClock:
    """Simulated monotonic time, so runs progress without sleeping."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """A thin client: paths are relative to the account, the token is sent as dbt wants it."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, **params: str | int) -> requests.Response:
        return self.session.get(f"{self.url}/api/v2/accounts/{ACCOUNT}{path}", params=params)

    def post(self, path: str, body: object = None) -> requests.Response:
        return self.session.post(f"{self.url}/api/v2/accounts/{ACCOUNT}{path}", json=body)

    def trigger(self, job_id: int = 11111, **body: object) -> dict[str, Any]:
        response = self.post(f"/jobs/{job_id}/run/", {"cause": "test", **body})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def run(self, run_id: int, include: str = "") -> dict[str, Any]:
        response = self.get(f"/runs/{run_id}/", include_related=include)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN) as server:
        server.set_clock(clock)
        yield server


@pytest.fixture
def api(sb: Sandbox) -> Iterator[Api]:
    client = Api(sb.url)
    yield client
    client.session.close()


def error_of(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["status"]["code"] == response.status_code
    assert body["status"]["is_success"] is False
    return body


# ------------------------------------------------------------------ auth and permissions


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Token wrong", 401),
        (f"Basic {TOKEN}", 401),
        ("Token ", 401),
        (f"Token {TOKEN}", 200),
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
    ],
)
def test_auth_headers(sb: Sandbox, header: str | None, status: int) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = requests.get(f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {
            "status": {
                "code": 401,
                "is_success": False,
                "user_message": "Invalid token.",
                "developer_message": None,
            },
            "data": None,
        }
    assert [r.authorization_ok for r in sb.requests] == [status == 200]


def test_set_tokens_replaces_and_revokes(sb: Sandbox, api: Api) -> None:
    sb.set_tokens({"other": "job_admin"})
    assert api.get("/jobs/").status_code == 401
    assert Api(sb.url, "other").get("/jobs/").status_code == 200
    sb.set_tokens({})
    assert Api(sb.url, "other").get("/jobs/").status_code == 401
    with pytest.raises(ValueError, match="unknown permission"):
        sb.set_tokens({"x": "superuser"})


@pytest.mark.parametrize(
    ("permission", "method", "path", "status"),
    [
        ("job_viewer", "POST", "/jobs/11111/run/", 403),
        ("job_viewer", "POST", "/jobs/11111/rerun/", 403),
        ("job_viewer", "POST", "/runs/70403103900001/cancel/", 403),
        ("job_viewer", "GET", "/runs/70403103900001/", 200),
        ("job_viewer", "GET", "v3/projects/", 200),
        ("job_runner", "POST", "/jobs/11111/run/", 200),
        ("job_runner", "POST", "/runs/70403103900001/cancel/", 200),
        ("job_runner", "GET", "/jobs/", 200),
        ("job_runner", "GET", "v3/projects/", 403),
        ("job_admin", "GET", "v3/projects/", 200),
        ("job_admin", "POST", "/jobs/11111/rerun/", 200),
        ("account_admin", "GET", "v3/projects/", 200),
    ],
)
def test_permissions(sb: Sandbox, api: Api, permission: str, method: str, path: str, status: int):
    api.trigger()
    sb.set_tokens({TOKEN: permission})
    if path.startswith("v3/"):
        url = f"{sb.url}/api/v3/accounts/{ACCOUNT}/{path[3:]}"
    else:
        url = f"{sb.url}/api/v2/accounts/{ACCOUNT}{path}"
    body = {"cause": "x"} if method == "POST" else None
    response = api.session.request(method, url, json=body)
    assert response.status_code == status
    if status == 403:
        message = error_of(response)["status"]["user_message"]
        assert "permission" in message
        assert ("Job Runner" if method == "POST" else "Job Viewer") in message


def test_other_account_is_not_found(sb: Sandbox, api: Api) -> None:
    response = api.session.get(f"{sb.url}/api/v2/accounts/999/jobs/")
    assert response.status_code == 404
    assert error_of(response)["data"] is None


# ------------------------------------------------------------------ trigger


def test_trigger_returns_a_queued_run_like_dbt_cloud(sb: Sandbox, api: Api) -> None:
    sha = "981c5cf1ba299e942c6c277c38c8dec9b0738dd0"
    response = api.post(
        "/jobs/11111/run/",
        {"cause": "Add orders", "git_sha": sha, "git_branch": "main", "threads_override": 8},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {
        "code": 200,
        "is_success": True,
        "user_message": "Success!",
        "developer_message": "",
    }
    run = body["data"]
    assert run["id"] == 70403103900001 and len(str(run["id"])) == 14
    assert (run["status"], run["status_humanized"], run["in_progress"]) == (1, "Queued", True)
    assert not run["is_complete"] and run["finished_at"] is None
    assert (run["job_definition_id"], run["job_id"], run["project_id"]) == (11111, 11111, 67890)
    assert (run["git_sha"], run["git_branch"]) == (sha, "main")
    assert run["href"] == f"{sb.url}/deploy/{ACCOUNT}/projects/67890/runs/{run['id']}/"
    assert RUN_STAMP.match(run["created_at"]) and RUN_STAMP.match(run["updated_at"])
    assert run["duration"] == "00:00:00" and run["blocked_by"] == []
    trigger = run["trigger"]
    assert (trigger["cause"], trigger["cause_category"]) == ("Add orders", "api")
    assert trigger["threads_override"] == 8 and trigger["steps_override"] is None
    assert RUN_STAMP.match(trigger["created_at"])
    assert run["job"]["name"] == "DataChonk CI"
    assert JOB_STAMP.match(run["job"]["created_at"])
    [created] = sb.runs
    assert (created.id, created.cause, created.git_sha, created.status) == (
        run["id"],
        "Add orders",
        sha,
        1,
    )
    assert api.trigger()["id"] == run["id"] + 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "cause", "This field is required."),
        (None, "cause", "This field is required."),
        ({"cause": None}, "cause", "This field is required."),
        ({"cause": ""}, "cause", "This field may not be blank."),
        ({"cause": "   "}, "cause", "This field may not be blank."),
        ({"cause": "x" * 256}, "cause", "Ensure this field has no more than 255 characters."),
        ({"cause": "x", "steps_override": [""]}, "steps_override", "This field may not be blank."),
        ({"cause": "x", "steps_override": []}, "steps_override", "This list may not be empty."),
        ({"cause": "x", "steps_override": "dbt run"}, "steps_override", "Expected a list"),
        ({"cause": "x", "git_sha": ""}, "git_sha", "This field may not be blank."),
        ({"cause": "x", "threads_override": "many"}, "threads_override", "A valid integer"),
    ],
)
def test_trigger_validation(sb: Sandbox, api: Api, body: object, field: str, message: str) -> None:
    response = api.post("/jobs/11111/run/", body)
    assert response.status_code == 400
    errors = error_of(response)["data"]
    assert errors[field][0].startswith(message)
    assert sb.runs == []


def test_trigger_accepts_form_encoding_and_echoes_overrides(api: Api, sb: Sandbox) -> None:
    response = api.session.post(
        f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/11111/run/",
        data={"cause": "form", "steps_override": ["dbt seed", "dbt build -s orders+"]},
    )
    assert response.status_code == 200
    run = response.json()["data"]
    assert run["trigger"]["steps_override"] == ["dbt seed", "dbt build -s orders+"]
    assert sb.runs[0].steps_override == ("dbt seed", "dbt build -s orders+")
    steps = api.run(run["id"], "run_steps")["run_steps"]
    assert [s["name"] for s in steps][-2:] == [
        "Invoke dbt with `dbt seed`",
        "Invoke dbt with `dbt build -s orders+`",
    ]


def test_trigger_rejects_broken_json(api: Api, sb: Sandbox) -> None:
    response = api.session.post(
        f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/11111/run/",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert sb.requests[-1].body == "{not json"


def test_trigger_unknown_and_deactivated_jobs(sb: Sandbox, api: Api) -> None:
    response = api.post("/jobs/999/run/", {"cause": "x"})
    assert response.status_code == 404
    assert error_of(response)["data"] is None
    sb.add_job(66666, project_id=67890, name="old", active=False)
    response = api.post("/jobs/66666/run/", {"cause": "x"})
    assert response.status_code == 400
    assert "deactivated" in error_of(response)["status"]["user_message"]
    assert sb.runs == []


def test_missing_trailing_slash_and_unknown_paths(sb: Sandbox, api: Api) -> None:
    for method in ("POST", "GET"):
        response = api.session.request(
            method, f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/11111/run", json={"cause": "x"}
        )
        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "GET" not allowed.'}
    assert api.get("/jobs/11111/run/").json() == {"detail": 'Method "GET" not allowed.'}
    assert api.get("/nothing/here/").status_code == 404
    assert api.get("/nothing/here/").json() == {"detail": "Not found."}
    assert api.session.get(f"{sb.url}/").json() == {"detail": "Not found."}
    assert sb.runs == []


# ------------------------------------------------------------------ progression


def test_run_progresses_with_the_clock(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    run_id = api.trigger()["id"]
    seen = []
    for step in (0.5, 1.0, 1.0, 3.0):
        clock.advance(step)
        run = api.run(run_id)
        seen.append((run["status"], run["status_humanized"]))
        assert sb.run_status(run_id) == run["status"]
    assert seen == [(1, "Queued"), (2, "Starting"), (3, "Running"), (10, "Success")]
    assert run["is_complete"] and run["is_success"] and not run["in_progress"]
    assert all(RUN_STAMP.match(run[k]) for k in ("dequeued_at", "started_at", "finished_at"))
    assert (run["duration"], run["queued_duration"], run["run_duration"]) == (
        "00:00:05",
        "00:00:02",
        "00:00:03",
    )
    assert run["duration_humanized"] == "5 seconds"
    assert sb.runs[0].status == 10


def test_time_scale_speeds_up_simulated_durations(clock: FakeClock) -> None:
    with Sandbox(token=TOKEN, time_scale=60) as fast:
        fast.set_clock(clock)
        api = Api(fast.url)
        run_id = api.trigger(44444)["id"]  # 1 + 1 + 600 simulated seconds
        clock.advance(9)
        assert api.run(run_id)["status"] == 3
        clock.advance(1.1)
        run = api.run(run_id)
        assert run["status"] == 10 and run["duration"] == "00:10:02"


def test_steps_follow_the_run(api: Api, clock: FakeClock) -> None:
    run_id = api.trigger(44444)["id"]
    steps = api.run(run_id, "run_steps")["run_steps"]
    assert [s["name"] for s in steps] == [
        "Clone Git Repository",
        "Create Profile from Connection Snowflake",
        "Invoke dbt with `dbt deps`",
        "Invoke dbt with `dbt build`",
    ]
    assert [s["status"] for s in steps] == [1, 1, 1, 1]
    assert [s["index"] for s in steps] == [1, 2, 3, 4]
    clock.advance(2 + 12)  # setup steps take 5 s each
    steps = api.run(run_id, "run_steps")["run_steps"]
    assert [s["status"] for s in steps] == [10, 10, 3, 1]
    assert steps[0]["logs"] and steps[0]["finished_at"] and steps[3]["logs"] == ""
    assert steps[2]["finished_at"] is None and RUN_STAMP.match(steps[2]["started_at"])
    clock.advance(100)
    assert [s["status"] for s in api.run(run_id, "run_steps")["run_steps"]] == [10, 10, 10, 3]
    clock.advance(500)
    steps = api.run(run_id, "run_steps")["run_steps"]
    assert [s["status"] for s in steps] == [10, 10, 10, 10]
    assert steps[3]["duration"] == "00:09:45"


def test_error_run_has_a_failing_step_with_logs(api: Api, clock: FakeClock) -> None:
    run_id = api.trigger(33333)["id"]
    clock.advance(10)
    run = api.run(run_id, "run_steps,job")
    assert (run["status"], run["status_humanized"], run["is_error"]) == (20, "Error", True)
    assert run["status_message"].startswith("Database Error in model orders")
    assert run["can_retry"] and run["job"]["name"] == "Nightly (fails)"
    *ok_steps, failing = run["run_steps"]
    assert [s["status"] for s in ok_steps] == [10, 10, 10] and failing["status"] == 20
    lines = failing["logs"].splitlines()
    assert len(lines) >= 40
    assert any("Database Error in model orders" in line for line in lines[-8:])
    assert lines[-1].startswith("Done.") and "ERROR=1" in lines[-1]


def test_timed_out_job_ends_cancelled(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    sb.add_job(66666, project_id=67890, name="slowpoke", outcome="cancelled", running_s=90000)
    run_id = api.trigger(66666)["id"]
    clock.advance(90002)
    run = api.run(run_id)
    assert (run["status"], run["is_cancelled"]) == (30, True)
    assert "timed out after running for 1 day, 1 hour" in run["status_message"]
    assert run["duration"] == "25:00:02" and run["run_duration"] == "25:00:00"


# ------------------------------------------------------------------ cancel and rerun


def test_cancel(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    run_id = api.trigger(44444)["id"]
    clock.advance(25)
    response = api.post(f"/runs/{run_id}/cancel/")
    assert response.status_code == 200
    run = response.json()["data"]
    assert (run["status"], run["status_message"], run["is_cancelled"]) == (
        30,
        "Cancelled by user.",
        True,
    )
    assert RUN_STAMP.match(run["finished_at"]) and run["started_at"] is not None
    clock.advance(1000)
    assert api.run(run_id)["status"] == 30
    steps = api.run(run_id, "run_steps")["run_steps"]
    assert [s["status"] for s in steps] == [10, 10, 10, 30]  # 8 s into the 585 s dbt step

    done_id = api.trigger()["id"]
    clock.advance(10)
    assert api.post(f"/runs/{done_id}/cancel/").json()["data"]["status"] == 10
    assert api.post("/runs/5/cancel/").status_code == 404


def test_cancel_while_queued(api: Api) -> None:
    run_id = api.trigger()["id"]
    run = api.post(f"/runs/{run_id}/cancel/").json()["data"]
    assert (run["status"], run["dequeued_at"], run["started_at"]) == (30, None, None)
    assert api.run(run_id, "run_steps")["run_steps"] == []


def test_rerun_from_failure_and_plain_rerun(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    failed = api.trigger(33333, git_sha="a" * 40)["id"]
    clock.advance(10)
    rerun = api.post("/jobs/33333/rerun/").json()["data"]
    assert rerun["id"] == failed + 1 and rerun["status"] == 1
    assert rerun["trigger"]["cause"] == f"Rerun from failure of run {failed}"
    assert rerun["trigger"]["cause_category"] == "rerun"
    assert rerun["git_sha"] == "a" * 40
    plain = api.post("/jobs/11111/rerun/").json()["data"]
    assert plain["trigger"]["cause"] == "Triggered via rerun API"
    assert plain["trigger"]["cause_category"] == "api"
    assert api.post("/jobs/999/rerun/").status_code == 404
    assert [r.job_id for r in sb.runs] == [33333, 33333, 11111]


# ------------------------------------------------------------------ lists


def test_list_runs_filters_and_pages(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    ids = [api.trigger(job)["id"] for job in (11111, 33333, 11111, 55555, 44444)]
    clock.advance(10)
    body = api.get("/runs/", job_definition_id=11111).json()
    assert [r["id"] for r in body["data"]] == [ids[0], ids[2]]
    assert body["extra"]["filters"]["job_definition_id"] == 11111
    assert body["extra"]["pagination"] == {"count": 2, "total_count": 2}
    assert [r["id"] for r in api.get("/runs/", project_id=67891).json()["data"]] == [ids[3]]
    assert [r["id"] for r in api.get("/runs/", status=20).json()["data"]] == [ids[1]]
    for encoded in ("[20, 3]", "20,3", "['20','3']"):
        found = api.get("/runs/", status__in=encoded).json()["data"]
        assert [r["id"] for r in found] == [ids[1], ids[4]]

    page = api.get("/runs/", order_by="-id", limit=2, offset=2).json()
    assert [r["id"] for r in page["data"]] == [ids[2], ids[1]]
    assert page["extra"]["filters"]["limit"] == 2 and page["extra"]["filters"]["offset"] == 2
    assert page["extra"]["order_by"] == "-id"
    assert page["extra"]["pagination"] == {"count": 2, "total_count": 5}
    newest = api.get("/runs/", job_definition_id=11111, order_by="-created_at", limit=1).json()
    assert [r["id"] for r in newest["data"]] == [ids[2]]
    unfinished_first = api.get("/runs/", order_by="-finished_at").json()["data"]
    assert unfinished_first[0]["id"] == ids[4]

    with_trigger = api.get("/runs/", include_related='["trigger"]', limit=1).json()["data"][0]
    assert with_trigger["trigger"]["cause"] == "test" and with_trigger["job"] is None
    for bad in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"order_by": "cause"}):
        response = api.get("/runs/", **bad)
        assert response.status_code == 400
        assert set(error_of(response)["data"]) == set(bad)
    assert api.get("/runs/", limit=100).status_code == 200


def test_projects_v3_pages(sb: Sandbox, api: Api) -> None:
    for n in range(3):
        sb.add_project(70000 + n, f"extra {n}")
    url = f"{sb.url}/api/v3/accounts/{ACCOUNT}/projects/"
    body = api.session.get(url, params={"limit": 2, "offset": 2}).json()
    assert [p["id"] for p in body["data"]] == [70000, 70001]
    assert body["extra"] == {
        "filters": {"limit": 2, "offset": 2, "account_id": ACCOUNT},
        "order_by": "id",
        "pagination": {"count": 2, "total_count": 5},
    }
    first = api.session.get(url).json()["data"][0]
    assert (first["id"], first["name"], first["state"]) == (67890, "jaffle_shop", 1)
    assert api.session.get(url, params={"limit": 500}).status_code == 400
    assert api.get("/projects/").status_code == 404  # v2 projects are not simulated


def test_jobs_list_and_get(api: Api) -> None:
    body = api.get("/jobs/", project_id=67890).json()
    assert [j["id"] for j in body["data"]] == [11111, 22222, 33333, 44444]
    assert body["extra"]["filters"]["project_id"] == 67890
    assert body["extra"]["pagination"] == {"count": 4, "total_count": 4}
    page = api.get("/jobs/", order_by="-id", limit=2, offset=1).json()
    assert [j["id"] for j in page["data"]] == [44444, 33333]
    assert page["extra"]["pagination"] == {"count": 2, "total_count": 5}
    job = api.get("/jobs/22222/").json()["data"]
    assert (job["name"], job["job_type"], job["project_id"]) == (
        "Production daily",
        "scheduled",
        67890,
    )
    assert job["execute_steps"] == ["dbt build"] and job["deactivated"] is False
    assert job["triggers"]["schedule"] is True
    assert JOB_STAMP.match(job["created_at"])
    assert api.get("/jobs/999/").status_code == 404
    assert api.get("/jobs/", limit=101).status_code == 400


# ------------------------------------------------------------------ artifacts and includes


def test_artifacts_of_a_successful_run(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    run_id = api.trigger()["id"]
    assert api.get(f"/runs/{run_id}/artifacts/").json()["data"] == []
    assert api.get(f"/runs/{run_id}/artifacts/manifest.json").status_code == 404
    clock.advance(10)
    listed = api.get(f"/runs/{run_id}/artifacts/").json()["data"]
    assert listed == ["manifest.json", "run_results.json"]
    manifest = api.get(f"/runs/{run_id}/artifacts/manifest.json").json()
    assert "status" not in manifest  # raw file, no envelope
    assert manifest["metadata"]["project_name"] == "jaffle_shop"
    assert manifest["metadata"]["env"]["DBT_CLOUD_RUN_ID"] == str(run_id)
    assert "model.jaffle_shop.orders" in manifest["nodes"]
    assert manifest["parent_map"]["model.jaffle_shop.orders"] == [
        "model.jaffle_shop.stg_orders",
        "model.jaffle_shop.stg_payments",
    ]
    results = api.get(f"/runs/{run_id}/artifacts/run_results.json").json()
    assert {r["status"] for r in results["results"]} == {"success", "pass"}
    assert api.get(f"/runs/{run_id}/artifacts/catalog.json").status_code == 404

    failed = api.trigger(33333)["id"]
    clock.advance(10)
    assert api.get(f"/runs/{failed}/artifacts/manifest.json").status_code == 404


@pytest.mark.parametrize(
    "include",
    ['["run_steps", "job"]', "run_steps,job", "['run_steps','job']", "[run_steps, job]"],
)
def test_include_related_formats(api: Api, include: str) -> None:
    run = api.run(api.trigger()["id"], include)
    assert run["job"]["id"] == 11111 and len(run["run_steps"]) == 4
    assert run["trigger"] is None and run["environment"] is None


def test_include_related_trigger_and_environment(api: Api) -> None:
    run_id = api.trigger()["id"]
    plain = api.run(run_id)
    assert (plain["job"], plain["trigger"], plain["run_steps"]) == (None, None, [])
    full = api.run(run_id, "trigger,environment")
    assert full["trigger"]["cause"] == "test" and full["environment"]["id"] == 1
    assert api.get("/runs/5/").status_code == 404


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("500", 500, "application/json"),
        ("502_html", 502, "text/html"),
        ("503", 503, "application/json"),
        ("429", 429, "application/json"),
        ("404", 404, "application/json"),
    ],
)
def test_error_faults_answer_once_and_touch_nothing(
    sb: Sandbox, api: Api, kind: str, status: int, content_type: str
) -> None:
    sb.fail(kind, method="POST", path=r"/run/$")
    assert api.get("/jobs/").status_code == 200  # other methods are untouched
    response = api.post("/jobs/11111/run/", {"cause": "x"})
    assert response.status_code == status
    assert response.headers["Content-Type"] == content_type
    assert "Retry-After" not in response.headers
    if kind == "500":
        assert response.json() == {
            "detail": "There was a server error. Please contact support at support@getdbt.com."
        }
    elif kind == "502_html":
        assert "<h1>502 Bad Gateway</h1>" in response.text
    else:
        assert error_of(response)["data"] is None
    assert sb.runs == []
    assert api.post("/jobs/11111/run/", {"cause": "x"}).status_code == 200
    assert len(sb.runs) == 1


def test_429_with_retry_after_and_repeated_faults(sb: Sandbox, api: Api) -> None:
    sb.fail("429", path=r"/jobs/", times=2, retry_after=7)
    for _ in range(2):
        response = api.get("/jobs/")
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert api.get("/jobs/").status_code == 200
    sb.fail("500", times=5)
    sb.clear_faults()
    assert api.get("/jobs/").status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        sb.fail("teapot")
    with pytest.raises(ValueError, match="bad options"):
        sb.fail("500", retry_after=1)


def test_malformed_json_fault(sb: Sandbox, api: Api) -> None:
    sb.fail("malformed_json", method="POST")
    response = api.post("/jobs/11111/run/", {"cause": "x"})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.text)
    assert len(sb.runs) == 1  # the trigger took effect, only its answer is broken


def test_slow_fault(sb: Sandbox, api: Api) -> None:
    sb.fail("slow", delay=0.3)
    started = time.monotonic()
    assert api.get("/jobs/").status_code == 200
    assert time.monotonic() - started >= 0.3
    sb.fail("slow", delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        api.session.get(f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/", timeout=0.1)


def test_drop_after_create_creates_the_run_but_loses_the_answer(sb: Sandbox, api: Api) -> None:
    sb.fail("drop_after_create", method="POST", path=r".*/run/$")
    with pytest.raises(requests.ConnectionError):
        api.post("/jobs/11111/run/", {"cause": "lost"})
    assert [r.cause for r in sb.runs] == ["lost"]
    assert api.get("/runs/").json()["extra"]["pagination"]["total_count"] == 1


def test_reset_does_nothing(sb: Sandbox, api: Api) -> None:
    sb.fail("reset", method="POST")
    with pytest.raises(requests.ConnectionError):
        api.post("/jobs/11111/run/", {"cause": "x"})
    assert sb.runs == []
    assert [r.method for r in sb.requests] == ["POST"]
    assert api.trigger()["id"] == 70403103900001


# ------------------------------------------------------------------ lifecycle and bookkeeping


def test_stop_refuses_connections_and_start_resumes(sb: Sandbox, api: Api) -> None:
    run_id = api.trigger()["id"]
    port, url = sb.port, sb.url
    sb.stop()
    with pytest.raises(requests.ConnectionError):
        api.get("/jobs/")  # also the kept-alive connection is gone
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/v2/accounts/{ACCOUNT}/jobs/", timeout=2)
    sb.stop()  # stopping twice is harmless
    sb.start()
    assert (sb.port, sb.url) == (port, url)
    assert api.run(run_id)["id"] == run_id
    assert sb.start() is sb


def test_requests_are_recorded(sb: Sandbox, api: Api) -> None:
    api.trigger(git_branch="main")
    api.get("/runs/", limit=2, include_related="trigger")
    post, listing = sb.requests
    assert (post.method, post.path) == ("POST", f"/api/v2/accounts/{ACCOUNT}/jobs/11111/run/")
    assert post.body == {"cause": "test", "git_branch": "main"} and post.authorization_ok
    assert listing.query == {"limit": ["2"], "include_related": ["trigger"]}
    assert listing.body is None


def test_concurrent_triggers_get_distinct_ids(sb: Sandbox) -> None:
    def trigger(n: int) -> int:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {TOKEN}"
            url = f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/11111/run/"
            response = session.post(url, json={"cause": f"run {n}"})
            run_id: int = response.json()["data"]["id"]
            return run_id

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(trigger, range(40)))
    assert sorted(ids) == [70403103900001 + n for n in range(40)]
    assert len(sb.requests) == 40


def test_unseeded_sandbox_and_job_validation() -> None:
    empty = Sandbox(seed=False)
    assert empty.runs == [] and empty.port == 0
    with pytest.raises(RuntimeError, match="start"):
        _ = empty.url
    with pytest.raises(ValueError, match="no project"):
        empty.add_job(1, project_id=2, name="x")
    empty.add_project(2, "p")
    with pytest.raises(ValueError, match="outcome"):
        empty.add_job(1, project_id=2, name="x", outcome="maybe")
    with pytest.raises(ValueError, match="time_scale"):
        Sandbox(time_scale=0)


def test_serve_echoes_one_line_and_stops_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    urls: list[str] = []

    def interrupt(seconds: float) -> None:
        url = re.search(r"http://\S+", lines[0])
        assert url is not None
        urls.append(url.group(0))
        headers = {"Authorization": "Token t"}
        assert requests.get(f"{urls[0]}/api/v2/accounts/12345/jobs/", headers=headers).ok
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)
    sandbox_module.serve(bind="127.0.0.1", port=0, token="t", time_scale=1.0, echo=lines.append)
    monkeypatch.undo()
    [line] = lines
    assert "account 12345" in line
    assert all(str(job) in line for job in (11111, 22222, 33333, 44444, 55555))
    with pytest.raises(requests.ConnectionError):
        requests.get(urls[0], timeout=2)


def _raw_post(sb: Sandbox, path: str, body: bytes = b'{"cause": "x"}') -> socket.socket:
    """A POST sent by hand, so a test can read the answer as it trickles in."""
    conn = socket.create_connection(("127.0.0.1", sb.port), timeout=5)
    head = (
        f"POST /api/v2/accounts/{ACCOUNT}{path} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Token {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)
    return conn


def test_drip_fault_sends_the_answer_a_byte_at_a_time_after_the_request_took_effect(
    sb: Sandbox,
) -> None:
    sb.fail("drip", method="POST", interval=0.05)
    with _raw_post(sb, "/jobs/11111/run/") as conn:
        first = conn.recv(100)
        assert len(sb.runs) == 1  # done before the first byte of the answer
        # a byte every 0.05 s: what arrived so far is a few bytes, not the whole status line
        assert first and len(first) < 10 and b"HTTP/1.1 200 OK".startswith(first)
    sb.fail("drip", method="POST", interval=0.05, body_only=1)
    with _raw_post(sb, "/jobs/11111/run/") as conn:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(4096)
            assert chunk, "the server hung up before the end of the headers"
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: " in head
        assert len(body) < 10  # the headers at once, the body a byte at a time
        assert (body or conn.recv(100))[:1] == b"{"
    assert len(sb.runs) == 2
    assert api_get_ok(sb)  # a client that hung up mid-drip leaves the server serving


def api_get_ok(sb: Sandbox) -> bool:
    return Api(sb.url).get("/jobs/").status_code == 200


def test_redirect_fault_points_elsewhere_and_does_nothing(sb: Sandbox, api: Api) -> None:
    sb.fail("redirect", method="POST", port=1234)
    response = api.session.post(
        f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/11111/run/?a=1",
        json={"cause": "x"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"http://127.0.0.1:1234/api/v2/accounts/{ACCOUNT}/jobs/11111/run/?a=1"
    )
    sb.fail("redirect", method="GET", status=307)
    response = api.session.get(f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/", allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/"
    sb.fail("redirect", bare=1)
    response = api.session.get(f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs/", allow_redirects=False)
    assert response.status_code == 302 and "Location" not in response.headers
    assert sb.runs == []


@pytest.mark.parametrize("odd", [2**64 + 5, -5, True, "12"])
def test_odd_id_fault_rewrites_the_ids_of_the_answer(sb: Sandbox, api: Api, odd: object) -> None:
    sb.fail("odd_id", method="POST", id=odd)
    response = api.post("/jobs/11111/run/", {"cause": "x"})
    assert response.status_code == 200 and response.json()["data"]["id"] == odd
    [run] = sb.runs
    assert run.id == FIRST_RUN_ID  # the run itself is untouched
    sb.fail("odd_id", method="GET", id=odd)
    assert [item["id"] for item in api.get("/runs/").json()["data"]] == [odd]
    assert api.get("/runs/").json()["data"][0]["id"] == run.id


def test_500_fault_with_a_message(sb: Sandbox, api: Api) -> None:
    sb.fail("500", message="m" * 400)
    response = api.get("/jobs/")
    assert response.status_code == 500 and response.json() == {"detail": "m" * 400}


# ------------------------------------------------------------------ routes as dbt Cloud treats them


def test_slashless_get_is_redirected_permanently_with_its_query(sb: Sandbox, api: Api) -> None:
    url = f"{sb.url}/api/v2/accounts/{ACCOUNT}/jobs"
    bare = requests.get(url, params={"project_id": 67891}, allow_redirects=False)
    assert bare.status_code == 301  # before authentication, as Django's middleware does
    assert bare.headers["Location"] == f"/api/v2/accounts/{ACCOUNT}/jobs/?project_id=67891"
    followed = api.session.get(url, params={"project_id": 67891})
    assert followed.status_code == 200 and [r.status_code for r in followed.history] == [301]
    assert [job["id"] for job in followed.json()["data"]] == [55555]
    run_id = api.trigger()["id"]
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/artifacts", "", "/users"):
        assert api.session.get(f"{sb.url}/api/v2/accounts/{ACCOUNT}{path}").status_code == 200
    v3 = api.session.get(f"{sb.url}/api/v3/accounts/{ACCOUNT}/projects/67890")
    assert v3.json()["data"]["name"] == "jaffle_shop"
    assert api.session.get(f"{sb.url}/api/v3/accounts").json()["data"][0]["id"] == ACCOUNT


def test_slashless_post_ends_as_the_reference_shows(sb: Sandbox, api: Api) -> None:
    run_id = api.trigger(44444)["id"]
    response = api.session.post(f"{sb.url}/api/v2/accounts/{ACCOUNT}/runs/{run_id}/cancel")
    assert [r.status_code for r in response.history] == [301]
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}
    [post, get] = sb.requests[-2:]
    assert (post.method, post.path.rsplit("/", 1)[-1]) == ("POST", "cancel")
    assert (get.method, get.path.endswith("/cancel/")) == ("GET", True)
    assert sb.run_status(run_id) == 1  # nothing was cancelled
    reference = REFERENCE / "responses" / "errors-from-issues" / "405_missing_trailing_slash.json"
    if reference.exists():
        assert response.json() == json.loads(reference.read_text())
    unknown = api.session.post(f"{sb.url}/api/v2/accounts/{ACCOUNT}/nothing")
    assert (unknown.status_code, unknown.history) == (404, [])


def test_one_path_answers_several_methods(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    failed, fine = api.trigger(33333)["id"], api.trigger(11111)["id"]
    clock.advance(10)
    details = api.get(f"/runs/{failed}/retry/")
    assert details.json()["data"] == {
        "failed_step": "Invoke dbt with `dbt build`",
        "skipped_steps": [],
    }
    retried = api.post(f"/runs/{failed}/retry/").json()["data"]
    assert retried["job_definition_id"] == 33333 and retried["status"] == 1
    assert retried["trigger"]["cause"] == f"Retry of run {failed}"
    for method in ("PUT", "DELETE"):
        response = api.session.request(
            method, f"{api.url}/api/v2/accounts/{ACCOUNT}/runs/{failed}/retry/"
        )
        assert response.status_code == 405
        assert response.json() == {"detail": f'Method "{method}" not allowed.'}
    for method in ("GET", "POST"):
        response = api.session.request(
            method, f"{api.url}/api/v2/accounts/{ACCOUNT}/runs/{fine}/retry/"
        )
        assert (
            response.status_code == 400 and "error" in error_of(response)["status"]["user_message"]
        )
    assert len(sb.runs) == 3


# ------------------------------------------------------------------ accounts, projects, users


def v3(api: Api, path: str, **params: str | int) -> requests.Response:
    return api.session.get(f"{api.url}/api/v3/accounts/{ACCOUNT}{path}", params=params)


def test_accounts_list_and_detail(sb: Sandbox, api: Api) -> None:
    for version in ("v2", "v3"):
        body = api.session.get(f"{sb.url}/api/{version}/accounts/").json()
        [account] = body["data"]
        assert (account["id"], account["name"], account["state"]) == (
            ACCOUNT,
            "DataChonk Sandbox",
            1,
        )
        assert body["extra"]["pagination"] == {"count": 1, "total_count": 1}
    detail = api.get("/").json()["data"]
    assert detail["id"] == ACCOUNT and detail["locked"] is False and detail["run_slots"] >= 1
    missing = api.session.get(f"{sb.url}/api/v2/accounts/999/")
    assert missing.status_code == 404 and error_of(missing)["data"] is None
    assert requests.get(f"{sb.url}/api/v2/accounts/").status_code == 401


def test_project_detail(sb: Sandbox, api: Api) -> None:
    sb.set_repository(67890, "git@github.com:acme/jaffle_shop.git")
    project = v3(api, "/projects/67890/").json()["data"]
    assert (project["id"], project["name"], project["account_id"]) == (
        67890,
        "jaffle_shop",
        ACCOUNT,
    )
    assert "repository" not in project
    related = v3(api, "/projects/67890/", include_related="repository").json()["data"]
    assert related["repository"]["remote_url"] == "git@github.com:acme/jaffle_shop.git"
    missing = v3(api, "/projects/999/")
    assert missing.status_code == 404
    assert error_of(missing)["status"]["user_message"] == "Project not found."
    sb.set_tokens({TOKEN: "job_runner"})
    assert v3(api, "/projects/67890/").status_code == 403


def test_environments_of_the_account_and_of_a_project(sb: Sandbox, api: Api) -> None:
    sb.add_job(66666, project_id=67891, name="Marketing staging", environment_id=7)
    body = api.get("/environments/").json()
    assert [(e["id"], e["project_id"]) for e in body["data"]] == [
        (1, 67890),
        (1, 67891),
        (7, 67891),
    ]
    assert body["extra"]["pagination"] == {"count": 3, "total_count": 3}
    of_marketing = api.get("/environments/", project_id__in="[67891]").json()["data"]
    assert [e["id"] for e in of_marketing] == [1, 7]
    assert api.get("/environments/7/").json()["data"]["deployment_type"] == "production"
    listed = v3(api, "/projects/67890/environments/").json()
    assert [(e["id"], e["name"]) for e in listed["data"]] == [(1, "Production")]
    assert listed["extra"]["filters"]["project_id"] == 67890
    jobs = api.get("/jobs/", project_id=67890).json()["data"]
    assert {job["environment_id"] for job in jobs} == {e["id"] for e in listed["data"]}
    detail = v3(api, "/projects/67891/environments/7/").json()["data"]
    assert (detail["id"], detail["project_id"], detail["type"]) == (7, 67891, "deployment")
    for path in (
        "/projects/67890/environments/7/",
        "/projects/999/environments/",
        "/environments/8/",
    ):
        response = v3(api, path) if path.startswith("/projects") else api.get(path)
        assert response.status_code == 404 and error_of(response)["data"] is None


def test_users_of_the_account(api: Api) -> None:
    for response in (api.get("/users/"), v3(api, "/users/")):
        [user] = response.json()["data"]
        assert (user["id"], user["email"], user["is_active"]) == (
            1001,
            "owner@sandbox.example.com",
            True,
        )
        assert user["permissions"][0]["account_id"] == ACCOUNT
    detail = v3(api, "/users/1001/").json()["data"]
    assert detail["fullname"] == "Sandbox Owner" and detail["license"] == "developer"
    assert v3(api, "/users/5/").status_code == 404


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"project_id__in": "[67890]"}, [11111, 22222, 33333, 44444]),  # as dbtc sends it
        ({"project_id__in": "67891,67890"}, [11111, 22222, 33333, 44444, 55555]),
        ({"project_id__in": "[67891]", "environment_id": 1}, [55555]),
        ({"environment_id": 2}, []),
        ({"state": "deleted"}, []),
        ({"state": 1, "order_by": "-id", "limit": 2}, [55555, 44444]),
        ({"nonsense": "x"}, [11111, 22222, 33333, 44444, 55555]),  # ignored, as the API does
        ({"name__icontains": "NIGHT"}, [33333]),
    ],
)
def test_jobs_filters(api: Api, params: dict[str, str | int], ids: list[int]) -> None:
    body = api.get("/jobs/", **params).json()
    assert [job["id"] for job in body["data"]] == ids
    assert "nonsense" not in body["extra"]["filters"]
    if "project_id__in" in params:
        sent = [int(n) for n in re.findall(r"\d+", str(params["project_id__in"]))]
        assert body["extra"]["filters"]["project_id__in"] == sent


def test_runs_filters(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    sb.add_job(66666, project_id=67891, name="Other env", environment_id=7)
    ids = [api.trigger(job)["id"] for job in (11111, 33333, 55555, 66666)]
    clock.advance(10)
    in_marketing = api.get("/runs/", project_id__in="[67891]").json()
    assert [r["id"] for r in in_marketing["data"]] == ids[2:]
    assert in_marketing["extra"]["filters"]["project_id__in"] == [67891]
    assert [r["id"] for r in api.get("/runs/", environment_id=7).json()["data"]] == [ids[3]]
    assert [r["id"] for r in api.get("/runs/", state="active").json()["data"]] == ids
    assert api.get("/runs/", state="deleted").json()["data"] == []
    page = api.get("/runs/", status__in="[10]", order_by="-finished_at", limit=1, offset=1).json()
    assert page["extra"]["pagination"] == {"count": 1, "total_count": 3}
    assert page["data"][0]["status"] == 10
    listed = api.get("/runs/", include_related="job,environment", job_definition_id=66666).json()
    assert listed["data"][0]["environment"]["id"] == 7 and listed["data"][0]["job"]["id"] == 66666


@pytest.mark.parametrize(
    ("path", "params", "field", "message"),
    [
        ("/jobs/", {"project_id__in": "[abc]"}, "project_id__in", "Enter a number."),
        ("/runs/", {"project_id__in": "1,x"}, "project_id__in", "Enter a number."),
        ("/runs/", {"environment_id": "x"}, "environment_id", "A valid integer is required."),
        ("/jobs/", {"state": "gone"}, "state", "Select a valid choice."),
        ("/environments/", {"order_by": "name"}, "order_by", "Invalid ordering field."),
    ],
)
def test_invalid_filters_give_the_api_400(
    api: Api, path: str, params: dict[str, str], field: str, message: str
) -> None:
    response = api.get(path, **params)
    assert response.status_code == 400
    assert list(error_of(response)["data"]) == [field]
    assert error_of(response)["data"][field][0].startswith(message)


def test_not_found_shapes(sb: Sandbox, api: Api) -> None:
    """An unknown URL is Django's own 404; an unknown object is the API's envelope."""
    for response in (api.get("/nothing/"), api.session.get(f"{sb.url}/api/v4/x/")):
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."})
    for path, message in (("/jobs/1/", "Job not found."), ("/runs/1/", "Run not found.")):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {
            "status": {
                "code": 404,
                "is_success": False,
                "user_message": message,
                "developer_message": "",
            },
            "data": None,
        }


def test_run_timing_of_a_project_run(sb: Sandbox, api: Api, clock: FakeClock) -> None:
    """dbtc's `get_run_timing_details`: a v3 path the published specs lack."""
    run_id = api.trigger()["id"]
    clock.advance(10)
    timing = v3(api, f"/projects/67890/runs/{run_id}/timing/").json()["data"]
    assert (timing["id"], timing["status"], timing["run_duration"]) == (run_id, 10, "00:00:03")
    assert [step["name"] for step in timing["steps"]][-1] == "Invoke dbt with `dbt build`"
    assert all(RUN_STAMP.match(step["finished_at"]) for step in timing["steps"])
    assert v3(api, f"/projects/67891/runs/{run_id}/timing/").status_code == 404
