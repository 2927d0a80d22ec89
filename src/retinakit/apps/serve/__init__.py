"""``retinakit serve``: face detection over HTTP (FastAPI + uvicorn, the ``serve`` extra) with a web page.

>>> from retinakit.apps.serve import ServeConfig, serve
>>> serve(ServeConfig(port=8000))          # blocks; or create_app(config) for any ASGI server

FastAPI and uvicorn are imported only when the service is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retinakit.apps.serve.config import API_KEY_ENV, ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from retinakit.detector import Detector

EXTRA_MESSAGE = "retinakit serve needs the 'serve' extra: pip install 'retinakit[serve]'"

__all__ = ["API_KEY_ENV", "ServeConfig", "create_app", "serve", "server_options"]


def create_app(config: ServeConfig | None = None, detector: Detector | None = None) -> FastAPI:
    """The ASGI application (see :func:`retinakit.apps.serve.app.create_app`)."""
    try:
        from retinakit.apps.serve.app import create_app as _create_app
    except ImportError as exc:
        raise ImportError(f"{EXTRA_MESSAGE} ({exc})") from exc
    return _create_app(config, detector)


def serve(config: ServeConfig, log_level: str = "info", **uvicorn_options: Any) -> None:
    """Run the service with uvicorn on ``config.host:config.port`` until interrupted.

    uvicorn runs the h11 protocol of :func:`~retinakit.apps.serve.guard.guarded_protocol` (header deadline,
    connection cap, JSON protocol errors); its own plain-text concurrency limit is not used
    (:class:`~retinakit.apps.serve.guard.RequestCap` answers JSON and keeps ``/healthz`` open)."""
    app = create_app(config)
    import uvicorn

    uvicorn.run(app, **{**server_options(config, log_level), **uvicorn_options})


def server_options(config: ServeConfig, log_level: str = "info") -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run``/``uvicorn.Config`` that :func:`serve` uses for ``config``."""
    from retinakit.apps.serve.guard import guarded_protocol

    try:
        http = guarded_protocol(config.header_timeout, _connection_cap(config.max_connections))
    except ImportError as exc:
        raise ImportError(f"{EXTRA_MESSAGE} ({exc})") from exc
    return {"host": config.host, "port": config.port, "log_level": log_level, "timeout_keep_alive": 5, "http": http}


def _connection_cap(wanted: int) -> int:
    """``wanted``, below the process's open-file limit (leaving room for the model and log files)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # pragma: no cover - not on POSIX
        return wanted
    return wanted if soft == resource.RLIM_INFINITY else min(wanted, max(16, soft - 64))
