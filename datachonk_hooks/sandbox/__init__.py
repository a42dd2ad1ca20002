"""A local dbt Cloud simulator: the Admin API endpoints this package and the common
third-party clients use, over real HTTP or https.

`simulator` (the `Sandbox` and `serve`) owns the account's `state` and the faults tests ask
for; `routes` maps method and path to the `endpoints`, which answer in the JSON `shapes` of
dbt Cloud (`accounts` for accounts and users) after `parsing` the request and applying the
list `filters`; `server` speaks HTTP, and `tls` makes its throw-away certificate authority;
`faults` are the answers of a failing service; `simulation` is how runs progress and the logs
and artifacts they leave; `wire` holds the vocabulary (statuses, records, envelopes) they all
share.

The demo and the whole test suite talk to it exactly as they talk to dbt Cloud, so it copies
the real wire format (envelopes, trailing slashes, space-separated run timestamps, 14-digit
ids) and the real failure modes (401/403/404/405, 5xx, 429, HTML pages, dropped connections).
Runs progress lazily from a clock on every read: no background threads, and tests can drive
time with `set_clock`. Standard library only, so it runs wherever the package runs, except
for `--tls`, which needs `trustme` (the `tls` extra).
"""

from __future__ import annotations

from datachonk_hooks.sandbox.simulator import Sandbox, serve
from datachonk_hooks.sandbox.wire import SandboxRequest, SandboxRun

__all__ = ["Sandbox", "SandboxRequest", "SandboxRun", "serve"]
