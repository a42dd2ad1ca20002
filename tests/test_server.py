"""The local API, served for real by uvicorn on a free loopback port, against the simulator."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from datachonk_hooks.account.workspace import Workspace
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import TOKEN, commit_files, config_yaml, git, publish

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from datachonk_hooks.api.app import create_app  # noqa: E402  (needs the server extra)

API_KEY = "test-api-key-0123456789abcdef"
ENDPOINTS = [
    ("POST", "/api/dbt-cloud/connect"),
    ("GET", "/api/dbt-cloud/status"),
    ("GET", "/api/dbt-cloud/projects/67890/jobs"),
    ("POST", "/api/dbt-cloud/trigger-run"),
    ("GET", "/api/dbt-cloud/runs/1"),
    ("GET", "/openapi.json"),
    ("GET", "/no/such/page"),
]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Api:
    """requests against the served API; every answer is checked for the dbt Cloud token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def call(
        self, method: str, path: str, *, key: str | None = API_KEY, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        response = self.session.request(
            method, self.url + path, headers=headers, timeout=30, **kwargs
        )
        assert_no_token(response)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)


def assert_no_token(response: requests.Response) -> None:
    assert TOKEN not in response.text
    assert TOKEN not in json.dumps(dict(response.headers))
    assert "Traceback" not in response.text


