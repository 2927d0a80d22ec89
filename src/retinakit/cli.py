"""Command line: ``retinakit detect | align | evaluate | evaluate-landmarks | train | export``.

A thin layer: each sub-command turns its flags into config fields and calls one library function.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _progress(enabled: bool, unit: str) -> Any:
    def wrap(items: Iterable[Any], total: int) -> Iterator[Any]:
        if not enabled or total < 2:
            return iter(items)
        from tqdm import tqdm

        return iter(tqdm(items, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None))

    return wrap


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_detector_flags(p: argparse.ArgumentParser, default_threshold: float | None) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--weights", help="ONNX file or PyTorch checkpoint (default: the built-in MobileNet-0.25)")
    g.add_argument("--backend", choices=("onnx", "openvino", "torch"), help="runtime (default: onnx)")
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        help="fp32 (default); bf16 with --backend openvino (faster where the CPU has bf16)",
    )
    g.add_argument("--model", help="model preset for weights that carry no config (e.g. mobilenet0.25)")
    g.add_argument("--device", help="torch device, e.g. cpu or cuda (torch backend)")
    g.add_argument("--threads", type=int, help="CPU threads for inference")
    g.add_argument(
        "--threshold",
        dest="score_threshold",
        type=float,
        default=default_threshold,
        help="minimum face score" + (f" (default {default_threshold})" if default_threshold else ""),
    )
    g.add_argument("--nms-threshold", type=float, help="NMS IoU threshold (default 0.4)")
    g.add_argument("--top-k", dest="pre_nms_top_k", type=int, help="best anchors entering NMS (default 5000)")
    g.add_argument("--keep-k", dest="max_detections", type=int, help="faces kept per image (default 750)")
    g.add_argument("--max-size", dest="max_side", type=int, help="shrink images whose long side exceeds this")
    g.add_argument("--short-side", type=int, help="resize so the short side has this many pixels")
    g.add_argument("--batch-size", type=int, help="images per forward pass (default 8)")
    t = p.add_argument_group("test-time augmentation (paper: --scales 500,800,1100,1400,1700 --flip)")
    t.add_argument("--scales", type=_int_list, help="comma-separated short-side sizes, one pass each")
    t.add_argument("--flip", action="store_true", default=None, help="add a horizontally flipped pass per scale")
    t.add_argument("--tta-max-side", type=int, help="cap on the long side of any pass (default 2600)")
    t.add_argument("--merge", choices=("vote", "nms"), help="merge passes by box voting (default) or NMS")
    t.add_argument("--vote-iou", type=float, help="IoU that joins a box voting cluster (default 0.4)")
    t.add_argument("--vote-score", choices=("max", "mean", "consensus"), help="cluster score rule")


def _detector_options(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import fields

    from retinakit.detector import DetectorConfig

    # flags carry the field names of DetectorConfig (argparse dest), so every field is passed on
    names = [f.name for f in fields(DetectorConfig)]
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _open_output(name: str | None) -> Any:
    if name in (None, "-"):
        return sys.stdout
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    return open(name, "w")  # closed by the caller


def _write_records(records: Iterable[dict[str, Any]], out: Any, command: str, label: str) -> int:
    """Write JSON lines, report records with an error on stderr; returns how many failed."""
    failed = 0
    for record in records:
        if "error" in record:
            failed += 1
            print(f"retinakit {command}: {record.get(label)}: {record['error']}", file=sys.stderr)
        out.write(json.dumps(record) + "\n")
        out.flush()
    return failed


def cmd_detect(args: argparse.Namespace) -> int:
    from retinakit.batch import detect_paths
    from retinakit.detector import Detector
    from retinakit.preprocess import list_images
    from retinakit.video import VideoError, detect_video, is_video_source

    videos = [p for p in args.paths if is_video_source(p)]
    paths = list_images([p for p in args.paths if not is_video_source(p)])
    if not paths and not videos:
        print("retinakit detect: no images found", file=sys.stderr)
        return EXIT_SOME_FAILED
    detector = Detector(**_detector_options(args))
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out = _open_output(args.output)
    failed = 0
    try:
        if paths:
            records = detect_paths(
                paths,
                detector,
                save_images=args.save_images,
                wider=args.wider,
                root=root,
                progress=_progress(not args.no_progress, "img"),
            )
            failed += _write_records(records, out, "detect", "path")
        for video in videos:
            annotated = None
            if args.save_images:
                annotated = Path(args.save_images) / f"{Path(video).stem or 'camera' + video}.mp4"
            try:
                frames = detect_video(
                    video,
                    detector,
                    every=args.every,
                    annotated=annotated,
                    progress=_progress(not args.no_progress, "frame"),
                )
                _write_records(frames, out, "detect", "source")
            except VideoError as exc:
                failed += 1
                print(f"retinakit detect: {exc}", file=sys.stderr)
                out.write(json.dumps({"path": video, "error": str(exc)}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if failed:
        print(f"retinakit detect: {failed} of {len(paths) + len(videos)} inputs failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_align(args: argparse.Namespace) -> int:
    from retinakit.batch import align_paths
    from retinakit.detector import Detector
    from retinakit.preprocess import list_images

    paths = list_images(args.paths)
    if not paths:
        print("retinakit align: no images found", file=sys.stderr)
        return EXIT_SOME_FAILED
    options = {"score_threshold": 0.9, **_detector_options(args)}
    detector = Detector(**options)
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "index.jsonl", "w") as index:
        records = align_paths(
            paths, detector, out_dir, size=args.size, root=root, progress=_progress(not args.no_progress, "img")
        )
        failed = _write_records(records, index, "align", "source")
    print(f"crops and index.jsonl in {out_dir}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate
    from retinakit.evaluation.wider import SETTINGS

    report = evaluate(
        ground_truth=args.ground_truth,
        images=args.images,
        subset=args.subset,
        protocol=args.protocol,
        predictions=args.predictions,
        output=args.output,
        detector_options=_detector_options(args),
        progress=_progress(not args.no_progress, "img"),
    )
    r = report.result
    print(
        f"WIDER FACE, official protocol, {r.num_images} images"
        + (f", protocol {args.protocol}" if args.images else f", predictions {args.predictions}")
    )
    print(f"{'':<22}" + "".join(f"{s:>9}" for s in SETTINGS))
    print(f"{'AP @ IoU 0.5 (%)':<22}" + "".join(f"{100 * r.ap[s]:>9.2f}" for s in SETTINGS))
    print(f"{'AP @ IoU 0.5:0.95 (%)':<22}" + "".join(f"{100 * r.ap_50_95[s]:>9.2f}" for s in SETTINGS))
    if report.seconds_per_image is not None:
        print(f"{1000 * report.seconds_per_image:.1f} ms per image (decode + detect + write)")
    for name, path in report.files.items():
        print(f"{name}: {path}")
    for key, reason in report.failed_images.items():
        print(f"retinakit evaluate: {key}: {reason}", file=sys.stderr)
    return EXIT_SOME_FAILED if report.failed_images else EXIT_OK


def cmd_evaluate_landmarks(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate_landmarks

    result = evaluate_landmarks(
        args.labels,
        args.images,
        detector_options=_detector_options(args),
        progress=_progress(not args.no_progress, "img"),
    )
    print(f"faces with landmarks: {result.num_faces} (matched by a detection: {result.num_matched})")
    print(f"mean NME (matched faces, / sqrt(w*h)): {100 * result.mean_nme:.2f}%")
    print(f"failure rate at NME 10% (unmatched count as failures): {100 * result.failure_rate_10:.2f}%")
    if args.output:
        Path(args.output).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"json: {args.output}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from retinakit.train import TrainConfig, train

    init = args.init or ["none"]
    if init[0] in ("backbone", "checkpoint"):
        if len(init) != 2:
            print(f"retinakit train: error: --init {init[0]} needs a PATH", file=sys.stderr)
            return EXIT_USAGE
        init_value = f"{init[0]}:{init[1]}"
    elif init[0] in ("builtin", "none") and len(init) == 1:
        init_value = init[0]
    else:
        print("retinakit train: error: --init takes builtin, none, backbone PATH or checkpoint PATH", file=sys.stderr)
        return EXIT_USAGE
    names = {f.name for f in fields(TrainConfig)}
    options = {k: v for k, v in vars(args).items() if k in names and v is not None}
    options["init"] = init_value
    final = train(TrainConfig(**options), progress=_progress(not args.no_progress, "batch"))
    print(f"weights: {final}  (use: retinakit detect --backend torch --weights {final})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from retinakit.checkpoints import load_model
    from retinakit.config import get_preset
    from retinakit.export import export_onnx

    model = load_model(args.weights, get_preset(args.model) if args.model else None)
    export_onnx(model, args.output, opset=args.opset)
    print(f"wrote {args.output}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retinakit", description="RetinaFace face detection.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="detect faces in images, videos or a camera")
    p.add_argument(
        "paths",
        nargs="+",
        help="image files, directories (searched recursively), glob patterns, video files or a camera index",
    )
    p.add_argument("-o", "--output", help="JSON-lines output file (default: standard output)")
    p.add_argument("--save-images", metavar="DIR", help="write annotated copies here (videos as DIR/<name>.mp4)")
    p.add_argument("--wider", metavar="DIR", help="write WIDER-format txt files here (parent/name.txt)")
    p.add_argument("--every", type=int, default=1, help="videos: process every N-th frame (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_detector_flags(p, None)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("align", help="write aligned face crops (ArcFace five-point template)")
    p.add_argument("paths", nargs="+", help="image files, directories or glob patterns")
    p.add_argument("--out", required=True, help="directory for the crops and index.jsonl")
    p.add_argument("--size", type=int, default=112, help="crop size in pixels (template scaled by size/112)")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, 0.9)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("evaluate", help="WIDER FACE evaluation with the official protocol")
    p.add_argument("--ground-truth", required=True, help="directory of the official wider_*_val.mat files")
    p.add_argument("--images", help="WIDER image root (event/name.jpg); runs the detector")
    p.add_argument("--subset", help="image list (event/name.jpg per line) to evaluate on")
    from retinakit.evaluation.protocols import PROTOCOLS

    p.add_argument("--protocol", default="original", choices=sorted(PROTOCOLS), help="test protocol (default original)")
    p.add_argument("--predictions", help="submission directory: evaluated as is without --images, else written to")
    p.add_argument("--output", default="wider_eval", help="directory for results JSON, curves PNG, predictions")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-landmarks", help="landmark NME on faces with five-point ground truth")
    p.add_argument("--labels", required=True, help="RetinaFace label.txt with landmarks")
    p.add_argument("--images", required=True, help="image root the label paths are relative to")
    p.add_argument("--output", help="write the figures and CED curve as JSON here")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, 0.02)
    p.set_defaults(func=cmd_evaluate_landmarks)

    p = sub.add_parser("train", help="train or fine-tune on label.txt / WIDER annotations (needs torch)")
    p.add_argument("--preset", dest="model", default="mobilenet0.25", help="model preset (default mobilenet0.25)")
    p.add_argument(
        "--data", dest="labels", required=True, help="label.txt (RetinaFace format) or wider_face_*_bbx_gt.txt"
    )
    p.add_argument("--images", required=True, help="image root the annotation paths are relative to")
    p.add_argument("--out", help="output directory (default runs/train)")
    p.add_argument("--init", nargs="+", metavar="WHAT", help="builtin | none | backbone PATH | checkpoint PATH")
    p.add_argument("--loss", choices=("paper", "biubug6"), help="loss preset (default paper)")
    p.add_argument("--epochs", type=int, help="epochs (default 80; warm-up and milestones scale with it)")
    p.add_argument("--batch-size", type=int, help="images per step (default 32)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-2)")
    p.add_argument("--warmup-lr", type=float, help="learning rate at the start of warm-up (default 1e-3)")
    p.add_argument("--warmup-epochs", type=float, help="warm-up length (default 5/80 of the epochs)")
    p.add_argument(
        "--milestones", type=_int_list, help="epochs where lr drops by --gamma (default 55,68 of 80, scaled)"
    )
    p.add_argument("--gamma", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--image-size", type=int, help="training crop size (default 640)")
    p.add_argument("--workers", type=int, help="data-loading worker processes (default 2)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="no mixed precision on CUDA")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", default=None, help="continue from OUT/last.pt")
    p.add_argument("--log-every", type=int)
    p.add_argument("--max-steps-per-epoch", type=int, help="cut epochs short (quick experiments)")
    p.add_argument("--val-images", help="WIDER val image root for periodic evaluation")
    p.add_argument("--val-ground-truth", help="directory of the official .mat files")
    p.add_argument("--val-list", help="image list to evaluate on (e.g. val-dev image_list.txt)")
    p.add_argument("--val-max-side", type=int, help="resize for periodic evaluation (default 1024)")
    p.add_argument("--eval-every", type=int, help="evaluate every N epochs (default 0: never)")
    p.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep BatchNorm statistics fixed (default: on for --init builtin, whose BN is folded)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a PyTorch checkpoint to ONNX")
    p.add_argument("weights", help="checkpoint (.safetensors, .pth)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--model", help="model preset, for checkpoints without a config")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(func=cmd_export)
    return parser


def _version() -> str:
    from retinakit import __version__

    return f"retinakit {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ValueError, KeyError, FileNotFoundError, ImportError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"retinakit {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
