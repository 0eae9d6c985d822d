"""The block format shared by FDDB ellipse lists and detection files: `name / count / count region lines`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from facebench.errors import InputError, read_input_bytes, text_lines


# C++ `>>` into an int: C-locale white space, then ASCII digits (`3.0` and `3abc` read 3; `\u0663` is no digit).
_COUNT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


# A decimal number as C's strtod reads it (ASCII only: no `1_0`, no non-ASCII digits, which Python accepts).
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_NUMBER_CHAR = re.compile(r"[^0-9eE.+-]")
_NON_FINITE = frozenset({"inf", "infinity", "nan"})


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """A text file's lines; CRLF and bare-CR line ends read as LF (several published files have them)."""
    data = read_input_bytes(path)
    return text_lines(data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff"))


def is_number(token: str) -> bool:
    """Whether a token is an ASCII decimal number (inf and nan included, for a clearer error later)."""
    return NUMBER.fullmatch(token) is not None or token.lstrip("+-").lower() in _NON_FINITE


def _numbers(tokens: list[str], line_numbers: Sequence[int], path: Path, ncols: int) -> np.ndarray:
    """Tokens (ncols per row) as an (n, ncols) float array; a bad token names its line."""
    values = None
    if _NOT_NUMBER_CHAR.search("".join(tokens)) is None:  # fast path: only digits, signs, points, exponents
        try:
            values = np.array(tokens, dtype=np.float64).reshape(-1, ncols)
        except ValueError:
            pass
    if values is None:
        for k, token in enumerate(tokens):
            if not is_number(token):
                raise InputError(path, line_numbers[k // ncols], f"not a number: {token!r}")
        values = np.array(tokens, dtype=np.float64).reshape(-1, ncols)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(path, line_numbers[k], "numbers must be finite")
    return values


@dataclass
class Blocks:
    """Parsed `name / count / count region lines` blocks of one file (region rows as number tokens)."""

    names: list[str] = field(default_factory=list)
    name_lines: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # all fields of every region line
    row_lines: list[int] = field(default_factory=list)
    width: int = 0  # fields per region line, set by the first one
    width_line: int = 0
    next_line: int = 0

    def values(self, path: Path, ncols: int) -> np.ndarray:
        """The region lines' first `ncols` numbers (every field must be a number)."""
        if not self.row_lines:
            return np.zeros((0, ncols))
        return _numbers(self.tokens, self.row_lines, path, self.width)[:, :ncols]


def parse_blocks(lines: list[str], path: Path, expected: Sequence[str] | None, start_image: int,
                  what: str, ncols: int, fields: str) -> Blocks:
    """Read blocks from `lines`; with `expected`, names must follow it from `start_image` on. Region lines
    need at least `ncols` fields, and all of them as many as the first (else an error naming the line)."""
    out = Blocks()
    i, n = 0, len(lines)
    k = start_image
    while True:
        while i < n and not lines[i].strip():
            i += 1
        if i >= n or (expected is not None and k >= len(expected)):
            break
        name, name_line = lines[i].strip(), i + 1
        if expected is not None and name != expected[k]:
            known = name in set(expected)
            detail = "is listed elsewhere (images must follow the list order)" if known else "is not in the image list"
            raise InputError(path, name_line, f"expected image {expected[k]!r} (list entry {k + 1}), "
                             f"found {name!r}, which {detail}")
        i += 1
        if i >= n:
            raise InputError(path, name_line, f"image {name!r} has no count line")
        match = _COUNT.match(lines[i])
        if match is None:
            raise InputError(path, i + 1, f"expected the number of {what} of {name!r}, found {lines[i].strip()!r}")
        if len(match.group(1).lstrip("+-")) > 18:  # beyond int64 (and int()'s 4300-digit limit): no file has that
            raise InputError(path, i + 1, f"the number of {what} of {name!r} is too large ({match.group(1)[:20]}...)")
        count = int(match.group(1))
        if count < 0:
            raise InputError(path, i + 1, f"negative number of {what} ({count})")
        i += 1
        if i + count > n:
            raise InputError(path, i, f"image {name!r} announces {count} {what} but only {n - i} lines follow")
        out.names.append(name)
        out.name_lines.append(name_line)
        out.counts.append(count)
        for j in range(i, i + count):
            parts = lines[j].split()
            if len(parts) < ncols:
                found = repr(lines[j].strip()) if lines[j].strip() else "an empty line"
                raise InputError(path, j + 1, f"expected {ncols} numbers ({fields}), found {found} "
                                 f"(image {name!r} announces {count} {what} at line {name_line + 1})")
            junk = [token for token in parts[ncols:] if not is_number(token)]
            if junk:  # named here, before any field-count mismatch it also causes
                raise InputError(path, j + 1, f"not a number: {junk[0]!r} (after the {ncols} numbers {fields})")
            if not out.width:
                out.width, out.width_line = len(parts), j + 1
            elif len(parts) != out.width:
                raise InputError(path, j + 1, f"{len(parts)} fields where the first region line (line "
                                 f"{out.width_line}) has {out.width}: every region line of a file needs the "
                                 f"same fields ({fields}, then any extra numbers)")
            out.tokens.extend(parts)
        out.row_lines.extend(range(i + 1, i + count + 1))
        i += count
        k += 1
    out.next_line = i
    return out
