from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from datachonk_hooks.cloud import answers as cloud_answers
from datachonk_hooks.cloud import errors as cloud_errors
from datachonk_hooks.cloud import paging as cloud_paging
from datachonk_hooks.cloud import records as cloud_records
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RedirectError,
    ServerError,
    UnknownOutcomeError,
    UnreachableError,
)
from datachonk_hooks.cloud.records import (
    MESSAGE_LIMIT,
    Job,
    Project,
    Run,
    parse_duration,
    parse_timestamp,
)
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.transport import MAX_REDIRECTS, RetryPolicy, Timeouts
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord, TriggerState
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import Token
from tests.helpers import TOKEN, commit_files, config_yaml, publish

RESPONSES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "responses"
SHA = "981c5cf1ba299e942c6c277c38c8dec9b0738dd0"


def recorded(name: str) -> dict[str, Any]:
    path = RESPONSES / name
    if not path.exists():
        pytest.skip(f"reference response {name} not available")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sandbox: Sandbox, sleeps: list[float]) -> Iterator[DbtCloudClient]:
    with DbtCloudClient(
        host=sandbox.url,
        account_id=12345,
        token=Token(TOKEN, "test"),
        timeouts=Timeouts(connect=2, read=2),
        sleep=sleeps.append,
    ) as c:
        yield c


# ------------------------------------------------------------------ parsing recorded bodies


def test_recorded_queued_run_after_trigger() -> None:
    run = Run.from_api(recorded("kestra-plugin-dbt/run_queued_with_trigger_and_job.json")["data"])
    assert run.status is RunStatus.QUEUED
    assert not run.is_complete
    assert run.cause
    assert run.href and run.href.startswith("https://")


def test_recorded_success_run() -> None:
    run = Run.from_api(recorded("data-mie-dbt-cloud-cli/run_get_response.json")["data"])
    assert run.status is RunStatus.SUCCESS
    assert run.is_complete
    assert run.created_at is not None and run.created_at.tzinfo is not None
    assert run.duration == timedelta(minutes=1, seconds=50)


def test_recorded_cancelled_run_and_cell_based_ids() -> None:
    body = recorded("openmetadata/run_list_cancelled_timeout_and_queued_cell_based.json")
    runs = [Run.from_api(item) for item in body["data"]]
    timed_out = next(r for r in runs if r.status is RunStatus.CANCELLED)
    assert timed_out.duration == timedelta(hours=24, seconds=36)
    assert timed_out.status_message and "timed out" in timed_out.status_message
    assert all(r.id > 2**32 for r in runs)


def test_recorded_jobs_and_projects() -> None:
    jobs = [Job.from_api(j) for j in recorded("openmetadata/job_list_cell_based.json")["data"]]
    assert jobs and all(j.id > 2**32 for j in jobs)
    old = Job.from_api(recorded("data-mie-dbt-cloud-cli/job_get_response.json")["data"])
    assert old.name == "Do nothing!" and old.active
    projects = recorded("data-mie-dbt-cloud-cli/project_list_response.json")["data"]
    assert Project.from_api(projects[0]).name == "jaffle_shop"


def test_recorded_run_with_steps() -> None:
    data = recorded("airflow/job_run_trimmed_with_run_steps.json")["data"]
    run = Run.from_api({**data, "id": 1})  # the trimmed body lost its id
    assert [s.name for s in run.steps][-1] == "Invoke dbt with `dbt build`"
    assert run.job_id == 408411


def test_recorded_dagster_run_with_trigger() -> None:
    body = recorded("dagster/run_success_include_related_trigger_job.json")
    run = Run.from_api(body["data"])
    assert run.cause == "Triggered via Dagster"
    assert run.job_name == "MyCoolJob"


