"""facebone.model.complexity: parameter and FLOP counts."""
from __future__ import annotations

import torch
from torch import nn

from facebone.model.build import build_backbone
from facebone.model.complexity import count, describe_lines

torch.set_num_threads(1)


def test_counts_a_small_model_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.PReLU(8),
                          nn.Flatten(), nn.Linear(8 * 16 * 20, 10)).train()
    c = count(model, (16, 20))
    macs = 8 * 3 * 9 * 16 * 20 + 8 * 16 * 20 * 10
    assert c["macs"] == macs
    assert c["flops"] == 2 * macs
    assert c["params"] == 8 * 27 + 16 + 8 + 8 * 16 * 20 * 10 + 10
    assert model.training  # mode restored


def test_published_figures() -> None:
    r50 = count(build_backbone("iresnet50"))
    assert abs(r50["macs"] / 1e9 - 6.3) < 0.05  # InsightFace: r50 6.3 "GFLOPs" (= GMACs)
    assert round(r50["params"] / 1e6, 2) == 43.59
    mbf = count(build_backbone("mobilefacenet"))
    assert abs(mbf["macs"] / 1e9 - 0.45) < 0.02  # InsightFace: mbf 0.45 GFLOPs (MACs)
    lines = describe_lines(r50, 112)
    assert "43.59M" in lines[0] and "6.309 GMACs = 12.619 GFLOPs" in lines[1]


def test_input_size_defaults_to_model_attribute() -> None:
    m = build_backbone("iresnet18", {"width": 8}, image_size=128)
    assert count(m) == count(m, 128)
    assert count(m)["macs"] > count(build_backbone("iresnet18", {"width": 8}))["macs"]
