"""Out-of-core projection with Dask (magmap.scale, ``magmap project``): results equal the in-memory path on
a 2-worker LocalCluster and on the threaded scheduler, worker memory stays bounded by the chunk size, and
an interrupted or killed run resumes from its completion markers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import magmap
from magmap import RobustUMAP, scale
from magmap.cli.main import main as cli_main
from magmap.scale._store import done_chunks

distributed = pytest.importorskip("distributed")

FAST = dict(n_neighbors=10, n_epochs=20, n_top_genes=300, hidden_layers=(32, 32, 32), robust=False, verbose=False)
#: Growth of a worker's peak RSS while it projects 60,000 cells in chunks of 1,000 (measured: 28-31 MB): the
#: bound a user can plan with, well below the whole matrix (~106 MB as CSR, 480 MB dense float32).
WORKER_GROWTH_BOUND = 64 * 2**20


def _resample(adata: ad.AnnData, genes: np.ndarray, n: int, seed: int) -> ad.AnnData:
    """``n`` cells drawn with replacement from ``adata`` with binomial thinning (p = 0.8) of their counts,
    on the columns ``genes`` (so the query has other genes than the model, in another order)."""
    rng = np.random.default_rng(seed)
    X = adata[:, genes].X.tocsr()[rng.integers(0, adata.n_obs, n)]
    X.data = rng.binomial(X.data.astype(np.int64), 0.8).astype(np.float32)
    X.eliminate_zeros()
    return ad.AnnData(X, var=pd.DataFrame(index=pd.Index(genes, dtype=object)),
                      obs=pd.DataFrame(index=[f"cell{i}" for i in range(n)]))


@pytest.fixture(scope="module")
def bundled() -> ad.AnnData:
    return magmap.datasets.baron2016_pancreas()


@pytest.fixture(scope="module")
def model(bundled: ad.AnnData) -> RobustUMAP:
    return RobustUMAP(random_state=0, **FAST).fit(bundled)


@pytest.fixture(scope="module")
def query_genes(bundled: ad.AnnData, model: RobustUMAP) -> np.ndarray:
    """The model's genes and 1,700 others, shuffled."""
    rng = np.random.default_rng(1)
    names = np.asarray(bundled.var_names, dtype=object)
    others = rng.choice(names[~np.isin(names, model.genes_)], 1700, replace=False)
    return rng.permutation(np.concatenate([np.asarray(model.genes_, dtype=object), others]))


@pytest.fixture(scope="module")
def atlas(tmp_path_factory, bundled, query_genes) -> tuple[Path, ad.AnnData]:
    """60,000 resampled cells on disk (.h5ad), and the same cells in memory."""
    q = _resample(bundled, query_genes, 60_000, seed=2)
    path = tmp_path_factory.mktemp("atlas") / "atlas.h5ad"
    q.write_h5ad(path)
    return path, q


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def _warm_and_reset(client, model, bundled, tmp_path) -> None:
    """Load the model and libraries in every worker (a small run), then restart their peak-RSS counts."""
    scale.project(model, bundled[:200].copy(), tmp_path / "warm.zarr", chunk_rows=50, top_genes=2, verbose=False)
    from magmap.scale._worker import reset_peak_rss

    assert all(client.run(reset_peak_rss).values()), "peak RSS cannot be reset on this kernel"


def test_local_cluster_equals_in_memory_with_bounded_worker_memory(client, model, bundled, atlas, tmp_path):
    from magmap.scale._worker import current_rss, peak_rss

    path, q = atlas
    _warm_and_reset(client, model, bundled, tmp_path)
    base = client.run(current_rss)
    run = scale.project(model, path, tmp_path / "out.zarr", chunk_rows=1000, top_genes=3, verbose=False)
    peaks = client.run(peak_rss)
    assert run.scheduler.startswith("distributed") and run.n_run == run.n_chunks == 60 and run.n_skipped == 0
    per_worker = pd.Series([r["worker"] for r in run.records]).value_counts()
    assert len(per_worker) == 2 and per_worker.min() >= 10  # both workers took several chunks
    res = scale.open_projection(tmp_path / "out.zarr")
    np.testing.assert_allclose(res["embedding"].compute(), model.transform(q), rtol=0, atol=1e-6)
    top = model.cell_gene_impact(q[:3000], n_top=3)
    genes = np.asarray(res["attrs"]["genes"])[res["top_gene_index"][:3000].compute()].ravel()
    impact = res["top_gene_impact"][:3000].compute().ravel()
    np.testing.assert_allclose(impact, top["impact"], rtol=1e-5)
    # same genes, except where two genes' impacts tie to float32 rounding (then either order is right)
    assert ((genes == top["gene"].to_numpy()) | np.isclose(impact, np.roll(impact, 1), rtol=1e-5)
            | np.isclose(impact, np.roll(impact, -1), rtol=1e-5)).all()
    matrix_bytes = q.X.data.nbytes + q.X.indices.nbytes + q.X.indptr.nbytes
    growth = {w: peaks[w] - base[w] for w in base}
    assert WORKER_GROWTH_BOUND < matrix_bytes / 1.5
    assert max(growth.values()) < WORKER_GROWTH_BOUND, growth


