"""`python -m datachonk_hooks` runs the same CLI as `datachonk-hook`."""

from __future__ import annotations

from datachonk_hooks.entry import main

raise SystemExit(main())
