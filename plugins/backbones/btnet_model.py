"""BTNet (Branch-to-Trunk network, BMVC 2023): one iResNet trunk plus low-resolution branches.

The **trunk** is an :class:`~facebone.plugins.backbones.iresnet_model.IResNet` at ``T`` x ``T``
(112): its state-dict keys are InsightFace's iresnet keys, at the top level, so an InsightFace
or BTNet TNet checkpoint is a trunk checkpoint. A **branch** for ``r`` x ``r`` faces
(``r = T / 2**s``: 56, 28, 14, 7) is the stem, stages ``1..s-1`` and block 0 of stage ``s``, all at
stride 1 (research/btnet.md §1.2-1.4): its output has the shape of the trunk's block-0 output
of stage ``s`` (the *implant point*), and the trunk continues from block 1 of stage ``s``. Branch
keys are the same iresnet names under ``branches.<r>.``.

**Batch norm in the trunk continuation.** The original re-estimates the continuation's BN
statistics (and trains the affine parameters of layers named ``bn*``) separately for each
branch, so each released BNet carries its own copy. By default (``shared_bn=False``) each
branch therefore owns a copy of every continuation BN layer, under
``branches.<r>.trunk_bn.<iresnet name>`` (e.g. ``branches.28.trunk_bn.layer3.0.downsample.1``).
The original trains the affine parameters of the ``bn*`` copies but not those of the
``downsample.1`` and ``features`` copies (its freezing rule goes by the substring "bn");
``experiments/btnet50_branches.toml`` says so with ``[train] freeze``, and re-estimates every
copy's statistics (``freeze_bn = "update"``). With ``shared_bn=True`` every branch runs the trunk's own BN
layers, always with their running statistics (a branch batch never changes them), so the
trunk is literally one network for every resolution.

**Routing.** ``forward(x)`` picks the path from the batch's size (:mod:`btnet_routing`: indicator
max/avg/min, rule ceil/floor/near) and resizes it to that path's size with ``resize_filter``;
``forward(x, branch=r)`` forces a path (``r = T`` is the trunk). ``implant=True`` also returns
the implant-point feature map (the distillation target).
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from facebone.plugins.backbones.btnet_routing import branch_problems, branch_stage, route
from facebone.plugins.backbones.common import IBasicBlock, init_conv_bn
from facebone.plugins.backbones.iresnet_model import IResNet

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


class BlockNorms(nn.Module):
    """The BN layers of one :class:`IBasicBlock` (``bn1, bn2, bn3, downsample.1``), copied."""

    def __init__(self, block: IBasicBlock):
        super().__init__()
        self.bn1 = copy.deepcopy(block.bn1)
        self.bn2 = copy.deepcopy(block.bn2)
        self.bn3 = copy.deepcopy(block.bn3)
        self.downsample: nn.Module | None = None
        if block.downsample is not None:
            self.downsample = nn.Sequential(nn.Identity(), copy.deepcopy(block.downsample[1]))


class ContinuationNorms(nn.Module):
    """A branch's own copy of every BN layer of the trunk after its implant point, with the
    trunk's names (``layer3.0.bn1``, ``bn2``, ``features``, ...)."""

    def __init__(self, trunk: IResNet, stage: int):
        super().__init__()
        for k in range(stage, 5):
            layer = getattr(trunk, f"layer{k}")
            first = 1 if k == stage else 0
            setattr(self, f"layer{k}", nn.ModuleDict({str(i): BlockNorms(layer[i]) for i in range(first, len(layer))}))
        self.bn2 = copy.deepcopy(trunk.bn2)
        self.features = copy.deepcopy(trunk.features)