def test_certify_on_cluster_equals_in_memory(client, model, atlas, tmp_path):
    _, q = atlas
    sub = q[:400].copy()
    scale.project(model, sub, tmp_path / "cert.zarr", chunk_rows=100, certify=True, epsilon=0.05, verbose=False)
    res = scale.open_projection(tmp_path / "cert.zarr")
    cert = model.certify(sub, 0.05)
    np.testing.assert_allclose(res["certified_radius"].compute(), cert.radius, rtol=1e-6)
    np.testing.assert_allclose(res["box_lower"].compute(), cert.lower, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["box_upper"].compute(), cert.upper, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["certified_box"].compute(), cert.relative_diagonal, rtol=1e-5)
    assert res["attrs"]["epsilon"] == 0.05 and res["attrs"]["method"] == model.bound_method


def test_threaded_scheduler_inputs_zarr_and_dask(model, atlas, tmp_path):
    import dask.array as da

    _, q = atlas
    sub = q[:5000].copy()
    expected = model.transform(sub)
    sub.write_zarr(tmp_path / "q.zarr")
    run = scale.project(model, tmp_path / "q.zarr", tmp_path / "a.zarr", chunk_rows=700, client=None, n_threads=2,
                        verbose=False)
    assert run.scheduler == "threads (2)" and run.n_chunks == 8
    np.testing.assert_array_equal(scale.open_projection(tmp_path / "a.zarr")["embedding"].compute(), expected)
    # a bare dask array: columns positional, so it must hold the training genes in training order
    col = pd.Index(model.feature_names_in_).get_indexer(sub.var_names)
    coo = sub.X.tocoo()
    M = sp.csr_matrix((coo.data, (coo.row, col[coo.col])), shape=(sub.n_obs, model.n_features_in_))
    X = da.from_array(M, chunks=(300, -1), asarray=False)
    scale.project(model, X, tmp_path / "b.zarr", chunk_rows=1000, client=None, verbose=False)
    np.testing.assert_allclose(scale.open_projection(tmp_path / "b.zarr")["embedding"].compute(), expected,
                               rtol=1e-5, atol=1e-5)


def test_interrupted_run_resumes(model, atlas, tmp_path):
    """A run that fails after some chunks keeps their markers; the re-run does only the rest."""
    import dask.array as da

    _, q = atlas
    sub = q[:4000].copy()
    expected = model.transform(sub)
    good = da.from_array(sub.X, chunks=(500, -1), asarray=False)

    def fail_late(block, block_info=None):
        if block_info[0]["chunk-location"][0] >= 5:
            raise RuntimeError("simulated crash")
        return block

    bad = ad.AnnData(good.map_blocks(fail_late, dtype=good.dtype, meta=good._meta), var=sub.var)
    out = tmp_path / "r.zarr"
    with pytest.raises(RuntimeError, match="simulated crash"):
        scale.project(model, bad, out, chunk_rows=500, client=None, n_threads=1, max_in_flight=1, verbose=False)
    assert done_chunks(out) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="incomplete: 3 of 8 chunks unfinished"):
        scale.open_projection(out)
    run = scale.project(model, sub, out, chunk_rows=500, client=None, verbose=False)
    assert (run.n_run, run.n_skipped) == (3, 5)
    assert sorted(r["chunk"] for r in run.records) == [5, 6, 7]
    np.testing.assert_array_equal(scale.open_projection(out)["embedding"].compute(), expected)


def _refined_agree(got: np.ndarray, expected: np.ndarray) -> None:
    """Each cell's refinement depends on that cell alone, so chunks give the one-call result; only a cell at a
    tipping point between two populations could settle elsewhere from a rounding difference (none measured)."""
    diag = np.linalg.norm(expected.max(0) - expected.min(0))
    moved = np.linalg.norm(got - expected, axis=1) / diag
    assert np.median(moved) < 1e-5 and np.mean(moved > 1e-3) <= 0.1, np.sort(moved)[-5:]


