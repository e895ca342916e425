"""``magmap run``: the main job on a user's file (or the bundled dataset), with one-line errors for bad input."""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path

__all__ = ["add_parser", "command"]

logger = logging.getLogger("magmap")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``run`` on the ``magmap`` sub-command parser."""
    from ..pipeline import RunSettings

    d = RunSettings()
    p = sub.add_parser(
        "run", help="networks, robust embedding, robustness verdicts and an HTML report from a count matrix",
        description="Run the main job on INPUT (.h5ad, .rds SingleCellExperiment/Seurat, 10x folder or .h5, CSV/TSV "
                    "with cells in rows; omitted: the bundled Baron pancreas data, labelled by cell_type) and write "
                    "report.html, summary.json, results.h5ad, the embedding model and edge lists into --out.")
    p.add_argument("input", nargs="?", default=None, help="count matrix file or 10x folder (default: bundled dataset)")
    p.add_argument("--label", default=None, help="obs column with cell groups, e.g. cell_type (default: none, "
                   "or cell_type for the bundled dataset)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --overwrite)")
    p.add_argument("--layer", default=None, help="layer holding raw counts (default: X, else 'counts', else raw.X)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of every random step (default {d.seed})")
    p.add_argument("--max-cells", type=int, default=d.max_cells,
                   help=f"subsample to this many cells, seeded (default {d.max_cells})")
    p.add_argument("--robin-repeats", type=int, default=d.robin_repeats,
                   help=f"repeats per perturbation level in the robustness test (default {d.robin_repeats})")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out once the new results are complete")
    p.add_argument("--quiet", dest="run_quiet", action="store_true", help="no progress messages")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def _settings(args: argparse.Namespace):
    """The run's settings from the flags; RunSettings checks them, its messages name the flags."""
    from .._validation import renamed_arguments
    from ..pipeline import RunSettings

    with renamed_arguments(seed="--seed", max_cells="--max-cells", robin_repeats="--robin-repeats"):
        return RunSettings(seed=args.seed, max_cells=args.max_cells, robin_repeats=args.robin_repeats)


def command(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run ``magmap run`` with parsed ``args``; returns the exit status (0 success, 2 bad input, 1 failure)."""
    from ..pipeline import InputError, run

    quiet = args.run_quiet or getattr(args, "quiet", False)
    if quiet:
        os.environ["MAGMAP_QUIET"] = "1"
        logging.getLogger("magmap").setLevel(logging.WARNING)
    try:
        settings = _settings(args)
    except (TypeError, ValueError) as err:
        print(f"magmap run: error: {err}", file=sys.stderr)
        return 2
    cmd = "magmap " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        run(args.input, out=args.out, label=args.label, layer=args.layer, settings=settings,
            overwrite=args.overwrite, command=cmd)
    except InputError as err:
        if args.debug:
            traceback.print_exc()
        print(f"magmap run: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("magmap run: interrupted; nothing was written to --out.", file=sys.stderr)
        return 130
    except Exception as err:  # an unexpected failure: one line, the traceback on request
        if args.debug:
            traceback.print_exc()
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"magmap run: failed: {type(err).__name__}: {msg} (nothing was written to --out; rerun with --debug "
              "for the traceback)", file=sys.stderr)
        return 1
    if not quiet:
        print(f"magmap run: results in {Path(args.out).resolve()} (open report.html)")
    return 0
