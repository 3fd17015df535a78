"""Which playbook rules can fire for a note, found without testing each one.

Most rules need some label, cue or fact that most notes lack (a mindset, a flag, a
cue, a fact kind, a cause), so most of a plan's rule tests used to end in a miss.
Each rule's `when` names what it cannot fire without: its *gate*, a set of keys of
which a note must hold at least one. The gates are indexed once per playbook (`Playbook.index`); per
note the engine tests only the rules whose gate meets the note's keys, plus the rules
without a gate, in firing order. The fired rules, their traces and so the plans are
the same: a rule left out is one whose test would have returned None.

A gate is a necessary condition read off the condition tree, mirroring what each
atom's test checks first (playbook.py's compiler):

    cause / cause_group / flag / mindset (no probability bound) / cue / fact / channel / risk_level
        one key per id (or level) the atom accepts
    all   the smallest gate among its parts (any one part's gate is necessary)
    any   the union of its branches' gates (none when a branch has none)
    not, always, uncertain, triage, top_proba, enquiry, probability-bounded labels: none
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from pipeline.contract.taxonomy import RISK_LEVELS

__all__ = ["Key", "gate_of", "note_keys", "RuleIndex"]

#: (kind, value): ("mindset", "remedy"), ("fact", "age"), ("level", "high") ...
Key = tuple[str, str]


def _ids(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def gate_of(cond: Any) -> frozenset[Key] | None:
    """Keys of which a note must hold one for `cond` to hold; None when no such set can be named."""
    if not isinstance(cond, dict) or len(cond) == 0:
        return None
    if "all" in cond:
        gates = [g for g in (gate_of(c) for c in cond["all"]) if g is not None]
        return min(gates, key=len) if gates else None
    if "any" in cond:
        gates = [gate_of(c) for c in cond["any"]]
        return None if not gates or any(g is None for g in gates) else frozenset().union(*gates)
    for kind in ("cause", "cause_group", "cue", "channel"):
        if kind in cond:
            return frozenset((kind, str(i)) for i in _ids(cond[kind]))
    for kind in ("flag", "mindset"):
        if kind in cond:  # with a probability bound the label need not be predicted
            bounded = cond.get("min_proba") is not None or cond.get("max_proba") is not None
            return None if bounded else frozenset((kind, str(i)) for i in _ids(cond[kind]))
    if "fact" in cond:
        return frozenset({("fact", str(cond["fact"]))})
    if "risk_level" in cond:
        lo, hi = cond["risk_level"], cond.get("at_most", "high")
        if lo not in RISK_LEVELS or hi not in RISK_LEVELS:
            return None
        return frozenset(("level", lvl) for lvl in RISK_LEVELS[RISK_LEVELS.index(lo):RISK_LEVELS.index(hi) + 1])
    return None


def note_keys(ctx) -> list[Key]:
    """The keys one note holds (a playbook.Context): its causes, groups, flags, mindsets, cues, fact kinds,
    channel and level, read the way the atoms read them."""
    keys: list[Key] = [("cause", c) for c in ctx.cause_idx]
    keys += [("cause_group", g) for g in ctx.groups]
    keys += [("flag", f) for f in ctx.flags]
    keys += [("mindset", m) for m in ctx.mindsets]
    keys += [("cue", c) for c in ctx.cues]
    keys += [("fact", k) for k in ctx.facts]
    keys.append(("channel", ctx.channel))
    keys.append(("level", RISK_LEVELS[ctx.level]))
    return keys


class RuleIndex:
    """Key -> positions of the rules gated on it, and the positions of the rules without a gate.

    `alike[i]`: for a rule whose condition another rule repeats word for word (three compensation
    rules share one `when`), the position of the first of them, so a note tests that condition once;
    None for a condition of its own."""

    def __init__(self, rules: Iterable) -> None:
        self.ungated: set[int] = set()
        self.by_key: dict[Key, list[int]] = {}
        self.alike: list[int | None] = []
        first: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            when = getattr(rule, "when", None)
            self.alike.append(None)
            if when is not None:
                first.setdefault(json.dumps(when, sort_keys=True, default=repr), []).append(i)
            gate = gate_of(when)
            if gate is None:
                self.ungated.add(i)
                continue
            for key in gate:
                self.by_key.setdefault(key, []).append(i)
        for same in first.values():
            if len(same) > 1:
                for i in same:
                    self.alike[i] = same[0]

    def candidates(self, keys: Iterable[Key]) -> list[int]:
        """Positions, in firing order, of the rules that can fire for a note holding `keys`."""
        found = set(self.ungated)
        get = self.by_key.get
        for key in keys:
            hit = get(key)
            if hit:
                found.update(hit)
        return sorted(found)
