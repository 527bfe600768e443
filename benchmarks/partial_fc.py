"""Classifier forward + backward time and peak memory: full softmax against Partial FC.

For each class count (default 100k, 1M, 2M; 512-D embeddings, global batch 128) this measures
one training step of facebone's classifier (cosines, a CosFace margin, the distributed
cross-entropy, backward into embeddings and centres): ``full`` in one process, ``partial_fc``
with sample_rate 0.1 in one process, and both again over 2 gloo processes on this machine
(the global batch split 64 + 64, the centres split in two). It prints one JSON object with
every figure and the ratios full / partial_fc, and 1 process / 2 processes.

Memory is measured, not estimated: each configuration runs in a fresh process, and its peak
is the peak resident set size (``ru_maxrss``) minus the resident size just before the
classifier is built; that includes the centres, their gradient and every buffer of the step.
On CUDA (``--device cuda``) it is ``torch.cuda.max_memory_allocated``. A configuration whose
predicted peak (scaled from the smallest one) does not fit in the memory available now is
skipped, and the JSON says so.

    python benchmarks/partial_fc.py                      # CPU: about 25 min on 2 busy cores
    python benchmarks/partial_fc.py --classes 100000 --steps 2
    python benchmarks/partial_fc.py --device cuda --no-distributed --classes 1000000 2000000 8000000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def cosface(cosine: Any, labels: Any, scale: float = 64.0, margin: float = 0.4) -> Any:
    """A CosFace margin that skips rows whose class is not among the columns (label -1)."""
    import torch

    logits = cosine.clamp(-1.0, 1.0)
    rows = torch.nonzero(labels >= 0).squeeze(1)
    logits = logits.index_put((rows, labels[rows]), logits[rows, labels[rows]] - margin)
    return logits * scale


def measure(args: argparse.Namespace, rank: int = 0, world: int = 1) -> dict[str, Any]:
    """Build the classifier and time ``args.steps`` steps after one warm-up step, in this process."""
    import torch

    torch.set_num_threads(args.threads)
    from facebone.train.classifier import Classifier

    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    n = args.batch // world
    embeddings = torch.randn(args.batch, args.dim, generator=g)[rank * n:(rank + 1) * n].to(device)
    label_sets = [torch.randint(0, args.classes, (args.batch,), generator=g)[rank * n:(rank + 1) * n].to(device)
                  for _ in range(args.steps + 1)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    base_rss = rss_bytes()
    rate = args.sample_rate if args.mode == "partial_fc" else 1.0
    clf = Classifier(args.classes, args.dim, type=args.mode, sample_rate=rate, seed=0).to(device)
    times = []
    for labels in label_sets:
        x = embeddings.clone().requires_grad_(True)
        clf.weight.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        cosine, local, _ = clf(x, labels)
        loss = clf.cross_entropy(cosface(cosine, local), local)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        del cosine, local, loss
    out: dict[str, Any] = {"seconds": sorted(times[1:])[len(times[1:]) // 2]}
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
    else:
        out["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    out["centre_bytes"] = clf.weight.numel() * 4
    return out


def _rank_main(rank: int, world: int, args: argparse.Namespace, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=world)
    result = measure(args, rank, world)
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def worker(args: argparse.Namespace) -> None:
    """One configuration, in this fresh process (or 2 spawned ones): prints its JSON."""
    if args.world == 1:
        print(json.dumps(measure(args)))
        return
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_rank_main, args=(args.world, args, tmp), nprocs=args.world, join=True)
        ranks = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(args.world)]
    print(json.dumps({"seconds": max(r["seconds"] for r in ranks),
                      "peak_bytes": sum(r["peak_bytes"] for r in ranks),
                      "peak_bytes_per_rank": max(r["peak_bytes"] for r in ranks),
                      "centre_bytes": sum(r["centre_bytes"] for r in ranks)}))


def run_config(args: argparse.Namespace, classes: int, mode: str, world: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--classes", str(classes), "--mode", mode, "--world", str(world),
           "--dim", str(args.dim), "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device,
           "--sample-rate", str(args.sample_rate), "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, nargs="+", default=[100_000, 1_000_000, 2_000_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--batch", type=int, default=128, help="global batch")
    p.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step); the median is shown")
    p.add_argument("--sample-rate", type=float, default=0.1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--no-distributed", action="store_true", help="skip the 2-process columns")
    p.add_argument("--margin-gb", type=float, default=3.0, help="memory to leave free for others")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    p.add_argument("--world", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.classes = args.classes[0]
        worker(args)
        return
    import torch

    worlds = [1] if args.no_distributed or args.device != "cpu" else [1, 2]
    report: dict[str, Any] = {
        "what": "classifier forward+backward (cosine, CosFace margin, distributed cross-entropy), median step",
        "device": args.device, "cpu": _cpu_name(), "torch": torch.__version__, "threads_per_process": args.threads,
        "dim": args.dim, "global_batch": args.batch, "sample_rate": args.sample_rate, "rows": []}
    per_class: dict[tuple[str, int], float] = {}
    for classes in sorted(args.classes):
        row: dict[str, Any] = {"classes": classes}
        for world in worlds:
            for mode in ("full", "partial_fc"):
                key = f"{mode}_{world}proc"
                # measured bytes per class of the last size, else centres + gradient + 4 (N, C) buffers
                fallback = 8 * args.dim + 16 * args.batch * (args.sample_rate if mode == "partial_fc" else 1.0)
                predicted = per_class.get((mode, world), fallback) * classes
                free = available_bytes() if args.device == "cpu" else None
                if free is not None and predicted > free - args.margin_gb * 2**30:
                    row[key] = {"skipped": f"predicted peak {predicted / 2**30:.1f} GiB > {free / 2**30:.1f} GiB "
                                           f"available minus {args.margin_gb} GiB margin"}
                    continue
                result = run_config(args, classes, mode, world)
                row[key] = result
                if "peak_bytes" in result:  # the largest measured size predicts the next one best
                    per_class[(mode, world)] = result["peak_bytes"] / classes
                print(f"{classes:>9} {key:<16} {json.dumps(result)}", file=sys.stderr, flush=True)
        for world in worlds:
            full, pfc = row.get(f"full_{world}proc", {}), row.get(f"partial_fc_{world}proc", {})
            if "seconds" in full and "seconds" in pfc:
                row[f"full_over_pfc_{world}proc"] = {"time": full["seconds"] / pfc["seconds"],
                                                     "memory": full["peak_bytes"] / pfc["peak_bytes"]}
        for mode in ("full", "partial_fc"):
            one, two = row.get(f"{mode}_1proc", {}), row.get(f"{mode}_2proc", {})
            if "seconds" in one and "seconds" in two:
                row[f"{mode}_1proc_over_2proc"] = {"time": one["seconds"] / two["seconds"],
                                                   "memory_per_rank": one["peak_bytes"] / two["peak_bytes_per_rank"]}
        report["rows"].append(row)
    print(json.dumps(report, indent=1))


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
