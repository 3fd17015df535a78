"""Running the service under uvicorn with one ServiceSettings; the settings travel explicitly.

One worker: the app is built in this process from the settings object and served by
`uvicorn.run(app)`; nothing goes through the environment.

Several workers: uvicorn starts worker processes only from an import string, and each
worker builds its own app. This process is replaced (os.execve) by
`python -m uvicorn --factory pipeline.apps.service:app_factory --workers N` with an
environment built here: the current one plus the settings serialised once
(ServiceSettings.worker_env). Every worker's `app_factory` reads them back with
`ServiceSettings.from_env()`, so all workers run with the very settings the CLI
resolved. This process's own os.environ is never written.
"""
from __future__ import annotations

import os
import sys

from pipeline.apps.service.settings import ServiceSettings

__all__ = ["run_service", "worker_command"]

FACTORY = "pipeline.apps.service:app_factory"


def worker_command(settings: ServiceSettings) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the uvicorn process that runs `settings.workers` workers."""
    from pipeline.paths import checkout_root

    env = settings.worker_env(os.environ)
    root = checkout_root()
    if root is not None:  # run from a source checkout: the workers import this same package
        env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    argv = [sys.executable, "-m", "uvicorn", FACTORY, "--factory", "--host", settings.host, "--port", str(settings.port),
            "--workers", str(settings.workers), "--no-access-log", "--log-level", "info"]
    return argv, env


def run_service(settings: ServiceSettings) -> None:
    """Serve until stopped (several workers: this process becomes uvicorn's supervisor and does not return)."""
    if settings.workers == 1:
        import uvicorn

        from pipeline.apps.service.app import create_app
        from pipeline.apps.service.logs import configure_logging

        configure_logging()
        uvicorn.run(create_app(settings=settings), host=settings.host, port=settings.port, access_log=False,
                    log_level="info")
        return
    argv, env = worker_command(settings)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
