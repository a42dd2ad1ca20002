"""The `deploy.dbt_cloud` section of datachonk.yaml as Settings, validated with positions.

Walks the parsed document: unknown keys (with a "did you mean"), wrong types and anything
named like a credential under `deploy` are refused at the place they are written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from datachonk_hooks.settings.defaults import (
    CLOUD_SECTION,
    DETECT_KEYS,
    ENV_TOKEN,
    JOB_KEYS,
)
from datachonk_hooks.settings.detect_rules import DetectRules, parse_marker, parse_trailer
from datachonk_hooks.settings.messages import Pos, config_error, located, show, show_key
from datachonk_hooks.settings.records import JobRoute, Settings
from datachonk_hooks.settings.values import (
    CLOUD_KEYS,
    VALUE_PARSERS,
    parse_bool,
    parse_branch,
    parse_id,
    parse_schema,
)
from datachonk_hooks.settings.yaml_reader import (
    item_position,
    key_position,
    parse_deploy_section,
    parse_yaml,
    value_position,
)

# A key under `deploy` named like a credential: token, api_key, service_token, password, ...
_SECRET_KEY = re.compile(r"(?:^|_)(?:token|api_?key|secret|password|passwd)$")

_TOKEN_HELP = (
    "an API token must not be written in datachonk.yaml (it would be committed); remove it and"
    f" set {ENV_TOKEN}, or run `datachonk-hook connect` to store it safely"
)


def settings_from_text(text: str, source: str) -> Settings:
    """Settings from the file alone (file > defaults), validated with positions."""
    from datachonk_hooks.push.limits import MAX_PARSE_BYTES

    if len(text) > MAX_PARSE_BYTES:
        document, root = parse_deploy_section(text, source)
    else:
        document, root = parse_yaml(text, source)
    if document is None:
        return Settings(source=source)
    if not isinstance(document, Mapping):
        raise config_error(
            f"{located(source, root)}: expected a mapping at the top level, got {show(document)}"
        )
    if "deploy" not in document:
        return Settings(source=source)
    deploy = document["deploy"]
    deploy_pos = value_position(document, "deploy", key_position(document, "deploy", root))
    if deploy is None:
        return Settings(source=source)
    if not isinstance(deploy, Mapping):
        raise config_error(
            f"{located(source, deploy_pos)}: deploy: expected a mapping, got {show(deploy)}"
        )
    _refuse_secrets(deploy, source, deploy_pos)
    cloud = deploy.get("dbt_cloud")
    if cloud is None:
        return Settings(source=source)
    cloud_pos = value_position(deploy, "dbt_cloud", deploy_pos)
    if not isinstance(cloud, Mapping):
        raise config_error(
            f"{located(source, cloud_pos)}: {CLOUD_SECTION}: expected a mapping, got {show(cloud)}"
        )
    return _cloud_settings(cloud, source, cloud_pos)


def _cloud_settings(cloud: Mapping[Any, Any], source: str, pos: Pos) -> Settings:
    """The `deploy.dbt_cloud` mapping as Settings; null values mean "not set"."""
    settings = Settings(source=source)
    for key, value in cloud.items():
        key_pos = key_position(cloud, key, pos)
        _check_known(key, CLOUD_KEYS, CLOUD_SECTION, located(source, key_pos))
        if value is None:
            continue
        value_pos = value_position(cloud, key, key_pos)
        where = f"{located(source, value_pos)}: {CLOUD_SECTION}.{key}"
        if key == "jobs":
            settings = replace(settings, jobs=_parse_jobs(value, source, value_pos))
        elif key == "detect":
            settings = replace(settings, detect=_parse_detect(value, source, value_pos))
        else:
            parse = VALUE_PARSERS[key]
            settings = replace(settings, **{key: parse(value, where=where)})
    return settings


def _parse_jobs(value: object, source: str, pos: Pos) -> tuple[JobRoute, ...]:
    """The `jobs:` list of branch routes, in file order (the first match wins)."""
    path = f"{CLOUD_SECTION}.jobs"
    if not isinstance(value, list):
        raise config_error(
            f"{located(source, pos)}: {path}: expected a list of entries with branch and job_id,"
            f" got {show(value)}"
        )
    routes: list[JobRoute] = []
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        entry_pos = item_position(value, index, pos)
        if not isinstance(entry, Mapping):
            raise config_error(
                f"{located(source, entry_pos)}: {entry_path}: expected a mapping with branch and"
                f" job_id, got {show(entry)}"
            )
        branch: str | None = None
        options: dict[str, Any] = {}
        for key, item in entry.items():
            key_pos = key_position(entry, key, entry_pos)
            _check_known(key, JOB_KEYS, entry_path, located(source, key_pos))
            item_pos = key_pos if item is None else value_position(entry, key, key_pos)
            where = f"{located(source, item_pos)}: {entry_path}.{key}"
            if key == "branch":
                branch = parse_branch(item, where=where)
            elif item is None:
                options[key] = None  # job_id: null = never trigger; others: not set
            elif key == "job_id":
                options[key] = parse_id(item, where=where)
            elif key == "schema_override":
                options[key] = parse_schema(item, where=where)
            else:
                options[key] = parse_bool(item, where=where)
        if branch is None:
            raise config_error(f"{located(source, entry_pos)}: {entry_path}: missing branch")
        if "job_id" not in options:
            raise config_error(
                f"{located(source, entry_pos)}: {entry_path}: missing job_id (use job_id: null to"
                " never trigger for these branches)"
            )
        routes.append(JobRoute(branch=branch, **options))
    return tuple(routes)


def _parse_detect(value: object, source: str, pos: Pos) -> DetectRules:
    """The `detect:` mapping; null values keep the defaults."""
    path = f"{CLOUD_SECTION}.detect"
    if not isinstance(value, Mapping):
        raise config_error(f"{located(source, pos)}: {path}: expected a mapping, got {show(value)}")
    rules = DetectRules()
    for key, item in value.items():
        key_pos = key_position(value, key, pos)
        _check_known(key, DETECT_KEYS, path, located(source, key_pos))
        if item is None:
            continue
        where = f"{located(source, value_position(value, key, key_pos))}: {path}.{key}"
        if key == "marker":
            rules = replace(rules, marker=parse_marker(item, where=where))
        else:
            rules = replace(rules, trailer=parse_trailer(item, where=where))
    return rules


def _check_known(key: object, known: tuple[str, ...], path: str, at: str) -> None:
    """A ConfigError for a key not in `known`, with a "did you mean" hint for typos."""
    if isinstance(key, str) and key in known:
        return
    hint = ""
    if isinstance(key, str):
        import difflib

        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
    raise config_error(f"{at}: unknown key {path}.{show_key(key)}{hint}")


def _refuse_secrets(deploy: Mapping[Any, Any], source: str, pos: Pos) -> None:
    """A ConfigError for any key under `deploy` named like a credential; its value is never shown.

    Walks iteratively with a seen-set, since YAML aliases can make the tree share or loop nodes.
    """
    stack: list[tuple[object, str, Pos]] = [(deploy, "deploy", pos)]
    seen: set[int] = set()
    while stack:
        node, path, node_pos = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[object, str, Pos]] = []
        if isinstance(node, Mapping):
            for key, value in node.items():
                key_pos = key_position(node, key, node_pos)
                if isinstance(key, str) and _SECRET_KEY.search(_normal_key(key)):
                    raise config_error(
                        f"{located(source, key_pos)}: {path}.{show_key(key)}: {_TOKEN_HELP}"
                    )
                if isinstance(value, (Mapping, list)):
                    child_pos = value_position(node, key, key_pos)
                    children.append((value, f"{path}.{show_key(key)}", child_pos))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, (Mapping, list)):
                    children.append(
                        (item, f"{path}[{index}]", item_position(node, index, node_pos))
                    )
        stack.extend(reversed(children))


def _normal_key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", key.strip().lower())
