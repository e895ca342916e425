"""Shared pytest fixtures: tiny seeded data and paths to the real datasets in ../shared/data."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

os.environ.setdefault("MAGMAP_QUIET", "1")  # no progress bars in test logs

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``shared/`` beside the checkout (override with MAGMAP_SHARED)."""
    env = os.environ.get("MAGMAP_SHARED")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared", REPO.parent.parent / "shared"]:
        if (cand / "data").is_dir():
            return cand
    return REPO.parent / "shared"


def shared_data_path(*parts: str) -> Path:
    """Path of a real dataset; skipped locally when absent, a failure on CI."""
    path = shared_dir().joinpath("data", *parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared dataset missing on CI: {path}")
        pytest.skip(f"shared dataset not found: {path}")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def small_counts(rng: np.random.Generator) -> sp.csr_matrix:
    """40 cells × 30 genes of Poisson counts with no empty rows or columns."""
    X = rng.poisson(1.0, size=(40, 30)).astype(float)
    X[:, 0] += 1
    X[0, :] += 1
    return sp.csr_matrix(X)


@pytest.fixture(scope="session")
def shared_data():
    """``shared_data("folder", "file.h5ad")`` → path of a real dataset (skip locally / fail on CI if absent)."""
    return shared_data_path
