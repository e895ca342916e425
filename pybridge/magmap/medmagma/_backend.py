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
    """Symmetric eigendecomposition (ascending), ``torch.linalg.eigh`` on every device (on CPU, MKL's
    syevd: faster here than NumPy's OpenBLAS or SciPy's evr)."""
    return torch.linalg.eigh(a)
