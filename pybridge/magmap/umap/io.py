"""Model files without pickle: a zip holding ``manifest.json`` and ``weights.safetensors``.

* ``manifest.json`` — format name and version, magmap/torch/numpy versions, hyper-parameters, seed,
  feature names, preprocessing settings, network widths, a/b, fit summary (UTF-8 JSON).
* ``weights.safetensors`` — every array (network weights and biases, preprocessing means/SDs/gene
  indices and principal axes, the training embedding and the training cells' principal components
  for ``transform(refine=True)``) in the safetensors layout: an 8-byte little-endian header length,
  a JSON header ``{name: {"dtype", "shape", "data_offsets"}}``, then raw little-endian bytes. It is
  written and read here with NumPy only (the ``safetensors`` package is not needed, but can read it).

Loading parses JSON and raw numbers only: no pickle, no code execution. The zip uses fixed timestamps
and no compression, so the same model always gives the same bytes. Format 2 added the ``scale``/``n_pcs``
preprocessing settings and the principal axes; format-1 files still load (z-scored, no PCA, as fitted).
The ``graph_coords`` array is optional within format 2 (older readers ignore it; files without it load,
and only ``transform(refine=True)`` then asks for a refit).
"""
from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "write_safetensors", "read_safetensors", "pack_model", "unpack_model",
           "model_to_bytes", "model_from_bytes"]

FORMAT = "magmap.RobustUMAP"
FORMAT_VERSION = 2
#: Parameters a format-1 file (magmap before the PCA/log1p defaults) does not record, with the values
#: that model was fitted with; the preprocessing itself is read from its "preprocess" entry.
_V1_PARAMS = {"scale": True, "n_pcs": None, "robust_epsilon": None, "robust_bound_method": "crown"}
_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4"),
           "U8": np.dtype("u1")}
_NAMES = {v: k for k, v in _DTYPES.items()}
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def write_safetensors(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise named arrays in the safetensors format (sorted names, 8-byte aligned header)."""
    header: dict[str, Any] = {}
    chunks = []
    offset = 0
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder not in ("<", "|", "=") else arr.dtype
        dt = np.dtype(dt.str.replace("=", "<"))
        if dt not in _NAMES:
            raise TypeError(f"cannot store array {name!r} of dtype {arr.dtype} (supported: {sorted(_DTYPES)}).")
        raw = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_safetensors` (returns writable NumPy copies)."""
    if len(blob) < 8:
        raise ValueError("weights file is truncated.")
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = info["data_offsets"]
        dt = _DTYPES[info["dtype"]]
        out[name] = np.frombuffer(blob[base + b0:base + b1], dtype=dt).reshape(info["shape"]).copy()
    return out


def pack_model(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """One self-contained byte blob (zip of ``manifest.json`` + ``weights.safetensors``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in (("manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")),
                           ("weights.safetensors", write_safetensors(arrays))):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def unpack_model(blob: bytes | bytearray | memoryview | np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a blob from :func:`pack_model`; checks the format name and version."""
    if isinstance(blob, np.ndarray):
        blob = blob.astype(np.uint8, copy=False).tobytes()
    blob = bytes(blob)
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
            arrays = read_safetensors(zf.read("weights.safetensors"))
    except (zipfile.BadZipFile, KeyError) as err:
        raise ValueError("not a magmap RobustUMAP model (expected a zip with manifest.json and "
                         "weights.safetensors, as written by RobustUMAP.save / to_bytes).") from err
    if manifest.get("format") != FORMAT:
        raise ValueError(f"model format is {manifest.get('format')!r}, expected {FORMAT!r}.")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"model format version {manifest.get('format_version')} is newer than this magmap "
                         f"supports ({FORMAT_VERSION}); upgrade magmap.")
    return manifest, arrays


def model_to_bytes(model: Any) -> bytes:
    """A fitted :class:`~magmap.umap.RobustUMAP` as one blob: its manifest and every array it needs."""
    from .._utils import versions
    from .certify import reference_diagonal
    from .encoder import layer_widths

    params = {k: v for k, v in model.get_params().items() if k != "encoder"}
    params["hidden_layers"] = list(params["hidden_layers"]) if params["hidden_layers"] is not None else None
    params["encoder"] = None if model.encoder is None else "user-supplied (architecture in 'encoder')"
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(),
        "params": params, "random_state": model.random_state_,
        "feature_names_in": [str(g) for g in model.feature_names_in_],
        "features_positional": model.features_positional_,
        "n_features_in": int(model.n_features_in_), "preprocess": model.preprocessor_.to_manifest(),
        "encoder": {"type": "mlp_linear_relu", "widths": layer_widths(model.encoder_), "output_activation": None},
        "a": model.a_, "b": model.b_, "area_ref": model.area_ref_, "n_epochs": model.n_epochs_,
        "diagonal_ref": reference_diagonal(model, required=False),  # unit of certified radii
        "batch_size": model.batch_size_, "robust_epochs": model.robust_epochs_,
        "robust_epsilon": getattr(model, "robust_epsilon_", None), "phase1_radius": getattr(model, "phase1_radius_", None),
        "fit_time_s": model.fit_time_, "final_loss": {k: v[-1] if v else None for k, v in model.history_.items()},
    }
    arrays = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in model.encoder_.state_dict().items()}
    arrays.update(model.preprocessor_.arrays())
    if getattr(model, "embedding_", None) is not None:
        arrays["embedding"] = np.asarray(model.embedding_, dtype=np.float32)
    if getattr(model, "graph_coords_", None) is not None:
        arrays["graph_coords"] = np.asarray(model.graph_coords_, dtype=np.float32)
    return pack_model(manifest, arrays)


