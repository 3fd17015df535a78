"""The model in use: the registry's promoted version, swapped whole on reload."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pipeline.apps.service.logs import log, log_line

__all__ = ["ModelHolder"]


class ModelHolder:
    """The (model, manifest) pair in use; replaced whole, never mutated.

    A request takes the pair once at its start (`get`), so a reload never changes the model under it.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.current: tuple[Any, dict] | None = None
        self.last_error: str | None = None

    def _load(self) -> tuple[Any, dict]:
        from pipeline.model.registry import load_model, promoted_dir

        return load_model(promoted_dir(self.root), predict_only=True)

    def load_initial(self) -> None:
        """Load the promoted model; without one the service still starts (readyz says why)."""
        from pipeline.model.registry import ModelError

        try:
            pair = self._load()
        except (ModelError, OSError) as exc:
            self.last_error = str(exc)
            log.warning(log_line({"event": "model_not_loaded", "error": str(exc)}))
            return
        with self.lock:
            self.current = pair

    def get(self) -> tuple[Any, dict] | None:
        return self.current  # one attribute read: atomic

    def reload(self) -> tuple[str | None, str]:
        """Load the promoted model and swap it in; on failure the old one stays."""
        with self.lock:  # one reload at a time; readers never wait on this lock
            old = self.current[1]["version"] if self.current else None
            pair = self._load()
            self.current = pair
            self.last_error = None
            return old, pair[1]["version"]

    @property
    def version(self) -> str | None:
        cur = self.current
        return cur[1]["version"] if cur else None
