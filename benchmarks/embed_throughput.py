"""Embedding throughput: fp32 NCHW (baseline) vs the fast path (channels-last + bf16/fp16 autocast).

For each backbone: images/s of both paths at one batch size, their ratio (fast / baseline,
measured in the same run, interleaved so machine load hits both alike) and the minimum
cosine similarity between the fast and the fp32 embedding over the batch. With
``--compiled`` it also times the fast path under ``torch.compile`` with frozen weights (what
``[embed] compile = true`` uses), reporting the compile time separately. Prints JSON.

BatchNorm statistics are first set from a random batch (torch.optim.swa_utils.update_bn),
so a fresh network behaves like a trained one (untrained running statistics make deep nets'
eval activations explode, which says nothing about precision). Defaults to one intra-op
thread (``--threads``), because the development machine is shared.

    python benchmarks/embed_throughput.py --backbones iresnet50 --batch 64
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time


def _time(fn, reps: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_one(name: str, batch: int, reps: int, precision: str, image_size: int, seed: int = 0,
              compiled: bool = False) -> dict:  # type: ignore[type-arg]
    import torch
    from torch.optim.swa_utils import update_bn

    from facebone.eval import fastpath
    from facebone.model.build import build_backbone

    torch.manual_seed(seed)
    model = build_backbone(name, image_size=image_size)
    gen = torch.Generator().manual_seed(seed)
    update_bn([torch.rand(min(batch, 16), 3, image_size, image_size, generator=gen) * 2 - 1], model)
    base = fastpath.prepare(model, "fp32", channels_last=False)
    fast = fastpath.prepare(copy.deepcopy(model), precision, channels_last=True)
    x = torch.rand(batch, 3, image_size, image_size, generator=gen) * 2 - 1
    warm = x[: min(batch, 4)]
    fastpath.embed(base, warm, "fp32")
    fastpath.embed(fast, warm, precision, channels_last=True)
    out: dict[str, object] = {}
    if compiled:
        from facebone.eval.embedder import compile_frozen

        frozen = compile_frozen(copy.deepcopy(fast))
        with torch.no_grad():
            start = time.perf_counter()
            fastpath.embed(frozen, x, precision, True)  # compiles for this static shape
            out["compile_s"] = round(time.perf_counter() - start, 1)
    results: dict[str, object] = {}
    t_base, t_fast, t_comp = [], [], []
    for _ in range(reps):  # interleave so background load affects every path alike
        t_base += _time(lambda: results.__setitem__("ref", fastpath.embed(base, x, "fp32")), 1)
        t_fast += _time(lambda: results.__setitem__("fast", fastpath.embed(fast, x, precision, True)), 1)
        if compiled:
            t_comp += _time(lambda: results.__setitem__("comp", fastpath.embed(frozen, x, precision, True)), 1)
    ref, got = results["ref"], results["fast"]
    cos = torch.nn.functional.cosine_similarity(ref, got, dim=1)  # type: ignore[arg-type]
    b, f = min(t_base), min(t_fast)
    out.update({"fp32_nchw_img_s": round(batch / b, 2), "fast_img_s": round(batch / f, 2),
                "speedup": round(b / f, 3), "min_cosine": round(float(cos.min()), 6),
                "fp32_s_per_batch": [round(t, 3) for t in t_base], "fast_s_per_batch": [round(t, 3) for t in t_fast]})
    if compiled:
        c = min(t_comp)
        cos_c = torch.nn.functional.cosine_similarity(ref, results["comp"], dim=1)  # type: ignore[arg-type]
        out.update({"compiled_img_s": round(batch / c, 2), "compiled_speedup": round(b / c, 3),
                    "compiled_min_cosine": round(float(cos_c.min()), 6),
                    "compiled_s_per_batch": [round(t, 3) for t in t_comp]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="*", default=None, help="names (default: every registered backbone)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=2, help="timed batches per path (best is reported)")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: shared machine)")
    parser.add_argument("--compiled", action="store_true", help="also time the torch.compile path ([embed] compile)")
    args = parser.parse_args()

    import torch

    from facebone.eval import fastpath
    from facebone.plugin.discovery import get_plugins

    torch.set_num_threads(args.threads)
    names = args.backbones or get_plugins().registry("backbone").names()
    report = {"benchmark": "embed_throughput", "batch": args.batch, "precision": args.precision,
              "channels_last": True, "threads": args.threads, "torch": torch.__version__,
              "cpu": platform.processor() or platform.machine(), "cpu_native_bf16": fastpath.cpu_has_native_bf16(),
              "baseline": "fp32 NCHW, same weights, same process", "backbones": {}}
    for name in names:
        report["backbones"][name] = bench_one(name, args.batch, args.reps, args.precision, args.image_size,
                                              compiled=args.compiled)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
