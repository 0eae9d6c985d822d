"""`facebench run` end to end on the embedded sample: results, resume after a kill, shards, torchrun, bad input."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import InputError
from facebench.run import (ImageRecord, PredictionCache, RunRequest, ShardOutcome, finalize, read_part, run,
                           shard_bounds)

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("yuface")  # the default detector: a core dependency


def _run(out: Path, **kw) -> object:
    kw.setdefault("plot", False)  # drawing costs more than the inference here; the reference run draws
    return run(RunRequest(detector=kw.pop("detector", "yunet"), out=out, progress=False, **kw))


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted single-process run of the default detector on the sample."""
    out = tmp_path_factory.mktemp("reference")
    _run(out, plot=True)
    return out


def test_sample_run_writes_result_records_plot_and_predictions(reference):
    doc = json.loads((reference / "result.json").read_text())
    assert doc["benchmark"] == "sample" and doc["schema"] == "facebench.result/1"
    assert set(doc["metrics"]) == {"easy", "medium", "hard"}
    # a real pretrained detector finds the large faces of the sample
    assert doc["metrics"]["easy"] > 0.9 and doc["metrics"]["medium"] > 0.9
    assert 0.3 < doc["metrics"]["hard"] <= 1.0
    det = doc["detector"]
    assert det["name"] == "yunet" and len(det["config_hash"]) == 16 and len(det["weights_sha256"]) == 64
    assert det["options"] == {"score_threshold": 0.0}
    timing = doc["timing"]
    assert timing["images_timed"] == 6 and timing["split"] == "detector-reported"
    assert {"load", "preprocess", "forward", "postprocess", "total"} <= set(timing["ms_per_image"])
    assert timing["peak_memory_mib"]["rss"] > 10 and timing["precision"] == "fp32"
    assert timing["input_policy"] == "original" and timing["hardware"]["cpu_cores_available"] >= 1
    assert doc["run"]["images"] == 6 and doc["run"]["unreadable_images"] == {"count": 0, "ids": []}
    assert (reference / "result.records.npz").is_file() and (reference / "pr.png").stat().st_size > 1000
    pred = reference / "predictions"
    files = sorted(p.relative_to(pred).as_posix() for p in pred.rglob("*.txt"))
    assert files[0] == "0--Portrait/hopper.txt" and len(files) == 6
    lines = (reference / "predictions" / "0--Portrait" / "hopper.txt").read_text().splitlines()
    assert lines[0] == "hopper" and int(lines[1]) == len(lines) - 2 >= 1
    assert len(lines[2].split()) == 5


