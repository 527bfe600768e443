"""Does the loader keep up with training? Loader throughput (images/s, real TrainingSet +
make_loader with workers) divided by iResNet-50 training-step throughput (forward, backward,
SGD step on the same batch size, CPU) measured in one run. Goal: >= 3. Prints JSON.

iresnet50 is taken from the plugin registry (no stand-in); the script exits with a message
when it is not installed.

    python benchmarks/loader_vs_train.py [--batch 32] [--steps 3] [--workers 2] [--size 112]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=112)
    args = ap.parse_args()
    from facebone.data import generate_synthetic, make_loader, open_training_set
    from facebone.plugin.discovery import get_plugins

    try:
        comp = get_plugins().get("backbone", "iresnet50")
    except Exception as exc:  # noqa: BLE001 - reported, benchmark not runnable
        print(json.dumps({"error": f"iresnet50 is not available: {exc}"}))
        return 1
    options = comp.options() if comp.options is not None else None
    model = comp.factory(options, embedding_size=512, image_size=args.size)
    tmp = Path(tempfile.mkdtemp())
    n_img = args.batch * (args.steps + 8)
    generate_synthetic(tmp, identities=max(2, n_img // 20), images_per_identity=20, holdout_identities=2, pairs=2,
                       image_size=args.size, progress=False)
    ds = open_training_set(tmp, image_size=args.size)
    loader = make_loader(ds, batch_size=args.batch, num_workers=args.workers)
    it = iter(loader)
    next(it)  # start workers
    t = time.perf_counter()
    seen = 0
    for x, y in it:
        seen += len(y)
    loader_ips = seen / (time.perf_counter() - t)
    head = torch.nn.Linear(512, ds.num_classes)
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.01, momentum=0.9)
    model.train()
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, ds.num_classes, (args.batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(head(model(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    train_ips = args.steps * args.batch / (time.perf_counter() - t)
    print(json.dumps({"loader_images_per_s": loader_ips, "train_images_per_s": train_ips,
                      "ratio_loader_vs_train": loader_ips / train_ips, "workers": args.workers,
                      "batch": args.batch, "image_size": args.size, "torch_threads": torch.get_num_threads()},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
