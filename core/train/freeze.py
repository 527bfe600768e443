"""``[train] freeze``: glob patterns on parameter names that do not train, and the batch-norm policy.

Names are those of the training modules: the model's own (``warp.*``, ``backbone.*``), then
``classifier.weight``, ``head.*`` and ``objective.*``. A pattern matches a name by
``fnmatch`` (``*`` crosses dots) or as a module prefix (``backbone.layer1`` freezes everything
under it). A pattern that matches nothing is a ConfigError naming the closest names.

``freeze_bn = "frozen"`` keeps every batch-norm layer whose parameters are all frozen (or,
without affine parameters, whose name is matched) in eval mode while training: its running
statistics stay as loaded and it normalises with them. ``"update"`` lets them follow the data.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any, Iterable

from torch import nn

BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


@dataclasses.dataclass
class FreezeSummary:
    """What freezing left: parameter counts, and the batch-norm layers held in eval mode."""

    total: int
    trainable: int
    frozen_tensors: int
    held_bn: list[str]
    note: str = ""

    def line(self) -> str:
        frozen = self.total - self.trainable
        text = f"{self.total:,} parameters, {self.trainable:,} train"
        if frozen:
            text += f", {frozen:,} frozen ({self.frozen_tensors} tensors)"
        if self.held_bn:
            text += f", {len(self.held_bn)} batch-norm layers hold their statistics"
        return text + (f" ({self.note})" if self.note else "")


def named_parameters(modules: dict[str, nn.Module]) -> dict[str, nn.Parameter]:
    """Every parameter under its freeze name: ``model`` unprefixed, the other modules prefixed."""
    out: dict[str, nn.Parameter] = {}
    for prefix, module in modules.items():
        for name, param in module.named_parameters():
            out[name if prefix == "model" else f"{prefix}.{name}"] = param
    return out


def _named_modules(modules: dict[str, nn.Module]) -> Iterable[tuple[str, nn.Module]]:
    for prefix, module in modules.items():
        for name, sub in module.named_modules():
            full = name if prefix == "model" else f"{prefix}.{name}" if name else prefix
            yield full, sub


def matches(name: str, pattern: str) -> bool:
    """True if ``name`` is matched by the glob ``pattern`` or lies under the module ``pattern``."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def closest(pattern: str, names: list[str], n: int = 3) -> list[str]:
    """The names (and module prefixes) nearest to ``pattern``."""
    prefixes = {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 1)}
    candidates = sorted(set(names) | prefixes)
    stem = pattern.replace("*", "").replace("?", "").strip(".")
    found = difflib.get_close_matches(stem, candidates, n=n, cutoff=0.3)
    return found or candidates[:n]


def check_patterns(patterns: Iterable[str], names: list[str], where: str = "[train] freeze") -> list[str]:
    """One problem per pattern that matches no name."""
    problems = []
    for pattern in patterns:
        if not any(matches(name, pattern) for name in names):
            near = ", ".join(repr(c) for c in closest(pattern, names))
            problems.append(f"{where}: pattern {pattern!r} matches no parameter (closest names: {near})")
    return problems


def apply_freeze(modules: dict[str, nn.Module], patterns: Iterable[str], *, bn_policy: str = "frozen",
                 where: str = "[train] freeze") -> FreezeSummary:
    """Set ``requires_grad=False`` on matched parameters and apply the batch-norm policy."""
    from facebone.errors import ConfigError

    patterns = list(patterns)
    params = named_parameters(modules)
    problems = check_patterns(patterns, list(params), where)
    if problems:
        raise ConfigError(problems)
    for name, param in params.items():
        if any(matches(name, p) for p in patterns):
            param.requires_grad_(False)
    held = []
    if bn_policy == "frozen" and patterns:
        for name, module in _named_modules(modules):
            if isinstance(module, BN_TYPES) and _bn_frozen(name, module, patterns):
                module.register_forward_pre_hook(_hold_statistics)
                held.append(name)
    return summarise(modules, held)


def _bn_frozen(name: str, module: nn.Module, patterns: list[str]) -> bool:
    own = list(module.parameters(recurse=False))
    if own:
        return all(not p.requires_grad for p in own)
    return any(matches(f"{name}.weight", p) or matches(name, p) for p in patterns)


def _hold_statistics(module: nn.Module, args: Any) -> None:
    """Forward pre-hook: this batch-norm layer runs in eval mode whatever the model's mode."""
    if module.training:
        module.train(False)


def summarise(modules: dict[str, nn.Module], held: list[str] | None = None) -> FreezeSummary:
    """Counts over every parameter (frozen ones include those a component itself does not train)."""
    params = list(named_parameters(modules).values())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return FreezeSummary(total, trainable, sum(1 for p in params if not p.requires_grad), held or [])
