"""The one sanitizer for text from outside, and every path that must go through it.

A table of hostile strings with what comes out, a property over any text, then the paths
one by one (cause, monitor, history, account tables, waiter.log, ledger reasons) and end to
end through real parts: the simulator answering a 500 whose message tries to clear the screen,
set the window title, ring the bell and reverse the text, seen through `run`, `history`,
`retry`, the waiter's log and the ledger; and a commit and branch full of bidi and zero-width
characters, seen at the simulator and in `history`.
"""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datachonk_hooks.account.status import Status
from datachonk_hooks.account.tables import projects_table, table
from datachonk_hooks.cloud.records import Project, Run, RunStep
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.commands.history import history_lines
from datachonk_hooks.delivery.landing import log_line
from datachonk_hooks.delivery.ledger import Ledger, TriggerState
from datachonk_hooks.monitor.watcher import describe, failure_report
from datachonk_hooks.push.cause import CauseContext, build_cause, clean
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.sanitize import sanitize, unsafe_characters
from tests.e2e import BIN, Clone, make_clone, pre_commit_clone, quiet
from tests.helpers import GENERATED_SQL, config_yaml, git
from tests.reliability import no_waiters_left, wait_for

ESC, BEL = "\x1b", "\x07"
#: the issue's 500 message: clear the screen, set the window title, ring, reverse the rest
HOSTILE = f"boom {ESC}[2J{ESC}]0;pwned{BEL}\u202e gnp.exe"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
RUN_POST = r"/jobs/\d+/run/$"


def forbidden(text: str, *, newlines: bool = False) -> list[str]:
    """What must never come out: C0/C1 controls (newlines only where allowed), DEL, ESC,
    bidi and zero-width characters, lone surrogates."""
    allowed = "\n" if newlines else ""
    return [
        char
        for char in text
        if (
            (ord(char) < 0x20 and char not in allowed)
            or 0x7F <= ord(char) <= 0x9F
            or char in BIDI + ZERO_WIDTH + "\u2028\u2029"
            or 0xD800 <= ord(char) <= 0xDFFF
        )
    ]


# ----------------------------------------------------------------------------- the table

CASES = [
    # (input, shown in a terminal or log, in a cause (visible=False))
    ("plain text, untouched", "plain text, untouched", "plain text, untouched"),
    (HOSTILE, "boom \\u202e gnp.exe", "boom  gnp.exe"),
    (f"{ESC}[31mred{ESC}[0m", "red", "red"),
    (f"{ESC}[38;5;196mred", "red", "red"),
    (f"title{ESC}]2;owned{ESC}\\ done", "title done", "title done"),
    (f"{ESC}]8;;http://evil.example/{ESC}\\link{ESC}]8;;{ESC}\\", "link", "link"),
    (f"{ESC}P+q{ESC}\\dcs", "dcs", "dcs"),
    (f"reset{ESC}c and{ESC}(B charset{ESC}7", "reset and charset", "reset and charset"),
    ("\x9b2J8-bit csi\x9d0;t\x07", "8-bit csi", "8-bit csi"),
    (f"unterminated {ESC}]0;title", "unterminated 0;title", "unterminated 0;title"),
    (f"lone {ESC}", "lone \\x1b", "lone "),
    ("bell\x07 null\x00 del\x7f nel-less c1\x90", "bell\\x07 null\\x00 del\\x7f nel-less c1\\x90",
     "bell null del nel-less c1"),
    ("line\r\nbreaks\rand\nmore\x85\u2028\u2029end", "line breaks and more end",
     "line breaks and more end"),
    ("tab\there", "tab here", "tab here"),
    ("safe\u202etxt.exe", "safe\\u202etxt.exe", "safetxt.exe"),
    ("\u2066isolate\u2069 \u200fmark\u061c", "\\u2066isolate\\u2069 \\u200fmark\\u061c",
     "isolate mark"),
    ("zero\u200bwidth\u200c\u200d\u2060\ufeff", "zero\\u200bwidth\\u200c\\u200d\\u2060\\ufeff",
     "zerowidth"),
    ("tag\U000e0041\U000e0042", "tag\\U000e0041\\U000e0042", "tag"),
    ("surrogate\ud800", "surrogate\\ud800", "surrogate"),
    ("ünïcödé, 日本語, emoji 🎉 stay", "ünïcödé, 日本語, emoji 🎉 stay",
     "ünïcödé, 日本語, emoji 🎉 stay"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "shown", "cause"), CASES)
