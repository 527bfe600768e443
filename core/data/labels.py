"""The class count of a training source, checked against its images.

A corrupt label (1e9 in a pack without ``property``) or a numeric class folder with a huge
name would make the trainer allocate a classifier of that many classes. Every class needs at
least one image, so a class count above the image count is refused, naming the record (or
file) responsible.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from facebone.errors import DataError


def check_class_count(labels: np.ndarray, num_classes: int, *, where: Callable[[int], str],
                      declared_by: str | None = None) -> None:
    """DataError unless ``num_classes`` is at most the number of images.

    ``declared_by`` names what declared ``num_classes`` (a ``property`` file); otherwise the
    largest label defined it and ``where(i)`` names the image holding it.
    """
    n = len(labels)
    if num_classes <= n:
        return
    if declared_by is not None:
        raise DataError(f"{declared_by}: declares {num_classes} classes but the data holds only {n} images "
                        "(every class needs an image); is the file corrupt?")
    i = int(np.argmax(labels))
    raise DataError(f"{where(i)}: label {int(labels[i])} means {int(labels[i]) + 1} classes, more than the {n} "
                    "images (every class needs an image); a corrupt label?")
