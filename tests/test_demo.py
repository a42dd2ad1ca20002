"""`datachonk-hook demo` (what `make demo` runs): the loop closed, against the simulator."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_environ

BIN = Path(sys.executable).parent


def test_the_demo_shows_the_loop_closed() -> None:
    done = subprocess.run(
        [str(BIN / "datachonk-hook"), "demo"],
        env={**clean_environ(), "PATH": f"{BIN}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    told = re.findall(r"^datachonk: run \d+ for \w{7} \(main\) (.*)$", out, re.MULTILINE)
    assert len(told) == 2, out  # each outcome told once: by a command, then by a push
    assert told[0].startswith("succeeded in ") and ": models are live " in told[0]
    assert told[1].startswith('failed at step 4 "Invoke dbt with `dbt build`": Database Error')
    assert "already triggered run" in out  # no second run for the same commit
    assert "--- last 30 lines of its logs ---" in out
    assert "Traceback" not in out