def test_refined_chunks_equal_one_transform_call(model, atlas, tmp_path):
    _, q = atlas
    sub = q[:700].copy()
    expected = model.transform(sub, refine=True)
    assert not np.allclose(expected, model.transform(sub))
    run = scale.project(model, sub, tmp_path / "r.zarr", refine=True, chunk_rows=250, client=None, n_threads=2,
                        verbose=False)
    res = scale.open_projection(tmp_path / "r.zarr")
    assert run.n_chunks == 3 and res["attrs"]["refine_epochs"] == 100  # the whole input's epochs, not a chunk's
    _refined_agree(res["embedding"].compute(), expected)
    # the command line, with its own epochs
    sub.write_h5ad(tmp_path / "q.h5ad")
    model.save(tmp_path / "m.magmap")
    assert cli_main(["-q", "project", str(tmp_path / "m.magmap"), str(tmp_path / "q.h5ad"), "--out",
                     str(tmp_path / "c.zarr"), "--refine", "--refine-epochs", "20", "--chunk-rows", "300"]) == 0
    _refined_agree(scale.open_projection(tmp_path / "c.zarr")["embedding"].compute(),
                   model.transform(sub, refine=True, refine_epochs=20))
    # a model without the training coordinates fails before any task, with transform's message
    old = RobustUMAP.from_bytes(model.to_bytes())
    old.graph_coords_ = None
    with pytest.raises(ValueError, match="needs the training cells' coordinates"):
        scale.project(old, sub, tmp_path / "o.zarr", refine=True, client=None, verbose=False)
    assert not (tmp_path / "o.zarr").exists()
    with pytest.raises(ValueError, match="refine_epochs"):
        scale.project(model, sub, tmp_path / "o.zarr", refine=True, refine_epochs=-1, client=None, verbose=False)