def test_hostile_strings(text: str, shown: str, cause: str) -> None:
    assert sanitize(text) == shown
    assert sanitize(text, visible=False) == cause
    assert sanitize(shown) == shown  # idempotent


def test_multiline_keeps_line_breaks_only() -> None:
    logs = f"one\r\ntwo{ESC}[1m\rthree\tcol\u2028four{BEL}\n"
    assert sanitize(logs, multiline=True) == "one\ntwo\nthree col\nfour\\x07\n"


def test_unsafe_characters_names_them_once_in_order() -> None:
    assert unsafe_characters("main") == []
    found = unsafe_characters(f"a{ESC}[2J{BEL}{ESC}\u202e\tb")
    assert found == ["\\x1b", "\\x07", "\\u202e", "\\t"]
    assert unsafe_characters("a\r\n\tb\u200b", allow_whitespace=True) == ["\\u200b"]
    assert unsafe_characters("ünïcödé/日本") == []


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        st.one_of(
            st.characters(codec=None),
            # the control, format, separator and surrogate categories, weighted up
            st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp"]),
            st.sampled_from([ESC, BEL, "[", "]", "\\", ";", "0", "\x9b", "\x9c", "\x9d", "\r"]),
            st.sampled_from(list(BIDI + ZERO_WIDTH)),
        )
    ),
    st.booleans(),
    st.booleans(),
)
def test_nothing_hostile_ever_comes_out(text: str, multiline: bool, visible: bool) -> None:
    out = sanitize(text, multiline=multiline, visible=visible)
    assert forbidden(out, newlines=multiline) == []
    assert ESC not in out
    assert sanitize(out, multiline=multiline, visible=visible) == out
    out.encode("utf-8")  # writable to any UTF-8 terminal or file
    if multiline:
        assert sanitize(text, visible=visible).count("\n") == 0


@given(st.text(st.characters(codec="ascii", categories=["L", "N", "P", "S", "Zs"])))
def test_printable_text_is_untouched(text: str) -> None:
    assert sanitize(text) == text == sanitize(text, visible=False)


def test_every_bidi_and_zero_width_character_is_a_format_character() -> None:
    """The lists are the Unicode ones: each is a Cf (format) character."""
    assert {unicodedata.category(char) for char in BIDI + ZERO_WIDTH} == {"Cf"}


# ----------------------------------------------------------------------------- each path


def test_the_cause_is_clean_at_every_placeholder() -> None:
    context = CauseContext(
        subject=f"Add\u202e orders\u200b{ESC}[2J",
        sha="0123456789abcdef",
        branch="feat/\u2066x\u2069",
        author=f"Mallory{BEL}",
        models=("orders\u200d",),
    )
    cause = build_cause(context, "{subject} on {branch} by {author}: {models}")
    assert cause == "Add orders on feat/x by Mallory: orders"
    assert clean(f"{ESC}]0;t{BEL}\u202e") == ""
    assert build_cause(CauseContext(subject="\u202e\u200b", sha="0123456")) == "Pushed 0123456"


def _run(**changes: object) -> Run:
    step = RunStep(
        index=1,
        name=f"Invoke {ESC}]0;pwned{BEL}dbt build\u202e",
        status=RunStatus.ERROR,
        logs=f"ok line\n{ESC}[31mDatabase Error{ESC}[0m in\u202e model\r\nlast{BEL} line\n",
    )
    values: dict[str, object] = {
        "id": 7,
        "status": RunStatus.ERROR,
        "status_message": f"failed {ESC}[2J\u202e",
        "href": f"https://example.invalid/7{ESC}]0;t{BEL}",
        "steps": (step,),
    }
    values.update(changes)
    return Run(**values)  # type: ignore[arg-type]


