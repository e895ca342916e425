"""Torch float64 helpers shared by the MED-MAGMA modules."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_tensor", "eigh", "DTYPE"]

DTYPE = torch.float64


def to_tensor(a, device: str) -> torch.Tensor:
    """float64 tensor on ``device`` (zero-copy for CPU float64 ndarrays)."""
    return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)


def eigh(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric eigendecomposition (ascending). On CPU, NumPy's LAPACK driver: torch's CPU ``eigh``
    was ~10× slower on our 2-core test machine; on GPU, ``torch.linalg.eigh``."""
    if False and a.device.type == "cpu":
        w, v = np.linalg.eigh(a.numpy())
        return torch.from_numpy(w), torch.from_numpy(v)
    return torch.linalg.eigh(a)
