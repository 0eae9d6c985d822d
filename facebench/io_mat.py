"""MATLAB files: v5/v7 through scipy.io, v7.3 (HDF5) through h5py, as plain Python/NumPy values."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from facebench.errors import InputError


def is_hdf5(path: str | os.PathLike) -> bool:
    """True for MATLAB v7.3 files (HDF5 signature at offset 512)."""
    with open(path, "rb") as handle:
        handle.seek(512)
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def load_mat(path: str | os.PathLike) -> dict[str, Any]:
    """Load a .mat file of any version; v7.3 values come back in MATLAB's (row, column) order."""
    if not os.path.isfile(path):
        raise InputError(path, None, "MATLAB file not found")
    if is_hdf5(path):
        return _load_hdf5(path)
    data = _load_v5_isolated(path) if hasattr(os, "fork") else _load_v5(path)
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _load_v5(path: str | os.PathLike) -> dict[str, Any]:
    import scipy.io

    try:
        return scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(path, None, f"cannot read MATLAB file: {exc}") from None


def _load_v5_isolated(path: str | os.PathLike) -> dict[str, Any]:
    """scipy's v5 reader in a forked child: some corrupt files crash it (a segmentation fault), which must be a
    one-line error naming the file, not the end of this process."""
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, send the result (or the error) back, exit without cleanup handlers
        code = 0
        try:
            import faulthandler

            faulthandler.disable()  # a crash here is reported by the parent, not dumped by the child
            os.close(read_end)
            try:
                payload = pickle.dumps(("ok", _load_v5(path)), protocol=pickle.HIGHEST_PROTOCOL)
            except InputError as exc:
                payload = pickle.dumps(("error", exc.message))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise InputError(path, None, f"cannot read MATLAB file: the reader crashed (signal "
                                     f"{os.WTERMSIG(status)}); the file is damaged")
    try:
        kind, value = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - an empty or cut payload: the child failed before sending
        raise InputError(path, None, "cannot read MATLAB file (its reader failed)") from None
    if kind == "error":
        raise InputError(path, None, value)
    return value


def _load_hdf5(path: str | os.PathLike) -> dict[str, Any]:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, None, f"cannot read MATLAB v7.3 file: {exc}") from None
    with handle:
        return {name: _h5_value(handle, handle[name]) for name in handle.keys() if not name.startswith("#")}


def _h5_value(root, node) -> Any:
    import h5py

    if isinstance(node, h5py.Group):
        return {name: _h5_value(root, node[name]) for name in node.keys() if not name.startswith("#")}
    matlab_class = node.attrs.get("MATLAB_class", b"")
    if isinstance(matlab_class, bytes):
        matlab_class = matlab_class.decode()
    if node.attrs.get("MATLAB_empty", 0):
        return np.zeros((0, 0))
    data = node[()]
    if matlab_class == "cell" or node.dtype == h5py.ref_dtype:
        refs = np.asarray(data)
        # Stored transposed: MATLAB (r, c) is HDF5 (c, r).
        cells = np.empty(refs.shape[::-1], dtype=object)
        for index in np.ndindex(refs.shape):
            cells[index[::-1]] = _h5_value(root, root[refs[index]])
        return cells
    if matlab_class == "char":
        codes = np.asarray(data, dtype=np.uint16).T
        if codes.ndim == 2 and codes.shape[0] > 1:
            return ["".join(map(chr, row)) for row in codes]
        return "".join(map(chr, codes.ravel()))
    array = np.asarray(data)
    return array.T if array.ndim >= 2 else array
