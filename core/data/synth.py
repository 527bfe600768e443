"""A procedural, face-like identity data set, so that facebone runs anywhere.

Each identity is a random draw of face geometry and appearance (head ellipse, hairline
and hair colour, eyes with iris colour, brows, nose, mouth, beard, skin tone, a low-
frequency skin texture and moles). Each image adds nuisance: rotation, translation and
scale, expression (mouth curvature, eye opening), a lighting gradient, brightness and
colour cast, background, Gaussian blur, pixel noise and JPEG compression. Rendering is
vectorised over whole batches of images with numpy.

:func:`generate_synthetic` writes an InsightFace-style RecordIO pack of the training
identities and a ``holdout.bin`` verification set of pairs from held-out identities.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from facebone.errors import DataError

SYNTH_VERSION = 2
_CHUNK = 512


def _u(rng: np.random.Generator, lo: float, hi: float, n: int | tuple) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


def sample_identities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Identity parameters, one row per identity (canonical face coordinates in [-1, 1])."""
    t = _u(rng, 0, 1, n)[:, None]
    skin = (1 - t) * np.array([0.96, 0.80, 0.68]) + t * np.array([0.42, 0.28, 0.18]) + rng.normal(0, 0.03, (n, 3))
    hair_base = np.array([[0.08, 0.06, 0.05], [0.35, 0.22, 0.12], [0.85, 0.70, 0.40], [0.6, 0.6, 0.6], [0.55, 0.2, 0.08]])
    hair = hair_base[rng.integers(0, len(hair_base), n)] + rng.normal(0, 0.05, (n, 3))
    iris_base = np.array([[0.25, 0.15, 0.08], [0.2, 0.4, 0.7], [0.25, 0.5, 0.3], [0.1, 0.1, 0.1]])
    iris = iris_base[rng.integers(0, len(iris_base), n)] + rng.normal(0, 0.04, (n, 3))
    p = {
        "skin": skin, "hair": hair, "iris": iris,
        "head_a": _u(rng, 0.50, 0.70, n), "head_b": _u(rng, 0.66, 0.86, n),
        "hairline": _u(rng, -0.70, -0.30, n), "hair_vol": _u(rng, 1.02, 1.22, n),
        "eye_y": _u(rng, -0.26, -0.02, n), "eye_dx": _u(rng, 0.18, 0.34, n), "eye_r": _u(rng, 0.07, 0.12, n),
        "eye_open": _u(rng, 0.45, 0.85, n),
        "brow_dy": _u(rng, 0.10, 0.22, n), "brow_t": _u(rng, 0.025, 0.07, n), "brow_tilt": _u(rng, -0.35, 0.35, n),
        "brow_len": _u(rng, 0.10, 0.20, n),
        "nose_len": _u(rng, 0.14, 0.32, n), "nose_w": _u(rng, 0.04, 0.11, n),
        "mouth_y": _u(rng, 0.30, 0.52, n), "mouth_w": _u(rng, 0.12, 0.26, n), "mouth_t": _u(rng, 0.025, 0.07, n),
        "mouth_c": _u(rng, -1.5, 1.5, n), "lip": _u(rng, 0.45, 0.85, n),
        "beard": (rng.random(n) < 0.3).astype(np.float32) * _u(rng, 0.4, 0.9, n),
        "tex_k": rng.uniform(3.0, 11.0, (n, 3)).astype(np.float32),
        "tex_dir": rng.uniform(0, np.pi, (n, 3)).astype(np.float32),
        "tex_phase": rng.uniform(0, 2 * np.pi, (n, 3)).astype(np.float32),
        "tex_amp": rng.uniform(0.06, 0.16, (n, 3)).astype(np.float32),
        "mole_xy": rng.uniform(-0.45, 0.45, (n, 2, 2)).astype(np.float32),
        "mole_r": rng.uniform(0.03, 0.07, (n, 2)).astype(np.float32),
        "mole_dark": rng.uniform(0.0, 0.6, (n, 2)).astype(np.float32),
    }
    for k in ("skin", "hair", "iris"):
        p[k] = np.clip(p[k], 0.02, 1.0).astype(np.float32)
    return p


