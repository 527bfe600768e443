"""``gwp-adaface``: the GWP backbone in AdaFace's layout, trained by AdaFace's Lightning script.

The GWP repository's ``backbones/adaface_backbone.py`` is GWP iResNet (3x3 stem) that returns
``(x / clamp(||x||, 0.001, 100), ||x||)`` and reads **BGR** input scaled to [-1, 1]. AdaFace's
trainer saves a PyTorch Lightning ``.ckpt``: ``state_dict`` holds the backbone as ``model.*``
and the margin head as ``head.kernel`` (``(D, C)``) plus its statistics ``head.t``,
``head.batch_mean``, ``head.batch_std``.

Import: the ``model.`` prefix is stripped and the first convolution's input channels are
reversed, so the facebone backbone reads RGB in [-1, 1] like every other and gives the same
result on the same picture. facebone's backbone returns ``x`` itself (the output of the final
BatchNorm1d); the original's pair is ``(x / clamp(||x||, 0.001, 100), ||x||)``, which is
``x`` L2-normalised (as the embedder and the classifier normalise it) and its norm (the
``norms`` facebone's classifier hands to the heads) whenever ``||x|| >= 0.001``. With
``--classifier`` the kernel is kept, transposed to facebone's ``(C, D)`` class centres. The
head statistics are not imported (facebone's heads keep their own state).
"""
from __future__ import annotations

from pathlib import Path

from facebone.errors import DataError
from facebone.weights.sources import Imported, infer_iresnet_depth

HEAD_STATISTICS = ("head.t", "head.batch_mean", "head.batch_std")


def read(path: Path, backbone: str | None) -> Imported:
    from facebone.weights.keys import read_torch_state_dict

    raw = read_torch_state_dict(path)  # the Lightning checkpoint's 'state_dict'
    other = [k for k in raw if not k.startswith(("model.", "head."))]
    head = [k for k in raw if k.startswith("head.") and k != "head.kernel" and k not in HEAD_STATISTICS]
    if other or head:
        raise DataError(f"{path}: not an AdaFace-layout checkpoint: unexpected keys {(other + head)[:3]}")
    state = {k[len("model."):]: v for k, v in raw.items() if k.startswith("model.")}
    if not state:
        raise DataError(f"{path}: no 'model.*' backbone tensors (an AdaFace Lightning checkpoint has them)")
    if "conv1.weight" not in state or state["conv1.weight"].ndim != 4 or state["conv1.weight"].shape[1] != 3:
        raise DataError(f"{path}: 'model.conv1.weight' is not a 3-channel input convolution")
    state["conv1.weight"] = state["conv1.weight"].flip(1).contiguous()
    notes = ["conv1 input channels reversed: the original reads BGR, facebone's backbone reads RGB"]
    classifier = None
    if "head.kernel" in raw:
        kernel = raw["head.kernel"]
        if kernel.ndim != 2:
            raise DataError(f"{path}: 'head.kernel' should be (D, C), got {list(kernel.shape)}")
        classifier = kernel.t().contiguous()
    left = [k for k in HEAD_STATISTICS if k in raw]
    if left:
        notes.append(f"not imported: {', '.join(left)} (AdaFace head statistics)")
    if not backbone:
        depth = infer_iresnet_depth(state)
        if depth is None:
            raise DataError(f"{path}: no iResNet layout (layer1..layer4 blocks) under 'model.'; pass --backbone NAME")
        backbone = f"iresnet{depth}"
    return Imported(state=state, backbone=backbone, options={"pooling": "gwp", "stem7x7": False},
                    classifier=classifier, notes=notes)
