"""Training configs: every bundled file validates, the index covers the paper's tables, errors name key and line."""

from __future__ import annotations

import json

import pytest

from detectors.hambox.train_config import CONFIG_DIR, SCHEMA, list_bundled_configs, load_train_config, parse_train_config
from facebench.errors import InputError


def test_every_bundled_config_builds_its_model_and_augmentation():
    names = list_bundled_configs()
    assert len(names) == 18
    for name in names:
        config = load_train_config(name)
        model = config.model_config()
        assert config.augment_config().crop_size in (128, 640)
        if config.recipe == "paper":
            assert (config.train.max_iters, config.train.images_per_gpu, config.train.total_batch) == (140_000, 7, 28)
            assert config.optim.lr_steps == (110_000,) and config.optim.lr == 0.01
            assert model.backbone_norm == "frozen" and model.input_mean == (0.485, 0.456, 0.406)


def test_paper_rows_map_to_the_intended_settings():
    index = json.loads((CONFIG_DIR / "index.json").read_text())["rows"]
    per_table = {t: sum(1 for r in index if r["table"] == t) for t in "1234"}
    assert per_table == {"1": 5, "2": 6, "3": 3, "4": 7}
    for row in index:
        assert (CONFIG_DIR / row["config"]).is_file()
    m = {n: load_train_config(n).model_config() for n in list_bundled_configs()}
    assert (m["t1_baseline"].anchor_ratio, m["t1_baseline"].matcher, m["t1_baseline"].head) == (1.0, "dms", "plain")
    assert (m["t1_dms_r050"].anchor_ratio, m["t1_dms_r050"].matcher) == (0.5, "dms")
    assert (m["t1_nams_r068"].matcher, m["t1_nams_r068"].nams_n) == ("nams", None)
    assert (m["t3_baseline_nams"].anchor_ratio, m["t3_baseline_nams"].matcher) == (1.0, "nams")
    assert m["t3_baseline_zcc"].shifted_anchor_levels == (2,) and m["t3_baseline_zcc"].anchor_ratio == 1.0
    grid = {(m[n].oam_k, m[n].oam_t) for n in m if n.startswith("t2_")}
    assert grid == {(3, 0.5), (7, 0.5), (3, 0.7), (5, 0.7), (3, 0.8), (3, 0.9)}
    assert all(m[n].matcher == "oam" and not m[n].ral and m[n].head == "plain" for n in m if n.startswith("t2_"))
    assert m["t3_sms_oam_ral"].ral and m["t3_sms_oam_ral"].head == "plain"
    assert (m["t4_dh"].head, m["t4_dh"].ssh, m["t4_dh"].pyramid_anchors) == ("deep", False, False)
    assert (m["t4_ssh"].head, m["t4_ssh"].ssh, m["t4_ssh"].pyramid_anchors) == ("deep", True, False)
    assert (m["t4_hambox"].head, m["t4_hambox"].ssh, m["t4_hambox"].pyramid_anchors) == ("deep", True, True)


BASE = {"schema": SCHEMA, "name": "x", "model": {"preset": "tiny"}}


