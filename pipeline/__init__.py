"""tousu's library: from a complaint note to a triage and a handling plan.

The public API, loaded lazily so that `tousu --help` does not pay for
scikit-learn's import:

    from pipeline import Triager, load_model, normalise, extract_facts, plan, tag_file
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "Triager": "pipeline.model",
    "load_model": "pipeline.registry",
    "normalise": "pipeline.text",
    "extract_facts": "pipeline.facts",
    "plan": "pipeline.rules",
    "render_card": "pipeline.render",
    "plan_to_json": "pipeline.render",
    "tag_file": "pipeline.batch",
    "tag_frame": "pipeline.batch",
    "read_labelled": "pipeline.io",
    "taxonomy": "pipeline.taxonomy",
    "Triage": "pipeline.records",
    "Facts": "pipeline.records",
    "HandlingPlan": "pipeline.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
