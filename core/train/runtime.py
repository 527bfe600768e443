"""Where and how a run executes: the device, seeding and determinism."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from facebone.errors import ConfigError


def resolve_device(choice: str) -> torch.device:
    """'auto' -> CUDA if available else CPU; 'cuda' without CUDA is a user error."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("[train] device = 'cuda' but CUDA is not available on this machine; use 'auto' or 'cpu'")
    return torch.device(choice)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; make CPU (and cuDNN) algorithms deterministic if asked."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (read at first use)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
