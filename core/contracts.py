"""The component contracts: the stable API plugin authors code against.

Factories are called as ``factory(options, **runtime)`` where ``options`` is the validated
options dataclass instance (None if the component declares none) and ``runtime`` holds the
values the core supplies. A factory must accept ``**runtime`` it does not use, so the core
can add values later without breaking plugins.

backbone
    ``factory(options, *, embedding_size: int, image_size: int, **runtime) -> nn.Module``.
    The module has attributes ``embedding_size`` (D) and ``input_size`` ((H, W) it expects).
    ``forward(x)``: ``x`` is ``(N, 3, H, W)`` float RGB in [-1, 1]; returns ``(N, D)``, the raw
    (not normalised) embedding. A backbone that works in the warp's RoI frame sets
    ``takes_rois = True``; its ``forward(x, rois=None)`` then gets the RoIs the warp used (None
    for the warp's fixed box). Any component may pass ``check=`` to ``registry.add`` to refuse
    combinations at validation time (e.g. a backbone that only works behind one warp).

    Optional, for a backbone that serves several input sizes (``btnet50``: a trunk and
    low-resolution branches):

    * ``input_sizes``: tuple of the ``(H, W)`` it serves natively, the main one first. Its
      presence means the backbone takes inputs of any size and routes each batch itself, so
      the embedder hands it images at their native size, batched by size, instead of resizing
      them to ``image_size`` (see :func:`routes_inputs`). ``forward(x, branch=S)`` forces the
      path that serves ``S x S`` inputs (``x`` is resized to it when needed).
    * ``complexity_table()``: rows ``{"part": str, "input_size": int, "params": int, ...}``;
      `facebone describe` prints one line per row with the MACs of a forward at that size
      (further keys become further columns).
    * ``complete_state_dict(state)``: a full state dict from a partial one of another layout
      (e.g. a trunk-only iresnet checkpoint); weight loaders call it before matching keys.
    * ``import_state_dicts(states, names)``: one state dict merged from several foreign
      checkpoints (`facebone import-weights btnet ...`); ValueError naming the file on a misfit.

head
    ``factory(options, *, num_classes: int, embedding_size: int, seed: int, **runtime) -> nn.Module``.
    ``forward(cosine, labels, norms)``: ``cosine`` is ``(N, C)`` cosine similarity of normalised
    embeddings and normalised class centres (computed by the core's classifier), ``labels`` is
    ``(N,)`` int64 where ``-1`` means "this row's class is not among these C columns" (Partial FC:
    another rank's shard, or not sampled): such a row gets no margin. ``norms`` is ``(N, 1)``
    embedding norms, with gradient (detach them where the formula says so). Returns ``(N, C)``
    logits for cross-entropy (scale included). The classifier weights belong to the core.
    Rows are the global batch, columns the local shard: statistics over target logits must be
    summed with :func:`all_reduce_sum`. State (EMA statistics, generator state) lives in buffers,
    so a checkpoint restores it exactly. Optional ``loss_terms(norms) -> dict[str, Tensor]``:
    extra named loss terms (weights included) added to the cross-entropy and logged.

warp
    ``factory(options, *, image_size: int, **runtime) -> nn.Module``, differentiable and batched.
    ``forward(images, rois=None)``: ``images`` ``(N, 3, H, W)``; ``rois`` optional ``(N, 4)``
    boxes ``(x1, y1, x2, y2)`` in pixels (pixel centres at +0.5: convert integer-centre boxes, e.g.
    ibug's, with ``facebone.plugins.warps.mapping.from_ibug_rois``) or ``(N, 5)`` with an angle in
    radians. Returns the warped images; attribute ``output_size`` ((H, W)). ``restore(warped,
    rois=None, size=None)`` is the inverse. Optional ``forward_with_rois(images, rois=None)``
    returns ``(warped, rois_used)`` (jittered in training; None for the fixed box).

objective
    ``factory(options, *, num_classes: int, embedding_size: int, seed: int, **runtime) -> nn.Module``
    (its own parameters, if any, train with the model). ``forward(batch, *, model, classifier, head,
    teacher=None) -> dict[str, Tensor]``: named, already weighted, scalar loss terms; the core
    optimises their sum and logs each as ``train/<name>``. ``batch`` is a :class:`Batch` (this
    rank's share). ``classifier(embeddings (n, D), labels (n,))`` returns ``(cosine (N, C_local),
    labels_local (N,) with -1, norms (N, 1))`` over the global batch (N rows: embeddings are
    all-gathered with gradient under DDP) and ``classifier.cross_entropy(logits, labels_local)``
    is the cross-entropy with the softmax across ranks. A term that every rank computes
    identically from those gathered outputs (a function of ``norms``, say) goes through
    ``facebone.train.collectives.replicated`` so its gradient is counted once; terms of this
    rank's own ``n`` rows (an MSE to a teacher) need nothing. An options field named ``teacher`` (a
    run directory or checkpoint path; '' for none) makes the core load that model frozen, in eval
    mode, and pass it as ``teacher``.

evaluator
    ``factory(options, *, data_root: Path | None, **runtime) -> callable``.
    ``evaluate(embedder: Embedder, context: EvalContext) -> dict[str, float]``: a flat dict of
    metric name -> float (the core prefixes nothing; use distinct names such as
    ``"lfw/accuracy"``). Artifacts (scores, plots, JSON) go under ``context.out_dir``.
    An evaluator that raises does not stop the others: its error is recorded in
    ``results.json`` under ``"eval_errors"`` and reported after the others have run.

``summary.json`` (what ``facebone compare`` reads)
    An evaluator whose results should be comparable across runs writes
    ``context.out_dir/summary.json`` (``RUN_DIR/eval/<name>/summary.json``) with
    :func:`facebone.metrics.artifacts.save_summary`::

        {
          "evaluator": "verification",                # the evaluator's type
          "metrics": {"lfw/accuracy": 0.99, ...},     # the dict it returned (null for NaN/Inf)
          "sets": {                                   # one entry per score set; {} if none
            "lfw": {
              "scores": "lfw_scores.npy",             # float (P,): higher = more likely the same identity
              "labels": "lfw_labels.npy",             # bool (P,): True = same identity
              "accuracy": 0.99, "accuracy_std": 0.004 # optional: compare's Acc columns
            }
          }
        }

    File names are relative to ``out_dir``; the two arrays have the same length (``.npy``,
    no pickle). Compare prints TPR at FPR, AUC and EER of every set and plots its ROC; with
    ``"sets": {}`` it prints the numeric ``metrics`` instead (identification). Anything it
    cannot read (no ``summary.json``, a set without both files, unreadable or mismatched
    arrays) is skipped with a warning naming the file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclasses.dataclass
class Batch:
    """What an objective receives: this rank's share of the global batch.

    ``images`` ``(n, 3, H, W)`` float in [-1, 1] on the training device; ``labels`` ``(n,)`` int64
    class ids; ``rois`` optional ``(n, 4)`` or ``(n, 5)`` boxes for warps that use them.
    """

    images: Any
    labels: Any
    rois: Any = None


@runtime_checkable
class Embedder(Protocol):
    """What evaluators receive: a model in eval mode with batching, flip test and precision
    handled by the core.

    Images are a ``uint8`` array ``(N, H, W, 3)`` in RGB, or a sequence of ``(H, W, 3)`` arrays
    of any sizes. The embedder resizes them to its ``image_size``, unless the backbone routes
    inputs by size (:func:`routes_inputs`): then each image goes in at its native size, images
    of one size batched together. ``branch`` (routing backbones only) forces the path serving
    ``branch x branch`` inputs. Calls may be made per chunk; the embedder batches.
    """

    embedding_size: int
    image_size: int
    flip: bool

    def views(self, images: Any, branch: int | None = None) -> np.ndarray:
        """Raw embeddings ``(V, N, D)`` float32: V = 2 (original, mirrored) with flip test, else 1."""
        ...

    def __call__(self, images: Any, branch: int | None = None) -> np.ndarray:
        """``(N, D)`` float32: the sum of the views (flip-summed), not normalised."""
        ...


def routes_inputs(model: Any) -> bool:
    """True when ``model`` (a backbone, or a model with a ``backbone``) declares ``input_sizes``:
    it takes inputs of any size and picks its own path for each batch."""
    for wrapper in ("module", "_orig_mod"):  # DistributedDataParallel, torch.compile
        model = getattr(model, wrapper, model)
    backbone = getattr(model, "backbone", model)
    return getattr(backbone, "input_sizes", None) is not None


@dataclasses.dataclass
class EvalContext:
    """Where an evaluator writes, and run-time facts it may use."""

    out_dir: Path
    name: str
    device: str = "cpu"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def all_reduce_sum(tensor: Any) -> Any:
    """Sum ``tensor`` over the training process group (no gradient); the tensor itself in one process.

    For heads whose statistics need every rank's share, e.g. the mean target logit under Partial
    FC, where each target column lives on one rank only.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out
