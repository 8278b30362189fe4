"""The `l4p` command (placeholder entry point until the CLI lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `l4p` console script."""
    sys.stderr.write("l4p: the command-line interface is not available yet; use the Python API (see README)\n")
    return 2