class Branch(nn.Module):
    """Stem, stages ``1..stage-1`` and block 0 of ``stage``, at stride 1 (iresnet key names)."""

    def __init__(self, layers: Sequence[int], width: int, stage: int, stem_kernel: int = 3):
        super().__init__()
        self.stage = stage
        self.conv1 = nn.Conv2d(3, width, kernel_size=stem_kernel, stride=1, padding=stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5)
        self.prelu = nn.PReLU(width)
        cin = width
        for i in range(stage):
            cout = width * 2 ** i
            n = layers[i] if i + 1 < stage else 1
            blocks = [IBasicBlock(cin, cout, stride=1)] + [IBasicBlock(cout, cout) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.trunk_bn: ContinuationNorms | None = None

    def front_parameters(self) -> list[nn.Parameter]:
        """The branch network's own parameters (without its trunk BN copies)."""
        return [p for n, p in self.named_parameters() if not n.startswith("trunk_bn.")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, r, r)`` -> the implant-point map ``(N, C_s, r, r)``."""
        x = self.prelu(self.bn1(self.conv1(x)))
        for i in range(1, self.stage + 1):
            x = getattr(self, f"layer{i}")(x)
        return x


def _eval_bn(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``bn`` applied with its running statistics whatever its mode (shared-BN branches)."""
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class BTNet(IResNet):
    """Trunk + branches: ``(N, 3, H, W)`` in [-1, 1] -> ``(N, embedding_size)`` (see module doc).

    Attributes beyond the backbone contract: ``input_sizes`` (the sizes served natively,
    trunk first), ``branch_sizes`` (descending), ``branch_order`` (as given), ``indicator``,
    ``rule``, ``resize_filter``, ``shared_bn``.
    """

    def __init__(self, layers: tuple[int, int, int, int], *, embedding_size: int = 512, image_size: int = 112,
                 branches: Sequence[int] = (28, 14, 7), shared_bn: bool = False, indicator: str = "max",
                 rule: str = "ceil", resize_filter: str = "bicubic", pooling: str = "flatten",
                 dropout: float = 0.0, width: int = 64, stem7x7: bool = False):
        super().__init__(layers, embedding_size=embedding_size, image_size=image_size, pooling=pooling,
                         dropout=dropout, width=width, stem7x7=stem7x7)
        problems = branch_problems(image_size, list(branches))
        if problems:
            raise ValueError("; ".join(problems))
        self.layer_counts = tuple(layers)
        self.trunk_size = image_size
        self.branch_order = tuple(int(r) for r in branches)
        self.branch_sizes = tuple(sorted(self.branch_order, reverse=True))
        self.input_sizes = tuple((s, s) for s in (image_size, *self.branch_sizes))
        self.indicator, self.rule, self.resize_filter = indicator, rule, resize_filter
        self.shared_bn = bool(shared_bn)
        self.branches = nn.ModuleDict()
        for r in self.branch_sizes:
            branch = Branch(layers, width, branch_stage(image_size, r), stem_kernel=7 if stem7x7 else 3)
            init_conv_bn(branch, conv_std=0.1)
            if not self.shared_bn:
                branch.trunk_bn = ContinuationNorms(self, branch.stage)
            self.branches[str(r)] = branch
        self.copy_trunk_to_branches()

    # -- weights ----------------------------------------------------------------------------
    def copy_trunk_to_branches(self) -> None:
        """Initialise every branch (and its trunk BN copies) from the trunk's weights, as the
        original initialises a BNet from its TNet."""
        full = self.complete_state_dict(self.trunk_state_dict(), force=True)
        self.load_state_dict(full, strict=True)

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """The trunk's tensors: an InsightFace iresnet state dict."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("branches.")}

    def branch_keys_from_trunk(self, r: int) -> dict[str, str]:
        """``{branch key: trunk key it is initialised from}`` for branch ``r`` (and its BN copies)."""
        out = {}
        prefix = f"branches.{r}."
        for key in self.branches[str(r)].state_dict():
            source = key[len("trunk_bn."):] if key.startswith("trunk_bn.") else key
            out[prefix + key] = source
        return out

    def complete_state_dict(self, state: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        """A full state dict from a trunk-only one (an iresnet / TNet checkpoint): every branch
        key is taken from the trunk key of the same name. ``state`` is returned unchanged when
        it holds any branch key (unless ``force``) or lacks trunk keys."""
        if not force and any(k.startswith("branches.") for k in state):
            return state
        out = dict(state)
        for r in self.branch_sizes:
            for key, source in self.branch_keys_from_trunk(r).items():
                if source in state:
                    value = state[source]
                    out[key] = value.clone() if isinstance(value, torch.Tensor) else value
        return out

    def import_state_dicts(self, states: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
        """Merge the original's full-network checkpoints into one state dict of this model.

        ``states[0]`` is the TNet (an iresnet state dict), ``states[1:]`` one BNet per branch in
        the order of ``branch_order`` (the ``branches`` option). A BNet is a whole iResNet built
        at its resolution (no ``layer1.0.downsample``): its front becomes ``branches.<r>.*``,
        its continuation BN layers ``branches.<r>.trunk_bn.*``; its other continuation tensors
        (convolutions, PReLUs, fc) must equal the TNet's. ValueError names the file and key.
        """
        if len(states) != 1 + len(self.branch_order):
            raise ValueError(f"btnet with branches {list(self.branch_order)} merges 1 TNet + "
                             f"{len(self.branch_order)} BNet checkpoints, got {len(states)} files")
        trunk, out = dict(states[0]), dict(states[0])
        expected = {k for k in trunk if not k.startswith("layer1.0.downsample.")}
        for r, state, name in zip(self.branch_order, states[1:], names[1:]):
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            if missing or extra:
                detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
                raise ValueError(f"{name}: not a BTNet BNet{r} checkpoint of this depth and width "
                                 f"({len(missing)} keys missing, {len(extra)} unexpected; {detail})")
            taken = set()
            for key, source in self.branch_keys_from_trunk(r).items():
                out[key] = state[source]
                taken.add(source)
            for key in sorted(expected - taken):
                if key.endswith("num_batches_tracked"):
                    continue
                if tuple(state[key].shape) != tuple(trunk[key].shape) or not torch.equal(state[key], trunk[key]):
                    hint = " (its BN layers differ: use shared_bn = false)" if self.shared_bn else ""
                    raise ValueError(f"{name}: '{key}' differs from the TNet's; a BNet{r} checkpoint shares the "
                                     f"trunk's weights after its implant point{hint}")
        return out

    # -- describe ---------------------------------------------------------------------------
    def trunk_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("branches.")]

    def complexity_table(self) -> list[dict[str, Any]]:
        """Rows for `facebone describe`: each path, the input size it serves and its learnable
        parameters (BN running statistics excluded); branches list their trunk BN copies apart."""
        rows = [{"part": "trunk (TNet)", "input_size": self.trunk_size,
                 "params": sum(p.numel() for p in self.trunk_parameters())}]
        for r in self.branch_sizes:
            b = self.branches[str(r)]
            bn = sum(p.numel() for p in b.trunk_bn.parameters()) if b.trunk_bn is not None else 0
            rows.append({"part": f"BNet{r} (layer{b.stage}.0 implant)", "input_size": r,
                         "params": sum(p.numel() for p in b.front_parameters()), "trunk BN copy": bn})
        return rows

    # -- forward ----------------------------------------------------------------------------
    def route(self, h: int, w: int) -> int:
        """The path (trunk size or branch size) serving an ``h`` x ``w`` input."""
        return route(h, w, (self.trunk_size, *self.branch_sizes), indicator_kind=self.indicator, rule=self.rule)

    def _resize(self, x: torch.Tensor, r: int) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (r, r):
            return x
        mode = self.resize_filter
        kwargs: dict[str, Any] = {} if mode in ("nearest", "area") else {
            "align_corners": False, "antialias": True}
        return F.interpolate(x, size=(r, r), mode=mode, **kwargs)

    def _continue(self, x: torch.Tensor, r: int) -> torch.Tensor:
        """The trunk from the implant point of branch ``r`` to the embedding, each BN layer being
        the branch's copy (or, with ``shared_bn``, the trunk's own with its running statistics)."""
        branch = self.branches[str(r)]
        copies = branch.trunk_bn

        def norm(trunk_bn: nn.Module, copy_holder: nn.Module | None, name: str) -> Any:
            if copy_holder is None:
                return lambda t: _eval_bn(trunk_bn, t)
            return getattr(copy_holder, name)

        for k in range(branch.stage, 5):
            layer = getattr(self, f"layer{k}")
            for i in range(1 if k == branch.stage else 0, len(layer)):
                block = layer[i]
                held = None if copies is None else getattr(copies, f"layer{k}")[str(i)]
                out = block.conv1(norm(block.bn1, held, "bn1")(x))
                out = block.conv2(block.prelu(norm(block.bn2, held, "bn2")(out)))
                out = norm(block.bn3, held, "bn3")(out)
                if block.downsample is not None:
                    ds_copy = None if held is None else held.downsample
                    x = norm(block.downsample[1], ds_copy, "1")(block.downsample[0](x))
                x = out + x
        x = self.dropout(self.pool(norm(self.bn2, copies, "bn2")(x)))
        return norm(self.features, copies, "features")(self.fc(x))

    def forward_trunk(self, x: torch.Tensor, implant_stage: int | None = None) -> Any:
        """The trunk on ``(N, 3, T, T)``; with ``implant_stage`` also the block-0 output of that stage."""
        if implant_stage is None:
            return IResNet.forward(self, x)
        x = self.prelu(self.bn1(self.conv1(x)))
        feat = None
        for k in range(1, 5):
            layer = getattr(self, f"layer{k}")
            for i, block in enumerate(layer):
                x = block(x)
                if k == implant_stage and i == 0:
                    feat = x
        x = self.dropout(self.pool(self.bn2(x)))
        return self.features(self.fc(x)), feat

    def forward_branch(self, x: torch.Tensor, r: int, implant: bool = False) -> Any:
        """Branch ``r`` on ``(N, 3, r, r)``: the embedding, and the implant map with ``implant``."""
        feat = self.branches[str(r)](x)
        emb = self._continue(feat, r)
        return (emb, feat) if implant else emb

    def forward(self, x: torch.Tensor, branch: int | None = None, implant: bool = False) -> Any:
        """Embeddings of a batch of one size, routed by that size (or by ``branch``)."""
        r = self.route(int(x.shape[-2]), int(x.shape[-1])) if branch is None else int(branch)
        if r != self.trunk_size and str(r) not in self.branches:
            raise ValueError(f"btnet has no path for {r}x{r}; it serves {[s for s, _ in self.input_sizes]}")
        x = self._resize(x, r)
        if r == self.trunk_size:
            if implant:
                raise ValueError("implant=True needs a branch (the trunk has no single implant point)")
            return IResNet.forward(self, x)
        return self.forward_branch(x, r, implant)
