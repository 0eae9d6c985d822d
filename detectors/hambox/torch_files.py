"""Why torch.load refused a file, in one line (torch's own messages advise weights_only=False, even for junk)."""

from __future__ import annotations

import os
import zipfile


def load_failure(path: str | os.PathLike, exc: BaseException) -> str:
    """A one-line reason for a torch.load failure on `path`: not a torch file, other objects, or torch's words."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError as error:
        return error.strerror or type(error).__name__
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":  # neither torch's zip layout nor a legacy pickle
        return "not a PyTorch file (neither torch.save's zip archive nor a pickle)"
    text = str(exc).strip()
    if text.startswith("Weights only load failed"):
        return ("it holds Python objects besides tensors and plain containers, which the safe loader "
                "(weights_only) refuses")
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
