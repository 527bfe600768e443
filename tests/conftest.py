"""Shared fixtures for the tests; helpers live in fb_testing.py."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_toml(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "exp.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
