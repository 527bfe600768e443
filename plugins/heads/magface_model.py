"""MagFace (Meng et al., CVPR 2021): the margin grows with the feature magnitude.

With a = clamp(||x||, l_a, u_a) (gradient flows through a inside the range) and
m(a) = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m:
    target logit = s * cos(theta_y + m(a))  where cos(theta_y) > 0 (easy margin, the reference
                   default), s * cos(theta_y) elsewhere; without easy margin ArcFace's fallback
                   s * (cos(theta_y) - m(a)*sin m(a)) where theta_y + m(a) > pi
    other logits = s * cos(theta_j)
The regulariser lambda_g * mean(g(a)), g(a) = a / u_a^2 + 1 / a, is the loss term ``magface_g``
returned by :meth:`MagFace.loss_terms` and added to cross-entropy by the objective. Its mean is
over the rows it is given: under DDP those are the global batch, where the reference averages
each GPU's batch. No state.
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.heads.functional import arc_target, as_float, put_targets, targets


class MagFace(nn.Module):
    def __init__(self, scale: float = 64.0, l_a: float = 10.0, u_a: float = 110.0, l_m: float = 0.45,
                 u_m: float = 0.8, lambda_g: float = 35.0, *, easy_margin: bool = True):
        super().__init__()
        self.scale, self.l_a, self.u_a = float(scale), float(l_a), float(u_a)
        self.l_m, self.u_m, self.lambda_g = float(l_m), float(u_m), float(lambda_g)
        self.easy_margin = easy_margin

    def magnitude(self, norms: torch.Tensor) -> torch.Tensor:
        """a = clamp(||x||, l_a, u_a), ``(N,)``."""
        return norms.reshape(-1).clamp(self.l_a, self.u_a)

    def adaptive_margin(self, a: torch.Tensor) -> torch.Tensor:
        """m(a), linear from l_m at l_a to u_m at u_a."""
        return (self.u_m - self.l_m) / (self.u_a - self.l_a) * (a - self.l_a) + self.l_m

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        if norms is None:
            raise ValueError("magface needs the embedding norms (N, 1)")
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        margin = self.adaptive_margin(self.magnitude(norms.to(cosine.dtype)))
        target, index, valid = targets(cosine, labels)
        new = arc_target(target, margin, easy_margin=self.easy_margin, fallback=True)
        return put_targets(cosine, index, valid, new) * self.scale

    def loss_terms(self, norms: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"magface_g": lambda_g * mean(a / u_a^2 + 1 / a)}``, with gradient into the norms."""
        a = self.magnitude(norms.float() if norms.dtype in (torch.float16, torch.bfloat16) else norms)
        g = a / (self.u_a ** 2) + 1.0 / a
        return {"magface_g": self.lambda_g * g.mean()}

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, l_a={self.l_a}, u_a={self.u_a}, l_m={self.l_m}, u_m={self.u_m}, "
                f"lambda_g={self.lambda_g}, easy_margin={self.easy_margin}")