def error_of(response: requests.Response, status: int) -> dict[str, Any]:
    """The `error` object of an error answer, after checking its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    return dict(body["error"])


@pytest.fixture
def fast_sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, time_scale=50) as server:
        yield server


@pytest.fixture
def repo(dbt_repo: Path, fast_sandbox: Sandbox) -> Path:
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml(fast_sandbox.url)}, "Configure dbt Cloud")
    commit_files(dbt_repo, {"models/orders.sql": "select 1"}, "Add orders model")
    publish(dbt_repo)
    return dbt_repo


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("DBT_CLOUD_API_TOKEN", TOKEN)
    return dict(os.environ)


@pytest.fixture
def make_api(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> Iterator[Callable[[Path], Api]]:
    """Serve the API for a repository; afterwards, no log line may carry the token."""
    caplog.set_level(logging.DEBUG)
    with ExitStack() as stack:

        def start(repo: Path) -> Api:
            app = create_app(Workspace(env, repo), api_key=API_KEY)
            return Api(stack.enter_context(serving(app)))

        yield start
    assert caplog.records, "the server's logs were not captured"
    assert TOKEN not in caplog.text
    assert "Traceback" not in caplog.text


@pytest.fixture
def api(repo: Path, make_api: Callable[[Path], Api]) -> Api:
    return make_api(repo)


# ----------------------------------------------------------------------------- the schema


def test_openapi_describes_every_endpoint_and_the_error_shape(api: Api) -> None:
    schema = api.get("/openapi.json").json()
    operations = {
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    }
    assert operations == {
        ("POST", "/api/dbt-cloud/connect"),
        ("GET", "/api/dbt-cloud/status"),
        ("GET", "/api/dbt-cloud/projects/{project_id}/jobs"),
        ("POST", "/api/dbt-cloud/trigger-run"),
        ("GET", "/api/dbt-cloud/runs/{run_id}"),
    }
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for item in schema["paths"].values():
        for operation in item.values():
            assert operation["security"] == [{"HTTPBearer": []}]
            for status in ("401", "403", "422", "429", "502", "504"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == error_ref
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# ----------------------------------------------------------------------------- the guard


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", f"Token {API_KEY}", f"Bearer {API_KEY}x", "Bearer ", API_KEY],
)
def test_every_request_needs_the_key(
    api: Api, fast_sandbox: Sandbox, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in ENDPOINTS:
        response = api.call(method, path, key=None, headers=headers, json={})
        error = error_of(response, 401)
        assert error["code"] == "unauthorized"
        assert "Bearer" in error["message"]
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert fast_sandbox.requests == []  # refused before anything ran


def test_the_right_key_is_accepted_with_any_case_of_bearer(api: Api) -> None:
    response = api.get(
        "/api/dbt-cloud/status", key=None, headers={"Authorization": f"bearer {API_KEY}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another local port is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_site_browser_requests_are_refused(
    api: Api, fast_sandbox: Sandbox, headers: dict[str, str]
) -> None:
    for method, path in (("GET", "/api/dbt-cloud/status"), ("POST", "/api/dbt-cloud/trigger-run")):
        response = api.call(method, path, headers=headers, json={})
        assert error_of(response, 403)["code"] == "forbidden_origin"
        assert "access-control-allow-origin" not in {h.lower() for h in response.headers}
    assert fast_sandbox.runs == []


def test_a_cors_preflight_gets_no_permission(api: Api) -> None:
    response = api.call(
        "OPTIONS",
        "/api/dbt-cloud/trigger-run",
        key=None,
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 403
    assert not any(h.lower().startswith("access-control-") for h in response.headers)


def test_same_origin_and_non_browser_requests_pass(api: Api) -> None:
    own = {"Origin": api.url, "Sec-Fetch-Site": "same-origin"}
    assert api.get("/api/dbt-cloud/status", headers=own).status_code == 200
    assert api.get("/api/dbt-cloud/status", headers={"Sec-Fetch-Site": "none"}).status_code == 200


def test_dns_rebinding_host_is_refused(api: Api) -> None:
    port = api.url.rsplit(":", 1)[1]
    response = api.get("/api/dbt-cloud/status", headers={"Host": f"evil.example:{port}"})
    assert error_of(response, 403)["code"] == "forbidden_host"
    ok = api.get("/api/dbt-cloud/status", headers={"Host": f"localhost:{port}"})
    assert ok.status_code == 200


def test_unknown_paths_and_methods_get_the_error_shape(api: Api) -> None:
    assert error_of(api.get("/api/dbt-cloud/nothing"), 404)["code"] == "not_found"
    response = api.call("DELETE", "/api/dbt-cloud/status")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET"


# ----------------------------------------------------------------------------- endpoints


def test_status_lists_the_projects(api: Api, repo: Path, fast_sandbox: Sandbox) -> None:
    response = api.get("/api/dbt-cloud/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {
        "host": fast_sandbox.url,
        "account_id": 12345,
        "project_id": 67890,
        "job_id": 11111,
        "config_file": str((repo / "datachonk.yaml").resolve()),
        "token_source": "environment variable DBT_CLOUD_API_TOKEN",
        "accepted": True,
        "problem": None,
        "projects": [{"id": 67890, "name": "jaffle_shop"}, {"id": 67891, "name": "marketing"}],
    }


def test_status_without_a_configuration_is_not_connected(
    dbt_repo: Path, make_api: Callable[[Path], Api], fast_sandbox: Sandbox
) -> None:
    body = make_api(dbt_repo).get("/api/dbt-cloud/status").json()
    assert (body["accepted"], body["account_id"], body["projects"]) == (False, None, None)
    assert body["problem"] == "no account configured; run `datachonk-hook connect`"
    assert fast_sandbox.requests == []


def test_status_without_a_token_is_not_connected(
    repo: Path, make_api: Callable[[Path], Api], env: dict[str, str]
) -> None:
    del env["DBT_CLOUD_API_TOKEN"]
    body = make_api(repo).get("/api/dbt-cloud/status").json()
    assert (body["accepted"], body["token_source"], body["account_id"]) == (False, None, 12345)
    assert body["problem"].startswith("no dbt Cloud API token")


@pytest.mark.parametrize(
    ("tokens", "accepted", "problem"),
    [
        ({}, False, "rejected the API token (HTTP 401"),
        ({TOKEN: "job_runner"}, True, "this token may not list projects"),
    ],
)
def test_status_reports_what_dbt_cloud_said(
    api: Api, fast_sandbox: Sandbox, tokens: dict[str, str], accepted: bool, problem: str
) -> None:
    fast_sandbox.set_tokens(tokens)
    response = api.get("/api/dbt-cloud/status")
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["projects"]) == (accepted, None)
    assert problem in body["problem"]


def test_a_broken_datachonk_yaml_is_a_config_error(
    repo: Path, make_api: Callable[[Path], Api]
) -> None:
    (repo / "datachonk.yaml").write_text("deploy:\n  dbt_cloud:\n    account_id: twelve\n")
    api = make_api(repo)
    for method, path in (("GET", "/api/dbt-cloud/status"), ("POST", "/api/dbt-cloud/trigger-run")):
        error = error_of(api.call(method, path), 400)
        assert error["code"] == "config_error"
        assert "datachonk.yaml:3:17" in error["message"]


def test_connect_checks_and_saves_like_the_cli(
    dbt_repo: Path, make_api: Callable[[Path], Api], env: dict[str, str], fast_sandbox: Sandbox
) -> None:
    del env["DBT_CLOUD_API_TOKEN"]  # from now on the stored token is the one used
    publish(dbt_repo)
    api = make_api(dbt_repo)
    body = {"account_id": 12345, "token": TOKEN, "host": fast_sandbox.url, "project_id": 67890}
    response = api.post("/api/dbt-cloud/connect", json={**body, "job_id": 22222})
    assert response.status_code == 200, response.text
    config = dbt_repo / "datachonk.yaml"
    credentials = Path(env["XDG_CONFIG_HOME"]) / "datachonk-hooks" / "credentials.json"
    connected = response.json()
    assert connected.pop("job")["id"] == 22222
    assert connected == {
        "host": fast_sandbox.url,
        "account_id": 12345,
        "project": {"id": 67890, "name": "jaffle_shop"},
        "projects": [{"id": 67890, "name": "jaffle_shop"}, {"id": 67891, "name": "marketing"}],
        "config_file": str(config.resolve()),
        "token_stored_in": f"the credentials file {credentials} (mode 0600)",
    }
    assert "account_id: 12345" in config.read_text() and TOKEN not in config.read_text()
    assert credentials.stat().st_mode & 0o777 == 0o600

    status = api.get("/api/dbt-cloud/status").json()
    assert (status["accepted"], status["job_id"]) == (True, 22222)
    assert status["token_source"] == f"credentials file {credentials}"
    triggered = api.post("/api/dbt-cloud/trigger-run")
    assert triggered.status_code == 200, triggered.text
    assert fast_sandbox.runs[0].job_id == 22222


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"token": "dbtc_wrong_token_123456"}, 401, "dbt_cloud_unauthorized"),
        ({"account_id": 99999}, 404, "dbt_cloud_not_found"),
        ({"project_id": 424242}, 400, "config_error"),
    ],
)
def test_connect_refused_saves_nothing(
    dbt_repo: Path,
    make_api: Callable[[Path], Api],
    env: dict[str, str],
    fast_sandbox: Sandbox,
    change: dict[str, object],
    status: int,
    code: str,
) -> None:
    body = {"account_id": 12345, "token": TOKEN, "host": fast_sandbox.url, **change}
    error = error_of(make_api(dbt_repo).post("/api/dbt-cloud/connect", json=body), status)
    assert error["code"] == code
    assert error["message"].endswith("Nothing was saved.")
    assert not (dbt_repo / "datachonk.yaml").exists()
    assert not (Path(env["XDG_CONFIG_HOME"]) / "datachonk-hooks").exists()


NO_HOST_CONFIG = config_yaml("x").replace("    host: x\n", "")
NO_HOST = (
    "no dbt Cloud host: set deploy.dbt_cloud.host in datachonk.yaml (or DBT_CLOUD_HOST) to"
    " your account's access URL, shown in dbt Cloud under Account settings; it looks like"
    " https://ab123.us1.dbt.com"
)


def test_without_a_host_the_api_sends_nothing_and_says_where_to_find_it(
    dbt_repo: Path, make_api: Callable[[Path], Api], env: dict[str, str], fast_sandbox: Sandbox
) -> None:
    """No default host (cloud.getdbt.com stopped serving API clients): trigger-run and
    the other calls to dbt Cloud are config errors with the one line, connect needs a host
    in the body or the file, and status reports it."""
    commit_files(dbt_repo, {"datachonk.yaml": NO_HOST_CONFIG}, "Configure, no host")
    publish(dbt_repo)
    api = make_api(dbt_repo)
    for method, path in (
        ("POST", "/api/dbt-cloud/trigger-run"),
        ("GET", "/api/dbt-cloud/projects/67890/jobs"),
        ("GET", "/api/dbt-cloud/runs/1"),
    ):
        error = error_of(api.call(method, path), 400)
        assert error == {"code": "config_error", "message": NO_HOST}, path
    status = api.get("/api/dbt-cloud/status").json()
    assert (status["host"], status["accepted"], status["problem"]) == (None, False, NO_HOST)

    error = error_of(
        api.post("/api/dbt-cloud/connect", json={"account_id": 12345, "token": TOKEN}), 400
    )
    assert error["code"] == "config_error"
    connect_line = NO_HOST.replace("host: set", "host: pass the host, or set")
    assert error["message"] == connect_line.replace("DBT_CLOUD_HOST) to", "DBT_CLOUD_HOST), to")
    assert (dbt_repo / "datachonk.yaml").read_text() == NO_HOST_CONFIG
    assert not (Path(env["XDG_CONFIG_HOME"]) / "datachonk-hooks").exists()
    assert fast_sandbox.requests == []


def test_connect_without_a_host_in_the_body_keeps_the_configured_one(
    repo: Path, make_api: Callable[[Path], Api], fast_sandbox: Sandbox
) -> None:
    response = make_api(repo).post(
        "/api/dbt-cloud/connect", json={"account_id": 12345, "token": TOKEN}
    )
    assert response.status_code == 200, response.text
    assert response.json()["host"] == fast_sandbox.url


def test_jobs_of_a_project_with_their_latest_runs(api: Api) -> None:
    run = api.post("/api/dbt-cloud/trigger-run").json()["run"]
    response = api.get("/api/dbt-cloud/projects/67890/jobs")
    assert response.status_code == 200
    body = response.json()
    assert body["project_id"] == 67890
    assert [(job["id"], job["name"]) for job in body["jobs"]] == [
        (11111, "DataChonk CI"),
        (22222, "Production daily"),
        (33333, "Nightly (fails)"),
        (44444, "Long running"),
    ]
    first = body["jobs"][0]
    last_run = first.pop("last_run")
    assert first == {
        "id": 11111,
        "name": "DataChonk CI",
        "project_id": 67890,
        "environment_id": 1,
        "job_type": "other",
        "active": True,
        "triggers": [],
    }
    assert (last_run["id"], last_run["href"]) == (run["id"], run["href"])
    assert body["jobs"][1]["last_run"] is None
    assert api.get("/api/dbt-cloud/projects/67891/jobs").json()["jobs"][0]["id"] == 55555


def test_trigger_run_refuses_a_commit_origin_does_not_have(
    api: Api, repo: Path, fast_sandbox: Sandbox
) -> None:
    head = commit_files(repo, {"models/more.sql": "select 3"}, "Not pushed yet")
    refused = api.post("/api/dbt-cloud/trigger-run", json={})
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "commit_not_pushed",
        "message": f"{head[:7]} is not on origin yet: push it first (`datachonk push"
        ' --trigger-dbt-run`), or send "allow_unpushed": true',
    }
    assert fast_sandbox.runs == []
    allowed = api.post("/api/dbt-cloud/trigger-run", json={"allow_unpushed": True})
    assert allowed.status_code == 200, allowed.text
    assert [run.git_sha for run in fast_sandbox.runs] == [head]


def test_trigger_run_builds_head_once_unless_forced(
    api: Api, repo: Path, fast_sandbox: Sandbox
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    first = api.post("/api/dbt-cloud/trigger-run", json={})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["triggered"] is True
    run = body["run"]
    assert (run["job_id"], run["git_sha"], run["git_branch"]) == (11111, head, "main")
    assert run["href"].endswith(f"/runs/{run['id']}/")
    [sent] = fast_sandbox.runs
    assert (sent.id, sent.cause, sent.git_sha) == (run["id"], "Add orders model", head)

    again = api.post("/api/dbt-cloud/trigger-run")  # no body at all is fine too
    assert again.status_code == 200, again.text
    assert again.json()["triggered"] is False
    assert again.json()["run"]["id"] == run["id"]
    assert len(fast_sandbox.runs) == 1

    forced = api.post("/api/dbt-cloud/trigger-run", json={"force": True})
    assert forced.json()["triggered"] is True
    assert forced.json()["run"]["id"] != run["id"]
    assert len(fast_sandbox.runs) == 2


def test_a_repeated_trigger_run_answers_the_existing_run_whole(
    api: Api, repo: Path, fast_sandbox: Sandbox
) -> None:
    """The repeat is answered from the ledger's run id, but with everything a first answer
    has: its cause and job name too (they used to come back null)."""
    first = api.post("/api/dbt-cloud/trigger-run", json={"cause": "From my editor"}).json()["run"]
    assert (first["cause"], first["job_name"]) == ("From my editor", "DataChonk CI")
    assert first["status_description"] == "Queued (waiting for an available runner)"

    again = api.post("/api/dbt-cloud/trigger-run", json={"cause": "Another cause"})
    assert again.status_code == 200, again.text
    assert again.json()["triggered"] is False
    run = again.json()["run"]
    same = ("id", "job_id", "job_name", "git_sha", "git_branch", "cause", "href", "created_at")
    assert {key: run[key] for key in same} == {key: first[key] for key in same}
    assert run["cause"] == "From my editor"  # the run's own, not this request's
    assert run["account_id"] == 12345 and run["project_id"] == 67890
    assert run["status_description"].startswith(run["status_humanized"])
    assert len(fast_sandbox.runs) == 1


def test_a_repeated_trigger_run_with_dbt_cloud_down_answers_from_the_ledger(
    api: Api, repo: Path, fast_sandbox: Sandbox
) -> None:
    first = api.post("/api/dbt-cloud/trigger-run").json()["run"]
    fast_sandbox.stop()
    again = api.post("/api/dbt-cloud/trigger-run")
    assert again.status_code == 200, again.text
    assert again.json()["triggered"] is False
    run = again.json()["run"]
    kept = ("id", "account_id", "job_id", "git_sha", "git_branch", "cause", "href")
    assert {key: run[key] for key in kept} == {key: first[key] for key in kept}
    assert run["cause"] == "Add orders model"
    assert (run["status"], run["status_description"]) == (
        1,
        "Queued (waiting for an available runner)",
    )  # the last status the ledger saw
    assert run["job_name"] is None and run["steps"] == []  # dbt Cloud's alone
    forced = api.post("/api/dbt-cloud/trigger-run", json={"force": True})
    assert error_of(forced, 504)["code"] == "dbt_cloud_unreachable"  # a new run needs dbt Cloud


def test_trigger_run_with_every_field(api: Api, repo: Path, fast_sandbox: Sandbox) -> None:
    older = git(repo, "rev-parse", "HEAD~1")
    body = {
        "job_id": 22222,
        "cause": "From my editor\nsecond line",
        "git_sha": older[:10],
        "git_branch": "feature/x",
        "steps_override": ["dbt build --select orders+"],
        "force": False,
    }
    response = api.post("/api/dbt-cloud/trigger-run", json=body)
    assert response.status_code == 200, response.text
    [sent] = fast_sandbox.runs
    assert (sent.job_id, sent.git_sha, sent.git_branch) == (22222, older, "feature/x")
    assert sent.cause == "From my editor second line"
    assert sent.steps_override == ("dbt build --select orders+",)
    assert response.json()["run"]["git_branch"] == "feature/x"


def test_trigger_run_follows_the_branch_routes(
    repo: Path, make_api: Callable[[Path], Api], fast_sandbox: Sandbox
) -> None:
    routes = "    jobs:\n      - branch: release/*\n        job_id: 22222\n"
    commit_files(repo, {"datachonk.yaml": config_yaml(fast_sandbox.url, extra=routes)}, "Route")
    git(repo, "branch", "release/1")
    publish(repo)
    response = make_api(repo).post("/api/dbt-cloud/trigger-run", json={"git_branch": "release/1"})
    assert response.status_code == 200, response.text
    [sent] = fast_sandbox.runs
    assert (sent.job_id, sent.git_branch) == (22222, "release/1")
    assert sent.git_sha == git(repo, "rev-parse", "release/1")


TEAM_ROUTES = """\
    jobs:
      - branch: "wip/*"
        job_id: null
      - branch: "feature/*"
        job_id: 22222
        schema_override: "dbt_{branch}"
