import json

import cv2
import numpy as np
import pytest

from retinakit.cli import main


@pytest.fixture()
def image_dir(tmp_path, astronaut_rgb):
    d = tmp_path / "imgs"
    d.mkdir()
    cv2.imwrite(str(d / "a_astronaut.jpg"), astronaut_rgb[:, :, ::-1])
    (d / "b_broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cv2.imwrite(str(d / "c_blank.png"), np.full((64, 80, 3), 200, np.uint8))
    return d


def test_detect_reports_bad_file_and_keeps_the_others(image_dir, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "detect",
            str(image_dir),
            "-o",
            str(out),
            "--save-images",
            str(tmp_path / "ann"),
            "--wider",
            str(tmp_path / "wider"),
            "--no-progress",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "b_broken.jpg" in err and "not a decodable image" in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"].rsplit("/", 1)[-1] for r in records] == ["a_astronaut.jpg", "b_broken.jpg", "c_blank.png"]
    astro, broken, blank = records
    assert (astro["width"], astro["height"]) == (512, 512)
    assert len(astro["faces"]) == 1 and astro["faces"][0]["score"] > 0.9
    assert len(astro["faces"][0]["box"]) == 4 and len(astro["faces"][0]["landmarks"]) == 5
    assert "error" in broken and blank["faces"] == []
    assert (tmp_path / "ann" / "a_astronaut.jpg").is_file()  # inputs from one folder land directly in DIR
    lines = (tmp_path / "wider" / "imgs" / "a_astronaut.txt").read_text().splitlines()
    assert lines[0] == "a_astronaut" and lines[1] == "1"
    x, _y, w, h, s = (float(v) for v in lines[2].split())
    assert w > 50 and h > 50 and s > 0.9 and x != int(x)  # float coordinates, not truncated


def test_detect_all_good_exits_zero_and_threshold_flag_works(image_dir, capsys):
    (image_dir / "b_broken.jpg").unlink()
    astronaut = str(image_dir / "a_astronaut.jpg")
    counts = []
    for threshold in ("0.02", "0.6"):
        assert main(["detect", astronaut, "--threshold", threshold, "--no-progress"]) == 0
        record = json.loads(capsys.readouterr().out.splitlines()[0])
        assert all(face["score"] >= float(threshold) for face in record["faces"])
        counts.append(len(record["faces"]))
    assert counts[0] > counts[1] == 1


def test_bad_option_values_give_a_clear_error(image_dir, capsys):
    assert main(["detect", str(image_dir), "--threshold", "1.5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "retinakit detect: error: --threshold: must be in [0, 1), got 1.5" in err  # the flag, not the field
    assert "score_threshold" not in err


def test_detail_flag(image_dir, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["detect", str(image_dir), "--detail", "3", "--no-progress"])
    assert "--detail: expected auto, 1, 4 or 8, got '3'" in capsys.readouterr().err
    import retinakit.detector as module

    seen, real = [], module.Detector
    monkeypatch.setattr(module, "Detector", lambda **options: seen.append(options) or real(**options))
    main(["detect", str(image_dir / "a_astronaut.jpg"), "--detail", "8", "--no-progress"])
    assert seen and seen[0]["detail"] == 8


def test_missing_weights_file_is_reported(image_dir, capsys):
    assert main(["detect", str(image_dir), "--weights", "nowhere.onnx", "--no-progress"]) == 1
    assert "nowhere.onnx" in capsys.readouterr().err


def test_base_install_cli_works_without_torch(tmp_path, astronaut_rgb):
    """`pip install retinakit` has no PyTorch: building the CLI (every sub-command's parser) and
    detecting must not import it (the README's first set-up command)."""
    import subprocess
    import sys

    import cv2

    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    code = (
        "import sys; sys.modules['torch'] = None\n"  # import torch now raises ImportError
        "from retinakit.cli import main\n"
        f"sys.exit(main(['detect', {str(photo)!r}, '--no-progress']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"faces": [{' in done.stdout
