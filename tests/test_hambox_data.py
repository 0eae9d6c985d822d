"""WIDER train pipeline: readers, data-anchor-sampling geometry (property tests), sampler, loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from detectors.hambox import data as D
from facebench.errors import InputError
from tests.conftest import require

TXT = """0--Parade/0_Parade_a.jpg
2
10 20 30 40 0 0 0 0 0 0
5 5 0 10 1 0 0 0 0 0
0--Parade/0_Parade_b.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/1_Handshaking_c.jpg
1
1 2 3 4 2 1 0 0 1 0
"""


def test_txt_reader_parses_boxes_attributes_and_empty_images(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text(TXT)
    records = D.read_wider_txt(path)
    assert [r.name for r in records] == ["0--Parade/0_Parade_a.jpg", "0--Parade/0_Parade_b.jpg",
                                         "1--Handshaking/1_Handshaking_c.jpg"]
    assert records[0].boxes_xywh.tolist() == [[10, 20, 30, 40], [5, 5, 0, 10]]
    assert records[1].boxes_xywh.shape == (0, 4)
    assert records[2].attributes.tolist() == [[2, 1, 0, 0, 1, 0]]
    # width 0 dropped; x2 = x + w (continuous boxes, no +1)
    assert D.valid_boxes_xyxy(records[0]).tolist() == [[10, 20, 40, 60]]
    assert records[2].source.endswith(":8")


@pytest.mark.parametrize("text, line, needle", [
    ("a.jpg\nx\n", 2, "box count"),
    ("a.jpg\n2\n1 2 3 4\n", 2, "announces 2 boxes but only 1 lines follow"),
    ("a.jpg\n1\n1 2 z 4\n", 3, "non-numeric"),
    ("a.jpg\n1\n1 2\n", 3, "at least 4"),
    ("not-an-image\n1\n", 1, "image name"),
])
def test_txt_reader_errors_name_file_and_line(tmp_path, text, line, needle):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        D.read_wider_txt(path)
    assert info.value.line == line and needle in info.value.message and info.value.path == str(path)


def test_mat_reader_matches_txt_on_a_hand_made_file(tmp_path):
    import scipy.io

    def cells(items):
        out = np.empty((len(items), 1), dtype=object)
        for i, item in enumerate(items):
            out[i, 0] = item
        return out

    boxes = [np.array([[10, 20, 30, 40], [5, 5, -2, 10]], dtype=np.int32), np.array([[1, 2, 3, 4]], dtype=np.int32)]
    scipy.io.savemat(tmp_path / "wider_face_train.mat", {
        "event_list": cells([np.array(["0--Parade"])]),
        "file_list": cells([cells([np.array(["0_Parade_a"]), np.array(["0_Parade_b"])])]),
        "face_bbx_list": cells([cells(boxes)]),
        "invalid_label_list": cells([cells([np.array([[0], [1]]), np.array([[0]])])]),
    })
    records, used = D.read_wider_split(tmp_path)
    assert used.name == "wider_face_train.mat"
    assert [r.name for r in records] == ["0--Parade/0_Parade_a.jpg", "0--Parade/0_Parade_b.jpg"]
    assert records[0].boxes_xywh.tolist() == [[10, 20, 30, 40], [5, 5, -2, 10]]
    assert records[0].attributes[:, 3].tolist() == [0, 1]
    assert D.valid_boxes_xyxy(records[0]).tolist() == [[10, 20, 40, 60]]
    # A NaN box is an error naming the image, not a face dropped by valid_boxes_xyxy.
    boxes[1] = np.array([[1, 2, 3, 4], [1, 2, np.nan, 4]])
    scipy.io.savemat(tmp_path / "wider_face_train.mat", {
        "event_list": cells([np.array(["0--Parade"])]),
        "file_list": cells([cells([np.array(["0_Parade_a"]), np.array(["0_Parade_b"])])]),
        "face_bbx_list": cells([cells(boxes)]),
    })
    with pytest.raises(InputError, match=r"face_bbx_list of 0--Parade/0_Parade_b \(file 2\): box 2 holds NaN"):
        D.read_wider_split(tmp_path)


def test_real_train_txt_and_mat_give_the_same_training_boxes(shared_data):
    split = require(shared_data / "widerface" / "wider_face_split")
    mat, _ = D.read_wider_split(split / "wider_face_train.mat")
    txt, _ = D.read_wider_split(split / "wider_face_train_bbx_gt.txt")
    assert len(mat) == len(txt) == 12880
    assert sum(len(r.boxes_xywh) for r in mat) == 159424
    by_name = {r.name: D.valid_boxes_xyxy(r) for r in txt}
    assert all(np.array_equal(D.valid_boxes_xyxy(r), by_name[r.name]) for r in mat)
    assert sum(len(v) for v in by_name.values()) == 159393


# ---------------------------------------------------------------- geometry: property tests


def _white_box_image(rng, width, height, n):
    """Black image with n non-overlapping white rectangles (integer boxes)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    boxes = []
    for _ in range(200):
        if len(boxes) == n:
            break
        w, h = (int(v) for v in np.exp(rng.uniform(np.log(3), np.log(min(width, height) * 0.6), size=2)))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        if any(x < b[2] + 2 and b[0] < x + w + 2 and y < b[3] + 2 and b[1] < y + h + 2 for b in boxes):
            continue
        boxes.append([x, y, x + w, y + h])
        pixels[y:y + h, x:x + w] = 255
    return Image.fromarray(pixels), np.asarray(boxes, dtype=np.float32)