"""


@pytest.mark.parametrize(
    ("checkout", "body", "job_id", "branch", "schema"),
    [
        (
            None,
            {"git_branch": "feature/Add-Orders"},
            22222,
            "feature/Add-Orders",
            "dbt_feature_add_orders",
        ),
        ("feature/Add-Orders", {}, 22222, "feature/Add-Orders", "dbt_feature_add_orders"),
        # an explicit job is the caller's own, not the route's: no schema, like `run --job-id`
        (
            None,
            {"git_branch": "feature/Add-Orders", "job_id": 33333},
            33333,
            "feature/Add-Orders",
            None,
        ),
        # asking by hand is explicit: a never-on-push route falls back to job_id, like `run`
        (None, {"git_branch": "wip/try"}, 11111, "wip/try", None),
        # a bare sha names no branch, so no route applies
        ("feature/Add-Orders", {"git_sha": "HEAD"}, 11111, None, None),
    ],
)
def test_trigger_run_chooses_job_and_schema_like_run(
    repo: Path,
    make_api: Callable[[Path], Api],
    fast_sandbox: Sandbox,
    checkout: str | None,
    body: dict[str, object],
    job_id: int,
    branch: str | None,
    schema: str | None,
) -> None:
    commit_files(repo, {"datachonk.yaml": config_yaml(fast_sandbox.url, extra=TEAM_ROUTES)}, "Team")
    git(repo, "branch", "feature/Add-Orders")
    git(repo, "branch", "wip/try")
    publish(repo)
    if checkout is not None:
        git(repo, "checkout", "--quiet", checkout)
    if body.get("git_sha") == "HEAD":
        body = {**body, "git_sha": git(repo, "rev-parse", "HEAD")}
    response = make_api(repo).post("/api/dbt-cloud/trigger-run", json=body)
    assert response.status_code == 200, response.text
    [sent] = fast_sandbox.runs
    assert (sent.job_id, sent.git_branch, sent.schema_override) == (job_id, branch, schema)
    assert sent.git_sha == git(repo, "rev-parse", "HEAD")
    assert response.json()["run"]["git_branch"] == branch


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"git_sha": "0123456789abcdef"}, "git_sha"),
        ({"git_branch": "no-such-branch"}, "git_branch"),
    ],
)
def test_trigger_run_for_an_unknown_commit(
    api: Api, fast_sandbox: Sandbox, body: dict[str, str], field: str
) -> None:
    error = error_of(api.post("/api/dbt-cloud/trigger-run", json=body), 422)
    assert error["code"] == "git_error"
    assert error["message"].startswith(f"{field}: ")
    assert fast_sandbox.requests == []


def test_get_run_follows_a_run_to_its_end(api: Api) -> None:
    triggered = api.post("/api/dbt-cloud/trigger-run", json={}).json()["run"]
    deadline = time.monotonic() + 20
    while True:
        response = api.get(f"/api/dbt-cloud/runs/{triggered['id']}")
        assert response.status_code == 200, response.text
        run = response.json()
        if run["is_complete"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (run["id"], run["status"], run["status_humanized"]) == (triggered["id"], 10, "Success")
    assert (run["status_hint"], run["status_description"]) == (
        "models are live",
        "Success (models are live)",
    )
    assert triggered["status_hint"] == "waiting for an available runner"
    assert run["is_complete"] is True
    assert run["href"] == triggered["href"]
    assert run["steps"][0] == {"index": 1, "name": "Clone Git Repository", "status": "Success"}
    assert run["steps"][-1]["name"] == "Invoke dbt with `dbt build`"


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("path", "body", "field", "kind"),
    [
        ("/api/dbt-cloud/trigger-run", {"job_id": "11111"}, "job_id", "int_type"),
        ("/api/dbt-cloud/trigger-run", {"job_id": 0}, "job_id", "greater_than_equal"),
        ("/api/dbt-cloud/trigger-run", {"job_id": 2**63}, "job_id", "less_than_equal"),
        ("/api/dbt-cloud/trigger-run", {"force": "yes"}, "force", "bool_type"),
        ("/api/dbt-cloud/trigger-run", {"cause": ""}, "cause", "string_too_short"),
        ("/api/dbt-cloud/trigger-run", {"cause": " \n\t"}, "cause", "value_error"),
        ("/api/dbt-cloud/trigger-run", {"git_sha": "HEAD~1"}, "git_sha", "string_pattern_mismatch"),
        (
            "/api/dbt-cloud/trigger-run",
            {"steps_override": "dbt run"},
            "steps_override",
            "list_type",
        ),
        ("/api/dbt-cloud/trigger-run", {"steps_override": []}, "steps_override", "too_short"),
        (
            "/api/dbt-cloud/trigger-run",
            {"steps_override": ["rm -rf /"]},
            "steps_override.0",
            "string_pattern_mismatch",
        ),
        ("/api/dbt-cloud/trigger-run", {"jobid": 1}, "jobid", "extra_forbidden"),
        ("/api/dbt-cloud/trigger-run", [1, 2], "body", "model_attributes_type"),
        ("/api/dbt-cloud/connect", {"token": TOKEN}, "account_id", "missing"),
        ("/api/dbt-cloud/connect", {"account_id": 12345}, "token", "missing"),
        ("/api/dbt-cloud/connect", {"account_id": "x", "token": TOKEN}, "account_id", "int_type"),
        ("/api/dbt-cloud/connect", {"account_id": 1, "token": 12}, "token", "string_type"),
        ("/api/dbt-cloud/connect", {"account_id": 1, "token": "a b"}, "token", "value_error"),
        # not stripped as `connect` on the command line does: a program wrote this JSON
        ("/api/dbt-cloud/connect", {"account_id": 1, "token": "token\n"}, "token", "value_error"),
        (
            "/api/dbt-cloud/connect",
            {"account_id": 1, "token": "t\u00f6ken"},
            "token",
            "value_error",
        ),
        (
            "/api/dbt-cloud/connect",
            {"account_id": 1, "token": TOKEN, "host": "http://example.com"},
            "host",
            "value_error",
        ),
    ],
)
def test_bad_bodies_get_422_naming_the_field(
    api: Api, fast_sandbox: Sandbox, path: str, body: object, field: str, kind: str
) -> None:
    error = error_of(api.post(path, json=body), 422)
    assert error["code"] == "validation_error"
    assert {"field": field, "location": "body", "type": kind}.items() <= error["fields"][0].items()
    assert field in error["message"]
    assert fast_sandbox.requests == []


def test_malformed_json_and_bad_path_ids_get_422(api: Api) -> None:
    response = api.post(
        "/api/dbt-cloud/trigger-run",
        data=b'{"job_id": ',
        headers={"Content-Type": "application/json"},
    )
    error = error_of(response, 422)
    assert error["fields"][0]["field"] == "body"
    assert error["fields"][0]["type"] == "json_invalid"
    for path in (
        "/api/dbt-cloud/runs/abc",
        "/api/dbt-cloud/runs/0",
        f"/api/dbt-cloud/runs/{2**64}",
    ):
        error = error_of(api.get(path), 422)
        assert (error["fields"][0]["field"], error["fields"][0]["location"]) == ("run_id", "path")
    error = error_of(api.get("/api/dbt-cloud/projects/x/jobs"), 422)
    assert error["fields"][0]["field"] == "project_id"


# ----------------------------------------------------------------------------- dbt Cloud errors


def test_a_rejected_token_is_401(api: Api, fast_sandbox: Sandbox) -> None:
    fast_sandbox.set_tokens({})
    for method, path in (
        ("GET", "/api/dbt-cloud/projects/67890/jobs"),
        ("POST", "/api/dbt-cloud/trigger-run"),
        ("GET", "/api/dbt-cloud/runs/1"),
    ):
        error = error_of(api.call(method, path), 401)
        assert error["code"] == "dbt_cloud_unauthorized"
        assert "rejected the API token" in error["message"]


def test_a_token_without_permission_is_403(api: Api, fast_sandbox: Sandbox) -> None:
    fast_sandbox.set_tokens({TOKEN: "job_viewer"})
    error = error_of(api.post("/api/dbt-cloud/trigger-run"), 403)
    assert error["code"] == "dbt_cloud_forbidden"
    assert "Job Runner" in error["message"]
    assert fast_sandbox.runs == []


def test_unknown_job_and_run_are_404(api: Api) -> None:
    error = error_of(api.post("/api/dbt-cloud/trigger-run", json={"job_id": 99999}), 404)
    assert (error["code"], "job 99999" in error["message"]) == ("dbt_cloud_not_found", True)
    error = error_of(api.get("/api/dbt-cloud/runs/424242"), 404)
    assert "run 424242" in error["message"]


def test_rate_limiting_is_429_with_retry_after(api: Api, fast_sandbox: Sandbox) -> None:
    fast_sandbox.fail("429", retry_after=600, times=99)
    for method, path in (
        ("POST", "/api/dbt-cloud/trigger-run"),
        ("GET", "/api/dbt-cloud/projects/67890/jobs"),
    ):
        response = api.call(method, path)
        assert error_of(response, 429)["code"] == "dbt_cloud_rate_limited"
        assert response.headers["Retry-After"] == "300"  # capped at the five-minute cooldown


def test_a_server_error_page_is_502(api: Api, fast_sandbox: Sandbox) -> None:
    fast_sandbox.fail("502_html", times=99)
    error = error_of(api.post("/api/dbt-cloud/trigger-run"), 502)
    # the look for an existing run before the POST failed: nothing was sent
    assert error["code"] == "dbt_cloud_server_error"
    assert "<html" not in error["message"]
    assert [r.method for r in fast_sandbox.requests if r.path.endswith("/run/")] == []
    fast_sandbox.clear_faults()
    fast_sandbox.fail("drop_after_create", method="POST")
    fast_sandbox.fail("502_html", method="GET", times=99)  # and it cannot be looked up
    error = error_of(api.post("/api/dbt-cloud/trigger-run", json={"force": True}), 502)
    assert error["code"] == "dbt_cloud_unknown_outcome"  # the POST may have started a run
    error = error_of(api.get("/api/dbt-cloud/runs/1"), 502)
    assert error["code"] == "dbt_cloud_server_error"
    assert "HTTP 502" in error["message"]


def test_unusable_answers_are_502(api: Api, fast_sandbox: Sandbox) -> None:
    fast_sandbox.fail("malformed_json", times=99)
    error = error_of(api.get("/api/dbt-cloud/projects/67890/jobs"), 502)
    assert error["code"] == "dbt_cloud_bad_response"


def test_dbt_cloud_down_is_504(api: Api, fast_sandbox: Sandbox) -> None:
    fast_sandbox.stop()
    for method, path in (("POST", "/api/dbt-cloud/trigger-run"), ("GET", "/api/dbt-cloud/runs/1")):
        error = error_of(api.call(method, path), 504)
        assert error["code"] == "dbt_cloud_unreachable"
        assert "could not reach dbt Cloud" in error["message"]


def test_a_trigger_that_failed_stays_pending_and_goes_out_later(
    api: Api, fast_sandbox: Sandbox
) -> None:
    fast_sandbox.fail("503", method="POST", times=99)
    fast_sandbox.fail("503", method="GET", times=99)
    assert error_of(api.post("/api/dbt-cloud/trigger-run"), 502)["code"].startswith("dbt_cloud")
    fast_sandbox.clear_faults()
    response = api.post("/api/dbt-cloud/trigger-run")
    assert response.status_code == 200, response.text
    assert response.json()["triggered"] is True
    assert len(fast_sandbox.runs) == 1


# ----------------------------------------------------------------------------- serve


class Served:
    """`datachonk-hook serve` in a real process, read up to its "Press Ctrl+C" line."""

    def __init__(self, args: list[str], env: Mapping[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "datachonk_hooks", "serve", *args],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        assert self.process.stderr is not None
        deadline = time.monotonic() + 30
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C") or time.monotonic() > deadline:
                break

    def url(self) -> str:
        line = next(line for line in self.lines if line.startswith("DataChonk local API on "))
        return line.split()[4]

    def stop(self) -> str:
        """Ctrl+C, as a user would; returns the rest of stderr and stdout."""
        import signal

        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=20)
        return out + err


def test_serve_binds_loopback_and_prints_the_key_once(repo: Path, env: dict[str, str]) -> None:
    served = Served(["--port", "0", "--repo", str(repo)], env, repo.parent)
    try:
        assert served.lines[-1] == "Press Ctrl+C to stop.", served.lines
        url = served.url()
        assert url.startswith("http://127.0.0.1:")
        assert served.lines[0] == f"DataChonk local API on {url} for {repo.resolve()}"
        prefix = "API key (shown once; send `Authorization: Bearer <key>`): "
        [key_line] = [line for line in served.lines if line.startswith(prefix)]
        key = key_line.removeprefix(prefix)
        assert len(key) >= 40
        answer = requests.get(
            f"{url}/api/dbt-cloud/status", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert answer.status_code == 200 and answer.json()["accepted"] is True
        assert requests.get(f"{url}/api/dbt-cloud/status", timeout=30).status_code == 401
    finally:
        rest = served.stop()
    assert served.process.returncode == 0
    output = "\n".join(served.lines) + rest
    assert output.count(key) == 1
    assert TOKEN not in output
    assert "Traceback" not in output


def test_serve_on_another_address_needs_allow_remote_and_warns(
    repo: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from datachonk_hooks.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --host 0.0.0.0: not a loopback address")
    assert "--allow-remote" in err

    served = Served(["--host", "0.0.0.0", "--allow-remote", "--port", "0"], env, repo)
    try:
        assert served.lines[0].startswith("Warning: serving on 0.0.0.0, reachable from other")
        port = served.url().rsplit(":", 1)[1]
        assert served.url() == f"http://0.0.0.0:{port}"
        answer = requests.get(f"http://127.0.0.1:{port}/api/dbt-cloud/status", timeout=30)
        assert answer.status_code == 401
    finally:
        served.stop()


def test_serve_takes_the_key_from_the_environment(
    repo: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    served = Served(["--port", "0"], {**env, "DATACHONK_API_KEY": API_KEY}, repo)
    try:
        assert "API key: the value of DATACHONK_API_KEY" in served.lines
        assert not any(API_KEY in line for line in served.lines)
        answer = requests.get(
            f"{served.url()}/api/dbt-cloud/status",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
        )
        assert answer.status_code == 200
    finally:
        assert API_KEY not in served.stop()


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        ([], {"DATACHONK_API_KEY": "short"}, "DATACHONK_API_KEY: use at least 16 characters"),
        (["--repo", "{tmp}"], {}, "is not inside a git repository"),
        (["--port", "{busy}"], {}, "cannot listen on 127.0.0.1:"),
    ],
)
def test_serve_refuses_to_start_with_a_clear_message(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    extra_env: dict[str, str],
    message: str,
) -> None:
    import socket

    from datachonk_hooks.cli import main

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    values = {"tmp": str(tmp_path / "elsewhere"), "busy": str(busy.getsockname()[1])}
    (tmp_path / "elsewhere").mkdir()
    for name, value in extra_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(repo)
    try:
        code = main(["serve", *(arg.format(**values) for arg in args)])
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("Error: ") and "Traceback" not in err


def test_serve_without_the_server_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datachonk_hooks.cli import main

    for name in [name for name in sys.modules if name.startswith("datachonk_hooks.api.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve"]) == 2
    assert "pip install 'datachonk-hooks[server]'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the hook path


def test_the_hook_path_never_imports_the_server_stack() -> None:
    code = (
        "import sys\n"
        "from datachonk_hooks import cli\n"
        "from datachonk_hooks.prepush import hook\n"
        "from datachonk_hooks.delivery import landing, trigger\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = {'fastapi', 'uvicorn', 'starlette', 'pydantic'}\n"
        "loaded |= {'datachonk_hooks.api.server', 'datachonk_hooks.api.app'}\n"
        "assert not loaded & set(sys.modules), loaded & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ----------------------------------------------------------------------------- property-based


def test_no_generated_request_gets_a_500_or_breaks_the_schema(
    api: Api, fast_sandbox: Sandbox
) -> None:
    """schemathesis: valid and invalid requests for every operation, all checked against
    /openapi.json (status documented, content type, body and headers as documented)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
    cases = st.one_of(
        schema.as_strategy(schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    seen: set[int] = set()

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case: Any) -> None:
        if case.path.endswith("/connect") and isinstance(case.body, dict):
            case.body["host"] = fast_sandbox.url  # never anywhere but the simulator
        response = case.call_and_validate(
            base_url=api.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            checks=checks,
            timeout=30,
        )
        assert TOKEN not in response.text
        seen.add(response.status_code)

    check()
    assert {200, 422} <= seen


def test_concurrent_triggers_of_one_commit_start_one_run(api: Api, fast_sandbox: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.post("/api/dbt-cloud/trigger-run"), range(8)))
    assert len(fast_sandbox.runs) == 1
    ok = [answer.json() for answer in answers if answer.status_code == 200]
    refused = [error_of(a, 409) for a in answers if a.status_code != 200]
    assert all(error["code"] == "trigger_in_progress" for error in refused)
    assert [body["triggered"] for body in ok].count(True) == 1
    assert {body["run"]["id"] for body in ok} == {fast_sandbox.runs[0].id}


