"""Every registered head on the quickstart: held-out accuracy, VAL@FAR and time per step.

    python benchmarks/heads.py [--steps 420] [--heads arcface,cosface] [--threads 2] [--out DIR]

Trains experiments/quickstart.toml (narrow iResNet-18, 300 synthetic identities, 32 px) once per
head through facebone's own API: the experiment is read as it is, its [head] table is replaced
by ``--set head.type=NAME`` and ``head.scale=32`` (the quickstart's scale), so that every head
runs at its published defaults apart from the scale. The quickstart's length is 420 steps (6
epochs of 70, one epoch of warm-up); ``--steps`` trains fewer, with the warm-up shortened in
proportion (one sixth of the run), and the held-out verification then scores lower. Each run is
a fresh training with the same seed, data and schedule.

Prints one JSON object: per head the held-out 10-fold accuracy and VAL@FAR=1e-3, the mean
training-step time (forward, backward, update; data loading excluded) and its ratio to
``arcface`` measured in the same run, plus the head alone (forward+backward on a 128 x 300
cosine matrix) against a plain scaled softmax (s*cos), the baseline every head builds on.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from facebone.experiment.config import apply_overrides, read_toml, validate
from facebone.plugin.discovery import get_plugins
from facebone.plugin.options import build_options, describe_options
from facebone.rundir import RunDir
from facebone.train.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.toml"
FULL_STEPS = 420


class TimedTrainer(Trainer):
    """The core trainer, timing each training step (not the data loading between steps)."""

    step_times: list[float]

    def _step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        loss = super()._step(*args, **kwargs)
        self.step_times = getattr(self, "step_times", [])
        self.step_times.append(time.perf_counter() - start)
        return loss


def experiment(name: str, steps: int, data: Path, out: Path, threads: int):  # type: ignore[no-untyped-def]
    raw = read_toml(QUICKSTART)
    raw["head"] = {}
    overrides = [f"head.type={name}", f"train.max_steps={steps}", f"train.num_threads={threads}",
                 f"experiment.name=heads_{name}", f'experiment.output_dir="{out}"', f'data.train="{data}"']
    if steps < FULL_STEPS:
        overrides.append(f"train.warmup_epochs={steps / FULL_STEPS:.6f}")  # the quickstart: 1 of 6 epochs
    if "scale" in {i.name for i in describe_options(get_plugins().get("head", name).options)}:
        overrides.append("head.scale=32.0")
    if name == "subcenter":  # K centres per class live in the core's classifier
        overrides.append("classifier.subcenters=3")
    raw = apply_overrides(raw, overrides, str(QUICKSTART))
    return validate(raw, source=str(QUICKSTART), default_name="quickstart")


def train(name: str, steps: int, data: Path, out: Path, threads: int) -> dict:
    from facebone.commands.run import prepare_data

    exp = experiment(name, steps, data, out, threads)
    prepare_data(exp)
    run_dir = RunDir.create(exp.experiment.output_dir, exp.name, overwrite=True)
    trainer = TimedTrainer(exp, run_dir, log=lambda message: None, progress=False)
    metrics = trainer.fit()
    times = trainer.step_times[1:] or trainer.step_times  # the first step pays one-off costs
    return {"accuracy": round(metrics["holdout/accuracy"], 4),
            "accuracy_std": round(metrics["holdout/accuracy_std"], 4),
            "val@far1e-3": round(metrics["holdout/val@far1e-3"], 4),
            "step_ms": round(1000 * statistics.mean(times), 1), "head": exp.head.resolved()}


def head_alone_ms(name: str, repeats: int = 30) -> float:
    """Forward + backward of the head alone on a (128, 300) cosine matrix, best of ``repeats``."""
    comp = get_plugins().get("head", name)
    options, _ = build_options(comp.options, {}, name)
    head = comp.factory(options, num_classes=300, embedding_size=128, seed=0)
    g = torch.Generator().manual_seed(0)
    cos = (torch.rand(128, 300, generator=g) * 2 - 1).requires_grad_(True)
    norms = (torch.rand(128, 1, generator=g) * 20 + 5).requires_grad_(True)
    labels = torch.randint(0, 300, (128,), generator=g)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = head(cos, labels, norms)
        terms = getattr(head, "loss_terms", None)
        loss = out.sum() + (sum(terms(norms).values()) if terms else 0)
        loss.backward()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def softmax_alone_ms(repeats: int = 30) -> float:
    g = torch.Generator().manual_seed(0)
    cos = (torch.rand(128, 300, generator=g) * 2 - 1).requires_grad_(True)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        (cos * 32.0).sum().backward()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=FULL_STEPS, help=f"training steps per head ({FULL_STEPS}: the "
                                                                  "quickstart's full length)")
    ap.add_argument("--heads", default="", help="comma-separated heads (default: every registered head)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", default="", help="folder for the data and runs (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.heads.split(",") if n] or get_plugins().registry("head").names()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        rows = {}
        for name in ["arcface", *[n for n in names if n != "arcface"]]:
            rows[name] = train(name, args.steps, root / "quickstart", root / "runs", args.threads)
            print(f"# {name}: {rows[name]}", flush=True)
    softmax = softmax_alone_ms()
    for name, row in rows.items():
        row["step_vs_arcface"] = round(row["step_ms"] / rows["arcface"]["step_ms"], 3)
        alone = head_alone_ms(name)
        row["head_alone_ms"] = round(alone, 3)
        row["head_alone_vs_scaled_softmax"] = round(alone / softmax, 2)
    if "arcface" not in names:
        rows.pop("arcface")
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(json.dumps({
        "experiment": "experiments/quickstart.toml with [head] = {type, scale = 32}, every other head option "
                      "at its published default",
        "steps": args.steps, "full_quickstart_steps": FULL_STEPS,
        "note": "" if args.steps >= FULL_STEPS else f"shortened: {args.steps} of {FULL_STEPS} steps",
        "threads": args.threads, "cpu": cpu, "torch": torch.__version__,
        "scaled_softmax_alone_ms": round(softmax, 3), "heads": rows}, indent=2))


if __name__ == "__main__":
    main()
