"""The one error type for bad input: the CLI prints it as one line and exits with code 2."""

from __future__ import annotations

import os


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
