"""The on-disk cache: where it lives, that an empty FACEBENCH_CACHE turns it off, and that a damaged entry
is recomputed, never trusted; plus the ground-truth caches of WIDER FACE and face-eval built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facebench import cache
from protocols.face_eval import ground_truth as face_eval_gt
from protocols.face_eval import load_ground_truth
from tests.test_face_eval import GT_IMAGES, write_struct_annotations
from tests.wider_fixtures import write_mini_gt


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    assert cache.cache_file("x.npz") == tmp_path / "c" / "x.npz"
    monkeypatch.setenv("FACEBENCH_CACHE", "  ")
    assert cache.cache_dir() is None and cache.cache_file("x.npz") is None
    monkeypatch.delenv("FACEBENCH_CACHE")
    assert cache.cache_dir() == Path.home() / ".cache" / "facebench"


def test_arrays_round_trip_and_damaged_entries_read_as_missing(tmp_path):
    path = tmp_path / "sub" / "entry.npz"
    cache.save_arrays(path, {"a": np.arange(3), "b": np.array("text")})
    stored = cache.load_arrays(path)
    assert stored["a"].tolist() == [0, 1, 2] and str(stored["b"]) == "text"
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left behind
    path.write_bytes(b"PK\x03\x04 not a zip")
    assert cache.load_arrays(path) is None
    assert cache.load_arrays(tmp_path / "missing.npz") is None and cache.load_arrays(None) is None
    cache.save_arrays(None, {"a": np.arange(3)})  # caching off: nothing to do


def test_save_into_an_unwritable_place_only_costs_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache.save_arrays(blocker / "entry.npz", {"a": np.arange(3)})  # its parent is a file: no error
    assert cache.load_arrays(blocker / "entry.npz") is None


def test_strings_keep_every_character():
    names = ["a.jpg", "", "trailing\x00\x00", "ünïcode/ß.png", "lone \udc80 surrogate"]
    assert cache.decode_strings(*cache.encode_strings(names)) == names
    assert cache.decode_strings(*cache.encode_strings([])) == []


def _gt_fields(gt):
    return (gt.style, gt.image_names, gt.image_keys, gt.boxes.tolist(), gt.flagged.tolist(), gt.ignored.tolist(),
            gt.offsets.tolist(), gt.sha256)


def test_face_eval_ground_truth_is_parsed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    mat = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES + [("name\x00.jpg", [])])
    first = load_ground_truth("afw", mat)
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and first.sha256[:32] in entries[0].name

    def no_parsing(path):
        raise AssertionError("parsed again instead of read from the cache")

    monkeypatch.setattr(face_eval_gt, "load_mat", no_parsing)
    second = load_ground_truth("afw", mat, min_width=10, min_height=10)
    assert _gt_fields(second)[:5] == _gt_fields(first)[:5] and second.offsets.tolist() == first.offsets.tolist()
    assert second.ignored.tolist() == [False, False, False, True, False]  # the size rule runs on cached boxes


def test_a_damaged_face_eval_cache_entry_is_parsed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    mat = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES)
    first = load_ground_truth("afw", mat)
    (entry,) = (tmp_path / "cache").iterdir()
    stored = cache.load_arrays(entry)
    stored["offsets"] = stored["offsets"][:-1]  # inconsistent with the names: must not be used
    cache.save_arrays(entry, stored)
    assert _gt_fields(load_ground_truth("afw", mat)) == _gt_fields(first)
    entry.write_bytes(b"garbage")
    assert _gt_fields(load_ground_truth("afw", mat)) == _gt_fields(first)


def test_a_changed_annotation_file_is_not_read_from_the_old_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    mat = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES)
    load_ground_truth("afw", mat)
    write_struct_annotations(mat, [("other.jpg", [[0, 0, 50, 50, 0, 0]])])
    assert load_ground_truth("afw", mat).image_keys == ("other",)


@pytest.mark.parametrize("protocol", ["wider", "face-eval"])
def test_empty_cache_variable_writes_nothing(tmp_path, monkeypatch, protocol):
    monkeypatch.setenv("FACEBENCH_CACHE", "")
    monkeypatch.chdir(tmp_path)
    if protocol == "wider":
        from protocols.wider_face import load_ground_truth as load_wider

        gt_dir = write_mini_gt(tmp_path / "gt")
        before = set(tmp_path.iterdir())
        load_wider(gt_dir)
    else:
        mat = write_struct_annotations(tmp_path / "gt.mat", GT_IMAGES)
        before = set(tmp_path.iterdir())
        load_ground_truth("afw", mat)
    assert set(tmp_path.iterdir()) == before
