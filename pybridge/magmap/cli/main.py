"""``magmap`` command line: the demo job on the bundled dataset, and a data summary for any file."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from .._utils import versions

logger = logging.getLogger("magmap")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def summarize_file(path: str | None, out: Path, label_key: str | None) -> dict[str, Any]:
    """Load (bundled data when ``path`` is None), validate, summarise, and write ``summary.json``."""
    from ..datasets import baron2016_pancreas, read, summarize_counts

    adata = baron2016_pancreas() if path is None else read(path)
    if label_key is None and path is None:
        label_key = "cell_type"
    if label_key is not None and label_key not in adata.obs:
        raise SystemExit(f"error: --labels {label_key!r} is not a column of obs (have: {list(adata.obs.columns)})")
    labels = adata.obs[label_key].to_numpy() if label_key else None
    summary, per_cell = summarize_counts(adata.X, labels)
    summary["source"] = "bundled baron2016_pancreas" if path is None else str(path)
    out.mkdir(parents=True, exist_ok=True)
    per_cell.index = adata.obs_names
    per_cell.to_csv(out / "per_cell_summary.csv")
    _write_json(out / "summary.json", {"summary": summary, "versions": versions()})
    return summary


def demo(out: Path, *, quick: bool = False) -> dict[str, Any]:
    """The main job on the bundled dataset: summary, then every method that is available."""
    t0 = time.perf_counter()
    summary = summarize_file(None, out, "cell_type")
    record: dict[str, Any] = {"summary": summary, "steps": ["summary"]}
    record["seconds"] = round(time.perf_counter() - t0, 2)
    record["versions"] = versions()
    _write_json(out / "demo.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="magmap", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log messages")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the main job on the dataset shipped with magmap")
    p_demo.add_argument("--out", default="demo_results", help="folder for the results (default: demo_results)")
    p_demo.add_argument("--quick", action="store_true", help="smaller settings (used by the tests)")
    p_sum = sub.add_parser("summarize", help="validate and summarise a count matrix (.h5ad, 10x folder, CSV)")
    p_sum.add_argument("path")
    p_sum.add_argument("--labels", default=None, help="obs column with cell labels")
    p_sum.add_argument("--out", default="summary_results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.quiet:
        import os

        os.environ["MAGMAP_QUIET"] = "1"
    out = Path(args.out)
    if args.command == "demo":
        record = demo(out, quick=args.quick)
        print(f"magmap demo: results in {out.resolve()} ({', '.join(record['steps'])}; {record['seconds']} s)")
    else:
        summary = summarize_file(args.path, out, args.labels)
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
