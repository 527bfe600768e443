"""One btnet checkpoint, one `facebone eval`: every face goes through the path its size routes to,
with no user code (the embedder keeps native sizes for a backbone with ``input_sizes``)."""
from __future__ import annotations

import io
import json

import numpy as np
import torch
import torch.nn.functional as F

from facebone.cli import main
from facebone.data.verification_bin import write_bin
from facebone.model.build import build_backbone
from facebone.weights.keys import save_backbone

torch.set_num_threads(1)

EXPERIMENT = """
[data]
train = "{root}"
image_size = 112

[backbone]
type = "btnet18"
width = 8
embedding_size = 16

[embed]
batch_size = 16

[[eval]]
type = "verification_multires"
name = "native14"
targets = ["pairs"]
reso1 = 14
reso2 = 14

[[eval]]
type = "verification_multires"
name = "mixed"
targets = ["pairs"]
reso1 = 112
reso2 = 7
"""


def pair_images(n: int = 20) -> tuple[np.ndarray, list[bool]]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 112, 112, 3)).astype(np.float32)
    images, same = [], []
    for i in range(n):
        a = i % 6
        b = a if i % 2 == 0 else (a + 1) % 6
        images += [np.clip(base[k] + rng.normal(0, 30, base[k].shape), 0, 255).astype(np.uint8) for k in (a, b)]
        same.append(i % 2 == 0)
    return np.stack(images), same


def embed(model, faces: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        return (model(x) + model(torch.flip(x, dims=[3]))).double().numpy()


def degrade(images: np.ndarray, size: int) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_facebone_eval_routes_each_side_by_its_size(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    images, same = pair_images()
    encoded = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        encoded.append(buf.getvalue())
    write_bin(tmp_path / "pairs.bin", encoded, same)
    torch.manual_seed(0)
    model = build_backbone("btnet18", {"width": 8}, embedding_size=16).train()
    with torch.no_grad():
        for side in (112, 28, 14, 7):
            model(torch.rand(8, 3, side, side) * 2 - 1)
    model.eval()
    ckpt = save_backbone(tmp_path / "btnet18.safetensors", model.state_dict(), backbone="btnet18",
                         options={"width": 8}, embedding_size=16, image_size=112)
    exp = tmp_path / "exp.toml"
    exp.write_text(EXPERIMENT.format(root=tmp_path) + f'\n[experiment]\noutput_dir = "{tmp_path / "runs"}"\n')
    assert main(["eval", str(exp), "--checkpoint", str(ckpt)]) == 0, capsys.readouterr().err
    run = next((tmp_path / "runs").iterdir())
    for name, tag, sides in (("native14", "pairs_14_14", (14, 14)), ("mixed", "pairs_112_7", (112, 7))):
        scores = np.load(run / "eval" / name / f"{tag}_scores.npy")
        e1 = embed(model, degrade(images[0::2], sides[0]))
        e2 = embed(model, degrade(images[1::2], sides[1]))
        want = (e1 * e2).sum(1) / np.linalg.norm(e1, axis=1) / np.linalg.norm(e2, axis=1)
        np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-5)
        # ... and the routed paths differ from the trunk on the same faces
        trunk = embed(lambda x: model(x, branch=112), degrade(images[1::2], sides[1]))  # type: ignore[arg-type]
        assert not np.allclose(trunk, e2, atol=1e-3)
    metrics = json.loads((run / "results.json").read_text())["metrics"]
    assert "pairs/14&14/accuracy" in metrics and "pairs/112&7/accuracy" in metrics
