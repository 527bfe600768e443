"""The process group and this process's place in it: rank, world size, device, backend.

A run started by ``torchrun`` (or by ``facebone run --nproc N``, which goes through the same
elastic launcher, see :mod:`facebone.train.launch`) finds ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in its environment and joins the process group: gloo on CPU, nccl on CUDA (one
GPU per local rank). Without them the run is one process, no group is made, and every
collective here is the identity. Rank 0 is the only one that writes anything.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import socket
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from facebone.errors import ConfigError, FaceboneError
from facebone.train.runtime import resolve_device

T = TypeVar("T")
WAIT_TIMEOUT = datetime.timedelta(hours=12)
"""How long ranks wait for rank 0 to finish work only it does (evaluation, writing a checkpoint)."""


@dataclasses.dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


_wait_group: Any = None


def launched_world_size() -> int:
    """The world size torchrun gave this process (1 when it was not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device_choice: str = "auto") -> Ranks:
    """Join the process group of a torchrun launch (if any) and pick this rank's device."""
    global _wait_group
    device = resolve_device(device_choice)
    world = launched_world_size()
    if world <= 1:
        return Ranks(device=device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        die_with_parent()
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                              "start at most one process per GPU")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    _wait_group = dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT)
    return Ranks(rank=rank, world_size=world, local_rank=local, device=device, backend=backend)


def die_with_parent(interval: float = 0.5) -> None:
    """Kill this process when its launcher dies (e.g. ``kill -9`` of ``torchrun``): the elastic agent
    starts workers in sessions of their own, so nothing else would stop them."""
    import signal
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="facebone-parent-watch", daemon=True).start()


def teardown() -> None:
    """Leave the process group (if this process joined one)."""
    global _wait_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _wait_group = None


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait for every rank (long timeout: ranks may be waiting for rank 0's evaluation)."""
    if active():
        dist.barrier(group=_wait_group)


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` of rank ``src`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, group=_wait_group)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=_wait_group)
    return out


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place (identity in one process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max_(tensor: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


class RankZeroError(FaceboneError):
    """Raised on the other ranks when rank 0 met a user error; rank 0 has printed it (``quiet``)."""

    quiet = True


def on_main(ranks: Ranks, work: Callable[[], T]) -> T:
    """Run ``work`` on rank 0 only and give its result to every rank.

    A user error on rank 0 is raised there and, silently, on every other rank, so all ranks stop
    together instead of waiting for rank 0 forever.
    """
    if not ranks.distributed:
        return work()
    outcome: Any = None
    failure: BaseException | None = None
    if ranks.is_main:
        try:
            outcome = ("ok", work())
        except FaceboneError as exc:
            failure, outcome = exc, ("error", str(exc))
        except BaseException as exc:  # a bug: other ranks stop too, rank 0 keeps the traceback
            failure, outcome = exc, ("error", f"{type(exc).__name__} on rank 0")
    outcome = broadcast_object(outcome)
    if failure is not None:
        raise failure
    if outcome[0] == "error":
        raise RankZeroError(outcome[1])
    return outcome[1]


def describe_devices(ranks: Ranks) -> list[dict[str, Any]]:
    """Every rank's host and device (a collective), for the run's environment record."""
    me: dict[str, Any] = {"rank": ranks.rank, "host": socket.gethostname(), "device": str(ranks.device)}
    if ranks.device.type == "cuda":
        me["name"] = torch.cuda.get_device_name(ranks.device)
    return all_gather_object(me)
