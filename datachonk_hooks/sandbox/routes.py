"""Which endpoint answers a request: the routes table (path pattern, method, permission,
endpoint, the query parameters it reads) and the order dbt Cloud checks them in.

To add an endpoint, write one function in `endpoints` and add one row to `_ROWS` per
method, its path written with the official spec's parameter names (`tests/
test_sandbox_openapi.py` checks every row and parameter against the spec): `id`, `job_id`
or `run_id` becomes `call.key`, `project_id` inside a path `call.parent` and `remainder`
`call.rest`. An endpoint sees only the query parameters its row names: the API ignores
filters it does not know, and so does the sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from datachonk_hooks.sandbox import endpoints as e
from datachonk_hooks.sandbox.state import Account
from datachonk_hooks.sandbox.wire import _DENIED, _GRANTS, _ApiError, _Call, _Incoming, _Response


@dataclass(frozen=True)
class Route:
    """`pattern` must match the whole path; `grant` is the permission the endpoint needs;
    `params` are the query parameters it reads."""

    pattern: re.Pattern[str]
    method: str
    grant: str
    endpoint: Callable[[Account, _Call], _Response]
    params: frozenset[str]
    #: False only for a path clients call that the published specs lack (listed in
    #: `OFF_SPEC`, which the spec test checks)
    in_spec: bool = True


_V2 = r"/api/v2/accounts/(?P<account_id>\d+)"
_V3 = r"/api/v3/accounts/(?P<account_id>\d+)"
_PAGE = ("limit", "offset", "order_by")
_RUN_FILTERS = ("job_definition_id", "project_id", "project_id__in", "environment_id")
_RUNS = (*_PAGE, *_RUN_FILTERS, "state", "status", "status__in", "include_related")
_JOBS = (*_PAGE, "project_id", "project_id__in", "environment_id", "state", "name__icontains")
_PROJECTS = (*_PAGE, "name__icontains", "include_related")
_ENVS = (*_PAGE, "state")
_V2_ENVS = (*_ENVS, "project_id", "project_id__in")
_OF_PROJECT = rf"{_V3}/projects/(?P<project_id>\d+)"
_ROWS: tuple[tuple[str, str, str, Callable[[Account, _Call], _Response], tuple[str, ...]], ...] = (
    ("/api/v2/accounts/", "GET", "read", e.list_accounts, ()),
    (rf"{_V2}/", "GET", "read", e.get_account, ()),
    (rf"{_V2}/jobs/", "GET", "read", e.list_jobs, _JOBS),
    (rf"{_V2}/jobs/(?P<id>\d+)/", "GET", "read", e.get_job, ()),
    (rf"{_V2}/jobs/(?P<job_id>\d+)/run/", "POST", "run", e.trigger, ()),
    (rf"{_V2}/jobs/(?P<job_id>\d+)/rerun/", "POST", "run", e.rerun, ()),
    (rf"{_V2}/runs/", "GET", "read", e.list_runs, _RUNS),
    (rf"{_V2}/runs/(?P<id>\d+)/", "GET", "read", e.get_run, ("include_related",)),
    (rf"{_V2}/runs/(?P<run_id>\d+)/cancel/", "POST", "cancel", e.cancel, ()),
    (rf"{_V2}/runs/(?P<run_id>\d+)/retry/", "GET", "read", e.retry_details, ()),
    (rf"{_V2}/runs/(?P<run_id>\d+)/retry/", "POST", "run", e.retry, ()),
    (rf"{_V2}/runs/(?P<run_id>\d+)/artifacts/", "GET", "read", e.list_artifacts, ()),
    (rf"{_V2}/runs/(?P<run_id>\d+)/artifacts/(?P<remainder>.+)", "GET", "read", e.get_artifact, ()),
    (rf"{_V2}/environments/", "GET", "read", e.list_environments, _V2_ENVS),
    (rf"{_V2}/environments/(?P<id>\d+)/", "GET", "read", e.get_environment, ()),
    (rf"{_V2}/users/", "GET", "read", e.list_users, ()),
    ("/api/v3/accounts/", "GET", "read", e.list_accounts, ()),
    (rf"{_V3}/projects/", "GET", "projects", e.list_projects, _PROJECTS),
    (rf"{_V3}/projects/(?P<id>\d+)/", "GET", "projects", e.get_project, ("include_related",)),
    (rf"{_OF_PROJECT}/environments/", "GET", "read", e.list_environments, _ENVS),
    (rf"{_OF_PROJECT}/environments/(?P<id>\d+)/", "GET", "read", e.get_environment, ()),
    (rf"{_V3}/users/", "GET", "read", e.list_users, ()),
    (rf"{_V3}/users/(?P<id>\d+)/", "GET", "read", e.get_user, ()),
)  # fmt: skip
#: what dbt Cloud answers but its published OpenAPI specs leave out: dbtc's run timing
OFF_SPEC = ((rf"{_OF_PROJECT}/runs/(?P<run_id>\d+)/timing/", "GET", "read", e.run_timing, ()),)
ROUTES = tuple(
    Route(re.compile(pattern), method, grant, endpoint, frozenset(params), in_spec)
    for rows, in_spec in ((_ROWS, True), (OFF_SPEC, False))
    for pattern, method, grant, endpoint, params in rows
)


def dispatch(
    account: Account, incoming: _Incoming, body: object | None, body_error: _ApiError | None
) -> _Response:
    """Django's order: append a missing slash, resolve the URL, authenticate, check the
    method, then the account and permissions.

    The caller holds `account.lock`.
    """
    found = [(r, m) for r in ROUTES if (m := r.pattern.fullmatch(incoming.path))]
    if not found:
        if any(route.pattern.fullmatch(f"{incoming.path}/") for route in ROUTES):
            return _append_slash(incoming)
        raise _ApiError.detail(404, "Not found.")
    permission = account.tokens.get(token_of(incoming.authorization) or "")
    if permission is None:
        raise _ApiError.envelope(401, "Invalid token.", developer=None)
    route, match = next(((r, m) for r, m in found if r.method == incoming.method), (None, None))
    if route is None or match is None:
        raise _ApiError.detail(405, f'Method "{incoming.method}" not allowed.')
    groups = match.groupdict()
    if groups.get("account_id") not in (None, str(account.account_id)):
        raise _ApiError.envelope(404, "Account not found.")
    if route.grant not in _GRANTS[permission]:
        raise _ApiError.envelope(403, _DENIED[route.grant])
    key = groups.get("id") or groups.get("job_id") or groups.get("run_id") or 0
    query = {name: values for name, values in incoming.query.items() if name in route.params}
    rest, parent = groups.get("remainder") or "", int(groups.get("project_id") or 0)
    return route.endpoint(account, _Call(int(key), rest, query, body, body_error, parent))


def _append_slash(incoming: _Incoming) -> _Response:
    """Django's APPEND_SLASH: a permanent redirect to the slashed path, query kept, for
    every method (a client that follows it re-sends a POST as a GET, which then gets 405)."""
    query = f"?{urlencode(incoming.query, doseq=True)}" if incoming.query else ""
    location = (("Location", f"{incoming.path}/{query}"),)
    return _Response(301, b"", content_type="text/html; charset=utf-8", headers=location)


def token_of(header: str | None) -> str | None:
    """`Token <t>` and `Bearer <t>` are equivalent in dbt Cloud."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()
