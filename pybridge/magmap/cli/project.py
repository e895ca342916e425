"""``magmap project MODEL INPUT --out OUT``: project (and certify) cells out of core, resumably."""
from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``project`` subcommand on ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "project", help="project cells of a large .h5ad/.zarr with a saved RobustUMAP, chunk by chunk (resumable)",
        description="Project the cells of INPUT with the RobustUMAP model MODEL into the zarr store OUT, one chunk "
                    "of cells per Dask task; re-running the same command skips the chunks already finished.")
    p.add_argument("model", help="model file written by RobustUMAP.save() or saveRobustUMAP()")
    p.add_argument("input", help=".h5ad file or .zarr folder (read lazily: each task reads its own rows)")
    p.add_argument("--out", required=True, help="output zarr folder (embedding, certificates, top genes)")
    p.add_argument("--certify", action="store_true", help="also certified boxes at --epsilon and certified radii")
    p.add_argument("--epsilon", type=float, default=None, help="box radius (default: the model's epsilon)")
    p.add_argument("--fraction", type=float, default=None, help="box-diagonal limit of the radius (default 0.05)")
    p.add_argument("--top-genes", type=int, default=None, metavar="K", help="store the K genes moving each cell most")
    p.add_argument("--layer", default=None, help="layer holding the counts (default: X)")
    p.add_argument("--missing-genes", choices=("error", "zero"), default="error",
                   help="model genes absent from INPUT: fail (default) or treat as zero counts")
    p.add_argument("--refine", action="store_true",
                   help="optimise each cell's position against the training map after the network's projection, "
                        "as umap-learn's transform does (same result whatever the chunks)")
    p.add_argument("--refine-epochs", type=int, default=None, metavar="N",
                   help="epochs of --refine (default: 100 up to 10,000 cells, 30 beyond)")
    p.add_argument("--chunk-rows", type=int, default=None, help="cells per task (default 16384; 2048 with --certify)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="dask.distributed scheduler address (e.g. tcp://host:8786); default: threads here")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="start a local dask.distributed cluster of N single-threaded worker processes")
    p.add_argument("--threads", type=int, default=None, help="threads of the local threaded scheduler")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds another projection")
    return p


def _client(stack: ExitStack, args: argparse.Namespace) -> Any:
    if args.scheduler is None and args.workers is None:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise SystemExit("error: --scheduler/--workers need dask.distributed: pip install 'magmap[dask]'") from err
    if args.scheduler is not None:
        return stack.enter_context(Client(args.scheduler))
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be ≥ 1, got {args.workers}")
    cluster = stack.enter_context(LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None))
    return stack.enter_context(Client(cluster))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``magmap project`` and return its summary (also printed as JSON by the caller)."""
    from ..scale import project

    with ExitStack() as stack:
        client = _client(stack, args)
        try:
            res = project(args.model, args.input, args.out, layer=args.layer, certify=args.certify,
                          epsilon=args.epsilon, fraction=args.fraction, top_genes=args.top_genes,
                          missing_genes=args.missing_genes, refine=args.refine, refine_epochs=args.refine_epochs,
                          chunk_rows=args.chunk_rows,
                          client=client, n_threads=args.threads, overwrite=args.overwrite, verbose=not args.quiet)
        except (ValueError, KeyError, OSError) as err:  # bad input: the message names the argument and the fix
            raise SystemExit(f"error: {err.args[0] if isinstance(err, KeyError) else err}") from err
    return {"out": str(res.out), "n_cells": res.n_obs, "n_chunks": res.n_chunks, "chunks_run": res.n_run,
            "chunks_skipped": res.n_skipped, "seconds": round(res.seconds, 2),
            "cells_per_second": round(res.cells_per_second, 1) if res.n_run else None,
            "scheduler": res.scheduler, "peak_rss_mib": {k: round(v / 2**20) for k, v in res.peak_rss.items()}}

