"""A local dbt Cloud simulator (`simulator`: the state and the endpoints; `wire`: the
wire format, records and request parsing; `simulation`: how runs progress, their logs and
artifacts): the Admin API endpoints this package uses, over real HTTP.

The demo and the whole test suite talk to it exactly as they talk to dbt Cloud, so it copies
the real wire format (envelopes, trailing slashes, space-separated run timestamps, 14-digit
ids) and the real failure modes (401/403/404/405, 5xx, 429, HTML pages, dropped connections).
Runs progress lazily from a clock on every read: no background threads, and tests can drive
time with `set_clock`. Standard library only, so it runs wherever the package runs.
"""

from __future__ import annotations

from datachonk_hooks.sandbox.simulator import Sandbox, serve
from datachonk_hooks.sandbox.wire import SandboxRequest, SandboxRun

__all__ = ["Sandbox", "SandboxRequest", "SandboxRun", "serve"]
