"""facebone.eval.fastpath: channels-last + autocast inference."""
from __future__ import annotations

import pytest
import torch

from facebone.eval import fastpath
from facebone.model.build import build_backbone
from facebone.errors import ConfigError
from torch.optim.swa_utils import update_bn

torch.set_num_threads(1)


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_backbone("iresnet18", {"width": 8})
    update_bn([torch.rand(4, 3, 112, 112) * 2 - 1], model)  # BN statistics as if trained
    return model.eval()


def test_prepare_sets_eval_and_channels_last() -> None:
    model = fastpath.prepare(small_net().train(), "bf16", channels_last=True)
    assert not model.training
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.conv1.weight.dtype == torch.float32  # autocast casts per op; weights stay fp32


def test_bf16_embeddings_agree_with_fp32() -> None:
    model = small_net()
    x = torch.rand(8, 3, 112, 112) * 2 - 1
    ref = fastpath.embed(model, x, "fp32")
    fast = fastpath.embed(fastpath.prepare(model, "bf16", True), x, "bf16", channels_last=True)
    assert fast.dtype == torch.float32 and fast.shape == ref.shape
    cos = torch.nn.functional.cosine_similarity(ref, fast)
    assert cos.min() > 0.995
    assert not torch.equal(ref, fast)  # bf16 really ran


def test_autocast_fp32_is_a_no_op_and_bf16_lowers_matmuls() -> None:
    a = torch.randn(4, 4)
    with fastpath.autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32
    with fastpath.autocast("bf16", torch.device("cpu")):
        assert (a @ a).dtype == torch.bfloat16


def test_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="precision"):
        fastpath.prepare(small_net(), "int8")
