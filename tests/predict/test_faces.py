"""Where the face is: landmark alignment as the IJB evaluator's, boxes through RoI warps as the warp
module applied by hand, margin crops, and bad face input reported per image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facebone.data.align import ARCFACE_TEMPLATE
from facebone.errors import DataError
from facebone.predict import faces


def _photo(h: int = 96, w: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 7.0 + c) * np.cos(yy / 5.0 - c) for c in range(3)], -1)
    return np.clip(127 + 100 * base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _landmarks(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (ARCFACE_TEMPLATE * 0.6 + [12.0, 14.0] + rng.normal(0, 0.8, (5, 2))).astype(np.float32)


def test_landmark_alignment_equals_the_ijb_evaluators(tmp_path: Path, make_predictor) -> None:  # type: ignore[no-untyped-def]
    """The crops the predictor embeds are byte for byte those the IJB evaluator embeds for the same
    image files and landmarks (its own extract_features, recorded through a fake embedder)."""
    from PIL import Image

    from facebone.plugins.evaluators.ijb_eval import extract_features
    from facebone.plugins.evaluators.ijb_meta import ImageList

    (tmp_path / "loose_crop").mkdir()
    names, lms = [], []
    for i in range(3):
        Image.fromarray(_photo(seed=i)).save(tmp_path / "loose_crop" / f"{i}.jpg", quality=95)
        names.append(f"{i}.jpg")
        lms.append(_landmarks(i))
    images = ImageList(names=names, templates=np.arange(3), medias=np.arange(3), landmarks=np.stack(lms),
                       face_scores=np.ones(3, np.float32), landmark_file=tmp_path / "lm.txt", lines=np.arange(1, 4))
    seen = []

    class Recorder:
        embedding_size, image_size, flip = 4, 32, False

        def views(self, batch):  # type: ignore[no-untyped-def]
            seen.append(np.array(batch))
            return np.zeros((1, len(batch), 4), np.float32)

    extract_features(Recorder(), tmp_path, images, batch_size=8, workers=1, image_size=32, flip=False, desc="x")
    ijb_crops = np.concatenate(seen)

    predictor, _ = make_predictor()
    paths = [tmp_path / "loose_crop" / n for n in names]
    prepared = predictor._prepare(paths, list(images.landmarks), "landmarks", [str(p) for p in paths], range(3))
    ours = np.stack([p[2] for p in prepared])
    assert ours.shape == ijb_crops.shape == (3, 32, 32, 3)
    assert np.array_equal(ours, ijb_crops)
    # and the embedding is the network's on exactly those crops
    emb = predictor.embed(paths, landmarks=images.landmarks, normalize=False)
    assert np.allclose(emb, predictor.network.embed_crops(ijb_crops).sum(0), atol=1e-6)


@pytest.mark.parametrize("warp", ["roi_tanh_polar", "roi_tanh"])
def test_box_through_a_roi_warp_equals_the_warp_module_by_hand(warp: str, make_predictor) -> None:  # type: ignore[no-untyped-def]
    from facebone.data.decode import to_network_range

    predictor, model = make_predictor(warp)
    image = _photo(90, 120)
    box = np.array([30.0, 12.5, 88.0, 80.0, 0.2])
    got = predictor.embed(image, boxes=box, normalize=False)
    x = to_network_range(torch.from_numpy(image).permute(2, 0, 1))[None]
    rois = torch.tensor(box[None], dtype=torch.float32)
    mirrored = torch.tensor([[120 - 88.0, 12.5, 120 - 30.0, 80.0, -0.2]])
    with torch.no_grad():
        by_hand = model.backbone(model.warp(x, rois)) + model.backbone(model.warp(torch.flip(x, dims=[3]), mirrored))
    assert np.allclose(got, by_hand.numpy(), rtol=1e-4, atol=1e-5)


def test_mirrored_rois_give_the_mirrored_warp(make_predictor) -> None:  # type: ignore[no-untyped-def]
    """The flip view's RoI is right: the Tanh warp of the mirrored image with the mirrored RoI is the
    mirror of the warp of the image."""
    from facebone.data.decode import to_network_range

    _, model = make_predictor("roi_tanh")
    image = _photo(64, 72)
    x = to_network_range(torch.from_numpy(image).permute(2, 0, 1))[None]
    roi = np.array([[10.0, 8.0, 50.0, 60.0, 0.3]])
    with torch.no_grad():
        a = model.warp(x, torch.tensor(roi, dtype=torch.float32))
        b = model.warp(torch.flip(x, dims=[3]), torch.tensor(faces.mirror_rois(roi, 72), dtype=torch.float32))
    assert torch.allclose(torch.flip(a, dims=[3]), b, atol=1e-4)


def test_box_gives_a_margin_crop_for_the_cartesian_warp(make_predictor) -> None:  # type: ignore[no-untyped-def]
    """Box (20, 20, 60, 60) with margin 0.2: the 48 px square [16, 64) around its centre; at crop size 48
    that is the pixels themselves."""
    predictor, _ = make_predictor("cartesian", size=48)
    image = _photo(80, 90)
    prepared = predictor._prepare([image], [np.array([20.0, 20.0, 60.0, 60.0])], "box", ["img"], range(1))
    assert np.array_equal(prepared[0][2], image[16:64, 16:64])
    m = faces.margin_crop_matrix(np.array([20.0, 20.0, 60.0, 60.0, 0.0]), 48)
    assert np.allclose(m, [[1, 0, -16], [0, 1, -16]])


def test_roi_crop_puts_the_box_on_the_fixed_roi() -> None:
    box = np.array([40.0, 30.0, 100.0, 110.0, 0.4])
    fixed = faces.fixed_roi(112, 0.8)
    m = faces.roi_crop_matrix(box, 112, fixed)
    corners = faces._box_corners(box) - 0.5  # OpenCV coordinates
    mapped = corners @ m[:, :2].T + m[:, 2] + 0.5
    want = np.array([[fixed[0], fixed[1]], [fixed[2], fixed[1]], [fixed[2], fixed[3]], [fixed[0], fixed[3]]])
    assert np.allclose(mapped, want, atol=1e-9)


def test_bad_faces_are_reported_and_the_others_embedded(make_predictor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    predictor, _ = make_predictor("cartesian")
    good = _photo()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    lms = [_landmarks(0), np.zeros((4, 2)), _landmarks(1), _landmarks(2)]
    report = predictor.embed_report([good, good, broken, good], landmarks=lms)
    assert report.ok.tolist() == [True, False, False, True]
    assert "landmarks: expected 5 (x, y) points" in report.errors[1] and "(4, 2)" in report.errors[1]
    assert str(broken) in report.errors[2] and "cannot decode" in report.errors[2]
    assert np.isfinite(report.embeddings[[0, 3]]).all() and np.isnan(report.embeddings[[1, 2]]).all()
    predictor.workers = 3  # images read by several threads: same rows, same messages
    again = predictor.embed_report([good, good, broken, good], landmarks=lms, batch_size=2)
    assert again.errors == report.errors and np.allclose(again.embeddings[[0, 3]], report.embeddings[[0, 3]], atol=1e-6)
    predictor.workers = 1
    boxes = [[10, 10, 50, 60], [200, 200, 260, 260], [30, 30, 20, 50]]
    report = predictor.embed_report([good] * 3, boxes=boxes)
    assert report.ok.tolist() == [True, False, False]
    assert "outside the 80x96 image" in report.errors[1]
    assert "empty" in report.errors[2]
    with pytest.raises(DataError, match=r"2 of 3 images not embedded: #1: box \(200, 200, 260, 260\): outside"):
        predictor.embed([good] * 3, boxes=boxes)


def test_routing_backbones_get_crops_at_a_size_they_serve() -> None:
    assert faces.served_size(20.0, (112, 56, 28)) == 28
    assert faces.served_size(40.0, (112, 56, 28)) == 56
    assert faces.served_size(300.0, (112, 56, 28)) == 112
    lm = _landmarks(0)  # template x 0.6: a 67 px face
    assert faces.landmark_native_size(lm) == pytest.approx(112 * 0.6, rel=0.05)


def test_fixed_roi_styles_match_the_warps() -> None:
    from facebone.plugins.warps import mapping

    for size, ratio in ((112, 0.8), (32, 0.7), (96, 0.85)):
        exact = mapping.fixed_rois(1, (size, size), ratio)[0, :4].tolist()
        assert np.allclose(faces.fixed_roi(size, ratio), exact, atol=1e-5)
        assert faces.fixed_roi(size, ratio, "ibug") == mapping.ibug_fixed_box((size, size), ratio)
    assert faces.fixed_roi(112, 0.8, "ibug") == (11.5, 11.5, 100.5, 100.5)


def test_onnx_box_path_is_the_crop_whose_fixed_roi_is_the_box(make_predictor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An ONNX graph has the warp's fixed RoI baked in: a box becomes the crop whose fixed RoI it is.
    On an image that is black outside that crop (so the full-image warp sees nothing the crop
    lacks) the embedding is nearly the one PyTorch gets from the box itself (two resamplings
    instead of one)."""
    pytest.importorskip("onnxruntime")
    from facebone.predict.networks import OnnxNetwork
    from facebone.predict.predictor import Predictor
    from facebone.weights.onnx import export_onnx

    size = 48
    torch_predictor, model = make_predictor("roi_tanh", size=size)
    export_onnx(model, tmp_path / "m.onnx", size)
    net = OnnxNetwork(tmp_path / "m.onnx", image_size=size, embedding_size=16, flip=True, source="tiny")
    onnx_predictor = Predictor(net, torch_predictor.facts)
    boxes = np.array([[30.0, 20.0, 100.0, 95.0, 0.0], [40.0, 30.0, 90.0, 100.0, 0.15]])
    images = []
    for box in boxes:
        image = _photo(130, 140)
        m = faces.roi_crop_matrix(box, size, faces.fixed_roi(size, 0.8))
        yy, xx = np.mgrid[0:130, 0:140]
        u = m[0, 0] * xx + m[0, 1] * yy + m[0, 2]
        v = m[1, 0] * xx + m[1, 1] * yy + m[1, 2]
        image[~((u > 0.5) & (u < size - 1.5) & (v > 0.5) & (v < size - 1.5))] = 0
        images.append(image)
    a = torch_predictor.embed(images, boxes=boxes)
    b = onnx_predictor.embed(images, boxes=boxes)
    assert (a * b).sum(1).min() > 0.99
    # and the crop path itself: with the same crops both backends agree
    crops = np.stack([_photo(size, size, seed=s) for s in range(3)])
    assert np.allclose(net.embed_crops(crops), torch_predictor.network.embed_crops(crops), atol=1e-4)


