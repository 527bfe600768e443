"""``gwp``: the GWP paper's ``model.pt`` (github abhatta1234/revisit-linearize-SoTA-FR, IJCB 2024).

Its training script saves ``backbone.module.state_dict()``: InsightFace iResNet key names, a
7x7 stem and a 512 -> 512 ``fc``. The weights go to facebone's ``iresnetN`` with
``pooling = "gwp"`` and ``stem7x7 = true`` (the depth is read from the blocks per stage
unless ``--backbone`` is given). Its ``iresnet_gap.py`` ablation has the same keys: import it
with ``--set backbone.pooling=gap``. The Gaussian is not in the file (the code keeps it as a
plain attribute); facebone computes the same 7x7, sigma 3 kernel.
"""
from __future__ import annotations

from pathlib import Path

from facebone.errors import DataError
from facebone.weights.sources import Imported, infer_iresnet_depth


def read(path: Path, backbone: str | None) -> Imported:
    from facebone.weights.keys import read_torch_state_dict

    state = read_torch_state_dict(path)
    if not backbone:
        depth = infer_iresnet_depth(state)
        if depth is None:
            raise DataError(f"{path}: no iResNet layout (layer1..layer4 blocks) found; pass --backbone NAME")
        backbone = f"iresnet{depth}"
    return Imported(state=state, backbone=backbone, options={"pooling": "gwp", "stem7x7": True})
