"""Acceptance: an ibug face_embedding checkpoint through `facebone import-weights ibug` and `facebone eval`.

The checkpoint is written with the original's key names and the seeded weights of
``plugins/fixtures/ibug_seeded.py``; ``plugins/fixtures/ibug/predictor.npz`` holds the
embeddings the ORIGINAL ``FaceEmbeddingPredictor`` gives with those weights (flip test,
normalised, fixed RoI (11, 11, 100, 100)) for seeded images. Through facebone: import the
.pth, evaluate a verification set of those images with the imported weights, and compare the
pair scores (cosines) and the embeddings with the original's.
"""
from __future__ import annotations

import importlib.util
import io
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from facebone.cli import main

FIXTURES = Path(__file__).parents[1] / "plugins" / "fixtures"
MANIFEST = json.loads((FIXTURES / "ibug" / "manifest.json").read_text())
EMBEDDINGS = dict(np.load(FIXTURES / "ibug" / "predictor.npz"))
PAIRS = [(0, 1), (2, 3), (0, 2), (1, 3)]
TOL = 2e-5  # of the output scale

torch.set_num_threads(1)


def _seeded():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ibug_seeded", FIXTURES / "ibug_seeded.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


S = _seeded()


def original_state(backbone: str) -> dict[str, torch.Tensor]:
    """The seeded state dict with the ORIGINAL's key names (rtnet50's listed in the manifest;
    the iResNets' are facebone's, checked against the manifest's digest in the backbone tests)."""
    seed = MANIFEST["backbones"][backbone]["weights_seed"]
    if backbone == "rtnet50":
        shapes = {}
        for entry in MANIFEST["backbones"]["rtnet50"]["key_shapes"]:
            name, _, dims = entry.partition(":")
            shapes[name] = tuple(int(d) for d in dims.split(",")) if dims else ()
    else:
        from facebone.model.build import build_backbone

        shapes = {k: tuple(v.shape) for k, v in build_backbone(backbone).state_dict().items()}
    return S.seeded_state(shapes, seed)


def write_pairs(path: Path, images: np.ndarray) -> None:
    from facebone.data.verification_bin import write_bin

    encoded = []
    for a, b in PAIRS:
        for i in (a, b):
            buf = io.BytesIO()
            Image.fromarray(images[i]).save(buf, format="PNG")
            encoded.append(buf.getvalue())
    write_bin(path, encoded, [True, False, True, False])


def experiment(tmp_path: Path, backbone: str, warp: str, bin_path: Path) -> Path:
    keep = "keep_aspect_ratio = true" if warp != "roi_tanh" else ""
    path = tmp_path / f"{backbone}.toml"
    path.write_text(textwrap.dedent(f"""
        [experiment]
        name = "ibug_{backbone}"
        output_dir = "{tmp_path / 'runs'}"
        [data]
        train = "{tmp_path}"
        image_size = 112
        [backbone]
        type = "{backbone}"
        [warp]
        type = "{warp}"
        fixed_roi = "ibug"
        {keep}
        [embed]
        batch_size = 8
        flip = true
        [[eval]]
        type = "verification"
        targets = ["{bin_path}"]
        n_folds = 2
        plots = false
    """))
    return path


@pytest.mark.parametrize("case", sorted(EMBEDDINGS))
def test_ibug_checkpoint_imports_and_gives_the_originals_embeddings(tmp_path, capsys, case: str) -> None:  # type: ignore[no-untyped-def]
    backbone, warp = case.split("/")
    state = original_state(backbone)
    pth = tmp_path / f"arcface_{warp}_{backbone}.pth"
    torch.save(state, pth)
    out = tmp_path / f"{backbone}.safetensors"
    assert main(["import-weights", "ibug", str(pth), str(out), "--backbone", backbone]) == 0
    assert f"{len(state)} tensors" in capsys.readouterr().out
    imported = load_file(str(out))
    assert len(imported) == len(state)
    if backbone == "rtnet50":
        assert imported["stem.0.weight"].equal(state["conv1.weight"])
        assert imported["stages.3.2.hybrid.bn.running_var"].equal(state["layer4.2.conv_cart.1.running_var"])

    images = S.seeded_images(MANIFEST["predictor"]["n"], 112, MANIFEST["predictor"]["images_seed"]).numpy()
    bin_path = tmp_path / "pairs.bin"
    write_pairs(bin_path, images)
    exp = experiment(tmp_path, backbone, warp, bin_path)
    assert main(["eval", str(exp), "--checkpoint", str(out)]) == 0
    run_dir = Path(re.search(r"results: (.+)/results.json", capsys.readouterr().out).group(1))
    scores = np.load(run_dir / "eval" / "verification" / "pairs_scores.npy")
    want = EMBEDDINGS[case]
    want_scores = np.array([want[a] @ want[b] for a, b in PAIRS])
    assert np.abs(scores - want_scores).max() <= TOL, (scores, want_scores)

    # the embeddings themselves, from the model `facebone eval` builds
    from facebone.commands.eval_cmd import model_from_checkpoint
    from facebone.experiment.config import load_experiment
    from facebone.eval.embedder import Embedder

    model = model_from_checkpoint(load_experiment(exp, check_paths=False), out)
    got = Embedder(model, image_size=112, batch_size=4, flip=True)(images)
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    assert np.abs(got - want).max() <= TOL * np.abs(want).max()

    # and through the predictor API, built from the eval run's resolved config and the imported weights
    import facebone

    predictor = facebone.load(run_dir, checkpoint=out, precision="fp32", channels_last=False)
    got = predictor.embed(list(images))
    assert got.shape == want.shape and np.abs(got - want).max() <= TOL * np.abs(want).max()


def test_a_checkpoint_of_another_layout_is_reported(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    state = original_state("rtnet50")
    state["layer9.0.conv1_a.weight"] = state.pop("layer1.0.conv1_a.weight")
    torch.save(state, tmp_path / "bad.pth")
    rc = main(["import-weights", "ibug", str(tmp_path / "bad.pth"), str(tmp_path / "o.safetensors"),
               "--backbone", "rtnet50"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "missing from checkpoint: stages.0.0.reduce_a.0.weight" in err and "layer9.0.conv1_a.weight" in err
    assert not (tmp_path / "o.safetensors").exists()
    rc = main(["import-weights", "ibug", str(tmp_path / "bad.pth"), str(tmp_path / "o.safetensors"),
               "--backbone", "mobilefacenet"])
    assert rc == 2 and "ibug face_embedding checkpoints are for rtnet50" in capsys.readouterr().err
