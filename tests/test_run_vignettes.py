"""The notebooks in vignettes/ run as they are shipped: the Python tutorial (executed with nbclient) and the
R Markdown documents mixing R and Python chunks (rendered with rmarkdown through reticulate)."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VIGNETTES = REPO / "vignettes"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed on CI")
        pytest.skip(f"{tool} is not installed")
    return path


def test_python_tutorial_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(VIGNETTES / "magmap-run-tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "robustness_cells: The MED-MAGMA cell network's communities are" in text
    acc = float(re.search(r"predicted from their neighbours in the map: ([0-9.]+)", text).group(1))
    assert acc > 0.6  # held-out pancreas cells land among cells of their own type


def _render(rmd: Path, out: Path) -> str:
    _need("pandoc")
    rscript = _need("Rscript")
    env = {**os.environ, "MAGMAP_PYTHON": os.environ.get("MAGMAP_PYTHON", sys.executable)}
    proc = subprocess.run(
        [rscript, "-e", f"rmarkdown::render('{rmd}', output_dir = '{out}', intermediates_dir = '{out}', quiet = TRUE)"],
        capture_output=True, text=True, env=env, cwd=out, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return html.unescape((out / (rmd.stem + ".html")).read_text(encoding="utf-8"))


def test_main_job_rmd_hands_an_object_from_r_to_python_and_back(tmp_path):
    page = _render(VIGNETTES / "main-job-r-python.Rmd", tmp_path)
    # the AMI computed by Python and recomputed in R from the object that came back
    m = re.search(r"python\s+r\s*\n#>\s*([0-9.]+)\s+([0-9.]+)", page)
    assert m, "the python/r AMI comparison is missing from the rendered page"
    assert float(m.group(1)) == pytest.approx(float(m.group(2)), abs=1e-3)
    assert "medmagma_connectivities" in page and "report.html" in page
