"""ONNX export (skipped without onnx/onnxruntime): every registered backbone, checked by onnxruntime."""
from __future__ import annotations

import json

import pytest
import torch
from torch.optim.swa_utils import update_bn

from facebone.model.build import build_backbone
from facebone.cli import main
from facebone.plugin.discovery import load_plugins
from facebone.weights.keys import save_backbone

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from facebone.weights.onnx import export_onnx  # noqa: E402

torch.set_num_threads(1)
SLOW = {"iresnet34", "iresnet50", "iresnet100", "iresnet200", "mobilefacenet_large",
        "btnet34", "btnet50", "btnet100", "btnet200"}


def trained_like(model: torch.nn.Module) -> torch.nn.Module:
    update_bn([torch.rand(4, 3, *model.input_size) * 2 - 1], model)
    return model.eval()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in load_plugins().registry("backbone").names()])
def test_every_backbone_exports_and_matches(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from facebone.errors import MissingDependencyError

    torch.manual_seed(0)
    try:
        model = trained_like(build_backbone(name))
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    r = export_onnx(model, tmp_path / f"{name}.onnx", 112)
    assert r["max_rel_diff"] < 1e-4 and r["min_cosine"] > 0.9999, r


def test_gwp_and_other_size_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = trained_like(build_backbone("iresnet18", {"pooling": "gwp", "width": 8}, image_size=128))
    r = export_onnx(model, tmp_path / "g.onnx", 128, check_batch=3)
    assert r["max_rel_diff"] < 1e-4 and r["min_cosine"] > 0.9999


def test_export_command(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = trained_like(build_backbone("iresnet18", {"width": 8, "pooling": "gap"}, embedding_size=64))
    save_backbone(tmp_path / "m.safetensors", model.state_dict(), backbone="iresnet18",
                  options={"width": 8, "pooling": "gap"}, embedding_size=64, image_size=112)
    assert main(["export", str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["max_rel_diff"] < 1e-4 and (tmp_path / "m.onnx").stat().st_size > 10_000
    assert main(["export", str(tmp_path / "m.safetensors"), "--backbone", "mobilefacenet",
                 "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "does not fit backbone" in capsys.readouterr().err
