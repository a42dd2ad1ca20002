"""Reading the two kinds of YAML detection needs: model paths and model names.

`dbt_project.yml` says where the models are (`model-paths`); a schema file names its models
(`models[].name`). Both run inside the pre-push hook on untrusted, possibly huge files, so
only the needed top-level sections are parsed, with aliases refused and nesting capped, and
ruamel.yaml is imported only when a file really has to be parsed; past the size bounds the
names are read from the lines instead.
"""

from __future__ import annotations

import re

from datachonk_hooks.push.limits import MAX_PARSE_BYTES, guard_yaml, top_level_sections

DEFAULT_MODEL_PATHS = ("models",)


def parse_model_paths(data: bytes) -> tuple[str, ...]:
    """The model folders a dbt_project.yml's content declares (the default when none).

    Only the top-level `model-paths:` and `source-paths:` entries are parsed, cut out by
    lines: a real dbt_project.yml can be hundreds of KB of model configs, which would cost
    the YAML parser seconds. A file without such lines (flow style) is parsed whole when it
    is small enough (MAX_PARSE_BYTES).
    """
    # Most projects keep the default: then there is nothing to parse (and no import to pay).
    if b"model-paths" not in data and b"source-paths" not in data:
        return DEFAULT_MODEL_PATHS
    text = data.decode("utf-8", errors="replace")
    doc: object = {}
    for key in ("model-paths", "source-paths"):
        for _, section in top_level_sections(text, key)[:1]:
            entry = load_yaml(section) if len(section) <= MAX_PARSE_BYTES else None
            if isinstance(entry, dict) and key in entry:
                assert isinstance(doc, dict)
                doc[key] = entry[key]
    if not doc and len(data) <= MAX_PARSE_BYTES:
        doc = load_yaml(text)
    if not isinstance(doc, dict):
        return DEFAULT_MODEL_PATHS
    for key in ("model-paths", "source-paths"):
        if key not in doc:
            continue
        value = doc[key]
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list):
            paths = tuple(item for item in items if isinstance(item, str) and item.strip())
            if paths:
                return paths
        return DEFAULT_MODEL_PATHS
    return DEFAULT_MODEL_PATHS


def load_yaml(data: bytes | str) -> object:
    """The YAML document in `data`, or None when it cannot be parsed (never raises).

    Aliases are refused and nesting is capped (`limits.guard_yaml`): the safe loader copies
    merged mappings at every level, so a few lines of `<<: [*a, *a]` cost 2^depth.
    """
    from ruamel.yaml import YAML

    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        yaml = YAML(typ="safe")
        guard_yaml(yaml)
        return yaml.load(text)
    except Exception:  # any malformed input: the caller falls back to a default
        return None


def model_names(text: str) -> tuple[str, ...]:
    """The `models[].name` entries of a YAML file's text, in order, without duplicates."""
    doc = load_yaml(text) if len(text) <= MAX_PARSE_BYTES else None
    if doc is None:  # large, or aliases: read the names from the lines
        return scan_model_names(text)
    if not isinstance(doc, dict):
        return ()
    models = doc.get("models")
    if not isinstance(models, list):
        return ()
    names: dict[str, None] = {}
    for item in models:
        if isinstance(item, dict):
            name = item.get("name")
            if isinstance(name, str) and name:
                names[name] = None
    return tuple(names)


def scan_model_names(text: str) -> tuple[str, ...]:
    """`models[].name` read from the lines of a block-style YAML file, without parsing it.

    For a file too large to parse in a push (or one using aliases): the entries of the
    top-level `models:` list are the lines at its first `- ` indentation, and each entry's
    `name:` is on its dash line or at that indentation plus two.
    """
    sections = top_level_sections(text, "models")
    if not sections:
        return ()
    names: dict[str, None] = {}
    indent: str | None = None
    for line in sections[0][1].splitlines()[1:]:
        item = _ITEM.match(line)
        if item is not None and (indent is None or item.group(1) == indent):
            indent = item.group(1)
            key = item.group(2)
        elif (
            indent is not None
            and line.startswith(indent + "  ")
            and line[len(indent) + 2 : len(indent) + 3] not in (" ", "\t", "-", "#")
        ):
            key = line[len(indent) + 2 :]
        else:
            continue
        found = _NAME.match(key)
        if found is not None and (name := _scalar(found.group(1))):
            names[name] = None
    return tuple(names)


_ITEM = re.compile(r"^([ \t]*)-[ \t]+(.*)$")
_NAME = re.compile(r"^name[ \t]*:[ \t]*(.*)$")


def _scalar(raw: str) -> str:
    """A one-line YAML scalar as text: quotes removed, a trailing comment dropped."""
    raw = raw.strip()
    if raw[:1] in ("'", '"') and len(raw) >= 2:
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else ""
    return (
        raw.split(" #", 1)[0].strip()
        if not raw.startswith(("&", "*", "!", "{", "[", "|", ">"))
        else ""
    )
