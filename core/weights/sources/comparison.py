"""``comparison``: checkpoints of the backbone comparison (github ItO210/arcface-backbone-comparative).

Its training script saves ``model.pt`` (``backbone.state_dict()``) and, with
``save_all_states``, ``checkpoint.pt`` (``state_dict_backbone``, maybe ``module.``-prefixed);
both are read. ``--backbone`` takes a facebone name or the repository's network name:

==================  ==========================================================
repository          facebone
==================  ==========================================================
``mbf``             ``mobilefacenet`` (the same network and keys)
``r18`` ... ``r200``  ``iresnet18`` ... ``iresnet200`` (InsightFace's)
``sfn0_5``          ``shufflefacenet_cmp_0_5``
``sfn1_5``          ``shufflefacenet_cmp_1_0`` (the repository's 1.5 name builds 1.0x)
``sfn1_0``          ``shufflefacenet_cmp_1_5`` (the repository's 1.0 name builds 1.5x)
``sfn2_0``          ``shufflefacenet_cmp_2_0``
``mfn_xs|s|m``      ``mixfacenet_cmp_xs|s|m``
``smfn_xs|s|m``     ``mixfacenet_cmp_xs|s|m`` with ``shuffle = true``
==================  ==========================================================

Without ``--backbone`` the net is read from the keys (MobileFaceNet, ShuffleFaceNet width,
iResNet depth); a MixFaceNet needs the name, since shuffling leaves no trace in the weights.
The MixFaceNets' unused GDC head tensors are checked and left out (see ``mixfacenet_cmp_model``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from facebone.errors import ConfigError, DataError
from facebone.weights.sources import Imported, infer_iresnet_depth

MIX = ("xs", "s", "m")
NAMES: dict[str, tuple[str, dict[str, Any]]] = {
    "mbf": ("mobilefacenet", {}),
    **{f"r{d}": (f"iresnet{d}", {}) for d in (18, 34, 50, 100, 200)},
    "sfn0_5": ("shufflefacenet_cmp_0_5", {}), "sfn1_5": ("shufflefacenet_cmp_1_0", {}),
    "sfn1_0": ("shufflefacenet_cmp_1_5", {}), "sfn2_0": ("shufflefacenet_cmp_2_0", {}),
    **{f"mfn_{v}": (f"mixfacenet_cmp_{v}", {}) for v in MIX},
    **{f"smfn_{v}": (f"mixfacenet_cmp_{v}", {"shuffle": True}) for v in MIX},
}
"""The repository's network names -> (facebone backbone, options), its 1.0 / 1.5 swap corrected."""
SHUFFLE_WIDTHS = {48: "0_5", 116: "1_0", 176: "1_5", 244: "2_0"}


def infer(state: dict[str, Any], path: Path) -> str:
    """The facebone backbone whose layout ``state`` has."""
    if "conv_sep.layers.0.weight" in state:
        return "mobilefacenet" if state["conv_sep.layers.0.weight"].shape[1] == 256 else "mobilefacenet_large"
    if "stage2.0.branch1.5.weight" in state:
        width = int(state["stage2.0.branch1.5.weight"].shape[0]) + int(state["conv1.0.weight"].shape[0])
        if width in SHUFFLE_WIDTHS:
            return f"shufflefacenet_cmp_{SHUFFLE_WIDTHS[width]}"
    if any(k.startswith("stages.stage1.") for k in state):
        raise ConfigError(f"{path}: a MixFaceNet checkpoint: pass --backbone mfn_xs|mfn_s|mfn_m or "
                          "smfn_xs|smfn_s|smfn_m (channel shuffle leaves no trace in the weights)")
    depth = infer_iresnet_depth(state)
    if depth is not None:
        return f"iresnet{depth}"
    raise DataError(f"{path}: not a layout of the comparison repository's nets; pass --backbone NAME")


def read(path: Path, backbone: str | None) -> Imported:
    from facebone.weights.keys import read_torch_state_dict

    state = read_torch_state_dict(path)
    options: dict[str, Any] = {}
    notes = []
    if backbone in NAMES:
        name, options = NAMES[backbone]
        notes.append(f"repository network '{backbone}' is facebone's {name}"
                     + (" with shuffle = true" if options else ""))
        backbone = name
    elif not backbone:
        backbone = infer(state, path)
        notes.append(f"read from the keys: {backbone}")
    return Imported(state=state, backbone=backbone, options=dict(options), notes=notes)
