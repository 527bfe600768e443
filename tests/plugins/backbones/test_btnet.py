"""btnet: trunk + branches in one module, routing by native size, parameter counts, and
equivalence with the original BTNet code (fixture made by fixtures/btnet/make_btnet_fixtures.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facebone.model.build import build_backbone
from facebone.experiment.config import validate
from facebone.errors import ConfigError
from facebone.plugins.backbones.btnet_model import BTNet
from facebone.plugins.backbones.btnet_routing import intervals, route
from facebone.plugins.backbones.iresnet_model import DEPTHS

FIXTURES = Path(__file__).parent / "fixtures" / "btnet"


def small(**kw):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return BTNet(DEPTHS[18], embedding_size=32, width=8, **kw)


# -- routing ----------------------------------------------------------------------------------

ORIGINAL_TABLES = {  # research/btnet.md §1.6 (eval_survface_1n_multi_reso.py L55-77), inclusive
    "floor": {7: (0, 13), 14: (14, 27), 28: (28, 111), 112: (112, 1000)},
    "near": {7: (0, 10), 14: (11, 21), 28: (22, 70), 112: (71, 1000)},
    "ceil": {7: (0, 7), 14: (8, 14), 28: (15, 28), 112: (29, 1000)},
}


@pytest.mark.parametrize("rule", sorted(ORIGINAL_TABLES))
def test_routing_intervals_are_the_originals_at_every_boundary(rule: str) -> None:
    sizes = (112, 28, 14, 7)
    assert intervals(sizes, rule) == ORIGINAL_TABLES[rule]
    for size, (lo, hi) in ORIGINAL_TABLES[rule].items():
        for ind in {lo, hi, max(lo - 1, 0), min(hi + 1, 1000)}:
            inside = lo <= ind <= hi
            assert (route(ind, ind, sizes, rule=rule) == size) == inside, (rule, size, ind)
    assert route(5000, 5000, sizes, rule=rule) == 112  # the original drops these; they go to the trunk


def test_routing_indicators() -> None:
    sizes = (112, 28, 14, 7)
    assert route(15, 8, sizes, indicator_kind="max") == 28   # max 15 -> ceil 28
    assert route(15, 8, sizes, indicator_kind="min") == 14   # min 8 -> ceil 14
    assert route(15, 8, sizes, indicator_kind="avg") == 14   # floor(23 / 2) = 11 -> ceil 14
    assert route(15, 14, sizes, indicator_kind="avg") == 14  # floor(29 / 2) = 14
    assert route(15, 15, sizes, indicator_kind="avg") == 28


def test_routing_with_a_56_branch() -> None:
    assert intervals((112, 56, 28, 14, 7), "near")[56] == (43, 84)  # midpoints 42 -> 28 (tie: smaller), 84 -> 56
    assert intervals((112, 56, 28), "ceil") == {28: (0, 28), 56: (29, 56), 112: (57, 1000)}


# -- structure and counts ---------------------------------------------------------------------

def test_btnet50_parameter_counts_and_macs(capsys) -> None:  # type: ignore[no-untyped-def]
    from facebone.cli import main

    assert main(["describe", "backbone", "btnet50"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip().startswith(("trunk", "BNet"))}
    assert rows["trunk"][3] == "43,590,848" and rows["trunk"][4] == "6.31"
    assert rows["BNet28"][4] == "454,848" and rows["BNet28"][5] == "5.24"
    assert rows["BNet14"][4] == "2,261,824" and rows["BNet14"][5] == "4.28"
    assert rows["BNet7"][4] == "21,294,656" and rows["BNet7"][5] == "1.52"
    # trunk BN copies: the original's trainable trunk BN (research §1.5: 33,280 / 29,696 / 7,168) plus
    # the frozen-affine downsample.1 and features BN layers
    assert rows["BNet28"][6] == f"{33280 + 512 + 1024 + 1024:,}"
    assert rows["BNet7"][6] == f"{7168 + 1024:,}"


def test_trunk_keys_are_insightface_iresnet_keys() -> None:
    model = small(branches=[56, 28, 14, 7])
    iresnet = build_backbone("iresnet18", {"width": 8}, embedding_size=32)
    assert list(model.trunk_state_dict()) == list(iresnet.state_dict())
    assert "branches.56.layer1.0.conv1.weight" in model.state_dict()
    assert "branches.56.layer1.0.downsample.0.weight" not in model.state_dict()  # stride 1, 64 -> 64
    assert "branches.28.layer2.0.downsample.0.weight" in model.state_dict()
    assert "branches.28.layer2.1.conv1.weight" not in model.state_dict()  # only block 0 of the implant stage
    assert "branches.28.trunk_bn.layer2.1.bn1.running_mean" in model.state_dict()
    assert "branches.7.trunk_bn.layer4.1.bn3.weight" in model.state_dict()
    assert "branches.7.trunk_bn.layer4.0.bn1.weight" not in model.state_dict()
    shared = small(shared_bn=True)
    assert not any(".trunk_bn." in k for k in shared.state_dict())


def test_same_outputs_as_the_original_code() -> None:
    """The original's get_model('r18', r) with deterministic weights (fixture) vs btnet18 with
    those checkpoints merged: the same embeddings at 112, 56, 28, 14 and 7."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from make_btnet_fixtures import RESOLUTIONS, fill, front_of
    finally:
        sys.path.remove(str(FIXTURES))
    ref = np.load(FIXTURES / "original_r18.npz")
    torch.manual_seed(0)
    model = BTNet(DEPTHS[18], embedding_size=64, branches=[56, 28, 14, 7]).eval()
    tnet = fill(model.trunk_state_dict(), 112, front_of(112))
    states = [tnet]
    for r in (56, 28, 14, 7):
        keys = {k: v for k, v in tnet.items() if not k.startswith("layer1.0.downsample.")}
        assert sorted(keys) == list(ref[f"keys_{r}"])
        states.append(fill(keys, r, front_of(r)))
    model.load_state_dict(model.import_state_dicts(states, ["T", "B56", "B28", "B14", "B7"]), strict=True)
    for r in RESOLUTIONS:
        x = torch.randn(2, 3, r, r, generator=torch.Generator().manual_seed(r))
        with torch.no_grad():
            got = model(x)
        np.testing.assert_allclose(got.numpy(), ref[f"embedding_{r}"], rtol=1e-4, atol=1e-5)
        if r != 112:
            with torch.no_grad():
                _, feat = model(x, implant=True)
            stage = {56: 0, 28: 1, 14: 2, 7: 3}[r]
            np.testing.assert_allclose(feat.mean(dim=(1, 2, 3)).numpy(), ref[f"feat_means_{r}"][:, stage],
                                       rtol=1e-4, atol=1e-6)


