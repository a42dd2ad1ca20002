"""Tests for datachonk_hooks.settings.config: loading, validation with positions, precedence."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings.config import (
    find_config_file,
    load_settings,
    load_settings_file,
    read_config_text,
)
from datachonk_hooks.settings.defaults import (
    CAUSE_FIELDS,
    CONFIG_NAME,
    DEFAULT_MARKER,
    DEFAULT_TRAILER,
    ENV_ACCOUNT_ID,
    ENV_HOST,
    ENV_JOB_ID,
    ENV_PROJECT_ID,
    ENV_TOKEN,
    MAX_ID,
)
from datachonk_hooks.settings.detect_rules import DetectRules
from datachonk_hooks.settings.records import JobRoute, NoHostError, Overrides, Settings
from datachonk_hooks.settings.values import CLOUD_KEYS, normalize_host

SEED = """\
deploy:
  dbt_cloud:
    account_id: 12345
    project_id: 67890
    job_id: 11111
    auto_trigger: true
"""

FULL = """\
deploy:
  dbt_cloud:
    host: https://ab123.us1.dbt.com   # the account's access URL (Account settings)
    account_id: 12345
    project_id: 67890
    job_id: 11111
    auto_trigger: true                # trigger on push; false = only by hand
    # everything below is optional
    jobs:                             # branch -> job, first match wins, job_id is the fallback
      - branch: main
        job_id: 22222
      - branch: "feature/*"
        job_id: 11111
    cause: "{subject}"                # the default; placeholders: subject, sha, short_sha
    select_changed: false             # true: steps_override = dbt build --select <changed>+
    wait: false                       # the waiter also watches the run to its end
    timeout: 3600                     # seconds to wait for a run
    detect:
      marker: '(?i)generated\\s+(by|with)\\s+datachonk'   # searched in the first lines of a file
      trailer: "Generated-by: DataChonk"                  # commit trailer marking generated commits
