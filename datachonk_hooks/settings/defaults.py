"""The names and default values of datachonk.yaml's `deploy.dbt_cloud` section.

Constants only, so every part of the settings (the records, the value parsers, the file
reader, the messages) can share them without importing one another.
"""

from __future__ import annotations

from typing import Final

#: what an access URL looks like, for messages (dbt Cloud gives every account its own)
EXAMPLE_HOST: Final = "https://ab123.us1.dbt.com"
DEFAULT_MARKER: Final = r"(?i)generated\s+(by|with)\s+datachonk"
DEFAULT_TRAILER: Final = "Generated-by: DataChonk"
DEFAULT_CAUSE: Final = "{subject}"
DEFAULT_TIMEOUT: Final = 3600
DEFAULT_REMOTE: Final = "origin"
CAUSE_FIELDS: Final = ("subject", "sha", "short_sha", "branch", "author", "commits", "models")
CONFIG_NAME: Final = "datachonk.yaml"

ENV_TOKEN: Final = "DBT_CLOUD_API_TOKEN"
ENV_ACCOUNT_ID: Final = "DBT_CLOUD_ACCOUNT_ID"
ENV_PROJECT_ID: Final = "DBT_CLOUD_PROJECT_ID"
ENV_JOB_ID: Final = "DBT_CLOUD_JOB_ID"
ENV_HOST: Final = "DBT_CLOUD_HOST"

MAX_ID: Final = 2**63 - 1  # dbt Cloud ids are 64-bit; cell-based accounts use 14 digits
MAX_TIMEOUT: Final = 7 * 24 * 3600

# the keys allowed under deploy.dbt_cloud (CLOUD_KEYS) are built from the value parsers in `values`
DETECT_KEYS: Final = ("marker", "trailer")
JOB_KEYS: Final = (
    "branch",
    "job_id",
    "schema_override",
    "select_changed",
    "wait",
    "follow",
    "auto_trigger",
)
MAX_SCHEMA: Final = 63  # the shortest common limit (PostgreSQL identifiers)

#: the section of datachonk.yaml that holds the connection, as messages name it
CLOUD_SECTION: Final = "deploy.dbt_cloud"
#: how a host is set, for the no-host message of everything that reads the settings
SET_HOST: Final = f"set {CLOUD_SECTION}.host in {CONFIG_NAME} (or {ENV_HOST})"
