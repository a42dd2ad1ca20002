"""Bad input, property-based: only the documented errors come out, never a traceback.

What the other test modules already fuzz (random datachonk.yaml text, documents and
environments in test_config.py, any subject and author in test_cause.py) is not repeated
here. These fill the gaps: git's pre-push stdin and pre-commit's variables, the whole hook
on them, datachonk.yaml as raw bytes, cause templates against the causes they build, commit
messages in any encoding and size, and detection over random trees with odd paths,
symlinks and submodules in the models folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, assume, example, given, reject, settings
from hypothesis import strategies as st

from datachonk_hooks.errors import ConfigError, ExitCode
from datachonk_hooks.prepush.hook import pre_push_main
from datachonk_hooks.push.cause import MAX_CAUSE, CauseContext, build_cause
from datachonk_hooks.push.detect import MODEL_SUFFIXES, detect_generated
from datachonk_hooks.push.gitrepo import ZERO_SHA, CommitInfo
from datachonk_hooks.push.updates import PushInputError, updates_from_pre_commit, updates_from_stdin
from datachonk_hooks.settings.config import load_settings, load_settings_file
from datachonk_hooks.settings.defaults import CAUSE_FIELDS
from datachonk_hooks.settings.detect_rules import DetectRules
from tests.helpers import GENERATED_SQL, commit_files, config_yaml, git, remote_and_clone
from tests.reliability import RESULTS_ENV, attempt

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES: Counter[str] = Counter()
SIG = pygit2.Signature("Fuzz", "fuzz@example.invalid")


@pytest.fixture(scope="module", autouse=True)
def record_examples() -> Iterator[None]:
    """After the module: how many inputs each property really tried, for RELIABILITY.md."""
    yield
    out = os.environ.get(RESULTS_ENV)
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            for name, count in sorted(EXAMPLES.items()):
                handle.write(json.dumps({"kind": "property", "test": name, "examples": count}))
                handle.write("\n")


def tried(name: str) -> None:
    EXAMPLES[name] += 1


@pytest.fixture(scope="module")
def repo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configured dbt project with a generated model, pushed to origin, and one more."""
    top = tmp_path_factory.mktemp("fuzz")
    _, work = remote_and_clone(top)
    commit_files(
        work,
        {
            "dbt_project.yml": "name: shop\n",
            "datachonk.yaml": config_yaml("http://127.0.0.1:9"),
            "models/a.sql": GENERATED_SQL,
        },
        "Root",
    )
    git(work, "push", "--quiet", "origin", "main")
    commit_files(work, {"models/b.sql": GENERATED_SQL}, "Add b")
    return work


def shas_of(path: Path) -> list[str]:
    return git(path, "rev-list", "--all").split()


