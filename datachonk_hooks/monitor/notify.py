"""A desktop notification when a followed run ends (`notify: true` in datachonk.yaml).

Through the platform's own tool only (`notify-send` on Linux and the BSDs, `osascript` on
macOS), so no package is needed; where none is installed, or it fails, nothing happens:
a notification is a courtesy, the outcome line on the next push is the promise. The text
is passed as arguments, never put inside a script (a commit subject may hold quotes), and
escaped where the tool reads markup.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
from collections.abc import Mapping

APP_NAME = "datachonk"
#: seconds a notification tool may take before it is given up on
TOOL_TIMEOUT = 10.0

# AppleScript reads the title and body from its arguments: nothing in them is code
_OSASCRIPT = (
    "on run argv",
    "display notification (item 2 of argv) with title (item 1 of argv)",
    "end run",
)


def notification_command(
    title: str, body: str, *, env: Mapping[str, str], platform: str = sys.platform
) -> list[str] | None:
    """The command that shows the notification here, or None when there is no tool."""
    path = env.get("PATH")
    if platform == "darwin":
        tool = shutil.which("osascript", path=path)
        if tool is None:
            return None
        script = [part for line in _OSASCRIPT for part in ("-e", line)]
        return [tool, *script, title, body]
    tool = shutil.which("notify-send", path=path)
    if tool is None:
        return None
    # the notification spec reads the body as markup: `<b>` in a commit subject is text
    return [tool, f"--app-name={APP_NAME}", "--", title, html.escape(body, quote=False)]


def notify(title: str, body: str, *, env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Show a desktop notification; True when the tool ran and said it worked."""
    command = notification_command(title, body, env=env, platform=platform)
    if command is None:
        return False
    try:
        done = subprocess.run(
            command,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
