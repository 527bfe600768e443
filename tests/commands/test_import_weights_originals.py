"""`facebone import-weights gwp | gwp-adaface | comparison`: files laid out as the originals write them
(their key names, seeded weights), imported through the CLI, give the originals' outputs
(fixtures of tests/plugins/fixtures/make_gwp_light_fixtures.py) to 2e-5 of the output scale."""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import pytest
import torch

from facebone.cli import main
from facebone.model.build import build_backbone
from facebone.weights.keys import read_safetensors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "fixtures"))
import gwp_light_fixtures as fx  # noqa: E402

torch.set_num_threads(1)


def original_state(fixture: str) -> dict[str, torch.Tensor]:
    """The original's state dict for ``fixture``: its keys (the same as facebone's, plus the keys
    facebone declares unused; test_original_gwp_light checks the layout against the original's)
    with the generator's seeded values."""
    name, options = fx.facebone_backbone(fixture)
    model = build_backbone(name, options)
    shapes = {**{k: v for k, v in model.state_dict().items()},
              **{k: torch.zeros(s, dtype=torch.long if k.endswith("num_batches_tracked") else torch.float32)
                 for k, s in getattr(model, "unused_checkpoint_shapes", dict)().items()}}
    return fx.seeded(shapes, fixture)


def imported_backbone(path: Path) -> tuple[torch.nn.Module, dict[str, str]]:
    state, meta = read_safetensors(path)
    model = build_backbone(meta["backbone"], json.loads(meta["options"]), embedding_size=int(meta["embedding_size"]))
    model.load_state_dict(state, strict=True)
    return model.eval(), meta


def embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def test_gwp_paper_model_pt_imports_and_gives_the_originals_embedding(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.save(original_state("gwp_iresnet50"), tmp_path / "model.pt")  # train.py: backbone.module.state_dict()
    out = tmp_path / "gwp_r50.safetensors"
    assert main(["import-weights", "gwp", str(tmp_path / "model.pt"), str(out)]) == 0
    assert "match iresnet50 (D=512)" in capsys.readouterr().out
    model, meta = imported_backbone(out)
    assert meta["backbone"] == "iresnet50"
    assert json.loads(meta["options"])["pooling"] == "gwp" and json.loads(meta["options"])["stem7x7"] is True
    assert fx.relative_error(embed(model, fx.model_input()), "gwp_iresnet50.output") <= fx.TOLERANCE
    # the model `facebone eval` builds from the paper's experiment (at depth 50) with this checkpoint
    from facebone.commands.eval_cmd import model_from_checkpoint
    from facebone.experiment.config import load_experiment

    paper = Path(__file__).resolve().parents[2] / "experiments" / "gwp_r100_cosface.toml"
    exp = load_experiment(paper, ["backbone.type=iresnet50"], check_paths=False)
    face = model_from_checkpoint(exp, out)
    assert fx.relative_error(embed(face, fx.model_input()), "gwp_iresnet50.output") <= fx.TOLERANCE


def test_gwp_gap_ablation_imports_with_a_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.save({"state_dict_backbone": original_state("gap_iresnet50")}, tmp_path / "checkpoint_gpu_0.pt")
    out = tmp_path / "gap.safetensors"
    assert main(["import-weights", "gwp", str(tmp_path / "checkpoint_gpu_0.pt"), str(out),
                 "--set", "backbone.pooling=gap"]) == 0
    model, _ = imported_backbone(out)
    assert fx.relative_error(embed(model, fx.model_input()), "gap_iresnet50.output") <= fx.TOLERANCE


def lightning_checkpoint(state: dict[str, torch.Tensor], kernel: torch.Tensor) -> dict:  # type: ignore[type-arg]
    """What AdaFace's PyTorch Lightning trainer saves (plain types only, as weights_only allows)."""
    return {"epoch": 3, "global_step": 1200, "pytorch-lightning_version": "1.8.6",
            "state_dict": {**{f"model.{k}": v for k, v in state.items()}, "head.kernel": kernel,
                           "head.t": torch.zeros(1), "head.batch_mean": torch.ones(1) * 20,
                           "head.batch_std": torch.ones(1) * 100},
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_acc', 'mode': 'max'}": {
                "best_model_score": torch.tensor(0.93), "best_model_path": "/runs/epoch=3.ckpt"}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}],
            "lr_schedulers": [{"milestones": collections.Counter({12: 1, 20: 1, 24: 1}), "gamma": 0.1,
                               "base_lrs": [0.1], "last_epoch": 3}],
            "hyper_parameters": {"arch": "ir_50", "head": "adaface", "m": 0.4, "h": 0.333, "lr_milestones": "12,20,24"}}


