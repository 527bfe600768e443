"""The built-in objectives' modules (imported by their factories, so discovery does not import torch)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facebone.train.objective import classification_terms, tap_outputs


def embed(model: nn.Module, batch: Any) -> torch.Tensor:
    """The model's embeddings of ``batch`` (with its RoIs when it has them)."""
    return model(batch.images) if batch.rois is None else model(batch.images, batch.rois)


class Classification(nn.Module):
    """``{"ce": ..., **head.loss_terms(norms)}``: model -> classifier -> head -> cross-entropy."""

    def forward(self, batch: Any, *, model: nn.Module, classifier: Any, head: nn.Module,
                teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        return classification_terms(embed(model, batch), batch.labels, classifier=classifier, head=head)


class Distill(nn.Module):
    """``ce_weight * CE (+ head terms)``, ``embedding_weight * MSE(e_s, e_t)`` and, per matched
    feature pair, ``feature_weight * MSE(f_s, f_t)``; MSE is the mean over elements of this
    rank's share. Terms with weight 0 are left out."""

    def __init__(self, *, ce_weight: float = 1.0, embedding_weight: float = 1.0, normalize: bool = False,
                 features: list[tuple[str, str]] = (), feature_weight: float = 1.0):  # type: ignore[assignment]
        super().__init__()
        self.ce_weight, self.embedding_weight, self.feature_weight = ce_weight, embedding_weight, feature_weight
        self.normalize, self.features = normalize, list(features)

    def forward(self, batch: Any, *, model: nn.Module, classifier: Any, head: nn.Module,
                teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        if teacher is None:
            raise RuntimeError("the distill objective needs a teacher (the core loads [objective] teacher)")
        student_names = [s for s, _ in self.features]
        teacher_names = [t for _, t in self.features]
        with tap_outputs(model, student_names) as mine:
            student = embed(model, batch)
        with tap_outputs(teacher, teacher_names) as theirs:
            target = embed(teacher, batch).detach()
        terms: dict[str, torch.Tensor] = {}
        if self.ce_weight > 0:
            for name, value in classification_terms(student, batch.labels, classifier=classifier, head=head).items():
                terms[name] = value * self.ce_weight if name == "ce" else value
        if self.embedding_weight > 0:
            a, b = student.float(), target.float()
            if self.normalize:
                a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
            terms["embedding_mse"] = self.embedding_weight * F.mse_loss(a, b)
        if self.feature_weight > 0:
            for s, t in self.features:
                if mine[s].shape != theirs[t].shape:
                    raise ValueError(f"distill features: student {s} {tuple(mine[s].shape)} and teacher {t} "
                                     f"{tuple(theirs[t].shape)} differ in shape")
                mse = F.mse_loss(mine[s].float(), theirs[t].detach().float())
                terms[f"feature_mse/{s}"] = self.feature_weight * mse
        return terms
