"""Writing the connection keys into datachonk.yaml: only they change, byte for byte."""

from __future__ import annotations

import pytest

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings import config_edit
from datachonk_hooks.settings.config import load_settings
from datachonk_hooks.settings.config_edit import check_editable, set_connection

VALUES: dict[str, str | int] = {
    "host": "https://ab123.us1.dbt.com",
    "account_id": 70403103900001,
    "project_id": 67890,
    "job_id": 11111,
}

MIXED = """\
# DataChonk settings: keep this comment
version: 2   # and this one
models:
    - name: "orders"
      materialized: 'table'
deploy:
    dbt_cloud:
        host: 'https://old.example.com'   # the access URL
        account_id: "1"
        auto_trigger: false
        jobs:
        -   branch: main
            job_id: 22222
    other: {a: 1, b: [1, 2]}
long: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb ccc"
"""


def edit(text: str | None, values: dict[str, str | int] = VALUES) -> str:
    new = set_connection(text, values, source="datachonk.yaml")
    settings = load_settings(new, source="datachonk.yaml", env={})
    for key, value in values.items():
        assert getattr(settings, key) == value
    return new


def test_only_the_values_change_and_their_quoting_stays() -> None:
    new = edit(MIXED)
    assert new == MIXED.replace(
        "host: 'https://old.example.com'", "host: 'https://ab123.us1.dbt.com'"
    ).replace(
        'account_id: "1"\n',
        'account_id: "70403103900001"\n        project_id: 67890\n        job_id: 11111\n',
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "name: shop\n# trailing comment",
            "name: shop\n# trailing comment\ndeploy:\n  dbt_cloud:\n    host: H\n"
            "    account_id: A\n    project_id: P\n    job_id: J\n",
            id="no deploy",
        ),
        pytest.param(
            "deploy:\nx: 1\n",
            "deploy:\n  dbt_cloud:\n    host: H\n    account_id: A\n    project_id: P\n"
            "    job_id: J\nx: 1\n",
            id="empty deploy",
        ),
        pytest.param(
            "deploy:\n   other: 1   # keep\n",
            "deploy:\n   dbt_cloud:\n      host: H\n      account_id: A\n      project_id: P\n"
            "      job_id: J\n   other: 1   # keep\n",
            id="no dbt_cloud, indent 3",
        ),
        pytest.param(
            "deploy:\n  dbt_cloud:\n  other: 1\n",
            "deploy:\n  dbt_cloud:\n    host: H\n    account_id: A\n    project_id: P\n"
            "    job_id: J\n  other: 1\n",
            id="empty dbt_cloud",
        ),
        pytest.param(
            "deploy:\n  dbt_cloud:\n    host:\n    job_id: 5\n",
            "deploy:\n  dbt_cloud:\n    host: H\n    account_id: A\n    project_id: P\n"
            "    job_id: J\n",
            id="empty host value",
        ),
        pytest.param(
            "deploy:\n  dbt_cloud:\n    account_id: 3",
            "deploy:\n  dbt_cloud:\n    host: H\n    account_id: A\n    project_id: P\n"
            "    job_id: J\n",
            id="no newline at the end",
        ),
        pytest.param(
            "deploy:\r\n  dbt_cloud:\r\n    wait: true  # c\r\n",
            "deploy:\r\n  dbt_cloud:\r\n    host: H\r\n    account_id: A\r\n    project_id: P\r\n"
            "    job_id: J\r\n    wait: true  # c\r\n",
            id="CRLF",
        ),
        pytest.param(
            "# only a comment\n",
            "# only a comment\ndeploy:\n  dbt_cloud:\n    host: H\n    account_id: A\n"
            "    project_id: P\n    job_id: J\n",
            id="only comments",
        ),
        pytest.param(
            None,
            "deploy:\n  dbt_cloud:\n    host: H\n    account_id: A\n    project_id: P\n"
            "    job_id: J\n",
            id="no file",
        ),
    ],
)
def test_layouts(before: str | None, after: str) -> None:
    expected = (
        after.replace("H", str(VALUES["host"]))
        .replace("A", str(VALUES["account_id"]))
        .replace("P", str(VALUES["project_id"]))
        .replace("J", str(VALUES["job_id"]))
    )
    assert edit(before) == expected


@pytest.mark.parametrize("text", ["~\n", "null\n", "--- ~\n"])
def test_a_null_document_becomes_the_connection(text: str) -> None:
    new = edit(text)
    settings = load_settings(new, source="datachonk.yaml", env={})
    assert (settings.account_id, settings.project_id) == (
        VALUES["account_id"],
        VALUES["project_id"],
    )


def test_partial_values_leave_the_other_keys() -> None:
    text = "deploy:\n  dbt_cloud:\n    host: https://x.example.com\n    job_id: 5\n"
    new = edit(text, {"host": "http://127.0.0.1:8089", "account_id": 12345})
    assert new == (
        "deploy:\n  dbt_cloud:\n    host: http://127.0.0.1:8089\n    account_id: 12345\n"
        "    job_id: 5\n"
    )


def test_a_flow_mapping_is_rewritten_correctly() -> None:
    new = edit("keep: 1  # comment\ndeploy: {dbt_cloud: {host: x, wait: true}}\n")
    assert new.startswith("keep: 1  # comment\n")
    assert load_settings(new, source="x", env={}).wait is True


def test_odd_host_text_is_quoted() -> None:
    new = edit(None, {"host": "http://[::1]:8089", "account_id": 1})
    assert "host: http://[::1]:8089\n" in new


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("deploy: [\n", r"datachonk.yaml:\d+:\d+: invalid YAML"),
        ("- a\n- b\n", "the top level is not a mapping"),
        ("deploy: [1]\n", "deploy is not a mapping"),
        ("deploy:\n  dbt_cloud: 7\n", "deploy.dbt_cloud is not a mapping"),
    ],
)
def test_what_cannot_be_edited_is_an_error(text: str, problem: str) -> None:
    """`check_editable` (before asking anything) and the edit itself refuse alike."""
    with pytest.raises(ConfigError, match=problem):
        check_editable(text, "datachonk.yaml")
    with pytest.raises(ConfigError, match=problem):
        set_connection(text, VALUES, source="datachonk.yaml")


@pytest.mark.parametrize("text", [None, "", "# only a comment\n", "a: 1\n", "deploy:\n"])
def test_what_can_be_edited_passes_the_check(text: str | None) -> None:
    check_editable(text, "datachonk.yaml")
    edit(text)


def test_the_edit_parses_the_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []
    parse = config_edit._parse

    def counting_parse(text: str, source: str) -> tuple[object, object]:
        parses.append(source)
        return parse(text, source)

    monkeypatch.setattr(config_edit, "_parse", counting_parse)
    set_connection(MIXED, VALUES, source="datachonk.yaml")
    assert parses == ["datachonk.yaml", "edited"]  # the edit, then its verification
