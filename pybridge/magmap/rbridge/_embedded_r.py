"""Starting R inside Python (rpy2) without breaking the child processes Python starts afterwards.

Embedding R runs R's ``ldpaths``, which puts R's library directories, ``/usr/lib/<arch>`` among them,
on ``LD_LIBRARY_PATH`` of this process. A Python built with a shared ``libpython`` that lives elsewhere
(pyenv, conda, a source build) finds it through its RUNPATH, which ``LD_LIBRARY_PATH`` overrides: every
child Python started later (dask workers, ``multiprocessing`` spawn) then loads the system's
``libpython`` of the same minor version, and fails on the first extension module built against the
other one (``import _ssl``: undefined symbol). Putting this interpreter's own library directory first
keeps R's entries and makes children load the ``libpython`` their executable was built with.
"""
from __future__ import annotations

import os
import sysconfig
import warnings
from typing import Any

__all__ = ["robjects", "own_libpython_first"]


def own_libpython_first(environ: Any = None) -> bool:
    """Put this interpreter's ``LIBDIR`` first on ``LD_LIBRARY_PATH`` (when Python is a shared build
    and the variable is set); returns whether the variable changed. ``environ``: the mapping to edit
    (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    current = env.get("LD_LIBRARY_PATH")
    libdir = sysconfig.get_config_var("LIBDIR")
    if not current or not sysconfig.get_config_var("Py_ENABLE_SHARED") or not libdir or not os.path.isdir(libdir):
        return False
    entries = current.split(os.pathsep)
    if entries[0] == libdir:
        return False
    env["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *(e for e in entries if e != libdir)])
    return True


def robjects() -> Any:
    """``rpy2.robjects`` with R started, and ``LD_LIBRARY_PATH`` repaired for child processes
    (:func:`own_libpython_first`). Raises ImportError when rpy2 or R cannot be loaded."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="R was initialized outside of rpy2")
        import rpy2.robjects as ro
    own_libpython_first()
    return ro