# ------------------------------------------------------------------ parsing our own shapes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-07-03 13:59:00.653171+00:00", datetime(2024, 7, 3, 13, 59, 0, 653171, UTC)),
        ("2024-03-25T13:47:20.129690Z", datetime(2024, 3, 25, 13, 47, 20, 129690, UTC)),
        ("2024-03-25T13:47:20", datetime(2024, 3, 25, 13, 47, 20, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_timestamp(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:51", timedelta(seconds=51)),
        ("24:00:36", timedelta(days=1, seconds=36)),
        ("100:01:02", timedelta(hours=100, minutes=1, seconds=2)),
        ("1:2", None),
        ("aa:bb:cc", None),
        (None, None),
    ],
)
def test_parse_duration(text: object, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


def test_lenient_run_parsing() -> None:
    run = Run.from_api({"id": 42, "status": 99, "surprise": {"x": 1}, "run_steps": "nope"})
    assert run.id == 42
    assert run.status == 99 and run.status.label == "Status 99"
    assert not run.is_complete and run.steps == ()
    with pytest.raises(BadResponseError):
        Run.from_api({"status": 10})


def test_trigger_body_leaves_out_empty_fields() -> None:
    assert TriggerRequest(cause="c").body() == {"cause": "c"}
    body = TriggerRequest("c", git_sha=SHA, git_branch="main", steps_override=("dbt build",)).body()
    assert body == {
        "cause": "c",
        "git_sha": SHA,
        "git_branch": "main",
        "steps_override": ["dbt build"],
    }


# ------------------------------------------------------------------ operations on the simulator


def test_trigger_and_get_run(client: DbtCloudClient, sandbox: Sandbox) -> None:
    run = client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA, git_branch="main"))
    assert run.status is RunStatus.QUEUED
    assert run.job_id == 11111
    assert run.href == f"{sandbox.url}/deploy/12345/projects/67890/runs/{run.id}/"
    fetched = client.get_run(run.id)
    assert fetched.id == run.id
    assert fetched.git_sha == SHA and fetched.git_branch == "main"
    assert fetched.cause == "Add orders"
    assert fetched.job_name == "DataChonk CI"
    assert fetched.steps and fetched.steps[0].name == "Clone Git Repository"
    [created] = sandbox.runs
    assert (created.cause, created.git_sha, created.git_branch) == ("Add orders", SHA, "main")


