"""``facebone run EXP --nproc N``: N local processes through torch.distributed's elastic launcher.

This is what ``torchrun --standalone --nproc_per_node=N -m facebone run EXP`` does: the elastic
agent rendezvouses on localhost at a free port (c10d backend, endpoint ``localhost:0``), starts
the workers with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set, and stops them all when one fails.
Multi-node training uses torchrun itself (``--nnodes``, ``--node_rank``, ``--rdzv_endpoint``).
"""
from __future__ import annotations

import os
import sys
import uuid
from typing import Sequence

from facebone.errors import ConfigError


def machine_slots(device: str) -> tuple[int, str]:
    """How many processes this machine runs well: (GPUs, "GPU") on CUDA, else (CPU cores, "CPU core")."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.device_count(), "GPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return cores, "CPU core"


def check_nproc(nproc: int, device: str, warn=lambda m: print(m, file=sys.stderr)) -> None:  # type: ignore[no-untyped-def]
    """Refuse ``nproc < 1`` and more processes than GPUs (nccl cannot share one); warn on CPU oversubscription."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: expected at least 1 process")
    if os.environ.get("WORLD_SIZE") is not None:
        raise ConfigError("--nproc given inside a torchrun launch; use one or the other")
    slots, kind = machine_slots(device)
    if nproc > slots:
        if kind == "GPU":
            raise ConfigError(f"--nproc {nproc}: this machine has {slots} GPU(s); nccl needs one GPU per process "
                              "(use [train] device = 'cpu' for more gloo processes)")
        warn(f"facebone: warning: --nproc {nproc} is more than this machine's {slots} {kind}s; "
             "the processes will share them and run slower")


def launch_local(nproc: int, command: Sequence[str]) -> int:
    """Run ``python -m facebone COMMAND...`` in ``nproc`` local processes; the exit status of the run."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if "OMP_NUM_THREADS" not in os.environ:  # as torchrun does: the processes share the cores
        slots, _ = machine_slots("cpu")
        os.environ["OMP_NUM_THREADS"] = str(max(1, slots // nproc))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.1)
    try:
        elastic_launch(config, sys.executable)("-u", "-m", "facebone", *command)
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()]
        code = next((c for c in codes if c > 0), None)
        return code if code is not None else 1
    return 0
