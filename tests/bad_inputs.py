"""Fixture builders for the bad-input matrix (tests/test_bad_input_matrix.py).

Shared, expensive inputs (a synthetic data set, a trained run, a site of broken plugins) are
built once in an ``assets`` directory; each case's builder copies or writes the small files
it needs into the case's own directory, which the matrix then snapshots.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import textwrap
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from fb_testing import install_distribution

# -- assets built once per module -----------------------------------------------------------

EXPERIMENT = """\
[experiment]
name = "{name}"
seed = 3
output_dir = "runs"

[data]
train = "{data}"
image_size = {size}

[backbone]
type = "{backbone}"
width = 8
embedding_size = 16

[head]
type = "cosface"
scale = 16.0

[train]
batch_size = 32
epochs = 1
max_steps = {steps}
lr = {lr}

[embed]
batch_size = 64

[[eval]]
type = "verification"
targets = ["holdout"]
root = "{eval_root}"
"""


def experiment_text(data: Path | str, *, name: str = "t", size: int = 32, steps: int = 2, lr: float = 0.05,
                    backbone: str = "iresnet18", synth: bool = False, eval_root: Path | str | None = None) -> str:
    """A tiny, fast experiment over ``data`` (optionally with a ``[data.synth]`` table); its verification
    set is ``holdout.bin`` in ``eval_root`` (default: ``data``)."""
    text = EXPERIMENT.format(name=name, data=data, size=size, steps=steps, lr=lr, backbone=backbone,
                             eval_root=eval_root or data)
    if synth:
        text = text.replace("[backbone]", "[data.synth]\nidentities = 16\nimages_per_identity = 8\n"
                                          "holdout_identities = 8\npairs = 60\n\n[backbone]")
    return text


def build_assets(root: Path) -> dict[str, Path]:
    """The synthetic data set, one finished run on it, and the plugin site."""
    from facebone.cli import main
    from facebone.data import generate_synthetic

    data = root / "data"
    generate_synthetic(data, identities=16, images_per_identity=8, holdout_identities=8, pairs=60, image_size=32,
                       seed=1, progress=False)
    exp = root / "t.toml"
    exp.write_text(experiment_text(data))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["run", str(exp), "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    site = root / "site"
    make_plugin_site(site)
    return {"data": data, "run": root / "runs" / "t", "site": site, "root": root}


# -- plugins ----------------------------------------------------------------------------------

GOOD_PLUGIN = '''
import dataclasses, math
import facebone


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConstOptions:
    value: float = facebone.option(0.5, "the metric to return")


def build_boomnet(options, *, embedding_size, image_size, **runtime):
    raise RuntimeError("boom in the factory")


def build_boom_eval(options, **runtime):
    def evaluate(embedder, context):
        raise ZeroDivisionError("boom in the evaluator")
    return evaluate


def build_const_eval(options, **runtime):
    def evaluate(embedder, context):
        return {"const/value": options.value, "const/nan": math.nan}
    return evaluate


@facebone.hookimpl
def facebone_backbones(registry):
    registry.add("boomnet", build_boomnet, summary="a backbone whose factory raises")


@facebone.hookimpl
def facebone_evaluators(registry):
    registry.add("boom", build_boom_eval, summary="an evaluator that raises")
    registry.add("const", build_const_eval, options=ConstOptions, summary="constant metrics, one of them NaN")
    registry.add("const2", build_const_eval, options=ConstOptions, summary="the same, under another name")
'''

NO_RUNTIME = '''
import facebone

def build(options, *, embedding_size, image_size):
    raise AssertionError("never called")

@facebone.hookimpl
def facebone_backbones(registry):
    registry.add("nort", build, summary="a factory without **runtime")
'''

HOOK_TYPO = '''
import facebone

@facebone.hookimpl
def facebone_backbone(registry):
    registry.add("typonet", lambda options, **runtime: None, summary="never registered")
'''

NO_MARKER = '''
def facebone_backbones(registry):
    registry.add("plainnet", lambda options, **runtime: None, summary="never registered")
'''

BAD_NAME = '''
import facebone

@facebone.hookimpl
def facebone_backbones(registry):
    registry.add("bad name!", lambda options, **runtime: None, summary="an invalid name")
'''


def make_plugin_site(site: Path) -> None:
    """One site directory holding a working plugin (raising components) and four broken ones."""
    install_distribution(site, "fb-boom", "0.1", "fb_boom", GOOD_PLUGIN, {"boom": "fb_boom"})
    install_distribution(site, "fb-nort", "0.2", "fb_nort", NO_RUNTIME, {"nort": "fb_nort"})
    install_distribution(site, "fb-typo", "0.3", "fb_typo", HOOK_TYPO, {"typo": "fb_typo"})
    install_distribution(site, "fb-nomark", "0.4", "fb_nomark", NO_MARKER, {"nomark": "fb_nomark"})
    install_distribution(site, "fb-badname", "0.5", "fb_badname", BAD_NAME, {"badname": "fb_badname"})


# -- images -----------------------------------------------------------------------------------

def png(h: int = 32, w: int = 32, seed: int = 0) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def huge_png_header(h: int = 15000, w: int = 15000) -> bytes:
    """A few dozen bytes whose header claims an ``h`` x ``w`` RGB image (the data is cut short)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def huge_jpeg_header(h: int = 15000, w: int = 15000) -> bytes:
    """A JPEG start (SOI, SOF0 claiming ``h`` x ``w``) with no image data."""
    sof = struct.pack(">BBHBHHB", 0xFF, 0xC0, 17, 8, h, w, 3) + bytes(9)
    return b"\xff\xd8" + sof + b"\xff\xd9"


