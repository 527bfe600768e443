import pytest
import torch
from torch import nn

from facebone.weights.checkpoint import load_module_state, read_checkpoint, save_checkpoint
from facebone.errors import DataError


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.BatchNorm1d(2)
    path = save_checkpoint(tmp_path / "c" / "x.safetensors", {"model": a, "bn": b}, {"step": 7, "name": "n"})
    assert not list(path.parent.glob(".*tmp"))
    tensors, meta = read_checkpoint(path)
    assert meta["step"] == "7" and meta["name"] == "n" and meta["format"] == "facebone"
    fresh = nn.Linear(3, 2)
    load_module_state(fresh, tensors, "model", str(path))
    assert torch.equal(fresh.weight, a.weight)


def test_mismatch_is_reported_with_key_and_shapes(tmp_path):
    path = save_checkpoint(tmp_path / "x.safetensors", {"model": nn.Linear(3, 2)}, {})
    tensors, _ = read_checkpoint(path)
    with pytest.raises(DataError, match=r"2 shape mismatches \(e.g. model.bias: checkpoint \(2,\), model \(4,\)\)"):
        load_module_state(nn.Linear(3, 4), tensors, "model", str(path))


def test_corrupt_or_missing_checkpoint(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="bad.safetensors: not a readable safetensors checkpoint"):
        read_checkpoint(bad)


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from facebone.io import atomic_write_text

    path = atomic_write_text(tmp_path / "r.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
