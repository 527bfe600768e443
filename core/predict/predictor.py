"""The face-embedding predictor: ``facebone.load(RUN_DIR)`` and what it returns.

::

    import facebone
    model = facebone.load("runs/quickstart", precision="bf16")
    emb = model.embed(["a.jpg", "b.jpg"], landmarks=points)       # (2, D) float32, L2-normalised
    model.similarity(emb[0], emb[1])                               # cosine
    model.verify("a.jpg", "b.jpg", far=1e-3)                       # decision at the run's own threshold

Where the face is, per image (see :mod:`facebone.predict.faces`):

* ``landmarks`` (5 points): similarity alignment onto the ArcFace template, exactly as the IJB
  evaluator aligns (:func:`facebone.data.align.warp_affine`);
* ``boxes`` ``(x1, y1, x2, y2[, angle])``: with a RoI warp the box is the RoI the warp samples
  from the whole image (as ibug's predictor drives the RoI Tanh-polar warp); with the Cartesian
  warp, a square crop around the box with a margin (:data:`~facebone.predict.faces.BOX_MARGIN`);
* neither: the image is an aligned crop, resized to the model's input size if needed.

The flip test follows the run's ``[embed] flip``: the embedding is the sum of those of the
face and its mirror, as the evaluators compute it, then L2-normalised unless ``normalize=False``.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from facebone.errors import ConfigError, DataError
from facebone.predict import faces
from facebone.predict.images import as_list, load_one, name_of


@dataclasses.dataclass
class EmbedReport:
    """Embeddings of every input that could be embedded, and why the others could not."""

    embeddings: np.ndarray
    """``(N, D)`` float32, one row per input; NaN rows for inputs that failed."""
    names: list[str]
    errors: dict[int, str]
    """index -> one line saying why that input could not be embedded."""

    @property
    def ok(self) -> np.ndarray:
        """``(N,)`` bool: the rows that hold an embedding."""
        mask = np.ones(len(self.names), dtype=bool)
        mask[list(self.errors)] = False
        return mask


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of :meth:`Predictor.verify`."""

    similarity: float
    threshold: float
    source: str
    """Where the threshold came from."""
    same: bool

    def __str__(self) -> str:
        return (f"similarity {self.similarity:.4f}, threshold {self.threshold:.4f} ({self.source}): "
                f"{'same identity' if self.same else 'different identities'}")


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What the predictor needs to know about the model, from the run's resolved config."""

    image_size: int
    embedding_size: int
    flip: bool
    warp: str
    roi_ratio: float
    batch_size: int
    source: str
    """The run directory or checkpoint, for messages."""
    run_dir: Path | None
    checkpoint: Path | None
    fixed_roi: str = "exact"
    """The RoI warp's fixed central box style (its ``fixed_roi`` option)."""


