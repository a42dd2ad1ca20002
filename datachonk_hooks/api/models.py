"""The local API's request and response bodies, as pydantic models.

They are the API's contract: /openapi.json is generated from them, and clients generate code
from that. Request bodies are strict (no type coercion, unknown keys refused) and refuse text
that could hide something (control, bidi or zero-width characters) before anything reaches
dbt Cloud; responses spell runs, jobs and projects as the CLI's `--json` output does.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.push.cause import clean
from datachonk_hooks.sanitize import unsafe_characters
from datachonk_hooks.settings.credentials import check_token_text
from datachonk_hooks.settings.defaults import MAX_ID
from datachonk_hooks.settings.values import normalize_host

# --------------------------------------------------------------------------- request bodies

_Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A dbt Cloud id (64-bit).")]


class _Body(BaseModel):
    """Strict JSON: `"12"` is not an id and `"yes"` is not a boolean; unknown keys are typos."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ConnectRequest(_Body):
    """Credentials to check against dbt Cloud and store, as `datachonk-hook connect` does."""

    account_id: _Id
    token: SecretStr = Field(
        min_length=1,
        max_length=4096,
        description="A dbt Cloud API token.",
        # check_token_text's rule (printable ASCII, no spaces), told to clients and generators
        json_schema_extra={"pattern": "^[!-~]+$"},
    )
    host: str | None = Field(
        default=None,
        max_length=2048,
        description="The account's access URL (dbt Cloud, Account settings), such as"
        " https://ab123.us1.dbt.com. Default: the host in datachonk.yaml (or DBT_CLOUD_HOST);"
        " without one there, 400 config_error (there is no default host).",
    )
    project_id: _Id | None = None
    job_id: _Id | None = None

    @field_validator("token")
    @classmethod
    def _token_is_one_word(cls, value: SecretStr) -> SecretStr:
        """`connect`'s own check; whitespace around it is refused too, not stripped: a program
        wrote this JSON, so that is a bug to report."""
        text = value.get_secret_value()
        try:
            if check_token_text(text) != text:
                raise ValueError("the API token must not start or end with whitespace")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("host")
    @classmethod
    def _host_is_an_access_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_host(value, where="host")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class TriggerRunRequest(_Body):
    """What to trigger; every field is optional (HEAD of the served repository by default)."""

    job_id: _Id | None = Field(
        default=None, description="Default: the `jobs:` route for the branch, else `job_id`."
    )
    cause: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Shown in dbt Cloud; cut to 255 characters. Default: from datachonk.yaml.",
    )
    git_sha: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{7,64}$",
        description="Commit to build (full or abbreviated). Default: HEAD of the repository.",
    )
    git_branch: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^\s~^:?*\[\\]+$",
        description="Branch dbt Cloud checks out. Default: the branch of HEAD (or git_sha's).",
    )
    steps_override: (
        list[Annotated[str, Field(min_length=5, max_length=4096, pattern=r"^\s*dbt\s+\S")]] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="dbt commands to run instead of the job's steps.",
    )
    force: bool = Field(default=False, description="Trigger even if this commit already ran.")
    allow_unpushed: bool = Field(
        default=False,
        description="Trigger a commit the configured git remote does not have yet (dbt Cloud"
        " clones from that remote, so its run would fail at the clone step).",
    )

    @field_validator("git_branch")
    @classmethod
    def _branch_is_plain(cls, value: str | None) -> str | None:
        """Refused, not cleaned: a program sent it, and a branch name changed here would name
        another branch (or none) in dbt Cloud."""
        return _refuse_hidden(value)

    @field_validator("cause")
    @classmethod
    def _cause_has_text(cls, value: str | None) -> str | None:
        """Line breaks and tabs are folded into spaces (an editor may send a commit message);
        any other control character, an ESC sequence, bidi or zero-width characters: 422."""
        _refuse_hidden(value, allow_whitespace=True)
        if value is not None and not clean(value):
            raise ValueError("the cause must contain visible text")
        return value


