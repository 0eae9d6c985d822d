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
    to be measured after clipping and trained as background); a 7x9 face goes, as does a centre outside; a centre
    on the border stays (PyramidBox's meet_emit_constraint is inclusive)."""
    from detectors.hambox.data import select_crop_boxes

    boxes = np.array([[-4, 100, 6, 110],  # centre inside, 10x10 whole, 6x10 visible: kept
                      [200, 200, 207, 209],  # 63 px²: dropped
                      [300, 300, 308, 308],  # exactly 64 px²: kept
                      [-6, 50, 4, 60],  # centre at x = -1: dropped
                      [630, 10, 650, 30],  # centre x = 640: on the border, kept
                      [-10, 630, 10, 650],  # centre (0, 640): a corner, kept
                      [630, 641, 650, 661]], dtype=np.float32)  # centre y = 651: dropped
    assert select_crop_boxes(boxes, 640, 64.0).tolist() == [0, 2, 4, 5]


# ---------------------------------------------------------------- spec 6 rules, one behaviour per test


def _das_scaled_sides(w, h, config, seeds):
    """sqrt(w*h) of the chosen face after the DAS rescale, one per seed."""
    boxes = np.array([[0, 0, w, h]], dtype=np.float32)
    return np.array([np.sqrt(w * h) * D.sample_das_scale(boxes, np.random.default_rng(s), config)[1] for s in seeds])


def test_das_reaches_index_anchor_plus_one_and_caps_it_at_twice_the_face():
    # spec 6 step 2, 300 px face: i_anchor = 4 (256), top = min(5, 4 + 1) = 5; indices 0..4 give [8, 512], the top
    # index 5 gives [256, min(1024, 2 * 300)] = [256, 600]: every size lies in [8, 600] and some exceed 512
    sides = _das_scaled_sides(300.0, 300.0, D.AugmentConfig(), range(400))
    assert sides.min() >= 8.0 - 1e-6 and sides.max() <= 600.0 + 1e-6
    assert (sides > 512.0).sum() >= 5


def test_das_measures_the_face_as_the_root_of_width_times_height():
    # spec 6 step 2: s_face = sqrt(w*h) = 20 for a 10x40 face; i_anchor = 0, top = 1; index 0 gives [8, 32],
    # index 1 gives [16, min(64, 2 * 20)] = [16, 40]; the rescaled face's sqrt(w*h) stays in [8, 40]
    sides = _das_scaled_sides(10.0, 40.0, D.AugmentConfig(), range(300))
    assert sides.min() >= 8.0 - 1e-6 and sides.max() <= 40.0 + 1e-6
    assert sides.max() > 36.0 and sides.min() < 12.0


def test_das_log_uniform_option_samples_the_size_log_uniformly():
    # spec 6 step 2: s_target on [8, 32] (one scale 16, face 16: top index 0, high = min(32, 2 * 16)); uniform puts
    # 1/3 of the draws below the geometric mean 16, log-uniform puts 1/2 there
    for sampling, share in (("uniform", 1 / 3), ("log_uniform", 1 / 2)):
        config = D.AugmentConfig(das_scale_sampling=sampling, das_anchor_scales=(16.0,))
        rng = np.random.default_rng(11)
        sides = np.array([16.0 * D.sample_das_scale(np.array([[0, 0, 16, 16]], np.float32), rng, config)[1]
                          for _ in range(4000)])
        assert sides.min() >= 8.0 - 1e-6 and sides.max() <= 32.0 + 1e-6
        assert abs((sides < 16.0).mean() - share) < 0.05, sampling


def test_das_picks_its_face_uniformly_among_the_faces():
    # spec 6 step 2: "pick a random face"
    boxes = np.array([[0, 0, 20, 20], [50, 50, 90, 90]], dtype=np.float32)
    picks = [D.sample_das_scale(boxes, np.random.default_rng(s), D.AugmentConfig())[0] for s in range(300)]
    assert set(picks) == {0, 1} and 100 <= sum(picks) <= 200


def test_das_window_start_is_floored_so_the_face_start_stays_inside():
    # spec 6 step 2 window containing the face; integer start = floor of the draw, as PyramidBox's reader (spec: its
    # Paddle code is the guide): a face at [0.5, 640.2] in a 640 crop draws the start in [0.2, 0.5] -> 0
    face = np.array([0.5, 0.5, 640.2, 640.2])
    for seed in range(20):
        assert D.sample_das_window(face, (4000.0, 4000.0), 640, np.random.default_rng(seed)) == (0, 0)


def test_flip_maps_boxes_onto_the_mirrored_pixels():
    # spec 6 step 3 horizontal flip with continuous boxes (x2 = x + w): white columns 10..29 of a 64 px crop mirror
    # to columns 34..53, i.e. the box [10, 30] becomes [64 - 30, 64 - 10] = [34, 54]
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[20:40, 10:30] = 255
    geometry = D.CropGeometry(scale=1.0, offset_x=0, offset_y=0, size=64, flip=True)
    crop = np.asarray(D.render_crop(Image.fromarray(pixels), geometry, (0, 0, 0), "nearest"))
    columns = np.flatnonzero(crop[30, :, 0] == 255)
    assert columns.min() == 34 and columns.max() == 53
    moved = D.transform_boxes(np.array([[10, 20, 30, 40]], dtype=np.float32), geometry)
    assert moved.tolist() == [[34.0, 20.0, 54.0, 40.0]]


@pytest.mark.parametrize("scale, ox, oy", [(2.0, 0, 0), (2.0, 30, 20), (3.0, 50, 60), (0.5, 5, 3), (2.0, -10, -5)])
def test_render_crop_equals_resizing_the_whole_image_then_cropping(scale, ox, oy):
    # spec 6 step 2: rescale the image, then crop the window, padding past the image with the fill colour
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8))
    crop = np.asarray(D.render_crop(image, D.CropGeometry(scale, ox, oy, 64), (1, 2, 3), "bilinear"))
    resized = np.asarray(image.resize((int(100 * scale), int(80 * scale)), Image.Resampling.BILINEAR))
    expected = np.empty((64, 64, 3), dtype=np.uint8)
    expected[:] = (1, 2, 3)
    part = resized[max(0, oy):oy + 64, max(0, ox):ox + 64]
    expected[max(0, -oy):max(0, -oy) + part.shape[0], max(0, -ox):max(0, -ox) + part.shape[1]] = part
    assert np.array_equal(crop, expected)


