"""The label contract (data/taxonomy.yaml), loaded once and checked.

Everything that needs a label id, a Chinese name, a group or the risk rule
asks this module, so the ids live in exactly one file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable


from pipeline.knowledge import safe_yaml, taxonomy_path

TAXONOMY_PATH = taxonomy_path()

RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")
HEADS: tuple[str, ...] = ("cause", "risk_level", "risk_flags", "mindset")


class TaxonomyError(ValueError):
    """The taxonomy file breaks the label contract."""


@dataclass(frozen=True)
class Taxonomy:
    groups: dict[str, str]
    causes: dict[str, dict]
    risk_levels: dict[str, dict]
    flags: dict[str, dict]
    mindsets: dict[str, dict]
    threat_flags: tuple[str, ...]
    exclusive_flags: dict[str, tuple[str, ...]]

    @property
    def cause_ids(self) -> list[str]:
        return list(self.causes)

    @property
    def flag_ids(self) -> list[str]:
        return list(self.flags)

    @property
    def mindset_ids(self) -> list[str]:
        return list(self.mindsets)

    @property
    def group_ids(self) -> list[str]:
        return list(self.groups)

    def group_of(self, cause: str) -> str:
        """The group of a cause is the part of its id before the first underscore."""
        return cause.split("_", 1)[0]

    def name(self, label: str) -> str:
        for table in (self.causes, self.flags, self.mindsets, self.risk_levels):
            if label in table:
                return table[label]["name"]
        if label in self.groups:
            return self.groups[label]
        raise KeyError(label)

    def name_or_id(self, label: str) -> str:
        """The Chinese name, or the id itself for what is not a label (a people-facing text never fails on one)."""
        try:
            return self.name(label)
        except KeyError:
            return label

    # read for every note (the rule's level, review, the second-sign bar): worked out once per taxonomy
    @cached_property
    def medium_flags(self) -> tuple[str, ...]:
        return tuple(f for f, v in self.flags.items() if v["severity"] == "medium")

    @cached_property
    def high_flags(self) -> tuple[str, ...]:
        return tuple(f for f, v in self.flags.items() if v["severity"] == "high")


    def resolve_flags(self, flags: list[str]) -> list[str]:
        """Drop flags that an exclusive flag beside them overrides; order kept."""
        dropped = {lost for win, losers in self.exclusive_flags.items() if win in flags for lost in losers}
        return [f for f in flags if f not in dropped]

    def schema_hash(self) -> str:
        """A hash of the ids only: a model trained on one label set refuses another."""
        ids = {
            "cause": self.cause_ids,
            "risk_level": list(self.risk_levels),
            "risk_flags": self.flag_ids,
            "mindset": self.mindset_ids,
        }
        return hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()[:16]

    def high_whatever_the_count(self, flags: set[str] | list[str]) -> bool:
        """High by a high sign, or by a VIP's threat, however many medium signs there are."""
        return any(f in flags for f in self.high_flags) or (
            "vip_identity" in flags and any(f in flags for f in self.threat_flags))

    def risk_floor(self, flags: Iterable[str]) -> str:
        """The lowest level the spec's rule allows for these flags.

        The rule cannot see a concrete deadline in the text, so it is a floor:
        a note with one medium sign and a dated regulator action is still high.
        """
        flags = set(flags)
        if self.high_whatever_the_count(flags):
            return "high"
        n_medium = len(flags.intersection(self.medium_flags))
        if n_medium >= 2:
            return "high"
        if n_medium == 1:
            return "medium"
        return "low"


def _check(raw: dict, path: Path) -> Taxonomy:
    problems: list[str] = []
    for key in ("groups", "cause", "risk_level", "risk_flags", "mindset", "threat_flags"):
        if key not in raw:
            problems.append(f"missing section '{key}'")
    if problems:
        raise TaxonomyError(f"{path}: " + "; ".join(problems))
    groups = raw["groups"]
    for cid, entry in raw["cause"].items():
        group = cid.split("_", 1)[0]
        if group not in groups:
            problems.append(f"cause '{cid}': group '{group}' is not among {sorted(groups)}")
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append(f"cause '{cid}': needs a name")
    if list(raw["risk_level"]) != list(RISK_LEVELS):
        problems.append(f"risk_level must be exactly {list(RISK_LEVELS)} in order")
    for fid, entry in raw["risk_flags"].items():
        if entry.get("severity") not in {"medium", "high", "vip"}:
            problems.append(f"flag '{fid}': severity must be medium, high or vip")
    for win, losers in raw.get("exclusive_flags", {}).items():
        for f in [win, *losers]:
            if f not in raw["risk_flags"]:
                problems.append(f"exclusive_flags: unknown flag '{f}'")
    for t in raw["threat_flags"]:
        if t not in raw["risk_flags"]:
            problems.append(f"threat_flags: unknown flag '{t}'")
    all_ids = list(raw["cause"]) + list(raw["risk_flags"]) + list(raw["mindset"])
    dupes = {i for i in all_ids if all_ids.count(i) > 1}
    if dupes:
        problems.append(f"ids used in more than one head: {sorted(dupes)}")
    if problems:
        raise TaxonomyError(f"{path}: " + "; ".join(problems))
    return Taxonomy(
        groups=dict(groups),
        causes=dict(raw["cause"]),
        risk_levels=dict(raw["risk_level"]),
        flags=dict(raw["risk_flags"]),
        mindsets=dict(raw["mindset"]),
        threat_flags=tuple(raw["threat_flags"]),
        exclusive_flags={w: tuple(l) for w, l in raw.get("exclusive_flags", {}).items()},
    )


def load_taxonomy(path: Path | str = TAXONOMY_PATH) -> Taxonomy:
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        raw = safe_yaml(fh)
    return _check(raw, path)


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """The project's taxonomy, loaded once per process."""
    return load_taxonomy()
