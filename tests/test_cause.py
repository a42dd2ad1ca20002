from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datachonk_hooks.push.cause import MAX_CAUSE, CauseContext, build_cause, clean

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_default_is_the_subject() -> None:
    assert build_cause(CauseContext(subject="Add orders", sha=SHA)) == "Add orders"


@pytest.mark.parametrize(
    ("commits", "expected"),
    [(1, "Add orders"), (2, "Add orders (+1 more commit)"), (5, "Add orders (+4 more commits)")],
)
def test_several_commits_are_counted(commits: int, expected: str) -> None:
    assert build_cause(CauseContext(subject="Add orders", sha=SHA, commits=commits)) == expected


def test_template_fields() -> None:
    context = CauseContext(
        subject="Add orders",
        sha=SHA,
        branch="main",
        author="Ada",
        commits=3,
        models=("stg_orders", "orders"),
    )
    cause = build_cause(context, "{author} pushed {short_sha} to {branch}: {models} ({commits})")
    assert cause == "Ada pushed 0123456 to main: stg_orders, orders (3)"


def test_long_subject_is_cut_to_255_keeping_the_suffix() -> None:
    cause = build_cause(CauseContext(subject="x" * 1000, sha=SHA, commits=3))
    assert len(cause) == MAX_CAUSE
    assert cause.endswith("… (+2 more commits)")


@pytest.mark.parametrize("subject", ["", "   ", "\x00\x01\n\t"])
def test_never_empty(subject: str) -> None:
    assert build_cause(CauseContext(subject=subject, sha=SHA)) == "Pushed 0123456"


def test_line_breaks_become_spaces_and_escape_sequences_go() -> None:
    assert clean("a\tb\nc\x1b[31md\u2028e") == "a b cd e"
    assert clean("Fix\u202e lanif\u200b.sql\x07") == "Fix lanif.sql"


@given(
    subject=st.text(),
    author=st.text(),
    commits=st.integers(min_value=1, max_value=10**6),
    template=st.sampled_from(["{subject}", "{author}: {subject} {models}", "{branch}"]),
)
def test_any_input_gives_a_valid_cause(
    subject: str, author: str, commits: int, template: str
) -> None:
    cause = build_cause(
        CauseContext(subject=subject, sha=SHA, author=author, commits=commits, models=("m",)),
        template,
    )
    assert 0 < len(cause) <= MAX_CAUSE
    assert cause == cause.strip()
    assert not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in cause)
