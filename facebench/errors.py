"""The one error type for bad input: the CLI prints it as one line and exits with code 2."""

from __future__ import annotations

import math
import os
from typing import Any, Sequence


class InputError(Exception):
    """Bad user input, located at a file and (when known) a 1-based line."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, message: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __reduce__(self):
        return (InputError, (self.path, self.line, self.message))

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


def warn(message: str) -> None:
    """Print one warning line on stderr (the CLI's and protocols' only warning channel)."""
    import click

    click.echo(f"warning: {message}", err=True)


def read_input_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """The bytes of a file the user named; missing, a folder or unreadable is an InputError naming it."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputError(path, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(path, None, f"is a directory, expected {'an' if what[:1] in 'aeiou' else 'a'} {what}") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None


def read_input_text(path: str | os.PathLike, what: str = "file") -> str:
    """A user-named UTF-8 text file (BOM dropped); undecodable bytes name their line."""
    data = read_input_bytes(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(path, line, f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    return text[1:] if text.startswith("\ufeff") else text


def is_finite_number(value: Any) -> bool:
    """A real number (Python or NumPy, not a bool) that is finite as a float; an integer past float range is
    not (math.isfinite would overflow on it)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or type(value).__name__ == "bool_":
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def parse_json(text: str, path: str | os.PathLike, invalid: str = "not valid JSON",
               unusable: str = "not a usable JSON document") -> Any:
    """json.loads with one-line InputErrors: `invalid` at the line of a syntax error, `unusable` for JSON that
    Python cannot hold (an integer of over 4,300 digits, nesting deeper than its stack)."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"{invalid}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(path, None, f"{unusable}: {str(exc).split(';')[0][:100]}") from None


def text_lines(text: str) -> list[str]:
    """Lines split at LF, CRLF and bare CR only (not str.splitlines' form feeds, NEL, U+2028 ...), so that
    line numbers in errors are the ones an editor shows; no trailing empty line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# Formats matplotlib's Agg/PDF/SVG/PS backends write (FigureCanvasBase.get_supported_filetypes()); not .pgf,
# whose backend needs a LaTeX installation and would fail only after the evaluation.
PLOT_SUFFIXES = (".eps", ".jpeg", ".jpg", ".pdf", ".png", ".ps", ".svg", ".svgz", ".tif", ".tiff", ".webp")


def check_output_paths(inputs: Sequence[str | os.PathLike | None], plot: str | os.PathLike | None = None,
                       overlays: Sequence[object] = (),
                       **outputs: str | os.PathLike | Sequence[str | os.PathLike] | None) -> None:
    """Refuse, before any work, outputs that would fail late or destroy input: a plot with a format matplotlib
    cannot write, --overlay without --plot, an output that is a folder, lies under a file, is not writable, is
    one of the inputs or is written twice. `outputs` maps an option name to the file(s) it writes."""
    from pathlib import Path

    if overlays and plot is None:
        raise InputError(None, None, "--overlay needs --plot (overlays are only drawn in the figure)")
    named: list[tuple[str, Path]] = []
    for option, value in {**outputs, "plot": plot}.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        named += [(f"--{option.replace('_', '-')}", Path(v)) for v in values if v is not None]
    if plot is not None and Path(plot).suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(plot, None, f"--plot: cannot write a '{Path(plot).suffix or '(no suffix)'}' figure "
                                     f"(use one of {', '.join(PLOT_SUFFIXES)})")
    sources = [Path(item) for item in inputs if item is not None and os.path.isfile(item)]
    written: dict[Path, str] = {}
    for flag, target in named:
        if target.is_dir():
            raise InputError(target, None, f"{flag}: is a directory, expected a file path")
        first = written.get(target.resolve())
        if first is not None:
            raise InputError(target, None, f"{flag}: the same file as {first}" if first != flag
                             else f"{flag}: the same file given twice")
        written[target.resolve()] = flag
        _check_can_create(target, flag)
        if target.exists() and not os.access(target, os.W_OK):
            raise InputError(target, None, f"{flag}: the file is not writable (permission denied)")
        if target.exists() and any(os.path.samefile(source, target) for source in sources):
            raise InputError(target, None, f"{flag}: refusing to overwrite an input file")


def _check_can_create(target, flag: str) -> None:
    """The nearest existing path at or above `target`'s folder must be a writable folder."""
    for folder in target.parents:
        if folder.exists():
            _check_writable_folder(folder, target, flag)
            return


def _check_writable_folder(folder, target, flag: str) -> None:
    if not folder.is_dir():
        raise InputError(target, None, f"{flag}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(target, None, f"{flag}: cannot write in {folder} (permission denied)")


def check_output_folder(folder: str | os.PathLike, flag: str) -> None:
    """Refuse, before any work, an output folder that is a file, lies under a file or cannot be written."""
    from pathlib import Path

    folder = Path(folder)
    if folder.exists():
        _check_writable_folder(folder, folder, flag)
    else:
        _check_can_create(folder, flag)
