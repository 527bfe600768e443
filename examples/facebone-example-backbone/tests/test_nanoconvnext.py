"""nanoconvnext: facebone's contract checks, its parameter count, and a short training run."""
from __future__ import annotations

from pathlib import Path

from facebone.cli import main
from facebone.testing import check_component
from facebone_example_backbone import NanoConvNeXtOptions, build_nanoconvnext


def test_meets_the_backbone_contract() -> None:
    check_component("backbone", "nanoconvnext")


def test_parameter_count_follows_the_architecture() -> None:
    dims, depths, d = (8, 16), (1, 2), 32
    net = build_nanoconvnext(NanoConvNeXtOptions(depths=depths, dims=dims), embedding_size=d, image_size=32)

    def block(c: int) -> int:  # dwconv 7x7 + bias, LayerNorm, MLP C->4C->C, layer scale
        return 49 * c + c + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c

    expected = (3 * 4 * dims[0] + dims[0]) + 2 * dims[0]                       # stem + its norm
    expected += 2 * dims[0] + (dims[0] * dims[1] * 4 + dims[1])                # downsampling norm + conv
    expected += depths[0] * block(dims[0]) + depths[1] * block(dims[1])
    expected += 2 * dims[1] + dims[1] * d + 2 * d                              # final norm, fc, BN1d
    assert sum(p.numel() for p in net.parameters()) == expected


def test_trains_a_few_steps_through_facebone(tmp_path: Path) -> None:
    exp = tmp_path / "exp.toml"
    exp.write_text(f"""
[experiment]
output_dir = "{tmp_path / 'runs'}"
[data]
train = "{tmp_path / 'data'}"
image_size = 32
[data.synth]
identities = 20
images_per_identity = 8
holdout_identities = 10
pairs = 40
[backbone]
type = "nanoconvnext"
embedding_size = 32
[train]
batch_size = 32
epochs = 1
max_steps = 4
[[eval]]
type = "verification"
targets = ["holdout"]
""")
    assert main(["run", str(exp), "--no-progress"]) == 0
    assert list((tmp_path / "runs").glob("exp/checkpoints/last.safetensors"))