def test_killed_cli_run_resumes(model, atlas, tmp_path):
    """``magmap project`` killed (SIGKILL) mid-run: the same command finishes only the missing chunks."""
    _, q = atlas
    sub = q[:1200].copy()
    sub.write_h5ad(tmp_path / "q.h5ad")
    model.save(tmp_path / "m.magmap")
    args = [str(tmp_path / "m.magmap"), str(tmp_path / "q.h5ad"), "--out", str(tmp_path / "o.zarr"), "--certify",
            "--chunk-rows", "40", "--threads", "1"]
    env = {**os.environ, "MAGMAP_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "magmap", "-q", "project", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(done_chunks(tmp_path / "o.zarr")) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    finished = done_chunks(tmp_path / "o.zarr")
    assert 3 <= len(finished) < 30
    assert cli_main(["-q", "project", *args]) == 0
    assert len(done_chunks(tmp_path / "o.zarr")) == 30
    res = scale.open_projection(tmp_path / "o.zarr")
    cert = model.certify(sub)
    np.testing.assert_allclose(res["certified_radius"].compute(), cert.radius, rtol=1e-6)
    np.testing.assert_allclose(res["embedding"].compute(), model.transform(sub), rtol=0, atol=1e-6)


def test_lazy_anndata_front_door(model, atlas, tmp_path):
    import h5py

    path, q = atlas
    with h5py.File(path) as f:
        lazy = ad.AnnData(ad.experimental.read_elem_lazy(f["X"], chunks=(250, q.n_vars)), var=q.var.copy())
    small = lazy[:1000].copy()  # a lazy AnnData of 1,000 cells (X still a dask array)
    scale.robust_umap_transform(small, model=model, out=tmp_path / "tl.zarr", certify=True, top_genes=2,
                                chunk_rows=250, client=None)
    assert type(small.obsm["X_robust_umap"]).__module__.startswith("dask")
    ref = q[:1000].copy()
    magmap.tl.robust_umap_transform(ref, model=model, certify=True, top_genes=2)
    np.testing.assert_allclose(small.obsm["X_robust_umap"].compute(), ref.obsm["X_robust_umap"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(small.obs["robust_umap_certified_radius"], ref.obs["robust_umap_certified_radius"],
                               rtol=1e-6)
    assert (small.obs["robust_umap_top_gene"].astype(str).to_numpy()
            == ref.obs["robust_umap_top_gene"].astype(str).to_numpy()).all()
    assert small.uns["robust_umap"]["params"]["out_of_core"] is True
    assert RobustUMAP.from_bytes(small.uns["robust_umap"]["model"]).to_bytes() == model.to_bytes()


# ------------------------------------------------------------------------------------------- bad input
def test_missing_genes_fail_before_any_task(model, atlas, tmp_path):
    _, q = atlas
    drop = q[:50, [g for g in q.var_names if g != model.genes_[0]]].copy()
    with pytest.raises(ValueError, match=model.genes_[0]):
        scale.project(model, drop, tmp_path / "m.zarr", client=None, verbose=False)
    assert not (tmp_path / "m.zarr").exists()
    scale.project(model, drop, tmp_path / "m.zarr", missing_genes="zero", client=None, verbose=False)
    np.testing.assert_allclose(scale.open_projection(tmp_path / "m.zarr")["embedding"].compute(),
                               model.transform(drop, missing_genes="zero"), rtol=0, atol=1e-6)


def test_existing_store_with_other_settings(model, atlas, tmp_path):
    _, q = atlas
    sub = q[:100].copy()
    scale.project(model, sub, tmp_path / "s.zarr", chunk_rows=50, client=None, verbose=False)
    with pytest.raises(ValueError, match=r"other settings \(chunk_rows: 50 there, 25 now\).*overwrite=True"):
        scale.project(model, sub, tmp_path / "s.zarr", chunk_rows=25, client=None, verbose=False)
    run = scale.project(model, sub, tmp_path / "s.zarr", chunk_rows=25, client=None, overwrite=True, verbose=False)
    assert run.n_run == 4
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileExistsError, match="not a magmap projection store"):
        scale.project(model, sub, tmp_path / "plain", client=None, verbose=False)


def test_bad_inputs(model, tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"neither an \.h5ad file nor a \.zarr folder.*magmap\.io\.read\(path\)"):
        scale.open_input(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scale.open_input(tmp_path / "none.h5ad")
    with pytest.raises(TypeError, match=r"fitted RobustUMAP, its bytes \(to_bytes\(\)\) or a model file path, got int"):
        scale.project(42, np.zeros((2, 2)), tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="`chunk_rows`"):
        scale.open_input(np.zeros((3, 2)), chunk_rows=0)
    with pytest.raises(ValueError, match="`layer` applies only to AnnData or file input"):
        scale.open_input(np.zeros((3, 2)), layer="counts")
    with pytest.raises(FileNotFoundError, match="not a projection store"):
        scale.open_projection(tmp_path)
    a = ad.AnnData(sp.csr_matrix((3, 2), dtype=np.float32))
    a.write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(KeyError, match=r"`layer='counts'` is not in .*a\.h5ad \(layers: \[\]\)"):
        scale.open_input(tmp_path / "a.h5ad", layer="counts")
    # the model comes from `model=` or from a reference AnnData, with the fix named otherwise
    with pytest.raises(ValueError, match="pass `model=`"):
        scale.robust_umap_transform(a, out=tmp_path / "r.zarr", client=None)
    with pytest.raises(KeyError, match=r"run magmap.tl.robust_umap\(reference, key_added='robust_umap'\) first"):
        scale.robust_umap_transform(a, reference=a, out=tmp_path / "r.zarr", client=None)


def test_cli_bad_input_exits_with_message(model, tmp_path, capsys):
    model.save(tmp_path / "m.magmap")
    with pytest.raises(SystemExit, match=r"error: input `.*missing\.h5ad` does not exist"):
        cli_main(["-q", "project", str(tmp_path / "m.magmap"), str(tmp_path / "missing.h5ad"), "--out",
                  str(tmp_path / "o.zarr")])
    with pytest.raises(SystemExit, match="--workers must be ≥ 1"):
        cli_main(["-q", "project", str(tmp_path / "m.magmap"), str(tmp_path / "missing.h5ad"), "--out",
                  str(tmp_path / "o.zarr"), "--workers", "0"])


def test_default_chunks_are_smaller_with_certificates(model, atlas, tmp_path):
    _, q = atlas
    sub = q[:20].copy()
    scale.project(model, sub, tmp_path / "p.zarr", client=None, verbose=False)
    scale.project(model, sub, tmp_path / "c.zarr", certify=True, client=None, verbose=False)
    assert scale.open_projection(tmp_path / "p.zarr")["attrs"]["chunk_rows"] == scale.DEFAULT_CHUNK_ROWS == 16384
    assert scale.open_projection(tmp_path / "c.zarr")["attrs"]["chunk_rows"] == 2048
