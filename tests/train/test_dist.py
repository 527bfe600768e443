"""Ranks, collectives in one process, the launcher's checks, workers that die with their launcher."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from facebone.errors import ConfigError
from facebone.train import dist, launch
from facebone.train.dist import Ranks


def test_one_process_needs_no_group():
    ranks = dist.setup("cpu")
    assert ranks == Ranks() and ranks.is_main and not ranks.distributed
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    assert dist.all_gather_object(3) == [3]
    assert dist.on_main(ranks, lambda: "done") == "done"
    with pytest.raises(ConfigError, match="bad"):
        dist.on_main(ranks, lambda: (_ for _ in ()).throw(ConfigError("bad")))


def test_more_processes_than_cpu_cores_is_a_warning(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(launch, "machine_slots", lambda device: (2, "CPU core"))
    warnings: list[str] = []
    launch.check_nproc(2, "cpu", warn=warnings.append)
    assert warnings == []
    launch.check_nproc(5, "cpu", warn=warnings.append)
    assert warnings == ["facebone: warning: --nproc 5 is more than this machine's 2 CPU cores; the processes will "
                        "share them and run slower"]


def test_more_processes_than_gpus_and_nonsense_counts_are_errors(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(launch, "machine_slots", lambda device: (1, "GPU"))
    with pytest.raises(ConfigError, match=r"--nproc 2: this machine has 1 GPU\(s\); nccl needs one GPU per process"):
        launch.check_nproc(2, "auto")
    with pytest.raises(ConfigError, match="--nproc 0: expected at least 1 process"):
        launch.check_nproc(0, "cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="inside a torchrun launch"):
        launch.check_nproc(2, "cpu")


def test_launcher_command_drops_nproc():
    from facebone.commands.run import launcher_command

    assert launcher_command(["run", "e.toml", "--nproc", "2", "--set", "a.b=1"]) == ["run", "e.toml", "--set", "a.b=1"]
    assert launcher_command(["run", "--nproc=4", "e.toml"]) == ["run", "e.toml"]


def test_a_worker_dies_with_its_launcher():
    """kill -9 of torchrun (or of `facebone run --nproc`) must not leave workers training on."""
    middle = textwrap.dedent("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "from facebone.train.dist import die_with_parent; "
                                  "import time; die_with_parent(0.05); print('ready', flush=True); time.sleep(60)"],
                                 stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert child.stdout.readline().strip() == "ready"
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", middle], stdout=subprocess.PIPE, text=True)
    worker = int(launcher.stdout.readline())
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{worker}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the worker outlived its launcher")
