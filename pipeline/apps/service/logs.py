"""The service's log: one JSON line per event, every string in it masked first."""
from __future__ import annotations

import json
import logging
from typing import Any

from pipeline.text.pii import mask_pii

log = logging.getLogger("tousu.service")


def masked(value: Any) -> Any:
    """`value` with mask_pii applied to every string inside it (dict keys stay as they are)."""
    if isinstance(value, str):
        # a lone surrogate (which a caller can send) would break the log stream: written as \udXXX
        return mask_pii(value.encode("utf-8", "backslashreplace").decode("utf-8"))
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return value


def log_line(record: dict[str, Any]) -> str:
    return json.dumps(masked(record), ensure_ascii=False, default=str)


def configure_logging() -> None:
    """Plain message lines on stderr (the message is already JSON); once per process."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