def _check_consistency(sample, all_boxes, size):
    img = sample.image
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    kept = sample.boxes
    assert len(kept) >= 1
    assert (kept >= 0).all() and (kept <= size).all()
    moved = D.transform_boxes(all_boxes, sample.geometry)
    whole = moved[sample.source_indices]  # the small-face rule is on the whole resized face, not its visible part
    assert (((whole[:, 2] - whole[:, 0]) * (whole[:, 3] - whole[:, 1])) >= 64 - 1e-3).all()
    assert ((kept[:, 2] > kept[:, 0]) & (kept[:, 3] > kept[:, 1])).all()
    np.testing.assert_allclose(np.clip(moved[sample.source_indices], 0, size), kept, atol=1e-4)
    white = img.min(axis=2) > 250
    # every kept face's interior (1.5 px margin for pixel rounding) shows the white face
    for x1, y1, x2, y2 in kept:
        inner = white[int(np.ceil(y1 + 1.5)):int(np.floor(y2 - 1.5)), int(np.ceil(x1 + 1.5)):int(np.floor(x2 - 1.5))]
        assert inner.size == 0 or inner.all()
    # no white pixel outside the transformed source faces (kept or not)
    covered = np.zeros_like(white)
    for x1, y1, x2, y2 in moved:
        covered[max(0, int(np.floor(y1 - 1.5))):max(0, int(np.ceil(y2 + 1.5))),
                max(0, int(np.floor(x1 - 1.5))):max(0, int(np.ceil(x2 + 1.5)))] = True
    assert not (white & ~covered).any()


@pytest.mark.parametrize("das_prob, jitter", [(1.0, 0), (0.0, 0), (1.0, 2)])
def test_augmented_boxes_stay_on_their_faces_for_many_seeds(das_prob, jitter):
    # nearest neighbour keeps the white/black edge sharp, so the check is exact up to rounding
    config = D.AugmentConfig(crop_size=96, das_prob=das_prob, color_distort=False, random_interpolation=False,
                             interpolation="nearest", shift_jitter=jitter, das_anchor_scales=(6.0, 12.0, 24.0, 48.0))
    checked = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        image, boxes = _white_box_image(rng, int(rng.integers(60, 260)), int(rng.integers(60, 260)),
                                        int(rng.integers(1, 6)))
        sample = D.augment_sample(image, boxes, config, np.random.default_rng([seed, 1]))
        if sample is None:
            continue
        _check_consistency(sample, boxes, config.crop_size)
        checked += 1
    assert checked >= 50