def test_shift_jitter_draws_each_shift_from_zero_to_jitter_minus_one():
    # spec 4.5 item 4 / ZCC* recipe: s_A = 4 -> (dx, dy) in {0, 1}^2, i.e. shift_jitter = s_A / 2 = 2;
    # the content moves right/down, so the crop offset drops by the shift
    boxes = np.array([[40, 40, 80, 80]], dtype=np.float32)
    plain = D.AugmentConfig(crop_size=96, flip_prob=0.0)
    jittered = D.AugmentConfig(crop_size=96, flip_prob=0.0, shift_jitter=2)
    shifts = set()
    for seed in range(60):
        a = D.sample_geometry(boxes, (200, 160), plain, np.random.default_rng(seed))
        b = D.sample_geometry(boxes, (200, 160), jittered, np.random.default_rng(seed))
        shifts.add((a.offset_x - b.offset_x, a.offset_y - b.offset_y))
    assert shifts == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_square_crop_lies_inside_a_tall_image():
    # spec 6 step 2 (das_prob < 1): SSD-style square crop of side 0.3-1 x the shorter side, inside the image
    boxes = np.array([[40, 70, 60, 90]], dtype=np.float32)
    config = D.AugmentConfig(das_prob=0.0, crop_size=64)
    for seed in range(100):
        g = D.sample_square_crop(boxes, (100, 160), config, np.random.default_rng(seed))
        side = g.size / g.scale
        assert 30.0 - 1e-6 <= side <= 100.0 + 1e-6
        assert g.offset_x >= 0 and g.offset_y >= 0
        assert (g.offset_x + g.size) / g.scale <= 100.0 + 1e-6 and (g.offset_y + g.size) / g.scale <= 160.0 + 1e-6


def test_colour_distortion_brightness_factor_is_one_plus_minus_an_eighth():
    # spec 6 step 1: brightness factor 1 +- U(0.125); on a flat grey image contrast, saturation and hue are no-ops,
    # so grey 96 ends in [96 * 0.875, 96 * 1.125] = [84, 108]
    grey = Image.fromarray(np.full((4, 4, 3), 96, dtype=np.uint8))
    values = [int(np.asarray(D.distort_colors(grey, np.random.default_rng(s)))[0, 0, 0]) for s in range(300)]
    assert min(values) >= 84 and max(values) <= 108
    assert min(values) <= 88 and max(values) >= 104


def test_colour_distortion_hue_shift_is_at_most_18_hsv_units():
    # spec 6 step 1: hue shift +- U(18) in PIL HSV units; brightness/contrast/saturation keep the hue of this mild
    # colour up to rounding (2 units allowed)
    image = Image.fromarray(np.full((4, 4, 3), (150, 120, 100), dtype=np.uint8))
    h0 = int(np.asarray(image.convert("HSV"))[0, 0, 0])
    shifts = []
    for seed in range(400):
        h = int(np.asarray(D.distort_colors(image, np.random.default_rng(seed)).convert("HSV"))[0, 0, 0])
        shifts.append((h - h0 + 128) % 256 - 128)
    assert max(abs(s) for s in shifts) <= 20 and max(shifts) >= 14 and min(shifts) <= -14


def test_colour_distortion_uses_both_orders_half_the_time(monkeypatch):
    # spec 6 step 1: order B,C,S,H or B,S,H,C, each with probability 0.5: contrast before or after saturation
    from PIL import ImageEnhance

    calls = []

    def recording(base):
        class Recorder(base):
            def enhance(self, factor):
                calls.append(base.__name__)
                return super().enhance(factor)
        return Recorder

    for name in ("Brightness", "Contrast", "Color"):
        monkeypatch.setattr(ImageEnhance, name, recording(getattr(ImageEnhance, name)))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    contrast_first = saturation_first = 0
    for seed in range(400):
        calls.clear()
        D.distort_colors(image, np.random.default_rng(seed))
        if "Contrast" in calls and "Color" in calls:
            if calls.index("Contrast") < calls.index("Color"):
                contrast_first += 1
            else:
                saturation_first += 1
    both = contrast_first + saturation_first
    assert both >= 60 and 0.35 <= saturation_first / both <= 0.65
