"""Parsing datachonk.yaml with ruamel, so every value keeps its line and column.

Every parser failure becomes one `invalid YAML` ConfigError at a `file:line:column`. ruamel is
imported inside the functions, not at module level: the hook imports the settings on every push.
"""

from __future__ import annotations

from typing import Any

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings.messages import Pos, config_error, located, show_key


def parse_deploy_section(text: str, source: str) -> tuple[object, Pos]:
    """The top-level `deploy:` entry of a large file, parsed alone, as `parse_yaml` gives it.

    ruamel parses 8 to 30 microseconds a byte here, so a datachonk.yaml over MAX_PARSE_BYTES
    (DataChonk's other sections, or a hostile push) is not parsed whole: the `deploy:` lines
    are cut out and parsed with the file's own line numbers. That needs a block mapping at
    the top level, as DataChonk writes it.
    """
    from datachonk_hooks.push.limits import (
        MAX_PARSE_BYTES,
        first_top_level,
        show_size,
        top_level_sections,
    )

    first = first_top_level(text)
    if first[:1] in ("{", "[", "-", "?", "&", "*", "!", "|", ">"):
        raise config_error(
            f"{source}: over {show_size(MAX_PARSE_BYTES)}, so only its top-level `deploy:`"
            " entry is read, and that needs a block mapping at the top level (`deploy:` at"
            " the start of a line)"
        )
    sections = top_level_sections(text, "deploy")
    if not sections:
        return None, (1, 1)
    if len(sections) > 1:
        raise config_error(
            f"{located(source, (sections[1][0] + 1, 1))}: invalid YAML: duplicate key deploy"
        )
    line, section = sections[0]
    if len(section) > MAX_PARSE_BYTES:
        raise config_error(
            f"{located(source, (line + 1, 1))}: deploy: too large ({len(section)} characters,"
            f" limit {show_size(MAX_PARSE_BYTES)})"
        )
    return parse_yaml(section, source, first_line=line)


def parse_yaml(text: str, source: str, *, first_line: int = 0) -> tuple[object, Pos]:
    """The document as ruamel round-trip objects (they carry positions) and where it starts.

    ruamel is imported here, not at module level: the hook imports this module on every push.
    Every failure of the parser, including the odd non-YAML exception from a tag such as
    `!!int x`, becomes one `invalid YAML` ConfigError with a position. Nesting is capped
    (`limits.guard_yaml`; aliases are shared, not copied, by this loader, so they are
    harmless); `first_line` (0-based) is where `text` starts in its file.
    """
    import warnings

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from datachonk_hooks.push.limits import guard_yaml

    yaml = YAML(typ="rt")
    yaml.Constructor = _constructor_class()
    guard_yaml(yaml, first_line=first_line, aliases=True)
    try:
        with warnings.catch_warnings():  # e.g. a reused anchor: noise in `git push` output
            warnings.simplefilter("ignore")
            document = yaml.load(text)
            root = _node_pos(document, (1, 1))
            if document is not None and getattr(document, "lc", None) is None:
                node = yaml.compose(text)  # a bare scalar has no positions; its node does
                root = (node.start_mark.line + 1, node.start_mark.column + 1)
    except (YAMLError, RecursionError) as exc:
        raise _invalid_yaml(exc, text, source) from None
    result: object = document
    return result, root


def _invalid_yaml(exc: Exception, text: str, source: str) -> ConfigError:
    """The one-line `invalid YAML` error for a parser failure, at the best position known."""
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    if isinstance(exc, MaxDepthExceededError):
        mark = exc.problem_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return config_error(f"{located(source, pos)}: invalid YAML: nested too deeply")
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "malformed document"
        return config_error(
            f"{located(source, pos)}: invalid YAML: {' '.join(str(problem).split())}"
        )
    if isinstance(exc, ReaderError):
        pos = _offset_pos(text, exc.position if isinstance(exc.position, int) else 0)
        code = (
            f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        )
        return config_error(f"{located(source, pos)}: invalid YAML: {code} is not allowed")
    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    return config_error(f"{located(source, (1, 1))}: invalid YAML: {reason}")


def _constructor_class() -> type[Any]:
    """ruamel's round-trip constructor, made to report duplicate keys and odd failures with a
    position (built here, not at module level, because ruamel is imported lazily)."""
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.error import YAMLError

    class Constructor(RoundTripConstructor):
        """Round-trip constructor that reports duplicate keys and odd failures with a position."""

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except YAMLError:
                raise
            except Exception:
                problem = f"cannot read this {_tag_name(node)} value"
                raise ConstructorError(None, None, problem, node.start_mark) from None

        def construct_document(self, node: Any) -> Any:
            # Deferred parts of collections (e.g. a `!!omap` with a repeated key) fail here.
            try:
                return super().construct_document(node)
            except YAMLError:
                raise
            except Exception:
                problem = "cannot read this document"
                raise ConstructorError(None, None, problem, node.start_mark) from None

        def check_mapping_key(
            self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
        ) -> bool:
            self._refuse_duplicate(key_node, mapping, key)
            return True

        def check_set_key(self, node: Any, key_node: Any, setting: Any, key: Any) -> None:
            self._refuse_duplicate(key_node, setting, key)

        def _refuse_duplicate(self, key_node: Any, container: Any, key: Any) -> None:
            try:
                duplicate = key in container
            except TypeError:
                raise ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
            if duplicate:
                problem = f"duplicate key {show_key(key)}"
                raise ConstructorError(None, None, problem, key_node.start_mark)

        def construct_plain_bool(self, node: Any) -> bool:
            # ruamel makes an anchored boolean an int subclass; ids must not accept it.
            return bool(self.construct_yaml_bool(node))

    Constructor.add_constructor("tag:yaml.org,2002:bool", Constructor.construct_plain_bool)
    return Constructor


def _tag_name(node: Any) -> str:
    tag = str(getattr(node, "tag", "") or "")
    return "!!" + tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else "tagged"


def _offset_pos(text: str, offset: int) -> Pos:
    offset = max(0, min(offset, len(text)))
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _lc_entry(container: object, key: object) -> list[int] | None:
    """ruamel's 0-based [line, col, ...] for a key or index; None when it has none (merges)."""
    data = getattr(getattr(container, "lc", None), "data", None)
    if not isinstance(data, dict):
        return None
    try:
        entry = data.get(key)
    except TypeError:
        return None
    if isinstance(entry, list) and all(isinstance(number, int) for number in entry):
        return entry
    return None


def key_position(mapping: object, key: object, fallback: Pos) -> Pos:
    entry = _lc_entry(mapping, key)
    return (entry[0] + 1, entry[1] + 1) if entry is not None and len(entry) >= 2 else fallback


def value_position(mapping: object, key: object, fallback: Pos) -> Pos:
    entry = _lc_entry(mapping, key)
    return (entry[2] + 1, entry[3] + 1) if entry is not None and len(entry) >= 4 else fallback


def item_position(sequence: object, index: int, fallback: Pos) -> Pos:
    return key_position(sequence, index, fallback)


def _node_pos(node: object, fallback: Pos) -> Pos:
    lc = getattr(node, "lc", None)
    line, column = getattr(lc, "line", None), getattr(lc, "col", None)
    if isinstance(line, int) and isinstance(column, int):
        return line + 1, column + 1
    return fallback
