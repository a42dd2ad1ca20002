"""Write the connection keys into datachonk.yaml and leave every other byte alone.

datachonk.yaml belongs to DataChonk as a whole, and people keep comments in it. Dumping a
ruamel round-trip document again re-indents mixed indentation and moves comment columns, so
the file is edited as text instead: the round-trip parser gives the exact spans of the four
values, the new values are spliced in (keeping each value's quoting), and missing keys are
inserted as new lines. The result is parsed again and must equal the old document plus the
new values; only for layouts the splice cannot handle (flow mappings, block scalars) is the
document dumped by ruamel's round-trip mode instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from datachonk_hooks.errors import ConfigError

CONNECTION_KEYS = ("host", "account_id", "project_id", "job_id")
_NULL_TAG = "tag:yaml.org,2002:null"
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:/._\-\[\]]*")

Values = Mapping[str, str | int]


class _CannotSplice(Exception):
    """The layout needs a structural rewrite; fall back to a round-trip dump."""


def set_connection(text: str | None, values: Values, *, source: str) -> str:
    """datachonk.yaml text with `deploy.dbt_cloud.<key>` set to each of `values`."""
    newline = "\r\n" if text and "\r\n" in text else "\n"
    if text is None or not text.strip():
        return (text or "") + _block(values, indent=2, newline=newline)
    root, data = _parse(text, source)
    if root is None:  # only comments: keep them, add the block after them
        return _ensure_newline(text, newline) + _block(values, indent=2, newline=newline)
    _check_editable_data(data, source)
    try:
        edited = _splice(text, root, values, newline)
    except _CannotSplice:
        edited = None
    if edited is None or not _has_values(edited, data, values):
        edited = _round_trip(text, values)
    return edited


def check_editable(text: str | None, source: str) -> None:
    """A ConfigError when the four keys cannot be written into this text; say so up front."""
    if text is None or not text.strip():
        return
    _check_editable_data(_parse(text, source)[1], source)


def _check_editable_data(data: Any, source: str) -> None:
    """`check_editable` for a document already parsed (round-trip data)."""
    if data is None:
        return
    where = "the top level"
    for key in ("deploy", "dbt_cloud"):
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{source}: {where} is not a mapping, so deploy.dbt_cloud cannot be written;"
                " fix the file first"
            )
        data = data.get(key)
        where = "deploy" if key == "deploy" else "deploy.dbt_cloud"
        if data is None:
            return
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: deploy.dbt_cloud is not a mapping, so its keys cannot be written;"
            " fix the file first"
        )


# --- parsing ----------------------------------------------------------------------------------


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line of someone else's
    return yaml


def _parse(text: str, source: str) -> tuple[Any, Any]:
    """(node tree, round-trip data); a ConfigError with a position for invalid YAML."""
    import warnings

    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = _yaml()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return yaml.compose(text), yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = " ".join(str(exc.problem or exc.context or "malformed document").split())
        raise ConfigError(f"{where}: invalid YAML: {problem}; fix it first") from None
    except (YAMLError, RecursionError) as exc:
        raise ConfigError(f"{source}: invalid YAML ({type(exc).__name__}); fix it first") from None


# --- the splice -------------------------------------------------------------------------------


def _splice(text: str, root: Any, values: Values, newline: str) -> str:
    from ruamel.yaml.nodes import MappingNode, ScalarNode

    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    if not isinstance(root, MappingNode) or root.flow_style:
        raise _CannotSplice
    deploy_key, deploy = _pair(root, "deploy")
    if deploy_key is None:
        if _key_column(root):
            raise _CannotSplice
        return _ensure_newline(text, newline) + _block(values, indent=2, newline=newline)
    if _is_null(deploy):
        unit = 2
        edits.append((deploy.start_mark.index, deploy.end_mark.index, ""))
        pos, prefix = _after_line(text, deploy_key.end_mark.index, newline)
        column = deploy_key.start_mark.column + unit
        body = " " * column + "dbt_cloud:" + newline
        body += _block(values, indent=unit, newline=newline, base=column + unit)
        edits.append((pos, pos, prefix + body))
        return _apply(text, edits)
    if not isinstance(deploy, MappingNode) or deploy.flow_style:
        raise _CannotSplice
    column = _key_column(deploy)
    unit = max(column - deploy_key.start_mark.column, 1)
    cloud_key, cloud = _pair(deploy, "dbt_cloud")
    if cloud_key is None:
        pos, prefix = _after_line(text, deploy_key.end_mark.index, newline)
        body = " " * column + "dbt_cloud:" + newline
        body += _block(values, indent=unit, newline=newline, base=column + unit)
        return _apply(text, [(pos, pos, prefix + body)])
    if _is_null(cloud):
        edits.append((cloud.start_mark.index, cloud.end_mark.index, ""))
        pos, prefix = _after_line(text, cloud_key.end_mark.index, newline)
        body = _block(values, indent=unit, newline=newline, base=column + unit)
        edits.append((pos, pos, prefix + body))
        return _apply(text, edits)
    if not isinstance(cloud, MappingNode) or cloud.flow_style:
        raise _CannotSplice
    key_column = _key_column(cloud)
    anchor = cloud_key.end_mark.index  # new keys go after the previous connection key's line
    inserts: dict[int, list[str]] = {}
    prefixes: dict[int, str] = {}
    for key in CONNECTION_KEYS:
        if key not in values:
            continue
        key_node, node = _pair(cloud, key)
        if key_node is None:
            pos, prefix = _after_line(text, anchor, newline)
            inserts.setdefault(pos, []).append(
                " " * key_column + f"{key}: {_render(values[key], None)}" + newline
            )
            prefixes[pos] = prefix
            continue
        if not isinstance(node, ScalarNode) or node.style in ("|", ">"):
            raise _CannotSplice
        start, end = node.start_mark.index, node.end_mark.index
        replacement = _render(values[key], node.style)
        if start == end:  # `host:` with nothing after it: the value goes after the colon
            colon = text.find(":", key_node.end_mark.index)
            if colon == -1 or text[key_node.end_mark.index : colon].strip():
                raise _CannotSplice
            start = end = colon + 1
            replacement = " " + replacement
        if "\n" in text[start:end] or "\r" in text[start:end]:
            raise _CannotSplice
        edits.append((start, end, replacement))
        anchor = max(end, key_node.end_mark.index)
    for pos, lines in inserts.items():
        edits.append((pos, pos, prefixes[pos] + "".join(lines)))
    return _apply(text, edits)


def _pair(mapping: Any, name: str) -> tuple[Any, Any]:
    """(key node, value node) of `name` among the mapping's own keys; (None, None) if absent."""
    from ruamel.yaml.nodes import ScalarNode

    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == name:
            return key_node, value_node
    return None, None


