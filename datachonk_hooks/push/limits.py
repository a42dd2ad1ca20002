"""Bounds on what the hook reads from a push, so no pushed file can hold a push up.

Anyone who can push decides what datachonk.yaml, dbt_project.yml and the model files hold,
and the hook reads them on every push. ruamel.yaml is pure Python: measured on this
machine, it parses 8 to 30 microseconds a byte, so 1 MiB of dense YAML costs 8 to 25 s (a
5.7 MB datachonk.yaml took 21 s). Hence three bounds:

- a file over MAX_FILE_BYTES (1 MiB; a model file: MAX_MODEL_BYTES, 16 MiB) is not read at
  all: its size comes from the object header, before a byte of it is inflated, and the
  message says so;
- a YAML file over MAX_PARSE_BYTES (32 KiB) is not parsed whole: only the top-level section
  the hook needs (`deploy:` of datachonk.yaml, `model-paths:` of dbt_project.yml) is cut out
  by lines and parsed, at most MAX_PARSE_BYTES of it. Comments and every other section of a
  large file cost a line scan;
- nesting is capped at MAX_YAML_DEPTH (deep nesting cost seconds before Python's recursion
  limit stopped it), and the safe loader refuses aliases (`*name`): it copies merged
  mappings (`<<: [*a, *a]`) at every level, 2^depth work (0.7 s for 18 lines here). The
  round-trip loader (datachonk.yaml) shares aliased nodes instead of copying them, so a
  "billion laughs" costs it nothing and aliases stay allowed there.

Standard library only at import time: the hook imports this on every push that reaches the
slow path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pygit2

MAX_FILE_BYTES = 1 << 20
#: A model file is judged by its first lines only, but pygit2 inflates a whole blob to give
#: them (0.3 s and 100 MB of memory for a 100 MB file here): larger ones are not read.
MAX_MODEL_BYTES = 16 << 20
MAX_PARSE_BYTES = 32 << 10
MAX_YAML_DEPTH = 50

# A top-level line: not blank, not a comment, not indented.
_TOP_LEVEL = re.compile(r"^[^\s#]", re.MULTILINE)


def show_size(limit: int) -> str:
    """`1 MiB`, `32 KiB`: how a limit reads in a message."""
    if limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    return f"{limit >> 10} KiB" if limit % 1024 == 0 else f"{limit} bytes"


def too_large(label: str, size: int, limit: int = MAX_FILE_BYTES) -> str:
    """The one-line message for a file over a limit: `label: too large (N bytes, limit 1 MiB)`."""
    return f"{label}: too large ({size} bytes, limit {show_size(limit)})"


def blob_size(repo: pygit2.Repository, oid: pygit2.Oid) -> int:
    """A blob's size from its object header: a loose object is only inflated this far, and
    a packed one answers from its pack entry, so a 100 MB blob costs no 100 MB here."""
    return int(repo.odb.read_header(oid)[1])


def top_level_sections(text: str, key: str) -> list[tuple[int, str]]:
    """(0-based first line, text) of each top-level block mapping entry `key:` in `text`.

    An entry runs from its key's line to the next line that starts in column 0 with
    anything but a comment (the next key, `---`, `...`), without the comment lines in
    column 0 and blank lines at its end (they belong to no entry, and 1 MiB of them must not
    make the entry too large to parse). Quoted keys are found too. A file that is not a
    block mapping at the top level (`{...}`, a list) has no sections.
    """
    key_line = re.compile(
        rf"""(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')[ \t]*:(?:\s|$)"""
    )
    starts = [m.start() for m in _TOP_LEVEL.finditer(text)]
    sections = []
    for index, start in enumerate(starts):
        if key_line.match(text, start):
            end = starts[index + 1] if index + 1 < len(starts) else len(text)
            end = _without_trailing_comments(text, start, end)
            sections.append((text.count("\n", 0, start), text[start:end]))
    return sections


def _without_trailing_comments(text: str, start: int, end: int) -> int:
    """`end` moved back over the blank lines and column-0 comment lines that end the
    section text[start:end] (line by line: linear in what is dropped)."""
    while end > start:
        line_start = text.rfind("\n", start, end - 1) + 1
        if line_start <= start:
            return end  # the key's own line stays
        line = text[line_start:end]
        if line.strip() and not line.startswith("#"):
            return end
        end = line_start
    return end


def first_top_level(text: str) -> str:
    """The first top-level line that is not a directive or document marker ("" if none)."""
    for match in _TOP_LEVEL.finditer(text.removeprefix("\ufeff")):
        line = text[match.start() : text.find("\n", match.start()) % (len(text) + 1)]
        if not line.startswith(("%", "---")):
            return line
    return ""


def guard_yaml(yaml: Any, *, first_line: int = 0, aliases: bool = False) -> None:
    """Make a ruamel `YAML` refuse deep nesting and (unless `aliases`) aliases, and count
    lines from `first_line` (0-based), so a cut-out section reports its file's line numbers."""
    from ruamel.yaml.composer import Composer, ComposerError
    from ruamel.yaml.events import AliasEvent
    from ruamel.yaml.reader import Reader

    class NoAliasComposer(Composer):
        """Refuses `*alias` where it appears (with its position)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.parser.check_event(AliasEvent):
                event = self.parser.peek_event()
                raise ComposerError(
                    None,
                    None,
                    f"aliases (*{event.anchor}) are not supported here",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

    if not aliases:
        yaml.Composer = NoAliasComposer
    yaml.max_depth = MAX_YAML_DEPTH
    if first_line:
        base = yaml.Reader or Reader  # None until the first load picks the default

        class OffsetReader(base):  # type: ignore[misc,valid-type]
            """Counts lines from `first_line`: the section's place in its file."""

            def reset_reader(self) -> None:
                super().reset_reader()
                self.line = first_line

        yaml.Reader = OffsetReader
