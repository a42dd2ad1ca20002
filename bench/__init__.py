"""The performance benchmark of the hook, the detection and the polling (`make bench`)."""

from __future__ import annotations
