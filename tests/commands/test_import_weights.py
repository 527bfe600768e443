"""`facebone import-weights insightface`: checkpoint in InsightFace layout -> safetensors."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from facebone.model.build import build_backbone
from facebone.cli import main

torch.set_num_threads(1)


def test_imports_a_ddp_checkpoint_with_another_embedding_size(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    src = build_backbone("mobilefacenet", embedding_size=128)
    sd = {"module." + k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "backbone.pth")
    out = tmp_path / "mbf.safetensors"
    assert main(["import-weights", "insightface", str(tmp_path / "backbone.pth"), str(out),
                 "--backbone", "mobilefacenet"]) == 0
    assert "D=128" in capsys.readouterr().out
    got = load_file(str(out))
    for k, v in src.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(got[k], v), k
    # OUT exists: refused without --force
    assert main(["import-weights", "insightface", str(tmp_path / "backbone.pth"), str(out),
                 "--backbone", "mobilefacenet"]) == 2
    assert "--force" in capsys.readouterr().err


def test_mismatch_is_reported_and_fails(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.save(build_backbone("iresnet18", {"width": 8}).state_dict(), tmp_path / "r18.pth")
    rc = main(["import-weights", "insightface", str(tmp_path / "r18.pth"), str(tmp_path / "o.safetensors"),
               "--backbone", "iresnet18"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "conv1.weight: checkpoint [8, 3, 3, 3] vs model [64, 3, 3, 3]" in err
    assert "r18.pth: does not fit backbone 'iresnet18'" in err
    assert not (tmp_path / "o.safetensors").exists()
    rc = main(["import-weights", "insightface", str(tmp_path / "r18.pth"), str(tmp_path / "o.safetensors"),
               "--backbone", "iresnet18", "--set", "backbone.width=8"])
    assert rc == 0 and (tmp_path / "o.safetensors").exists()