def test_inputs_paths_pil_arrays_one_or_many(make_predictor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    predictor, _ = make_predictor()
    image = _photo(40, 44)
    Image.fromarray(image).save(tmp_path / "a.png")
    one = predictor.embed(image)
    assert one.shape == (1, 16) and one.dtype == np.float32
    many = predictor.embed([tmp_path / "a.png", Image.fromarray(image), image, str(tmp_path / "a.png")])
    assert np.allclose(many, one, atol=1e-6)
    assert np.allclose(predictor.embed(np.stack([image, image])), one, atol=1e-6)  # (N, H, W, 3)
    grey = predictor.embed(image[:, :, 0])  # (H, W) grey is repeated to RGB
    assert np.allclose(grey, predictor.embed(np.repeat(image[:, :, :1], 3, axis=2)), atol=1e-6)
    with pytest.raises(DataError, match="expected uint8 RGB pixels, got dtype float32"):
        predictor.embed(image.astype(np.float32))


def test_a_routing_backbone_gets_native_sizes(make_predictor) -> None:  # type: ignore[no-untyped-def]
    """A backbone declaring ``input_sizes`` (routing by size, e.g. BTNet) is never handed resized
    crops: aligned-crop inputs go in as they are, grouped by size, and landmark / box crops are
    made at the served size that holds the face at its native resolution."""
    from facebone.model.face_model import FaceModel
    from facebone.predict.networks import TorchNetwork
    from facebone.predict.predictor import Predictor

    seen = []

    class Routing(torch.nn.Module):
        embedding_size, input_size, input_sizes = 4, (32, 32), ((32, 32), (16, 16))

        def forward(self, x):  # type: ignore[no-untyped-def]
            if x.shape[-1] != 999:  # data-dependent, as routing is
                seen.append(tuple(x.shape[-2:]))
            return x.float().mean((2, 3)).repeat(1, 2)[:, :4]

    base, model = make_predictor()
    net = TorchNetwork(FaceModel(model.warp, Routing()), image_size=32, flip=False, roi_warp=False)
    assert net.input_sizes == (32, 16)
    import dataclasses

    predictor = Predictor(net, dataclasses.replace(base.facts, embedding_size=4))
    predictor.embed([_photo(16, 16), _photo(32, 32), _photo(16, 16, seed=2)])
    assert sorted(seen) == [(16, 16), (32, 32)]  # two batches, one per native size
    seen.clear()
    small = _landmarks(0) * 0.25  # a ~17 px face: the 32 px path would upsample it
    predictor.embed([_photo(60, 60)], landmarks=[small])
    assert seen == [(32, 32)]
    seen.clear()
    predictor.embed([_photo(60, 60)], landmarks=[small * 0.5])  # ~8 px: the 16 px path holds it
    assert seen == [(16, 16)]
