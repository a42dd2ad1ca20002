"""The JSON of the account itself and of its users, field for field as the specs'
`AccountResponse`, `UserResponse` (v2 and v3 `/users/`) and `AccountUser` (v3 user detail),
so clients that read the account before anything else (`dbt-cloud account get`, dbtc's
`get_account`) find every field they expect."""

from __future__ import annotations

import json

from datachonk_hooks.sandbox.state import Account
from datachonk_hooks.sandbox.wire import _User

# Fields whose values never vary in this simulation, written as they appear on the wire.
_ACCOUNT_FIXED = (
    '{"plan": "enterprise", "run_slots": 5, "developer_seats": 10, "it_seats": 1,'
    ' "explorer_seats": 0, "analyst_seats": 0, "read_only_seats": 5, "locked": false,'
    ' "lock_reason": null, "lock_cause": null, "unlocked_at": null, "pending_cancel": false,'
    ' "billing_email_address": null, "pod_memory_request_mebibytes": 600,'
    ' "develop_pod_memory_request_mebibytes": 600, "run_duration_limit_seconds": 86400,'
    ' "queue_limit": 50, "enterprise_login_slug": null, "business_critical": false,'
    ' "starter_repo_url": null, "git_auth_level": "team", "trial_end_date": null,'
    ' "static_subdomain": null, "vanity_subdomain": null, "run_locked_until": null,'
    ' "state": 1, "docs_job_id": null, "freshness_job_id": null,'
    ' "copilot_locked_until": null, "agent_credit_locked": false,'
    ' "account_migration_events": [], "groups": []}'
)
_USER_FIXED = (
    '{"apitoken_last_used": null, "azure_active_directory_connected": false,'
    ' "azure_active_directory_token_retrieval_failure": false,'
    ' "azure_active_directory_username": null, "email_connected": true,'
    ' "email_verified": true, "enterprise_connected": false,'
    ' "enterprise_authentication_method": null, "github_connected": false,'
    ' "github_username": null, "gitlab_connected": false, "gitlab_username": null,'
    ' "is_active": true, "is_staff": false, "last_login": null, "sso_only_user": false,'
    ' "github_token_retrieval_failure": false, "gitlab_token_retrieval_failure": false,'
    ' "auth_provider_infos": {}}'
)


def account_json(account: Account) -> dict[str, object]:
    created = f"{account.clock.at(0):%Y-%m-%dT%H:%M:%S.%f}+00:00"
    data: dict[str, object] = {"id": account.account_id, "name": account.name}
    data.update(json.loads(_ACCOUNT_FIXED))
    identifier = f"act_{account.account_id}"
    return {**data, "identifier": identifier, "created_at": created, "updated_at": created}


def user_json(account: Account, user: _User) -> dict[str, object]:
    """A user as the users list has it: with their permissions and license in this account."""
    created = f"{account.clock.at(user.created_s):%Y-%m-%dT%H:%M:%S.%f}+00:00"
    data: dict[str, object] = {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
    }
    data.update(json.loads(_USER_FIXED), created_at=created)
    membership = {"id": user.id, "account_id": account.account_id, "user_id": user.id}
    data["permissions"] = [{**membership, "license_type": "developer", "state": 1}]
    data["licenses"] = {str(account.account_id): {**membership, "license_type": "developer"}}
    return data


def account_user_json(account: Account, user: _User) -> dict[str, object]:
    """One user of the account (v3 `/users/{id}/`): the shorter `AccountUser` shape."""
    created = f"{account.clock.at(user.created_s):%Y-%m-%dT%H:%M:%S.%f}+00:00"
    return {
        "id": user.id,
        "created_at": created,
        "updated_at": created,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "fullname": f"{user.first_name} {user.last_name}",
        "email_verified": True,
        "license": "developer",
        "is_active": True,
        "is_staff": False,
        "scim_managed": False,
    }
