"""Embedding throughput: PyTorch fp32 (baseline), the fast paths, ONNX Runtime, and the machine's limit.

Per backbone, at one batch size and one thread count for everything (images/s, best of
``--reps`` timed batches, each method timed once per round so machine load hits all alike):

* ``fp32``: PyTorch fp32 NCHW, eager (the baseline of every ratio);
* ``autocast``: the evaluators' fast path, channels-last with fp32 weights under bf16 autocast;
* ``predictor``: what ``facebone.load(..., precision="bf16")`` runs: batch norm folded into the
  convolutions, bf16 weights, channels-last (:mod:`facebone.predict.optimize`); with
  ``--compiled`` also that module under ``torch.compile`` with frozen weights (``[embed] compile``);
* ``predictor_fp32``: the same folded network in fp32;
* ONNX Runtime (the peer: InsightFace's package embeds with it) on the graph that
  ``facebone export`` writes (:func:`facebone.weights.onnx.export_onnx`), same threads and batch:
  ``ort_fp32_noopt`` (graph optimisations off), ``ort_fp32`` (full graph optimisation),
  ``ort_int8_dynamic`` and ``ort_int8_static`` (``onnxruntime.quantization``; static: QDQ,
  per-channel, calibrated on batches like the timed one).

Each method reports images/s, its speed-up over ``fp32`` and the minimum cosine of its
embeddings against PyTorch fp32 over the batch. **The machine's limit**: a 3x3 convolution
256 -> 256 on 14 x 14 maps (iResNet's dominant layer) at the same batch, in bf16 and in fp32
channels-last, is timed in the same rounds, run 20 times in a row per timing (as long as a
model batch: load weighs on both alike); ``fraction_of_peak`` = backbone FLOPs per image x
images/s / that convolution's FLOP/s (bf16 peak for the bf16 paths, fp32 peak for the others;
none for int8). ``fraction_of_burst_peak`` uses the best single call instead, which on a shared
machine catches moments when a core is free and so is the harsher reference.
``--e2e`` adds ``facebone embed``'s whole pipeline on a folder of JPEG files (decode in a thread,
crop, network) against the network alone on the decoded crops.

BatchNorm statistics are first set from a random batch (torch.optim.swa_utils.update_bn), so a
fresh network behaves like a trained one. The report records the CPU, its bf16 support and the
load average before and after (the development machine is shared: figures are from a loaded CPU).

    python benchmarks/embed_throughput.py --backbones iresnet50 mobilefacenet --batch 32 --threads 1
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split() if "bf16" in f or f.startswith("amx"))
    except OSError:
        pass
    return []


def cosine_min(ref: Any, got: Any) -> float:
    import numpy as np

    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    c = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-30)
    return round(float(c.min()), 6)


def ort_sessions(model: Any, x: Any, size: int, threads: int, tmp: Path, quantize: bool) -> dict[str, Any]:
    """ONNX Runtime sessions on the exported graph: name -> session (or the error text)."""
    import onnxruntime as ort

    from facebone.weights.onnx import export_onnx

    path = tmp / "model.onnx"
    export_onnx(model, path, size)

    def session(p: Path, level: Any) -> Any:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = level
        return ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])

    out: dict[str, Any] = {"ort_fp32_noopt": session(path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                           "ort_fp32": session(path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)}
    if quantize:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = tmp / "pre.onnx"
        quant_pre_process(str(path), str(pre))
        try:
            quantize_dynamic(str(pre), str(tmp / "dyn.onnx"), weight_type=QuantType.QInt8)
            out["ort_int8_dynamic"] = session(tmp / "dyn.onnx", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            out["ort_int8_dynamic"] = f"failed: {exc}"
        import torch

        gen = torch.Generator().manual_seed(1)
        calib = [{"images": (torch.rand(8, *x.shape[1:], generator=gen) * 2 - 1).numpy()} for _ in range(4)]

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(calib)

            def get_next(self):  # type: ignore[no-untyped-def]
                return next(self.it, None)

        try:
            quantize_static(str(pre), str(tmp / "static.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
            out["ort_int8_static"] = session(tmp / "static.onnx", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        except Exception as exc:  # noqa: BLE001
            out["ort_int8_static"] = f"failed: {exc}"
    return out


def peak_convs(batch: int) -> dict[str, Callable[[], Any]]:
    """The reference convolutions (3x3, 256 -> 256, 14 x 14, channels-last) in bf16 and fp32: one
    call each (``burst_peak_*``: a short call's best catches the moments a shared core is free)
    and a run of :data:`SUSTAINED_CALLS` calls (``peak_*``: as long as a model batch, so machine
    load weighs on it as on the model)."""
    import torch

    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(dtype).to(memory_format=torch.channels_last)
        x = torch.randn(batch, 256, 14, 14, dtype=dtype).contiguous(memory_format=torch.channels_last)

        def once(conv=conv, x=x):  # type: ignore[no-untyped-def]
            with torch.inference_mode():
                return conv(x)

        def sustained(once=once):  # type: ignore[no-untyped-def]
            for _ in range(SUSTAINED_CALLS):
                once()

        out[f"burst_peak_{name}"] = once
        out[f"peak_{name}"] = sustained
    return out


SUSTAINED_CALLS = 20
PEAK_FLOPS_PER_CALL = lambda batch: 2 * batch * 256 * 256 * 9 * 14 * 14  # noqa: E731


def bench_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch.optim.swa_utils import update_bn

    from facebone.eval import fastpath
    from facebone.model.build import build_backbone
    from facebone.model.complexity import count
    from facebone.predict.optimize import inference_backbone, run_backbone

    batch, size = args.batch, args.image_size
    torch.manual_seed(0)
    model = build_backbone(name, image_size=size)
    gen = torch.Generator().manual_seed(0)
    update_bn([torch.rand(min(batch, 16), 3, size, size, generator=gen) * 2 - 1], model)
    model.eval()
    flops = count(model, size)["flops"]
    x = torch.rand(batch, 3, size, size, generator=gen) * 2 - 1
    xn = x.numpy()
    auto = fastpath.prepare(copy.deepcopy(model), "bf16", channels_last=True)
    fast = inference_backbone(model, precision="bf16", channels_last=True)
    fast32 = inference_backbone(model, precision="fp32", channels_last=True)
    methods: dict[str, Callable[[], Any]] = {
        "fp32": lambda: fastpath.embed(model, x, "fp32"),
        "autocast": lambda: fastpath.embed(auto, x, "bf16", channels_last=True),
        "predictor": lambda: run_backbone(fast, x),
        "predictor_fp32": lambda: run_backbone(fast32, x),
    }
    info: dict[str, Any] = {"gflops_per_image": round(flops / 1e9, 3), "batch_norms_folded": fast.folded}
    if args.compiled:
        comp = inference_backbone(model, precision="bf16", channels_last=True, compile=True)
        start = time.perf_counter()
        run_backbone(comp, x)
        info["compile_s"] = round(time.perf_counter() - start, 1)
        methods["predictor_compiled"] = lambda: run_backbone(comp, x)
    tmp = Path(tempfile.mkdtemp(prefix="fb-bench-"))
    if not args.no_ort:
        for key, sess in ort_sessions(model, x, size, args.threads, tmp, not args.no_quant).items():
            if isinstance(sess, str):
                info[key] = sess
                continue
            methods[key] = (lambda s=sess: s.run(None, {"images": xn})[0])
    methods.update(peak_convs(batch))
    outputs: dict[str, Any] = {}
    times: dict[str, list[float]] = {k: [] for k in methods}
    for fn in methods.values():  # warm-up: first-call primitive creation is not timed
        fn()
    for _ in range(args.reps):
        for key, fn in methods.items():
            start = time.perf_counter()
            outputs[key] = fn()
            times[key].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    peak = {k: PEAK_FLOPS_PER_CALL(batch) * (1 if k.startswith("burst") else SUSTAINED_CALLS) / best[k]
            for k in ("peak_bf16", "peak_fp32", "burst_peak_bf16", "burst_peak_fp32")}
    ref = outputs["fp32"].numpy() if hasattr(outputs["fp32"], "numpy") else outputs["fp32"]
    rows: dict[str, Any] = {}
    for key in methods:
        if "peak" in key:
            continue
        out = outputs[key]
        out = out.float().numpy() if hasattr(out, "numpy") else out
        img_s = batch / best[key]
        low = key in ("autocast", "predictor", "predictor_compiled")
        # int8 runs on integer units: neither float peak bounds it, so no fraction is given
        kind = "bf16" if low else "fp32"
        fraction = None if "int8" in key else round(flops * img_s / peak[f"peak_{kind}"], 3)
        burst = None if "int8" in key else round(flops * img_s / peak[f"burst_peak_{kind}"], 3)
        rows[key] = {"img_s": round(img_s, 2), "speedup_vs_fp32": round(best["fp32"] / best[key], 3),
                     "min_cosine_vs_fp32": cosine_min(ref, out), "fraction_of_peak": fraction,
                     "fraction_of_burst_peak": burst, "peak": None if fraction is None else kind,
                     "s_per_batch": [round(t, 3) for t in times[key]]}
    info["peak_gflop_s"] = {k: round(v / 1e9, 1) for k, v in peak.items()}
    counted = [r for k, r in rows.items() if k.startswith("ort") and r["min_cosine_vs_fp32"] >= 0.999]
    if counted:
        info["predictor_vs_best_ort_with_cosine_0.999"] = round(
            rows["predictor"]["img_s"] / max(r["img_s"] for r in counted), 3)
    return {**info, "methods": rows}


def bench_e2e(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """`facebone embed`'s pipeline on JPEG files (read, crop and embed, with the next batch decoded
    in a thread) vs the network alone on the decoded crops; both with the flip test."""
    import numpy as np
    import torch
    from PIL import Image
    from torch.optim.swa_utils import update_bn

    from facebone.model.build import build_backbone
    from facebone.model.face_model import FaceModel
    from facebone.plugin.build import build_component
    from facebone.plugin.discovery import get_plugins
    from facebone.predict.networks import TorchNetwork
    from facebone.predict.predictor import ModelFacts, Predictor

    size, n = args.image_size, args.e2e
    torch.manual_seed(0)
    backbone = build_backbone(name, image_size=size)
    update_bn([torch.rand(16, 3, size, size) * 2 - 1], backbone)
    comp = get_plugins().get("warp", "cartesian")
    model = FaceModel(build_component(comp, comp.options() if comp.options else None, image_size=size), backbone)
    net = TorchNetwork(model.eval(), image_size=size, flip=True, roi_warp=False, precision="bf16",
                       channels_last=True, batch_size=args.batch)
    facts = ModelFacts(image_size=size, embedding_size=backbone.embedding_size, flip=True, warp="cartesian",
                       roi_ratio=0.8, batch_size=args.batch, source=name, run_dir=None, checkpoint=None)
    predictor = Predictor(net, facts)
    folder = Path(tempfile.mkdtemp(prefix="fb-e2e-"))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    paths = []
    for i in range(n):  # smooth-ish images so JPEG sizes are realistic
        img = np.asarray(Image.fromarray(base).resize((size, size), Image.BICUBIC)).astype(np.int16)
        img = np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
        p = folder / f"{i:05d}.jpg"
        Image.fromarray(img).save(p, quality=90)
        paths.append(p)
    from facebone.predict.images import load_one

    start = time.perf_counter()
    crops = np.stack([load_one(p, str(p)) for p in paths])
    decode_s = time.perf_counter() - start
    predictor.embed(crops[: args.batch])  # warm-up
    model_s = e2e_s = float("inf")
    for _ in range(args.reps):  # alternate, so that load hits both alike; best of each
        start = time.perf_counter()
        for s in range(0, n, args.batch):
            net.embed_crops(crops[s:s + args.batch])
        model_s = min(model_s, time.perf_counter() - start)
        start = time.perf_counter()
        predictor.embed_report(paths)
        e2e_s = min(e2e_s, time.perf_counter() - start)
    return {"images": n, "decode_only_img_s": round(n / decode_s, 1), "model_only_img_s": round(n / model_s, 2),
            "end_to_end_img_s": round(n / e2e_s, 2), "end_to_end_vs_model_only": round(model_s / e2e_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="*", default=["iresnet50", "mobilefacenet"],
                        help="names (default: iresnet50 mobilefacenet; 'all': every registered backbone)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2, help="timed rounds (best is reported)")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for PyTorch and ONNX Runtime (default 1)")
    parser.add_argument("--compiled", action="store_true", help="also time the torch.compile path ([embed] compile)")
    parser.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--no-quant", action="store_true", help="skip the quantised ONNX models")
    parser.add_argument("--e2e", type=int, default=0, metavar="N",
                        help="also time the embed pipeline on N JPEG files against the network alone")
    args = parser.parse_args()

    import torch

    from facebone.eval import fastpath

    torch.set_num_threads(args.threads)
    names = args.backbones
    if names == ["all"]:
        from facebone.plugin.discovery import get_plugins

        names = get_plugins().registry("backbone").names()
    load_before = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "embed_throughput", "batch": args.batch, "threads": args.threads, "torch": torch.__version__,
        "cpu": cpu_name(), "cpu_bf16_flags": cpu_flags(), "cpu_native_bf16": fastpath.cpu_has_native_bf16(),
        "cores": os.cpu_count(), "baseline": "PyTorch fp32 NCHW, same weights, same process, same rounds",
        "load_average_before": [round(v, 2) for v in load_before], "backbones": {}}
    try:
        import onnxruntime

        report["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        args.no_ort = True
    for name in names:
        report["backbones"][name] = bench_one(name, args)
        if args.e2e:
            report["backbones"][name]["embed_pipeline"] = bench_e2e(name, args)
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
