"""The shared bad-input helpers: line splitting, output-path checks, one-line warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facebench.errors import InputError, check_output_paths, text_lines


def test_text_lines_splits_only_at_line_ends():
    assert text_lines("a\x0cb\x0bc\x85d\u2028e\r\nf\rg\n") == ["a\x0cb\x0bc\x85d\u2028e", "f", "g"]
    assert text_lines("") == []
    assert text_lines("x\n\n") == ["x", ""]


def test_plot_format_is_checked_before_work(tmp_path):
    with pytest.raises(InputError, match="cannot write a '.xyz' figure"):
        check_output_paths([], plot=tmp_path / "p.xyz")
    with pytest.raises(InputError, match="no suffix"):
        check_output_paths([], plot=tmp_path / "p")
    check_output_paths([], plot=tmp_path / "new" / "p.PNG")  # a missing folder is created later


def test_outputs_never_overwrite_inputs_or_folders(tmp_path):
    source = tmp_path / "dets.txt"
    source.write_text("1 2 3\n")
    with pytest.raises(InputError, match="refusing to overwrite an input file"):
        check_output_paths([source], out=tmp_path / "." / "dets.txt")
    with pytest.raises(InputError, match="is a directory"):
        check_output_paths([source], out=tmp_path)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_paths([source], out=source / "r.json")
    check_output_paths([source, None, tmp_path / "missing"], out=tmp_path / "r.json", roc_prefix=None)


def test_cli_prints_library_warnings_on_one_line():
    code = ("import warnings, facebench.cli as c, click\n"
            "@c.cli.command('warn-test')\n"
            "def w():\n"
            "    warnings.warn('first part\\n  second part', RuntimeWarning)\n"
            "c.main(['warn-test'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr.strip().splitlines() == ["warning: first part second part (RuntimeWarning)"]