def test_status_lines_step_names_and_the_log_excerpt() -> None:
    report = failure_report(_run())
    assert forbidden(report, newlines=True) == [] and ESC not in report
    assert report.splitlines() == [
        "run 7 failed (one or more steps failed): failed \\u202e",
        "failing step 1: Invoke dbt build\\u202e",
        "--- last 3 lines of its logs ---",
        "ok line",
        "Database Error in\\u202e model",
        "last\\x07 line",
        "---",
        "see https://example.invalid/7",
    ]
    line = describe(_run(status=RunStatus.RUNNING), 5)
    assert "\n" not in line and forbidden(line) == []
    assert "Invoke dbt build\\u202e" in line


def test_history_lines_sanitize_branch_cause_and_reason(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        request = TriggerRequest(
            cause=f"cause{BEL}\u200b", git_sha="0" * 40, git_branch=f"x\u202e{ESC}[2J"
        )
        row, _ = ledger.add_trigger(
            host="https://cloud.example", account_id=1, job_id=2, request=request, source="manual"
        )
        ledger.claim(row.id)
        ledger.mark_pending(row.id, f"dbt Cloud said {HOSTILE}")
        [record] = ledger.history()
    assert record.reason == "dbt Cloud said boom \\u202e gnp.exe"  # sanitized at the write
    text = "\n".join(history_lines([record]))
    assert forbidden(text, newlines=True) == [] and ESC not in text
    assert "x\\u202e" in text
    assert "cause: cause\\x07\\u200b" in text
    assert "why: dbt Cloud said boom \\u202e gnp.exe" in text


def test_account_tables_and_status_are_sanitized() -> None:
    evil = Project(1, f"shop{ESC}]0;pwned{BEL}\u202e", 12345)
    lines = projects_table([evil, Project(22, "b", 12345)])
    assert lines == ["ID  NAME", "1   shop\\u202e", "22  b"]
    status = Status(
        host="https://cloud.example",
        account_id=12345,
        project_id=None,
        job_id=None,
        config_file=None,
        token_source="env",
        accepted=False,
        problem=f"dbt Cloud had a server error ({HOSTILE})",
        projects=(evil,),
        exit_code=5,
    )
    text = "\n".join(status.lines())
    assert forbidden(text, newlines=True) == [] and ESC not in text and "pwned" not in text
    assert table(["A"], [["\u200b"]]) == ["A", "\\u200b"]


def test_waiter_log_lines_are_one_sanitized_line() -> None:
    out = io.StringIO()
    log_line(3, out)(f"job 11111 stays pending: {HOSTILE}\nforged line")
    [line] = out.getvalue().splitlines()
    assert forbidden(line) == [] and ESC not in line
    assert line.endswith("stays pending: boom \\u202e gnp.exe forged line")


# ----------------------------------------------------------------------------- end to end


def _hook(clone: Clone, *args: str) -> tuple[int, str, str]:
    done = clone.run(str(BIN / "datachonk-hook"), *args, check=False)
    return done.returncode, done.stdout, done.stderr


def _assert_clean(what: str, text: str) -> None:
    assert forbidden(text, newlines=True) == [], (what, text)
    assert ESC not in text and "pwned" not in text, (what, text)


def test_a_hostile_500_message_through_run_history_and_the_ledger(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    clone = make_clone(tmp_path, "work", remote, {**env, "DATACHONK_RETRY_BUDGET": "2"})
    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    cloud.fail("500", method="POST", path=RUN_POST, times=10_000, message=HOSTILE)

    code, out, err = _hook(clone, "run")
    assert code == 5, out + err
    _assert_clean("run", out + err)
    assert err.startswith("Error: dbt Cloud had a server error (HTTP 500 (boom \\u202e gnp.exe")

    code, out, err = _hook(clone, "history")
    _assert_clean("history", out + err)
    assert "why: dbt Cloud had a server error (HTTP 500 (boom \\u202e gnp.exe" in out
    code, out, err = _hook(clone, "history", "--json")
    _assert_clean("history --json", out + err)

    code, out, err = _hook(clone, "retry")
    assert code == 5
    _assert_clean("retry", out + err)

    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.PENDING and record.reason is not None
    _assert_clean("ledger reason", record.reason)
    assert "\\u202e" in record.reason  # a reader sees that something was there


@pytest.mark.slow
def test_a_hostile_500_message_through_a_push_and_the_waiter_log(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    clone = pre_commit_clone(tmp_path, remote, {**env, "DATACHONK_RETRY_BUDGET": "2"})
    with no_waiters_left(clone.path):
        clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
        cloud.fail("500", method="POST", path=RUN_POST, times=10_000, message=HOSTILE)
        pushed = clone.push("origin", "main")
        _assert_clean("push", pushed.stdout + pushed.stderr)
        wait_for(lambda: quiet(clone), 60, "the waiter")
    log = clone.waiter_log()
    assert "stays pending" in log, log
    _assert_clean("waiter.log", log)
    assert "boom \\u202e gnp.exe" in log
    _, out, err = _hook(clone, "history")
    _assert_clean("history", out + err)
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert record.reason is not None
    _assert_clean("ledger reason", record.reason)


def test_bidi_and_zero_width_in_a_commit_and_branch_reach_neither_cause_nor_history(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    clone = make_clone(tmp_path, "work", remote, env)
    branch = "feat/\u202egnp\u200b"
    git(clone.path, "checkout", "--quiet", "-b", branch)
    config = config_yaml(cloud.url, extra='    cause: "{subject} [{branch}]"\n')
    sha = clone.commit(
        {"models/staging/stg_orders.sql": GENERATED_SQL, "datachonk.yaml": config},
        f"Add\u2066 orders\u2069\u200d model\u202e{ESC}[2J{BEL}",
    )
    clone.push("--quiet", "origin", branch)

    code, out, err = _hook(clone, "run")
    assert code == 0, out + err
    _assert_clean("run", out + err)
    [run] = cloud.runs
    assert run.cause == "Add orders model [feat/gnp]"
    assert (run.git_sha, run.git_branch) == (sha, branch)  # the real branch, for the checkout

    code, out, err = _hook(clone, "history")
    _assert_clean("history", out + err)
    assert "cause: Add orders model [feat/gnp]" in out
    assert re.search(r"feat/\\u202egnp", out), out


def test_git_accepts_the_hostile_branch_name_used_above(tmp_path: Path) -> None:
    """The end-to-end test above is only meaningful if git allows such a name."""
    assert git(tmp_path, "check-ref-format", "--branch", "feat/\u202egnp\u200b")


def test_names_and_step_names_from_dbt_cloud_in_status_jobs_projects_and_a_failed_run(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    cloud.add_project(77777, f"shop {HOSTILE}")
    cloud.add_job(
        55555,
        project_id=67890,
        name=f"nightly {HOSTILE}",
        outcome="error",
        queued_s=0,
        starting_s=0,
        running_s=0.5,
        execute_steps=(f"dbt build --select orders{ESC}]0;pwned{BEL}\u202e",),
    )
    clone = make_clone(tmp_path, "work", remote, env)
    for command in (["projects"], ["jobs"], ["status"]):
        code, out, err = _hook(clone, *command)
        assert code == 0, out + err
        _assert_clean(command[0], out + err)
        assert "boom \\u202e gnp.exe" in out, out

    clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    code, out, err = _hook(clone, "run", "--job-id", "55555", "--wait", "--timeout", "60")
    assert code == 1, out + err
    _assert_clean("run --wait", out + err)
    assert "orders\\u202e" in err, err