# -- packs, folders, .bin ------------------------------------------------------------------------

def write_pack(path: Path, labels: list[int], *, images: list[bytes] | None = None, size: int = 32,
               prop: str | None = "auto") -> Path:
    """An im2rec-layout pack (keys 0..N-1) with ``labels``; ``prop`` None writes no ``property``."""
    from facebone.data.pack import write_im2rec_pack

    images = images or [png(size, size, i) for i in range(len(labels))]
    write_im2rec_pack(path, zip(images, labels), image_size=None)
    if prop == "auto":
        prop = f"{max(labels) + 1},{size},{size}"
    if prop is not None:
        (path / "property").write_text(prop + "\n")
    return path


def write_raw_pack(path: Path, records: list[bytes]) -> Path:
    """A pack of hand-made records (keys 0..N-1), for records the normal writer would never produce."""
    from facebone.data.recordio import IndexedRecordWriter

    path.mkdir(parents=True, exist_ok=True)
    with IndexedRecordWriter(path / "train.rec", path / "train.idx") as writer:
        for key, record in enumerate(records):
            writer.write_idx(key, record)
    return path


def image_record(key: int, label: int, image: bytes) -> bytes:
    from facebone.data.recordio import IRHeader, pack

    return pack(IRHeader(0, label, key, 0), image)


def short_record(key: int, label: float = 1.0) -> bytes:
    """A record whose header says 2 labels but holds 1: its label reads fine, its image does not."""
    return struct.pack("<IfQQ", 2, 0.0, key, 0) + struct.pack("<f", label)


def write_pickle_bin(path: Path, payload: bytes) -> Path:
    path.write_bytes(payload)
    return path


def bin_of(images: list[bytes], issame: list[bool]) -> bytes:
    return pickle.dumps((images, issame), protocol=2)


def bin_bytearray_bomb() -> bytes:
    """A 30-byte pickle that asks for ``bytearray(10**10)``: ten gigabytes of zeros."""
    return b"\x80\x02c__builtin__\nbytearray\n\x8a\x05\x00\xe4\x0bT\x02\x85R." + b""


def bin_huge_length() -> bytes:
    """A pickle whose first bytes object claims 10 GB (and holds 3 bytes)."""
    return b"\x80\x04\x8e" + struct.pack("<Q", 10**10) + b"abc"


def bin_nested(depth: int = 100_000) -> bytes:
    """A valid pickle of a list nested ``depth`` deep (RecursionError for recursive readers)."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def bin_shared(image: bytes, pairs: int) -> bytes:
    """``2 * pairs`` references to one image: tiny on disk, large decoded."""
    return pickle.dumps(([image] * (2 * pairs), [True, False] * (pairs // 2)), protocol=4)


class Evil:
    """Unpickling this runs ``os.system``: the matrix checks its marker file never appears."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def evil_bin(marker: Path) -> bytes:
    return pickle.dumps(([Evil(marker), b"x"], [True]), protocol=2)


def evil_pth(marker: Path) -> bytes:
    return pickle.dumps({"conv1.weight": Evil(marker)}, protocol=2)


# -- runs and checkpoints -------------------------------------------------------------------------

def copy_run(assets: dict[str, Path], tmp: Path, name: str = "run") -> Path:
    """A copy of the finished asset run (its config still reads the asset data set)."""
    dst = tmp / name
    shutil.copytree(assets["run"], dst)
    (dst / ".run.lock").unlink(missing_ok=True)
    return dst


def tamper_checkpoint(path: Path, how: str) -> str:
    """Rewrite a checkpoint with one tensor poisoned: ``nan`` (a NaN weight) or ``int`` (an int64
    tensor where the model holds floats). Returns the tensor's key."""
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    tensors = load_file(str(path))
    key = sorted(k for k in tensors if k.startswith("model.backbone.") and k.endswith("weight"))[0]
    if how == "nan":
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = float("nan")
    else:
        tensors[key] = torch.ones_like(tensors[key], dtype=torch.int64)
    save_file(tensors, str(path), metadata=meta)
    return key


def add_evals(run: Path, tables: list[dict[str, Any]]) -> None:
    """Put ``tables`` before the run's own ``[[eval]]`` in its resolved configuration."""
    from facebone.experiment import tomlio

    config = tomlio.loads(run.joinpath("config.toml").read_text())
    config["eval"] = [*tables, *config.get("eval", [])]
    run.joinpath("config.toml").write_text(tomlio.dumps(config))


def backbone_pth(path: Path) -> Path:
    """A small InsightFace-style iresnet18 (width 8) state dict."""
    import torch

    from facebone.model.build import build_backbone

    torch.save(build_backbone("iresnet18", {"width": 8}, embedding_size=16).state_dict(), path)
    return path


def fake_run_dir(path: Path, status: str = "failed", **extra: Any) -> Path:
    """A run directory as facebone leaves it when a run fails before saving anything."""
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": status, "facebone": "0.1.0", **extra}))
    (path / "experiment.toml").write_text("# the experiment as given\n")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path
