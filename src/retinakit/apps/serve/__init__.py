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

__all__ = ["API_KEY_ENV", "ServeConfig", "create_app", "serve"]


def create_app(config: ServeConfig | None = None, detector: Detector | None = None) -> FastAPI:
    """The ASGI application (see :func:`retinakit.apps.serve.app.create_app`)."""
    try:
        from retinakit.apps.serve.app import create_app as _create_app
    except ImportError as exc:
        raise ImportError(f"{EXTRA_MESSAGE} ({exc})") from exc
    return _create_app(config, detector)


def serve(config: ServeConfig, log_level: str = "info", **uvicorn_options: Any) -> None:
    """Run the service with uvicorn on ``config.host:config.port`` until interrupted."""
    app = create_app(config)
    import uvicorn

    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": log_level,
        "timeout_keep_alive": 5,
        # a backstop on connections; the queue limit (503 with Retry-After) acts first
        "limit_concurrency": 4 * config.max_queue + 32,
        **uvicorn_options,
    }
    uvicorn.run(app, **options)
