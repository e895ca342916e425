#!/usr/bin/env bash
# Runs the GPU section of every benchmark that has one, on a machine with CUDA, one after another, each
# under its own time limit so that one failure does not cost the others. Results JSON and each section's
# log are copied to OUTDIR (default: benchmarks/results). On a machine without CUDA each section says so
# and writes a "skipped" record.
#
#   bash benchmarks/run_gpu_sections.sh [OUTDIR]
#
# Environment: PYTHON (default python3), SECTION_TIMEOUT in seconds (default 300), MAGMAP_SHARED (the
# folder holding data/, as for every benchmark), MEDMAGMA_BASE (MED-MAGMA's input, see bench_medmagma_scale.py).
set -u
cd "$(dirname "$0")/.."
outdir=${1:-benchmarks/results}
mkdir -p "$outdir"
py=${PYTHON:-python3}
limit=${SECTION_TIMEOUT:-300}

section() {
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name: $*"
  timeout "$limit" "$py" "$@" >"$outdir/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
  tail -n 4 "$outdir/$name.log"
}

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

section robust_umap_gpu benchmarks/bench_robust_umap.py --gpu-only --results-dir "$outdir"
# the real cells x HVGs for MED-MAGMA are made beforehand where scanpy is installed (--export-base)
base=${MEDMAGMA_BASE:-build/medmagma_scale_pancreas500.npz}
[[ -f $base ]] || "$py" benchmarks/bench_medmagma_scale.py --export-base "$base"
section medmagma_cuda benchmarks/bench_medmagma_scale.py --cuda-only --base "$base" --cells 20000 100000 \
  --out "$outdir/medmagma_scale_cuda.json"
section atlas_gpu benchmarks/bench_atlas.py --gpu-only --out "$outdir/atlas_gpu.json"
exit 0