def _key_column(mapping: Any) -> int:
    return int(mapping.value[0][0].start_mark.column) if mapping.value else 0


def _is_null(node: Any) -> bool:
    from ruamel.yaml.nodes import ScalarNode

    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _after_line(text: str, index: int, newline: str) -> tuple[int, str]:
    """Where the line holding `index` ends (after its newline), and a newline to add at EOF."""
    end = text.find("\n", index)
    if end == -1:
        return len(text), newline
    return end + 1, ""


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _render(value: str | int, style: str | None) -> str:
    """A scalar in the quoting style the old value had (plain when it had none)."""
    text = str(value)
    if style == "'":
        return "'" + text.replace("'", "''") + "'"
    if style == '"' or (isinstance(value, str) and not _PLAIN_SAFE.fullmatch(text)):
        return json.dumps(text)
    return text


def _block(values: Values, *, indent: int, newline: str, base: int = 0) -> str:
    """The dbt_cloud block (or just its keys, when `base` > 0) as new text."""
    keys = "".join(
        " " * (base or 2 * indent) + f"{key}: {_render(values[key], None)}" + newline
        for key in CONNECTION_KEYS
        if key in values
    )
    if base:
        return keys
    return "deploy:" + newline + " " * indent + "dbt_cloud:" + newline + keys


def _ensure_newline(text: str, newline: str) -> str:
    return text if text.endswith(("\n", "\r")) else text + newline


# --- checking and the fallback ----------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Round-trip objects as plain dicts, lists and scalars, for comparing documents."""
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _has_values(edited: str, before: Any, values: Values) -> bool:
    """True when `edited` is the old document with exactly the new values set."""
    try:
        expected, actual = _plain(before), _plain(_parse(edited, "edited")[1])
    except (ConfigError, RecursionError):
        return False
    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return False
    deploy = expected.get("deploy") or {}
    cloud = deploy.get("dbt_cloud") or {} if isinstance(deploy, dict) else None
    if not isinstance(cloud, dict):
        return False
    expected["deploy"] = {**deploy, "dbt_cloud": {**cloud, **values}}
    actual_cloud = (actual.get("deploy") or {}).get("dbt_cloud")
    if isinstance(actual_cloud, dict):  # an id kept in quotes reads back as text: same value
        for key, value in values.items():
            if isinstance(value, int) and actual_cloud.get(key) == str(value):
                actual_cloud[key] = value
    return bool(expected == actual)


def _round_trip(text: str, values: Values) -> str:
    """The whole document dumped by ruamel's round-trip mode: comments stay, layout may not."""
    import io

    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import ScalarString

    yaml = _yaml()
    data = yaml.load(text)
    if data is None:  # a document that is only `~` or `null`: nothing to keep
        data = CommentedMap()
    deploy = data.get("deploy")
    if deploy is None:
        deploy = data["deploy"] = CommentedMap()
    cloud = deploy.get("dbt_cloud")
    if cloud is None:
        cloud = deploy["dbt_cloud"] = CommentedMap()
    for key in CONNECTION_KEYS:
        if key not in values:
            continue
        value: Any = values[key]
        old = cloud.get(key)
        if isinstance(old, ScalarString):
            value = type(old)(str(value))
        cloud[key] = value
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
