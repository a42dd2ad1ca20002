"""The doctor's checks of the connection: a token is found, dbt Cloud accepts it, the host.

The host check comes after dbt Cloud's answer, because on the legacy cloud.getdbt.com a 401
most likely means a cell-based account that must use its own access URL.
"""

from __future__ import annotations

from datachonk_hooks.account.workspace import is_legacy_host
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    DbtCloudError,
    NotFoundError,
    PermissionDeniedError,
)
from datachonk_hooks.commands.doctor.findings import Findings
from datachonk_hooks.commands.doctor.report import CONNECT, NEEDS_HOST, Check
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.settings.credentials import resolve_token
from datachonk_hooks.settings.defaults import EXAMPLE_HOST, SET_HOST


def check_token_found(found: Findings) -> Check:
    name = "token"
    if found.settings is None or found.settings.account_id is None:
        return Check(name, None, "needs the account from datachonk.yaml")
    host, account_id = found.settings.host, found.settings.account_id
    if host is None:  # tokens are stored per host; the host check says how to set it
        return Check(name, None, NEEDS_HOST)
    try:
        found.token = resolve_token(found.ws.env, host=host, account_id=account_id)
    except DatachonkError as exc:  # none found (it says how to add one), or an unsafe file
        return Check(name, False, str(exc))
    return Check(name, True, f"from {found.token.source}")


def check_token_accepted(found: Findings) -> Check:
    name = "dbt Cloud"
    if found.settings is not None and found.settings.host is None:
        return Check(name, None, NEEDS_HOST)
    if found.settings is None or found.token is None:
        return Check(name, None, "needs a token")
    host, account_id = found.settings.require_host(), found.settings.account_id
    try:
        with found.client() as client:
            found.projects = client.list_projects(with_repository=True)
    except PermissionDeniedError:
        found.connected = True
        return Check(
            name,
            True,
            f"{host} accepted the token for account {account_id} (it may not list"
            " projects: a Job Runner token)",
        )
    except AuthenticationError:
        found.rejected = True
        fix = (
            "set host in datachonk.yaml to the access URL from Account settings"
            if is_legacy_host(host)
            else "store a valid token: " + CONNECT
        )
        return Check(name, False, f"{host} rejected the token (HTTP 401)", fix)
    except NotFoundError:
        return Check(
            name,
            False,
            f"{host} has no account {account_id} that this token can see (HTTP 404)",
            "check account_id (the number after /accounts/ in dbt Cloud URLs) and that"
            " the token belongs to that account",
        )
    except DbtCloudError as exc:
        return Check(name, False, str(exc), "check the network and host, then try again")
    found.connected = True
    return Check(name, True, f"{host} accepted the token for account {account_id}")


def check_host(found: Findings) -> Check:
    name = "host"
    if found.settings is None:
        return Check(name, None, "needs datachonk.yaml")
    host = found.settings.host
    if host is None and not found.settings.configured:  # `connect` sets both
        return Check(name, None, "needs the account from datachonk.yaml")
    if host is None:
        return Check(
            name,
            False,
            "no dbt Cloud host is configured (there is no default: cloud.getdbt.com no"
            " longer serves API clients)",
            f"{SET_HOST} to your account's access URL, shown in dbt Cloud under Account"
            f" settings; it looks like {EXAMPLE_HOST}",
        )
    if not is_legacy_host(host):
        return Check(name, True, f"{host} is not the legacy cloud.getdbt.com")
    if found.rejected:
        return Check(
            name,
            False,
            f"{host} is the legacy host, where accounts with their own access URL"
            " (cell-based) answer 401",
            "set deploy.dbt_cloud.host to the access URL shown under Account settings,"
            " such as https://ab123.us1.dbt.com",
        )
    if not found.connected:
        return Check(name, None, f"{host} is the legacy host; cannot tell without a connection")
    return Check(
        name,
        True,
        f"{host} works for this account (getdbt.com URLs are being retired: prefer the"
        " access URL from Account settings)",
    )
