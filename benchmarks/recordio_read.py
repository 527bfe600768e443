"""Records read per second: facebone's RecordIO pack reader vs a plain Python reader of the
same format written the obvious way (seek + read + struct per part), and vs mxnet when it is
importable. Random access order, as a shuffled training epoch reads. Prints JSON.

    python benchmarks/recordio_read.py [--records 20000] [--size 4000]
"""
from __future__ import annotations

import argparse
import json
import struct
import tempfile
import time
from pathlib import Path

import numpy as np


def naive_read(rec_path: Path, idx_path: Path, order: np.ndarray) -> int:
    offsets = {}
    with open(idx_path) as f:
        for line in f:
            k, o = line.split("\t")
            offsets[int(k)] = int(o)
    keys = sorted(offsets)
    total = 0
    with open(rec_path, "rb") as f:
        for i in order:
            f.seek(offsets[keys[i]])
            out = b""
            while True:
                magic, lrec = struct.unpack("<II", f.read(8))
                assert magic == 0xCED7230A
                cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
                out += f.read(length)
                f.read((-length) % 4)
                if cflag in (0, 3):
                    break
                out += struct.pack("<I", magic)
            total += len(out[24:])
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--size", type=int, default=4000, help="payload bytes per record (a 112px JPEG is ~4-8 KB)")
    args = ap.parse_args()
    from facebone.data.pack import open_pack, write_im2rec_pack

    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp())
    payloads = (bytes(rng.integers(0, 256, args.size, dtype=np.uint8)) for _ in range(args.records))
    write_im2rec_pack(tmp, ((p, i % 100) for i, p in enumerate(payloads)))
    order = rng.permutation(args.records)
    results = {}
    t = time.perf_counter()
    pack = open_pack(tmp)
    results["facebone_open_s"] = time.perf_counter() - t
    for name, fn in [("facebone", lambda: sum(len(pack.image_bytes(i)) for i in order.tolist())),
                     ("naive_python", lambda: naive_read(tmp / "train.rec", tmp / "train.idx", order))]:
        fn()  # warm the page cache
        t = time.perf_counter()
        fn()
        results[f"{name}_records_per_s"] = args.records / (time.perf_counter() - t)
    try:
        import mxnet as mx  # noqa: F401

        r = mx.recordio.MXIndexedRecordIO(str(tmp / "train.idx"), str(tmp / "train.rec"), "r")
        t = time.perf_counter()
        for i in order.tolist():
            mx.recordio.unpack(r.read_idx(i))
        results["mxnet_records_per_s"] = args.records / (time.perf_counter() - t)
        results["ratio_facebone_vs_mxnet"] = results["facebone_records_per_s"] / results["mxnet_records_per_s"]
    except ImportError:
        results["mxnet"] = "not installed"
    results["ratio_facebone_vs_naive"] = results["facebone_records_per_s"] / results["naive_python_records_per_s"]
    results.update(records=args.records, payload_bytes=args.size)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
