"""hook.py: the pre-push hook records what to trigger, prints dry runs, never breaks a push."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pygit2
import pytest

from datachonk_hooks.delivery.ledger import Ledger, TriggerState
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.prepush.hook import PushInput, pre_push_main, read_push, run_pre_push
from datachonk_hooks.push.gitrepo import ZERO_SHA
from datachonk_hooks.push.updates import PushUpdate
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import (
    GENERATED_SQL,
    HAND_SQL,
    TOKEN,
    commit_files,
    config_yaml,
    git,
    remote_and_clone,
)

BROKEN = "deploy:\n  dbt_cloud:\n    account_id: twelve\n"


class Work:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.json: list[object] = []

    @property
    def repo(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.path))

    @property
    def ledger_file(self) -> Path:
        return self.path / ".git" / "datachonk" / "ledger.sqlite3"

    def commit(self, files: dict[str, str], message: str) -> str:
        return commit_files(self.path, files, message)

    def sha(self, ref: str) -> str:
        return git(self.path, "rev-parse", ref)

    def stdin(self, *branches: str) -> list[str]:
        """git's pre-push lines for `git push origin <branches>` (after origin/main)."""
        known = self.sha("origin/main")
        return [
            f"refs/heads/{b} {self.sha(b)} refs/heads/{b} {known if b == 'main' else ZERO_SHA}"
            for b in branches
        ]

    def main(
        self,
        stdin: Sequence[str] | Callable[[], Sequence[str]] = (),
        *,
        env: dict[str, str] | None = None,
        dry_run: bool = False,
        as_json: bool = False,
        remote: str | None = "origin",
        url: str | None = None,
    ) -> int:
        lines = stdin if callable(stdin) else (lambda: list(stdin))
        return pre_push_main(
            remote=remote,
            url=url or str(self.path.parent / "remote.git"),
            dry_run=dry_run,
            as_json=as_json,
            env={"DBT_CLOUD_API_TOKEN": TOKEN, **(env or {})},
            stdin_lines=lines,
            echo=self.lines.append,
            echo_json=self.json.append,
        )


