"""The main job behind ``magmap run`` and R's ``magmapReport()``: from a count matrix to MED-MAGMA and GmGM
networks, gene modules, robustness verdicts, a certified RobustUMAP embedding and a self-contained report."""
from ._inputs import InputError, load_input
from ._run import FILES, RUN_KEY, prepare, run
from ._steps import RunSettings

__all__ = ["run", "prepare", "load_input", "RunSettings", "InputError", "FILES", "RUN_KEY"]
