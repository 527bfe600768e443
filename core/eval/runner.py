"""Run an experiment's evaluators on a model and record their metrics."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebone.contracts import EvalContext
from facebone.eval.embedder import Embedder
from facebone.errors import PluginError
from facebone.rundir import RunDir


def make_embedder(exp: Any, model: nn.Module, device: torch.device) -> Embedder:
    """The embedder of an experiment's ``[embed]`` table."""
    return Embedder(model, image_size=exp.data.image_size, batch_size=exp.embed.batch_size, flip=exp.embed.flip,
                    precision=exp.embed.precision, channels_last=exp.embed.channels_last,
                    compile=exp.embed.compile, device=device)


def _check_metrics(spec: Any, result: Any) -> dict[str, float]:
    where = f"evaluator '{spec.type}' ({spec.component.provider})"
    if not isinstance(result, dict):
        raise PluginError(f"{where} returned {type(result).__name__}, expected a dict of metric name -> float")
    out = {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise PluginError(f"{where} returned a metric name {key!r} that is not a string")
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            raise PluginError(f"{where} returned metric '{key}' = {value!r}, not a number") from None
    return out


def run_evaluators(exp: Any, model: nn.Module, run_dir: RunDir | Path, device: torch.device, *, step: int,
                   checkpoint: str | None = None, log: Any = None) -> dict[str, float]:
    """Run every ``[[eval]]`` on ``model``; merge the metrics into ``run_dir/results.json``."""
    if not exp.evals:
        return {}
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    embedder = make_embedder(exp, model, device)
    metrics: dict[str, float] = {}
    for spec in exp.evals:
        name = spec.core["name"]
        evaluator = spec.build(data_root=exp.data_root)
        context = EvalContext(out_dir=run.eval_dir(name), name=name, device=str(device),
                              extra={"step": step})
        context.out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        result = _check_metrics(spec, evaluator(embedder, context))
        if log is not None:
            log(f"eval '{name}': {len(result)} metrics in {time.perf_counter() - start:.1f}s")
        metrics.update(result)
    run.record_results(metrics, step=step, checkpoint=checkpoint)
    return metrics


def format_metrics_table(metrics: dict[str, float]) -> str:
    """One aligned table: metric | value."""
    if not metrics:
        return "(no metrics)"
    width = max(len(k) for k in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
    for key in sorted(metrics):
        value = metrics[key]
        text = "nan" if math.isnan(value) else f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)
