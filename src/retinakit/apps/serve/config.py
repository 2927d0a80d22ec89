"""The service's settings: one frozen dataclass, one CLI flag per field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from retinakit.detector import DetectorConfig

#: Environment variable read for the API key when ``--api-key`` is not given.
API_KEY_ENV = "RETINAKIT_API_KEY"


def default_workers() -> int:
    """One inference thread per core, at most 4 (each gets ``cores // workers`` ONNX Runtime threads)."""
    from retinakit.inference.backends import physical_cores

    return min(4, physical_cores())


@dataclass(frozen=True)
class ServeConfig:
    """How ``retinakit serve`` runs and what it accepts.

    Detection: ``detector`` is the configuration of the one model the service loads (its
    ``score_threshold`` is the lowest threshold a request may ask for). Each request runs a detector
    of its own options (threshold, ``max_side``, TTA, orientations) that shares the loaded model, so
    it gets the faces the Python API gives for the same options. ``tta_scales`` and ``tta_flip`` are
    the test-time augmentation a request turns on with ``tta=true`` (the paper's setting by default).

    Engine: ``engine="pool"`` (the default: faster on a CPU, see the service page's load test) runs each
    request on its own in ``workers`` threads (one per core by default, each detector call then using
    ``cores // workers`` threads unless ``detector.threads`` is set); ``engine="batch"`` collects
    concurrent requests for up to ``batch_window_ms`` into one forward pass of at most ``max_batch``
    images, ``workers`` batches at a time. ``max_queue`` bounds the requests waiting for inference: one
    more is refused with 503 and ``Retry-After``. A request takes its place only once its body is read.
    ``request_timeout`` (seconds) bounds the wait for a result once admitted (504).

    Limits: ``max_upload_bytes`` (413), ``max_pixels`` (413, the decoded image, checked from the file
    header before decoding), ``max_request_side`` (largest ``max_side`` a request may ask for),
    ``max_pass_pixels`` (413: network-input pixels of a request's largest forward pass, whatever its
    ``max_side`` or ``tta``; also the budget of pixels in forward passes running at once, which bounds
    memory whatever the number of workers), ``max_crop_pixels`` (413: pixels of all aligned crops of one
    answer). Slow and idle clients: ``read_timeout`` (seconds for the whole body: 408),
    ``header_timeout`` (seconds for a request's headers, and for a connection that is not served; then
    it is closed), ``max_requests`` (requests being handled at once, 503 past it except ``/healthz``,
    ``/readyz`` and ``/metrics``; default ``4 * max_queue + 32``), ``max_connections`` (open connections;
    one more is answered 503 and closed). ``api_key``: when set, ``/v1/*`` needs ``Authorization: Bearer
    KEY`` or ``X-API-Key: KEY``. ``cors_origins``: allowed browser origins (none by default: CORS off).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    detector: DetectorConfig = field(default_factory=lambda: DetectorConfig(score_threshold=0.3))
    default_threshold: float = 0.5
    default_max_side: int | None = 1280
    max_request_side: int = 4096
    tta_scales: tuple[int, ...] = (500, 800, 1100, 1400, 1700)
    tta_flip: bool = True
    engine: Literal["batch", "pool"] = "pool"
    workers: int = field(default_factory=default_workers)
    max_batch: int = 8
    batch_window_ms: float = 5.0
    max_queue: int = 64
    request_timeout: float = 30.0
    retry_after: int = 1
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_pass_pixels: int = 9_000_000  # every TTA pass of the default scales fits: at most 2 x 2600 x 1700
    max_crop_pixels: int = 4_000_000
    read_timeout: float = 30.0
    header_timeout: float = 10.0
    max_requests: int | None = None
    max_connections: int = 1000
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checks = {
            "workers": self.workers >= 1,
            "max_batch": self.max_batch >= 1,
            "batch_window_ms": self.batch_window_ms >= 0,
            "max_queue": self.max_queue >= 1,
            "request_timeout": self.request_timeout > 0,
            "max_upload_bytes": self.max_upload_bytes >= 1,
            "max_pixels": self.max_pixels >= 1,
            "max_request_side": self.max_request_side >= 32,
            "max_pass_pixels": self.max_pass_pixels >= 1,
            "max_crop_pixels": self.max_crop_pixels >= 1,
            "read_timeout": self.read_timeout > 0,
            "header_timeout": self.header_timeout > 0,
            "max_requests": self.max_requests is None or self.max_requests >= 1,
            "max_connections": self.max_connections >= 1,
            "default_threshold": self.detector.score_threshold <= self.default_threshold <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid serve setting(s): {', '.join(bad)} ({self})")
        if self.engine not in ("batch", "pool"):
            raise ValueError(f"engine must be 'batch' or 'pool', got {self.engine!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key is empty (an unset variable?): give a key, or none for no authentication")

    @property
    def request_cap(self) -> int:
        """Requests handled at once (``max_requests``, default ``4 * max_queue + 32``)."""
        return self.max_requests if self.max_requests is not None else 4 * self.max_queue + 32
