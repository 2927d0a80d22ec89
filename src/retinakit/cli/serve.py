"""``retinakit serve``: flags -> :class:`~retinakit.apps.serve.ServeConfig` -> :func:`retinakit.apps.serve.serve`."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from typing import Any

from retinakit.apps.serve.config import API_KEY_ENV, ServeConfig
from retinakit.cli.common import EXIT_OK, add_detector_flags, alias, default, detector_options
from retinakit.detector import DetectorConfig


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="face detection over HTTP with a web page (needs the 'serve' extra)",
        description="Serve POST /v1/detect, /v1/align, /healthz, /readyz, /metrics, the page at / and the docs at "
        "/docs. --threshold and --max-side are the defaults of requests; the model runs at --min-threshold.",
    )
    d = ServeConfig()
    p.add_argument(
        "--host", default=d.host, help=f"address to listen on; 127.0.0.1 is this machine only {default(d.host)}"
    )
    p.add_argument("--port", type=int, default=d.port, help=f"port {default(d.port)}")
    p.add_argument("--api-key", help=f"require this key (default: ${API_KEY_ENV} if set, else no authentication)")
    p.add_argument(
        "--min-threshold",
        type=float,
        default=d.detector.score_threshold,
        help=f"lowest threshold a request may ask for {default(d.detector.score_threshold)}",
    )
    p.add_argument(
        "--engine",
        choices=("batch", "pool"),
        default=d.engine,
        help=f"a worker pool or micro-batching {default(d.engine)}",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help=f"requests detected at once, in worker threads (--threads: CPU threads of each) {default(d.workers)}",
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=d.batch_window_ms,
        help=f"micro-batching: how long a batch waits for more requests, ms {default(d.batch_window_ms)}",
    )
    _add_limit_flags(p, d)
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help=f"server log {default('info')}",
    )
    add_detector_flags(p, d.default_threshold, DetectorConfig(max_side=d.default_max_side))
    alias(p, "--max-batch", dest="batch_size", type=int)  # micro-batching: --batch-size images per pass
    p.set_defaults(func=run)


def _add_limit_flags(p: argparse.ArgumentParser, d: ServeConfig) -> None:
    """What the service accepts: queue, timeout, upload and pixel limits, browser origins."""
    p.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help=f"requests admitted at once; one more gets 503 {default(d.max_queue)}",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=d.request_timeout,
        help=f"request timeout in seconds (504) {default(d.request_timeout)}",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=d.max_upload_bytes / 2**20,
        help=f"upload size limit in MiB (413) {default(d.max_upload_bytes / 2**20)}",
    )
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=d.max_pixels / 1e6,
        help=f"pixel limit in millions (413) {default(d.max_pixels / 1e6)}",
    )
    p.add_argument(
        "--max-pass-megapixels",
        type=float,
        default=d.max_pass_pixels / 1e6,
        help="network-input pixels of a request's largest forward pass, and of all passes running at once (413) "
        f"{default(d.max_pass_pixels / 1e6)}",
    )
    p.add_argument(
        "--max-crop-megapixels",
        type=float,
        default=d.max_crop_pixels / 1e6,
        help=f"pixels of one answer's crops {default(d.max_crop_pixels / 1e6)}",
    )
    _add_connection_flags(p, d)


def _add_connection_flags(p: argparse.ArgumentParser, d: ServeConfig) -> None:
    """Deadlines and caps on what clients may hold open: body and header timeouts, requests, connections."""
    p.add_argument(
        "--read-timeout",
        type=float,
        default=d.read_timeout,
        help=f"seconds for a request body (408) {default(d.read_timeout)}",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=d.header_timeout,
        help=f"seconds for request headers {default(d.header_timeout)}",
    )
    p.add_argument("--max-requests", type=int, help="requests handled at once; then 503 (default: 4 x the queue + 32)")
    p.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        help=f"open connections; then 503 {default(d.max_connections)}",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="allow this browser origin, repeatable (default: none, CORS off)",
    )


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The ServeConfig of the flags; the detector flags build the detector's config."""
    options = detector_options(args)
    threshold = options.pop("score_threshold", ServeConfig.default_threshold)
    max_side = options.pop("max_side", ServeConfig.default_max_side)
    scales = options.pop("scales", None)
    flip = options.pop("flip", None)
    detector = DetectorConfig(**{**options, "score_threshold": min(args.min_threshold, threshold)})
    config = ServeConfig(
        host=args.host,
        port=args.port,
        detector=detector,
        default_threshold=threshold,
        default_max_side=max_side or None,
        engine=args.engine,
        workers=args.workers,
        max_batch=args.batch_size or ServeConfig.max_batch,
        batch_window_ms=args.batch_window_ms,
        max_queue=args.max_queue,
        request_timeout=args.timeout,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
        max_pass_pixels=int(args.max_pass_megapixels * 1e6),
        max_crop_pixels=int(args.max_crop_megapixels * 1e6),
        read_timeout=args.read_timeout,
        header_timeout=args.header_timeout,
        max_requests=args.max_requests,
        max_connections=args.max_connections,
        api_key=api_key(args.api_key),
        cors_origins=tuple(args.cors_origin),
    )
    if scales:
        config = replace(config, tta_scales=tuple(scales), tta_flip=bool(flip))
    return config


def api_key(flag: str | None) -> str | None:
    """``--api-key``, else the environment variable, else None; an empty key (an unset variable) is refused."""
    if flag is not None:
        if not flag.strip():
            raise ValueError("--api-key is empty (an unset variable?): give a key, or leave the flag out")
        return flag
    value = os.environ.get(API_KEY_ENV)
    if value is not None and not value.strip():
        raise ValueError(f"${API_KEY_ENV} is set but empty: give a key, or unset it for no authentication")
    return value


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; a bad setting raises ValueError (exit 2), a missing extra ImportError (exit 1)."""
    from retinakit.apps.serve import serve

    serve(config_from_args(args), log_level=args.log_level)
    return EXIT_OK
