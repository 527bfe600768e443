"""``[data.degrade]``: random resolution from a set, antialiased downscale with the declared filter,
optional upsampling back to the image size (BTNet's stage 1)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facebone.data import make_loader, open_training_set
from facebone.data.dataset import Degradation
from facebone.data.pack import write_insightface_pack
from facebone.errors import ConfigError
from facebone.experiment.config import validate


@pytest.fixture
def square_pack(tmp_path, encode_png):
    rng = np.random.default_rng(1)
    arrs = [rng.integers(0, 256, (28, 28, 3), dtype=np.uint8) for _ in range(12)]
    encode = encode_png
    write_insightface_pack(tmp_path / "p", [(encode(a), i // 3) for i, a in enumerate(arrs)], image_size=28)
    return tmp_path / "p", arrs


def manual(arr: np.ndarray, size: int, mode: str) -> torch.Tensor:
    """Down to ``size`` and back to 28 with ``mode`` (antialiased), rounded to uint8, in [-1, 1]."""
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float()
    aa = {"antialias": True, "align_corners": False} if mode in ("bilinear", "bicubic") else {}
    for s in (size, 28):
        x = F.interpolate(x, size=(s, s), mode=mode, **aa).round().clamp(0, 255)
    return x[0] / 127.5 - 1.0


@pytest.mark.parametrize("mode", ["bicubic", "bilinear", "area"])
def test_the_declared_filter_is_used(square_pack, mode: str) -> None:
    path, arrs = square_pack
    ds = open_training_set(path, image_size=28, hflip=False,
                           degradation=Degradation(sizes=(7,), p=1.0, interpolation=mode))
    x, _ = ds[(0, 0)]
    torch.testing.assert_close(x, manual(arrs[0], 7, mode))
    other = "bilinear" if mode != "bilinear" else "bicubic"
    assert (x - manual(arrs[0], 7, other)).abs().max() > 0.05


def test_sizes_are_drawn_uniformly_with_probability_p() -> None:
    deg = Degradation(sizes=(112, 56, 28, 14, 7), p=0.6)
    draws = np.array([deg.draw(int(s)) for s in np.random.default_rng(0).integers(0, 2**62, 20000)])
    assert abs(np.mean(draws > 0) - 0.6) < 0.02
    counts = np.bincount(draws)[[112, 56, 28, 14, 7]]
    assert counts.min() > 0.9 * counts.mean()


def test_without_upsampling_each_batch_has_one_drawn_size(square_pack) -> None:
    path, _ = square_pack
    ds = open_training_set(path, image_size=28, hflip=False,
                           degradation=Degradation(sizes=(14, 7), p=1.0, upsample=False, interpolation="area"))
    sizes = [tuple(x.shape[-2:]) for x, _ in make_loader(ds, batch_size=4, seed=5)]
    assert set(sizes) <= {(14, 14), (7, 7)} and len(sizes) == 3
    again = [tuple(x.shape[-2:]) for x, _ in make_loader(ds, batch_size=4, seed=5, num_workers=2,
                                                         persistent_workers=False)]
    assert again == sizes  # the draw follows the sampler's seeds, whatever the workers
    x, label, size = ds[(0, 0)]
    assert x.shape[-1] == 28 and size in (14, 7)  # items stay at image size; the collate function resizes


def experiment(degrade: dict) -> dict:
    return {"data": {"train": "unused", "image_size": 112, "degrade": degrade}, "backbone": {"type": "iresnet18"}}


def test_the_table_is_validated_and_resolved() -> None:
    exp = validate(experiment({}), source="e.toml", check_paths=False)
    assert exp.degrade.sizes == [112, 56, 28, 14, 7] and exp.degrade.p == 1.0 and exp.degrade.upsample
    assert exp.resolved()["data"]["degrade"]["filter"] == "bilinear"
    assert Degradation.from_table(exp.degrade).sizes == (112, 56, 28, 14, 7)
    with pytest.raises(ConfigError) as err:
        validate(experiment({"p": 1.5, "filtre": "area"}), source="e.toml", check_paths=False)
    assert "e.toml [data.degrade]: unknown key 'filtre' (did you mean 'filter'?)" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate(experiment({"filter": "lanczos"}), source="e.toml", check_paths=False)
    assert "key 'filter' expects 'bilinear' | 'bicubic' | 'area' | 'nearest'" in str(err.value)
    plain = {"data": {"train": "unused"}, "backbone": {"type": "iresnet18"}}
    assert validate(plain, source="e.toml", check_paths=False).degrade is None
