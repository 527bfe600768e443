"""Any timm model as a backbone: ``[backbone] type = "timm"``, ``model = "convnext_atto"``.

The timm model is built without a classifier (``num_classes=0``) at the experiment's image
size (``img_size`` for transformers; convolutional nets take any size), and facebone adds the
embedding head face recognition uses: Linear to D, then BatchNorm1d (as arcface_torch's ViT
feature head). timm is an optional extra: ``pip install 'facebone[timm]'``. Pretrained weights
are never downloaded; names come from ``timm.list_models()``.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.util
from typing import Any

import facebone
from facebone import option
from facebone.errors import MissingDependencyError

NAMES_HINT = "names: python -c \"import timm; print(timm.list_models('*vit*'))\""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimmOptions:
    model: str = option("vit_tiny_patch16_224", f"timm model name ({NAMES_HINT})")
    drop_path_rate: float = option(0.0, "stochastic depth rate passed to timm (0 = off)")

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")


def _timm(component: str = "backbone 'timm'") -> Any:
    if importlib.util.find_spec("timm") is None:
        raise MissingDependencyError(component, "timm", "timm")
    import timm

    return timm


def check_timm(options: TimmOptions, experiment: dict) -> list[str]:
    """Validation time: timm installed and the model name known to it."""
    try:
        timm = _timm()
    except MissingDependencyError as exc:
        return [str(exc)]
    names = timm.list_models()
    if options.model not in names:
        close = difflib.get_close_matches(options.model, names, n=3)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        return [f"key 'model': timm has no model {options.model!r}{hint}; {NAMES_HINT}"]
    return []


def _create(timm: Any, options: TimmOptions, image_size: int) -> Any:
    kwargs = {"pretrained": False, "num_classes": 0, "drop_path_rate": options.drop_path_rate}
    try:
        return timm.create_model(options.model, img_size=image_size, **kwargs)
    except TypeError:  # convolutional nets take no img_size: they accept any input size
        return timm.create_model(options.model, **kwargs)


def build_timm(options: TimmOptions, *, embedding_size: int, image_size: int, **runtime: Any) -> Any:
    from torch import nn

    timm = _timm()

    class TimmBackbone(nn.Module):
        """timm trunk (pooled features) -> Linear(num_features, D) -> BatchNorm1d(D)."""

        def __init__(self) -> None:
            super().__init__()
            self.trunk = _create(timm, options, image_size)
            self.fc = nn.Linear(self.trunk.num_features, embedding_size, bias=False)
            self.features = nn.BatchNorm1d(embedding_size)
            self.embedding_size, self.input_size = embedding_size, (image_size, image_size)

        def forward(self, x: Any) -> Any:
            return self.features(self.fc(self.trunk(x)))

    return TimmBackbone()


@facebone.hookimpl
def facebone_backbones(registry: Any) -> None:
    registry.add("timm", build_timm, options=TimmOptions, check=check_timm,
                 summary="any timm model (set model = NAME from timm.list_models(); "
                         "needs pip install 'facebone[timm]')")