@contextmanager
def inside(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def one_line(text: str) -> bool:
    return "\n" not in text and "\r" not in text


# ----------------------------------------------------------------------------- push input

NO_NUL = st.text(st.characters(exclude_characters="\x00", codec="utf-8"), max_size=60)
JUNK_SHAS = st.sampled_from([ZERO_SHA, "a" * 40, "b" * 64, "A" * 40, "a" * 39, "g" * 40, ""])
REFS = st.sampled_from(["refs/heads/main", "HEAD", "(delete)", "refs/tags/v1", "main", ""]) | NO_NUL


@st.composite
def stdin_lines(draw: st.DrawFn, shas: list[str]) -> list[str]:
    sha = JUNK_SHAS | st.sampled_from(shas)
    line = st.builds(
        lambda a, b, c, d, sep: sep.join([a, b, c, d]),
        REFS,
        sha,
        REFS,
        sha,
        st.sampled_from([" ", "\t", "  "]),
    )
    return draw(st.lists(line | NO_NUL, max_size=5))


PRE_COMMIT_VARS = (
    "PRE_COMMIT_FROM_REF",
    "PRE_COMMIT_TO_REF",
    "PRE_COMMIT_LOCAL_BRANCH",
    "PRE_COMMIT_REMOTE_BRANCH",
    "PRE_COMMIT_REMOTE_NAME",
    "PRE_COMMIT_REMOTE_URL",
    "PRE_COMMIT_ORIGIN",
    "PRE_COMMIT_SOURCE",
)


@st.composite
def pre_commit_env(draw: st.DrawFn, shas: list[str]) -> dict[str, str]:
    value = NO_NUL | JUNK_SHAS | st.sampled_from([*shas, "HEAD", "HEAD~1", "main", "@{-1}"])
    return draw(st.dictionaries(st.sampled_from(PRE_COMMIT_VARS), value, max_size=6))


@FUZZ
@given(data=st.data())
def test_git_stdin_gives_updates_or_a_push_input_error(
    repo_path: Path, data: st.DataObject
) -> None:
    tried("git's pre-push stdin lines")
    lines = data.draw(stdin_lines(shas_of(repo_path)))
    updates = attempt(lambda: updates_from_stdin(lines), PushInputError)
    if isinstance(updates, PushInputError):
        assert one_line(str(updates)) and str(updates).startswith("pre-push input line ")
    else:
        assert len(updates) == sum(1 for line in lines if line.strip())


@FUZZ
@given(data=st.data())
def test_pre_commit_variables_give_one_update_or_a_push_input_error(
    repo_path: Path, data: st.DataObject
) -> None:
    tried("pre-commit's PRE_COMMIT_* variables")
    env = data.draw(pre_commit_env(shas_of(repo_path)))
    repo = pygit2.Repository(str(repo_path))
    updates = attempt(lambda: updates_from_pre_commit(env, repo), PushInputError)
    if isinstance(updates, PushInputError):
        assert one_line(str(updates)) and "does not name a commit" in str(updates)
    else:
        [update] = updates
        assert len(update.local_sha) in (40, 64) and len(update.remote_sha) in (40, 64)


@FUZZ
@given(data=st.data(), through_pre_commit=st.booleans())
def test_the_hook_on_any_push_input_exits_0_without_a_crash(
    repo_path: Path, data: st.DataObject, through_pre_commit: bool
) -> None:
    """The whole hook (dry run: it plans everything, records and sends nothing)."""
    tried("the whole pre-push hook on any push input")
    shas = shas_of(repo_path)
    env = {"DBT_CLOUD_API_TOKEN": "x"}
    lines: list[str] = []
    if through_pre_commit:
        env.update(data.draw(pre_commit_env(shas)))
        env.setdefault("PRE_COMMIT_TO_REF", data.draw(st.sampled_from(shas)))
    else:
        lines = data.draw(stdin_lines(shas))
    said: list[object] = []
    with inside(repo_path):
        code = pre_push_main(
            remote="origin",
            url=None,
            dry_run=True,
            as_json=False,
            env=env,
            stdin_lines=lambda: lines,
            echo=said.append,
            echo_json=said.append,
        )
    assert code == ExitCode.OK
    assert not any("unexpected error" in str(s) or "Traceback" in str(s) for s in said), said


# ----------------------------------------------------------------------------- config bytes


@FUZZ
@given(
    st.binary(max_size=300)
    | st.builds(
        lambda head, tail: head + tail,
        st.sampled_from([b"\xef\xbb\xbf", b"deploy:\n  dbt_cloud:\n    host: ", b"\xff\xfe"]),
        st.binary(max_size=100),
    )
)
def test_datachonk_yaml_as_any_bytes_is_settings_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    tried("datachonk.yaml as raw bytes")
    path = tmp_path_factory.getbasetemp() / "datachonk.yaml"
    path.write_bytes(data)
    result = attempt(lambda: load_settings_file(path, env={}), ConfigError)
    if isinstance(result, ConfigError):
        assert one_line(str(result)) and str(result).startswith(str(path))


# ----------------------------------------------------------------------------- causes

SPECS = st.sampled_from(["", ":>20", ":.5", ":^300", ":x<1000000000", ":d", ":%", ":{x}", "!r"])
PLACEHOLDER = st.builds(
    lambda name, spec: "{" + name + spec + "}",
    st.sampled_from(CAUSE_FIELDS) | st.text(max_size=8),
    SPECS | st.text(max_size=6).map(lambda t: ":" + t),
)
TEMPLATES = st.lists(PLACEHOLDER | st.text(max_size=20), min_size=1, max_size=6).map("".join)
ANY_TEXT = st.text(max_size=400) | st.sampled_from(["", "\x00\x1b[31m\u2028\x85", "é" * 5000])


def valid_cause(cause: str) -> bool:
    return (
        0 < len(cause) <= MAX_CAUSE
        and cause == cause.strip()
        and not any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in cause)
    )


@FUZZ
@given(
    template=TEMPLATES,
    subject=ANY_TEXT,
    author=ANY_TEXT,
    branch=ANY_TEXT,
    models=st.lists(ANY_TEXT, max_size=4),
)
@example(template="{subject:x<1000000000}", subject="a", author="", branch="", models=[])
def test_any_accepted_cause_template_builds_a_valid_cause(
    template: str, subject: str, author: str, branch: str, models: list[str]
) -> None:
    """The config either refuses a template (one-line ConfigError) or every push with it gets
    a cause dbt Cloud accepts: not empty, at most 255 characters, no control characters."""
    tried("cause templates x commit data")
    document = "deploy:\n  dbt_cloud:\n    cause: " + json.dumps(template, ensure_ascii=False)
    settings_ = attempt(
        lambda: load_settings(document + "\n", source="datachonk.yaml", env={}), ConfigError
    )
    if isinstance(settings_, ConfigError):
        assert one_line(str(settings_))
        return
    context = CauseContext(
        subject=subject, sha="0" * 40, branch=branch, author=author, commits=3, models=models
    )
    assert valid_cause(build_cause(context, settings_.cause))


