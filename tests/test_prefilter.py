"""The hook's fast path (prefilter): it skips only pushes that certainly trigger nothing, with
real git repositories, the real hook process, and its imports checked with -X importtime."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery import ledger
from datachonk_hooks.delivery.ledger import backlog
from datachonk_hooks.prepush import (
    fast_cache,
    fast_ledger,
    fast_models,
    fast_push,
    prefilter,
    switches,
)
from datachonk_hooks.push import detect, model_yaml
from datachonk_hooks.push.gitrepo import open_repo
from datachonk_hooks.settings import defaults
from tests.helpers import GENERATED_SQL, HAND_SQL, commit_files, config_yaml, git, remote_and_clone

HEAVY = ("pygit2", "ruamel", "requests")
MAIN = "refs/heads/main"


class Repo:
    """A clone whose main is on its bare remote; commits on top of it are the push."""

    def __init__(self, top: Path, files: dict[str, str]) -> None:
        self.remote, self.path = remote_and_clone(top)
        self.base = commit_files(self.path, files, "Start")
        git(self.path, "push", "--quiet", "origin", "main")

    def commit(self, files: dict[str, str], message: str = "Change") -> str:
        return commit_files(self.path, files, message)

    def add_pending_trigger(self) -> None:
        """A trigger of the base commit left pending in the ledger just now (host unreachable)."""
        with ledger.Ledger.for_repo(open_repo(self.path)) as book:
            book.add_trigger(
                host="http://127.0.0.1:9",
                account_id=1,
                job_id=2,
                request=TriggerRequest(cause="earlier", git_sha=self.base, git_branch="main"),
                source="manual",
            )

    def line(self, tip: str, base: str | None = None, ref: str = MAIN) -> str:
        return f"{ref} {tip} {ref} {base or self.base}"

    def verdict(
        self, lines: list[str], env: dict[str, str] | None = None, remote: str | None = None
    ) -> prefilter.Verdict:
        """The fast path's decision, in this process, as the hook makes it."""
        cwd = Path.cwd()
        os.chdir(self.path)
        try:
            fast_cache.reset()
            return prefilter.check(env or {}, lambda: lines, remote=remote)
        finally:
            os.chdir(cwd)

    def hook(
        self, line: str, *, importtime: bool = False, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        """The real hook process for one stdin line: its result and the modules it imported."""
        python = [sys.executable, *(["-X", "importtime"] if importtime else [])]
        done = subprocess.run(
            [*python, "-m", "datachonk_hooks", "pre-push", "origin", str(self.remote)],
            cwd=self.path,
            input=line + "\n",
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        modules = {
            part.split("|")[-1].strip()
            for part in done.stderr.splitlines()
            if part.startswith("import time:")
        }
        return done, modules

    @property
    def cache(self) -> fast_cache.Cache:
        return fast_cache.Cache.load(str(self.path / ".git" / "datachonk" / fast_cache.CACHE_FILE))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def messages(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if not line.startswith("import time:")]


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    """In-process checks leave the cache and ledger verdict behind for the next hook call."""
    yield
    fast_cache.reset()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(
        tmp_path,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "models/staging/stg_orders.sql": HAND_SQL,
            "docs/guide.md": "# Guide\n",
            "scripts/tool.py": "print('tool')\n",
        },
    )


def test_docs_push_skips_without_pygit2_ruamel_or_requests(repo: Repo) -> None:
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n", "README.md": "# Shop\n"})

    done, modules = repo.hook(repo.line(tip), importtime=True)

    assert "datachonk_hooks.prepush.prefilter" in modules
    assert heavy(modules) == []
    assert "datachonk_hooks.prepush.hook" not in modules
    assert messages(done) == []
    assert done.stdout == ""


def test_pre_commit_variables_skip_without_reading_stdin(repo: Repo) -> None:
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    env = {
        "PRE_COMMIT_FROM_REF": repo.base,
        "PRE_COMMIT_TO_REF": tip,
        "PRE_COMMIT_REMOTE_NAME": "origin",
        "PRE_COMMIT_REMOTE_URL": str(repo.remote),
        "PRE_COMMIT_REMOTE_BRANCH": MAIN,
        "PRE_COMMIT_LOCAL_BRANCH": MAIN,
    }

    def no_stdin() -> list[str]:
        raise AssertionError("pre-commit's hooks get no stdin")

    cwd = Path.cwd()
    os.chdir(repo.path)
    try:
        verdict = prefilter.check(env, no_stdin)
    finally:
        os.chdir(cwd)

    assert verdict.skip, verdict.reason


def test_a_python_file_outside_the_models_misses_the_cache_until_the_slow_path_fills_it(
    repo: Repo,
) -> None:
    tip = repo.commit({"scripts/tool.py": "print('tool 2')\n"})
    line = repo.line(tip)

    cold = repo.verdict([line])
    assert not cold.skip
    assert cold.reason == "model paths of dbt_project.yml not cached"

    repo.hook(line)  # falls through: the slow path reads dbt_project.yml's model paths
    blob = git(repo.path, "rev-parse", f"{tip}:dbt_project.yml")
    assert repo.cache.projects == {blob: ("models",)}

    warm = repo.verdict([line])
    assert warm.skip, warm.reason
    done, modules = repo.hook(line, importtime=True)
    assert heavy(modules) == []
    assert messages(done) == []


def test_a_model_change_falls_through_and_the_slow_path_gets_the_stdin_lines(repo: Repo) -> None:
    tip = repo.commit({"models/staging/stg_orders.sql": GENERATED_SQL})
    line = repo.line(tip)
    repo.hook(line)  # fill the cache

    verdict = repo.verdict([line])
    assert not verdict.skip
    assert verdict.reason == "a model path changed: models/staging/stg_orders.sql"

    done, modules = repo.hook(line, importtime=True)
    assert "pygit2" in modules
    # the slow path saw the update the fast path read from stdin: it found the model
    assert any(
        "DataChonk-generated models but no dbt Cloud connection" in m for m in messages(done)
    )


def test_a_deleted_model_falls_through(repo: Repo) -> None:
    repo.hook(repo.line(repo.commit({"models/staging/x.sql": HAND_SQL})))  # fill the cache
    git(repo.path, "rm", "--quiet", "models/staging/stg_orders.sql")
    tip = repo.commit({}, "Drop a model")

    verdict = repo.verdict([repo.line(tip)])

    assert verdict.reason == "a model path changed: models/staging/stg_orders.sql"


@pytest.mark.parametrize(
    "changed",
    [
        {"dbt_project.yml": "name: shop\nversion: '2.0'\nprofile: shop\n"},
        {"datachonk.yaml": config_yaml("http://127.0.0.1:9")},
        {"sub/datachonk.yaml": "deploy: {}\n"},
        {"sub/dbt_project.yml": "name: other\n"},
    ],
)
def test_a_changed_project_or_settings_file_falls_through(
    repo: Repo, changed: dict[str, str]
) -> None:
    tip = repo.commit({**changed, "docs/guide.md": "# Guide\n\nMore.\n"})

    verdict = repo.verdict([repo.line(tip)])

    assert not verdict.skip
    assert verdict.reason == f"{next(iter(changed))} changed"


def test_a_ledger_backlog_falls_through_so_the_waiter_delivers_it(repo: Repo) -> None:
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    with ledger.Ledger.for_repo(open_repo(repo.path)):
        pass
    assert repo.verdict([repo.line(tip)]).skip  # a ledger with nothing to deliver
    assert fast_ledger.ledger_is_idle()
    repo.add_pending_trigger()
    rest_the_pending_triggers(repo)

    verdict = repo.verdict([repo.line(tip)])

    assert not verdict.skip
    assert verdict.reason == "the ledger holds triggers to deliver"
    assert not fast_ledger.ledger_is_idle()


def rest_the_pending_triggers(repo: Repo) -> None:
    """Date the pending triggers' last change back past the rest a push gives them."""
    long_ago = datetime.now(UTC) - timedelta(seconds=backlog.PENDING_REST_SECONDS + 60)
    with sqlite3.connect(ledger.ledger_file(open_repo(repo.path))) as conn:
        conn.execute(
            "UPDATE triggers SET updated_at = ? WHERE state = 'pending'",
            (long_ago.isoformat(timespec="microseconds"),),
        )
    conn.close()


def test_a_trigger_that_just_failed_keeps_docs_pushes_on_the_fast_path(repo: Repo) -> None:
    """Pending for a missing token, a host or an outage: the next docs-only push does not
    start the slow path (pygit2, a waiter) only to fail again; once it has rested, one does."""
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    repo.add_pending_trigger()
    started = datetime.now(UTC).timestamp()

    done, modules = repo.hook(repo.line(tip), importtime=True)
    assert heavy(modules) == []
    assert messages(done) == []
    # idle until the trigger is due, a moment no write to the ledger marks: the cache keeps it
    rest = backlog.PENDING_REST_SECONDS
    assert started + rest - 2 <= repo.cache.resting_until <= started + rest + 60
    done, modules = repo.hook(repo.line(tip), importtime=True)
    assert "sqlite3" not in modules  # the same ledger, still resting: no need to ask again
    assert messages(done) == []
    assert repo.verdict([repo.line(tip)]).skip
    assert not fast_ledger.ledger_is_idle()  # a slow path taken for another reason hands it over

    rest_the_pending_triggers(repo)
    assert repo.verdict([repo.line(tip)]).reason == "the ledger holds triggers to deliver"


def ended_process() -> str:
    """`pid@host` of a process that has ended."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return f"{done.pid}@{socket.gethostname()}"


@pytest.mark.parametrize("held", ["being sent", "awaiting its push"])
def test_work_a_live_waiter_holds_keeps_docs_pushes_on_the_fast_path(repo: Repo, held: str) -> None:
    """A trigger a live waiter is sending, or one awaiting a push whose waiter lives, is
    that waiter's: the next docs-only push (often seconds later) does not start the slow
    path and a second waiter for it. Once that waiter has died, the push hands it over,
    as `Ledger.deliverable` would."""
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    live = f"{os.getpid()}@{socket.gethostname()}"

    def hold(owner: str) -> None:
        with ledger.Ledger.for_repo(open_repo(repo.path)) as book:
            if held == "being sent":
                [row] = book.history()
                assert book.claim(row.id, owner) is not None
            else:
                push = book.record_push(
                    remote_name="origin",
                    remote_url=str(repo.remote),
                    git_pid=None,
                    tracking_before={},
                    foreground=False,
                )
                book.set_push_waiter(push.id, owner)
                request = TriggerRequest(cause="pushed", git_sha=tip, git_branch="main")
                book.add_trigger(
                    host="http://127.0.0.1:9",
                    account_id=1,
                    job_id=2,
                    request=request,
                    source="push",
                    push_id=push.id,
                    awaiting_push=True,
                )

    if held == "being sent":
        repo.add_pending_trigger()
    hold(live)

    done, modules = repo.hook(repo.line(tip), importtime=True)
    assert heavy(modules) == [] and messages(done) == []
    assert not repo.cache.idle_ledger  # the waiter can die without a write
    assert repo.verdict([repo.line(tip)]).skip

    with sqlite3.connect(ledger.ledger_file(open_repo(repo.path))) as conn:
        gone = ended_process()
        conn.execute("UPDATE triggers SET claimed_by = ?", (gone,))
        conn.execute("UPDATE pushes SET waiter = ?", (gone,))
    conn.close()
    assert repo.verdict([repo.line(tip)]).reason == "the ledger holds triggers to deliver"


def test_a_resting_trigger_is_handed_over_once_due_without_a_write(repo: Repo) -> None:
    """The ledger file is the one the cache saw idle, but the moment its trigger becomes due
    has passed (the clock, not a write, moved): the push hands the trigger over."""
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    repo.add_pending_trigger()
    rest_the_pending_triggers(repo)  # the ledger as it reads ten minutes on
    path = ledger.ledger_file(open_repo(repo.path))
    cache = repo.cache
    cache.idle_ledger = fast_ledger.ledger_signature(str(path)) or ""
    assert cache.idle_ledger

    cache.resting_until = int(datetime.now(UTC).timestamp()) + 3600  # as cached: not due yet
    cache.save()
    assert repo.verdict([repo.line(tip)]).skip  # the cache is trusted while its moment lies ahead

    cache.resting_until = int(datetime.now(UTC).timestamp()) - 1  # that moment has passed
    cache.save()
    assert repo.verdict([repo.line(tip)]).reason == "the ledger holds triggers to deliver"
    assert not fast_ledger.ledger_is_idle()


def test_an_idle_ledger_is_remembered_until_it_changes(repo: Repo) -> None:
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    with ledger.Ledger.for_repo(open_repo(repo.path)):
        pass
    assert repo.verdict([repo.line(tip)]).skip  # asks SQLite once
    fast_cache.save_learned()
    assert repo.cache.idle_ledger

    done, modules = repo.hook(repo.line(tip), importtime=True)
    assert "sqlite3" not in modules  # the same file: no need to ask again
    assert messages(done) == []

    repo.add_pending_trigger()
    rest_the_pending_triggers(repo)
    assert repo.verdict([repo.line(tip)]).reason == "the ledger holds triggers to deliver"


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("new branch", "a new branch"),
        ("delete", "a delete"),
        ("tag", "refs/tags/v1 is not a branch"),
        ("unknown remote sha", "git diff 1111111 {tip} failed"),
        ("bad input", "unexpected pre-push input"),
    ],
)
def test_unusual_pushes_fall_through(repo: Repo, what: str, reason: str) -> None:
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})
    zero = "0" * 40
    line = {
        "new branch": f"refs/heads/topic {tip} refs/heads/topic {zero}",
        "delete": f"(delete) {zero} {MAIN} {repo.base}",
        "tag": f"refs/tags/v1 {tip} refs/tags/v1 {zero}",
        "unknown remote sha": repo.line(tip, "1" * 40),
        "bad input": "refs/heads/main HEAD",
    }[what]

    verdict = repo.verdict([line])

    assert not verdict.skip
    assert verdict.reason == reason.format(tip=tip[:7])


@pytest.mark.parametrize(
    ("env", "dry_run"),
    [
        ({}, True),
        ({"DATACHONK_DRY_RUN": "1"}, False),
        ({"DATACHONK_FORCE_TRIGGER": "1"}, False),
        ({"DATACHONK_PUSH_FOREGROUND": "1"}, False),
    ],
)
def test_dry_runs_and_datachonk_push_fall_through_before_reading_stdin(
    env: dict[str, str], dry_run: bool
) -> None:
    def no_stdin() -> list[str]:
        raise AssertionError("stdin is left to the slow path")

    verdict = prefilter.check(env, no_stdin, dry_run=dry_run)

    assert not verdict.skip


def test_hand_written_models_need_no_yaml_parser_once_the_rules_are_cached(repo: Repo) -> None:
    settings = config_yaml(
        "http://127.0.0.1:9", extra="    detect:\n      trailer: 'Made-by: Robot'\n"
    )
    repo.hook(repo.line(repo.commit({"datachonk.yaml": settings}, "Configure")))
    base = git(repo.path, "rev-parse", "HEAD")
    assert "ruamel.yaml" not in prefilter_modules_after(repo, base, {"models/a.sql": HAND_SQL})
    assert list(repo.cache.rules.values()) == [(defaults.DEFAULT_MARKER, "Made-by: Robot")]
    # An empty ledger: the slow path believes the fast path and does not open it again.
    with ledger.Ledger.for_repo(open_repo(repo.path)):
        pass
    modules = prefilter_modules_after(repo, base, {"models/b.sql": HAND_SQL})
    assert "pygit2" in modules
    assert "ruamel.yaml" not in modules
    assert "datachonk_hooks.delivery.landing" not in modules


def prefilter_modules_after(repo: Repo, base: str, files: dict[str, str]) -> set[str]:
    """The modules the real hook imports for a push of `files` on top of `base`."""
    tip = repo.commit(files, "Hand-written model")
    done, modules = repo.hook(repo.line(tip, base), importtime=True)
    assert messages(done) == []
    return modules


def test_model_paths_of_a_project_in_a_subfolder(tmp_path: Path) -> None:
    repo = Repo(
        tmp_path,
        {
            "analytics/dbt_project.yml": "name: a\nmodel-paths: ['transform']\n",
            "analytics/transform/a.sql": HAND_SQL,
            "analytics/models/notes.yml": "version: 2\n",
        },
    )
    first = repo.commit({"analytics/transform/b.sql": HAND_SQL})
    repo.hook(repo.line(first))
    assert list(repo.cache.projects.values()) == [("transform",)]

    not_a_model_path = repo.commit({"analytics/models/notes.yml": "version: 2\n# more\n"})
    assert repo.verdict([repo.line(not_a_model_path, first)]).skip
    model = repo.commit({"analytics/transform/c.sql": HAND_SQL})
    verdict = repo.verdict([repo.line(model, first)])
    assert verdict.reason == "a model path changed: analytics/transform/c.sql"
    # No dbt_project.yml above a file: `models/` at the root counts, as it may for the slow path.
    root = repo.commit({"models/x.sql": HAND_SQL})
    assert repo.verdict([repo.line(root, model)]).reason == "a model path changed: models/x.sql"


def test_the_slow_path_skips_what_the_fast_path_skips(repo: Repo) -> None:
    """The fast path's rules are a superset of the slow path's: what it skips, the slow path
    finds no generated model in either (checked with the hook's own dry run)."""
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n", "scripts/tool.py": "print(2)\n"})
    repo.hook(repo.line(tip))
    assert repo.verdict([repo.line(tip)]).skip
    done = subprocess.run(
        [sys.executable, "-m", "datachonk_hooks", "pre-push", "--dry-run", "origin", "x"],
        cwd=repo.path,
        input=repo.line(tip) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert "nothing to trigger: no DataChonk-generated models in the push" in done.stderr


def test_the_cache_file_survives_odd_text_and_ignores_garbage(tmp_path: Path) -> None:
    path = str(tmp_path / "datachonk" / fast_cache.CACHE_FILE)
    cache = fast_cache.Cache(path)
    cache.learn_project("a" * 40, ("models", "dir with space/é", "\udcff"))
    cache.learn_rules("digest", ("(?i)generated by\nx", ""))
    for number in range(fast_cache.CACHE_LIMIT + 5):
        cache.learn_project(f"{number:040x}", ("models",))
    cache.save()

    loaded = fast_cache.Cache.load(path)
    assert loaded.rules == {"digest": ("(?i)generated by\nx", "")}
    assert len(loaded.projects) == fast_cache.CACHE_LIMIT
    assert "a" * 40 not in loaded.projects  # the oldest went first

    Path(path).write_text("datachonk-prefilter 1\nproject zz 6d\n")
    assert fast_cache.Cache.load(path).projects == {}
    Path(path).write_text("something else\n")
    assert fast_cache.Cache.load(path).projects == {}


def test_a_cache_cut_short_or_edited_is_no_cache(tmp_path: Path) -> None:
    """A stale or damaged entry would make the fast path skip real models: such a file is
    ignored whole (the push then takes the normal path, which writes it anew)."""
    path = str(tmp_path / "prefilter.cache")
    cache = fast_cache.Cache(path)
    cache.learn_project("a" * 40, ("marts/",))
    cache.learn_project("b" * 40, ("models/",))
    cache.save()
    assert fast_cache.Cache.load(path).projects == {"a" * 40: ("marts/",), "b" * 40: ("models/",)}
    text = Path(path).read_text()
    lines = text.splitlines()
    for damaged in (
        "\n".join(lines[:2]) + "\n",  # cut after the first entry
        "\n".join(lines[:-1]) + "\n",  # cut before the end line
        text.replace("6d617274732f", "6f74686572"),  # marts/ edited to "other"
        text.replace(f"project {'a' * 40} 6d617274732f", f"project {'a' * 40}"),
    ):
        Path(path).write_text(damaged)
        assert fast_cache.Cache.load(path).projects == {}, damaged


def test_the_fast_path_names_what_the_slow_path_names() -> None:
    assert fast_models.MODEL_SUFFIXES == detect.MODEL_SUFFIXES
    assert fast_models.PROJECT_FILE == detect.PROJECT_FILE
    assert tuple(f"{p}/" for p in model_yaml.DEFAULT_MODEL_PATHS) == fast_models.DEFAULT_PREFIXES
    assert fast_models.CONFIG_NAME == defaults.CONFIG_NAME
    assert backlog.LEDGER_FILE == ledger.LEDGER_FILE
    assert (prefilter.ENV_DRY_RUN, prefilter.ENV_FORCE, prefilter.ENV_FOREGROUND) == (
        switches.ENV_DRY_RUN,
        switches.ENV_FORCE,
        switches.ENV_FOREGROUND,
    )
    deliverable = {ledger.TriggerState.PENDING, ledger.TriggerState.SENDING}
    assert deliverable | {ledger.TriggerState.AWAITING_PUSH} == set(backlog.BACKLOG_STATES)


@pytest.mark.parametrize(
    ("folder", "rel", "prefix"),
    [
        ("", "models", "models/"),
        ("sub", "./m", "sub/m/"),
        ("a/b", "../x", "a/x/"),
        ("sub", "../../y", None),  # leaves the repository
        ("", "/abs", None),
        ("", "a\\b", "a/b/"),
        ("sub", ".", "sub/"),
        ("", ".", ""),
        ("", " m ", "m/"),
    ],
)
def test_model_paths_join_their_project_folder(folder: str, rel: str, prefix: str | None) -> None:
    """One rule, used by the fast path and by detection (`detect`) alike."""
    assert fast_models.join_model_path(folder, rel) == prefix


def test_a_new_branch_from_stdin_is_judged_against_the_tracking_refs(repo: Repo) -> None:
    """A docs-only new branch (the standalone hook, lefthook, husky: git's stdin) skips
    without pygit2; its base is the first parent of its oldest commit origin lacks, as the
    slow path computes it, so a model on it still falls through."""
    zero = "0" * 40
    docs = repo.commit({"docs/guide.md": "# Guide\n"})
    line = f"refs/heads/topic {docs} refs/heads/topic {zero}"
    done, modules = repo.hook(line, importtime=True)
    assert heavy(modules) == [] and messages(done) == []
    cwd = Path.cwd()
    os.chdir(repo.path)
    try:
        fast_cache.reset()
        assert prefilter.check({}, lambda: [line], remote="origin").skip
        model = repo.commit({"models/staging/stg_new.sql": GENERATED_SQL})
        modelled = f"refs/heads/topic {model} refs/heads/topic {zero}"
        fast_cache.reset()
        verdict = prefilter.check({}, lambda: [modelled], remote="origin")
        assert not verdict.skip and verdict.reason.startswith("a model path changed")
        known = f"refs/heads/old {repo.base} refs/heads/old {zero}"  # commits origin has
        fast_cache.reset()
        assert prefilter.check({}, lambda: [known], remote="origin").skip
        fast_cache.reset()
        by_url = prefilter.check({}, lambda: [line], remote=str(repo.remote))
        assert by_url.reason == "a new branch of a remote without tracking refs"
    finally:
        os.chdir(cwd)


def test_many_new_branches_at_one_commit_are_judged_once(repo: Repo, mocker: MockerFixture) -> None:
    """Thousands of branches created at one commit and pushed together (`git update-ref
    --stdin`, then `git push origin 'refs/heads/nb*:refs/heads/nb*'`): the verdict depends on
    the commits alone, so the fast path runs git a handful of times, not three times a ref."""
    zero = "0" * 40
    docs = repo.commit({"docs/guide.md": "# Guide\n"})
    lines = [f"refs/heads/nb{i} {docs} refs/heads/nb{i} {zero}" for i in range(3000)]
    spawned = mocker.spy(fast_push.Git, "__init__")

    assert repo.verdict(lines, remote="origin").skip
    assert spawned.call_count <= 5  # tracking refs, remotes, one rev-list, one diff, the cache

    model = repo.commit({"models/staging/stg_new.sql": GENERATED_SQL})
    with_model = [*lines, f"refs/heads/last {model} refs/heads/last {zero}"]
    assert repo.verdict(with_model, remote="origin").reason.startswith("a model path changed")


def test_refs_at_one_commit_from_different_old_commits_are_judged_apart(repo: Repo) -> None:
    """Deduplication is by the whole range: two branches moved to one tip, one of them from
    before a generated model, still fall through for that one."""
    model = repo.commit({"models/staging/stg_new.sql": GENERATED_SQL})
    tip = repo.commit({"docs/guide.md": "# Guide\n"})
    docs_only = repo.line(tip, base=model, ref="refs/heads/a")
    with_model = repo.line(tip, base=repo.base, ref="refs/heads/b")

    assert repo.verdict([docs_only], remote="origin").skip
    verdict = repo.verdict([docs_only, with_model], remote="origin")
    assert verdict.reason.startswith("a model path changed")


def test_the_tracking_refs_are_listed_once_a_push(repo: Repo, mocker: MockerFixture) -> None:
    zero = "0" * 40
    tips = [repo.commit({f"docs/page{i}.md": f"# Page {i}\n"}) for i in range(3)]
    lines = [f"refs/heads/nb{i} {tip} refs/heads/nb{i} {zero}" for i, tip in enumerate(tips)]
    spawned = mocker.spy(fast_push.Git, "__init__")

    assert repo.verdict(lines, remote="origin").skip
    commands = [call.args[1][0] for call in spawned.call_args_list]
    assert commands.count("for-each-ref") == 1 and commands.count("remote") == 1
    assert commands.count("rev-list") == 3


def test_a_push_of_many_commit_ranges_takes_the_slow_path(repo: Repo) -> None:
    """Past `FAST_PATH_REFS` different ranges (a mirror push, say) the fast path's git calls
    would add up with no bound: the slow path judges them, under the hook's time limit."""
    zero = "0" * 40
    tips = [
        repo.commit({f"docs/page{i}.md": f"# Page {i}\n"})
        for i in range(prefilter.FAST_PATH_REFS + 1)
    ]
    lines = [f"refs/heads/nb{i} {tip} refs/heads/nb{i} {zero}" for i, tip in enumerate(tips)]

    assert repo.verdict(lines[:-1], remote="origin").skip
    verdict = repo.verdict(lines, remote="origin")
    assert verdict.reason == f"a push of {len(lines)} different commit ranges"


def test_a_docs_push_tells_how_earlier_runs_ended_without_pygit2(repo: Repo) -> None:
    from datachonk_hooks.delivery.ledger import RunOutcome

    with ledger.Ledger.for_repo(open_repo(repo.path)) as book:
        record, _ = book.add_trigger(
            host="http://127.0.0.1:9",
            account_id=1,
            job_id=2,
            request=TriggerRequest(cause="earlier", git_sha=repo.base, git_branch="main"),
            source="manual",
        )
        book.mark_triggered(record.id, run_id=7, run_url=None, run_status=3)
        book.record_outcome(record.id, RunOutcome(status=10, duration_s=5))
    tip = repo.commit({"docs/guide.md": "# Guide\n\nMore.\n"})

    done, modules = repo.hook(repo.line(tip), importtime=True)

    assert heavy(modules) == [] and "datachonk_hooks.prepush.hook" not in modules
    assert messages(done) == [
        f"datachonk: run 7 for {repo.base[:7]} (main) succeeded in 5s: models are live"
    ]
    again, _ = repo.hook(repo.line(tip))
    assert messages(again) == []  # told once
