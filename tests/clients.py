"""The two most used third-party dbt Cloud clients, `dbt-cloud-cli` (`dbt-cloud`) and `dbtc`,
in a virtualenv of their own, and how tests run them against a TLS sandbox.

They must not go into the project's own venv (their pins would fight ours), so they live in
`<venv>/clients/<stamp>`, built once per requirement list and reused across runs. dbtc 0.11.7
pins pandas<2.2, which needs NumPy 1, and pyarrow 21+ refuses NumPy 1 at import: left to
itself pip pairs NumPy 1 with the newest pyarrow and `import dbtc` fails, hence the pins.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clean_environ

REQUIREMENTS = ("dbt-cloud-cli>=0.9.1", "dbtc>=0.11.7", "numpy<2", "pyarrow<21")

#: what pip prints when it cannot reach the index at all (not: the index said no)
OFFLINE_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ProxyError",
    "(from versions: none)",
)

#: dbtc's Python API, driven from the clients' venv: calls in argv as JSON, results out as JSON
DBTC_API_SCRIPT = """
import json, sys
from dbtc import dbtCloudClient
client = dbtCloudClient()
out = []
for method, args, kwargs in json.loads(sys.argv[1]):
    out.append(getattr(client.cloud, method)(*args, **kwargs))
print(json.dumps(out))
"""


@dataclass(frozen=True)
class ClientsVenv:
    """A built virtualenv holding both clients."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def script(self, name: str) -> Path:
        return self.root / "bin" / name


@dataclass(frozen=True)
class Done:
    """One finished client process: its exit code and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The client's JSON answer on stdout; a non-JSON answer fails with both streams."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"{self.argv}: not JSON\n{self.stdout}\n{self.stderr}") from None

    def ok(self) -> Any:
        """The JSON answer of a command that must have succeeded."""
        assert self.returncode == 0, f"{self.argv} -> {self.returncode}\n{self.stdout}{self.stderr}"
        return self.json()


def venv_home() -> Path:
    """Inside the venv running the tests when there is one (gitignored, per checkout)."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "clients"
    return Path.home() / ".cache" / "datachonk-hooks-test-clients"


def stamp() -> str:
    """A new requirement list or a new Python builds a new venv; the old one stays unused."""
    text = "\n".join((*REQUIREMENTS, sys.version))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two test runs at once build the venv once: the second waits, then reuses it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_clients_venv() -> ClientsVenv:
    """Build (or reuse) the clients' venv; skip when the package index is out of reach."""
    home, key = venv_home(), stamp()
    venv = ClientsVenv(home / key)
    marker = venv.root / ".complete"
    with _locked(home / f"{key}.lock"):
        if marker.exists():
            return venv
        shutil.rmtree(venv.root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv.root)], check=True)
        install = [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check"]
        install += ["--retries", "1", "--timeout", "20", *REQUIREMENTS]
        done = subprocess.run(install, capture_output=True, text=True, check=False)
        output = done.stdout + done.stderr
        if done.returncode != 0:
            shutil.rmtree(venv.root, ignore_errors=True)
            if any(sign in output for sign in OFFLINE_SIGNS):
                pytest.skip(f"pip cannot reach the package index for {', '.join(REQUIREMENTS)}")
            pytest.fail(f"installing the third-party clients failed:\n{output[-4000:]}")
        check = [str(venv.python), "-c", "import dbt_cloud.cli, dbtc.cli"]
        imported = subprocess.run(check, capture_output=True, text=True, check=False)
        if imported.returncode != 0:
            shutil.rmtree(venv.root, ignore_errors=True)
            pytest.fail(f"the clients installed but do not import:\n{imported.stderr[-4000:]}")
        marker.write_text("\n".join(REQUIREMENTS) + "\n")
    return venv


def client_env(host: str, token: str, account_id: int, ca_bundle: Path) -> dict[str, str]:
    """What both clients read: dbt-cloud-cli the API token, dbtc the service token; both
    trust the sandbox's throw-away CA through requests' and OpenSSL's variables."""
    return {
        **clean_environ(),
        "DBT_CLOUD_HOST": host,
        "DBT_CLOUD_API_TOKEN": token,
        "DBT_CLOUD_SERVICE_TOKEN": token,
        "DBT_CLOUD_ACCOUNT_ID": str(account_id),
        "REQUESTS_CA_BUNDLE": str(ca_bundle),
        "SSL_CERT_FILE": str(ca_bundle),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "200",
    }


@dataclass(frozen=True)
class Started:
    """A client process still running, with the command line it was started with."""

    argv: tuple[str, ...]
    process: subprocess.Popen[str]


#: one call of dbtc's API: method name, positional and keyword arguments (JSON-able)
ApiCall = tuple[str, Sequence[object], Mapping[str, object]]


@dataclass(frozen=True)
class Clients:
    """Runs the clients as real subprocesses against one sandbox."""

    venv: ClientsVenv
    env: dict[str, str]

    def _spawn(self, argv: tuple[str, ...]) -> Started:
        pipe = subprocess.PIPE
        process = subprocess.Popen(argv, env=self.env, stdout=pipe, stderr=pipe, text=True)
        return Started(argv, process)

    def start(self, program: str, *args: str) -> Started:
        return self._spawn((str(self.venv.script(program)), *args))

    def finish(self, started: Started, timeout: float = 90) -> Done:
        """Wait for the process (bounded: a hung client fails the test, it never hangs it)."""
        process = started.process
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"{started.argv} did not end in {timeout}s\n{stderr}") from None
        return Done(started.argv, process.returncode, stdout, stderr)

    def dbt_cloud(self, *args: str) -> Done:
        return self.finish(self.start("dbt-cloud", *args))

    def dbtc(self, *args: str) -> Done:
        return self.finish(self.start("dbtc", *args))

    def dbtc_api(self, *calls: ApiCall) -> list[Any]:
        """Call `dbtCloudClient().cloud.<method>(*args, **kwargs)` for each call, in order,
        in one process (one import of dbtc and pandas, not one per call)."""
        script = (str(self.venv.python), "-c", DBTC_API_SCRIPT, json.dumps(calls))
        results: list[Any] = self.finish(self._spawn(script)).ok()
        return results
