"""Size and parse bounds on what the hook reads from a push, and hostile pushes end to end:
each returns in under 3 s with one line that says why nothing was triggered."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.push.limits import (
    MAX_FILE_BYTES,
    MAX_PARSE_BYTES,
    first_top_level,
    too_large,
    top_level_sections,
)
from datachonk_hooks.push.model_yaml import parse_model_paths, scan_model_names
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.config import load_settings, load_settings_file
from tests.e2e import BIN, Clone
from tests.helpers import GENERATED_SQL, config_yaml, git

MiB = 1 << 20
PUSH_BOUND = 3.0  # seconds a whole `git push` may take, hook included

# ----------------------------------------------------------------------------- units


def test_too_large_message() -> None:
    assert too_large("datachonk.yaml@abc1234", 2 * MiB) == (
        "datachonk.yaml@abc1234: too large (2097152 bytes, limit 1 MiB)"
    )


def test_sections_are_cut_by_top_level_lines() -> None:
    text = (
        "# head\nfoo: 1\ndeploy:\n  dbt_cloud:\n    job_id: 1\n  # inner\n"
        "# trailing\n\nbar:\n  deploy: 3\n'deploy' : 4\n"
    )
    assert top_level_sections(text, "deploy") == [
        (2, "deploy:\n  dbt_cloud:\n    job_id: 1\n  # inner\n"),
        (10, "'deploy' : 4\n"),
    ]
    assert top_level_sections(text, "dep") == []
    assert first_top_level("%YAML 1.2\n---\n{deploy: 1}\n") == "{deploy: 1}"


def _big_config(host: str, filler: str, size: int) -> str:
    text = config_yaml(host)
    return text + filler * ((size - len(text)) // len(filler) + 1)


@pytest.mark.parametrize(
    "filler",
    [
        "# " + "x" * 60 + "\n",  # comment lines
        "".join(f"k{i}: v{i}\n" for i in range(100)),  # many keys
        "other:\n  a:\n    b:\n      c: [1, 2, {d: e}]\n",  # nesting and flows
        "lol: &a [x, x, x, x, x, x, x, x, x]\n",  # anchors
    ],
    ids=["comments", "keys", "nesting", "anchors"],
)
def test_the_worst_megabyte_of_datachonk_yaml_is_cheap(filler: str) -> None:
    """Beyond MAX_PARSE_BYTES only the `deploy:` entry is parsed: 1 MiB costs a line scan."""
    text = _big_config("https://cloud.getdbt.com", filler, MAX_FILE_BYTES - 100)
    started = time.process_time()
    settings = load_settings(text, source="datachonk.yaml", env={})
    assert time.process_time() - started < 0.5
    assert (settings.account_id, settings.job_id) == (12345, 11111)


def test_a_large_file_reports_the_files_own_lines() -> None:
    text = "# x\n" * 20_000 + "deploy:\n  dbt_cloud:\n    acount_id: 1\n"
    with pytest.raises(ConfigError, match=r"^datachonk.yaml:20003:5: unknown key .*acount_id"):
        load_settings(text, source="datachonk.yaml", env={})


def test_a_large_file_needs_a_block_mapping() -> None:
    text = "{deploy: {dbt_cloud: {job_id: 1}}, x: '" + "y" * MAX_PARSE_BYTES + "'}\n"
    with pytest.raises(ConfigError, match="needs a block mapping at the top level"):
        load_settings(text, source="datachonk.yaml", env={})


def test_a_large_file_with_two_deploy_entries() -> None:
    text = "deploy: {}\n" + "# x\n" * 10_000 + "deploy: {}\n"
    with pytest.raises(ConfigError, match=r"^datachonk.yaml:10002:1: invalid YAML: duplicate"):
        load_settings(text, source="datachonk.yaml", env={})


def test_a_huge_deploy_entry_is_refused() -> None:
    text = "deploy:\n  dbt_cloud:\n" + "".join(f"    k{i}: 1\n" for i in range(5000))
    with pytest.raises(ConfigError, match=r"^datachonk.yaml:1:1: deploy: too large"):
        load_settings(text, source="datachonk.yaml", env={})


def test_deep_nesting_stops_early() -> None:
    started = time.process_time()
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings("x: " + "[" * 20_000, source="datachonk.yaml", env={})
    assert time.process_time() - started < 1.0


def test_alias_bombs_cost_nothing_in_datachonk_yaml() -> None:
    """The round-trip loader shares aliased nodes (and merged keys) instead of copying them."""
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 30)
    )
    merges = "m0: &m0 {k: 1}\n" + "".join(
        f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}\n" for i in range(1, 40)
    )
    started = time.process_time()
    settings = load_settings(
        config_yaml("https://cloud.getdbt.com") + laughs + merges, source="d.yaml", env={}
    )
    assert time.process_time() - started < 1.0
    assert settings.job_id == 11111


def test_the_file_on_disk_is_measured_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "datachonk.yaml"
    path.write_text(_big_config("https://cloud.getdbt.com", "# x\n", 2 * MiB))
    size = path.stat().st_size
    with pytest.raises(
        ConfigError, match=rf"datachonk.yaml: too large \({size} bytes, limit 1 MiB"
    ):
        load_settings_file(path, env={})


def test_model_paths_of_a_large_dbt_project() -> None:
    body = "".join(f"  folder_{i}:\n    +materialized: view\n" for i in range(30_000))
    text = "name: shop\nmodels:\n  shop:\n" + body + "model-paths: ['transform']\n"
    started = time.process_time()
    assert parse_model_paths(text.encode()) == ("transform",)
    assert time.process_time() - started < 0.5


def test_model_paths_with_a_merge_bomb() -> None:
    """The safe loader would copy merged mappings 2^depth times: aliases are refused, and
    only the model-paths entry is parsed anyway."""
    bomb = "m0: &m0 {k: 1}\n" + "".join(
        f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}\n" for i in range(1, 40)
    )
    started = time.process_time()
    assert parse_model_paths((bomb + "model-paths: [src]\n").encode()) == ("src",)
    assert parse_model_paths(("{model-paths: [src], " + bomb.replace("\n", ", ") + "}").encode())
    assert time.process_time() - started < 1.0


def test_model_names_from_the_lines() -> None:
    text = (
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n"
        "  - description: x\n    name: 'customers'  \n  - name: \"pay\" # c\n"
        "sources:\n  - name: raw\n"
    )
    assert scan_model_names(text) == ("orders", "customers", "pay")
    assert scan_model_names("sources: []\n") == ()


# ----------------------------------------------------------------------------- whole pushes


def _timed_push(clone: Clone) -> tuple[float, str]:
    started = time.monotonic()
    done = clone.push("origin", "main")
    return time.monotonic() - started, done.stdout + done.stderr


def _datachonk_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("datachonk:")]


def _nothing_recorded(clone: Clone, cloud: Sandbox) -> None:
    ledger = clone.path / ".git" / "datachonk" / "ledger.sqlite3"
    if ledger.exists():
        with clone.ledger() as opened:
            assert opened.history() == []
    assert cloud.runs == []


def test_push_of_a_2_mib_datachonk_yaml(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    config = _big_config(cloud.url, "# " + "x" * 60 + "\n", 2 * MiB)
    sha = clone.commit({"datachonk.yaml": config, "models/a.sql": GENERATED_SQL}, "Big config")
    took, output = _timed_push(clone)
    assert took < PUSH_BOUND, output
    size = len(config.encode())
    assert _datachonk_lines(output) == [
        f"datachonk: datachonk.yaml@{sha[:7]}: too large ({size} bytes, limit 1 MiB)",
        f"datachonk: nothing triggered for refs/heads/main; the push goes on. Once the file is"
        f" fixed: `datachonk-hook run --ref {sha[:12]}`",
    ]
    _nothing_recorded(clone, cloud)


@pytest.mark.parametrize(
    "filler",
    [
        "# " + "x" * 60 + "\n",
        "lol: &a [x, x, x, x, x, x, x, x, x]\nlol2: [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
    ],
    ids=["a megabyte of comments", "alias bombs"],
)
def test_push_of_a_hostile_but_valid_datachonk_yaml(
    standalone: Clone, cloud: Sandbox, filler: str
) -> None:
    """Just under the size limit, with a wrong key in `deploy`: the line is about the key,
    with the file's own line number, and the push takes no longer than any other."""
    clone = standalone
    config = _big_config(cloud.url, filler, MAX_FILE_BYTES - 200).replace(
        "    job_id:", "    jobid:"
    )
    sha = clone.commit({"datachonk.yaml": config, "models/a.sql": GENERATED_SQL}, "Big config")
    took, output = _timed_push(clone)
    assert took < PUSH_BOUND, output
    assert _datachonk_lines(output)[0] == (
        f"datachonk: datachonk.yaml@{sha[:7]}:6:5: unknown key deploy.dbt_cloud.jobid"
        " (did you mean job_id?)"
    )
    _nothing_recorded(clone, cloud)