class Predictor:
    """Embeds faces with a trained model (see the module docstring). Made by :func:`load`."""

    def __init__(self, network: Any, facts: ModelFacts, *, box_margin: float = faces.BOX_MARGIN, workers: int = 1):
        self.network = network
        self.facts = facts
        self.workers = workers
        """Threads that read and crop the next batch while the network runs this one."""
        self.box_margin = float(box_margin)
        self.embedding_size = facts.embedding_size
        self.image_size = facts.image_size
        self.flip = facts.flip
        self._thresholds: dict[tuple[float, str | None], Any] = {}

    def __repr__(self) -> str:
        return (f"Predictor({self.facts.source}: {self.embedding_size}-d, {self.image_size}px, warp "
                f"{self.facts.warp}, flip {self.flip}; {self.network.describe()})")

    @property
    def roi_warp(self) -> bool:
        return self.facts.warp != "cartesian"

    # -- embedding -------------------------------------------------------------------------
    def embed(self, images: Any, *, boxes: Any = None, landmarks: Any = None, batch_size: int | None = None,
              normalize: bool = True) -> np.ndarray:
        """``(N, D)`` float32 embeddings of ``images`` (one or many: paths, PIL images, uint8 RGB
        arrays), L2-normalised unless ``normalize=False`` (then the raw flip-summed embedding).
        Raises :class:`DataError` naming every input that could not be embedded; use
        :meth:`embed_report` to keep the others."""
        report = self.embed_report(images, boxes=boxes, landmarks=landmarks, batch_size=batch_size,
                                   normalize=normalize)
        if report.errors:
            first = next(iter(report.errors.values()))
            more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
            raise DataError(f"{len(report.errors)} of {len(report.names)} images not embedded: {first}{more}")
        return report.embeddings

    def embed_report(self, images: Any, *, boxes: Any = None, landmarks: Any = None, batch_size: int | None = None,
                     normalize: bool = True, names: Sequence[str] | None = None,
                     progress: Callable[[int], None] | None = None) -> EmbedReport:
        """Like :meth:`embed`, but an input that cannot be read or placed (unreadable file, box
        outside the image, landmarks of the wrong shape...) gets a NaN row and a line in
        ``errors`` while every other input is embedded. ``progress(n)`` is called as inputs finish."""
        items = as_list(images)
        n = len(items)
        if boxes is not None and landmarks is not None:
            raise ConfigError("give boxes or landmarks, not both")
        where = list(names) if names is not None else [name_of(it, i) for i, it in enumerate(items)]
        per = [None] * n
        kind = None
        if boxes is not None:
            per, kind = faces.per_face(boxes, n, "boxes"), "box"
        elif landmarks is not None:
            per, kind = faces.per_face(landmarks, n, "landmarks"), "landmarks"
        out = np.full((n, self.embedding_size), np.nan, dtype=np.float32)
        errors: dict[int, str] = {}
        step = int(batch_size or self.facts.batch_size)
        chunks = [range(s, min(s + step, n)) for s in range(0, n, step)]
        workers = max(1, int(self.workers))

        def submit(pool: ThreadPoolExecutor, chunk: range) -> list:
            part = -(-len(chunk) // workers)
            return [pool.submit(self._prepare, items, per, kind, where, chunk[a:a + part])
                    for a in range(0, len(chunk), part)]

        # decode and crop the next chunk in threads while the network runs this one
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = submit(pool, chunks[0]) if chunks else []
            for c, chunk in enumerate(chunks):
                prepared = [entry for f in pending for entry in f.result()]
                pending = submit(pool, chunks[c + 1]) if c + 1 < len(chunks) else []
                self._run(prepared, out, errors)
                if progress is not None:
                    progress(len(chunk))
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = out / norms
        return EmbedReport(out, where, dict(sorted(errors.items())))

    def _prepare(self, items: list[Any], per: list[Any], kind: str | None, where: list[str],
                 chunk: range) -> list[tuple]:
        """``(index, "crop", crop)``, ``(index, "roi", image, roi)`` or ``(index, "error", message)``."""
        from facebone.data.align import warp_affine

        cache: dict[Any, np.ndarray] = {}
        prepared: list[tuple] = []
        sizes = getattr(self.network, "input_sizes", None)
        for i in chunk:
            item = items[i]
            key = None
            try:
                key = os.fspath(item) if isinstance(item, (str, os.PathLike)) else None
                image = cache.get(key) if key is not None else None
                if image is None:
                    image = load_one(item, where[i])
                    if key is not None:
                        cache[key] = image
                if kind == "landmarks":
                    pts = faces.check_landmarks(per[i])
                    size = faces.served_size(faces.landmark_native_size(pts), sizes) if sizes else self.image_size
                    prepared.append((i, "crop", warp_affine(image, faces.landmark_matrix(pts, size), size)))
                elif kind == "box":
                    box = faces.check_box(per[i], image.shape[:2])
                    if self.roi_warp and self.network.roi_warp:
                        prepared.append((i, "roi", image, box[None]))
                    elif self.roi_warp:  # the warp cannot take the box: the crop whose fixed RoI it is
                        size = self.image_size
                        roi = faces.fixed_roi(size, self.facts.roi_ratio, self.facts.fixed_roi)
                        m = faces.roi_crop_matrix(box, size, roi)
                        prepared.append((i, "crop", warp_affine(image, m, size)))
                    else:
                        native = faces.margin_crop_side(box, self.box_margin)
                        size = faces.served_size(native, sizes) if sizes else self.image_size
                        m = faces.margin_crop_matrix(box, size, self.box_margin)
                        prepared.append((i, "crop", warp_affine(image, m, size)))
                else:
                    prepared.append((i, "crop", image))
            except DataError as exc:
                msg = str(exc)
                if key is not None and msg.startswith(f"{key}: ") and not msg.startswith(where[i]):
                    msg = msg[len(key) + 2:]  # the reader named the file; name the row instead
                prepared.append((i, "error", msg if msg.startswith(where[i]) else f"{where[i]}: {msg}"))
        return prepared

    def _run(self, prepared: list[tuple], out: np.ndarray, errors: dict[int, str]) -> None:
        groups: dict[tuple[int, ...], list[tuple]] = {}
        rois = []
        for entry in prepared:
            if entry[1] == "error":
                errors[entry[0]] = entry[2]
            elif entry[1] == "roi":
                rois.append(entry)
            else:
                groups.setdefault(entry[2].shape, []).append(entry)
        for group in groups.values():
            views = self.network.embed_crops(np.stack([e[2] for e in group]))
            out[[e[0] for e in group]] = views.sum(axis=0)
        if rois:
            for entry, views in zip(rois, self.network.embed_rois([(e[2], e[3]) for e in rois])):
                out[entry[0]] = views.sum(axis=0)[0]

    # -- comparing -------------------------------------------------------------------------
    def _as_embeddings(self, x: Any, **where: Any) -> np.ndarray:
        a = np.asarray(x) if isinstance(x, np.ndarray) else None
        if a is not None and a.dtype.kind == "f" and a.ndim in (1, 2) and a.shape[-1] == self.embedding_size:
            return a.astype(np.float64)
        return self.embed(x, **where).astype(np.float64)

    def similarity(self, a: Any, b: Any) -> np.ndarray | float:
        """Cosine similarity of ``a`` and ``b``: embeddings (float ``(D,)`` or ``(N, D)``, rows paired,
        broadcast) or images (embedded first). A float for one pair."""
        ea, eb = self._as_embeddings(a), self._as_embeddings(b)
        na = ea / np.linalg.norm(ea, axis=-1, keepdims=True)
        nb = eb / np.linalg.norm(eb, axis=-1, keepdims=True)
        sim = (na * nb).sum(-1)
        return float(sim) if np.ndim(sim) == 0 else (float(sim[0]) if sim.shape == (1,) else sim)

    def threshold(self, far: float = 1e-3, on: str | None = None) -> Any:
        """The run's :class:`~facebone.predict.thresholds.Threshold` at ``far`` (see that module)."""
        from facebone.predict.thresholds import run_threshold

        if self.facts.run_dir is None:
            raise ConfigError(f"{self.facts.source}: not a run directory, so no saved verification scores; "
                              "give a threshold")
        key = (float(far), on)
        if key not in self._thresholds:
            self._thresholds[key] = run_threshold(self.facts.run_dir, float(far), on)
        return self._thresholds[key]

    def verify(self, a: Any, b: Any, *, far: float = 1e-3, on: str | None = None, threshold: float | None = None,
               **where: Any) -> Verification:
        """Same identity or not: the similarity of ``a`` and ``b`` (one image or embedding each)
        against the threshold at ``far`` on the run's own verification scores (``on`` picks the
        set), or against ``threshold`` when given. ``where``: ``boxes=``/``landmarks=`` for both."""
        if where:
            pair = self.embed([a, b], **where).astype(np.float64)
            sim = float(self.similarity(pair[0], pair[1]))
        else:
            sim = float(self.similarity(a, b))
        if threshold is not None:
            value, source = float(threshold), "given"
        else:
            t = self.threshold(far, on)
            value, source = t.value, t.source()
        return Verification(similarity=sim, threshold=value, source=source, same=sim >= value)


# -- loading -----------------------------------------------------------------------------------

def _locate(source: Path, checkpoint: str | os.PathLike | None) -> tuple[Path | None, Path | None]:
    """``(run_dir, checkpoint)`` for a run directory or a checkpoint file."""
    from facebone.rundir import RunDir

    if source.is_dir():
        return source, Path(checkpoint) if checkpoint else None
    if source.is_file():
        if source.parent.name == RunDir.CHECKPOINTS and RunDir(source.parent.parent).resolved.is_file():
            return source.parent.parent, source
        return None, source
    raise DataError(f"{source}: no such run directory or checkpoint")


def load(source: str | os.PathLike, *, device: str | None = None, precision: str | None = None,
         batch_size: int | None = None, flip: bool | None = None, channels_last: bool | None = None,
         compile: bool | None = None, checkpoint: str | os.PathLike | None = None,
         onnx: str | os.PathLike | None = None, threads: int | None = None, box_margin: float = faces.BOX_MARGIN,
         workers: int = 1, overrides: Sequence[str] = ()) -> Predictor:
    """A :class:`Predictor` for a run directory (its resolved config and latest checkpoint), one
    of a run's checkpoint files, or a backbone safetensors written by `facebone import-weights`.

    Defaults come from the run's ``[embed]`` table (precision, batch size, flip, compile);
    ``channels_last`` defaults to true on the CPU. ``onnx``: run this graph (from `facebone
    export`) in ONNX Runtime instead of PyTorch (fp32; the run still gives config and thresholds).
    ``workers``: threads reading and cropping images ahead of the network.
    """
    from facebone.commands.eval_cmd import latest_checkpoint, open_run

    src = Path(source)
    run_dir, ckpt = _locate(src, checkpoint)
    if run_dir is None:
        return _load_backbone_file(ckpt, device=device, precision=precision, batch_size=batch_size,  # type: ignore[arg-type]
                                   flip=flip, channels_last=channels_last, compile=compile, onnx=onnx,
                                   threads=threads, box_margin=box_margin, workers=workers)
    exp = open_run(run_dir, list(overrides))
    facts = ModelFacts(image_size=int(exp.data.image_size), embedding_size=exp.embedding_size,
                       flip=exp.embed.flip if flip is None else bool(flip), warp=exp.warp.type.split(":")[-1],
                       roi_ratio=float(getattr(exp.warp.options, "roi_ratio", 0.8) or 0.8),
                       batch_size=int(batch_size or exp.embed.batch_size), source=str(run_dir),
                       run_dir=run_dir, checkpoint=None,
                       fixed_roi=str(getattr(exp.warp.options, "fixed_roi", "exact") or "exact"))
    if onnx is not None:
        network = _onnx_network(onnx, facts, threads)
        return Predictor(network, facts, box_margin=box_margin, workers=workers)
    from facebone.commands.eval_cmd import model_from_checkpoint

    ckpt = ckpt or latest_checkpoint(run_dir)
    facts = dataclasses.replace(facts, checkpoint=ckpt)
    model = model_from_checkpoint(exp, ckpt)
    return Predictor(_torch_network(model, facts, device=device or exp.train.device,
                                    precision=precision or exp.embed.precision,
                                    channels_last=channels_last, run_channels_last=exp.embed.channels_last,
                                    compile=exp.embed.compile if compile is None else compile, threads=threads),
                     facts, box_margin=box_margin, workers=workers)


def _onnx_network(path: str | os.PathLike, facts: ModelFacts, threads: int | None) -> Any:
    from facebone.predict.networks import OnnxNetwork

    return OnnxNetwork(path, image_size=facts.image_size, embedding_size=facts.embedding_size, flip=facts.flip,
                       source=facts.source, threads=threads or 0, batch_size=facts.batch_size)


def _torch_network(model: Any, facts: ModelFacts, *, device: str, precision: str, channels_last: bool | None,
                   compile: bool, threads: int | None, run_channels_last: bool = False) -> Any:
    import torch

    from facebone.predict.networks import TorchNetwork
    from facebone.train.runtime import resolve_device

    if threads:
        torch.set_num_threads(int(threads))
    dev = resolve_device(device)
    cl = channels_last if channels_last is not None else (run_channels_last or dev.type == "cpu")
    return TorchNetwork(model, image_size=facts.image_size, flip=facts.flip, roi_warp=facts.warp != "cartesian",
                        precision=precision, channels_last=cl, compile=compile, device=str(dev),
                        batch_size=facts.batch_size)


def _load_backbone_file(path: Path, *, device: str | None, precision: str | None, batch_size: int | None,
                        flip: bool | None, channels_last: bool | None, compile: bool | None, onnx: Any,
                        threads: int | None, box_margin: float, workers: int = 1) -> Predictor:
    """A backbone safetensors with facebone metadata (`facebone import-weights`): Cartesian warp,
    flip test on, no saved verification scores."""
    import json

    from facebone.model.build import build_for_state
    from facebone.weights.keys import load_into, read_safetensors

    state, meta = read_safetensors(path)
    name = meta.get("backbone")
    if not name:
        raise ConfigError(f"{path}: neither a run directory nor a checkpoint naming its backbone in its metadata "
                          "(write one with `facebone import-weights`)")
    size = int(meta.get("image_size", 112))
    model = build_for_state(name, json.loads(meta["options"]) if meta.get("options") else {}, state, image_size=size)
    load_into(model, state, f"{path} ({name})")
    facts = ModelFacts(image_size=size, embedding_size=int(model.embedding_size),
                       flip=True if flip is None else bool(flip), warp="cartesian", roi_ratio=0.8,
                       batch_size=int(batch_size or 64), source=str(path), run_dir=None, checkpoint=path)
    if onnx is not None:
        return Predictor(_onnx_network(onnx, facts, threads), facts, box_margin=box_margin, workers=workers)
    from facebone.model.face_model import FaceModel
    from facebone.plugin.build import build_component
    from facebone.plugin.discovery import get_plugins

    identity = get_plugins().get("warp", "cartesian")
    face_model = FaceModel(build_component(identity, identity.options() if identity.options else None,
                                           image_size=size), model)
    return Predictor(_torch_network(face_model, facts, device=device or "auto", precision=precision or "fp32",
                                    channels_last=channels_last, compile=bool(compile), threads=threads),
                     facts, box_margin=box_margin, workers=workers)

