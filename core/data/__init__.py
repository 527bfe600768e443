"""facebone's data layer: RecordIO packs, image folders, verification sets, synthetic data,
and the training Dataset/DataLoader.

Heavy imports (torch) happen in submodules; importing :mod:`facebone.data` is cheap.
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "open_pack", "write_insightface_pack", "write_im2rec_pack", "Pack",
    "load_bin", "write_bin", "generate_synthetic",
    "open_training_set", "make_loader",
]

_WHERE = {
    "open_pack": "pack", "write_insightface_pack": "pack", "write_im2rec_pack": "pack", "Pack": "pack",
    "load_bin": "verification_bin", "write_bin": "verification_bin",
    "generate_synthetic": "synth",
    "open_training_set": "dataset", "make_loader": "loader",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"facebone.data.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'facebone.data' has no attribute {name!r}")
