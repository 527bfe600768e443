"""Foreign checkpoint families for ``facebone import-weights``: one module per source.

Each module has ``read(path, backbone) -> Imported``: it loads the file with
``torch.load(weights_only=True)`` (never unpickling code), renames keys to facebone's and
says which facebone backbone and options the weights are for. The command then builds that
backbone, checks every key and shape, and writes safetensors. ``backbone`` is the user's
``--backbone`` (None when not given); a source that cannot infer one raises ConfigError.
"""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Imported:
    """A foreign checkpoint in facebone's terms."""

    state: dict[str, Any]
    """Backbone tensors under facebone's key names (every one is checked against the model)."""
    backbone: str
    """The facebone backbone the weights are for."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Backbone options the source implies (``--set`` overrides them)."""
    classifier: Any = None
    """Class centres ``(C, D)`` as facebone's classifier stores them, if the checkpoint has them."""
    notes: list[str] = dataclasses.field(default_factory=list)
    """What was changed or left out, printed by the command."""
    parts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Further state dicts (several files) that the backbone's ``import_state_dicts`` merges with ``state``."""


IRESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}
"""Blocks per stage of InsightFace's (and the GWP code's) iresnetN."""


def infer_iresnet_depth(state: dict[str, Any]) -> int | None:
    """The iResNet depth whose blocks per stage match the ``layerN.K.`` keys of ``state``, if any."""
    blocks = []
    for stage in range(1, 5):
        ids = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{stage}.") and k.split(".")[1].isdigit()}
        blocks.append(max(ids) + 1 if ids else 0)
    return next((d for d, layers in IRESNET_BLOCKS.items() if tuple(blocks) == layers), None)


def drop_unused(model: Any, state: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """Leave out the keys a backbone declares the original holds but never uses.

    A backbone may define ``unused_checkpoint_shapes() -> {key: shape}`` (e.g. a head path the
    original builds but never runs at its input size). Those keys are checked for shape and
    dropped; any other key is left for the strict comparison.
    """
    from facebone.errors import DataError

    unused = getattr(model, "unused_checkpoint_shapes", dict)()
    found = [k for k in state if k in unused]
    wrong = [f"{k}: checkpoint {list(state[k].shape)} vs {list(unused[k])}" for k in found
             if tuple(state[k].shape) != tuple(unused[k])]
    if wrong:
        raise DataError(f"{where}: unexpected shapes in keys the original never uses: " + "; ".join(wrong[:3]))
    if not found:
        return state, []
    n = sum(state[k].numel() for k in found)
    note = f"left out {len(found)} tensors ({n:,} values) that the original holds but never uses (shapes checked)"
    return {k: v for k, v in state.items() if k not in unused}, [note]


def write(out: Any, state: dict[str, Any], classifier: Any, **meta: Any) -> None:
    """Write the backbone as facebone safetensors; with ``classifier``, as a facebone checkpoint:
    ``model.backbone.*`` plus ``classifier.weight`` ``(C, D)`` (what ``facebone eval`` and
    ``export`` read)."""
    from facebone.weights.keys import save_backbone

    if classifier is None:
        save_backbone(out, state, **meta)
        return
    from safetensors.torch import save_file

    from facebone.io import atomic_write
    import json

    tensors = {f"model.backbone.{k}": v.detach().contiguous().cpu() for k, v in state.items()}
    tensors["classifier.weight"] = classifier.detach().contiguous().cpu()
    metadata = {"format": "facebone-backbone", "backbone": meta["backbone"], "options": json.dumps(meta["options"]),
                "embedding_size": str(meta["embedding_size"]), "image_size": str(meta["image_size"]),
                "source": meta.get("source", ""), "num_classes": str(classifier.shape[0])}
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata=metadata))