def test_trigger_run_for_a_commit_awaiting_its_push_is_409(
    api: Api, repo: Path, fast_sandbox: Sandbox
) -> None:
    """The hook recorded the commit and its waiter will send it once the push lands."""
    import pygit2

    from datachonk_hooks.cloud.trigger_request import TriggerRequest
    from datachonk_hooks.delivery.ledger import Ledger

    sha = git(repo, "rev-parse", "HEAD")
    with Ledger.for_repo(pygit2.Repository(str(repo))) as ledger:
        ledger.add_trigger(
            host=fast_sandbox.url,
            account_id=12345,
            job_id=11111,
            request=TriggerRequest(cause="pushed", git_sha=sha, git_branch="main"),
            source="push",
            awaiting_push=True,
        )
    error = error_of(api.post("/api/dbt-cloud/trigger-run"), 409)
    assert error["code"] == "trigger_in_progress"
    assert "waiting for its push to land" in error["message"]
    assert fast_sandbox.runs == []


def test_every_error_the_api_can_meet_has_its_status() -> None:
    """A new error class must be given its HTTP status, not fall through to a 500."""
    import datachonk_hooks.account.verify
    import datachonk_hooks.delivery.trigger
    from datachonk_hooks.api import errors as api_errors
    from datachonk_hooks.errors import DatachonkError

    # their error classes are loaded
    assert datachonk_hooks.account.verify and datachonk_hooks.delivery.trigger

    def subclasses(kind: type[DatachonkError]) -> list[type[DatachonkError]]:
        return [kind, *(sub for child in kind.__subclasses__() for sub in subclasses(child))]

    left_out = {
        "DatachonkError": "a base class, never raised as such",
        "DbtCloudError": "a base class, never raised as such",
        "RefusedError": "raised while handling the dbt Cloud error it explains",
        "PushInputError": "only the hook reads a push",
        "DemoError": "only `make demo` raises it",
        "NothingToWatchError": "only `watch` raises it",
        "RunNotStartedError": "only `watch` raises it",
    }
    unmapped = [
        kind.__name__
        for kind in subclasses(DatachonkError)
        if kind.__module__.startswith("datachonk_hooks.")
        and kind.__name__ not in left_out
        and not any(issubclass(kind, mapped) for mapped, _, _ in api_errors._KINDS)
    ]
    assert unmapped == []


