"""Shared pytest fixtures.

`shared_path(rel)` finds a file of the project's shared folder (`../shared` beside the
repository). Under CI (`CI=true`) a missing file fails the test; in a user's clone it
skips with a message naming what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(rel: str) -> Path:
    """Return `../shared/<rel>`, failing under CI and skipping elsewhere when it is absent."""
    path = SHARED / rel
    if not path.exists():
        msg = f"missing shared file {path} (expected the project's shared/ folder beside the repo)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