# -- forward -----------------------------------------------------------------------------------

def test_forward_routes_by_size_and_resizes_with_the_declared_filter() -> None:
    model = small(resize_filter="bilinear").eval()
    x = torch.rand(3, 3, 20, 20) * 2 - 1
    with torch.no_grad():
        routed = model(x)
        expected = model.forward_branch(F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True,
                                                      align_corners=False), 28)
        bicubic = model.forward_branch(F.interpolate(x, size=(28, 28), mode="bicubic", antialias=True,
                                                     align_corners=False), 28)
        forced = model(x, branch=112)
        trunk = model.forward_trunk(F.interpolate(x, size=(112, 112), mode="bilinear", antialias=True,
                                                  align_corners=False))
    torch.testing.assert_close(routed, expected)
    assert not torch.allclose(routed, bicubic)
    torch.testing.assert_close(forced, trunk)
    assert model.route(14, 14) == 14 and model.route(15, 3) == 28 and model.route(111, 111) == 112
    with pytest.raises(ValueError, match="no path for 21x21"):
        model(x, branch=21)
    emb, feat = model(torch.zeros(2, 3, 14, 14), implant=True)
    assert emb.shape == (2, 32) and feat.shape == (2, 32, 14, 14)  # layer3.0 output: 4 x width channels


def test_branch_bn_copies_keep_the_trunk_untouched() -> None:
    for shared in (False, True):
        model = small(shared_bn=shared).train()
        before = {k: v.clone() for k, v in model.trunk_state_dict().items()}
        model(torch.rand(4, 3, 14, 14) * 2 - 1).sum().backward()
        after = model.trunk_state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), shared
        assert model.branches["14"].layer1[0].conv1.weight.grad is not None
        if not shared:
            bn = model.branches["14"].trunk_bn.layer3["1"].bn1
            assert not torch.equal(bn.running_mean, before["layer3.1.bn1.running_mean"])
            assert bn.weight.grad is not None
        else:
            assert model.layer3[1].bn1.weight.grad is not None  # the trunk's own affine is used (and shared)


def test_a_trunk_checkpoint_initialises_every_branch() -> None:
    iresnet = build_backbone("iresnet18", {"width": 8}, embedding_size=32)
    model = small()
    full = model.complete_state_dict(iresnet.state_dict())
    model.load_state_dict(full, strict=True)
    sd = model.state_dict()
    assert torch.equal(sd["branches.7.layer3.1.conv1.weight"], iresnet.state_dict()["layer3.1.conv1.weight"])
    assert torch.equal(sd["branches.28.trunk_bn.layer4.0.downsample.1.weight"],
                       iresnet.state_dict()["layer4.0.downsample.1.weight"])
    assert model.complete_state_dict(full) is full  # a full state dict is left alone


# -- validation --------------------------------------------------------------------------------

def experiment(**backbone) -> dict:  # type: ignore[no-untyped-def]
    return {"data": {"train": "unused", "image_size": 112}, "backbone": {"type": "btnet50", **backbone}}


def test_validation_refuses_bad_branches_rules_and_indicators() -> None:
    with pytest.raises(ConfigError) as err:
        validate(experiment(branches=[28, 21]), source="e.toml", check_paths=False)
    assert "branch resolution 21 does not end at 7x7" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate(experiment(rule="round", indicator="median"), source="e.toml", check_paths=False)
    assert "key 'rule' expects 'ceil' | 'floor' | 'near'" in str(err.value)
    assert "key 'indicator' expects 'max' | 'avg' | 'min'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate({**experiment(), "warp": {"type": "roi_tanh_polar"}}, source="e.toml", check_paths=False)
    assert "needs the identity warp" in str(err.value)
    exp = validate(experiment(branches=[56, 7]), source="e.toml", check_paths=False)
    assert exp.backbone.options.branches == [56, 7]
