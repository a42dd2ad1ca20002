"""datachonk-hooks: trigger dbt Cloud jobs when DataChonk-generated dbt models are pushed."""

from __future__ import annotations

__version__ = "0.1.0"
