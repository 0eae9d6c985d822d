"""The first columns of a table of numbers (prediction files): a compiled strict parser, numpy for the rest."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

try:
    from facebench import _numtable
except ImportError:  # built without a C compiler: numpy parses everything
    _numtable = None


def compiled_parser() -> bool:
    """Whether the compiled parser is in use ($FACEBENCH_PURE_PARSER=1 turns it off)."""
    return _numtable is not None and os.environ.get("FACEBENCH_PURE_PARSER", "") in ("", "0")


def numpy_rows(body: bytes, n_rows: int, n_cols: int = 5) -> np.ndarray | None:
    """numpy.loadtxt's reading of the first `n_cols` numbers per line, or None unless it gives `n_rows` rows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": the row count says so
            rows = np.loadtxt(io.BytesIO(body.replace(b",", b" ")), dtype=np.float64, usecols=range(n_cols),
                              ndmin=2, comments=None)
    except ValueError:
        return None
    # loadtxt skips blank lines; callers count lines, so a blank one makes the row count differ.
    return rows if rows.shape[0] == n_rows else None


def number_rows(body: bytes, n_rows: int, n_cols: int = 5) -> np.ndarray | None:
    """The first `n_cols` numbers of each of `n_rows` lines ([n_rows, n_cols] float64), or None if not such a table.

    Values and outcome are numpy.loadtxt's (spaces, tabs and commas separate fields); the compiled parser
    handles plain decimal numbers and hands everything else, malformed input included, to numpy.
    """
    if compiled_parser():
        out = np.empty((n_rows, n_cols), dtype=np.float64)
        status, _ = _numtable.parse_rows(body, out, n_cols)
        if status == 0:
            return out
    return numpy_rows(body, n_rows, n_cols)
