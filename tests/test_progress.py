"""Progress bars: drawn on interactive terminals only; ``verbose=False`` and ``MAGMAP_QUIET=1`` silence them."""
from __future__ import annotations

import io
import sys
import types

import pytest

from magmap._utils import progress, show_progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        super().isatty()  # raises ValueError once closed, as real streams do
        return True


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("MAGMAP_QUIET", raising=False)
    monkeypatch.delenv("MAGMAP_PROGRESS", raising=False)


def _draw(stream, **kwargs) -> str:
    bar = progress(range(50), file=stream, desc="work", mininterval=0, **kwargs)
    assert list(bar) == list(range(50))  # the iterable passes through either way
    bar.close()
    return stream.getvalue()


def test_a_log_file_gets_no_bar():
    assert _draw(io.StringIO()) == ""
    assert not show_progress(True, io.StringIO())


def test_a_terminal_gets_a_bar():
    out = _draw(FakeTTY())
    assert "work" in out and "50/50" in out


def test_verbose_false_and_quiet_silence_a_terminal(monkeypatch):
    assert _draw(FakeTTY(), verbose=False) == ""
    monkeypatch.setenv("MAGMAP_QUIET", "1")
    assert _draw(FakeTTY()) == ""
    monkeypatch.setenv("MAGMAP_PROGRESS", "1")  # quiet wins over forcing
    assert _draw(FakeTTY()) == ""


def test_forced_bar_on_any_stream(monkeypatch):
    monkeypatch.setenv("MAGMAP_PROGRESS", "1")
    assert "50/50" in _draw(io.StringIO())
    assert _draw(io.StringIO(), verbose=False) == ""


def test_manual_updates_when_silent():
    bar = progress(total=3, file=io.StringIO(), desc="x")
    bar.update(2)
    bar.set_postfix(loss=1.0)
    bar.close()


def test_jupyter_kernel_counts_as_interactive(monkeypatch):
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert show_progress(True, io.StringIO())
    plain = types.SimpleNamespace(config={})  # a terminal IPython shell writing to a file: no
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: plain))
    assert not show_progress(True, io.StringIO())


def test_closed_stream_is_not_interactive():
    s = FakeTTY()
    s.close()
    assert not show_progress(True, s)
