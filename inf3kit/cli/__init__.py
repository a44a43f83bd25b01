"""The `inf3kit` command, by audience: operators (operator.py), model authors (model.py), fleet
hosts (host.py) and endpoint users (endpoint.py); what they share is in shared.py.

Heavy imports (the CDK, torch) happen inside the commands, so `inf3kit serve` starts in a
container that has only `inf3kit[serve]` installed.
"""

from __future__ import annotations

from inf3kit.cli.shared import app

# Importing the modules registers their commands, grouped by audience in `inf3kit --help` in
# this order.
# isort: off
from inf3kit.cli import operator, model, host, llm, endpoint  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    app()
