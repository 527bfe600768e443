"""BTNet: embedding low-resolution faces through their branch vs upsampling them for the trunk.

For each branch size r of a btnet backbone: images/s of ``model(x_r)`` (routed to BNet-r at
r x r) and of ``model(upsample(x_r, 112))`` (the trunk, the usual way to handle a small face),
timed interleaved in the same run so machine load hits both alike; their ratio
(branch / trunk-on-upsampled), and the MACs of both paths (torch's FLOP counter). BN statistics
are first set on random batches so the nets behave like trained ones. One intra-op thread by
default (``--threads``): the development machine is shared. Prints JSON.

    python benchmarks/btnet_paths.py --backbone btnet50 --batch 32
"""
from __future__ import annotations

import argparse
import json
import platform
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="btnet50")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="backbone.KEY=VALUE")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from facebone.experiment.overrides import parse_sets
    from facebone.model.build import build_backbone
    from facebone.model.complexity import count

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_backbone(args.backbone, parse_sets(args.set)).train()
    trunk = model.trunk_size
    with torch.no_grad():
        for side in (trunk, *model.branch_sizes):
            model(torch.rand(8, 3, side, side) * 2 - 1)
    model.eval()
    rows = []
    for r in model.branch_sizes:
        x = torch.rand(args.batch, 3, r, r) * 2 - 1

        def branch() -> None:
            model(x)

        def upsampled() -> None:
            model(F.interpolate(x, size=(trunk, trunk), mode="bilinear", align_corners=False))

        times: dict[str, list[float]] = {"branch": [], "trunk_upsampled": []}
        with torch.no_grad():
            branch(), upsampled()  # warm-up
            for _ in range(args.reps):
                for name, fn in (("branch", branch), ("trunk_upsampled", upsampled)):
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
        best = {k: min(v) for k, v in times.items()}
        rows.append({"resolution": r,
                     "branch_img_per_s": round(args.batch / best["branch"], 1),
                     "trunk_upsampled_img_per_s": round(args.batch / best["trunk_upsampled"], 1),
                     "speedup": round(best["trunk_upsampled"] / best["branch"], 2),
                     "branch_gmacs": round(count(model, r)["macs"] / 1e9, 3),
                     "trunk_gmacs": round(count(model, trunk)["macs"] / 1e9, 3)})
    print(json.dumps({"backbone": args.backbone, "options": parse_sets(args.set), "batch": args.batch,
                      "threads": args.threads, "cpu": platform.processor() or platform.machine(),
                      "paths": rows}, indent=2))


if __name__ == "__main__":
    main()