# ----------------------------------------------------------------------------- commit messages

ENCODINGS = st.sampled_from([None, "UTF-8", "ISO-8859-1", "SHIFT_JIS", "UTF-16", "NO-SUCH-CODEC"])
MESSAGES = (
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | st.sampled_from(
        [b"", b"\n\n\n", b"Add orders\n\nGenerated-by: DataChonk\n", b"x" * 2_000_000]
    )
    | st.text(max_size=50).map(lambda t: t.encode("utf-16"))
)


@settings(FUZZ, max_examples=60)
@given(message=MESSAGES, encoding=ENCODINGS, name=st.binary(min_size=1, max_size=20))
def test_commit_messages_in_any_encoding_and_size(
    repo_path: Path, message: bytes, encoding: str | None, name: bytes
) -> None:
    """Read, used for the trailer and the cause, and pushed through the hook: no crash."""
    tried("commit messages in any encoding and size")
    assume(not set(name) & set(b"<>\n\x00") and name.strip(b" \t.,:;\"'"))
    repo = pygit2.Repository(str(repo_path))
    head = repo.head.peel(pygit2.Commit)
    try:
        author = pygit2.Signature(name.decode("latin-1"), "a@example.invalid")
    except pygit2.InvalidError:  # git itself refuses such an author: not an input we get
        reject()
    blob = repo.create_blob(GENERATED_SQL.encode())
    builder = repo.TreeBuilder(head.tree)
    folder = head.tree["models"]
    assert isinstance(folder, pygit2.Tree)
    models = repo.TreeBuilder(folder)
    models.insert("c.sql", blob, pygit2.GIT_FILEMODE_BLOB)
    builder.insert("models", models.write(), pygit2.GIT_FILEMODE_TREE)
    tree = builder.write()
    more = [encoding] if encoding else []
    oid = repo.create_commit(None, author, SIG, message, tree, [head.id], *more)
    commit = repo[oid].peel(pygit2.Commit)
    info = CommitInfo.of(commit)
    assert isinstance(info.subject, str) and one_line(info.subject)
    assert valid_cause(build_cause(CauseContext(subject=info.subject, sha=info.sha)))
    said: list[object] = []
    with inside(repo_path):
        code = pre_push_main(
            remote="origin",
            url=None,
            dry_run=True,
            as_json=True,
            env={"DBT_CLOUD_API_TOKEN": "x"},
            stdin_lines=lambda: [f"refs/heads/main {oid} refs/heads/main {head.id}"],
            echo=said.append,
            echo_json=said.append,
        )
    assert code == ExitCode.OK, said
    [plan] = [update for shown in said if isinstance(shown, dict) for update in shown["updates"]]
    assert [m["path"] for m in plan["models"]] == ["models/c.sql"]
    assert valid_cause(plan["trigger"]["body"]["cause"])


# ----------------------------------------------------------------------------- detection

REGULAR, EXECUTABLE, SYMLINK, SUBMODULE = 0o100644, 0o100755, 0o120000, 0o160000
FOLDERS = st.sampled_from(
    [b"models/", b"models/sub dir/", b"models/\xc3\xa9t\xc3\xa9/", b"", b"seeds/"]
)
STEMS = (
    st.binary(min_size=1, max_size=10).filter(lambda b: b"/" not in b and b"\x00" not in b)
    | st.text(min_size=1, max_size=10)
    .map(str.encode)
    .filter(lambda b: b"/" not in b and b"\x00" not in b)
    | st.sampled_from([b"my model", b"caf\xe9", b"-rf", b" "])
)
SUFFIXES = st.sampled_from([b".sql", b".py", b".yml", b".yaml", b".txt", b"", b".SQL"])
CONTENTS = st.sampled_from(
    [
        GENERATED_SQL.encode(),
        b"-- written by hand\nselect 1\n",
        b"version: 2\nmodels:\n  - name: from_yaml\n",
        b"models: [name: {",  # broken YAML
        b"\x00\xff\xfe binary",
        b"",
        b"\n" * 20 + b"-- Generated by DataChonk\n",  # too far down to count
    ]
) | st.binary(max_size=64)
MODES = st.sampled_from([REGULAR, REGULAR, EXECUTABLE, SYMLINK, SUBMODULE])
FILES = st.dictionaries(
    st.builds(lambda f, s, x: f + s + x, FOLDERS, STEMS, SUFFIXES),
    st.tuples(MODES, CONTENTS),
    max_size=6,
)


