"""`magmap run` on bad input: a one-line error naming the problem and the fix, exit status 2, no traceback,
nothing written; a failure mid-run leaves no folder that looks complete (and an old one intact)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import magmap.pipeline._steps as steps
from magmap.cli import main
from magmap.pipeline import InputError, RunSettings, load_input, run
from test_run_pipeline import FAST, small_baron


def _h5ad(path: Path, X, obs: dict | None = None, layers: dict | None = None) -> Path:
    n, g = X.shape
    a = ad.AnnData(X=X, obs=pd.DataFrame(obs or {}, index=[f"c{i}" for i in range(n)]),
                   var=pd.DataFrame(index=[f"g{j}" for j in range(g)]), layers=layers or {})
    a.write_h5ad(path)
    return path


def _counts(n: int, g: int, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).poisson(2.0, size=(n, g)).astype(np.float32)
    X[:, 0] += 1
    return X


def _fails(args: list[str], capsys, expected: str, out: Path) -> str:
    assert main(["run", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("magmap run: error: ") and "Traceback" not in err
    assert expected in err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.partial-*"))
    return err


def test_unknown_label_names_the_columns(tmp_path, capsys):
    err = _fails(["--label", "nope"], capsys, "--label 'nope' is not a column of the cell annotations", tmp_path / "o")
    assert "cell_type, species" in err and "omit --label" in err


def test_missing_and_unreadable_files(tmp_path, capsys):
    _fails([str(tmp_path / "absent.h5ad")], capsys, "does not exist; check the path", tmp_path / "o")
    broken = tmp_path / "broken.h5ad"
    broken.write_text("not an hdf5 file")
    err = _fails([str(broken)], capsys, f"could not read {str(broken)!r}", tmp_path / "o")
    assert "Supported inputs: .h5ad, .rds" in err
    odd = tmp_path / "matrix.xyz"
    odd.write_text("1")
    _fails([str(odd)], capsys, "do not know how to read", tmp_path / "o")


def test_too_few_cells_or_genes(tmp_path, capsys):
    _fails([str(_h5ad(tmp_path / "few_cells.h5ad", _counts(10, 50)))], capsys,
           "the input has 10 cells with counts; magmap run needs at least 20", tmp_path / "o")
    _fails([str(_h5ad(tmp_path / "few_genes.h5ad", _counts(40, 8)))], capsys,
           "the input has 8 genes with counts; magmap run needs at least 20", tmp_path / "o")


def test_non_count_data(tmp_path, capsys):
    X = _counts(30, 40)
    scaled = (X - X.mean(0)) / X.std(0)
    _fails([str(_h5ad(tmp_path / "scaled.h5ad", scaled))], capsys, "X: it has negative values", tmp_path / "o")
    logged = np.log1p(X / X.sum(1, keepdims=True) * 1e4)
    err = _fails([str(_h5ad(tmp_path / "logged.h5ad", logged))], capsys, "so it looks log-transformed", tmp_path / "o")
    assert "needs raw counts" in err and "--layer" in err
    _fails([str(_h5ad(tmp_path / "x.h5ad", X)), "--layer", "spliced"], capsys,
           "--layer 'spliced' is not a layer of the input", tmp_path / "o")


def test_counts_layer_is_found_when_X_is_logged(tmp_path):
    X = _counts(30, 40)
    path = _h5ad(tmp_path / "layered.h5ad", np.log1p(X), layers={"counts": X})
    a, _ = load_input(path)
    from magmap.pipeline import prepare

    work, _, record = prepare(a, label=None, layer=None, settings=RunSettings())
    assert record["matrix"] == "layers['counts']" and record["values"] == "integer counts"
    np.testing.assert_array_equal(sp.csr_matrix(work.X).toarray(), X)


def test_unusable_label_columns(tmp_path, capsys):
    X = _counts(30, 40)
    path = _h5ad(tmp_path / "x.h5ad", X, obs={"one": ["a"] * 30, "id": [f"c{i}" for i in range(30)]})
    _fails([str(path), "--label", "one"], capsys, "--label 'one' has a single value ('a')", tmp_path / "o")
    _fails([str(path), "--label", "id"], capsys, "has 30 distinct values for 30 cells", tmp_path / "o")


def test_existing_output_folder_is_kept(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["run", "--out", str(out), "--quiet"]) == 2
    assert "already exists and is not empty; choose a new folder or pass --overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_bad_settings(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "o"), "--max-cells", "5", "--quiet"]) == 2
    assert "magmap run: error: `--max-cells` must be at least 20, got 5." in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "o"), "--robin-repeats", "1", "--quiet"]) == 2
    assert "`--robin-repeats` must be at least 2, got 1." in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "o"), "--seed", "-1", "--quiet"]) == 2
    assert "`--seed` must be at least 0, got -1." in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_failure_mid_run_leaves_nothing_and_keeps_the_old_folder(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure in the embedding step")

    monkeypatch.setattr(steps, "embedding", broken)
    data = tmp_path / "small.h5ad"
    small_baron(40).write_h5ad(data)
    out = tmp_path / "o"
    assert main(["run", str(data), "--label", "cell_type", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "RuntimeError: simulated failure in the embedding step" in err
    assert "nothing was written to --out" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [data]
    out.mkdir()
    (out / "old.txt").write_text("previous results")
    with pytest.raises(RuntimeError):
        run(small_baron(40), out=out, label="cell_type", overwrite=True, settings=RunSettings(**FAST))
    assert [p.name for p in out.iterdir()] == ["old.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["o", "small.h5ad"]


def test_overwrite_replaces_the_folder_once_complete(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "old.txt").write_text("previous results")
    run(small_baron(40), out=out, label="cell_type", overwrite=True, settings=RunSettings(**FAST))
    assert not (out / "old.txt").exists() and (out / "report.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["o"]
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not the private mode of a temporary folder


def test_command_line_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "magmap", "run", str(tmp_path / "absent.csv"), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("magmap run: error: input ")
    assert not (tmp_path / "o").exists()


def test_readers_for_csv_and_10x(tmp_path):
    X = _counts(25, 30)
    frame = pd.DataFrame(X, index=[f"c{i}" for i in range(25)], columns=[f"g{j}" for j in range(30)])
    frame.to_csv(tmp_path / "m.csv")
    a, source = load_input(tmp_path / "m.csv")
    np.testing.assert_array_equal(np.asarray(a.X), X)
    tenx = tmp_path / "tenx"
    tenx.mkdir()
    import scipy.io

    scipy.io.mmwrite(str(tenx / "matrix.mtx"), sp.coo_matrix(X.T))
    pd.DataFrame({"id": frame.columns, "name": frame.columns, "t": "Gene Expression"}).to_csv(
        tenx / "features.tsv", sep="\t", header=False, index=False)
    pd.Series(frame.index).to_csv(tenx / "barcodes.tsv", sep="\t", header=False, index=False)
    b, _ = load_input(tenx)
    np.testing.assert_array_equal(sp.csr_matrix(b.X).toarray(), X)
    with pytest.raises(InputError, match="could not read"):
        (tmp_path / "bad.h5").write_text("x")
        load_input(tmp_path / "bad.h5")
