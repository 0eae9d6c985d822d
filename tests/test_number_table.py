"""The compiled number-table parser agrees with numpy.loadtxt bit for bit, and hands it everything odd."""

from __future__ import annotations

import shutil
import sysconfig

import numpy as np
import pytest

from facebench import number_table
from facebench.number_table import number_rows, numpy_rows

compiled = pytest.mark.skipif(number_table._numtable is None, reason="compiled parser not built (no C compiler)")

ODD_TOKENS = ["nan", "inf", "-inf", "Infinity", "1e400", "-1e-400", "1.", "-.5", ".5e3", "+3", "1e", "e1", "-", "+",
              ".", "abc", "1.5x", "0x10", "1_0", "5e-324", "2.2250738585072014e-308", "9007199254740993",
              "123456789012345678901", "0.1e-30", "1E+5", "-0", "00012.5000", "1e22", "1e23", "4.9e-324",
              "1.7976931348623157e308", "0.30000000000000004", "1..2", "1e+", "--1", "1,5", "\x0b", "\xa0"]


def _token(rng: np.random.Generator) -> str:
    value = rng.normal() * 10.0 ** int(rng.integers(-8, 9))
    kind = int(rng.integers(0, 10))
    if kind == 0:
        return str(int(value))
    if kind == 1:
        return f"{value:.2f}"
    if kind == 2:
        return repr(value)
    if kind == 3:
        return f"{value:e}"
    if kind == 4:
        return f"{value:.{int(rng.integers(15, 25))}e}"
    if kind == 5:
        return f"{value:.{int(rng.integers(0, 30))}f}"
    if kind == 6:
        return str(rng.choice(ODD_TOKENS))
    return f"{value:.{int(rng.integers(1, 18))}g}"


def _random_body(rng: np.random.Generator) -> tuple[bytes, int]:
    n_lines = int(rng.integers(0, 5))
    lines = []
    for _ in range(n_lines):
        n_fields = int(rng.integers(2, 9)) if rng.random() < 0.15 else 5 + int(rng.integers(0, 2))
        separators = [str(rng.choice([" ", "  ", "\t", ",", ", ", " \t"])) for _ in range(n_fields)]
        line = "".join(_token(rng) + sep for sep in separators)
        if rng.random() < 0.4:
            line = line.rstrip(" ,\t")
        if rng.random() < 0.05:
            line = " " * int(rng.integers(0, 3))
        if rng.random() < 0.05:
            line = "\t " + line
        lines.append(line)
    body = "\n".join(lines)
    if rng.random() < 0.1:
        body += "\n" * int(rng.integers(1, 3))
    claimed = n_lines + (int(rng.integers(-1, 2)) if rng.random() < 0.1 else 0)
    return body.encode("latin-1"), max(claimed, 0)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


@compiled
def test_compiled_parser_matches_numpy_on_random_tables():
    rng = np.random.default_rng(20261201)
    accepted = 0
    for _ in range(6000):
        body, n_rows = _random_body(rng)
        fast, slow = number_rows(body, n_rows), numpy_rows(body, n_rows)
        assert _same(fast, slow), body
        accepted += slow is not None
    assert accepted > 1000  # the fuzz reaches the accepting path, not only the rejections


@compiled
@pytest.mark.parametrize("token", ODD_TOKENS)
def test_every_odd_token_reads_as_numpy_reads_it(token):
    body = f"1 2 3 4 {token}\n{token} 0.5 0.25 7 8 {token}".encode("latin-1")
    assert _same(number_rows(body, 2), numpy_rows(body, 2))


@compiled
def test_compiled_parser_handles_the_plain_subset_itself(monkeypatch):
    # Correct rounding on the fast path (exact operands) and the long-mantissa path alike.
    body = b"0.1 0.2 0.30000000000000004 9007199254740993 123456789012345678901\n-0 5e-324 1e22 1e23 0.000001"
    status, rows = number_table._numtable.parse_rows(body, np.empty((2, 5)), 5)
    assert (status, rows) == (0, 2)
    got = number_rows(body, 2)
    expected = [[0.1, 0.2, 0.30000000000000004, 9007199254740992.0, 1.2345678901234568e20],
                [-0.0, 5e-324, 1e22, 1e23, 1e-06]]
    assert _same(got, np.array(expected))
    assert np.signbit(got[1, 0])


@compiled
@pytest.mark.parametrize("body, n_rows", [
    (b"1 2 3 4 5\n\n1 2 3 4 5", 3),  # blank line
    (b"1 2 3 4\n", 1),  # too few fields
    (b"1 2 3 4 5\n1 2 3 4 5", 1),  # more lines than rows
    (b"1 2 3 4 5", 2),  # fewer lines than rows
    (b"1 2 3 4 nan", 1),  # numpy's business
    (b"1 2 3 4 5 \xff", 1),  # odd bytes in an unused field
])
def test_anything_outside_the_strict_subset_goes_to_numpy(body, n_rows):
    status, _ = number_table._numtable.parse_rows(body, np.empty((n_rows, 5)), 5)
    assert status != 0
    assert _same(number_rows(body, n_rows), numpy_rows(body, n_rows))


def test_pure_parser_switch(monkeypatch):
    monkeypatch.setenv("FACEBENCH_PURE_PARSER", "1")
    assert not number_table.compiled_parser()
    assert _same(number_rows(b"1 2 3 4 5,6", 1), np.array([[1.0, 2, 3, 4, 5]]))
    assert number_rows(b"1 2 3 4", 1) is None


def test_compiled_parser_is_built_where_a_compiler_exists():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) on PATH: facebench parses with numpy")
    assert number_table._numtable is not None, "facebench._numtable is missing: reinstall with `pip install -e .`"


@compiled
def test_concurrent_threads_parse_correctly():
    # The parser runs without the GIL; its long-mantissa path calls into Python's dtoa, whose allocator the
    # GIL guards. Threads hammering that path at once must still read every value exactly.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    values = rng.uniform(0, 1000, size=(4000, 5))
    body = "\n".join(" ".join(f"{v:.22f}" if (i + j) % 2 else f"{v:.2f}" for j, v in enumerate(row))
                     for i, row in enumerate(values)).encode()
    expected = numpy_rows(body, len(values))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: number_rows(body, len(values)), range(32)))
    assert all(_same(r, expected) for r in results)
