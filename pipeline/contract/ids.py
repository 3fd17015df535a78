"""Help for a mistyped label id: the closest valid ids and the whole list, in one sentence.

Every place that takes label ids (label files, retrain input, handlers' corrections from the CLI,
the API or the page) words an unknown id with `unknown_ids_message`, so a handler who types
`angry` reads "did you mean 'anger'?" wherever they typed it.
"""
from __future__ import annotations

import difflib
from typing import Mapping, Sequence

__all__ = ["closest_ids", "unknown_ids_message"]


def closest_ids(value: str, valid: Sequence[str], names: Mapping[str, str] | None = None, n: int = 3) -> list[str]:
    """Valid ids a user probably meant by `value`: a Chinese name typed for its id first, then
    ids spelled alike (difflib, case ignored) or containing it, then ids whose Chinese names are
    spelled alike."""
    value = value.strip()
    found: list[str] = []
    if names:
        found += [i for i in valid if names.get(i) == value]
    found += _nearest(value.lower(), list(valid), 0.6)
    if not found and len(value) >= 4:  # a part of the id: 'claims' for 'contract_claims'
        found += [i for i in valid if value.lower() in i]
    if names and not found:
        by_name = {names[i]: i for i in valid if names.get(i)}
        found += [by_name[m] for m in _nearest(value, list(by_name), 0.5)]
    return list(dict.fromkeys(found))[:n]


def _nearest(value: str, choices: list[str], cutoff: float) -> list[str]:
    """The best difflib matches: the closest one and any within 0.05 of it, best first."""
    scored = []
    for choice in choices:
        m = difflib.SequenceMatcher(None, value, choice)
        if m.real_quick_ratio() >= cutoff and m.quick_ratio() >= cutoff and m.ratio() >= cutoff:
            scored.append((m.ratio(), choice))
    scored.sort(key=lambda x: -x[0])
    return [c for r, c in scored if r >= scored[0][0] - 0.05]


def unknown_ids_message(unknown: Sequence[str], valid: Sequence[str], names: Mapping[str, str] | None = None) -> str:
    """'unknown id 'angry'; did you mean 'anger'? valid ids: ...' for one or more unknown ids."""
    hints = []
    for value in unknown:
        near = closest_ids(value, valid, names)
        hints.append(f"did you mean {' or '.join(repr(i) for i in near)}?" if near else "")
    valid_list = f"(valid ids: {', '.join(valid)})"
    if len(unknown) == 1:
        return f"unknown id {unknown[0]!r}" + (f"; {hints[0]}" if hints[0] else "") + f" {valid_list}"
    listed = ", ".join(f"{v!r}" + (f" ({h})" if h else "") for v, h in zip(unknown, hints))
    return f"unknown ids {listed} {valid_list}"
