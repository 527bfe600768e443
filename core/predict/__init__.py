"""Use a trained model: the face-embedding predictor behind ``facebone.load``, `facebone embed`
and `facebone verify`.

* :mod:`.predictor`: :func:`load` and :class:`Predictor` (embed, similarity, verify).
* :mod:`.images`: what ``embed`` accepts (paths, PIL images, uint8 arrays) as RGB arrays.
* :mod:`.faces`: landmarks and boxes checked and turned into crops or RoIs.
* :mod:`.optimize`: batch norm folded into convolutions, weights in the asked precision.
* :mod:`.networks`: the network in PyTorch or ONNX Runtime.
* :mod:`.thresholds`: the decision threshold at a FAR from a run's saved verification scores.
* :mod:`.outputs`: embedding files (.npy, .safetensors, .csv) and face tables (.csv).
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("load", "Predictor", "EmbedReport"):
        from facebone.predict import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'facebone.predict' has no attribute {name!r}")