def test_push_with_a_catastrophic_marker(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    config = config_yaml(cloud.url) + "    detect:\n      marker: '(a+)+$'\n"
    model = "-- " + "a" * 34 + "!\nselect 1 as id\n"
    sha = clone.commit({"datachonk.yaml": config, "models/a.sql": model}, "Evil marker")
    took, output = _timed_push(clone)
    assert took < PUSH_BOUND, output
    [reason, hint] = _datachonk_lines(output)
    assert reason == (
        f"datachonk: datachonk.yaml@{sha[:7]}:9:15: deploy.dbt_cloud.detect.marker: refused"
        " regular expression '(a+)+$': a repetition inside a repetition (like (a+)+ or (a*)*)"
        " can take exponential time; use a single repetition"
    )
    assert hint.startswith("datachonk: nothing triggered for refs/heads/main")
    _nothing_recorded(clone, cloud)


def test_push_of_a_100_mb_single_line_model(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    huge = clone.path / "models" / "huge.sql"
    huge.parent.mkdir(parents=True, exist_ok=True)
    with huge.open("w") as out:
        out.write("-- generated by datachonk ")
        for _ in range(100):
            out.write("a" * 1_000_000)
    clone.run("git", "add", "models/huge.sql")
    clone.run("git", "commit", "--quiet", "-m", "A huge model")
    sha = git(clone.path, "rev-parse", "HEAD")
    took, output = _timed_push(clone)
    assert took < PUSH_BOUND, output
    size = huge.stat().st_size
    assert _datachonk_lines(output) == [
        f"datachonk: models/huge.sql@{sha[:7]}: too large ({size} bytes, limit 16 MiB);"
        " not checked for the marker"
    ]
    _nothing_recorded(clone, cloud)


def test_push_of_a_2_mib_dbt_project_yml(standalone: Clone, cloud: Sandbox) -> None:
    clone = standalone
    project = "name: shop\nmodel-paths: [models]\n" + ("# " + "x" * 60 + "\n") * (2 * MiB // 63)
    sha = clone.commit({"dbt_project.yml": project, "models/a.sql": GENERATED_SQL}, "Big project")
    took, output = _timed_push(clone)
    assert took < PUSH_BOUND, output
    size = len(project.encode())
    assert _datachonk_lines(output)[0] == (
        f"datachonk: dbt_project.yml@{sha[:7]}: too large ({size} bytes, limit 1 MiB)"
    )
    _nothing_recorded(clone, cloud)


def test_run_refuses_a_huge_datachonk_yaml_at_once(standalone: Clone, cloud: Sandbox) -> None:
    """`run` reads the work tree's file: measured before it is read, too."""
    clone = standalone
    (clone.path / "datachonk.yaml").write_text(_big_config(cloud.url, "# x\n", 2 * MiB))
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "datachonk-hook"), "run", "--allow-unpushed"],
        cwd=clone.path,
        env=clone.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert time.monotonic() - started < PUSH_BOUND
    assert done.returncode == 2
    assert "datachonk.yaml: too large (" in done.stderr
    assert "limit 1 MiB)" in done.stderr
