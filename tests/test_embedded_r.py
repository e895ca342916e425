"""R embedded through rpy2 must not break the Python child processes started afterwards (dask workers)."""
import os
import subprocess
import sys
import sysconfig

import pytest

from magmap.rbridge._embedded_r import own_libpython_first

LIBDIR = sysconfig.get_config_var("LIBDIR")
SHARED = bool(sysconfig.get_config_var("Py_ENABLE_SHARED")) and os.path.isdir(LIBDIR or "")


@pytest.mark.skipif(not SHARED, reason="this Python links libpython statically: LD_LIBRARY_PATH cannot mislead it")
def test_own_libdir_goes_first_and_r_entries_stay():
    # what R's ldpaths leaves (R's lib, another system directory, an empty entry), with this Python's
    # LIBDIR somewhere after the first entry (Debian's Python has LIBDIR /usr/lib/<arch>, pyenv its own)
    others = ["/nonexistent/R/lib", "/nonexistent/arch-libs", ""]
    env = {"LD_LIBRARY_PATH": os.pathsep.join([others[0], others[1], LIBDIR, others[2]])}
    assert own_libpython_first(env)
    entries = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert entries == [LIBDIR, *others]
    assert not own_libpython_first(env)  # already first: nothing to do


def test_unset_path_is_left_alone():
    env: dict[str, str] = {}
    assert not own_libpython_first(env)
    assert env == {}


@pytest.mark.r
def test_child_python_imports_ssl_after_r_started():
    pytest.importorskip("rpy2")
    from magmap.rbridge._embedded_r import robjects

    ro = robjects()
    assert ro.r("1 + 1")[0] == 2
    # what a dask worker or a multiprocessing spawn does first: a new interpreter importing an extension
    # module built against this Python's libpython
    child = subprocess.run([sys.executable, "-c", "import ssl, sys; print(sys.version)"], env=os.environ.copy(),
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == sys.version
