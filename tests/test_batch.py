"""Batch jobs: streamed listings, Parquet shards, exactly-once after simulated kills, bad files, local vs Ray."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import cv2
import pytest

import batch_faults
from conftest import need_shared
from retinakit.apps.batch import BatchConfig, run_batch
from retinakit.apps.batch.job import BatchError
from retinakit.apps.batch.ray_engine import plan_pool
from retinakit.apps.batch.shards import MANIFEST, ShardStore, iter_shards, shard_name
from retinakit.apps.batch.source import Source, glob_regex, iter_paths
from retinakit.cli import main
from retinakit.detector import DetectorConfig

pq = pytest.importorskip("pyarrow.parquet")


class Killed(Exception):
    """Stands for SIGKILL: raised from the fault-injection hook, nothing after it runs."""


def kill_at(event: str, number: int):
    def hook(name: str, value: int) -> None:
        if (name, value) == (event, number):
            raise Killed(f"{name} {value}")

    return hook


def read_output(directory: Path):
    """All rows of an output directory (shards only: _manifest/_job and hidden tmp files are ignored)."""
    import pyarrow.dataset as ds

    return ds.dataset(directory, format="parquet").to_table().sort_by("path")


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_rgb) -> Path:
    """Nine real photos of a few sizes (crops of the astronaut), in two folders; one face each."""
    root = tmp_path_factory.mktemp("photos")
    bgr = astronaut_rgb[:, :, ::-1]
    for i in range(9):
        folder = root / ("a" if i < 5 else "b")
        folder.mkdir(exist_ok=True)
        size = 256 + 64 * (i % 3)
        image = cv2.resize(bgr, (size, size)) if i % 2 else bgr[: 320 + 16 * (i % 3), :400]
        cv2.imwrite(str(folder / f"img{i}.jpg"), image)
    return root


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory):
    """An uninterrupted run over the photos (shards of 2 inputs: 5 shards)."""
    out = tmp_path_factory.mktemp("reference")
    report = run_batch(BatchConfig(str(photos), str(out), shard_size=2, workers=0))
    assert (report.images, report.errors, report.shards_written) == (9, 0, 5)
    return read_output(out)


# --- the listing -------------------------------------------------------------------------------------------


def test_directory_walk_is_sorted_recursive_and_keeps_only_images(tmp_path):
    for name in ["b/z.png", "b/a.JPG", "a.jpg", "c.txt", "a/y.jpeg", "a/sub/x.bmp"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    got = [Path(p).relative_to(tmp_path).as_posix() for p in iter_paths(Source(str(tmp_path)))]
    assert got == ["a/sub/x.bmp", "a/y.jpeg", "a.jpg", "b/a.JPG", "b/z.png"]


def test_glob_pattern_is_walked_in_the_same_order(tmp_path):
    for name in ["b/z.png", "b/a.jpg", "a.jpg", "a/sub/x.jpg", "a/y.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    rel = [Path(p).relative_to(tmp_path).as_posix() for p in iter_paths(Source(f"{tmp_path}/**/*.jpg"))]
    assert rel == ["a/sub/x.jpg", "a.jpg", "b/a.jpg"]
    rel = [Path(p).relative_to(tmp_path).as_posix() for p in iter_paths(Source(f"{tmp_path}/*/*.png"))]
    assert rel == ["a/y.png", "b/z.png"]
    assert Source(f"{tmp_path}/*/*.png").base == tmp_path


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [("a/*.jpg", "a/x.jpg", "a/b/x.jpg"), ("a/**/x.jp?", "a/b/c/x.jpg", "b/x.jpg"), ("a/[!b]*", "a/c", "a/b")],
)
def test_glob_regex(pattern, yes, no):
    import re

    assert re.fullmatch(glob_regex(pattern), yes) and not re.fullmatch(glob_regex(pattern), no)


def test_listing_files_txt_csv_parquet_relative_to_root(tmp_path):
    import pyarrow as pa

    (tmp_path / "list.txt").write_text("# comment\nx/1.jpg\n\n/abs/2.jpg\n")
    with open(tmp_path / "list.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", "path"], ["7", "x/1.jpg"], ["8", "/abs/2.jpg"]])
    (tmp_path / "plain.csv").write_text("x/1.jpg,3\n/abs/2.jpg,4\n")
    pq.write_table(pa.table({"path": ["x/1.jpg", "/abs/2.jpg"]}), tmp_path / "list.parquet", row_group_size=1)
    for name in ("list.txt", "list.csv", "plain.csv", "list.parquet"):
        assert list(iter_paths(Source(str(tmp_path / name)))) == [str(tmp_path / "x/1.jpg"), "/abs/2.jpg"], name
        assert list(iter_paths(Source(str(tmp_path / name), root="/data"))) == ["/data/x/1.jpg", "/abs/2.jpg"]


def test_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a directory, a glob pattern or a"):
        list(iter_paths(Source(str(tmp_path / "photo.jpg"))))


def test_shards_are_consecutive_chunks():
    assert list(iter_shards(iter(["a", "b", "c", "d", "e"]), 2)) == [(0, ["a", "b"]), (1, ["c", "d"]), (2, ["e"])]
    assert list(iter_shards(iter([]), 3)) == []


# --- output and bad inputs ---------------------------------------------------------------------------------


def test_output_rows_hold_the_faces(reference, photos):
    assert reference.num_rows == 9
    assert reference.column("status").to_pylist() == ["ok"] * 9
    row = reference.slice(0, 1).to_pylist()[0]
    assert row["path"] == str(photos / "a" / "img0.jpg") and (row["width"], row["height"]) == (400, 320)
    assert row["num_faces"] == 1 and row["scores"][0] > 0.9
    x1, y1, x2, y2 = row["boxes"][0]
    assert 0 <= x1 < x2 <= 400 and 0 <= y1 < y2 <= 320
    assert len(row["landmarks"][0]) == 5 and all(len(p) == 2 for p in row["landmarks"][0])


def test_bad_files_become_error_rows_and_the_rest_is_processed(photos, tmp_path, capsys):
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(200))
    (tmp_path / "notes.txt").write_text("not an image")
    good = sorted(str(p) for p in photos.rglob("*.jpg"))
    listing = [good[0], str(tmp_path / "corrupt.jpg"), str(tmp_path / "missing.jpg"), str(tmp_path / "notes.txt")]
    listing += good[1:3]
    (tmp_path / "list.txt").write_text("\n".join(listing) + "\n")
    out = tmp_path / "out"
    code = main(["batch", str(tmp_path / "list.txt"), str(out), "--shard-size", "4", "--workers", "1", "--no-progress"])
    assert code == 1  # some inputs failed; the job still finished
    assert "6 images, 3 with an error" in capsys.readouterr().err
    rows = {r["path"]: r for r in read_output(out).to_pylist()}
    assert sorted(rows) == sorted(listing)
    assert "not a decodable image" in rows[str(tmp_path / "corrupt.jpg")]["error"]
    assert rows[str(tmp_path / "missing.jpg")]["error"] == "no such file"
    assert "not a decodable image" in rows[str(tmp_path / "notes.txt")]["error"]
    for path in (good[0], *good[1:3]):
        assert rows[path]["status"] == "ok" and rows[path]["num_faces"] == 1 and rows[path]["error"] is None
    for path in listing[1:4]:
        assert rows[path]["status"] == "error" and rows[path]["num_faces"] == 0 and rows[path]["width"] is None


def test_crops_and_annotated_images(photos, tmp_path):
    config = BatchConfig(
        str(photos / "a"), str(tmp_path / "out"), crops=str(tmp_path / "crops"), save_images=str(tmp_path / "ann")
    )
    assert run_batch(config).images == 5
    crop = cv2.imread(str(tmp_path / "crops" / "img0.jpg_0.png"))
    assert crop.shape == (112, 112, 3)
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == [f"img{i}.jpg" for i in range(5)]


def dying_decode(path: str):
    """The workers' decode, except that ``*die*`` files kill their process every time, ``*once*`` files once.

    Module-level so that spawned decoding processes can import it by name (this folder is on their sys.path).
    """
    import os
    import signal

    from retinakit.apps.batch.job import decode

    marker = Path(path + ".died")
    if "die" in Path(path).name or ("once" in Path(path).name and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return decode(path)


def test_a_dying_decoder_is_replaced_and_the_image_that_kills_it_twice_becomes_an_error_row(
    photos, reference, tmp_path, monkeypatch, caplog
):
    import shutil

    from retinakit.apps.batch import local

    shutil.copytree(photos, tmp_path / "in")
    shutil.copy(photos / "a" / "img1.jpg", tmp_path / "in" / "a" / "img1_die.jpg")
    shutil.copy(photos / "b" / "img6.jpg", tmp_path / "in" / "b" / "img6_once.jpg")
    monkeypatch.setattr(local, "decode", dying_decode)
    report = run_batch(BatchConfig(str(tmp_path / "in"), str(tmp_path / "out"), shard_size=4, workers=2))
    assert (report.images, report.errors, report.shards_written) == (11, 1, 3)  # the job went on
    assert (tmp_path / "in" / "b" / "img6_once.jpg.died").exists()  # it did kill a decoder once
    assert "img1_die.jpg killed its decoding process twice" in caplog.text
    rows = {
        Path(r["path"]).relative_to(tmp_path / "in").as_posix(): r for r in read_output(tmp_path / "out").to_pylist()
    }
    assert len(rows) == 11 and read_output(tmp_path / "out").num_rows == 11  # every image exactly once
    assert rows["a/img1_die.jpg"]["status"] == "error" and rows["a/img1_die.jpg"]["error"] == local.DIED
    once, twin = rows.pop("b/img6_once.jpg"), rows["b/img6.jpg"]
    assert once["status"] == "ok" and (once["boxes"], once["landmarks"]) == (twin["boxes"], twin["landmarks"])
    rows.pop("a/img1_die.jpg")
    expected = {Path(r["path"]).relative_to(photos).as_posix(): r for r in reference.to_pylist()}
    for name, row in rows.items():  # the innocent images in flight were decoded again, unchanged
        assert {k: v for k, v in row.items() if k != "path"} == {k: v for k, v in expected[name].items() if k != "path"}


# --- resumable and exactly once ----------------------------------------------------------------------------


def assert_exactly_once(out: Path, reference) -> None:
    table = read_output(out)
    paths = table.column("path").to_pylist()
    assert len(paths) == len(set(paths)) == reference.num_rows
    assert table.equals(reference)  # same rows, same detections as an uninterrupted run
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("workers", [0, 2])
def test_kill_after_a_shard_file_before_its_manifest_entry(photos, reference, tmp_path, workers):
    out = tmp_path / "out"
    config = BatchConfig(str(photos), str(out), shard_size=2, workers=workers)
    with pytest.raises(Killed):
        run_batch(config, hook=kill_at("written", 1))
    assert (out / shard_name(1)).exists()  # renamed into place, but not recorded
    assert [json.loads(line)["index"] for line in (out / MANIFEST).read_text().splitlines()] == [0]
    report = run_batch(config)
    assert (report.shards_skipped, report.shards_written, report.images) == (1, 4, 7)
    assert (report.total_images, report.total_errors) == (9, 0)
    assert_exactly_once(out, reference)


def test_kill_inside_a_shard_and_during_a_write(photos, reference, tmp_path):
    out = tmp_path / "out"
    config = BatchConfig(str(photos), str(out), shard_size=2, workers=0)
    with pytest.raises(Killed):
        run_batch(config, hook=kill_at("row", 5))  # second input of shard 2
    assert sorted(p.name for p in out.glob("part-*")) == [shard_name(0), shard_name(1)]
    # as if killed while writing shard 2 and while appending its manifest line
    (out / f".{shard_name(2)}.tmp").write_bytes(b"PAR1 half a file")
    with open(out / MANIFEST, "a") as f:
        f.write('{"index": 2, "rows"')
    report = run_batch(config)
    assert (report.shards_skipped, report.shards_written) == (2, 3)
    assert_exactly_once(out, reference)
    assert len((out / MANIFEST).read_text().splitlines()) == 5
    assert run_batch(config).shards_written == 0  # a finished job stays finished


def test_resuming_with_other_settings_or_another_listing_is_refused(photos, tmp_path):
    out = tmp_path / "out"
    run_batch(BatchConfig(str(photos), str(out), shard_size=4, workers=0))
    with pytest.raises(ValueError, match="other settings \\(detector\\)"):
        run_batch(BatchConfig(str(photos), str(out), shard_size=4, detector=DetectorConfig(score_threshold=0.9)))
    # threads / batch size change speed, not detections: resuming with them is fine
    run_batch(BatchConfig(str(photos), str(out), shard_size=4, detector=DetectorConfig(threads=1, batch_size=2)))
    (photos / "a" / "img0.jpg").rename(photos / "a" / "img0x.jpg")
    try:
        with pytest.raises(ValueError, match="input listing changed"):
            run_batch(BatchConfig(str(photos), str(out), shard_size=4, workers=0))
    finally:
        (photos / "a" / "img0x.jpg").rename(photos / "a" / "img0.jpg")


def test_store_records_only_whole_shards(tmp_path):
    store = ShardStore(tmp_path, {"job": 1})
    from retinakit.apps.batch.schema import error_row

    record = store.write(3, [error_row("x.jpg", "no such file"), error_row("y.jpg", "empty file")])
    assert (record.index, record.rows, record.errors, record.first) == (3, 2, 2, "x.jpg")
    assert ShardStore(tmp_path, {"job": 1}).done == {3: record}
    assert pq.read_table(tmp_path / shard_name(3)).column("path").to_pylist() == ["x.jpg", "y.jpg"]


# --- Ray ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance():
    """A local 2-CPU Ray instance whose workers can import ``batch_faults`` and have its failure installed."""
    ray = pytest.importorskip("ray")
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env = {"env_vars": {"PYTHONPATH": path}, "worker_process_setup_hook": "batch_faults.install"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=env)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory, astronaut_rgb) -> Path:
    """Five 256 x 256 PNG photos of one shape (so they share a forward pass); ``img2.png`` is poisoned."""
    root = tmp_path_factory.mktemp("poisoned")
    bgr = cv2.resize(astronaut_rgb[:, :, ::-1], (256, 256))
    for i in range(5):
        image = bgr[:, ::-1] if i % 2 else bgr
        cv2.imwrite(str(root / f"img{i}.png"), batch_faults.poison(image) if i == 2 else image)
    return root


def assert_only_the_poisoned_image_failed(out: Path, clean: Path) -> None:
    rows, expected = read_output(out).to_pylist(), read_output(clean).to_pylist()
    assert [Path(r["path"]).name for r in rows] == [f"img{i}.png" for i in range(5)]
    for row, reference in zip(rows, expected, strict=True):
        if row["path"].endswith("img2.png"):
            assert (row["status"], row["error"], row["num_faces"]) == ("error", "detection failed: injected failure", 0)
        else:  # detected although it shared the failed pass, with the faces of a run without the failure
            assert row["status"] == "ok" and row["num_faces"] == 1 and row == reference


def test_local_engine_one_failing_image_is_its_own_error_row(poisoned, tmp_path, monkeypatch):
    from retinakit.detector import Detector

    assert run_batch(BatchConfig(str(poisoned), str(tmp_path / "clean"), workers=0)).errors == 0
    monkeypatch.setattr(Detector, "detect_bgr", Detector.detect_bgr)  # undone after the test
    batch_faults.install()
    batch_faults.calls.clear()
    report = run_batch(BatchConfig(str(poisoned), str(tmp_path / "out"), shard_size=5, workers=1))
    assert (report.images, report.errors) == (5, 1)
    assert batch_faults.calls == [5, 1, 1, 1, 1, 1]  # one pass of all five failed, then each alone
    assert_only_the_poisoned_image_failed(tmp_path / "out", tmp_path / "clean")


@pytest.mark.slow
def test_ray_engine_one_failing_image_is_its_own_error_row(ray_instance, poisoned, tmp_path):
    assert run_batch(BatchConfig(str(poisoned), str(tmp_path / "clean"), workers=0)).errors == 0
    report = run_batch(BatchConfig(str(poisoned), str(tmp_path / "out"), shard_size=5, engine="ray"))
    assert (report.images, report.errors) == (5, 1)
    assert_only_the_poisoned_image_failed(tmp_path / "out", tmp_path / "clean")


@pytest.mark.slow
def test_ray_watchdog_names_the_stage_that_stalled(ray_instance, poisoned, tmp_path):
    @ray_instance.remote(num_cpus=2)
    class Hog:  # another job holding every CPU of the cluster
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    ray_instance.get(hog.ready.remote())
    config = BatchConfig(str(poisoned), str(tmp_path / "out"), engine="ray", stall_timeout=3)
    start = time.monotonic()
    try:
        with pytest.raises(BatchError, match="no progress for [34] s \\(stage 'detector start-up': none of 1 actor"):
            run_batch(config)
    finally:
        ray_instance.kill(hog)
    assert time.monotonic() - start < 3 + 15  # the bound, plus a poll and the pool's teardown
    for _ in range(100):  # the hog's CPUs come back
        if ray_instance.available_resources().get("CPU", 0) >= 2:
            break
        time.sleep(0.1)
    rerun = BatchConfig(str(poisoned), str(tmp_path / "out"), engine="ray", stall_timeout=60)
    assert run_batch(rerun).images == 5  # with the CPUs free again the rerun finishes


@pytest.mark.parametrize(
    ("nodes", "actors", "actor_cpus", "decode_cpus", "expected"),
    [
        ([1], None, 1, 0.5, (1, 0.5, 0.5)),  # a 1-CPU cluster: actor and decoding share the CPU
        ([1, 1], None, 1, 0.5, (1, 1.0, 0.5)),  # one actor; its free twin slot holds decoding
        ([4], None, 1, 0.5, (3, 1.0, 0.5)),
        ([1.5, 1.5], None, 1, 0.5, (2, 1.0, 0.5)),  # each node's remainder holds decoding
        ([2, 0], None, 2, 0.5, (1, 1.5, 0.5)),  # a 0-CPU head does not count
        ([4, 4], None, 2, 3.0, (3, 2.0, 2.0)),  # decoding never asks for more than an actor
        ([1], None, 1, 0.0, (1, 1.0, 0.0)),
        ([8], 2, 1, 0.5, (2, 1.0, 0.5)),
    ],
)
def test_pool_plan_always_leaves_room_for_decoding(nodes, actors, actor_cpus, decode_cpus, expected):
    plan = plan_pool(nodes, actors, actor_cpus, decode_cpus)
    assert (plan.actors, plan.actor_cpus, plan.decode_cpus) == expected
    assert plan.threads == actor_cpus
    assert plan.actors * plan.actor_cpus + plan.decode_cpus <= sum(nodes)


@pytest.mark.parametrize(
    ("nodes", "actors", "actor_cpus", "message"),
    [
        ([], None, 1, "no node with CPUs"),
        ([0, 0], None, 1, "no node with CPUs"),
        ([2, 2], None, 4, "actor_cpus=4 but the largest Ray node has 2 CPUs"),
        ([1, 1], 2, 1, "2 actors of 1 CPU plus a decoding task of 0.5 CPU do not fit .* \\(at most 1\\)"),
    ],
)
def test_pool_plan_refuses_what_cannot_run(nodes, actors, actor_cpus, message):
    with pytest.raises(BatchError, match=message):
        plan_pool(nodes, actors, actor_cpus, 0.5)


@pytest.mark.slow
def test_ray_engine_gives_the_same_parquet_content_as_the_local_engine(ray_instance, tmp_path):
    root = need_shared("data", "widerface", "val-dev", "images")
    names = (root.parent / "image_list.txt").read_text().split()[::36][:30]
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    local = BatchConfig(str(tmp_path / "list.txt"), str(tmp_path / "local"), root=str(root), shard_size=8)
    ray = BatchConfig(
        str(tmp_path / "list.txt"), str(tmp_path / "ray"), root=str(root), shard_size=8, engine="ray", num_cpus=2
    )
    assert run_batch(local).images == 30
    report = run_batch(ray)
    assert (report.images, report.shards_written, report.errors) == (30, 4, 0)
    a, b = read_output(tmp_path / "local"), read_output(tmp_path / "ray")
    assert a.num_rows == 30 and sum(a.column("num_faces").to_pylist()) > 30
    assert a.equals(b)
    assert sorted(p.name for p in (tmp_path / "ray").glob("part-*")) == [shard_name(k) for k in range(4)]


def test_ray_engine_without_ray_names_the_extra(photos, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["batch", str(photos), str(tmp_path / "out"), "--engine", "ray", "--no-progress"])
    assert code == 1
    assert "pip install 'retinakit[ray]'" in capsys.readouterr().err


def test_empty_source_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), str(tmp_path / "out"), "--no-progress"]) == 1
    assert "no images found" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_cluster_loses_a_node_mid_job_and_a_one_cpu_cluster_finishes(tmp_path, astronaut_rgb):
    """Real ``ray start`` nodes on 127.0.0.1 in a loopback-only namespace (the script's own): a head and a
    worker of 1 CPU, the worker's raylet SIGKILLed after 2 of 10 shards; a 0-CPU head and two workers,
    the detector actor's node killed; then a fresh 1-CPU cluster runs the job."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("ray")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    bgr = astronaut_rgb[:, :, ::-1]
    (tmp_path / "in").mkdir()
    for i in range(40):
        size = 384 + 64 * (i % 3)
        cv2.imwrite(str(tmp_path / "in" / f"img{i:02d}.jpg"), cv2.resize(bgr, (size, size))[:, :: 1 - 2 * (i % 2)])
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "batch_ray_faults.py"
    command = [sys.executable, str(script), str(tmp_path / "in"), str(tmp_path / "work"), "--shard-size", "4"]
    command += ["--kill-after", "2", "--timeout", "90", "--stall-timeout", "30", "--fast-health-check"]
    run = subprocess.run([*command, "--json", str(tmp_path / "figures.json")], capture_output=True, timeout=400)
    if run.returncode == 77:
        pytest.skip(run.stderr.decode().strip())
    assert run.returncode == 0, run.stderr.decode()[-8000:]
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["reference"]["rows"] == 40
    kill = figures["kill"]
    assert kill["killed"] and kill["rows_at_kill"] < 40, kill  # the node was lost mid-job
    assert not kill["first_run"]["hung"] and kill["job_ended_s_after_kill"] < 60, kill  # it ended, in bounded time
    if kill["first_run"]["rc"] != 0:  # stopped with a clear error: one rerun finishes it
        assert any("rerun" in line for line in kill["first_run"]["said"]), kill
        assert kill["rerun"]["rc"] == 0, kill
    assert kill["rows"] == 40 and kill["equal_to_reference"], kill  # every input once, as the local engine
    lost = figures["kill_detector"]  # a 0-CPU head and two workers: the node running the detector actor is lost
    assert lost["detector_actors_on_killed_node"] == 1 and lost["rows_at_kill"] < 40, lost
    assert not lost["first_run"]["hung"] and lost["job_ended_s_after_kill"] < 60, lost
    assert lost["rows"] == 40 and lost["equal_to_reference"], lost
    one = figures["one_cpu"]
    assert (one["rc"], one["hung"], one["rows"], one["equal_to_reference"]) == (0, False, 40, True), one


def test_job_settings_leave_out_a_default_detail_so_older_jobs_resume(tmp_path):
    plain = BatchConfig(source=str(tmp_path), output=str(tmp_path / "out"))
    assert "detail" not in plain.job_settings()["detector"]  # as written before the field existed
    forced = BatchConfig(source=str(tmp_path), output=str(tmp_path / "out"), detector=DetectorConfig(detail=4))
    assert forced.job_settings()["detector"]["detail"] == 4
