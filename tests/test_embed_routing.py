"""The embedder and a backbone that routes inputs by size (``input_sizes``, e.g. btnet): images keep
their native size, batched by size; other backbones get every image resized to image_size."""
import numpy as np
import pytest
import torch

from facebone.contracts import routes_inputs
from facebone.errors import ConfigError
from facebone.eval.embedder import Embedder, images_to_tensor
from facebone.model.build import build_backbone

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def btnet():
    torch.manual_seed(0)
    net = build_backbone("btnet18", {"width": 8}, embedding_size=16).train()
    with torch.no_grad():
        for side in (112, 28, 14, 7):
            net(torch.rand(8, 3, side, side) * 2 - 1)
    return net.eval()


def mixed_images() -> list:
    rng = np.random.default_rng(0)
    sides = [7, 14, 7, 20, 112, 14, 7]
    return [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in sides]


def test_routing_backbone_gets_native_sizes_grouped(btnet):
    images = mixed_images()
    emb = Embedder(btnet, image_size=112, batch_size=2)
    assert emb.routes and routes_inputs(btnet)
    views = emb.views(images)
    assert views.shape == (2, 7, 16)
    with torch.no_grad():
        for i, img in enumerate(images):
            x = images_to_tensor(img[None], None)
            np.testing.assert_allclose(views[0, i], btnet(x)[0].numpy(), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(views[1, i], btnet(torch.flip(x, dims=[3]))[0].numpy(), rtol=1e-4, atol=1e-5)
    # a batch of one size as an array: the same as the list
    sevens = np.stack([images[0], images[2], images[6]])
    np.testing.assert_allclose(emb.views(sevens), views[:, [0, 2, 6]], rtol=1e-5, atol=1e-6)
    # a forced path: the trunk on 7x7 faces (resized by the backbone's filter)
    with torch.no_grad():
        want = btnet(images_to_tensor(sevens, None), branch=112).numpy()
    np.testing.assert_allclose(Embedder(btnet, image_size=112, flip=False).views(sevens, branch=112)[0], want,
                               rtol=1e-4, atol=1e-5)


def test_other_backbones_get_every_image_resized():
    torch.manual_seed(0)
    net = build_backbone("iresnet18", {"width": 8, "pooling": "gap"}, embedding_size=16, image_size=32).eval()
    images = mixed_images()
    emb = Embedder(net, image_size=32, batch_size=4, flip=False)
    assert not emb.routes
    got = emb.views(images)[0]
    with torch.no_grad():
        for i, img in enumerate(images):
            np.testing.assert_allclose(got[i], net(images_to_tensor(img[None], 32))[0].numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="no path for 7x7"):
        emb.views(images, branch=7)