@pytest.fixture
def work(tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Work:
    _, path = remote_and_clone(tmp_path)
    commit_files(
        path,
        {"dbt_project.yml": "name: shop\n", "datachonk.yaml": config_yaml(sandbox.url)},
        "Start",
    )
    git(path, "push", "--quiet", "origin", "main")
    monkeypatch.chdir(path)
    return Work(path)


# ----------------------------------------------------------------------------- dry run


def test_dry_run_text(work: Work, sandbox: Sandbox) -> None:
    sha = work.commit({"models/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    git(work.path, "checkout", "--quiet", "-b", "docs", "origin/main")
    docs = work.commit({"README.md": "docs\n"}, "Docs")
    code = work.main(work.stdin("main", "docs"), dry_run=True)
    assert code == ExitCode.OK
    body = {"cause": "Add stg_orders", "git_sha": sha, "git_branch": "main"}
    assert work.lines == [
        "Dry run: nothing is recorded or sent.",
        f"refs/heads/main {sha[:7]} -> refs/heads/main",
        "  added    models/stg_orders.sql (stg_orders; by marker)",
        f"  would POST {sandbox.url}/api/v2/accounts/12345/jobs/11111/run/",
        *(f"  {line}" for line in json.dumps(body, indent=2).splitlines()),
        f"refs/heads/docs {docs[:7]} -> refs/heads/docs",
        "  nothing to trigger: no DataChonk-generated models in the push",
    ]
    assert work.json == []
    assert not work.ledger_file.exists()
    assert sandbox.requests == []


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_dry_run_from_the_environment(work: Work, value: str) -> None:
    work.commit({"models/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    assert work.main(work.stdin("main"), env={"DATACHONK_DRY_RUN": value}) == ExitCode.OK
    assert work.lines[0] == "Dry run: nothing is recorded or sent."
    assert not work.ledger_file.exists()


def test_dry_run_with_nothing_to_push(work: Work) -> None:
    assert work.main([], dry_run=True) == ExitCode.OK
    assert work.lines == ["Dry run: nothing is recorded or sent.", "no refs to push"]


def test_dry_run_json(work: Work, sandbox: Sandbox) -> None:
    sha = work.commit({"models/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    stdin = [*work.stdin("main"), f"(delete) {ZERO_SHA} refs/heads/old {sha}"]
    assert work.main(stdin, dry_run=True, as_json=True) == ExitCode.OK
    assert work.lines == []
    [data] = work.json
    json.dumps(data)
    assert data == {
        "dry_run": True,
        "updates": [
            {
                "local_ref": "refs/heads/main",
                "remote_ref": "refs/heads/main",
                "sha": sha,
                "models": [
                    {
                        "path": "models/stg_orders.sql",
                        "names": ["stg_orders"],
                        "change": "added",
                        "reason": "marker",
                    }
                ],
                "trigger": {
                    "host": sandbox.url,
                    "account_id": 12345,
                    "job_id": 11111,
                    "route": "job_id",
                    "method": "POST",
                    "url": f"{sandbox.url}/api/v2/accounts/12345/jobs/11111/run/",
                    "body": {"cause": "Add stg_orders", "git_sha": sha, "git_branch": "main"},
                },
                "skipped": None,
            },
            {
                "local_ref": "(delete)",
                "remote_ref": "refs/heads/old",
                "sha": ZERO_SHA,
                "models": [],
                "trigger": None,
                "skipped": "a deleted ref",
            },
        ],
    }


# ----------------------------------------------------------------------------- strict mode


@pytest.mark.parametrize(
    ("strict", "code"),
    [("1", ExitCode.USAGE), ("true", ExitCode.USAGE), ("0", ExitCode.OK), (None, ExitCode.OK)],
)
def test_broken_config_in_the_pushed_commit(work: Work, strict: str | None, code: int) -> None:
    work.commit({"datachonk.yaml": BROKEN, "models/stg_orders.sql": GENERATED_SQL}, "Break it")
    env = {} if strict is None else {"DATACHONK_STRICT": strict}
    assert work.main(work.stdin("main"), env=env) == code
    assert work.lines[0].startswith(f"datachonk: datachonk.yaml@{work.sha('main')[:7]}:3:")
    if code == ExitCode.OK:
        assert work.lines[1:] == [
            "datachonk: nothing triggered for refs/heads/main; the push goes on. Once the"
            f" file is fixed: `datachonk-hook run --ref {work.sha('main')[:12]}`"
        ]
    else:
        assert len(work.lines) == 1
    assert not work.ledger_file.exists()


def test_strict_with_a_broken_work_tree_file_only(work: Work) -> None:
    """The pushed commit's file is fine: the work tree's broken edit does not matter."""
    work.commit({"models/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    (work.path / "datachonk.yaml").write_text(BROKEN)
    env = {"DATACHONK_STRICT": "1", "DATACHONK_DRY_RUN": "1"}
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK
    assert any(line.startswith("  would POST") for line in work.lines)


def test_strict_one_broken_ref_of_several(work: Work) -> None:
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "checkout", "--quiet", "-b", "broken")
    work.commit({"datachonk.yaml": BROKEN, "models/b.sql": GENERATED_SQL}, "Break it")
    stdin = work.stdin("main", "broken")
    assert work.main(stdin, env={"DATACHONK_STRICT": "1"}) == ExitCode.USAGE
    assert not work.ledger_file.exists()  # nothing at all is recorded for a refused push


# ----------------------------------------------------------------------------- not connected


def test_generated_models_without_a_connection_say_connect_once(work: Work) -> None:
    git(work.path, "rm", "--quiet", "datachonk.yaml")
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "checkout", "--quiet", "-b", "feature")
    work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    assert work.main(work.stdin("main", "feature")) == ExitCode.OK
    assert work.lines == [
        "datachonk: this push has DataChonk-generated models but no dbt Cloud connection is"
        " configured; run `datachonk-hook connect` to trigger runs on push"
    ]
    assert not work.ledger_file.exists()


@pytest.mark.parametrize(
    "files",
    [{"models/b.sql": HAND_SQL}, {"README.md": "docs\n"}, {}],
)
def test_nothing_to_trigger_records_nothing(work: Work, files: dict[str, str]) -> None:
    work.commit(files, "No generated model")
    assert work.main(work.stdin("main")) == ExitCode.OK
    assert work.lines == []
    assert not (work.path / ".git" / "datachonk").exists()


@pytest.mark.parametrize("kind", ["nothing", "delete", "annotated tag"])
def test_deletes_tags_and_empty_pushes_record_nothing(work: Work, kind: str) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "tag", "-a", "v1", "-m", "v1")
    stdin = {
        "nothing": [],
        "delete": [f"(delete) {ZERO_SHA} refs/heads/old {sha}"],
        "annotated tag": [f"refs/tags/v1 {work.sha('v1')} refs/tags/v1 {ZERO_SHA}"],
    }[kind]
    assert work.main(stdin) == ExitCode.OK
    assert work.lines == []
    assert not work.ledger_file.exists()


# ----------------------------------------------------------------------------- recording


def test_foreground_push_records_the_trigger_awaiting_the_push(work: Work) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    env = {"DATACHONK_PUSH_FOREGROUND": "1"}
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK
    assert work.lines == [
        f"datachonk: dbt Cloud job 11111 will run for {sha[:7]} (main) once the push lands"
    ]
    with Ledger(work.ledger_file) as ledger:
        [push] = ledger.pushes_after(0)
        [record] = ledger.history()
    assert (push.remote_name, push.foreground, push.state) == ("origin", True, "waiting")
    assert push.tracking_before == {"refs/remotes/origin/main": work.sha("origin/main")}
    assert (record.sha, record.branch, record.state) == (sha, "main", TriggerState.AWAITING_PUSH)
    assert (record.push_id, record.source) == (push.id, "push")
    assert not (work.path / ".git" / "datachonk" / "waiter.log").exists()  # no waiter started

    work.lines.clear()
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK  # the same commit again
    assert work.lines == [f"datachonk: {sha[:7]} is already queued for job 11111 (awaiting_push)"]
    with Ledger(work.ledger_file) as ledger:
        assert len(ledger.history()) == 1
        ledger.mark_push_landed(push.id)
        ledger.claim(record.id)
        ledger.mark_triggered(record.id, run_id=77, run_url=None, run_status=1)
    work.lines.clear()
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK
    assert work.lines == [f"datachonk: {sha[:7]} already triggered run 77 of job 11111"]


FOREGROUND = {"DATACHONK_PUSH_FOREGROUND": "1"}


def test_without_a_token_the_trigger_is_recorded_and_stays_pending(work: Work) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    assert work.main(work.stdin("main"), env={**FOREGROUND, "DBT_CLOUD_API_TOKEN": ""}) == 0
    assert work.lines == [
        f"datachonk: dbt Cloud job 11111 for {sha[:7]} (main) stays pending: no dbt Cloud"
        " token (run `datachonk-hook connect`)"
    ]
    with Ledger(work.ledger_file) as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.AWAITING_PUSH  # nothing lost: `retry` sends it later


def test_after_dbt_cloud_refused_the_token_the_line_says_so(work: Work, sandbox: Sandbox) -> None:
    from datachonk_hooks.settings.credentials import Token

    with Ledger.for_repo(work.repo) as ledger:
        ledger.note_token_refused(sandbox.url, 12345, 401, Token(TOKEN, "t").fingerprint)
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    assert work.main(work.stdin("main"), env=FOREGROUND) == ExitCode.OK
    assert work.lines == [
        "datachonk: dbt Cloud refused the token last time (HTTP 401): run `datachonk-hook"
        f" doctor`; dbt Cloud job 11111 for {sha[:7]} (main) stays pending until then"
        " (`datachonk-hook retry`)"
    ]
    work.lines.clear()  # another token (say, a new one in the environment) is not refused
    other = work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    env = {**FOREGROUND, "DBT_CLOUD_API_TOKEN": "dbtc_another_token"}
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK
    assert work.lines == [
        f"datachonk: dbt Cloud job 11111 will run for {other[:7]} (main) once the push lands"
    ]
    assert TOKEN not in work.ledger_file.read_bytes().decode("latin-1")


def test_a_push_to_another_remote_triggers_nothing(work: Work) -> None:
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    backup = work.path.parent / "backup.git"
    git(work.path.parent, "init", "--quiet", "--bare", str(backup))
    git(work.path, "remote", "add", "backup", str(backup))
    code = work.main(work.stdin("main"), remote="backup", url=str(backup), env=FOREGROUND)
    assert code == ExitCode.OK
    assert work.lines == [
        "datachonk: this push goes to backup, but dbt Cloud builds from origin"
        " (deploy.dbt_cloud.remote): nothing triggered"
    ]
    assert not work.ledger_file.exists()


@pytest.mark.parametrize("spelling", ["same", "file://", "trailing /", "relative", "mirror"])
def test_a_push_to_the_configured_remote_by_url_triggers(work: Work, spelling: str) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    url = git(work.path, "remote", "get-url", "origin")
    remote = {
        "same": url,
        "file://": f"file://{url}",
        "trailing /": f"{url}/",
        "relative": "../remote.git",
        "mirror": "mirror",
    }[spelling]
    if spelling == "mirror":  # another name for the same repository
        git(work.path, "remote", "add", "mirror", f"file://{url}")
        url = f"file://{url}"
    else:
        url = remote
    assert work.main(work.stdin("main"), remote=remote, url=url, env=FOREGROUND) == ExitCode.OK
    assert work.lines == [
        f"datachonk: dbt Cloud job 11111 will run for {sha[:7]} (main) once the push lands"
    ]


def test_the_configured_remote_is_the_one_that_triggers(work: Work, sandbox: Sandbox) -> None:
    extra = "    remote: upstream\n"
    work.commit({"datachonk.yaml": config_yaml(sandbox.url, extra=extra)}, "Build from upstream")
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    assert work.main(work.stdin("main"), env=FOREGROUND) == ExitCode.OK
    assert work.lines == [
        "datachonk: this push goes to origin, but dbt Cloud builds from upstream"
        " (deploy.dbt_cloud.remote): nothing triggered"
    ]


def test_git_dir_from_the_environment_when_run_outside_the_work_tree(
    work: Work, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`git --git-dir=R/.git --work-tree=R push` from elsewhere: git exports GIT_DIR."""
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {**FOREGROUND, "GIT_DIR": str(work.path / ".git")}
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK
    assert work.lines == [
        f"datachonk: dbt Cloud job 11111 will run for {sha[:7]} (main) once the push lands"
    ]


def test_git_push_dry_run_records_nothing_and_says_would(work: Work) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = read_push({}, lambda: work.stdin("main"), work.repo, "origin", "origin")
    env = {"DBT_CLOUD_API_TOKEN": TOKEN}
    code = run_pre_push(
        work.repo, push, env, dry_run=False, echo=work.lines.append, git_dry_run=True
    )
    assert code == ExitCode.OK
    assert work.lines == [
        f"datachonk: dbt Cloud job 11111 would run for {sha[:7]} (main) once the push lands"
        " (dry run: nothing recorded)"
    ]
    assert not work.ledger_file.exists()


def test_force_and_cause_from_the_environment(work: Work) -> None:
    sha = work.commit({"models/b.sql": HAND_SQL}, "By hand")
    env = {
        "DATACHONK_PUSH_FOREGROUND": "1",
        "DATACHONK_FORCE_TRIGGER": "1",
        "DATACHONK_CAUSE": "Deploy now",
    }
    assert work.main(work.stdin("main"), env=env) == ExitCode.OK
    with Ledger(work.ledger_file) as ledger:
        [record] = ledger.history()
    assert (record.sha, record.request.cause) == (sha, "Deploy now")


# ----------------------------------------------------------------------------- never breaks a push


def boom() -> list[str]:
    raise RuntimeError("boom")


@pytest.mark.parametrize("strict", [None, "1"])
def test_unexpected_errors_never_escape(work: Work, strict: str | None) -> None:
    env = {} if strict is None else {"DATACHONK_STRICT": strict}
    assert work.main(boom, env=env) == ExitCode.OK
    assert work.lines == ["datachonk: unexpected error, nothing triggered (RuntimeError: boom)"]


@pytest.mark.parametrize("strict", [None, "1"])
def test_malformed_stdin_never_blocks(work: Work, strict: str | None) -> None:
    env = {} if strict is None else {"DATACHONK_STRICT": strict}
    assert work.main(["refs/heads/main not-a-sha"], env=env) == ExitCode.OK
    assert "pre-push input line 1" in work.lines[0]
    assert work.lines[1] == "datachonk: nothing was triggered; the push goes on"


def test_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    lines: list[str] = []
    code = pre_push_main(
        remote=None,
        url=None,
        dry_run=False,
        as_json=False,
        env={"DATACHONK_STRICT": "1"},
        stdin_lines=list,
        echo=lines.append,
        echo_json=print,
    )
    assert code == ExitCode.OK
    assert "is not inside a git repository" in lines[0]


def test_a_ledger_that_cannot_be_written_does_not_block(work: Work) -> None:
    (work.path / ".git" / "datachonk").write_text("a file where the folder should be\n")
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    assert work.main(work.stdin("main"), env={"DATACHONK_STRICT": "1"}) == ExitCode.OK
    assert work.lines[-1] == (
        "datachonk: nothing was triggered; the push goes on."
        f" Once it has landed: `datachonk-hook run --ref {sha[:12]} --job-id 11111`"
    )


def test_a_ledger_failing_part_way_names_only_what_it_did_not_record(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ledger write is its own transaction: a disk that fails at the second trigger
    leaves the push and the first recorded (they keep their waiter) and the hook names the
    `run` for the second alone, with its job."""
    from datachonk_hooks.delivery.ledger import Ledger, LedgerError
    from datachonk_hooks.delivery.planning import TriggerPlan

    main_sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "checkout", "--quiet", "-b", "feature")
    feature_sha = work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    real_add_to = TriggerPlan.add_to
    calls: list[str] = []

    def fails_second(plan: TriggerPlan, ledger: Ledger, **kwargs: Any) -> Any:
        calls.append(plan.request.git_sha or "")
        if len(calls) == 2:
            raise LedgerError("cannot write the ledger (disk I/O error)")
        return real_add_to(plan, ledger, **kwargs)

    monkeypatch.setattr(TriggerPlan, "add_to", fails_second)
    code = work.main(work.stdin("main", "feature"), env=FOREGROUND)

    assert code == ExitCode.OK
    assert calls == [main_sha, feature_sha]
    assert work.lines[-3:] == [
        f"datachonk: dbt Cloud job 11111 will run for {main_sha[:7]} (main) once the push lands",
        "datachonk: cannot write the ledger (disk I/O error)",
        "datachonk: the rest was not recorded; the push goes on. Once it has landed:"
        f" `datachonk-hook run --ref {feature_sha[:12]} --job-id 11111`",
    ]
    with Ledger(work.ledger_file) as book:
        assert [(t.sha, t.state) for t in book.history()] == [(main_sha, "awaiting_push")]


# ----------------------------------------------------------------------------- reading the push


def test_read_push_from_pre_commit_variables(work: Work) -> None:
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    env = {
        "PRE_COMMIT_FROM_REF": work.sha("origin/main"),
        "PRE_COMMIT_TO_REF": work.sha("main"),
        "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main",
        "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main",
        "PRE_COMMIT_REMOTE_NAME": "upstream",
        "PRE_COMMIT_REMOTE_URL": "git@example.com:shop.git",
    }
    push = read_push(env, boom, work.repo, "origin", "url")  # stdin is never read
    assert push == PushInput(
        "upstream",
        "git@example.com:shop.git",
        (
            PushUpdate(
                "refs/heads/main", work.sha("main"), "refs/heads/main", work.sha("origin/main")
            ),
        ),
        "pre-commit",
    )


def test_read_push_from_legacy_pre_commit_variables(work: Work) -> None:
    work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    env = {"PRE_COMMIT_ORIGIN": "HEAD~1", "PRE_COMMIT_SOURCE": "HEAD"}
    push = read_push(env, boom, work.repo, "origin", "url")
    assert push.source == "pre-commit"
    assert push.updates == (
        PushUpdate("HEAD", work.sha("HEAD"), "refs/heads/main", work.sha("HEAD~1")),
    )


@pytest.mark.parametrize(
    ("remote", "url", "expected"),
    [
        ("origin", "git@example.com:shop.git", ("origin", "git@example.com:shop.git")),
        (None, None, ("origin", "origin")),
        ("/srv/shop.git", "/srv/shop.git", ("/srv/shop.git", "/srv/shop.git")),
    ],
)
def test_read_push_from_stdin(
    work: Work, remote: str | None, url: str | None, expected: tuple[str, str]
) -> None:
    stdin = work.stdin("main")
    push = read_push({}, lambda: stdin, work.repo, remote, url)
    assert (push.remote_name, push.remote_url, push.source) == (*expected, "git")
    assert [u.remote_ref for u in push.updates] == ["refs/heads/main"]


def test_run_pre_push_directly(work: Work) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = PushInput(
        "origin",
        "url",
        tuple(read_push({}, lambda: work.stdin("main"), work.repo, "origin", "url").updates),
        "git",
    )
    lines: list[str] = []
    assert run_pre_push(work.repo, push, {}, dry_run=True, echo=lines.append) == ExitCode.OK
    assert lines[1] == f"refs/heads/main {sha[:7]} -> refs/heads/main"