"""

TOKEN_HELP = (
    "an API token must not be written in datachonk.yaml (it would be committed); remove it and"
    " set DBT_CLOUD_API_TOKEN, or run `datachonk-hook connect` to store it safely"
)
ID = "expected a positive integer id, got"
PLACEHOLDERS = "{subject}, {sha}, {short_sha}, {branch}, {author}, {commits}, {models}"
CAUSES = f"placeholders allowed: {PLACEHOLDERS}"
SECONDS = "expected a positive number of seconds, at most 604800 (7 days), got"


def cloud(body: str) -> str:
    """A datachonk.yaml with `body` under deploy.dbt_cloud: its first line is line 3, column 5."""
    return "deploy:\n  dbt_cloud:\n" + textwrap.indent(textwrap.dedent(body), "    ")


def load(
    text: str | None,
    env: dict[str, str] | None = None,
    overrides: Overrides | None = None,
    source: str = "datachonk.yaml",
) -> Settings:
    return load_settings(text, source=source, env=env or {}, overrides=overrides or Overrides())


def error_of(text: str | None, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(text, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert "\r" not in message
    return message


# --- loading -----------------------------------------------------------------------------------


def test_seed_minimal_form_loads() -> None:
    loaded = load(SEED)
    assert loaded == Settings(
        account_id=12345,
        project_id=67890,
        job_id=11111,
        auto_trigger=True,
        source="datachonk.yaml",
    )
    assert loaded.configured
    assert loaded.host is None  # no default: see test_no_host_has_no_default
    assert loaded.require_account_id() == 12345


def test_full_design_example_loads() -> None:
    loaded = load(FULL)
    assert loaded == Settings(
        host="https://ab123.us1.dbt.com",
        account_id=12345,
        project_id=67890,
        job_id=11111,
        auto_trigger=True,
        jobs=(JobRoute("main", 22222), JobRoute("feature/*", 11111)),
        cause="{subject}",
        select_changed=False,
        wait=False,
        timeout=3600,
        detect=DetectRules(marker=DEFAULT_MARKER, trailer=DEFAULT_TRAILER),
        source="datachonk.yaml",
    )


def test_every_field_can_be_set() -> None:
    loaded = load(
        cloud(
            """\
            host: localhost:8080
            account_id: "70403103945678"
            auto_trigger: false
            cause: "Deploy {short_sha} on {branch} by {author} ({commits} commits: {models})"
            select_changed: true
            wait: true
            timeout: 604800
            detect:
              marker: "AUTO-GENERATED"
              trailer: "X-Generator: chonk"
            """
        )
    )
    assert loaded.host == "https://localhost:8080"
    assert loaded.account_id == 70403103945678
    assert (loaded.auto_trigger, loaded.select_changed, loaded.wait) == (False, True, True)
    assert loaded.cause.startswith("Deploy {short_sha}")
    assert loaded.timeout == 604800
    assert loaded.detect == DetectRules("AUTO-GENERATED", "X-Generator: chonk")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "# only a comment\n",
        "---\n",
        "~\n",
        "other_tool: {x: 1}\n",
        "deploy:\n",
        "deploy: ~\n",
        "deploy:\n  snowflake: {account: x}\n",
        "deploy:\n  dbt_cloud:\n",
        "deploy:\n  dbt_cloud: ~\n",
        "deploy:\n  dbt_cloud: {}\n",
    ],
)
def test_nothing_configured(text: str) -> None:
    loaded = load(text)
    assert loaded == Settings(source="datachonk.yaml")
    assert not loaded.configured


def test_no_file_has_no_source() -> None:
    assert load(None) == Settings()
    assert load(None).source is None


def test_unknown_top_level_and_deploy_keys_are_left_alone() -> None:
    text = (
        "models:\n  style: kimball\n  acount_id: typo-but-not-ours\n"
        "deploy:\n  snowflake:\n    warehouse: wh\n  dbt_cloud:\n    account_id: 1\n"
        "llm: [gpt, claude]\n"
        "42: answer\n"
    )
    assert load(text).account_id == 1


def test_null_values_in_dbt_cloud_mean_not_set() -> None:
    text = cloud("host:\naccount_id:\njobs:\ncause: ~\ntimeout:\ndetect:\n  marker: ~\n")
    assert load(text) == Settings(source="datachonk.yaml")


def test_string_ids_and_yaml_ints() -> None:
    loaded = load(cloud("account_id: '12345678901234'\nproject_id: 0x10\njob_id: ' 7 '\n"))
    assert (loaded.account_id, loaded.project_id, loaded.job_id) == (12345678901234, 16, 7)


@pytest.mark.parametrize(
    "value",
    ["1", "12345678901234", "99999999999999", str(MAX_ID), f"'{MAX_ID}'", "'0042'"],
)
def test_valid_ids(value: str) -> None:
    expected = int(value.strip("'"))
    for key in ("account_id", "project_id", "job_id"):
        assert getattr(load(cloud(f"{key}: {value}\n")), key) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("abc", "'abc'"),
        ("0", "0"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("12345.0", "12345.0"),
        ("true", "true"),
        ("&anchored true", "true"),
        ("''", "''"),
        ("'1e3'", "'1e3'"),
        ("'+5'", "'+5'"),
        ("'١٢'", "'١٢'"),
        ("[1]", "a list"),
        ("{a: 1}", "a mapping"),
        ("2024-01-01", "2024-01-01"),
        ("!custom 5", "a tagged value"),
        ("'dbtc_abcdefghijklmnop'", "a value that looks like an API token (not shown)"),
        (str(MAX_ID + 1), f"{MAX_ID + 1} (ids are at most {MAX_ID})"),
        (f"'{MAX_ID + 1}'", f"'{MAX_ID + 1}' (ids are at most {MAX_ID})"),
        ("1" * 200, "a very large integer (ids are at most 9223372036854775807)"),
    ],
)
@pytest.mark.parametrize("key", ["account_id", "project_id", "job_id"])
def test_invalid_ids(key: str, value: str, shown: str) -> None:
    column = 5 + len(key) + 2
    assert error_of(cloud(f"{key}: {value}\n")) == (
        f"datachonk.yaml:3:{column}: deploy.dbt_cloud.{key}: {ID} {shown}"
    )


# --- errors with positions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the spec's examples
        (
            cloud("host: https://x.dbt.com\naccount_id: abc\n"),
            f"datachonk.yaml:4:17: deploy.dbt_cloud.account_id: {ID} 'abc'",
        ),
        (
            cloud("host: x.dbt.com\naccount_id: 1\nacount_id: 1\n"),
            "datachonk.yaml:5:5: unknown key deploy.dbt_cloud.acount_id (did you mean account_id?)",
        ),
        (
            cloud("account_id: 1\nprojectid: 2\n"),
            "datachonk.yaml:4:5: unknown key deploy.dbt_cloud.projectid (did you mean project_id?)",
        ),
        (
            cloud("frobnicate: 1\n"),
            "datachonk.yaml:3:5: unknown key deploy.dbt_cloud.frobnicate",
        ),
        (cloud("1: x\n"), "datachonk.yaml:3:5: unknown key deploy.dbt_cloud.1"),
        (
            cloud('"a\\nb": 1\n'),
            "datachonk.yaml:3:5: unknown key deploy.dbt_cloud.'a\\nb'",
        ),
        # shapes
        ("- 1\n- 2\n", "datachonk.yaml:1:1: expected a mapping at the top level, got a list"),
        (
            "\n  just text\n",
            "datachonk.yaml:2:3: expected a mapping at the top level, got 'just text'",
        ),
        ("deploy: 5\n", "datachonk.yaml:1:9: deploy: expected a mapping, got 5"),
        ("deploy: [a]\n", "datachonk.yaml:1:9: deploy: expected a mapping, got a list"),
        (
            "deploy:\n  dbt_cloud: yes\n",
            "datachonk.yaml:2:14: deploy.dbt_cloud: expected a mapping, got 'yes'",
        ),
        (
            "deploy:\n  dbt_cloud:\n    - account_id: 1\n",
            "datachonk.yaml:3:5: deploy.dbt_cloud: expected a mapping, got a list",
        ),
        # booleans
        *[
            (
                cloud(f"{key}: {value}\n"),
                f"datachonk.yaml:3:{5 + len(key) + 2}: deploy.dbt_cloud.{key}:"
                f" expected true or false, got {shown}",
            )
            for key in ("auto_trigger", "select_changed", "wait")
            for value, shown in (
                ("yes", "'yes'"),
                ("1", "1"),
                ("'true'", "'true'"),
                ("[]", "a list"),
            )
        ],
        # timeout
        *[
            (
                cloud(f"timeout: {value}\n"),
                f"datachonk.yaml:3:14: deploy.dbt_cloud.timeout: {SECONDS} {shown}",
            )
            for value, shown in (
                ("0", "0"),
                ("-5", "-5"),
                ("604801", "604801"),
                ("1.5", "1.5"),
                ("soon", "'soon'"),
                ("true", "true"),
            )
        ],
        # cause
        (
            cloud("cause: '{foo}'\n"),
            f"datachonk.yaml:3:12: deploy.dbt_cloud.cause: unknown placeholder '{{foo}}'; {CAUSES}",
        ),
        (
            cloud("cause: 'pushed {}'\n"),
            f"datachonk.yaml:3:12: deploy.dbt_cloud.cause: unknown placeholder '{{}}'; {CAUSES}",
        ),
        (
            cloud("cause: '{subject.upper}'\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: unknown placeholder '{subject.upper}';"
            f" {CAUSES}",
        ),
        (
            cloud("cause: '{commits[0]}'\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: unknown placeholder '{commits[0]}';"
            f" {CAUSES}",
        ),
        (
            cloud("cause: '{subject:{sha}}'\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: unknown placeholder '{subject:{sha}}';"
            f" {CAUSES}",
        ),
        (
            cloud("cause: '{subject'\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: invalid template (expected '}' before"
            f" end of string); {CAUSES}",
        ),
        (
            cloud("cause: 'a } b'\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: invalid template (Single '}' encountered"
            f" in format string); {CAUSES}",
        ),
        (
            cloud("cause: '{sha:d}'\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: invalid template (Unknown format code"
            f" 'd' for object of type 'str'); {CAUSES}",
        ),
        (
            cloud("cause: '  '\n"),
            "datachonk.yaml:3:12: deploy.dbt_cloud.cause: expected a non-empty text with"
            f" placeholders {PLACEHOLDERS}",
        ),
        # detect
        (
            cloud("detect:\n  marker: '(unclosed'\n"),
            "datachonk.yaml:4:15: deploy.dbt_cloud.detect.marker: invalid regular expression:"
            " missing ), unterminated subpattern at position 0",
        ),
        (
            cloud("detect:\n  marker: ''\n"),
            "datachonk.yaml:4:15: deploy.dbt_cloud.detect.marker: expected a non-empty regular"
            " expression, got ''",
        ),
        *[
            (
                cloud(f"detect:\n  trailer: {value}\n"),
                "datachonk.yaml:4:16: deploy.dbt_cloud.detect.trailer: expected a commit trailer"
                f" like 'Generated-by: DataChonk' (Key: value), got {shown}",
            )
            for value, shown in (
                ("no colon", "'no colon'"),
                ("': value'", "': value'"),
                ("'Key:'", "'Key:'"),
                ("'Bad Key: v'", "'Bad Key: v'"),
                ('"Key: a\\nb"', "'Key: a\\nb'"),
                ("5", "5"),
            )
        ],
        (
            cloud("detect:\n  markr: x\n"),
            "datachonk.yaml:4:7: unknown key deploy.dbt_cloud.detect.markr (did you mean marker?)",
        ),
        (
            cloud("detect: [marker]\n"),
            "datachonk.yaml:3:13: deploy.dbt_cloud.detect: expected a mapping, got a list",
        ),
        # jobs
        (
            cloud("jobs: main\n"),
            "datachonk.yaml:3:11: deploy.dbt_cloud.jobs: expected a list of entries with branch"
            " and job_id, got 'main'",
        ),
        (
            cloud("jobs:\n  - main\n"),
            "datachonk.yaml:4:9: deploy.dbt_cloud.jobs[0]: expected a mapping with branch and"
            " job_id, got 'main'",
        ),
        (
            cloud("jobs:\n  - branch: main\n    job_id: 0\n"),
            f"datachonk.yaml:5:17: deploy.dbt_cloud.jobs[0].job_id: {ID} 0",
        ),
        (
            cloud("jobs:\n  - branch: main\n    job_id: 1\n  - {branch: dev, jobid: 2}\n"),
            "datachonk.yaml:6:23: unknown key deploy.dbt_cloud.jobs[1].jobid"
            " (did you mean job_id?)",
        ),
        (
            cloud("jobs:\n  - branch: main\n"),
            "datachonk.yaml:4:9: deploy.dbt_cloud.jobs[0]: missing job_id (use job_id: null to"
            " never trigger for these branches)",
        ),
        (
            cloud("jobs:\n  - job_id: 5\n"),
            "datachonk.yaml:4:9: deploy.dbt_cloud.jobs[0]: missing branch",
        ),
        *[
            (
                cloud(f"jobs:\n  - branch: {value}\n    job_id: 5\n"),
                f"datachonk.yaml:4:{column}: deploy.dbt_cloud.jobs[0].branch: expected a branch"
                " name or glob such as 'main' or 'feature/*' (quote it if it looks like a number),"
                f" got {shown}",
            )
            for value, shown, column in (("''", "''", 17), ("2024", "2024", 17), ("", "null", 9))
        ],
        # host
        (
            cloud("host: http://ab123.us1.dbt.com\n"),
            "datachonk.yaml:3:11: deploy.dbt_cloud.host: 'http://ab123.us1.dbt.com' uses http://,"
            " so the API token would travel unencrypted; https is required (http is allowed only"
            " for localhost and loopback addresses)",
        ),
        (
            cloud("host: https://ab123.us1.dbt.com/api/v2\n"),
            "datachonk.yaml:3:11: deploy.dbt_cloud.host: expected the account's access URL such as"
            " https://ab123.us1.dbt.com without a path, got 'https://ab123.us1.dbt.com/api/v2'",
        ),
        (
            cloud("host: 443\n"),
            "datachonk.yaml:3:11: deploy.dbt_cloud.host: expected the account's access URL,"
            " got 443",
        ),
    ],
)
def test_errors_with_position(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_source_label_is_used_in_messages() -> None:
    message = error_of(cloud("account_id: x\n"), source="datachonk.yaml@abc1234")
    assert message.startswith("datachonk.yaml@abc1234:3:17: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: [1,\n",
            "datachonk.yaml:2:1: invalid YAML: expected the node content, but found '<stream end>'",
        ),
        ("a: 'x\n", "datachonk.yaml:2:1: invalid YAML: found unexpected end of stream"),
        ("a: b\n  c: d\n", "datachonk.yaml:2:4: invalid YAML: mapping values are not allowed here"),
        (
            "\ta: 1\n",
            "datachonk.yaml:1:1: invalid YAML: found character '\\t' that cannot start any token",
        ),
        ("a: *nowhere\n", "datachonk.yaml:1:4: invalid YAML: found undefined alias 'nowhere'"),
        ("a\n---\nb\n", "datachonk.yaml:2:1: invalid YAML: but found another document"),
        ("a: b\nc: \x07\n", "datachonk.yaml:2:4: invalid YAML: character #x0007 is not allowed"),
        ("a: !!int x\n", "datachonk.yaml:1:4: invalid YAML: cannot read this !!int value"),
        ("a: !!bool x\n", "datachonk.yaml:1:4: invalid YAML: cannot read this !!bool value"),
        ("a: !!float x\n", "datachonk.yaml:1:4: invalid YAML: cannot read this !!float value"),
        (
            "a: " + "1" * 5000 + "\n",
            "datachonk.yaml:1:4: invalid YAML: cannot read this !!int value",
        ),
        ("? [a, [b]]\n: 2\n", "datachonk.yaml:1:3: invalid YAML: unhashable key"),
        (
            "- !!omap [{a: 1}, {a: 2}]\n",
            "datachonk.yaml:1:1: invalid YAML: cannot read this document",
        ),
        ("[" * 600, "datachonk.yaml:1:51: invalid YAML: nested too deeply"),
        # duplicate keys, at the second occurrence
        ("deploy: {}\ndeploy: {}\n", "datachonk.yaml:2:1: invalid YAML: duplicate key deploy"),
        (
            cloud("account_id: 1\njob_id: 2\naccount_id: 3\n"),
            "datachonk.yaml:5:5: invalid YAML: duplicate key account_id",
        ),
        ("a: {x: 1, x: 2}\n", "datachonk.yaml:1:11: invalid YAML: duplicate key x"),
        ("!!set {a, a}\n", "datachonk.yaml:1:11: invalid YAML: duplicate key a"),
    ],
)
def test_invalid_yaml(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_duplicate_token_key_does_not_echo_values() -> None:
    message = error_of("deploy:\n  x: {token: hunter2a}\n  x: {token: hunter2b}\n")
    assert message == "datachonk.yaml:3:3: invalid YAML: duplicate key x"


def test_reused_anchor_is_not_a_warning(recwarn: pytest.WarningsRecorder) -> None:
    assert load(cloud("account_id: &a 1\nproject_id: &a 2\n")).project_id == 2
    assert len(recwarn) == 0


# --- tokens -----------------------------------------------------------------------------------

SECRET = "dbtc_TOPSECRETvalue1234567890"


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "api_token",
        "api_key",
        "dbt_cloud_api_token",
        "service_token",
        "secret",
        "password",
        "TOKEN",
        "Api-Key",
        "API Token",
        "DBT_CLOUD_API_TOKEN",
        "apikey",
        "client_secret",
        "db_password",
    ],
)
def test_token_in_dbt_cloud_is_refused_without_its_value(key: str) -> None:
    text = cloud(f"account_id: 1\nhost: x.dbt.com\n{key}: {SECRET}\n")
    message = error_of(text)
    assert message == f"datachonk.yaml:5:5: deploy.dbt_cloud.{_shown_key(key)}: {TOKEN_HELP}"
    assert SECRET not in message
    assert "TOPSECRET" not in message


def _shown_key(key: str) -> str:
    return key if " " not in key else repr(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy:\n  token: s\n", f"datachonk.yaml:2:3: deploy.token: {TOKEN_HELP}"),
        (
            "deploy:\n  snowflake:\n    password: s\n",
            f"datachonk.yaml:3:5: deploy.snowflake.password: {TOKEN_HELP}",
        ),
        (
            "deploy:\n  targets:\n    - name: prod\n      api_key: s\n",
            f"datachonk.yaml:4:7: deploy.targets[0].api_key: {TOKEN_HELP}",
        ),
        (
            cloud("jobs:\n  - branch: main\n    job_id: 1\n    token: s\n"),
            f"datachonk.yaml:6:9: deploy.dbt_cloud.jobs[0].token: {TOKEN_HELP}",
        ),
        (
            cloud("detect:\n  secret: s\n"),
            f"datachonk.yaml:4:7: deploy.dbt_cloud.detect.secret: {TOKEN_HELP}",
        ),
        # a token beats an earlier mistake: it is the thing that must not be committed
        (
            cloud("account_id: nope\ntoken: s\n"),
            f"datachonk.yaml:4:5: deploy.dbt_cloud.token: {TOKEN_HELP}",
        ),
        # aliases that loop do not hang the search
        (
            "deploy:\n  a: &x\n    - *x\n    - {api_token: s}\n",
            f"datachonk.yaml:4:8: deploy.a[1].api_token: {TOKEN_HELP}",
        ),
    ],
)
def test_token_anywhere_under_deploy_is_refused(text: str, expected: str) -> None:
    assert error_of(text) == expected


@pytest.mark.parametrize("text", ["token: s\n", "llm:\n  api_key: s\n", "deploy:\n  tokens: 3\n"])
def test_token_like_keys_outside_deploy_are_not_ours(text: str) -> None:
    assert load(text) == Settings(source="datachonk.yaml")


@pytest.mark.parametrize(
    "text",
    [
        cloud(f"account_id: {SECRET}\n"),
        cloud(f"host: https://{SECRET}.com/path\n"),
        cloud(f"job_id: 'dbtu_{'x' * 20}'\n"),
        cloud(f"wait: {'a1' * 20}\n"),
    ],
)
def test_token_pasted_into_another_key_is_not_echoed(text: str) -> None:
    message = error_of(text)
    assert "looks like an API token (not shown)" in message
    assert "TOPSECRET" not in message
    assert "x" * 20 not in message
    assert "a1" * 20 not in message


# --- cause, marker, trailer -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cause",
    [
        "{subject}",
        "DataChonk push {short_sha}",
        "{subject:.60} ({sha})",
        "{subject!r} on {branch}",
        "{{literal braces}} {models}",
        "no placeholders at all",
        *(f"{{{name}}}" for name in CAUSE_FIELDS),
    ],
)
def test_valid_cause(cause: str) -> None:
    escaped = cause.replace("'", "''")
    assert load(cloud(f"cause: '{escaped}'\n")).cause == cause


@pytest.mark.parametrize("marker", [r"@generated", r"(?m)^-- datachonk", r"\bchonk\b"])
def test_valid_marker(marker: str) -> None:
    assert load(cloud(f"detect:\n  marker: '{marker}'\n")).detect.marker == marker


@pytest.mark.parametrize("trailer", ["Generated-by: DataChonk", "X-Tool:chonk", "Made-With: a b c"])
def test_valid_trailer(trailer: str) -> None:
    assert load(cloud(f"detect:\n  trailer: '{trailer}'\n")).detect.trailer == trailer


# --- host -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://cloud.getdbt.com", "https://cloud.getdbt.com"),
        ("https://cloud.getdbt.com/", "https://cloud.getdbt.com"),
        ("  https://ab123.us1.dbt.com  ", "https://ab123.us1.dbt.com"),
        ("ab123.us1.dbt.com", "https://ab123.us1.dbt.com"),
        ("ab123.us1.dbt.com/", "https://ab123.us1.dbt.com"),
        ("HTTPS://AB123.US1.DBT.COM", "https://ab123.us1.dbt.com"),
        ("https://emea.dbt.com:8443", "https://emea.dbt.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.1.2.3", "http://127.1.2.3"),
        ("http://localhost", "http://localhost"),
        ("http://localhost:5000/", "http://localhost:5000"),
        ("http://[::1]:9", "http://[::1]:9"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
        ("localhost:8080", "https://localhost:8080"),
        ("internal_host.corp", "https://internal_host.corp"),
    ],
)
def test_normalize_host(value: str, expected: str) -> None:
    assert normalize_host(value, where="X") == expected


EXPECTED_URL = "expected the account's access URL such as https://ab123.us1.dbt.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "http://ab123.us1.dbt.com",
            "DBT_CLOUD_HOST: 'http://ab123.us1.dbt.com' uses http://, so the API token would travel"
            " unencrypted; https is required (http is allowed only for localhost and loopback"
            " addresses)",
        ),
        ("http://10.0.0.1", "DBT_CLOUD_HOST: 'http://10.0.0.1' uses http://"),
        ("http://localhost.evil.com", "DBT_CLOUD_HOST: 'http://localhost.evil.com' uses http://"),
        ("https://x.dbt.com/api", f"DBT_CLOUD_HOST: {EXPECTED_URL} without a path"),
        ("https://x.dbt.com//", f"DBT_CLOUD_HOST: {EXPECTED_URL} without a path"),
        ("https://x.dbt.com?a=1", f"DBT_CLOUD_HOST: {EXPECTED_URL} without a path"),
        ("https://x.dbt.com/#top", f"DBT_CLOUD_HOST: {EXPECTED_URL} without a path"),
        ("ftp://x.dbt.com", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'ftp://x.dbt.com' (only https"),
        ("https://", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://' (not a valid host name)"),
        ("https://x y.com", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://x y.com'"),
        (
            "https://bad!host",
            f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://bad!host' (not a valid",
        ),
        ("https://x.com:99999", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://x.com:99999' (Port"),
        ("https://x.com:0", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://x.com:0' (not a valid"),
        ("https://x.com:http", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://x.com:http' (Port"),
        ("https://[::1", f"DBT_CLOUD_HOST: {EXPECTED_URL}, got 'https://[::1' (Invalid IPv6 URL)"),
        (
            "https://user:pw@x.com",
            "DBT_CLOUD_HOST: a host URL must not contain a user name or password",
        ),
    ],
)
def test_normalize_host_refuses(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_host(value, where="DBT_CLOUD_HOST")
    assert str(info.value).startswith(expected)
    assert "pw" not in str(info.value)


# --- precedence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_file", "in_env", "flag", "expected"),
    [
        (None, None, None, None),
        (1, None, None, 1),
        (1, "2", None, 2),
        (1, "2", 3, 3),
        (None, "2", None, 2),
        (None, None, 3, 3),
        (1, None, 3, 3),
        (1, "", None, 1),
        (1, "   ", None, 1),
        (1, " 12345678901234 ", None, 12345678901234),
        (1, "not-a-number", 3, 3),  # an environment value a flag overrides is never read
    ],
)
@pytest.mark.parametrize(
    ("key", "env_name"),
    [("account_id", ENV_ACCOUNT_ID), ("project_id", ENV_PROJECT_ID), ("job_id", ENV_JOB_ID)],
)
def test_id_precedence(
    *,
    key: str,
    env_name: str,
    in_file: int | None,
    in_env: str | None,
    flag: int | None,
    expected: int | None,
) -> None:
    text = cloud(f"{key}: {in_file}\n") if in_file is not None else None
    env = {env_name: in_env} if in_env is not None else {}
    overrides = {
        "account_id": Overrides(account_id=flag),
        "project_id": Overrides(project_id=flag),
        "job_id": Overrides(job_id=flag),
    }[key]
    assert getattr(load(text, env=env, overrides=overrides), key) == expected


@pytest.mark.parametrize(
    ("in_file", "in_env", "flag", "expected"),
    [
        (None, None, None, None),
        ("file.dbt.com", None, None, "https://file.dbt.com"),
        ("file.dbt.com", "env.dbt.com", None, "https://env.dbt.com"),
        ("file.dbt.com", "https://env.dbt.com/", "flag.dbt.com", "https://flag.dbt.com"),
        (None, "http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
        ("file.dbt.com", "", None, "https://file.dbt.com"),
        (None, "http://insecure.com", "http://localhost:1", "http://localhost:1"),
    ],
)
def test_host_precedence(
    in_file: str | None, in_env: str | None, flag: str | None, expected: str | None
) -> None:
    text = cloud(f"host: {in_file}\n") if in_file is not None else None
    env = {ENV_HOST: in_env} if in_env is not None else {}
    assert load(text, env=env, overrides=Overrides(host=flag)).host == expected


NO_HOST = (
    "no dbt Cloud host: set deploy.dbt_cloud.host in datachonk.yaml (or DBT_CLOUD_HOST) to"
    " your account's access URL, shown in dbt Cloud under Account settings; it looks like"
    " https://ab123.us1.dbt.com"
)


@pytest.mark.parametrize("text", [None, SEED, cloud("host:\n")])
def test_no_host_has_no_default(text: str | None) -> None:
    """cloud.getdbt.com no longer serves API clients: without a host (`host:` with no value
    included) nothing is assumed, and `require_host` says in one line what to set, and where
    the value is found."""
    settings = load(text)
    assert settings.host is None
    with pytest.raises(NoHostError) as caught:
        settings.require_host()
    assert str(caught.value) == NO_HOST
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2
    assert load(text, env={ENV_HOST: "ab1.us1.dbt.com"}).require_host() == "https://ab1.us1.dbt.com"


def test_timeout_flag_beats_file() -> None:
    assert load(cloud("timeout: 60\n")).timeout == 60
    assert load(cloud("timeout: 60\n"), overrides=Overrides(timeout=90)).timeout == 90
    assert load(None).timeout == 3600


def test_environment_and_flags_keep_the_file_source() -> None:
    loaded = load(SEED, env={ENV_ACCOUNT_ID: "9"}, source="repo/datachonk.yaml")
    assert (loaded.account_id, loaded.source) == (9, "repo/datachonk.yaml")


def test_token_in_environment_is_not_a_setting() -> None:
    assert load(SEED, env={ENV_TOKEN: "dbtc_x"}) == load(SEED)


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        ({ENV_ACCOUNT_ID: "x"}, Overrides(), f"DBT_CLOUD_ACCOUNT_ID: {ID} 'x'"),
        ({ENV_PROJECT_ID: "0"}, Overrides(), f"DBT_CLOUD_PROJECT_ID: {ID} '0'"),
        ({ENV_JOB_ID: "-3"}, Overrides(), f"DBT_CLOUD_JOB_ID: {ID} '-3'"),
        (
            {ENV_JOB_ID: str(2**63)},
            Overrides(),
            f"DBT_CLOUD_JOB_ID: {ID} '{2**63}' (ids are at most {MAX_ID})",
        ),
        ({ENV_HOST: "http://x.com"}, Overrides(), "DBT_CLOUD_HOST: 'http://x.com' uses http://"),
        ({}, Overrides(account_id=0), f"--account-id: {ID} 0"),
        ({}, Overrides(project_id=-1), f"--project-id: {ID} -1"),
        ({}, Overrides(job_id=2**63), f"--job-id: {ID} {2**63} (ids are at most {MAX_ID})"),
        ({}, Overrides(timeout=0), f"--timeout: {SECONDS} 0"),
        ({}, Overrides(host="https://x.com/path"), f"--host: {EXPECTED_URL} without a path"),
    ],
)
def test_environment_and_flag_errors(
    env: dict[str, str], overrides: Overrides, expected: str
) -> None:
    assert error_of(SEED, env=env, overrides=overrides).startswith(expected)


# --- Settings methods -------------------------------------------------------------------------

ROUTED = Settings(
    account_id=1,
    job_id=100,
    jobs=(
        JobRoute("main", 1),
        JobRoute("release/*", 2),
        JobRoute("feature/[0-9]*", 3),
        JobRoute("*", 4),
    ),
)


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("main", 1),
        ("refs/heads/main", 1),
        ("release/1.0", 2),
        ("release/1.0/hotfix", 2),
        ("feature/123-x", 3),
        ("feature/abc", 4),
        ("Main", 4),
        (None, 100),
    ],
)
def test_job_for_branch(branch: str | None, expected: int) -> None:
    assert ROUTED.target_for_branch(branch).job_id == expected


@pytest.mark.parametrize(
    ("settings_", "branch", "expected"),
    [
        (Settings(job_id=7, jobs=(JobRoute("main", 1),)), "dev", 7),
        (Settings(job_id=7, jobs=(JobRoute("main", 1),)), "main", 1),
        (Settings(jobs=(JobRoute("main", 1),)), "dev", None),
        (Settings(), "main", None),
        (Settings(job_id=7), None, 7),
    ],
)
def test_job_for_branch_fallback(
    settings_: Settings, branch: str | None, expected: int | None
) -> None:
    assert settings_.target_for_branch(branch).job_id == expected


def test_first_matching_route_wins_in_file_order() -> None:
    text = cloud(
        "job_id: 9\njobs:\n  - {branch: 'feat*', job_id: 1}\n  - {branch: feature, job_id: 2}\n"
    )
    assert load(text).target_for_branch("feature").job_id == 1


def test_require_job_id() -> None:
    routed = Settings(job_id=7, jobs=(JobRoute("main", 1),))
    assert routed.require_job_id() == 7
    assert routed.require_job_id("main") == 1
    assert routed.require_job_id("main", explicit=5) == 5
    assert Settings().require_job_id(explicit=5) == 5
    with pytest.raises(ConfigError, match=r"^--job-id: expected a positive integer id, got 0$"):
        routed.require_job_id(explicit=0)


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        (
            "dev",
            "no dbt Cloud job id for branch 'dev': pass --job-id, set DBT_CLOUD_JOB_ID, or set"
            " deploy.dbt_cloud.job_id (or a jobs: entry for the branch) in datachonk.yaml",
        ),
        (
            None,
            "no dbt Cloud job id: pass --job-id, set DBT_CLOUD_JOB_ID, or set"
            " deploy.dbt_cloud.job_id (or a jobs: entry for the branch) in datachonk.yaml",
        ),
    ],
)
def test_require_job_id_error(branch: str | None, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(jobs=(JobRoute("main", 1),)).require_job_id(branch)
    assert str(info.value) == expected


def test_require_account_id() -> None:
    assert Settings(account_id=5).require_account_id() == 5
    with pytest.raises(ConfigError) as info:
        Settings().require_account_id()
    assert str(info.value) == (
        "no dbt Cloud account id: set DBT_CLOUD_ACCOUNT_ID or deploy.dbt_cloud.account_id in"
        " datachonk.yaml, or run `datachonk-hook connect`"
    )


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().host = "x"  # type: ignore[misc]


# --- files ------------------------------------------------------------------------------------


def test_load_settings_file(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(SEED, encoding="utf-8")
    loaded = load_settings_file(path, env={ENV_JOB_ID: "5"})
    assert (loaded.account_id, loaded.job_id, loaded.source) == (12345, 5, str(path))


def test_load_settings_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_bytes(b"\xef\xbb\xbf" + SEED.encode())
    assert load_settings_file(path, env={}).account_id == 12345


@pytest.mark.parametrize("missing", [None, Path("does/not/exist.yaml")])
def test_load_settings_file_without_a_file(tmp_path: Path, missing: Path | None) -> None:
    path = None if missing is None else tmp_path / missing
    loaded = load_settings_file(path, env={ENV_ACCOUNT_ID: "3"}, overrides=Overrides(job_id=4))
    assert loaded == Settings(account_id=3, job_id=4)


def test_load_settings_file_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(cloud("account_id: x\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"datachonk\.yaml:3:17: deploy\.dbt_cloud\.account_id"):
        load_settings_file(path, env={})
    assert str(path) in _file_error(path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_bytes(b"deploy:\n  x: caf\xe9\n")
    assert _file_error(path) == f"{path}:2:9: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.mkdir()
    message = _file_error(path)
    assert message.startswith(f"{path}: cannot read the file (")


def test_read_config_text_keeps_every_byte(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    assert read_config_text(path) is None
    path.write_bytes("\ufeffdeploy:\r\n  # café\r\n".encode())
    assert read_config_text(path) == "\ufeffdeploy:\r\n  # café\r\n"
    assert read_config_text(path / "below-a-file") is None  # NotADirectoryError
    path.unlink()
    path.mkdir()
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: cannot read the file \\("):
        read_config_text(path)


def test_cloud_keys_are_the_value_parsers_and_the_two_mappings() -> None:
    assert sorted(CLOUD_KEYS) == [
        "account_id",
        "auto_trigger",
        "cancel_superseded",
        "cause",
        "detect",
        "follow",
        "host",
        "job_id",
        "jobs",
        "notify",
        "project_id",
        "remote",
        "select_changed",
        "timeout",
        "wait",
    ]
    assert CLOUD_KEYS[-2:] == ("jobs", "detect")


def _file_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings_file(path, env={})
    return str(info.value)


def test_find_config_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deep = repo / "models" / "staging"
    deep.mkdir(parents=True)
    assert find_config_file(deep, repo) is None
    (repo / CONFIG_NAME).write_text("", encoding="utf-8")
    assert find_config_file(deep, repo) == (repo / CONFIG_NAME).resolve()
    assert find_config_file(repo, repo) == (repo / CONFIG_NAME).resolve()
    (repo / "models" / CONFIG_NAME).write_text("", encoding="utf-8")
    assert find_config_file(deep, repo) == (repo / "models" / CONFIG_NAME).resolve()
    # a file passed as start searches from its directory
    model = deep / "stg.sql"
    model.write_text("", encoding="utf-8")
    assert find_config_file(model, repo) == (repo / "models" / CONFIG_NAME).resolve()


def test_find_config_file_stops_at_the_repo_root(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text("", encoding="utf-8")
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    assert find_config_file(repo / "sub", repo) is None
    assert find_config_file(repo / "sub") == (tmp_path / CONFIG_NAME).resolve()


def test_a_directory_named_like_the_config_is_not_a_config(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).mkdir()
    assert find_config_file(tmp_path, tmp_path) is None


# --- import cost ------------------------------------------------------------------------------


def test_module_import_does_not_import_ruamel() -> None:
    code = (
        "import sys, datachonk_hooks.settings.config as c; "
        "assert not [m for m in sys.modules if m.startswith('ruamel')], 'ruamel imported'; "
        "c.load_settings(None, source='x', env={}); "
        "assert not [m for m in sys.modules if m.startswith('ruamel')], 'ruamel imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- only ConfigError escapes ------------------------------------------------------------------

YAMLISH = st.sampled_from(
    [
        "deploy:",
        "dbt_cloud:",
        "\n",
        "\n  ",
        "\n    ",
        "  ",
        "- ",
        ": ",
        "? ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "<<: ",
        "!!int ",
        "!!bool ",
        "!!float ",
        "!!omap ",
        "!!set ",
        "!!binary ",
        "!!timestamp ",
        "!x ",
        "'",
        '"',
        "#",
        "---",
        "...",
        "%YAML 1.1\n",
        "\t",
        "\x00",
        "|",
        ">",
        "~",
        "1",
        "0x1F",
        "-5",
        "1.5",
        "true",
        "yes",
        "9223372036854775808",
        "{subject}",
        "{nope}",
        "http://x",
        "(",
        *CLOUD_KEYS,
        "branch",
        "marker",
        "trailer",
        "token",
    ]
)

KEYS = st.one_of(
    st.sampled_from([*CLOUD_KEYS, "branch", "job_id", "marker", "trailer", "token", "deploy"]),
    st.text(max_size=8),
    st.integers(),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["{subject}", "{x}", "http://h", "localhost", "(", "Key: v", "main"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=20,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(text: str, env: dict[str, str] | None = None) -> Settings | ConfigError:
    try:
        return load(text, env=env)
    except ConfigError as exc:
        return exc


def _only_config_error(text: str) -> None:
    result = _outcome(text)
    if isinstance(result, ConfigError):
        assert "\n" not in str(result)
        assert str(result).startswith("datachonk.yaml:")
    else:
        assert isinstance(result, Settings)


@FUZZ
@given(st.text(max_size=300))
def test_random_text_only_raises_config_error(text: str) -> None:
    _only_config_error(text)


PREFIXES = st.sampled_from(
    ["", "deploy:\n  dbt_cloud:\n    ", "deploy:\n  dbt_cloud:\n    jobs:\n      - "]
)


@FUZZ
@given(PREFIXES, st.lists(YAMLISH, max_size=40).map("".join))
def test_yamlish_text_only_raises_config_error(prefix: str, text: str) -> None:
    _only_config_error(prefix + text)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([ENV_HOST, ENV_ACCOUNT_ID, ENV_PROJECT_ID, ENV_JOB_ID]),
        st.text(max_size=30) | st.integers(min_value=-5, max_value=2**64).map(str),
    )
)
def test_random_environment_only_raises_config_error(env: dict[str, str]) -> None:
    result = _outcome(SEED, env)
    if isinstance(result, ConfigError):
        assert str(result).split(":", 1)[0] in env
        assert "\n" not in str(result)


@FUZZ
@given(TREES, st.sampled_from(["top", "deploy", "cloud"]), st.booleans())
def test_random_documents_only_raise_config_error(tree: Any, where: str, flow: bool) -> None:
    from ruamel.yaml import YAML

    document = {"top": tree, "deploy": {"deploy": tree}, "cloud": {"deploy": {"dbt_cloud": tree}}}
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    stream = io.StringIO()
    yaml.dump(document[where], stream)
    _only_config_error(stream.getvalue())


# ----------------------------------------------------------------------------- environments


TEAM = """\
deploy:
  dbt_cloud:
    account_id: 1
    job_id: 9
    select_changed: false
    wait: false
    cancel_superseded: true
    jobs:
      - branch: main
        job_id: 22222
        wait: true
      - branch: "wip/*"
        job_id: null
      - branch: "feature/*"
        job_id: 11111
        schema_override: "dbt_{branch}"
        select_changed: true
        auto_trigger: true
