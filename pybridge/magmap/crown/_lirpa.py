"""Optional auto_LiRPA backend (PyPI ``auto_LiRPA==0.3``) behind a compatibility shim.

auto_LiRPA 0.3 (2022) declares torch < 1.13 and does not import on torch 2.13 / NumPy 2
(``environment.md`` row 4). :func:`load_auto_lirpa` installs the smallest shim that makes it import:

* ``numpy.lib.arraysetops`` (removed in NumPy 2) with ``isin``;
* ``np.bool`` (removed alias) restored as ``np.bool_``;
* ``torch.onnx.utils._optimize_graph`` re-exposed from ``torch.onnx._internal.torchscript_exporter``;
* ``torch.onnx.symbolic_helper._set_opset_version`` re-created (it sets the TorchScript exporter's
  ``GLOBALS.export_onnx_opset_version``; torch 2.13 no longer has the function);
* ``torch._C.Node.__getitem__`` (attribute access by name, once defined by ``torch.onnx.utils``),
  which auto_LiRPA's graph parser still uses.

Each patch is applied only when the attribute is missing. The backend is never required: the native
implementation is the default and the import error says how to install the package.
"""
from __future__ import annotations

import logging
import sys
import types
import warnings
from typing import Any, Tuple

import numpy as np
import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = ["apply_shim", "load_auto_lirpa", "lirpa_output_bounds"]

_INSTALL_HINT = (
    "auto_LiRPA is an optional backend. Install the PyPI release without its stale torch pin: "
    "`pip install --no-deps auto_LiRPA==0.3 && pip install tqdm appdirs pyyaml packaging`; "
    "magmap's native bounds (backend='native', the default) need nothing extra."
)
_METHOD_NAMES = {"ibp": "IBP", "crown": "backward", "crown-ibp": "CROWN-IBP"}
_shim_applied = False


def apply_shim() -> None:
    """Patch NumPy/torch so that auto_LiRPA 0.3 imports (idempotent, only missing attributes)."""
    global _shim_applied
    if _shim_applied:
        return
    if "numpy.lib.arraysetops" not in sys.modules:
        try:
            import numpy.lib.arraysetops  # noqa: F401  (NumPy < 2)
        except ImportError:
            mod = types.ModuleType("numpy.lib.arraysetops")
            mod.isin = np.isin  # type: ignore[attr-defined]
            sys.modules["numpy.lib.arraysetops"] = mod
            np.lib.arraysetops = mod  # type: ignore[attr-defined]
    if "bool" not in np.__dict__:
        np.bool = np.bool_  # type: ignore[attr-defined]

    import torch.onnx.symbolic_helper as onnx_symbolic_helper
    import torch.onnx.utils as onnx_utils

    if not hasattr(onnx_utils, "_optimize_graph"):
        from torch.onnx._internal.torchscript_exporter import utils as ts_utils

        onnx_utils._optimize_graph = ts_utils._optimize_graph  # type: ignore[attr-defined]
    if not hasattr(onnx_symbolic_helper, "_set_opset_version"):
        try:
            from torch.onnx._internal.torchscript_exporter import symbolic_helper as ts_helper
        except ImportError:  # pragma: no cover - older torch keeps the public helper
            ts_helper = None
        setter = getattr(ts_helper, "_set_opset_version", None) if ts_helper is not None else None
        if setter is None:
            from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

            def setter(opset_version: int) -> None:
                GLOBALS.export_onnx_opset_version = opset_version

        onnx_symbolic_helper._set_opset_version = setter  # type: ignore[attr-defined]
    if not hasattr(torch._C.Node, "__getitem__"):

        def _node_getitem(node: Any, key: str) -> Any:
            return getattr(node, node.kindOf(key))(key)

        torch._C.Node.__getitem__ = _node_getitem  # type: ignore[attr-defined]
    _shim_applied = True


def load_auto_lirpa() -> types.ModuleType:
    """Import auto_LiRPA (with the shim); raise ``ImportError`` with install instructions if absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            apply_shim()
            import auto_LiRPA
    except ImportError as exc:
        raise ImportError(f"could not import auto_LiRPA ({exc}). {_INSTALL_HINT}") from exc
    return auto_LiRPA


def lirpa_output_bounds(network: nn.Module, lower: Tensor, upper: Tensor, method: str) -> Tuple[Tensor, Tensor]:
    """Output bounds of ``network`` over the box ``[lower, upper]`` computed by auto_LiRPA.

    Parameters
    ----------
    network
        A traceable ``nn.Module`` (auto_LiRPA shares its parameters, so gradients reach them).
    lower, upper
        Box corners, shape ``(batch, n_features)``.
    method
        ``"ibp"``, ``"crown"`` (auto_LiRPA ``"backward"``) or ``"crown-ibp"``.

    Returns
    -------
    lower, upper
        Output bounds, shape ``(batch, n_out)``.
    """
    lirpa = load_auto_lirpa()
    if method not in _METHOD_NAMES:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(_METHOD_NAMES)}")
    center = (upper + lower) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bounded = lirpa.BoundedModule(network, torch.zeros_like(center[:1]), device=center.device)
        ptb = lirpa.PerturbationLpNorm(norm=np.inf, x_L=lower, x_U=upper)
        bx = lirpa.BoundedTensor(center, ptb)
        lb, ub = bounded.compute_bounds(x=(bx,), method=_METHOD_NAMES[method])
    return lb, ub
