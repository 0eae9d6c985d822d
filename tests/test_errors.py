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


def run_command_body(body: str) -> subprocess.CompletedProcess:
    """Run facebench's entry point on a throwaway command whose body is `body` (one statement)."""
    code = ("import warnings, facebench.cli as c\n"
            "@c.cli.command('probe')\n"
            "def probe():\n"
            f"    {body}\n"
            "c.main(['probe'])\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_cli_prints_library_warnings_on_one_line():
    done = run_command_body("warnings.warn('first part\\n  second part', RuntimeWarning)")
    assert done.returncode == 0
    assert done.stderr.strip().splitlines() == ["warning: first part second part (RuntimeWarning)"]


def test_unwritable_outputs_are_refused_before_work(tmp_path, monkeypatch):
    import os

    target = tmp_path / "r.json"
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != os.fspath(tmp_path))
    with pytest.raises(InputError, match="cannot write in"):
        check_output_paths([], out=target)
    target.write_text("{}")
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != os.fspath(target))
    with pytest.raises(InputError, match="the file is not writable"):
        check_output_paths([], out=target)


def test_cli_reports_os_errors_on_user_paths_as_input_errors():
    done = run_command_body("open('/nonexistent-dir-facebench/x.json', 'w')")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: /nonexistent-dir-facebench/x.json: No such file or directory"


def test_an_output_written_twice_or_overlays_without_a_plot_are_refused(tmp_path):
    with pytest.raises(InputError, match="--plot: the same file as --out"):
        check_output_paths([], plot=tmp_path / "x.png", out=[tmp_path / "r.json", tmp_path / "x.png"])
    with pytest.raises(InputError, match="--overlay needs --plot"):
        check_output_paths([], overlays=["published/"], out=tmp_path / "r.json")
    check_output_paths([], plot=tmp_path / "x.png", overlays=["published/"],
                       roc_prefix=[tmp_path / "pDiscROC.txt", tmp_path / "pContROC.txt"])