def test_full_size_das_crop_with_flip_and_default_recipe():
    rng = np.random.default_rng(7)
    image, boxes = _white_box_image(rng, 1024, 700, 6)
    config = D.AugmentConfig(color_distort=False, random_interpolation=False, interpolation="nearest")
    flips = set()
    for seed in range(6):
        sample = D.augment_sample(image, boxes, config, np.random.default_rng(seed))
        _check_consistency(sample, boxes, 640)
        flips.add(sample.geometry.flip)
    assert flips == {True, False}


def test_das_scale_brings_the_chosen_face_into_the_anchor_range():
    config = D.AugmentConfig()
    for seed in range(300):
        rng = np.random.default_rng(seed)
        side = float(np.exp(rng.uniform(np.log(2), np.log(900))))
        boxes = np.array([[0, 0, side, side]], dtype=np.float32)
        face, scale = D.sample_das_scale(boxes, np.random.default_rng(seed), config)
        assert face == 0
        assert min(8.0, 2 * side) - 1e-3 <= side * scale <= 1024 + 1e-3


SCALES = np.array(D.DAS_ANCHOR_SCALES)


@pytest.mark.parametrize("side, spec_top, pyramidbox_top", [
    (4, 1, 0), (16, 1, 0), (20, 1, 1), (30, 2, 1), (32, 2, 0), (33, 2, 2), (100, 4, 3), (200, 5, 4), (300, 5, 4),
    (2000, 5, 4)])
def test_das_top_index_rules(side, spec_top, pyramidbox_top):
    # spec 6 step 2: top = min(5, argmin |s_i - s_face| + 1); PyramidBox's reader: first scale whose square exceeds
    # the face area (strict on both sides, so an area equal to 32^2 falls to 0), at most index 4
    area = float(side * side)
    assert D.das_top_index(SCALES, area, "spec") == spec_top
    assert D.das_top_index(SCALES, area, "pyramidbox") == pyramidbox_top


def test_das_pyramidbox_rule_never_enlarges_a_face_more_than_twice():
    spec, pyramidbox = D.AugmentConfig(), D.AugmentConfig(das_index_rule="pyramidbox")
    spec_factors = []
    for seed in range(400):
        side = float(np.exp(np.random.default_rng(seed).uniform(np.log(2), np.log(900))))
        boxes = np.array([[0, 0, side, side]], dtype=np.float32)
        assert D.sample_das_scale(boxes, np.random.default_rng(seed), pyramidbox)[1] <= 2.0 + 1e-9
        spec_factors.append(D.sample_das_scale(boxes, np.random.default_rng(seed), spec)[1])
    # the spec's argmin + 1 lets index 0 take a 4 px face to [8, 32] px
    assert max(spec_factors) > 2.0
    tiny = np.array([[0, 0, 4, 4]], dtype=np.float32)
    assert max(D.sample_das_scale(tiny, np.random.default_rng(s), spec)[1] for s in range(50)) > 4.0
    with pytest.raises(ValueError, match="das_index_rule"):
        D.AugmentConfig.from_mapping({"das_index_rule": "paddle"})


def test_das_window_contains_a_face_smaller_than_the_crop():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x1, y1 = rng.uniform(0, 3000, size=2)
        w, h = rng.uniform(1, 600, size=2)
        ox, oy = D.sample_das_window(np.array([x1, y1, x1 + w, y1 + h]), (4000.0, 4000.0), 640, rng)
        assert ox <= x1 and x1 + w <= ox + 641 and oy <= y1 and y1 + h <= oy + 641


