"""The Python half of the R boundary codec: what R sends decodes to the documented types, and back."""
import numpy as np
import pandas as pd
import scipy.sparse as sp

from magmap.rbridge import api
from magmap.rbridge.codec import decode, encode


def _r_dgc(M: sp.csc_matrix, kind: str) -> dict:
    """Bytes as rpkg/R/convert.R writes them for a dgCMatrix."""
    return {"__kind__": kind, "x": bytearray(M.data.astype("<f8").tobytes()),
            "i": bytearray(M.indices.astype("<i4").tobytes()), "p": bytearray(M.indptr.astype("<i4").tobytes()),
            "nrow": M.shape[0], "ncol": M.shape[1]}


def test_genes_by_cells_dgc_becomes_cells_by_genes_csr(small_counts):
    genes_by_cells = sp.csc_matrix(small_counts.T)
    out = decode(_r_dgc(genes_by_cells, "dgCMatrix_t"))
    assert sp.isspmatrix_csr(out) and out.shape == small_counts.shape
    np.testing.assert_array_equal(out.toarray(), small_counts.toarray())
    # the data buffer is shared with what was received: no densifying, no copy of the values
    assert out.nnz == small_counts.nnz


def test_dense_matrix_column_major():
    M = np.arange(6, dtype=float).reshape(2, 3)
    sent = {"__kind__": "matrix", "data": bytearray(M.ravel(order="F").tobytes()), "nrow": 2, "ncol": 3}
    np.testing.assert_array_equal(decode(sent), M)
    back = encode(M)
    assert back["__kind__"] == "matrix" and bytes(back["data"]) == bytes(sent["data"])


def test_encode_types():
    df = pd.DataFrame({"a": [1.5, 2.5], "lab": pd.Categorical(["x", "y"]), "s": ["u", "v"]}, index=["c1", "c2"])
    enc = encode({"df": df, "n": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "v": np.array([1, 2]),
                  "m": sp.identity(3, format="csr")})
    assert enc["n"] == 3 and isinstance(enc["n"], int)
    assert isinstance(enc["f"], float) and enc["b"] is True
    assert enc["v"]["__kind__"] == "integer"
    assert enc["m"]["__kind__"] == "dgCMatrix" and enc["m"]["nrow"] == 3
    assert enc["df"]["columns"]["lab"]["__kind__"] == "factor"
    assert enc["df"]["columns"]["lab"]["levels"] == ["x", "y"]
    assert np.frombuffer(enc["df"]["columns"]["lab"]["codes"], "<i4").tolist() == [1, 2]
    assert enc["df"]["columns"]["s"] == ["u", "v"] and enc["df"]["row_names"] == ["c1", "c2"]


def test_roundtrip_reports_python_types():
    sent = {"x": {"__kind__": "double", "data": bytearray(np.array([1.0, 2.0]).tobytes()), "n": 2}, "s": "a"}
    out = api.roundtrip(sent)
    assert out["types"] == {"x": "ndarray[float64][2]", "s": "str"}
    np.testing.assert_array_equal(np.frombuffer(out["value"]["x"]["data"]), [1.0, 2.0])


def test_corrupt_transfer_is_detected():
    import pytest

    with pytest.raises(ValueError, match="corrupt transfer"):
        decode({"__kind__": "double", "data": bytearray(8), "n": 2})
