"""Small shared utilities: device choice, seeding, versions, memory guard, progress bars."""
from __future__ import annotations

import logging
import os
import platform
from collections.abc import Iterable
from typing import Any

import numpy as np

logger = logging.getLogger("magmap")

__all__ = ["resolve_device", "seed_everything", "versions", "available_memory", "check_memory", "progress"]


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is visible and ``"cpu"`` otherwise.

    Any explicit torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is checked and returned.
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`device={device!r}` was requested but no CUDA GPU is available; use device='cpu' or 'auto'.")
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"`device={device!r}` is not a torch device; use 'auto', 'cpu' or 'cuda'.") from err
    return device


def seed_everything(seed: int | None) -> np.random.Generator:
    """Seed torch's global RNG and return a NumPy Generator for ``seed`` (``None`` → fresh entropy)."""
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(int(rng.integers(0, 2**63 - 1)) if seed is None else int(seed))
    return rng


def versions() -> dict[str, str]:
    """Versions of magmap and the libraries that shape its numbers (recorded next to results)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("magmap", "numpy", "scipy", "torch", "anndata", "scanpy", "pynndescent", "umap-learn",
                "igraph", "leidenalg"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, or psutil, or a large fallback)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - platform without /proc and psutil
        return 1 << 62


def check_memory(n_bytes: float, what: str, *, fix: str = "", limit: int | None = None) -> None:
    """Raise ``MemoryError`` before allocating when ``n_bytes`` exceeds available memory.

    The limit can be lowered with the environment variable ``MAGMAP_MEMORY_LIMIT`` (bytes).
    """
    if limit is None:
        env = os.environ.get("MAGMAP_MEMORY_LIMIT")
        limit = int(float(env)) if env else available_memory()
    if n_bytes > limit:
        raise MemoryError(
            f"{what} needs about {n_bytes / 2**30:.2f} GiB but only {limit / 2**30:.2f} GiB is available. {fix}".strip()
        )


def progress(iterable: Iterable[Any] | None = None, *, verbose: bool = True, **kwargs: Any):
    """A tqdm progress bar that is silent when ``verbose`` is false (or ``MAGMAP_QUIET=1``)."""
    from tqdm.auto import tqdm

    disable = (not verbose) or os.environ.get("MAGMAP_QUIET") == "1"
    return tqdm(iterable, disable=disable, **kwargs)