def _refuse_hidden(value: str | None, *, allow_whitespace: bool = False) -> str | None:
    """A 422 naming the characters (escaped: the answer must not carry them either)."""
    found = unsafe_characters(value, allow_whitespace=allow_whitespace) if value else []
    if found:
        raise ValueError(
            f"must not hold control, bidi or zero-width characters (found {', '.join(found[:5])})"
        )
    return value


# --------------------------------------------------------------------------- responses


class FieldProblem(BaseModel):
    field: str = Field(description="The field, dotted for nested ones (`steps_override.0`).")
    location: str = Field(description="body, path, query or header.")
    message: str
    type: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: e.g. dbt_cloud_unauthorized.")
    message: str = Field(description="One line for a human.")
    fields: list[FieldProblem] | None = Field(
        default=None, description="For validation_error: each field that is wrong."
    )


class ErrorResponse(BaseModel):
    """Every error, from this API or from dbt Cloud, has this one shape."""

    error: ErrorDetail


class RunStepOut(BaseModel):
    index: int
    name: str
    status: str


class RunOut(BaseModel):
    """A run, as `datachonk-hook run --json` prints it."""

    id: int
    status: int = Field(
        description="1 Queued, 2 Starting, 3 Running, 10 Success, 20 Error, 30 Cancelled."
    )
    status_humanized: str
    status_hint: str | None = Field(
        description="What the status means for whoever pushed: Queued: waiting for an available"
        " runner; Running: monitor progress; Success: models are live; Error: one or more"
        " steps failed; Cancelled: re-trigger if needed. Null for Starting."
    )
    status_description: str = Field(
        description="status_humanized with its hint, e.g. `Queued (waiting for an available"
        " runner)`."
    )
    is_complete: bool
    status_message: str | None
    account_id: int | None
    project_id: int | None
    job_id: int | None
    job_name: str | None
    git_sha: str | None
    git_branch: str | None
    cause: str | None
    href: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    steps: list[RunStepOut]


class TriggerRunResponse(BaseModel):
    triggered: bool = Field(
        description="False when this commit had already started a run of the job (that run"
        " is returned)."
    )
    run: RunOut


class ProjectOut(BaseModel):
    id: int
    name: str


class StatusResponse(BaseModel):
    """As `datachonk-hook status --json`: problems are reported here, not as errors."""

    host: str | None = Field(description="The access URL in force; null when none is set.")
    account_id: int | None
    project_id: int | None
    job_id: int | None
    config_file: str | None = Field(description="The datachonk.yaml in force, if any.")
    token_source: str | None = Field(description="Where the token came from; never the token.")
    accepted: bool = Field(description="dbt Cloud accepted the token.")
    problem: str | None = Field(description="What is missing or wrong, in one line.")
    projects: list[ProjectOut] | None = Field(
        description="The account's projects; null when they could not be listed."
    )


class LastRunOut(BaseModel):
    id: int
    status: int
    status_humanized: str
    href: str | None
    created_at: str | None
    finished_at: str | None


class JobOut(BaseModel):
    """As `datachonk-hook jobs --json`."""

    id: int
    name: str
    project_id: int | None
    environment_id: int | None
    job_type: str | None
    active: bool
    triggers: list[str]
    last_run: LastRunOut | None = None


class JobsResponse(BaseModel):
    project_id: int
    jobs: list[JobOut]


class ConnectResponse(BaseModel):
    """What was verified with dbt Cloud and saved; project and job null: left as they were."""

    host: str
    account_id: int
    project: ProjectOut | None
    job: JobOut | None
    projects: list[ProjectOut] | None = Field(
        description="The account's projects; null when the token may not list them."
    )
    config_file: str = Field(description="The datachonk.yaml that was written.")
    token_stored_in: str = Field(description="The keyring or the credentials file.")
