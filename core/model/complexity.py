"""Model complexity: parameters and FLOPs of one forward pass, counted by torch.utils.flop_counter.

Units: ``macs`` are multiply-accumulates (what InsightFace and most face-recognition papers
call "FLOPs"/"GFLOPs"); ``flops`` = 2 x ``macs`` (one multiply + one add), torch's
convention. Only matrix products and convolutions are counted (BN, activations, additions
and pooling are left out, as in the papers' tables).
"""
from __future__ import annotations

from typing import Any


def _hw(input_size: Any) -> tuple[int, int]:
    if isinstance(input_size, int):
        return input_size, input_size
    h, w = input_size
    return int(h), int(w)


def count(model: Any, input_size: Any = None) -> dict[str, int]:
    """``{"params", "flops", "macs"}`` of ``model`` for one ``(1, 3, H, W)`` image.

    ``input_size`` is an int or ``(H, W)``; default: the model's ``input_size`` attribute.
    The model's training mode is restored afterwards.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    h, w = _hw(input_size if input_size is not None else model.input_size)
    params = sum(p.numel() for p in model.parameters())
    ref = next(iter(model.parameters()), None)
    x = torch.zeros(1, 3, h, w, device=ref.device if ref is not None else "cpu",
                    dtype=ref.dtype if ref is not None else torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    return {"params": int(params), "flops": flops, "macs": flops // 2}


def format_row(name: str, c: dict[str, int]) -> tuple[str, str, str, str]:
    """Table cells: name, params (M), MACs (G), FLOPs (G)."""
    return name, f"{c['params'] / 1e6:.2f}M", f"{c['macs'] / 1e9:.3f}G", f"{c['flops'] / 1e9:.3f}G"


def describe_lines(c: dict[str, int], input_size: Any) -> list[str]:
    """Lines for `facebone describe backbone NAME`."""
    h, w = _hw(input_size)
    return [f"parameters: {c['params']:,} ({c['params'] / 1e6:.2f}M)",
            f"compute at {h}x{w}: {c['macs'] / 1e9:.3f} GMACs = {c['flops'] / 1e9:.3f} GFLOPs "
            "(FLOPs = 2 x multiply-accumulates; InsightFace's 'GFLOPs' are MACs)"]


def table_lines(model: Any) -> list[str]:
    """An aligned table of a backbone's ``complexity_table()`` rows (see facebone.contracts):
    part, input size, parameters, MACs of a forward at that size, then any further keys."""
    rows = list(model.complexity_table())
    if not rows:
        return []
    extra = [k for row in rows for k in row if k not in ("part", "input_size", "params")]
    extra = list(dict.fromkeys(extra))
    header = ["part", "input", "params", "GMACs", *extra]
    cells = [header]
    for row in rows:
        c = count(model, row["input_size"])
        h, w = _hw(row["input_size"])
        cells.append([str(row["part"]), f"{h}x{w}", f"{row['params']:,}", f"{c['macs'] / 1e9:.2f}",
                      *[f"{row[k]:,}" if isinstance(row.get(k), int) else str(row.get(k, "")) for k in extra]])
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    return ["  ".join(v.ljust(widths[j]) if j == 0 else v.rjust(widths[j]) for j, v in enumerate(r)) for r in cells]