def sample_nuisance(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-image nuisance parameters."""
    return {
        "rot": _u(rng, -0.18, 0.18, n), "tx": _u(rng, -0.08, 0.08, n), "ty": _u(rng, -0.08, 0.08, n),
        "scale": _u(rng, 0.90, 1.10, n),
        "smile": rng.normal(0, 0.4, n).astype(np.float32), "blink": _u(rng, 0.6, 1.15, n),
        "light_dir": _u(rng, 0, 2 * np.pi, n), "light_g": _u(rng, 0.0, 0.3, n),
        "bright": _u(rng, 0.8, 1.15, n), "cast": rng.normal(0, 0.03, (n, 3)).astype(np.float32),
        "bg": np.clip(_u(rng, 0.1, 0.9, (n, 1)) + rng.normal(0, 0.12, (n, 3)), 0, 1).astype(np.float32),
        "blur": _u(rng, 0.0, 0.8, n), "noise": _u(rng, 0.01, 0.035, n),
    }


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """1 inside (d < 0), 0 outside, with a soft edge about ``edge`` wide."""
    return 1.0 / (1.0 + np.exp(np.clip(d / edge, -30, 30)))


def render(idp: dict[str, np.ndarray], nz: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Render images: ``idp`` and ``nz`` hold one row per image. Returns uint8 (N, S, S, 3)."""
    n = len(nz["rot"])
    g = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2 - 1
    X, Y = g[None, None, :], g[None, :, None]
    col = lambda a: a[:, None, None]  # noqa: E731
    c, s, sc = np.cos(nz["rot"]), np.sin(nz["rot"]), nz["scale"]
    dx, dy = X - col(nz["tx"]), Y - col(nz["ty"])
    u = (col(c) * dx + col(s) * dy) / col(sc)
    v = (-col(s) * dx + col(c) * dy) / col(sc) - 0.05
    edge = 2.0 / size
    # head, hair, beard masks
    head_d = np.sqrt((u / col(idp["head_a"])) ** 2 + (v / col(idp["head_b"])) ** 2) - 1
    head = _soft(head_d * col(idp["head_a"]), edge)
    hv = col(idp["hair_vol"])
    hair_out = _soft((np.sqrt((u / (col(idp["head_a"]) * hv)) ** 2 + ((v + 0.04) / (col(idp["head_b"]) * hv)) ** 2) - 1)
                     * col(idp["head_a"]), edge)
    above = _soft(v - col(idp["hairline"]) - 0.08 * u ** 2, edge)
    hair = np.maximum(hair_out * above, hair_out * (1 - head))
    hair *= _soft(v - 0.15, edge)  # no hair below the ears' level outside the head
    beard = col(idp["beard"]) * head * _soft(col(idp["mouth_y"]) - 0.08 - v, edge * 2)
    # skin texture and moles
    tex = np.ones_like(u)
    for j in range(3):
        k, a = idp["tex_k"][:, j], idp["tex_dir"][:, j]
        tex += col(idp["tex_amp"][:, j]) * np.sin(col(k * np.cos(a)) * u + col(k * np.sin(a)) * v + col(idp["tex_phase"][:, j]))
    for j in range(2):
        m = _soft(np.sqrt((u - col(idp["mole_xy"][:, j, 0])) ** 2 + (v - col(idp["mole_xy"][:, j, 1])) ** 2)
                  - col(idp["mole_r"][:, j]), edge)
        tex *= 1 - col(idp["mole_dark"][:, j]) * m
    # eyes (mirrored in u), iris, brows
    au = np.abs(u)
    ex, ey, er = col(idp["eye_dx"]), col(idp["eye_y"]), col(idp["eye_r"])
    open_ = np.clip(col(idp["eye_open"] * nz["blink"]), 0.15, 1.0)
    eye = _soft(np.sqrt(((au - ex) / er) ** 2 + ((v - ey) / (er * open_)) ** 2) - 1, edge / er * 1.5)
    iris = eye * _soft(np.sqrt((au - ex) ** 2 + (v - ey) ** 2) - 0.55 * er, edge)
    tilt = col(idp["brow_tilt"])
    bu, bv = au - ex, v - (ey - col(idp["brow_dy"]))
    bv_r = bv - tilt * bu
    brow = _soft(np.abs(bv_r) - col(idp["brow_t"]) / 2, edge) * _soft(np.abs(bu) - col(idp["brow_len"]), edge)
    # nose: a darker wedge from between the eyes to the tip
    nt = (v - ey) / col(idp["nose_len"])
    nose = _soft(np.abs(u) - col(idp["nose_w"]) * np.clip(nt, 0, 1), edge) * _soft(-nt, edge) * _soft(nt - 1, edge)
    # mouth: a band around a parabola whose curvature changes with expression
    curv = col(idp["mouth_c"] + nz["smile"])
    mw = col(idp["mouth_w"])
    mv = v - col(idp["mouth_y"]) + curv * (u ** 2 - mw ** 2 / 3) * 0.5
    mouth = _soft(np.abs(mv) - col(idp["mouth_t"]) / 2, edge) * _soft(np.abs(u) - mw, edge)
    # compose colour layers
    rgb = lambda a: a[:, None, None, :]  # noqa: E731
    e = lambda m: m[..., None]  # noqa: E731
    img = np.broadcast_to(rgb(nz["bg"]), (n, size, size, 3)).astype(np.float32)
    skin = rgb(idp["skin"]) * e(tex)
    img = img * (1 - e(hair)) + rgb(idp["hair"]) * e(hair)
    img = img * (1 - e(head)) + skin * e(head)
    img = img * (1 - e(beard * 0.8)) + rgb(idp["hair"] * 0.8) * e(beard * 0.8)
    img = img * (1 - e(nose) * 0.25)
    lip = rgb(idp["skin"] * np.array([0.85, 0.45, 0.45], np.float32) * col(idp["lip"])[:, :, 0])
    img = img * (1 - e(mouth)) + lip * e(mouth)
    img = img * (1 - e(eye)) + np.float32(0.95) * e(eye)
    img = img * (1 - e(iris)) + rgb(idp["iris"]) * e(iris)
    img = img * (1 - e(brow)) + rgb(idp["hair"] * 0.7) * e(brow)
    # lighting, blur, noise
    ld = nz["light_dir"]
    light = 1 + col(nz["light_g"]) * (col(np.cos(ld)) * X + col(np.sin(ld)) * Y)
    img = img * e(light * col(nz["bright"])) * rgb(1 + nz["cast"])
    img = _blur(img, nz["blur"])
    img = img + rng_noise(nz, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def rng_noise(nz: dict[str, np.ndarray], shape: tuple) -> np.ndarray:
    """Gaussian pixel noise, seeded from the nuisance parameters (reproducible)."""
    seed = int((nz["noise"].view(np.uint32).astype(np.uint64).sum() + nz["rot"].view(np.uint32).astype(np.uint64).sum()) % (2**63))
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * nz["noise"][:, None, None, None]


def _blur(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur with one sigma per image (5-tap kernels)."""
    taps = np.arange(-2, 3, dtype=np.float32)
    w = np.exp(-0.5 * (taps[None, :] / np.maximum(sigma, 1e-3)[:, None]) ** 2)
    w /= w.sum(1, keepdims=True)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        p = np.pad(img, pad, mode="edge")
        out = np.zeros_like(img)
        n = img.shape[axis]
        for k in range(5):
            sl = [slice(None)] * 4
            sl[axis] = slice(k, k + n)
            out += w[:, k, None, None, None] * p[tuple(sl)]
        img = out
    return img


def _take(p: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in p.items()}


def _encode(images: np.ndarray, fmt: str) -> list[bytes]:
    from PIL import Image

    out = []
    for im in images:
        buf = io.BytesIO()
        if fmt == "jpeg":
            Image.fromarray(im).save(buf, format="JPEG", quality=90)
        else:
            Image.fromarray(im).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def render_identity_images(idp: dict[str, np.ndarray], identity: np.ndarray, nuisance_rng: np.random.Generator,
                           size: int) -> np.ndarray:
    """Render one image per entry of ``identity`` (indices into ``idp``), uint8 (N, S, S, 3)."""
    out = np.empty((len(identity), size, size, 3), np.uint8)
    for start in range(0, len(identity), _CHUNK):
        sel = identity[start:start + _CHUNK]
        out[start:start + len(sel)] = render(_take(idp, sel), sample_nuisance(nuisance_rng, len(sel)), size)
    return out


def synth_spec(*, identities: int, images_per_identity: int, holdout_identities: int, pairs: int,
               image_size: int, seed: int, image_format: str) -> dict[str, Any]:
    return {"version": SYNTH_VERSION, "identities": identities, "images_per_identity": images_per_identity,
            "holdout_identities": holdout_identities, "pairs": pairs, "image_size": image_size, "seed": seed,
            "image_format": image_format}


def generate_synthetic(out_dir: str | os.PathLike, *, identities: int = 300, images_per_identity: int = 40,
                       holdout_identities: int = 100, pairs: int = 2000, image_size: int = 40, seed: int = 0,
                       image_format: str = "jpeg", progress: bool = True) -> dict[str, Any]:
    """Write ``train.rec``/``train.idx``/``property`` (InsightFace layout), ``holdout.bin``
    and ``synth.json`` under ``out_dir``; reuse them if ``synth.json`` already has this spec.

    Returns the spec plus ``paths`` and ``reused`` (True when nothing was generated).
    """
    from facebone.data.pack import write_insightface_pack
    from facebone.data.verification_bin import write_bin
    from facebone.io import atomic_write_json
    from facebone.progress import Progress

    if identities < 2 or images_per_identity < 1 or holdout_identities < 2 or pairs < 2 or image_size < 16:
        raise DataError("synthetic data needs identities >= 2, images_per_identity >= 1, holdout_identities >= 2, "
                        "pairs >= 2 and image_size >= 16")
    if image_format not in ("jpeg", "png"):
        raise DataError(f"synthetic image_format must be 'jpeg' or 'png', got {image_format!r}")
    out = Path(out_dir)
    spec = synth_spec(identities=identities, images_per_identity=images_per_identity,
                      holdout_identities=holdout_identities, pairs=pairs, image_size=image_size, seed=seed,
                      image_format=image_format)
    paths = {k: str(out / k) for k in SYNTH_FILES}
    meta = out / "synth.json"
    old = _read_marker(meta)
    if old is not None and all(Path(p).is_file() for p in paths.values()):
        if {k: old.get(k) for k in spec} == spec:
            return {**spec, "paths": paths, "reused": True}
    problem = why_not_writable(out)
    if problem:
        raise DataError(f"{out}: {problem}")
    out.mkdir(parents=True, exist_ok=True)
    root = np.random.default_rng([seed, 7331])
    idp = sample_identities(root, identities + holdout_identities)
    nrng = np.random.default_rng([seed, 1])
    total = identities * images_per_identity
    with Progress(total + 2 * pairs, "synth", unit="img", enabled=progress) as bar:
        def train_samples():
            labels = np.repeat(np.arange(identities), images_per_identity)
            for start in range(0, total, _CHUNK):
                sel = labels[start:start + _CHUNK]
                imgs = render(_take(idp, sel), sample_nuisance(nrng, len(sel)), image_size)
                for b, lab in zip(_encode(imgs, image_format), sel.tolist()):
                    yield b, lab
                bar.update(len(sel))

        write_insightface_pack(out, train_samples(), image_size=image_size)
        # holdout pairs: half from the same identity, half from two different ones
        prng = np.random.default_rng([seed, 2])
        n_same = pairs // 2
        hid = identities + prng.integers(0, holdout_identities, pairs)
        other = identities + (hid - identities + prng.integers(1, holdout_identities, pairs)) % holdout_identities
        issame = np.zeros(pairs, bool)
        issame[prng.permutation(pairs)[:n_same]] = True
        second = np.where(issame, hid, other)
        order = np.stack([hid, second], 1).reshape(-1)
        imgs = render_identity_images(idp, order, np.random.default_rng([seed, 3]), image_size)
        bar.update(2 * pairs)
        write_bin(out / "holdout.bin", _encode(imgs, image_format), issame.tolist())
    files = {name: (out / name).stat().st_size for name in SYNTH_FILES}
    atomic_write_json(meta, {**spec, "files": files})
    return {**spec, "paths": paths, "reused": False}


SYNTH_FILES = ("train.rec", "train.idx", "property", "holdout.bin")
"""What :func:`generate_synthetic` writes (plus ``synth.json``, its marker)."""


def _read_marker(meta: Path) -> dict[str, Any] | None:
    """The ``synth.json`` marker of an earlier generation, or None."""
    if not meta.is_file() or meta.is_symlink():
        return None
    try:
        old = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and "version" in old else None


def why_not_writable(out: Path) -> str | None:
    """Why synthetic data may not be written into ``out``, or None.

    Generation only writes into a missing or empty directory, or over its own earlier output:
    a ``synth.json`` marker whose recorded files still have the sizes it wrote. A real data
    set (say a ``train.rec`` that ``--set data.train=...`` points at) is never replaced.
    """
    if out.is_symlink() and not out.exists():
        return "is a broken symbolic link"
    if not out.exists():
        return None
    if not out.is_dir():
        return "exists and is not a directory; synthetic data is written into a directory"
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return None
    refuse = ("is not empty and holds no synthetic data of facebone's (no synth.json); synthetic data is only "
              "written into a missing or empty directory, or over its own earlier output")
    old = _read_marker(out / "synth.json")
    if old is None:
        return refuse
    recorded = old.get("files")
    if not isinstance(recorded, dict):  # a marker from before sizes were recorded: only our files may be there
        others = sorted(entries - set(SYNTH_FILES) - {"synth.json"})
        return None if not others else f"holds {others[0]!r}, which synthetic generation did not write; " + refuse
    for name in SYNTH_FILES:
        path = out / name
        if path.is_symlink() or (path.exists() and (not path.is_file() or path.stat().st_size != recorded.get(name))):
            return (f"{name} is not the file synthetic generation wrote there (its size changed); refusing to "
                    "replace it")
    return None
