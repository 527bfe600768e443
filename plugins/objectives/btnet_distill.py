"""Implementation of the ``btnet_distill`` objective (imported lazily by its hook module)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facebone.errors import ConfigError
from facebone.train.objective import classification_terms, tap_outputs, unwrap


class BTNetDistill(nn.Module):
    """``forward(batch, *, model, classifier, head, teacher) -> {"28/ce": .., "28/feature": .., ...}``.

    The teacher (the stage-1 trunk, frozen, in eval mode) runs once on the full-size batch, its
    block-0 outputs of the implant stages tapped; each branch ``r`` then runs on the batch resized
    to ``r`` x ``r`` (``model(x_r, branch=r)``), its implant map tapped. Per branch: the
    classification terms (CE and any head terms) times ``ce_weight``, and ``kd_weight`` x
    ``feature_weight`` x MSE(maps) and ``kd_weight`` x ``embedding_weight`` x MSE(raw embeddings).
    """

    def __init__(self, options: Any):
        super().__init__()
        self.options = options

    def _resize(self, images: torch.Tensor, r: int) -> torch.Tensor:
        o = self.options
        kwargs: dict[str, Any] = {} if o.resize_filter in ("nearest", "area") else {
            "align_corners": False, "antialias": o.antialias}
        return F.interpolate(images, size=(r, r), mode=o.resize_filter, **kwargs)

    def forward(self, batch: Any, *, model: nn.Module, classifier: Any, head: nn.Module,
                teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        if teacher is None:
            raise ConfigError("btnet_distill needs a teacher (the stage-1 trunk: [objective] teacher)")
        o = self.options
        student = unwrap(model).backbone
        sizes = list(o.branches) or list(student.branch_sizes)
        stages = {r: student.branches[str(r)].stage for r in sizes}
        targets_of = {r: f"backbone.layer{s}.0" for r, s in stages.items()}
        with torch.no_grad(), tap_outputs(teacher, sorted(set(targets_of.values()))) as targets:
            target_emb = teacher(batch.images).float()
        terms: dict[str, torch.Tensor] = {}
        for r in sizes:
            implant = f"backbone.branches.{r}.layer{stages[r]}.0"
            with tap_outputs(model, [implant]) as got:
                emb = model(self._resize(batch.images, r), branch=r).float()
            for key, value in classification_terms(emb, batch.labels, classifier=classifier, head=head).items():
                terms[f"{r}/{key}"] = o.ce_weight * value if key == "ce" else value
            target = targets[targets_of[r]].float()
            terms[f"{r}/feature"] = o.kd_weight * o.feature_weight * F.mse_loss(got[implant].float(), target)
            terms[f"{r}/embedding"] = o.kd_weight * o.embedding_weight * F.mse_loss(emb, target_emb)
        return terms
