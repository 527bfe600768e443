"""facebone.weights.keys: weights-only loading, key/shape reports, safetensors round trip."""
from __future__ import annotations

import pickle

import pytest
import torch

from facebone.model.build import build_backbone, build_for_state
from facebone.errors import DataError
from facebone.weights.keys import (compare, embedding_size_of, load_into, read_safetensors, read_torch_state_dict,
                              save_backbone)

torch.set_num_threads(1)


class Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pwned",))


def test_refuses_pickled_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(DataError, match="evil.pth: not a weights-only"):
        read_torch_state_dict(path)


def test_unwraps_and_strips_prefixes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = {"module.a.weight": torch.ones(2), "module.b": torch.zeros(1)}
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    got = read_torch_state_dict(tmp_path / "w.pth")
    assert set(got) == {"a.weight", "b"}
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(DataError, match="list.pth: expected a state dict"):
        read_torch_state_dict(tmp_path / "list.pth")
    with pytest.raises(DataError, match="no such file"):
        read_torch_state_dict(tmp_path / "missing.pth")


def test_compare_reports_each_problem() -> None:
    model = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "bn.num_batches_tracked": torch.tensor(0)}
    ckpt = {"a": torch.zeros(3, 2), "c": torch.zeros(1)}
    r = compare(ckpt, model)
    assert r.missing == ["b"] and r.unexpected == ["c"] and r.mismatched == [("a", (3, 2), (2, 3))]
    assert r.filled == ["bn.num_batches_tracked"] and not r.ok
    text = "\n".join(r.lines())
    assert "a: checkpoint [3, 2] vs model [2, 3]" in text and "1 key(s) missing" in text


def test_embedding_size_and_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = build_backbone("iresnet18", {"width": 8}, embedding_size=96)
    probe = build_backbone("iresnet18", {"width": 8})
    assert embedding_size_of(model.state_dict(), probe.state_dict()) == 96
    save_backbone(tmp_path / "m.safetensors", model.state_dict(), backbone="iresnet18", options={"width": 8},
                  embedding_size=96, image_size=112)
    state, meta = read_safetensors(tmp_path / "m.safetensors")
    assert meta["backbone"] == "iresnet18" and meta["embedding_size"] == "96"
    rebuilt = build_for_state("iresnet18", {"width": 8}, state)
    assert rebuilt.embedding_size == 96
    load_into(rebuilt, state, "m.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, rebuilt.state_dict()[k]), k
    with pytest.raises(DataError, match="m.safetensors: does not fit backbone"):
        load_into(build_backbone("mobilefacenet"), state, "m.safetensors")


def test_read_safetensors_takes_the_backbone_out_of_a_run_checkpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from facebone.weights.checkpoint import save_checkpoint

    backbone = build_backbone("iresnet18", {"width": 8}, embedding_size=16)
    wrapper = torch.nn.Module()
    wrapper.backbone = backbone
    wrapper.warp = torch.nn.Identity()
    save_checkpoint(tmp_path / "last.safetensors", {"model": wrapper, "classifier": torch.nn.Linear(16, 3)}, {})
    state, _ = read_safetensors(tmp_path / "last.safetensors")
    assert set(state) == set(backbone.state_dict())
    load_into(build_backbone("iresnet18", {"width": 8}, embedding_size=16), state, "last.safetensors")


def test_non_finite_and_integer_weights_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = build_backbone("iresnet18", {"width": 8}, embedding_size=16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[key].view(-1)[3] = float("inf")
    report = compare(state, model.state_dict())
    assert report.non_finite == [key] and not report.ok and f"NaN or Inf (e.g. {key})" in report.summary()
    with pytest.raises(DataError, match=rf"NaN or Inf \(e.g. {key}\)"):
        load_into(model, state, "w")
    state[key] = torch.ones_like(state[key], dtype=torch.int32)
    report = compare(state, model.state_dict())
    assert report.wrong_dtype == [(key, "int32", "float32")] and report.non_finite == []
    counters = {k: v for k, v in model.state_dict().items()}
    assert compare(counters, model.state_dict()).ok  # int64 num_batches_tracked is what the model holds
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    assert compare(half, model.state_dict()).ok  # another float precision is fine