def test_adaface_layout_ckpt_imports_as_rgb_with_its_classifier(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    kernel = torch.randn(512, 10)
    torch.save(lightning_checkpoint(original_state("adaface_gwp_iresnet50"), kernel), tmp_path / "last.ckpt")
    out = tmp_path / "ada.safetensors"
    assert main(["import-weights", "gwp-adaface", str(tmp_path / "last.ckpt"), str(out), "--classifier"]) == 0
    printed = capsys.readouterr().out
    assert "reads BGR" in printed and "head.t, head.batch_mean, head.batch_std" in printed
    assert "10 class centres" in printed
    model, meta = imported_backbone(out)
    assert json.loads(meta["options"])["stem7x7"] is False and meta["num_classes"] == "10"
    from facebone.weights.checkpoint import read_checkpoint

    tensors, _ = read_checkpoint(out)
    assert torch.equal(tensors["classifier.weight"], kernel.t())
    bgr = fx.model_input()  # the original read this as BGR; facebone's backbone now takes the same picture as RGB
    x = embed(model, bgr[:, [2, 1, 0]])
    norm = x.norm(dim=1, keepdim=True)
    assert fx.relative_error(norm, "adaface_gwp_iresnet50.norm") <= fx.TOLERANCE
    assert fx.relative_error(x / norm.clamp(1e-3, 100), "adaface_gwp_iresnet50.output") <= fx.TOLERANCE
    # facebone eval reads the --classifier file as a run checkpoint (model.backbone.*)
    from facebone.commands.eval_cmd import load_weights
    from facebone.model.face_model import FaceModel

    face = FaceModel(torch.nn.Module(), build_backbone("iresnet50", {"pooling": "gwp"}))
    load_weights(face, out)
    assert torch.equal(face.backbone.conv1.weight, model.conv1.weight)


def test_adaface_layout_without_classifier_is_a_bare_backbone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = original_state("adaface_gwp_iresnet50")
    torch.save(lightning_checkpoint(state, torch.randn(512, 4)), tmp_path / "a.ckpt")
    out = tmp_path / "a.safetensors"
    assert main(["import-weights", "gwp-adaface", str(tmp_path / "a.ckpt"), str(out)]) == 0
    from facebone.weights.checkpoint import read_checkpoint

    tensors, _ = read_checkpoint(out)
    assert "classifier.weight" not in tensors and "conv1.weight" in tensors
    assert torch.equal(tensors["conv1.weight"], state["conv1.weight"].flip(1))


def test_adaface_ckpt_with_foreign_keys_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    ckpt = lightning_checkpoint(original_state("adaface_gwp_iresnet50"), torch.randn(512, 4))
    ckpt["state_dict"]["teacher.fc.weight"] = torch.zeros(2, 2)
    torch.save(ckpt, tmp_path / "b.ckpt")
    assert main(["import-weights", "gwp-adaface", str(tmp_path / "b.ckpt"), str(tmp_path / "b.safetensors")]) == 2
    assert "teacher.fc.weight" in capsys.readouterr().err


@pytest.mark.parametrize("repository_name, fixture", [("sfn1_0", "ito_sfn1_0"), ("smfn_xs", "ito_smfn_xs"),
                                                      ("mbf", "ito_mbf")])
def test_comparison_checkpoints_import_under_the_repositorys_names(repository_name, fixture, tmp_path,  # type: ignore[no-untyped-def]
                                                                   capsys) -> None:
    state = {f"module.{k}": v for k, v in original_state(fixture).items()}
    torch.save({"epoch": 2, "state_dict_backbone": state}, tmp_path / "checkpoint.pt")  # save_all_states
    out = tmp_path / "net.safetensors"
    assert main(["import-weights", "comparison", str(tmp_path / "checkpoint.pt"), str(out),
                 "--backbone", repository_name]) == 0
    printed = capsys.readouterr().out
    assert f"repository network '{repository_name}'" in printed
    if "mfn" in repository_name:
        assert "left out 19 tensors" in printed  # the GDC head path that never runs at 112
    model, _ = imported_backbone(out)
    assert fx.relative_error(embed(model, fx.model_input()), f"{fixture}.output") <= fx.TOLERANCE


def test_comparison_backbone_read_from_the_keys(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.save(original_state("ito_sfn1_0"), tmp_path / "model.pt")
    assert main(["import-weights", "comparison", str(tmp_path / "model.pt"), str(tmp_path / "o.safetensors")]) == 0
    assert "read from the keys: shufflefacenet_cmp_1_5" in capsys.readouterr().out
    torch.save(original_state("ito_mfn_s"), tmp_path / "mfn.pt")
    assert main(["import-weights", "comparison", str(tmp_path / "mfn.pt"), str(tmp_path / "m.safetensors")]) == 2
    assert "pass --backbone mfn_xs|mfn_s|mfn_m" in capsys.readouterr().err


def test_comparison_checkpoint_does_not_fit_the_papers_shufflefacenet(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.save(original_state("ito_sfn1_0"), tmp_path / "model.pt")
    rc = main(["import-weights", "comparison", str(tmp_path / "model.pt"), str(tmp_path / "o.safetensors"),
               "--backbone", "shufflefacenet_1_5"])
    assert rc == 2 and "does not fit backbone 'shufflefacenet_1_5'" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_wrong_shape_in_an_unused_key_is_reported(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    state = original_state("ito_mfn_xs")
    state["embedding.dw.weight"] = torch.zeros(1024, 1, 3, 3)
    torch.save(state, tmp_path / "model.pt")
    rc = main(["import-weights", "comparison", str(tmp_path / "model.pt"), str(tmp_path / "o.safetensors"),
               "--backbone", "mfn_xs"])
    assert rc == 2 and "embedding.dw.weight: checkpoint [1024, 1, 3, 3] vs [1024, 1, 7, 7]" in capsys.readouterr().err
