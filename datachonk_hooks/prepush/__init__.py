"""The pre-push hook: its fast path, the recording slow path, and its watchdog."""