"""


def team_settings() -> Settings:
    return load_settings(TEAM, source="datachonk.yaml", env={})


def test_cancel_superseded_is_read() -> None:
    assert team_settings().cancel_superseded is True
    assert load_settings(None, source="x", env={}).cancel_superseded is False


@pytest.mark.parametrize(
    ("branch", "job_id", "wait", "select", "schema", "source"),
    [
        ("main", 22222, True, False, None, "jobs[0] (branch main)"),
        ("wip/try", None, False, False, None, "jobs[1] (branch wip/*)"),
        (
            "feature/Add-Orders",
            11111,
            False,
            True,
            "dbt_feature_add_orders",
            "jobs[2] (branch feature/*)",
        ),
        ("release", 9, False, False, None, "job_id"),
        (None, 9, False, False, None, "job_id"),
    ],
)
def test_branch_resolves_to_a_target(
    branch: str | None,
    job_id: int | None,
    wait: bool,
    select: bool,
    schema: str | None,
    source: str,
) -> None:
    target = team_settings().target_for_branch(branch)
    assert (target.job_id, target.wait, target.select_changed) == (job_id, wait, select)
    assert (target.schema_override, target.source) == (schema, source)
    assert target.auto_trigger is True


@pytest.mark.parametrize(
    ("branch", "expected"),
    [("main", "main"), ("Feature/ÄB--c", "feature_b_c"), ("---", "branch"), ("x" * 80, "x" * 63)],
)
def test_schema_name_is_safe(branch: str, expected: str) -> None:
    from datachonk_hooks.settings.records import schema_name

    assert schema_name(branch) == expected


@pytest.mark.parametrize("value", ["'dbt-{branch}'", "'{branch'", "'1abc'", "5", "''"])
def test_bad_schema_override(value: str) -> None:
    text = (
        "deploy:\n  dbt_cloud:\n    jobs:\n      - branch: main\n        job_id: 1\n"
        f"        schema_override: {value}\n"
    )
    with pytest.raises(
        ConfigError, match=r"datachonk.yaml:6:26: deploy.dbt_cloud.jobs\[0\].schema_override"
    ):
        load_settings(text, source="datachonk.yaml", env={})


def test_follow_and_notify(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(
        "deploy:\n  dbt_cloud:\n    account_id: 1\n    job_id: 2\n    notify: true\n"
        "    jobs:\n      - branch: 'wip/*'\n        job_id: 3\n        follow: false\n"
    )
    settings = load_settings_file(path, env={})
    assert (settings.follow, settings.notify) == (True, True)
    assert settings.target_for_branch("wip/x").follow is False
    assert settings.target_for_branch("main").follow is True
    assert Settings().follow is True and Settings().notify is False


def test_follow_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text("deploy:\n  dbt_cloud:\n    account_id: 1\n    follow: sometimes\n")
    assert _file_error(path).startswith(f"{path}:4:13: deploy.dbt_cloud.follow: expected")