def write_tree(path: Path, repo: pygit2.Repository, files: dict[bytes, tuple[int, bytes]]) -> str:
    """A tree with byte-exact names (not valid UTF-8 too), via `git mktree`."""
    here: dict[bytes, tuple[int, str]] = {}
    folders: dict[bytes, dict[bytes, tuple[int, bytes]]] = {}
    for name, (mode, content) in files.items():
        head, sep, rest = name.partition(b"/")
        if sep:
            folders.setdefault(head, {})[rest] = (mode, content)
        elif mode == SUBMODULE:
            here[name] = (mode, "1" * 40)  # a gitlink: the commit need not exist here
        else:
            here[name] = (mode, str(repo.create_blob(content)))
    for name, inner in folders.items():
        if name not in here:  # a file and a folder of one name: the file wins
            here[name] = (0o040000, write_tree(path, repo, inner))
    kinds = {REGULAR: "blob", EXECUTABLE: "blob", SYMLINK: "blob", SUBMODULE: "commit"}
    lines = b"".join(
        f"{mode:06o} {kinds.get(mode, 'tree')} {sha}\t".encode() + name + b"\0"
        for name, (mode, sha) in sorted(here.items())
    )
    done = subprocess.run(
        ["git", "mktree", "-z", "--missing"], cwd=path, input=lines, capture_output=True, check=True
    )
    return done.stdout.decode().strip()


def regular(files: dict[bytes, tuple[int, bytes]], path: bytes) -> tuple[int, bytes] | None:
    entry = files.get(path)
    return entry if entry is not None and entry[0] in (REGULAR, EXECUTABLE) else None


@settings(FUZZ, max_examples=80)
@given(base=FILES, changes=FILES, deleted=st.sets(st.integers(0, 5)), trailer=st.booleans())
def test_detection_on_random_trees(
    repo_path: Path,
    base: dict[bytes, tuple[int, bytes]],
    changes: dict[bytes, tuple[int, bytes]],
    deleted: set[int],
    trailer: bool,
) -> None:
    """Only changed regular model files come out, symlinks and submodules never, any name."""
    tried("detection on random trees (odd paths, symlinks, submodules)")
    repo = pygit2.Repository(str(repo_path))
    project = {b"dbt_project.yml": (REGULAR, b"name: shop\n")}
    base = {**project, **base}
    tip = {**base, **changes}
    for i, name in enumerate(sorted(base)):
        if i in deleted and name != b"dbt_project.yml":
            tip.pop(name, None)
    base_commit = repo.create_commit(None, SIG, SIG, "Base", write_tree(repo_path, repo, base), [])
    message = "Change\n\nGenerated-by: DataChonk\n" if trailer else "Change"
    tip_id = repo.create_commit(
        None, SIG, SIG, message, write_tree(repo_path, repo, tip), [base_commit]
    )
    tip_commit = repo[tip_id].peel(pygit2.Commit)
    found = detect_generated(
        repo, tip_commit, [tip_commit], repo[base_commit].peel(pygit2.Commit), DetectRules()
    )
    if found:
        tried("detection on random trees: examples where models were found")

    paths = [os.fsencode(m.path) for m in found]
    assert paths == sorted(set(paths), key=os.fsdecode)
    for model in found:
        raw = os.fsencode(model.path)
        before, after = regular(base, raw), regular(tip, raw)
        assert (before or after) is not None, "a symlink, submodule or folder came out"
        assert before != after, "an unchanged file came out"
        assert raw.startswith(b"models/") and model.path.endswith(MODEL_SUFFIXES)
        assert all(isinstance(name, str) for name in model.names)
        if not model.path.endswith((".yml", ".yaml")):
            assert model.names == (os.fsdecode(raw.rsplit(b"/", 1)[1].rsplit(b".", 1)[0]),)
        assert model.change == (
            "added" if before is None else "deleted" if after is None else "modified"
        )
    for name, (mode, content) in tip.items():
        plain = name.startswith(b"models/") and os.fsdecode(name).endswith(MODEL_SUFFIXES)
        changed = regular(base, name) != regular(tip, name)
        if plain and changed and mode in (REGULAR, EXECUTABLE):
            marked = content.startswith(b"-- Generated by DataChonk")
            assert (name in paths) == (marked or trailer), (name, content, trailer)
