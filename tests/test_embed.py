"""The embedder: batching, flip test, resizing, precision, channels-last and compiled paths agree."""
import numpy as np
import pytest
import torch

from facebone.model.build import build_backbone
from facebone.eval.embedder import Embedder, images_to_tensor
from facebone.errors import DataError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_backbone("iresnet18", {"width": 8, "pooling": "gap"}, embedding_size=32, image_size=32)
    torch.optim.swa_utils.update_bn([torch.rand(16, 3, 32, 32) * 2 - 1], net)
    return net.eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)


def test_views_are_original_and_mirror_and_sum_is_flip_test(model, images):
    emb = Embedder(model, image_size=32, batch_size=4)
    views = emb.views(images)
    assert views.shape == (2, 10, 32) and views.dtype == np.float32
    with torch.no_grad():
        x = images_to_tensor(images, 32)
        want = model(x).numpy()
        want_flip = model(torch.flip(x, dims=[3])).numpy()
    np.testing.assert_allclose(views[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(views[1], want_flip, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(emb(images), want + want_flip, rtol=1e-4, atol=1e-5)
    assert Embedder(model, image_size=32, flip=False).views(images).shape == (1, 10, 32)


def test_normalisation_and_resize():
    x = images_to_tensor(np.array([[[[0, 255, 51]]]], dtype=np.uint8), 1)
    assert torch.allclose(x.flatten(), torch.tensor([-1.0, 1.0, 51 / 255 * 2 - 1]))
    big = images_to_tensor(np.zeros((2, 64, 48, 3), np.uint8), 32)
    assert big.shape == (2, 3, 32, 32)
    with pytest.raises(DataError, match=r"expects uint8 images \(N, H, W, 3\)"):
        images_to_tensor(np.zeros((2, 3, 32, 32), np.uint8), 32)


def cosine(a, b):
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fast_paths_agree_with_fp32(model, images):
    ref = Embedder(model, image_size=32, batch_size=4).views(images)
    fast = Embedder(model, image_size=32, batch_size=4, precision="bf16", channels_last=True).views(images)
    model.to(memory_format=torch.contiguous_format)
    assert cosine(ref, fast).min() > 0.99


@pytest.mark.slow
def test_compiled_embedder_matches_eager(model, images):
    ref = Embedder(model, image_size=32, batch_size=4).views(images)
    compiled = Embedder(model, image_size=32, batch_size=4, compile=True).views(images)  # 10 = 4 + 4 + 2 (padded)
    assert cosine(ref, compiled).min() > 0.9999
