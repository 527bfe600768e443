"""Validation checks shared by backbone hook modules (no torch import)."""
from __future__ import annotations

from typing import Any


def check_image_size(options: Any, experiment: dict) -> list[str]:
    """For backbones that halve the map four times: ``[data] image_size`` divisible by 16."""
    size = (experiment.get("data") or {}).get("image_size", 112)
    name = (experiment.get("backbone") or {}).get("type", "this backbone")
    if isinstance(size, int) and (size % 16 or size < 16):
        return [f"[data] key 'image_size' = {size}: {name} needs a multiple of 16 (e.g. 112)"]
    return []
