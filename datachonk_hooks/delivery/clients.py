"""Making dbt Cloud clients: timeouts and retry budget from the environment, and a pool.

Every client of the package is made here (`new_client`), so the token lookup and the
DATACHONK_* seconds variables apply alike to the CLI, the hook's waiter and the local API.
The cloud modules are imported only when a client is really made: the hook imports this
module on pushes that may trigger nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datachonk_hooks.errors import ConfigError

if TYPE_CHECKING:
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.cloud.transport import RetryPolicy
    from datachonk_hooks.delivery.ledger import TriggerRecord
    from datachonk_hooks.settings.credentials import Token
    from datachonk_hooks.settings.records import Settings

#: seconds to wait for dbt Cloud to answer one request (the client's read timeout)
ENV_HTTP_TIMEOUT = "DATACHONK_HTTP_TIMEOUT"
#: seconds one request may spend in retries (5xx, 429, unreachable) before it gives up
ENV_RETRY_BUDGET = "DATACHONK_RETRY_BUDGET"


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 86400:  # also refuses nan and inf
        raise ConfigError(f"{name}: expected a number of seconds above 0, got {raw[:40]!r}")
    return value


#: every DATACHONK_* variable holding seconds (the landing timeout is read by landing.py)
SECONDS_VARIABLES = (ENV_HTTP_TIMEOUT, ENV_RETRY_BUDGET, "DATACHONK_LANDING_TIMEOUT")


def check_seconds_env(env: Mapping[str, str]) -> None:
    """Raise a one-line ConfigError for the first invalid DATACHONK_* seconds value.

    For the CLI (exit 2): someone is there to fix the typo, and a default would hide it.
    """
    for name in SECONDS_VARIABLES:
        _seconds(env, name)


def without_bad_seconds(env: Mapping[str, str], warn: Callable[[str], None]) -> dict[str, str]:
    """`env` without its invalid DATACHONK_* seconds values, each dropped with a warning.

    For the hook and the waiter: they run unattended, so a typo in the environment must
    not stop a trigger (nor crash the waiter); the default applies and the log says why.
    """
    kept = dict(env)
    for name in SECONDS_VARIABLES:
        try:
            _seconds(env, name)
        except ConfigError as exc:
            warn(f"warning: {exc}; using the default")
            kept.pop(name, None)
    return kept


def client_options(env: Mapping[str, str], retry: RetryPolicy | None = None) -> dict[str, Any]:
    """Timeouts and retry policy for a client: `retry` (or the default), with the read
    timeout and retry budget from the environment when set there.

    Slow networks need a longer read timeout than 30 s, and scripts (and the reliability
    suite) a shorter one; a bad value is a ConfigError, never a silent default.
    """
    from dataclasses import replace

    from datachonk_hooks.cloud.transport import RetryPolicy, Timeouts

    options: dict[str, Any] = {}
    read = _seconds(env, ENV_HTTP_TIMEOUT)
    if read is not None:
        options["timeouts"] = Timeouts(connect=min(Timeouts().connect, read), read=read)
    budget = _seconds(env, ENV_RETRY_BUDGET)
    if budget is not None:
        options["retry"] = replace(retry or RetryPolicy(), budget=budget)
    elif retry is not None:
        options["retry"] = retry
    return options


def new_client(
    host: str,
    account_id: int,
    env: Mapping[str, str],
    *,
    token: Token | None = None,
    retry: RetryPolicy | None = None,
) -> DbtCloudClient:
    """The one way a client is made: the token from the environment or the store unless
    given, the timeouts and retry budget as `client_options` says."""
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.settings.credentials import resolve_token

    if token is None:
        token = resolve_token(env, host=host, account_id=account_id)
    return DbtCloudClient(host, account_id, token, **client_options(env, retry))


def make_client(settings: Settings, env: Mapping[str, str]) -> DbtCloudClient:
    """A client for the configured account; a ConfigError when the account or the host is
    not configured (the account first: without one, `connect` sets up both)."""
    account_id = settings.require_account_id()
    return new_client(settings.require_host(), account_id, env)


@dataclass
class ClientPool:
    """One client per (host, account), created on first use, all closed together."""

    env: Mapping[str, str]
    factory: Callable[[str, int, Mapping[str, str]], DbtCloudClient] | None = None
    #: the host configured now, for triggers recorded while none was (see `host_for`);
    #: called only when such a trigger is sent. Default: DBT_CLOUD_HOST alone.
    configured_host: Callable[[], str | None] | None = None
    _clients: dict[tuple[str, int], DbtCloudClient] = field(default_factory=dict)

    @classmethod
    def of(cls, client: DbtCloudClient) -> ClientPool:
        """A pool holding one ready client (its owner closes it); its host is the
        configured one."""
        pool = cls(env={}, configured_host=lambda: client.host)
        pool._clients[(client.host, client.account_id)] = client
        return pool

    def host_for(self, record: TriggerRecord) -> str:
        """Where to send `record`: its recorded host, else the host configured now.

        A push made while no host was configured records its trigger with an empty host
        rather than guessing one (there is no default host any more); it goes to whatever
        host is configured when it is finally sent, so fixing datachonk.yaml (or setting
        DBT_CLOUD_HOST) and running `retry` delivers it. Still none: a NoHostError, which
        keeps the trigger pending with that message as its reason, and nothing is sent.
        """
        if record.host:
            return record.host
        if self.configured_host is not None:
            host = self.configured_host()
        else:
            from datachonk_hooks.settings.config import load_settings_file

            host = load_settings_file(None, env=self.env).host
        if host is None:
            from datachonk_hooks.settings.records import NoHostError

            raise NoHostError()
        return host

    def get(self, host: str, account_id: int) -> DbtCloudClient:
        key = (host, account_id)
        if key not in self._clients:
            self._clients[key] = (self.factory or new_client)(host, account_id, self.env)
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
