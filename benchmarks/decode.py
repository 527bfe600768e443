"""Images decoded and augmented per second in one worker (one thread), per decoder:
torchvision (libjpeg-turbo) vs PIL, on 112x112 JPEGs, through the real TrainingSet path
(decode, flip, normalise). Prints JSON with the ratio torchvision / PIL.

    python benchmarks/decode.py [--images 2000] [--size 112]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", type=int, default=112)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from facebone.data.dataset import Degradation, open_training_set
    from facebone.data.synth import generate_synthetic

    tmp = Path(tempfile.mkdtemp())
    ids = max(2, args.images // 20)
    generate_synthetic(tmp, identities=ids, images_per_identity=20, holdout_identities=2, pairs=2,
                       image_size=args.size, progress=False)
    results = {}
    for decoder in ("torchvision", "pil"):
        for deg_name, deg in (("", None), ("_degrade", Degradation(sizes=(28, 56), p=1.0))):
            ds = open_training_set(tmp, image_size=args.size, decoder=decoder, degradation=deg)
            n = len(ds)
            for i in range(min(50, n)):
                ds[(i, i)]
            t = time.perf_counter()
            for i in range(n):
                ds[(i, i)]
            results[f"{decoder}{deg_name}_images_per_s"] = n / (time.perf_counter() - t)
    results["ratio_torchvision_vs_pil"] = results["torchvision_images_per_s"] / results["pil_images_per_s"]
    results.update(images=ids * 20, image_size=args.size, threads=1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
