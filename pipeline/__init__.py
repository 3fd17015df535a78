"""tousu's library: from a complaint note to a triage and a handling plan.

The public API, loaded lazily so that `tousu --help` does not pay for
scikit-learn's import:

    from pipeline import Triager, load_model, normalise, extract_facts, plan, tag_file
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "Triager": "pipeline.model.triager",
    "load_model": "pipeline.model.registry",
    "normalise": "pipeline.text.normalisation",
    "extract_facts": "pipeline.handling.facts",
    "plan": "pipeline.handling.playbook",
    "render_card": "pipeline.handling.render",
    "plan_to_json": "pipeline.handling.render",
    "tag_file": "pipeline.apps.batch",
    "tag_frame": "pipeline.apps.batch",
    "read_labelled": "pipeline.io",
    "taxonomy": "pipeline.contract.taxonomy",
    "Triage": "pipeline.contract.records",
    "Facts": "pipeline.contract.records",
    "HandlingPlan": "pipeline.contract.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
