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
from facebone.errors import EvaluationError, FaceboneError, PluginError
from facebone.plugin.build import debug_enabled
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


def _run_one(spec: Any, exp: Any, embedder: Embedder, run: RunDir, device: torch.device, step: int) -> dict[str, float]:
    name = spec.core["name"]
    evaluator = spec.build(data_root=exp.data_root)
    context = EvalContext(out_dir=run.eval_dir(name), name=name, device=str(device), extra={"step": step})
    context.out_dir.mkdir(parents=True, exist_ok=True)
    return _check_metrics(spec, evaluator(embedder, context))


def _failure_text(spec: Any, exc: BaseException) -> str:
    if isinstance(exc, FaceboneError):
        return str(exc).replace("\n", " ")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"evaluator '{spec.type}' ({spec.component.provider}) raised {type(exc).__name__}: {first}".rstrip(": ")


def run_evaluators(exp: Any, model: nn.Module, run_dir: RunDir | Path, device: torch.device, *, step: int,
                   checkpoint: str | None = None, log: Any = None, rerun: str | None = None) -> dict[str, float]:
    """Run every ``[[eval]]`` on ``model``; merge the metrics into ``run_dir/results.json``.

    An evaluator that fails does not stop the others: what succeeded is recorded, the failures
    are recorded under ``"eval_errors"``, and then, when a saved ``checkpoint`` was evaluated, an
    :class:`EvaluationError` names each failure, says the checkpoint is kept and how to rerun
    ``facebone eval``. Without a checkpoint (a periodic evaluation during training) failures are
    only logged, so training goes on. ``rerun`` is the command the message suggests (default
    ``facebone eval RUN_DIR``). ``FACEBONE_DEBUG=1`` lets a plugin's exception through.
    """
    if not exp.evals:
        return {}
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    embedder = make_embedder(exp, model, device)
    metrics: dict[str, float] = {}
    failures: dict[str, str] = {}
    for index, spec in enumerate(exp.evals):
        name = spec.core["name"]
        start = time.perf_counter()
        try:
            result = _run_one(spec, exp, embedder, run, device, step)
        except Exception as exc:  # noqa: BLE001 - one evaluator failing must not lose the others' results
            if debug_enabled() and not isinstance(exc, FaceboneError):
                raise
            failures[name] = _failure_text(spec, exc)
            if log is not None:  # a saved checkpoint's failures end in one error line that says it all
                said = failures[name] if checkpoint is None else f"{type(exc).__name__} (reported at the end)"
                log(f"eval '{name}' ([[eval]] #{index + 1}) FAILED: {said}")
            continue
        if log is not None:
            log(f"eval '{name}': {len(result)} metrics in {time.perf_counter() - start:.1f}s")
        metrics.update(result)
    run.record_results(metrics, step=step, checkpoint=checkpoint, errors=failures)
    if failures and checkpoint is not None:
        done = f"{len(exp.evals) - len(failures)} other evaluator(s) succeeded (metrics in {run.results}); " \
            if len(failures) < len(exp.evals) else ""
        what = "; ".join(f"'{n}': {text}" for n, text in failures.items())
        raise EvaluationError(f"{len(failures)} of {len(exp.evals)} evaluator(s) failed: {what}. {done}the checkpoint "
                              f"{checkpoint} is kept; after fixing, rerun `{rerun or f'facebone eval {run.path}'}`")
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
