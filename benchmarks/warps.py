"""Throughput of the batched RoI Tanh warps against a per-sample loop (the pattern of the
reference implementation: one grid built and sampled per image), measured in one run.

    python benchmarks/warps.py [--batch 64] [--size 112] [--repeats 5] [--device cpu]

Prints JSON: images/s for each warp with per-sample RoIs (batched and looped) and with the
fixed central box (cached grid), and the batched/looped ratio. Uses one CPU thread.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from facebone.plugins.warps.modules import RoITanhFamilyWarp


def _time(fn, repeats: int, device: str) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n, s, dev = args.batch, args.size, args.device
    images = torch.rand(n, 3, s, s, device=dev)
    centre = torch.rand(n, 2, device=dev) * s * 0.2 + s * 0.4
    half = torch.rand(n, 2, device=dev) * s * 0.2 + s * 0.3
    rois = torch.cat([centre - half, centre + half, torch.rand(n, 1, device=dev) - 0.5], dim=1)
    results = {"batch": n, "size": s, "device": dev, "threads": 1, "warps": {}}
    with torch.no_grad():
        for space in ("roi_tanh", "roi_tanh_polar", "roi_tanh_circular"):
            warp = RoITanhFamilyWarp(space, image_size=s).to(dev).eval()
            batched = _time(lambda: warp(images, rois), args.repeats, dev)
            looped = _time(lambda: torch.cat([warp(images[i:i + 1], rois[i:i + 1]) for i in range(n)]),
                           args.repeats, dev)
            fixed = _time(lambda: warp(images), args.repeats, dev)
            results["warps"][space] = {
                "batched_img_per_s": round(n / batched, 1), "per_sample_loop_img_per_s": round(n / looped, 1),
                "fixed_box_cached_grid_img_per_s": round(n / fixed, 1),
                "batched_over_loop": round(looped / batched, 2), "cached_over_batched": round(batched / fixed, 2)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
