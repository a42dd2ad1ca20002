"""Desktop notifications through the platform's tool, tested with stand-ins on PATH."""

from __future__ import annotations

import os
from pathlib import Path

from datachonk_hooks.monitor.notify import notification_command, notify
from tests.helpers import stand_in

TITLE = 'dbt Cloud run failed "now"'
BODY = "run 1 for 0e92d14 (main) failed: it's $(broken) `here`"


def path_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "PATH": str(folder)}


def test_linux_uses_notify_send_with_the_text_as_arguments(tmp_path: Path) -> None:
    args = stand_in(tmp_path, "notify-send")
    assert notify(TITLE, BODY, env=path_env(tmp_path), platform="linux")
    assert args.read_text().splitlines() == ["--app-name=datachonk", "--", TITLE, BODY, "--end--"]


def test_macos_uses_osascript_and_passes_the_text_as_arguments(tmp_path: Path) -> None:
    args = stand_in(tmp_path, "osascript")
    assert notify(TITLE, BODY, env=path_env(tmp_path), platform="darwin")
    lines = args.read_text().splitlines()
    assert lines[-3:] == [TITLE, BODY, "--end--"]  # never inside the script
    script = [line for line in lines[:-3] if line != "-e"]
    assert script == [
        "on run argv",
        "display notification (item 2 of argv) with title (item 1 of argv)",
        "end run",
    ]


def test_no_tool_means_no_notification(tmp_path: Path) -> None:
    assert notification_command(TITLE, BODY, env=path_env(tmp_path), platform="linux") is None
    assert not notify(TITLE, BODY, env=path_env(tmp_path), platform="darwin")


def test_a_failing_tool_is_reported_not_raised(tmp_path: Path) -> None:
    stand_in(tmp_path, "notify-send", code=1)
    assert not notify(TITLE, BODY, env=path_env(tmp_path), platform="linux")


def test_markup_in_the_text_is_shown_as_text_by_notify_send(tmp_path: Path) -> None:
    args = stand_in(tmp_path, "notify-send")
    assert notify(TITLE, "run for <b>x</b> & y", env=path_env(tmp_path), platform="linux")
    assert args.read_text().splitlines()[3] == "run for &lt;b&gt;x&lt;/b&gt; &amp; y"
