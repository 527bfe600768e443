"""Checks of a training set against its experiment, made before anything is trained."""
from __future__ import annotations

from typing import Any

from facebone.errors import ConfigError


def check_training_set(dataset: Any, exp: Any) -> list[str]:
    """Notes to log about ``dataset`` (skipped files, a wrong ``property``); ConfigError on a size mismatch.

    Images stored at another size than ``[data] image_size`` (112 asked of 32-pixel images) are
    refused unless ``[data] resize = true``: resizing every image silently trains on blurred
    upscales or throws detail away.
    """
    source = getattr(dataset, "source", dataset)
    stored = tuple(source.image_size)
    notes = list(getattr(source, "notes", []))
    wanted = tuple(dataset.image_size)
    if stored != wanted:
        how = "upscaled" if stored[0] * stored[1] < wanted[0] * wanted[1] else "downscaled"
        if not getattr(exp.data, "resize", False):
            raise ConfigError(f"{exp.source} [data] image_size: {wanted[0]}x{wanted[1]} asked, but the images of "
                              f"{exp.data.train} are {stored[0]}x{stored[1]}; set image_size = {stored[0]}, or "
                              f"[data] resize = true to train on images {how} to {wanted[0]}x{wanted[1]}")
        notes.append(f"images of {exp.data.train} are {stored[0]}x{stored[1]}, {how} to {wanted[0]}x{wanted[1]} "
                     "([data] resize = true)")
    return notes
