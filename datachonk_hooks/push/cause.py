"""The run's `cause`: the text dbt Cloud shows for why a run started.

dbt Cloud requires a non-empty cause; 255 characters is the longest that is known to be
accepted (Airflow truncates to it after failures with longer ones), and control characters
would break the single-line display in dbt Cloud's run list. Commit subjects, authors and
branch names are written by anyone who can push, so the cause goes through the package's one
sanitizer with hidden characters (bidi controls, zero-width characters) removed, not escaped:
dbt Cloud shows the cause to people who never see this tool's output.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from datachonk_hooks.sanitize import sanitize

MAX_CAUSE = 255
DEFAULT_TEMPLATE = "{subject}"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class CauseContext:
    """The values a cause template may use."""

    subject: str
    sha: str
    branch: str | None = None
    author: str = ""
    commits: int = 1
    models: Sequence[str] = ()

    def fields(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "sha": self.sha,
            "short_sha": self.sha[:7],
            "branch": self.branch or "",
            "author": self.author,
            "commits": str(self.commits),
            "models": ", ".join(self.models),
        }


def clean(text: str) -> str:
    """One line: line breaks and tabs become spaces, ESC sequences, other controls, bidi and
    zero-width characters go (`sanitize`, not shown as escapes), runs of whitespace collapse."""
    return _SPACES.sub(" ", sanitize(text, visible=False)).strip()


def truncate(text: str, limit: int = MAX_CAUSE) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_cause(context: CauseContext, template: str = DEFAULT_TEMPLATE) -> str:
    """The cause for a trigger: the template filled in, cleaned, never empty, <= 255 chars.

    With the default template a push of several commits reads
    `<tip subject> (+N more commits)`; the suffix is kept when the subject is truncated.
    """
    values = {k: clean(v) for k, v in context.fields().items()}
    text = clean(string.Formatter().vformat(template, (), values))
    suffix = ""
    if template == DEFAULT_TEMPLATE and context.commits > 1:
        more = context.commits - 1
        suffix = f" (+{more} more commit{'s' if more != 1 else ''})"
    if not text:
        text = f"Pushed {context.sha[:7]}" if context.sha else "Triggered by datachonk-hooks"
    return truncate(text, MAX_CAUSE - len(suffix)) + suffix
