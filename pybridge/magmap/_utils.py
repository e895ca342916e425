"""Small shared utilities: device choice, seeding, versions, memory guard, progress bars."""
from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

logger = logging.getLogger("magmap")

__all__ = ["resolve_device", "seed_everything", "versions", "available_memory", "check_memory", "progress",
           "show_progress"]


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


def _interactive(stream: Any) -> bool:
    """Whether ``stream`` is a terminal a person watches (a TTY, or a Jupyter kernel's output)."""
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except (ValueError, OSError):  # closed or detached stream
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show_progress(verbose: bool, stream: Any = None) -> bool:
    """Whether a progress bar is drawn on ``stream`` (default ``sys.stderr``).

    Only when ``verbose`` is true and the stream is interactive: in logs and CI, tqdm's carriage-return
    updates would fill files with thousands of lines. ``MAGMAP_QUIET=1`` silences every bar;
    ``MAGMAP_PROGRESS=1`` draws them on any stream (e.g. to watch a log with ``tail -f``).
    """
    if not verbose or os.environ.get("MAGMAP_QUIET") == "1":
        return False
    if os.environ.get("MAGMAP_PROGRESS") == "1":
        return True
    return _interactive(sys.stderr if stream is None else stream)


def progress(iterable: Iterable[Any] | None = None, *, verbose: bool = True, **kwargs: Any):
    """A tqdm progress bar, drawn only when :func:`show_progress` says so (else a silent pass-through
    that still supports ``update``/``set_postfix``/``close``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not show_progress(verbose, kwargs.get("file")), **kwargs)
