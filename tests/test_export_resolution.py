"""`facebone export --resolution R`: one ONNX graph per path of a routing backbone (btnet)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facebone.model.build import build_backbone
from facebone.cli import main
from facebone.weights.keys import save_backbone

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch.set_num_threads(1)


def test_one_graph_per_resolution(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_backbone("btnet18", {"width": 8}, embedding_size=32).train()
    for side in (112, 28, 14, 7):  # realistic BN statistics on every path
        model(torch.rand(8, 3, side, side) * 2 - 1)
    model.eval()
    ckpt = save_backbone(tmp_path / "b.safetensors", model.state_dict(), backbone="btnet18",
                         options={"width": 8}, embedding_size=32, image_size=112)
    for side in (14, 7):
        out = tmp_path / f"b{side}.onnx"
        assert main(["export", str(ckpt), "--onnx", str(out), "--resolution", str(side)]) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["max_rel_diff"] < 1e-4, report
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert sess.get_inputs()[0].shape[2:] == [side, side]
        x = torch.rand(3, 3, side, side) * 2 - 1
        with torch.no_grad():
            ref = model(x, branch=side).numpy()
        np.testing.assert_allclose(sess.run(None, {"images": x.numpy()})[0], ref, rtol=1e-4, atol=1e-4)
    assert main(["export", str(ckpt), "--onnx", str(tmp_path / "x.onnx"), "--resolution", "21"]) == 2
    assert "no path for 21x21 inputs; it serves 112, 28, 14, 7" in capsys.readouterr().err