def model_from_bytes(cls: type, blob: bytes | bytearray | np.ndarray, *, device: str = "cpu") -> Any:
    """Rebuild a fitted ``cls`` (``RobustUMAP``) from :func:`model_to_bytes` output (JSON + raw arrays; no code runs)."""
    import torch

    from .._utils import resolve_device
    from .encoder import rebuild
    from .preprocess import Preprocessor

    manifest, arrays = unpack_model(blob)
    params = dict(manifest["params"])
    params.pop("encoder", None)
    if int(manifest.get("format_version", 1)) < 2:
        params = {**_V1_PARAMS, **params}
    params["hidden_layers"] = tuple(params["hidden_layers"]) if params.get("hidden_layers") is not None else None
    model = cls(**params)
    net = rebuild(manifest["encoder"]["widths"])
    state = {k[len("encoder."):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("encoder.")}
    net.load_state_dict(state)
    model.encoder_ = net.to(resolve_device(device)).eval()
    model.preprocessor_ = Preprocessor.from_manifest(manifest["preprocess"], arrays)
    model.hvg_flavor_ = model.preprocessor_.hvg_flavor
    model.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)
    model.features_positional_ = bool(manifest["features_positional"])
    model.n_features_in_ = int(manifest["n_features_in"])
    model.a_, model.b_ = float(manifest["a"]), float(manifest["b"])
    model.area_ref_ = float(manifest["area_ref"])
    model.n_epochs_, model.batch_size_ = manifest["n_epochs"], manifest["batch_size"]
    model.robust_epochs_ = manifest["robust_epochs"]
    model.robust_epsilon_, model.phase1_radius_ = manifest.get("robust_epsilon"), manifest.get("phase1_radius")
    model.random_state_ = manifest["random_state"]
    model.fit_time_ = manifest["fit_time_s"]
    model.history_ = {k: [v] if v is not None else [] for k, v in manifest["final_loss"].items()}
    model.embedding_ = arrays.get("embedding")
    model.graph_coords_ = arrays.get("graph_coords")  # absent from files written before transform(refine=)
    model.manifest_ = manifest
    return model