def test_list_runs_follows_pagination(
    client: DbtCloudClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [client.trigger_run(11111, TriggerRequest(f"run {i}")).id for i in range(5)]
    monkeypatch.setattr(cloud_paging, "PAGE_SIZE", 2)
    runs = client.list_runs(11111)
    assert [r.id for r in runs] == sorted(ids, reverse=True)
    pages = [r for r in sandbox.requests if r.method == "GET" and r.path.endswith("/runs/")]
    assert [r.query["offset"] for r in pages] == [["0"], ["2"], ["4"]]
    assert len(client.list_runs(11111, limit=3)) == 3


def test_projects_and_jobs(client: DbtCloudClient) -> None:
    projects = client.list_projects()
    assert {p.id: p.name for p in projects}[67890] == "jaffle_shop"
    jobs = client.list_jobs(67890)
    assert {11111, 22222, 33333} <= {j.id for j in jobs}
    assert all(j.project_id == 67890 for j in jobs)
    job = client.get_job(11111)
    assert job.name == "DataChonk CI" and job.active


def test_cancel(client: DbtCloudClient) -> None:
    run = client.trigger_run(44444, TriggerRequest("long one"))
    cancelled = client.cancel_run(run.id)
    assert cancelled.status is RunStatus.CANCELLED


def test_get_artifact_is_the_raw_file_fetched_like_any_get(
    client: DbtCloudClient, sandbox: Sandbox, sleeps: list[float]
) -> None:
    now = [1000.0]
    sandbox.set_clock(lambda: now[0])
    run = client.trigger_run(11111, TriggerRequest("prod"))
    with pytest.raises(NotFoundError) as missing:
        client.get_artifact(run.id, "manifest.json")
    assert str(missing.value) == (
        f"run {run.id} has no artifact manifest.json (HTTP 404); artifacts exist only for"
        " finished runs that saved them"
    )
    assert sleeps == []  # a 404 is not retried
    now[0] += 60
    sandbox.fail("500", method="GET", path=r"/artifacts/manifest\.json$")
    data = client.get_artifact(run.id, "manifest.json")
    manifest = json.loads(data)
    assert "status" not in manifest  # the file as it is, no envelope
    assert manifest["metadata"]["env"]["DBT_CLOUD_RUN_ID"] == str(run.id)
    assert len(sleeps) == 1


# ------------------------------------------------------------------ errors


def assert_no_token(exc: BaseException) -> None:
    assert TOKEN not in str(exc)


def test_bad_token_says_check_host(sandbox: Sandbox, client: DbtCloudClient) -> None:
    sandbox.set_tokens({})
    with pytest.raises(AuthenticationError) as err:
        client.get_job(11111)
    assert "401" in str(err.value) and "Invalid token." in str(err.value)
    assert "host" in str(err.value)
    assert err.value.exit_code == 5
    assert_no_token(err.value)


def test_legacy_host_401_points_at_the_access_url() -> None:
    client = DbtCloudClient("https://cloud.getdbt.com", 1, Token(TOKEN, "test"))
    response = requests.Response()
    response.status_code = 401
    response._content = b'{"status": {"code": 401, "user_message": "Invalid token."}, "data": null}'
    error = client.transport.error(response, response.json(), ("job", 1))
    assert "https://ab123.us1.dbt.com" in str(error)
    assert "legacy host" in str(error)


def test_permission_denied_names_the_permission(sandbox: Sandbox, client: DbtCloudClient) -> None:
    sandbox.set_tokens({TOKEN: "job_viewer"})
    with pytest.raises(PermissionDeniedError) as err:
        client.trigger_run(11111, TriggerRequest("x"))
    assert "Job Runner" in str(err.value)
    assert_no_token(err.value)


def test_not_found_names_the_id(client: DbtCloudClient) -> None:
    with pytest.raises(NotFoundError, match=r"no job 999 in account 12345"):
        client.trigger_run(999, TriggerRequest("x"))
    with pytest.raises(NotFoundError, match=r"no run 5 in account 12345"):
        client.get_run(5)


def test_bad_request_shows_the_field(client: DbtCloudClient) -> None:
    with pytest.raises(BadRequestError, match=r"400.*steps_override"):
        client.trigger_run(11111, TriggerRequest("x", steps_override=("",)))


def test_get_retries_5xx_then_succeeds(
    client: DbtCloudClient, sandbox: Sandbox, sleeps: list[float]
) -> None:
    sandbox.fail("500", method="GET", times=2)
    assert client.get_job(11111).id == 11111
    assert len(sleeps) == 2
    assert sleeps[0] <= sleeps[1] or sleeps[1] >= 0.5  # backoff grows (with jitter)


def test_get_gives_up_on_html_5xx(client: DbtCloudClient, sandbox: Sandbox) -> None:
    sandbox.fail("502_html", method="GET", times=99)
    with pytest.raises(ServerError, match=r"HTTP 502.*HTML page") as err:
        client.get_job(11111)
    assert err.value.exit_code == 5


def test_retry_after_is_honoured(
    client: DbtCloudClient, sandbox: Sandbox, sleeps: list[float]
) -> None:
    sandbox.fail("429", method="GET", retry_after=7)
    assert client.get_job(11111).id == 11111
    assert sleeps == [7.0]


def test_retry_after_beyond_the_budget_gives_up_at_once(
    client: DbtCloudClient, sandbox: Sandbox, sleeps: list[float]
) -> None:
    sandbox.fail("429", method="GET", retry_after=3600)
    with pytest.raises(RateLimitedError, match="five-minute cooldown") as err:
        client.get_job(11111)
    assert err.value.retry_after == 300  # capped at dbt Cloud's cooldown
    assert sleeps == []


def test_malformed_json_is_reported_not_crashed(client: DbtCloudClient, sandbox: Sandbox) -> None:
    sandbox.fail("malformed_json", method="GET", times=99)
    with pytest.raises(BadResponseError, match="not valid JSON"):
        client.get_job(11111)


def test_slow_answers_time_out_and_are_retried(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.fail("slow", method="GET", delay=1.5)
    with DbtCloudClient(
        sandbox.url, 12345, Token(TOKEN, "t"), Timeouts(1, 0.3), sleep=sleeps.append
    ) as fast:
        assert fast.get_job(11111).id == 11111
    assert len(sleeps) == 1


def test_down_is_unreachable(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.stop()
    client = DbtCloudClient(
        sandbox.url,
        12345,
        Token(TOKEN, "t"),
        retry=RetryPolicy(attempts=3),
        sleep=sleeps.append,
    )
    with pytest.raises(UnreachableError, match=r"could not reach dbt Cloud at http://127\.0\.0\.1"):
        client.trigger_run(11111, TriggerRequest("x"))
    assert len(sleeps) == 2


# ------------------------------------------------------------------ the no-blind-retry rule


def test_trigger_answer_lost_adopts_the_created_run(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    sandbox.fail("drop_after_create", method="POST", path=r".*/run/$")
    run = client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert [r.id for r in sandbox.runs] == [run.id]
    posts = [r for r in sandbox.requests if r.method == "POST"]
    assert len(posts) == 1  # looked up, not re-sent


def test_trigger_reset_before_creation_is_sent_again_once(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    sandbox.fail("reset", method="POST", path=r".*/run/$")
    run = client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert [r.id for r in sandbox.runs] == [run.id]
    lookups = [r for r in sandbox.requests if r.method == "GET" and r.path.endswith("/runs/")]
    assert len(lookups) == 1


def test_trigger_5xx_looks_up_before_resending(client: DbtCloudClient, sandbox: Sandbox) -> None:
    sandbox.fail("500", method="POST", path=r".*/run/$")
    client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    methods = [(r.method, r.path.rsplit("/", 2)[-2]) for r in sandbox.requests]
    assert methods == [("POST", "run"), ("GET", "runs"), ("POST", "run")]
    assert len(sandbox.runs) == 1


def test_trigger_does_not_adopt_a_run_for_another_commit(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    client.trigger_run(11111, TriggerRequest("Add orders", git_sha="a" * 40))
    sandbox.fail("500", method="POST", path=r".*/run/$")
    run = client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert run.git_sha == SHA
    assert len(sandbox.runs) == 2


def test_trigger_429_is_retried_without_lookup(
    client: DbtCloudClient, sandbox: Sandbox, sleeps: list[float]
) -> None:
    sandbox.fail("429", method="POST", retry_after=2)
    client.trigger_run(11111, TriggerRequest("x", git_sha=SHA))
    assert sleeps == [2.0]
    assert [r.method for r in sandbox.requests] == ["POST", "POST"]
    assert len(sandbox.runs) == 1


def test_token_is_sent_as_token_header_with_user_agent(sandbox: Sandbox) -> None:
    transport = DbtCloudClient(sandbox.url, 1, Token(TOKEN, "t")).transport
    session_headers = transport.get_session().headers
    assert session_headers["Authorization"] == f"Token {TOKEN}"
    assert str(session_headers["User-Agent"]).startswith("datachonk-hooks/")
    assert TOKEN not in repr(DbtCloudClient(sandbox.url, 1, Token(TOKEN, "t")))


# ------------------------------------------------------------------ hostile servers


def _posts(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "POST")


@pytest.fixture
def other() -> Iterator[Sandbox]:
    """A second server on another port: where a hostile redirect points."""
    with Sandbox(token=TOKEN) as server:
        yield server


@pytest.mark.parametrize("body_only", [0, 1], ids=["headers-too", "body-only"])
def test_a_dripping_answer_ends_at_the_deadline_and_is_retried(
    sandbox: Sandbox, sleeps: list[float], body_only: int
) -> None:
    sandbox.fail("drip", method="GET", interval=0.2, body_only=body_only)
    started = time.monotonic()
    with DbtCloudClient(
        sandbox.url, 12345, Token(TOKEN, "t"), Timeouts(1, 1), sleep=sleeps.append
    ) as fast:
        assert fast.get_job(11111).id == 11111
    # each read got a byte in time (0.2 s < 1 s): only the deadline for the whole answer
    # ended the first exchange, after 1 s instead of the many seconds the drip would take
    assert time.monotonic() - started < 1 + 1.5
    assert len(sleeps) == 1


def test_a_dripping_trigger_answer_is_looked_up_not_sent_again(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    sandbox.fail("drip", method="POST", path=r"/run/$", body_only=1)
    started = time.monotonic()
    run = client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert time.monotonic() - started < 2 + 1.5
    assert [r.id for r in sandbox.runs] == [run.id]
    assert _posts(sandbox) == 1


def test_a_trigger_dripping_everywhere_ends_within_its_budget(sandbox: Sandbox) -> None:
    sandbox.fail("drip", times=99)
    started = time.monotonic()
    with (
        DbtCloudClient(
            sandbox.url, 12345, Token(TOKEN, "t"), Timeouts(1, 1), RetryPolicy(budget=2)
        ) as fast,
        # the answer's deadline ends it; on a loaded machine a gap between two drips can
        # outlast the per-read timeout first, which ends it as surely
        pytest.raises(
            UnknownOutcomeError,
            match=r"no complete answer within 1 s|no answer in time \(read timeout\)",
        ),
    ):
        fast.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    # the lookups inside the trigger share its budget: one exchange past it at most
    assert time.monotonic() - started < 2 + 1 + 1
    assert _posts(sandbox) == 1


def test_a_redirected_trigger_is_an_error_and_not_followed(
    client: DbtCloudClient, sandbox: Sandbox, other: Sandbox
) -> None:
    sandbox.fail("redirect", method="POST", path=r"/run/$", port=other.port)
    with pytest.raises(RedirectError, match=r"redirect \(HTTP 302\) to http://127\.0\.0\.1") as err:
        client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert f":{other.port}/" in str(err.value) and "check that `host`" in str(err.value)
    assert err.value.exit_code == 5 and not err.value.transient
    assert other.requests == [] and other.runs == []
    assert sandbox.runs == [] and _posts(sandbox) == 1


def test_a_redirected_post_to_the_same_origin_is_not_followed_either(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    sandbox.fail("redirect", method="POST", status=307)
    with pytest.raises(RedirectError, match=r"HTTP 307"):
        client.cancel_run(1)
    assert _posts(sandbox) == 1


def test_a_get_is_not_redirected_to_another_origin(
    client: DbtCloudClient, sandbox: Sandbox, other: Sandbox
) -> None:
    sandbox.fail("redirect", method="GET", port=other.port)
    with pytest.raises(RedirectError, match="another origin"):
        client.get_job(11111)
    assert other.requests == []
    assert len(sandbox.requests) == 1  # not transient: not tried again


def test_a_get_follows_a_few_redirects_within_the_origin(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    sandbox.fail("redirect", method="GET", times=MAX_REDIRECTS)
    runs = client.list_runs(11111)  # the query string survives the hops
    assert runs == []
    assert all(r.query.get("job_definition_id") == ["11111"] for r in sandbox.requests)
    sandbox.fail("redirect", method="GET", times=MAX_REDIRECTS + 1)
    with pytest.raises(RedirectError, match=f"more than {MAX_REDIRECTS} times"):
        client.get_job(11111)


@pytest.mark.parametrize("odd", [2**64 + 5, 2**63, -5, 0, True, "12", 1.5, {"id": 1}])
def test_ids_outside_int64_or_not_ints_are_a_bad_response(odd: object) -> None:
    with pytest.raises(BadResponseError, match="which is no id") as err:
        Run.from_api({"id": odd, "status": 10})
    assert len(str(err.value)) < 200
    with pytest.raises(BadResponseError, match="no id"):
        Job.from_api({"id": 1, "account_id": odd})
    with pytest.raises(BadResponseError, match="no id"):
        Project.from_api({"id": odd})
    with pytest.raises(BadResponseError, match="no id"):
        Run.from_api({"id": 7, "status": 10, "job_definition_id": odd})


def test_a_huge_id_is_shown_cut() -> None:
    with pytest.raises(BadResponseError) as err:
        Run.from_api({"id": 10**300})
    assert "0" * 60 not in str(err.value)
    assert "\u2026" in str(err.value) and len(str(err.value)) < 150


def test_the_largest_int64_id_is_fine() -> None:
    assert Run.from_api({"id": 2**63 - 1, "status": 1, "project_id": None}).id == 2**63 - 1


@pytest.mark.parametrize("odd", [2**64 + 5, -5, True, "12"])
def test_a_trigger_answered_with_an_odd_id_is_looked_up_never_sent_again(
    client: DbtCloudClient, sandbox: Sandbox, odd: object
) -> None:
    sandbox.fail("odd_id", times=99, id=odd)  # the answer and every run list
    with pytest.raises(UnknownOutcomeError, match="no id") as err:
        client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert err.value.transient  # it stays pending: `retry` looks it up again
    assert _posts(sandbox) == 1 and len(sandbox.runs) == 1
    sandbox.clear_faults()
    found = client.find_run(11111, TriggerRequest("Add orders", git_sha=SHA), since=_now())
    assert found is not None and found.id == sandbox.runs[0].id


def test_an_odd_id_only_in_the_trigger_answer_adopts_the_real_run(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    sandbox.fail("odd_id", method="POST", id=2**64 + 5)
    run = client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    assert [r.id for r in sandbox.runs] == [run.id]
    assert _posts(sandbox) == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [(1e308, 300.0), (float("inf"), None), (float("nan"), None), (-1, None), (12, 12.0)],
)
def test_retry_after_is_capped_or_ignored_when_absurd(
    client: DbtCloudClient,
    sandbox: Sandbox,
    sleeps: list[float],
    header: float,
    expected: float | None,
) -> None:
    sandbox.fail("429", method="GET", times=99, retry_after=header)
    with pytest.raises(RateLimitedError) as err:
        client.get_job(11111)
    assert err.value.retry_after == expected
    text = str(err.value).split("); it enforces")[1]  # the server's own words aside
    assert not re.search(r"\d{4,}", text), text
    assert all(0 <= s <= 300 for s in sleeps)
    if expected is None:  # as if absent: the usual backoff, within the budget
        assert "retry after" not in text and len(sleeps) == 4
    else:
        assert f"retry after {expected:.0f}s" in text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 300.0),
        ("soon", None),
        ("", None),
        ("1e999", None),
        ("300.5", 300.0),
    ],
)
def test_retry_after_header_forms(header: str, expected: float | None) -> None:
    assert cloud_answers.retry_after(header) == expected


def test_a_long_server_message_is_cut_with_an_ellipsis(
    client: DbtCloudClient, sandbox: Sandbox
) -> None:
    message = "The warehouse said: " + "x" * 380
    sandbox.fail("500", method="GET", times=99, message=message)
    with pytest.raises(ServerError) as err:
        client.get_job(11111)
    text = str(err.value)
    assert "The warehouse said: xxx" in text and "\u2026" in text
    assert "RuntimeError" not in text
    assert len(text) < MESSAGE_LIMIT + 120


def test_a_token_at_the_cut_is_still_redacted(client: DbtCloudClient, sandbox: Sandbox) -> None:
    message = "y" * (MESSAGE_LIMIT - 10) + TOKEN
    sandbox.fail("500", method="GET", times=99, message=message)
    with pytest.raises(ServerError) as err:
        client.get_job(11111)
    assert TOKEN[:8] not in str(err.value)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ through `run`

HTTP_TIMEOUT, RETRY_BUDGET = 2, 4


@pytest.fixture
def run_repo(dbt_repo: Path, sandbox: Sandbox) -> Path:
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml(sandbox.url)}, "Configure dbt Cloud")
    commit_files(dbt_repo, {"models/orders.sql": "select 1"}, "Add orders model")
    publish(dbt_repo)
    return dbt_repo


def _cli(repo: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "datachonk_hooks", *args],
        cwd=repo,
        env={**os.environ, "DBT_CLOUD_API_TOKEN": TOKEN, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _trigger_record(repo: Path) -> TriggerRecord:
    with Ledger(repo / ".git" / "datachonk" / "ledger.sqlite3") as ledger:
        [record] = ledger.history()
    return record


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("lookups_drip", [False, True], ids=["post-drips", "lookups-drip-too"])
def test_run_against_a_dripping_dbt_cloud_ends_within_its_bounds(
    run_repo: Path, sandbox: Sandbox, lookups_drip: bool
) -> None:
    """dbt Cloud accepts the trigger, then answers a byte a second (issue 12)."""
    sandbox.fail("drip", method="POST", path=r"/run/$")
    started = time.monotonic()
    process = _cli(
        run_repo,
        "run",
        DATACHONK_HTTP_TIMEOUT=str(HTTP_TIMEOUT),
        DATACHONK_RETRY_BUDGET=str(RETRY_BUDGET),
    )
    try:
        if lookups_drip:  # from the POST on, every run list drips too
            _wait_for(lambda: _posts(sandbox) == 1, 30, "the trigger POST")
            sandbox.fail("drip", method="GET", path=r"/runs/$", times=99)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    elapsed = time.monotonic() - started
    # one exchange, then lookups within the rest of the budget; plus starting Python
    assert elapsed < HTTP_TIMEOUT + RETRY_BUDGET + 3, (elapsed, out, err)
    assert _posts(sandbox) == 1 and len(sandbox.runs) == 1
    record = _trigger_record(run_repo)
    if not lookups_drip:  # the run dbt Cloud created is found and adopted
        assert process.returncode == 0, err
        assert record.run_id == sandbox.runs[0].id
        return
    assert process.returncode == 5, (out, err)
    assert err.count("\n") == 1 and err.startswith("Error: ")
    assert f"no complete answer within {HTTP_TIMEOUT} s" in err
    assert "the trigger stays pending" in out
    assert record.state is TriggerState.PENDING and record.run_id is None
    assert record.reason and "no complete answer" in record.reason
    sandbox.clear_faults()  # dbt Cloud recovers: `retry` finds the run, sends nothing
    retry = _cli(run_repo, "retry", DATACHONK_HTTP_TIMEOUT=str(HTTP_TIMEOUT))
    out, err = retry.communicate(timeout=60)
    assert retry.returncode == 0, out + err
    assert _posts(sandbox) == 1 and _trigger_record(run_repo).run_id == sandbox.runs[0].id


def test_run_with_an_out_of_range_run_id_stays_pending_without_a_crash(
    run_repo: Path, sandbox: Sandbox
) -> None:
    sandbox.fail("odd_id", times=99, id=2**64 + 5)
    for command in ("run", "retry", "retry"):
        process = _cli(run_repo, command)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 5, (command, out, err)
        assert "which is no id" in err or "which is no id" in out, (command, out, err)
        assert "a bug" not in err and "Traceback" not in err
    record = _trigger_record(run_repo)
    assert record.state is TriggerState.PENDING and record.run_id is None
    assert record.reason and "which is no id" in record.reason
    assert _posts(sandbox) == 1
    sandbox.clear_faults()
    retry = _cli(run_repo, "retry")
    out, err = retry.communicate(timeout=60)
    assert retry.returncode == 0, out + err
    assert _posts(sandbox) == 1 and _trigger_record(run_repo).run_id == sandbox.runs[0].id


def test_a_3xx_without_location_is_an_error_too(client: DbtCloudClient, sandbox: Sandbox) -> None:
    sandbox.fail("redirect", method="POST", bare=1, status=303)
    with pytest.raises(RedirectError, match=r"HTTP 303\) to nowhere"):
        client.trigger_run(11111, TriggerRequest("Add orders", git_sha=SHA))
    sandbox.fail("redirect", method="GET", bare=1)
    with pytest.raises(RedirectError, match="HTTP 302 and no Location"):
        client.get_job(11111)
    assert sandbox.runs == []


def stop_listening(server: socket.socket, thread: threading.Thread) -> None:
    """End a hand-made server before the test ends. Closing a listening socket does not wake
    a thread blocked in its `accept()`; that thread could then accept on the same descriptor
    number after a later test's server got it, and answer that test's first request (a later
    doctor test saw `data: []` for its job that way). Shutting the socket down wakes it."""
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    thread.join(timeout=10)
    server.close()
    assert not thread.is_alive()


@pytest.mark.parametrize("closing", [True, False], ids=["Connection: close", "kept alive"])
def test_the_deadline_holds_when_the_answer_ends_by_closing(closing: bool) -> None:
    """http.client hands the socket to the response (and forgets it) once the headers are
    read of an answer that ends by closing: the deadline must still cut that socket."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
        + ("Connection: close\r\n" if closing else "")
        + "\r\n"
    ).encode()
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(head)
                while not stop.wait(0.1):  # a byte every 0.1 s, for ever
                    connection.sendall(b" ")

    server_thread = threading.Thread(target=serve, daemon=True)
    server_thread.start()
    client = DbtCloudClient(
        f"http://127.0.0.1:{server.getsockname()[1]}",
        1,
        Token("dbtc_test", "test"),
        Timeouts(connect=1, read=0.5),
        RetryPolicy(attempts=1, budget=1),
    )
    started = time.monotonic()
    try:
        with pytest.raises(cloud_errors.DbtCloudError, match=r"no complete answer within 0\.5 s"):
            client.get_run(5, related=())
    finally:
        stop.set()
        stop_listening(server, server_thread)
        client.close()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("status", [2**64 + 5, -3, 10**6])
def test_a_status_out_of_any_range_is_unknown_not_a_crash(status: int) -> None:
    run = cloud_records.Run.from_api({"id": 5, "status": status})
    assert int(run.status) == 0 and not run.is_complete


def test_a_trigger_whose_answer_is_cut_is_never_sent_again() -> None:
    """200 and half a body, then the connection closes: the run exists (the status said so),
    so the client only looks it up, and never POSTs the trigger a second time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    posts: list[bytes] = []
    empty = b'{"status": {"code": 200}, "data": [], "extra": {"pagination": {"total_count": 0}}}'

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = server.accept()
                with connection:
                    request = connection.recv(65536)
                    if request.startswith(b"POST"):
                        posts.append(request)
                        connection.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b'Content-Length: 500\r\nConnection: close\r\n\r\n{"data": {"id":'
                        )
                    else:
                        connection.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            + f"Content-Length: {len(empty)}\r\nConnection: close\r\n\r\n".encode()
                            + empty
                        )

    server_thread = threading.Thread(target=serve, daemon=True)
    server_thread.start()
    client = DbtCloudClient(
        f"http://127.0.0.1:{server.getsockname()[1]}",
        1,
        Token("dbtc_test", "test"),
        Timeouts(connect=1, read=1),
        RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, budget=1.5),
    )
    try:
        with pytest.raises(cloud_errors.UnknownOutcomeError, match="cut short"):
            client.trigger_run(5, TriggerRequest("Cut", git_sha="a" * 40))
    finally:
        stop_listening(server, server_thread)
        client.close()
    assert len(posts) == 1


def test_odd_times_durations_and_steps_are_no_crash() -> None:
    from datachonk_hooks.cloud.records import (
        MAX_STEP_LOGS,
        MAX_STEP_NAME,
        RunStep,
        parse_duration,
        parse_timestamp,
    )

    assert parse_timestamp("0001-01-01T00:00:00+05:00") is None  # no UTC time
    assert parse_timestamp("9999-12-31T23:59:59-05:00") is None
    for duration in ("00:00:inf", "00:00:nan", "99999999999:00:00"):
        assert parse_duration(duration) is None
    step = RunStep.from_api(
        {"index": 2**70, "name": "n" * 200_000, "status": 20, "logs": "x" * (2 * MAX_STEP_LOGS)}
    )
    assert step.index == 0
    assert len(step.name) == MAX_STEP_NAME
    assert len(step.logs) == MAX_STEP_LOGS