# ----------------------------------------------------------------------------- text from outside

HOSTILE = "boom \x1b[2J\x1b]0;pwned\x07\u202e gnp.exe"


@pytest.mark.parametrize(
    "body",
    [
        {"git_branch": "main\x1bc"},  # ESC c: reset the terminal
        {"git_branch": "ma\x07in"},
        {"git_branch": "ma\x00in"},
        {"git_branch": "feat/\u202egnp"},
        {"git_branch": "feat/\u200bx"},
        {"cause": "deploy\x1b]0;pwned\x07"},
        {"cause": "deploy \u2066x\u2069"},
        {"cause": "\ufeffdeploy"},
    ],
)
def test_control_bidi_and_zero_width_characters_are_refused_with_422(
    api: Api, fast_sandbox: Sandbox, body: dict[str, str]
) -> None:
    error = error_of(api.post("/api/dbt-cloud/trigger-run", json=body), 422)
    [field] = body
    assert error["code"] == "validation_error"
    assert (error["fields"][0]["field"], error["fields"][0]["type"]) == (field, "value_error")
    assert "control, bidi or zero-width" in error["message"]
    assert all(ord(char) >= 0x20 and char.isascii() for char in error["message"])
    assert fast_sandbox.requests == []


def test_what_dbt_cloud_says_is_sanitized_in_answers_and_logs(
    api: Api, fast_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    fast_sandbox.add_job(44444, project_id=67890, name=f"nightly {HOSTILE}")
    jobs = api.get("/api/dbt-cloud/projects/67890/jobs")
    assert jobs.status_code == 200
    [shown] = [job["name"] for job in jobs.json()["jobs"] if job["id"] == 44444]
    assert shown == "nightly boom \\u202e gnp.exe"

    fast_sandbox.fail("500", method="POST", path=r"/run/$", times=99, message=HOSTILE)
    response = api.post("/api/dbt-cloud/trigger-run", json={"job_id": 44444})
    error = error_of(response, 502)
    assert "boom \\u202e gnp.exe" in error["message"]
    for text in (response.text, caplog.text):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\\u001b" not in text and "pwned" not in text


JSON_TYPE = {"Content-Type": "application/json"}


def test_request_bodies_are_capped(api: Api, fast_sandbox: Sandbox) -> None:
    """A valid key is no licence to send 300 MB: 413 by Content-Length, and for a chunked
    body as soon as it passes the limit, before anything reads it whole."""
    big = json.dumps({"cause": "x" * (80 * 1024)})
    sized = api.post("/api/dbt-cloud/trigger-run", data=big, headers=JSON_TYPE)
    assert sized.status_code == 413
    assert sized.json()["error"] == {
        "code": "payload_too_large",
        "message": "request bodies are limited to 64 KiB",
    }

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"cause": "'
        for _ in range(200):
            yield b"y" * 1024
        yield b'"}'

    chunked = api.post("/api/dbt-cloud/trigger-run", data=chunks(), headers=JSON_TYPE)
    assert chunked.status_code == 413, chunked.text
    assert fast_sandbox.runs == []
    small = api.post("/api/dbt-cloud/trigger-run", json={"cause": "fits"})
    assert small.status_code == 200, small.text