def test_cli_main_command_prints_the_table(tmp_path):
    out = subprocess.run([sys.executable, "-m", "facebench", "run", "--out", str(tmp_path / "o"), "--no-progress",
                          "--no-plot"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "easy" in out.stdout and "hard" in out.stdout and "ms/image" in out.stdout
    assert (tmp_path / "o" / "result.json").is_file()


def test_rerun_is_served_from_the_cache(reference, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(reference / "cache", out / "cache")
    result = _run(out)
    assert _same_tree(out / "predictions", reference / "predictions")
    part = next((out / "cache").rglob("part-*.jsonl"))
    assert len(part.read_text().splitlines()) == 6  # nothing recomputed, nothing duplicated
    meta = json.loads(part.with_suffix(".meta.json").read_text())
    assert meta["from_cache"] == 6 and meta["computed"] == 0
    assert result.metrics == json.loads((reference / "result.json").read_text())["metrics"]
    # Served from the cache with another batch size: the times are still those of batch 1.
    again = _run(out, batch_size=4)
    assert again.document["timing"]["batch_size"] == 1


SLOW_RUN = """
import signal, sys, time
# a test run launched in the background of a non-interactive shell inherits SIGINT ignored; Ctrl-C is what we test
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {repo!r})
from detectors import registry
from detectors.third_party.yunet import YuNetDetector

class SlowYuNet(YuNetDetector):
    # same name and options as yunet, so the same cache key: a resumed plain yunet run picks it up
    def detect(self, images):
        time.sleep(0.5)
        return super().detect(images)

import __main__
__main__.SlowYuNet = SlowYuNet
registry.register("slow-yunet", "__main__:SlowYuNet", requires=())
from facebench.cli import main
main(["run", "slow-yunet", "sample", "--out", {out!r}, "--no-progress", "--no-plot"])
"""


def test_killed_run_resumes_with_nothing_lost_or_duplicated(reference, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN.format(repo=str(REPO), out=str(out))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    part = None
    try:
        while time.time() < deadline:
            parts = list((out / "cache").rglob("part-*.jsonl")) if (out / "cache").exists() else []
            if parts and len(parts[0].read_bytes().splitlines()) >= 2:
                part = parts[0]
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert part is not None, "the slow run never cached two images"
    done_before = part.read_bytes()
    kept = done_before[:done_before.rfind(b"\n") + 1]
    n_before = kept.count(b"\n")
    assert 2 <= n_before < 6, "the run finished before it could be killed"
    # and as if the kill had hit in the middle of a write: half a record at the end
    with open(part, "ab") as handle:
        handle.write(b'{"id":"1--Mosaic/hopper_mosaic_16x16","status":"ok","boxes":[[1.0,2.')

    _run(out)  # resume with the plain detector (same config hash)
    data = part.read_bytes()
    assert data.startswith(kept)  # what the killed run cached is kept byte for byte
    ids = [json.loads(line)["id"] for line in data.decode().splitlines()]
    assert len(ids) == 6 == len(set(ids))  # nothing lost, nothing twice, the torn line gone
    assert _same_tree(out / "predictions", reference / "predictions")
    assert json.loads((out / "result.json").read_text())["metrics"] == \
        json.loads((reference / "result.json").read_text())["metrics"]


@pytest.mark.parametrize("num_shards", [2, 4])
def test_shards_merge_to_the_single_process_result(reference, tmp_path, num_shards):
    out = tmp_path / f"shards{num_shards}"
    sizes = []
    for shard_id in range(num_shards):
        outcome = _run(out, num_shards=num_shards, shard_id=shard_id)
        assert isinstance(outcome, ShardOutcome)
        sizes.append(outcome.n_images)
    assert sum(sizes) == 6 and max(sizes) - min(sizes) <= 1
    assert not (out / "result.json").exists()  # shards do not score
    result = finalize(out, plot=False)
    assert _same_tree(out / "predictions", reference / "predictions")
    a = json.loads((out / "result.json").read_text())
    b = json.loads((reference / "result.json").read_text())
    assert a["metrics"] == b["metrics"] and a["curves"] == b["curves"] and a["counts"] == b["counts"]
    assert a["run"]["num_shards"] == num_shards and a["timing"]["peak_memory_mib"]["processes"] == num_shards
    assert result.unreadable == []


def test_merge_from_separate_folders(reference, tmp_path):
    dirs = [tmp_path / "m0", tmp_path / "m1"]
    for shard_id, out in enumerate(dirs):
        _run(out, num_shards=2, shard_id=shard_id)
    from facebench.cli import main

    main(["merge", str(dirs[0]), str(dirs[1]), "--out", str(tmp_path / "merged"), "--no-plot"])
    assert _same_tree(tmp_path / "merged" / "predictions", reference / "predictions")


def test_merge_before_all_shards_are_done_names_the_gap(tmp_path):
    out = tmp_path / "half"
    _run(out, num_shards=3, shard_id=1)
    with pytest.raises(InputError, match=r"4 of 6 images have no cached detections yet") as info:
        finalize(out, plot=False)
    assert "other detector configuration" not in info.value.message


def test_merge_of_shards_with_other_options_in_one_folder_says_so(tmp_path):
    """Shards 0 and 1 with the defaults, shard 2 with another threshold, one --out: the merge used to say only
    that images had no cached detections, though every shard had finished."""
    out = tmp_path / "mixed"
    for shard in (0, 1):
        _run(out, num_shards=3, shard_id=shard)
    _run(out, num_shards=3, shard_id=2, options={"score_threshold": 0.5})
    with pytest.raises(InputError, match=r"4 of 6 images have no cached detections yet .* holds records of 1 "
                                         r"other detector configuration .* run.json names the last "
                                         r"\(-o score_threshold=0.5"):
        finalize(out, plot=False)


def test_torchrun_ranks_shard_and_rank0_scores(reference, tmp_path):
    pytest.importorskip("torch.distributed")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "facebench", "run", "yunet", "sample", "--out", str(out), "--no-progress", "--no-plot"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    parts = sorted(p.name for p in (out / "cache").rglob("part-*.jsonl"))
    assert parts == ["part-0000-of-0002.jsonl", "part-0001-of-0002.jsonl"]
    counts = [len(p.read_text().splitlines()) for p in sorted((out / "cache").rglob("part-*.jsonl"))]
    assert counts == [3, 3]  # contiguous halves, no padding duplicates
    assert _same_tree(out / "predictions", reference / "predictions")
    assert json.loads((out / "result.json").read_text())["metrics"] == \
        json.loads((reference / "result.json").read_text())["metrics"]


def test_shard_bounds_are_contiguous_and_cover_everything():
    for n in (0, 1, 5, 6, 3226):
        for k in (1, 2, 3, 7):
            bounds = [shard_bounds(n, k, i) for i in range(k)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(InputError):
        shard_bounds(10, 2, 2)
    with pytest.raises(InputError):
        shard_bounds(10, 0, 0)


def test_cache_records_round_trip_exactly_in_float32(tmp_path):
    boxes = np.array([[1.5, 2.25, 30.123456789, 40.0, 0.987654321]], dtype=np.float64)
    record = ImageRecord("a/b", boxes, "ok", "", {"forward": 1.0})
    back = ImageRecord.from_line(record.to_line())
    assert back.id == "a/b" and np.array_equal(back.boxes.astype(np.float32), boxes.astype(np.float32))
    assert ImageRecord.from_line(ImageRecord("x", np.zeros((0, 5))).to_line()).boxes.shape == (0, 5)
    cache = PredictionCache(tmp_path, "0000-of-0001")
    cache.open()
    cache.append(record)
    cache.close()
    cache.path.write_bytes(cache.path.read_bytes() + b'{"id":"c","bo')
    assert [r.id for r in read_part(cache.path)] == ["a/b"]
    cache.open()  # cuts the torn line before appending
    cache.append(ImageRecord("c", boxes))
    cache.close()
    assert [r.id for r in read_part(cache.path)] == ["a/b", "c"]


def _wider_layout(root: Path) -> Path:
    """The sample as a widerface-val folder: ground_truth/*.mat and WIDER_val/images/<event>/<image>.jpg."""
    from PIL import Image

    from facebench import sample

    shutil.copytree(sample.GROUND_TRUTH_DIR, root / "ground_truth")
    for spec in sample.IMAGES:
        path = root / "WIDER_val" / "images" / spec.event / f"{spec.name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.render(spec)).save(path, quality=95)
    return root


def test_unreadable_images_are_skipped_warned_and_counted(tmp_path, capsys):
    root = _wider_layout(tmp_path / "wider")
    truncated = root / "WIDER_val/images/1--Mosaic/hopper_mosaic_4x4.jpg"
    truncated.write_bytes(truncated.read_bytes()[:300])
    (root / "WIDER_val/images/1--Mosaic/hopper_mosaic_8x8.jpg").write_text("not an image at all")
    result = _run(tmp_path / "out", benchmark="widerface-val", data_root=str(root))
    err = capsys.readouterr().err
    assert "skipping unreadable image 1--Mosaic/hopper_mosaic_4x4" in err
    assert "skipping unreadable image 1--Mosaic/hopper_mosaic_8x8" in err
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["benchmark"] == "widerface-val"
    assert doc["run"]["unreadable_images"] == {"count": 2, "ids": ["1--Mosaic/hopper_mosaic_4x4",
                                                                  "1--Mosaic/hopper_mosaic_8x8"]}
    assert result.unreadable == doc["run"]["unreadable_images"]["ids"]
    # unreadable images are scored as images without detections: their faces count as missed, so only the
    # 6 faces of the portraits and the 2x2 mosaic are found, all at precision 1
    assert doc["metrics"]["easy"] == pytest.approx(6 / 22) and doc["metrics"]["medium"] == pytest.approx(6 / 86)


def test_data_root_holds_the_benchmark_folders_as_for_eval_and_env_var(tmp_path, monkeypatch):
    """--data-root DIR is the folder holding widerface/ (as for `facebench eval`), also from $FACEBENCH_DATA_ROOT;
    the benchmark folder itself still works; recorded paths are absolute whatever the current folder."""
    data = tmp_path / "data"
    _wider_layout(data / "widerface")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FACEBENCH_DATA_ROOT", raising=False)
    first = _run(Path("out"), benchmark="widerface-val", data_root="data")
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["dataset"]["data_root"] == str(data / "widerface")
    assert doc["settings"]["predictions"] == str(tmp_path / "out" / "predictions")
    assert Path(doc["run"]["cache"]).is_absolute() and doc["run"]["sources"] == [str(tmp_path / "out")]
    monkeypatch.setenv("FACEBENCH_DATA_ROOT", str(data))
    again = _run(Path("out"), benchmark="widerface-val")
    assert again.metrics == first.metrics
    monkeypatch.delenv("FACEBENCH_DATA_ROOT")
    direct = _run(Path("out"), benchmark="widerface-val", data_root=str(data / "widerface"))
    assert direct.metrics == first.metrics
    # Other data (the same image ids) in the same run folder would be served from the cache: refused.
    shutil.copytree(data, tmp_path / "other")
    with pytest.raises(InputError, match="holds a run of widerface-val on other data .data_root was"):
        _run(Path("out"), benchmark="widerface-val", data_root="other")
    monkeypatch.setenv("FACEBENCH_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert _run(Path("sample_out")).metrics  # the embedded sample takes no data root, not even from the env


def test_damaged_cache_lines_are_warned_once_by_line_and_their_images_redone(reference, tmp_path, capsys):
    """Non-UTF-8 bytes, a JSON array and a cached NaN box are damaged lines like any other: skipped with one
    warning naming the file and line, the image detected again, predictions and result as a clean run."""
    out = tmp_path / "damaged"
    shutil.copytree(reference / "cache", out / "cache")
    part = next((out / "cache").rglob("part-*.jsonl"))
    lines = part.read_bytes().split(b"\n")[:-1]
    nan_line = json.loads(lines[2])
    nan_line["boxes"] = [[1.0, 2.0, 3.0, 4.0, float("nan")]]
    lines[1] = b"[1, 2, 3]"
    lines[2] = json.dumps(nan_line).encode()
    lines.append(b"\x00\xff\xfe junk")
    part.write_bytes(b"\n".join(lines) + b"\n")
    capsys.readouterr()
    result = _run(out)
    err = capsys.readouterr().err
    for line in (2, 3, 7):
        assert err.count(f"{part}:{line}: skipping a damaged cache line") == 1, err
    assert "Traceback" not in err and "'boxes' holds NaN or inf" in err and "not UTF-8" in err
    assert _same_tree(out / "predictions", reference / "predictions")
    assert result.metrics == json.loads((reference / "result.json").read_text())["metrics"]
    with pytest.raises(ValueError, match="not a record"):
        ImageRecord.from_line("[1, 2, 3]")


@pytest.mark.parametrize("line, reason", [
    ('{"id": "a"}', "no 'boxes'"),  # was read as "no detections": easy AP 100 -> 95.45, silently
    ('{"id": "a", "boxes": [[1, 2, 3, 4, 1' + "0" * 400 + ']]}', "beyond float range"),  # was an OverflowError
    ('{"id": "a", "boxes": [], "ms": {"load": 1' + "0" * 400 + '}}', "beyond float range"),  # was a TypeError
])
def test_cache_lines_without_boxes_or_with_huge_numbers_are_damaged(line, reason):
    with pytest.raises(ValueError, match=reason):
        ImageRecord.from_line(line)


def test_merging_shards_of_different_options_names_the_options(tmp_path):
    _run(tmp_path / "a", num_shards=2, shard_id=0)
    _run(tmp_path / "b", num_shards=2, shard_id=1, options={"score_threshold": 0.5})
    with pytest.raises(InputError) as info:
        finalize(tmp_path / "a", [tmp_path / "a", tmp_path / "b"], plot=False)
    message = info.value.message
    assert "options / config hash" in message and "-o score_threshold=0.5" in message
    assert "-o score_threshold=0.0" in message


def test_interrupted_run_says_how_to_resume(tmp_path):
    from facebench.commands.run import resume_hint

    assert "re-run `facebench run yunet --out 'a b'` to resume" in resume_hint(["run", "yunet", "--out", "a b"])
    out = tmp_path / "int"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN.format(repo=str(REPO), out=str(out))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    try:
        # interrupt once the first image is cached: five more of 0.5 s each are still to come
        while time.time() < deadline and not any(p.stat().st_size for p in out.glob("cache/*/*/part-*.jsonl")):
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: the images done so far are cached; re-run" in err and "to resume" in err


def test_fddb_layout_runs_end_to_end_with_the_fddb_protocol(tmp_path):
    pytest.importorskip("protocols.fddb")
    from PIL import Image

    from facebench import sample

    root = tmp_path / "fddb"
    (root / "FDDB-folds").mkdir(parents=True)
    specs = list(sample.IMAGES[:4])  # the larger faces keep the raster work small
    for fold in range(1, 11):
        spec = specs[(fold - 1) % len(specs)]
        entry = f"2002/07/{fold:02d}/big/img_{fold}"
        path = root / "originalPics" / f"{entry}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.render(spec)).save(path, quality=95)
        rows = [f"{h * 0.6:.4f} {w * 0.5:.4f} 1.570796 {x + w / 2:.2f} {y + h / 2:.2f} 1"
                for x, y, w, h in sample.face_boxes(spec)]
        (root / "FDDB-folds" / f"FDDB-fold-{fold:02d}.txt").write_text(entry + "\n")
        (root / "FDDB-folds" / f"FDDB-fold-{fold:02d}-ellipseList.txt").write_text(
            "\n".join([entry, str(len(rows)), *rows]) + "\n")
    result = _run(tmp_path / "out", benchmark="fddb", data_root=str(root))
    pred = sorted(p.name for p in (tmp_path / "out" / "predictions").iterdir())
    assert pred == [f"fold-{f:02d}-out.txt" for f in range(1, 11)]
    first = (tmp_path / "out" / "predictions" / "fold-01-out.txt").read_text().splitlines()
    assert first[0] == "2002/07/01/big/img_1" and int(first[1]) >= 1 and len(first[2].split()) == 5
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["benchmark"] == "fddb" and doc["protocol"]["name"] == "fddb"
    assert doc["counts"]["faces"] == sum(len(sample.face_boxes(specs[i % 4])) for i in range(10))
    assert result.metrics["disc_tpr_at_1000fp"] > 0.8
    assert (tmp_path / "out" / "fddb-DiscROC.txt").is_file()
    # An unreadable image is skipped, its faces count as missed, and the run still scores (its size is
    # not needed: it has no detections).
    (root / "originalPics" / "2002/07/10/big/img_10.jpg").write_text("not a picture")
    broken = _run(tmp_path / "out2", benchmark="fddb", data_root=str(root))
    doc = json.loads((tmp_path / "out2" / "result.json").read_text())
    assert doc["run"]["unreadable_images"]["count"] == 1 and broken.metrics["disc_tpr_at_1000fp"] < 1
    # A re-merge that fails to score leaves neither the old result nor the old official ROC files beside the
    # new predictions.
    from facebench.run import finalize

    (root / "FDDB-folds" / "FDDB-fold-01-ellipseList.txt").write_text("2002/07/01/big/img_1\nmany\n")
    with pytest.raises(InputError, match="FDDB-fold-01-ellipseList.txt:2"):
        finalize(tmp_path / "out", data_root=str(root))
    left = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert "fddb-DiscROC.txt" not in left and "fddb-ContROC.txt" not in left and "result.json" not in left
    assert "predictions" in left


def test_unknown_benchmark_and_bad_arguments():
    with pytest.raises(InputError, match=r"unknown benchmark 'widerface'\. Did you mean 'widerface-val'"):
        _run(Path("unused"), benchmark="widerface")
    with pytest.raises(InputError, match="needs --data-root"):
        _run(Path("unused"), benchmark="fddb")
    with pytest.raises(InputError, match="takes no --data-root"):
        _run(Path("unused"), data_root=".")
    with pytest.raises(InputError, match="--batch-size must be >= 1"):
        _run(Path("unused"), batch_size=0)
    with pytest.raises(InputError, match=r"--shard-id must be in 0\.\.1"):
        _run(Path("unused"), num_shards=2, shard_id=5)
    with pytest.raises(InputError, match="--num-shards must be >= 1, got 0"):
        _run(Path("unused"), num_shards=0, shard_id=0)
    with pytest.raises(InputError, match="--shard-id 1 needs --num-shards N"):  # was "must be in 0..0"
        _run(Path("unused"), shard_id=1)
    with pytest.raises(InputError, match="unknown detector 'yunt'"):
        _run(Path("unused"), detector="yunt")


@pytest.mark.parametrize("name, layout", [("widerface-val", "WIDER_val/images"), ("afw", "annotations/"),
                                          ("pascal", "annotations/"), ("fddb", "FDDB-folds")])
def test_incomplete_layouts_say_what_is_missing(tmp_path, name, layout):
    from facebench.datasets import get_benchmark

    with pytest.raises(InputError) as err:
        bench = get_benchmark(name, tmp_path)
        bench.images()
    assert layout in str(err.value) and "\n" not in str(err.value)


def test_cli_errors_are_one_line_exit_2(tmp_path):
    for args, text in ((["run", "retinaface"], "Did you mean"), (["run", "yunet", "fdb"], "Did you mean 'fddb'"),
                       (["run", "-o", "nonsense"], "KEY=VALUE"), (["merge", str(tmp_path)], "no run manifest")):
        proc = subprocess.run([sys.executable, "-m", "facebench", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 2, (args, proc.stderr)
        assert text in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_high_bit_depth_grayscale_images_are_rescaled_not_saturated(tmp_path):
    from PIL import Image

    from facebench.datasets import read_rgb

    ramp = (np.arange(32 * 48).reshape(32, 48) * 40).astype(np.uint16)  # 0 .. 61,400 of 65,535
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    rgb = read_rgb(tmp_path / "g16.png")
    assert rgb.shape == (32, 48, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[:, :, 0], np.rint(ramp / 257.0).astype(np.uint8))  # not all 255
    Image.fromarray((ramp / 65535.0).astype(np.float32)).save(tmp_path / "f.tif")
    assert abs(int(read_rgb(tmp_path / "f.tif")[-1, -1, 1]) - round(61400 / 65535 * 255)) <= 1
    Image.fromarray(np.full((4, 4), 200, np.int32)).save(tmp_path / "i.tif")  # 32-bit holding 8-bit values
    assert (read_rgb(tmp_path / "i.tif") == 200).all()


def test_a_kill_while_writing_predictions_leaves_the_old_result_consistent(reference, tmp_path):
    from facebench.datasets import get_benchmark
    from facebench.run import finalize

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = {p.relative_to(out): p.read_bytes() for p in (out / "predictions").rglob("*") if p.is_file()}
    result_before = (out / "result.json").read_bytes()
    bench = get_benchmark("sample", None)
    real = bench.write_predictions

    def interrupted(pred_dir, detections):
        real(pred_dir, dict(list(detections.items())[:2]))  # part of the files, then the kill
        raise KeyboardInterrupt

    bench.write_predictions = interrupted
    with pytest.raises(KeyboardInterrupt):
        finalize(out, bench=bench)
    after = {p.relative_to(out): p.read_bytes() for p in (out / "predictions").rglob("*") if p.is_file()}
    (out / ".predictions.1.tmp").mkdir()  # left by a finalize of another process
    assert after == before and (out / "result.json").read_bytes() == result_before
    # A later finalize without a figure removes the old one rather than leave it beside the new result.
    assert (out / "pr.png").is_file()
    finalize(out, bench=get_benchmark("sample", None), plot=False)
    assert not (out / "pr.png").exists() and (out / "result.json").is_file()
    assert not list(out.glob(".predictions.*"))


def test_a_detector_with_only_the_readme_contract_runs(tmp_path, monkeypatch):
    import facebench.run as run_module

    class Plain:  # no base class: detect, input_policy and config_hash only
        input_policy = "original"
        config_hash = "plain0001"

        def detect(self, images):
            return [np.array([[10, 10, 60, 60, 0.9]], dtype=np.float32) for _ in images]

    monkeypatch.setattr(run_module, "build_detector", lambda name, options, device: Plain())
    result = _run(tmp_path / "out", detector="plain")
    assert result.document["detector"]["config_hash"] == "plain0001" and "easy" in result.metrics

    class Broken(Plain):
        config_hash = None

    monkeypatch.setattr(run_module, "build_detector", lambda name, options, device: Broken())
    with pytest.raises(InputError, match="lacks a detect method or a config_hash"):
        _run(tmp_path / "out2", detector="broken")


def test_the_data_guard_holds_across_other_benchmarks_and_a_damaged_manifest(tmp_path):
    """afw on data A, then pascal into the same folder, then afw on data B: refused (the manifest named only
    pascal's data and the B run was served A's detections); likewise after run.json is damaged."""
    from facebench.run import MANIFEST, _check_same_data, _record_data, write_json_atomic

    out = tmp_path / "run"
    afw_a = {"name": "afw", "data_root": "/data/A/afw", "images_dir": "/data/A/afw/images"}
    afw_b = {**afw_a, "data_root": "/data/B/afw", "images_dir": "/data/B/afw/images"}
    pascal = {"name": "pascal", "data_root": "/data/A/pascal"}
    _check_same_data(out, afw_a)
    assert not out.exists()  # checking writes nothing (a refused option must leave no folder)
    _record_data(out, afw_a)
    (out / "cache" / "afw" / "hash").mkdir(parents=True)
    write_json_atomic(out / MANIFEST, {"benchmark": afw_a, "detector": {"name": "yunet"}})
    _check_same_data(out, afw_a)  # the same data resumes
    _check_same_data(out, pascal)
    _record_data(out, pascal)
    write_json_atomic(out / MANIFEST, {"benchmark": pascal, "detector": {"name": "yunet"}})
    with pytest.raises(InputError, match=r"run of afw on other data \(data_root was /data/A/afw, now /data/B/afw\)"):
        _check_same_data(out, afw_b)
    (out / MANIFEST).write_text("{")
    with pytest.raises(InputError, match="other data"):
        _check_same_data(out, afw_b)


@pytest.mark.parametrize("text, needle", [
    ("[]", "no 'benchmark' object"), ("{}", "no 'benchmark' object"),
    ('{"benchmark": {"name": "afw"}, "detector": "x"}', "no 'detector' object"),
])
def test_a_manifest_of_the_wrong_shape_is_named(tmp_path, text, needle):
    """It was a TypeError or KeyError naming no file."""
    from facebench.run import MANIFEST, read_manifest

    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(InputError, match=f"damaged run manifest \\({needle}") as info:
        read_manifest(tmp_path)
    assert info.value.path == str(tmp_path / MANIFEST) or str(info.value).startswith(str(tmp_path / MANIFEST))


def test_shards_of_other_data_are_not_merged(tmp_path):
    from facebench.run import _check_mergeable

    first = {"benchmark": {"name": "afw", "data_root": "/A"}, "detector": {"name": "yunet", "config_hash": "h"}}
    other = {"benchmark": {"name": "afw", "data_root": "/B"}, "detector": {"name": "yunet", "config_hash": "h"}}
    _check_mergeable(tmp_path / "s1", first, tmp_path / "s0", first)
    with pytest.raises(InputError, match=r"data_root \(/B\) differs from .*\(/A\); cannot merge shards of other"):
        _check_mergeable(tmp_path / "s1", other, tmp_path / "s0", first)


def test_concurrent_merges_into_one_folder_take_turns(reference, tmp_path):
    """Two merges into one --out at once: each used to delete the other's staged predictions and score the
    half-written files (hard AP 6.9e-07 instead of 1.8e-06 on WIDER). The lock makes the second wait."""
    import threading

    out = tmp_path / "busy"
    shutil.copytree(reference, out)
    expected = json.loads((reference / "result.json").read_text())["metrics"]
    results, errors = [], []

    def merge() -> None:
        try:
            results.append(finalize(out, plot=False).metrics)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=merge) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and results == [expected] * 3
    assert _same_tree(out / "predictions", reference / "predictions")
    assert not list(out.glob(".predictions.*.tmp"))


def test_a_file_where_predictions_belong_is_refused_before_anything_is_removed(reference, tmp_path):
    out = tmp_path / "odd"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "predictions")
    (out / "predictions").write_text("mine")
    with pytest.raises(InputError, match="a file where the run's predictions/ folder belongs"):
        finalize(out, plot=False)
    assert (out / "result.json").is_file() and not list(out.glob(".predictions.*.tmp"))


def test_a_folder_named_twice_in_merge_counts_once(reference, tmp_path):
    """Its shards' timing used to be counted twice (processes: 2, twice the wall time)."""
    once = finalize(tmp_path / "a", [reference], plot=False).document["timing"]
    twice = finalize(tmp_path / "b", [reference, reference], plot=False).document["timing"]
    assert twice["peak_memory_mib"]["processes"] == once["peak_memory_mib"]["processes"] == 1
    assert twice["inference_wall_s"] == once["inference_wall_s"]


def test_a_second_run_of_one_shard_into_one_folder_is_refused(tmp_path):
    """Two runs of the same shard into one --out both used to compute every image; the part file's lock now
    refuses the second at once, and its refusal leaves the first one's records untouched."""
    from facebench.run import ImageRecord, PredictionCache

    first = PredictionCache(tmp_path / "cache", "0000-of-0001")
    first.open()
    first.append(ImageRecord(id="a", status="ok", boxes=np.zeros((0, 5), np.float32)))
    second = PredictionCache(tmp_path / "cache", "0000-of-0001")
    with pytest.raises(InputError, match="another facebench run is writing this shard into the same --out"):
        second.open()
    first.close()
    second.open()  # free once the first has finished
    second.close()
    assert list(PredictionCache(tmp_path / "cache", "x").load()) == ["a"]
