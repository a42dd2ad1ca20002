"""The simulator's routes against dbt Cloud's official OpenAPI specs: every (method, path)
it answers and every query parameter it reads is one the spec declares, and what its GET
routes answer carries every field the spec requires. Skipped when the reference specs
(`../shared/reference/openapi/`) are not there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from ruamel.yaml import YAML

from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.sandbox.routes import ROUTES, Route

SPECS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openapi"
pytestmark = pytest.mark.skipif(not SPECS.is_dir(), reason="no reference OpenAPI specs")
GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
#: related objects the specs mark required but dbt Cloud sends only when `include_related`
#: asks for them (the recorded job and project answers in ../shared/reference lack them)
RELATED = {
    "account",
    "project",
    "environment",
    "environments",
    "repository",
    "connection",
    "credentials",
    "jobs",
    "custom_environment_variables",
    "fusion_readiness",
    "default_version",
}


@pytest.fixture(scope="session")
def specs() -> dict[str, dict[str, Any]]:
    """Both specs, loaded once: the v3 file is 400 KB."""
    loaded: dict[str, dict[str, Any]] = {}
    for version in ("v2", "v3"):
        with (SPECS / f"openapi-{version}.yaml").open(encoding="utf-8") as handle:
            loaded[version] = YAML(typ="safe").load(handle)
    return loaded


def template(route: Route) -> str:
    """The spec's path for a route: each named group becomes `{name}`."""
    return GROUP.sub(lambda m: "{" + m[1] + "}", route.pattern.pattern)


def operation(specs: dict[str, dict[str, Any]], route: Route) -> dict[str, Any] | None:
    path = template(route)
    item = specs[path.split("/")[2]]["paths"].get(path, {})
    found: dict[str, Any] | None = item.get(route.method.lower())
    return found


def parameters(op: dict[str, Any], where: str) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p.get("in") == where}


#: the one path the sandbox answers outside the specs: dbtc calls it, the specs lack it
OFF_SPEC = {"GET /api/v3/accounts/{account_id}/projects/{project_id}/runs/{run_id}/timing/"}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {template(r)}")
def test_every_route_is_in_the_spec(specs: dict[str, dict[str, Any]], route: Route) -> None:
    op = operation(specs, route)
    if not route.in_spec:
        assert op is None and f"{route.method} {template(route)}" in OFF_SPEC
        return
    assert op is not None, f"{route.method} {template(route)} is not in the spec"
    assert parameters(op, "path") == set(route.pattern.groupindex)
    assert route.params <= parameters(op, "query"), sorted(route.params - parameters(op, "query"))


def test_no_two_rows_share_a_method_and_path() -> None:
    rows = [(route.method, template(route)) for route in ROUTES]
    assert len(rows) == len(set(rows))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as server:
        yield server


def required(specs: dict[str, dict[str, Any]], version: str, op: dict[str, Any]) -> set[str]:
    """The fields the spec requires of the answer's `data` (of each item for a list)."""
    schemas = specs[version]["components"]["schemas"]
    envelope = op["responses"]["200"]["content"]["application/json"]["schema"]
    data = schemas[envelope["$ref"].split("/")[-1]]["properties"]["data"]
    ref = data.get("$ref") or data.get("items", {}).get("$ref")
    return set(schemas[ref.split("/")[-1]].get("required", [])) if ref else set()


def concrete(route: Route, run_id: int) -> str:
    values = {"account_id": "12345", "job_id": "11111", "run_id": str(run_id)}
    values |= {"project_id": "67890", "remainder": "manifest.json"}
    path = template(route)
    default = "67890" if "/projects/{id}/" in path else "1001" if "/users/" in path else "1"
    default = (
        str(run_id) if "/runs/{id}/" in path else "11111" if "/jobs/{id}/" in path else default
    )
    return GROUP.sub(lambda m: values.get(m[1], default), route.pattern.pattern)


def test_every_get_answer_has_the_fields_the_spec_requires(
    specs: dict[str, dict[str, Any]], sandbox: Sandbox
) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {sandbox.token}"
    api = f"{sandbox.url}/api/v2/accounts/12345"
    now = [0.0]
    sandbox.set_clock(lambda: now[0])
    failed = session.post(f"{api}/jobs/33333/run/", json={"cause": "spec"}).json()["data"]["id"]
    now[0] += 60  # simulated time: the run has ended in error
    assert sandbox.run_status(failed) == 20
    missing: dict[str, list[str]] = {}
    for route in ROUTES:
        op = operation(specs, route)
        if route.method != "GET" or op is None or "remainder" in route.pattern.groupindex:
            continue
        response = session.get(f"{sandbox.url}{concrete(route, failed)}")
        assert response.status_code == 200, (template(route), response.text)
        data = response.json()["data"]
        for item in data if isinstance(data, list) else [data]:
            gaps = required(specs, template(route).split("/")[2], op) - set(item) - RELATED
            if gaps:
                missing[template(route)] = sorted(gaps)
    assert missing == {}
