"""`facebone import-weights btnet TNET BNET... OUT`: the original's four full networks -> one btnet file.

The state dicts are written here in the original's layout (research/btnet.md §1.4): the TNet is
an iresnet state dict; each BNet is a whole iresnet without ``layer1.0.downsample`` whose front
(stem, earlier stages, block 0 of the implant stage) and BN tensors are its own, and whose other
tensors are the TNet's.
"""
from __future__ import annotations

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from facebone.model.build import build_backbone
from facebone.cli import main

torch.set_num_threads(1)
STAGE = {28: 2, 14: 3, 7: 4}


def is_front(key: str, stage: int) -> bool:
    if key.split(".")[0] in ("conv1", "bn1", "prelu"):
        return True
    if not key.startswith("layer"):
        return False
    k, i = int(key[5]), int(key.split(".")[1])
    return k < stage or (k == stage and i == 0)


def is_bn(key: str) -> bool:
    parts = key.split(".")
    return parts[-2].startswith("bn") or key.startswith(("bn2.", "features.")) or ".downsample.1." in key


def write_original_checkpoints(tmp_path):  # type: ignore[no-untyped-def]
    torch.manual_seed(1)
    tnet = {k: v + torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
            for k, v in build_backbone("iresnet18", {"width": 8}, embedding_size=32).state_dict().items()}
    torch.save({"state_dict": tnet}, tmp_path / "TNET.pt")
    bnets = {}
    for r, stage in STAGE.items():
        bnet = {}
        for k, v in tnet.items():
            if k.startswith("layer1.0.downsample."):
                continue
            specific = (is_front(k, stage) or is_bn(k)) and v.is_floating_point()
            bnet[k] = v + 0.01 * r + torch.rand_like(v) if specific else v.clone()
        torch.save(bnet, tmp_path / f"BNET{r}.pt")
        bnets[r] = bnet
    return tnet, bnets


def test_merges_tnet_and_three_bnets(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    tnet, bnets = write_original_checkpoints(tmp_path)
    out = tmp_path / "btnet.safetensors"
    args = ["import-weights", "btnet", *(str(tmp_path / f) for f in ("TNET.pt", "BNET28.pt", "BNET14.pt", "BNET7.pt")),
            str(out), "--backbone", "btnet18", "--set", "backbone.width=8"]
    assert main(args) == 0, capsys.readouterr().err
    got = load_file(str(out))
    for k, v in tnet.items():
        assert torch.equal(got[k], v), k
    assert torch.equal(got["branches.28.layer2.0.conv2.weight"], bnets[28]["layer2.0.conv2.weight"])
    assert torch.equal(got["branches.7.layer3.1.conv1.weight"], bnets[7]["layer3.1.conv1.weight"])
    assert torch.equal(got["branches.14.trunk_bn.layer3.1.bn2.running_var"], bnets[14]["layer3.1.bn2.running_var"])
    assert torch.equal(got["branches.28.trunk_bn.layer3.0.downsample.1.running_mean"],
                       bnets[28]["layer3.0.downsample.1.running_mean"])
    assert torch.equal(got["branches.7.trunk_bn.features.running_mean"], bnets[7]["features.running_mean"])
    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["backbone"] == "btnet18" and json.loads(meta["options"])["width"] == 8
    assert meta["source"] == "btnet:TNET.pt + BNET28.pt + BNET14.pt + BNET7.pt"
    # the merged file loads strictly into btnet18
    model = build_backbone("btnet18", {"width": 8}, embedding_size=32)
    model.load_state_dict(got, strict=True)
    assert "D=32" in capsys.readouterr().out


def test_refuses_a_bnet_of_another_trunk_and_a_wrong_count(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    tnet, bnets = write_original_checkpoints(tmp_path)
    bad = dict(bnets[14])
    bad["layer4.1.conv1.weight"] = bad["layer4.1.conv1.weight"] + 1
    torch.save(bad, tmp_path / "BAD14.pt")
    paths = [str(tmp_path / f) for f in ("TNET.pt", "BNET28.pt", "BAD14.pt", "BNET7.pt")]
    out = tmp_path / "o.safetensors"
    assert main(["import-weights", "btnet", *paths, str(out), "--backbone", "btnet18", "--set",
                 "backbone.width=8"]) == 2
    err = capsys.readouterr().err
    assert "BAD14.pt: 'layer4.1.conv1.weight' differs from the TNet's" in err
    assert main(["import-weights", "btnet", *paths[:3], str(out), "--backbone", "btnet18", "--set",
                 "backbone.width=8"]) == 2
    assert "merges 1 TNet + 3 BNet checkpoints, got 3 files" in capsys.readouterr().err
    assert not out.exists()


def test_insightface_trunk_imports_into_btnet(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    tnet, _ = write_original_checkpoints(tmp_path)
    out = tmp_path / "trunk.safetensors"
    assert main(["import-weights", "insightface", str(tmp_path / "TNET.pt"), str(out), "--backbone", "btnet18",
                 "--set", "backbone.width=8"]) == 0, capsys.readouterr().err
    got = load_file(str(out))
    assert torch.equal(got["branches.7.layer3.1.conv1.weight"], tnet["layer3.1.conv1.weight"])  # branches from trunk