def test_colour_distortion_is_seeded_and_keeps_the_image_shape():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    a = np.asarray(D.distort_colors(image, np.random.default_rng(3)))
    b = np.asarray(D.distort_colors(image, np.random.default_rng(3)))
    assert a.shape == (40, 50, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    changed = [not np.array_equal(np.asarray(D.distort_colors(image, np.random.default_rng(s))), np.asarray(image))
               for s in range(10)]
    assert any(changed)


def test_augment_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown augmentation key 'crop'"):
        D.AugmentConfig.from_mapping({"crop": 3})
    with pytest.raises(ValueError, match="das_prob"):
        D.AugmentConfig.from_mapping({"das_prob": 2})
    assert D.AugmentConfig.from_mapping({"pad_rgb": [1, 2, 3]}).pad_rgb == (1, 2, 3)


# ---------------------------------------------------------------- sampler, dataset, loader


def test_batch_sampler_shards_ranks_and_resumes_exactly():
    full = list(D.TrainBatchSampler(per_rank=3, max_iterations=4))
    assert full[0] == [0, 1, 2] and full[3] == [9, 10, 11]
    assert list(D.TrainBatchSampler(per_rank=3, start_iteration=2, max_iterations=4)) == full[2:]
    ranks = [list(D.TrainBatchSampler(per_rank=2, world_size=2, rank=r, accumulation=2, max_iterations=2))
             for r in range(2)]
    draws = sorted(d for r in ranks for batch in r for d in batch)
    assert draws == list(range(16))
    assert ranks[0][0] == [0, 1] and ranks[1][0] == [2, 3] and ranks[0][1] == [4, 5]


def test_dataset_draws_are_deterministic_and_worker_independent(tmp_path):
    synth = D.make_synthetic_wider(tmp_path, n_images=5, seed=1)
    records = D.read_wider_txt(synth.annotation)
    assert [r.name for r in records] == [r.name for r in synth.records]
    config = D.AugmentConfig(crop_size=64, das_anchor_scales=(8.0, 16.0, 32.0, 64.0))
    dataset = D.WiderTrainDataset(records, synth.image_root, config, seed=5)
    again = D.WiderTrainDataset(records, synth.image_root, config, seed=5)
    for draw in (0, 3, 7, 12):
        a, b = dataset[draw], again[draw]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
        assert a["image"].shape == (3, 64, 64) and a["image"].dtype == torch.uint8
    # each epoch visits every image once
    assert sorted(dataset.image_index(k) for k in range(5, 10)) == list(range(5))
    sampler = D.TrainBatchSampler(per_rank=2, max_iterations=3)
    serial = list(D.make_train_loader(dataset, sampler, num_workers=0))
    parallel = list(D.make_train_loader(dataset, sampler, num_workers=2))
    assert len(serial) == 3
    for x, y in zip(serial, parallel):
        assert torch.equal(x["images"], y["images"]) and x["names"] == y["names"]
        assert all(torch.equal(p, q) for p, q in zip(x["boxes"], y["boxes"]))
    assert serial[0]["images"].shape == (2, 3, 64, 64) and serial[0]["draws"].tolist() == [0, 1]


def test_dataset_without_valid_faces_is_an_input_error(tmp_path):
    record = D.WiderRecord("a.jpg", np.array([[0, 0, 0, 0]], np.float32), np.zeros((1, 6), np.int32))
    with pytest.raises(InputError, match="no training image"):
        D.WiderTrainDataset([record], tmp_path)


def test_missing_image_names_the_file(tmp_path):
    record = D.WiderRecord("0--x/missing.jpg", np.array([[1, 1, 20, 20]], np.float32), np.zeros((1, 6), np.int32))
    dataset = D.WiderTrainDataset([record], tmp_path)
    with pytest.raises(InputError, match="training image not found") as info:
        dataset[0]
    assert info.value.path.endswith("missing.jpg")


def test_small_face_rule_measures_the_whole_resized_face():
    """Spec 6.2 drops faces under 64 px² after resizing: a 10x10 face the crop border cuts to 6x10 stays (it used
    to be measured after clipping and trained as background); a 7x9 face goes, as does a centre outside."""
    from detectors.hambox.data import select_crop_boxes

    boxes = np.array([[-4, 100, 6, 110],  # centre inside, 10x10 whole, 6x10 visible: kept
                      [200, 200, 207, 209],  # 63 px²: dropped
                      [300, 300, 308, 308],  # exactly 64 px²: kept
                      [-6, 50, 4, 60],  # centre at x = -1: dropped
                      [630, 10, 650, 30]], dtype=np.float32)  # centre x = 640: on the border, dropped
    assert select_crop_boxes(boxes, 640, 64.0).tolist() == [0, 2]
