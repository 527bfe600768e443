"""``btnet``: the original BTNet's four full networks (``TNET.pt BNET28.pt BNET14.pt BNET7.pt``).

Each file is a whole iResNet state dict (the original saves every BNet as a full network, with
its own trunk BN layers; research/btnet.md §1.4). The TNet comes first, then one BNet per branch
in the order of the backbone's ``branches`` option; the btnet backbone's ``import_state_dicts``
merges them (facebone.plugins.backbones.btnet_model). ``--backbone`` defaults to the btnet of
the TNet's depth.
"""
from __future__ import annotations

from pathlib import Path

from facebone.errors import ConfigError
from facebone.weights.sources import Imported, infer_iresnet_depth

MANY_FILES = True


def read(paths: list[Path], backbone: str | None) -> Imported:
    from facebone.weights.keys import read_torch_state_dict

    if len(paths) < 2:
        raise ConfigError("import-weights btnet: give the TNet and one BNet per branch (TNET.pt BNET28.pt ... OUT)")
    states = [read_torch_state_dict(p) for p in paths]
    if not backbone:
        depth = infer_iresnet_depth(states[0])
        if depth is None:
            raise ConfigError(f"import-weights btnet: {paths[0]} is not an iResNet state dict of a known depth; "
                              "pass --backbone btnetN")
        backbone = f"btnet{depth}"
    return Imported(state=states[0], backbone=backbone, parts=states[1:],
                    notes=[f"merged the TNet and {len(states) - 1} BNet checkpoints"])