@pytest.mark.parametrize("change, needle", [
    ({"schema": "other"}, "'schema' must be"),
    ({"name": "a b"}, "short id"),
    ({"extra": 1}, "unknown top-level key 'extra'"),
    ({"optim": {"lrr": 1}}, "unknown key 'optim.lrr'"),
    ({"optim": {"lr": "fast"}}, "must be a finite number"),
    ({"optim": {"lr_steps": [5, 2]}}, "increasing"),
    ({"optim": {"grad_clip_norm": "big"}}, "grad_clip_norm"),
    ({"train": {"max_iters": 2.5}}, "must be an integer"),
    ({"train": {"images_per_gpu": 7, "total_batch": 20}}, "multiple"),
    ({"train": {"amp": "fp8"}}, "'train.amp'"),
    ({"model": {"preset": "tiny", "matcher": "best"}}, "matcher"),
    ({"model": {"preset": "nope"}}, "preset"),
    ({"data": {"das_prob": 3}}, "das_prob"),
    ({"data": {"num_workers": -1}}, "num_workers"),
    ({"recipe": "fast"}, "'recipe'"),
    ({"optim": {"lr": float("nan")}}, "'optim.lr' must be a finite number, got NaN"),
    ({"optim": {"lr": float("inf")}}, "'optim.lr' must be a finite number"),
    ({"model": {"preset": "tiny", "anchor_ratio": "x"}}, "'anchor_ratio' must be a finite number"),
    ({"model": {"preset": "tiny", "anchor_ratio": float("nan")}}, "'anchor_ratio' must be a finite number"),
    ({"model": {"preset": "tiny", "ssh": 1}}, "'ssh' must be true or false"),
    ({"model": {"preset": 3}}, "'model.preset' must be a preset name"),
    ({"data": {"crop_size": float("nan")}}, "'crop_size' must be an integer"),
    ({"data": {"crop_size": 640.5}}, "'crop_size' must be an integer"),
    ({"data": {"crop_size": True}}, "'crop_size' must be an integer, got true"),
    ({"data": {"pad_rgb": [1, 2]}}, "'pad_rgb' must be a list of integers of length 3"),
    ({"data": [1]}, "'data' must be an object"),
    ({"optim": "x"}, "'optim' must be an object"),
    ({"train": None}, "'train' must be an object"),
    ({"optim": {"lr_steps": ["a"]}}, "'optim.lr_steps' must be a list of integers"),
    ({"optim": {"lr_steps": [[1]]}}, "'optim.lr_steps' must be a list of integers"),
    ({"data": {"das_anchor_scales": []}}, "das_anchor_scales must be increasing positive"),
    ({"data": {"das_anchor_scales": [-16, 32]}}, "das_anchor_scales must be increasing positive"),
    ({"data": {"das_anchor_scales": [32, 16]}}, "das_anchor_scales must be increasing positive"),
    ({"train": {"seed": -1}}, "'train.seed' must be >= 0"),
    ({"model": {"preset": "tiny", "pa_min_level": 9}}, "pa_min_level=9 is not a level"),
    ({"model": {"preset": "tiny", "matcher": "zcc"}, "data": {"shift_jitter": 2}},
     r"'data.shift_jitter' \(2\) and the zcc model's 'zcc_shift_jitter' \(1\) both jitter"),
])
def test_bad_configs_are_input_errors(change, needle):
    with pytest.raises(InputError, match=needle):
        parse_train_config({**BASE, **change}, "cfg.json")


def test_errors_carry_the_line_of_the_key(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n "schema": "facebench.hambox.train/1",\n "name": "x",\n "model": {"preset": "tiny"},\n'
                    ' "optim": {\n   "lrr": 0.1\n }\n}\n')
    with pytest.raises(InputError) as info:
        load_train_config(path)
    assert info.value.line == 6 and info.value.path == str(path)
    path.write_text("{ not json")
    with pytest.raises(InputError) as info:
        load_train_config(path)
    assert info.value.line == 1 and "not valid JSON" in info.value.message
    with pytest.raises(InputError, match="bundled configs: .*t4_hambox"):
        load_train_config(tmp_path / "missing.json")


HEAD = '{\n "schema": "facebench.hambox.train/1",\n "name": "x",\n '
TINY = '"model": {"preset": "tiny"},\n '


@pytest.mark.parametrize("key, body", [
    ("crop_size", TINY + '"data": {\n   "crop_size": 640.5\n }'),
    ("anchor_ratio", '"model": {\n   "preset": "tiny",\n   "anchor_ratio": "x"\n }'),
    ("lr", TINY + '"optim": {\n   "lr": NaN\n }'),
    ("preset", '"model": {\n   "preset": 3\n }'),
    ("train", TINY + '"train": null'),
    ("data", TINY + '"data": [1]'),
])
def test_type_errors_name_the_file_and_the_line_of_the_key(tmp_path, key, body):
    path = tmp_path / "bad.json"
    path.write_text(HEAD + body + "\n}\n")
    with pytest.raises(InputError) as info:
        load_train_config(path)
    assert info.value.path == str(path)
    assert f'"{key}":' in path.read_text().splitlines()[info.value.line - 1], str(info.value)


def test_comments_are_ignored_and_round_trip():
    config = parse_train_config({**BASE, "_note": "hi", "optim": {"_why": "x", "lr": 0.02}})
    assert config.optim.lr == 0.02
    again = parse_train_config(config.to_dict())
    assert again.to_dict() == config.to_dict()
