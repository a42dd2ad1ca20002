"""The environment variables that switch the pre-push hook's behaviour.

Set by the user (`DATACHONK_DRY_RUN`, `DATACHONK_STRICT`) or by `datachonk push`, which runs
`git push` and so can only reach its hook through the environment. A module of their own,
so that `datachonk push` (the delivery side) sets what the hook reads without importing it.
The fast path (`prefilter`) keeps its own copies: it must not import even this.
"""

from __future__ import annotations

ENV_DRY_RUN = "DATACHONK_DRY_RUN"
ENV_STRICT = "DATACHONK_STRICT"
#: set by `datachonk push`: record only; it delivers in the foreground after `git push`
ENV_FOREGROUND = "DATACHONK_PUSH_FOREGROUND"
#: set by `datachonk push --trigger-dbt-run`: trigger without generated models too
ENV_FORCE = "DATACHONK_FORCE_TRIGGER"
#: set by `datachonk push --cause`
ENV_CAUSE = "DATACHONK_CAUSE"


def truthy(value: str | None) -> bool:
    """Whether a switch is on: 1, true, yes or on, in any case."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
