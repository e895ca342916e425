"""Benchmark native CROWN bounds (magmap.crown) against auto_LiRPA 0.3 on CPU.

Times IBP, CROWN and CROWN-IBP for batches of 512 and 4096 on the default encoder
(300-100-100-100-2) and a wide one (2000-256-256-256-2), ε = 0.2 (L∞), float32, random weights and
z-score-like inputs. auto_LiRPA runs through the compatibility shim; a configuration whose estimated
auto_LiRPA memory exceeds ``--lirpa-max-gb`` is skipped and recorded as such. Results (with versions,
thread count and load average, since the machine is shared) go to ``benchmarks/results/crown.json``.

Usage::

    .venv/bin/python benchmarks/bench_crown.py [--repeats 3] [--quick]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

import magmap
from magmap.crown import output_bounds

logger = logging.getLogger("bench_crown")
OUT = Path(__file__).resolve().parent / "results" / "crown.json"
NETS = {"300-100-100-100-2": [300, 100, 100, 100, 2], "2000-256-256-256-2": [2000, 256, 256, 256, 2]}
BATCHES = [512, 4096]
METHODS = {"ibp": "IBP", "crown-ibp": "CROWN-IBP", "crown": "backward"}
EPS = 0.2


def _mlp(widths: List[int], seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: List[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _time(fn: Callable[[], object], repeats: int) -> Dict[str, float]:
    """Wall-clock and process CPU time (CPU time is less sensitive to other jobs on the machine)."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"min_s": min(times), "median_s": float(np.median(times)), "min_cpu_s": min(cpu),
            "repeats": repeats}


def _lirpa_gb(widths: List[int], batch: int, method: str) -> float:
    """Rough auto_LiRPA memory (float32): full CROWN keeps (batch, width, n_in) A matrices."""
    if method != "crown":
        return 4 * batch * max(widths) * 8 / 1e9
    hidden = max(widths[1:-1])
    return 4 * batch * hidden * max(widths) * 20 / 1e9  # ~10 GB at 4096 x 300-100 (environment.md)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the 300-wide net and batch 512")
    parser.add_argument("--lirpa-max-gb", type=float, default=3.0)
    parser.add_argument("--no-lirpa", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a shared 2-core machine two spinning OpenMP "
                             "threads slow small kernels down by 10-100x)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)

    lirpa = None
    lirpa_error = None
    if not args.no_lirpa:
        try:
            from magmap.crown._lirpa import load_auto_lirpa

            lirpa = load_auto_lirpa()
        except ImportError as exc:
            lirpa_error = str(exc)
    try:
        from importlib.metadata import version

        lirpa_version = version("auto_LiRPA")
    except Exception:  # noqa: BLE001
        lirpa_version = None

    result: Dict[str, object] = {
        "benchmark": "crown_output_bounds",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "magmap": magmap.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "auto_LiRPA": lirpa_version,
            "python": sys.version.split()[0],
        },
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": list(os.getloadavg()),
        },
        "setup": {"epsilon": EPS, "norm": "Linf", "dtype": "float32", "weights": "nn.Linear default init, seed 0",
                  "inputs": "standard normal", "timing": "bounds only, torch.no_grad(); min over repeats of wall and process CPU time; auto_LiRPA BoundedModule "
                  "built once per network (build time reported separately)"},
        "auto_lirpa_error": lirpa_error,
        "runs": [],
    }
    nets = {"300-100-100-100-2": NETS["300-100-100-100-2"]} if args.quick else NETS
    batches = [512] if args.quick else BATCHES
    for name, widths in nets.items():
        net = _mlp(widths)
        bounded = None
        build_s = None
        if lirpa is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                bounded = lirpa.BoundedModule(net, torch.zeros(1, widths[0]))
                build_s = time.perf_counter() - t0
        for batch in batches:
            torch.manual_seed(1)
            x = torch.randn(batch, widths[0])
            with torch.no_grad():
                fwd = _time(lambda: net(x), args.repeats)
            for method, lirpa_name in METHODS.items():
                big = name.startswith("2000") and method == "crown"
                reps = 1 if big else args.repeats
                with torch.no_grad():
                    output_bounds(net, x[:8], EPS, method)  # warm-up
                    native = _time(lambda: output_bounds(net, x, EPS, method), reps)
                    lo, up = output_bounds(net, x, EPS, method)
                run: Dict[str, object] = {
                    "network": name, "batch": batch, "method": method,
                    "native": native, "forward": fwd,
                    "native_mean_box_area": float(((up - lo).prod(1)).mean()),
                }
                if method == "crown" and batch == 512 and not name.startswith("2000"):
                    def fwd_bwd():
                        net.zero_grad()
                        lo_, up_ = output_bounds(net, x, EPS, method)
                        ((up_ - lo_).prod(1)).mean().backward()
                    run["native_with_backward"] = _time(fwd_bwd, reps)
                if bounded is not None:
                    gb = _lirpa_gb(widths, batch, method)
                    if gb > args.lirpa_max_gb:
                        run["auto_lirpa"] = {"skipped": f"estimated {gb:.1f} GB > {args.lirpa_max_gb} GB"}
                    else:
                        ptb = lirpa.PerturbationLpNorm(norm=np.inf, eps=EPS)

                        def run_lirpa():
                            bx = lirpa.BoundedTensor(x, ptb)
                            return bounded.compute_bounds(x=(bx,), method=lirpa_name)

                        with torch.no_grad(), warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            lreps = 1 if method == "crown" else reps
                            timing = _time(run_lirpa, lreps)
                            llo, lup = run_lirpa()
                        timing["build_s"] = build_s
                        timing["max_abs_diff_vs_native"] = float(
                            max((llo - lo).abs().max(), (lup - up).abs().max()))
                        run["auto_lirpa"] = timing
                        run["speedup_wall"] = timing["min_s"] / native["min_s"]
                        run["speedup_cpu"] = timing["min_cpu_s"] / native["min_cpu_s"]
                logger.info("%s batch=%d %-9s native %.3fs (cpu %.3fs) %s", name, batch, method, native["min_s"],
                            native["min_cpu_s"],
                            "" if "auto_lirpa" not in run else f"auto_LiRPA {run['auto_lirpa']}")
                result["runs"].append(run)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
