"""Command-line edge: parse flags, call one function, map domain errors to exit codes."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Trigger dbt Cloud jobs for pushed DataChonk models."""
