"""The playbook as data: schema, condition compiler and loader (the engine is handling/plan.py).

Handling knowledge lives in pipeline/knowledge/playbook/*.yaml (or a centre's
own folder, `--playbook DIR`) so that a complaint expert
can read and change it without Python. Each file may hold `steps` and
`avoid` (id, text, optional section), `rules`, a default `section`, and one
file may hold `settings` (reply hours, regulatory days, owner floor).

A rule:

    - id: major_media_vip          # stable, unique across files
      section: major               # one of SECTIONS
      priority: 91                 # firing order in the trace (higher first)
      tier: now                    # now | focus | then | reference (default: then; general: reference)
      urgency: 91                  # 0-100: order inside a tier, the most urgent first
      when: {all: [{risk_level: high}, {flag: [media_threat, vip_identity]}]}
      steps: [major_senior_owner]  # step ids
      avoid: []                    # avoid ids
      owner: senior_specialist     # frontline | supervisor | senior_specialist
      departments: [brand_pr]      # legal | brand_pr | regulator_liaison | security
      review: false                # true: a person must look before acting
      note: why it exists          # optional, free text

Conditions (`when`), one key each, nestable:

    {always: true}
    {all: [...]} {any: [...]} {not: {...}}
    {cause: id|[ids], main: bool, min_proba: p}      cause among the triage's causes
    {cause_group: id|[ids]}
    {risk_level: low|medium|high, at_most: level}    level at least (at most)
    {flag: id|[ids], min_proba: p, max_proba: p}     with a bound: the flag's probability in range
    {mindset: id|[ids], main: bool, min_proba: p, max_proba: p}
    {fact: kind, op: ">=", value: 60, agg: any|max|min|count}  no op: the fact is present
    {cue: name|[names]}                              a lexicon cue found by facts.py
    {uncertain: any|head|[heads]}
    {triage: reconciliation|truncated|is_transcript}
    {top_proba: cause|risk_level|mindset, below: p}
    {channel: phone|counter|letter|regulator|online|unknown|[...]}
    {enquiry: true|false}                            a plain question: no mindset, low risk

Confidence gates: a cause, cause_group, flag or mindset atom holds only when
the label's probability reaches `min_proba`, or else the playbook's default
gate for that kind (`settings.gates`); the fired-rule trace shows both.

Tiers: `now` steps (at most settings.max_now, most urgent first) are what the
handler does at once; from `focus` rules (the step that matters most for this
cause and mindset) only the most urgent one's first step joins `now`, the rest
go to `then`; `then` is the rest of the handling (at most settings.max_then);
`reference` is the general process, shown as one collapsed line.

The loader checks every id against the taxonomy, the fact kinds and the cue
names, and reports all problems at once. The engine is pure: the default
playbook is loaded once and cached; a plan takes tens of microseconds.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from pipeline.contract.records import (
    Facts,
    Step,
    Triage,
)
from pipeline.contract.taxonomy import HEADS, RISK_LEVELS, taxonomy
from pipeline.handling.facts import FACT_KINDS, cue_names
from pipeline.handling.gates import RuleIndex
from pipeline.knowledge import bundled, playbook_dir, safe_yaml



PLAYBOOK_DIR = bundled("playbook")

SECTIONS: tuple[str, ...] = (
    "general", "negotiation", "mindset", "perception", "major", "special_customer",
    "compensation", "apology", "deadline", "beyond_course",
)
OWNERS: tuple[str, ...] = ("frontline", "supervisor", "senior_specialist")
DEPARTMENTS: tuple[str, ...] = ("legal", "brand_pr", "regulator_liaison", "security")
HEAD_NAMES: dict[str, str] = {"cause": "投诉原因", "risk_level": "升级风险", "risk_flags": "风险标记", "mindset": "客户心理"}

_FILE_KEYS = {"section", "steps", "avoid", "rules", "settings"}
_RULE_KEYS = {"id", "section", "priority", "tier", "urgency", "when", "steps", "avoid", "owner", "departments",
              "review", "note"}
TIERS: tuple[str, ...] = ("now", "focus", "then", "reference")
CHANNELS: tuple[str, ...] = ("phone", "counter", "letter", "regulator", "online", "unknown")
GATED_KINDS: tuple[str, ...] = ("cause", "cause_group", "flag", "mindset")
_STEP_KEYS = {"id", "text", "section", "short"}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
_AGGS = ("any", "max", "min", "count")
_TRIAGE_ATTRS = ("reconciliation", "truncated", "is_transcript")

#: A condition that holds: what made it hold, and its confidence (None for facts and cues).
Hit = tuple[list[str], "float | None"]
Test = Callable[["Context"], "Hit | None"]


class PlaybookError(ValueError):
    """A playbook file breaks the schema; the message lists every problem, with file and rule."""


@dataclass(frozen=True)
class PlaybookSettings:
    reply_hours: dict[str, int] = field(default_factory=lambda: {"high": 2, "medium": 24, "low": 48})
    min_reply_hours: int = 2
    decision_days: int = 15
    complex_days: int = 30
    extension_days: int = 30
    extension_text: str = "一般案件15日内作出处理决定并告知客户；复杂的可延长至30日；经批准可再延长30日。"
    owner_floor: dict[str, str] = field(default_factory=lambda: {"high": "supervisor"})
    # default confidence gates per atom kind (a rule's own min_proba overrides)
    gates: dict[str, float] = field(default_factory=lambda: {"cause": 0.3, "cause_group": 0.3, "flag": 0.0,
                                                             "mindset": 0.4})
    max_now: int = 5
    max_then: int = 7
    max_avoid: int = 4
    # review: main cause below this probability, or the top two causes closer than this margin (which one
    # is the dispute to settle?); a flag this close to its threshold that would change the level
    review_cause_below: float = 0.4
    review_cause_margin: float = 0.0
    review_flag_margin: float = 0.1
    # review: the learned level model gives the rule's level (from the flags) less than this probability:
    # the flags and the note's overall tone disagree, the commonest sign of a missed or a false flag
    review_level_below: float = 0.0


@dataclass(frozen=True)
class Rule:
    id: str
    section: str
    priority: int
    test: Test
    steps: tuple[str, ...]
    avoid: tuple[str, ...]
    owner: str
    departments: tuple[str, ...]
    review: bool
    source: str
    when: Any = None
    note: str = ""
    tier: str = "then"
    urgency: int = 50


@dataclass(frozen=True)
class Playbook:
    """Rules in firing order (general first, then priority), and the step texts."""

    rules: tuple[Rule, ...]
    steps: dict[str, Step]
    avoid: dict[str, Step]
    settings: PlaybookSettings
    sources: tuple[str, ...]

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    @cached_property
    def index(self) -> RuleIndex:
        """Which rules can fire for a note (handling/gates.py), built once per playbook."""
        return RuleIndex(self.rules)


# ======================================================================= context


class Context:
    """What the conditions read, indexed once per plan call."""

    __slots__ = ("t", "flags", "cause_idx", "groups", "mindsets", "level", "facts", "cues", "channel", "enquiry",
                 "gates")

    def __init__(self, triage: Triage, facts: Facts, channel: str = "unknown", enquiry: bool = False,
                 gates: dict[str, float] | None = None) -> None:
        self.t = triage
        self.channel, self.enquiry = channel, enquiry
        self.gates = gates if gates is not None else PlaybookSettings().gates
        self.flags = set(triage.risk_flags)
        self.cause_idx = {c: i for i, c in enumerate(triage.cause)}
        self.groups = triage.cause_group or [c.split("_", 1)[0] for c in triage.cause]
        self.mindsets = triage.mindset
        self.level = RISK_LEVELS.index(triage.risk_level) if triage.risk_level in RISK_LEVELS else 0
        self.facts: dict[str, list] = {}
        self.cues: dict[str, str] = {}
        for f in facts.items:
            if f.kind == "cue":
                self.cues.setdefault(f.value, f.text)
            else:
                self.facts.setdefault(f.kind, []).append(f.value)


def _proba_text(p: float | None) -> str:
    return "" if p is None else f" p={p:.2f}"


def _gate_text(p: float | None, gate: float) -> str:
    if p is None:
        return ""
    return f" p={p:.2f} ≥ {gate:.2f}" if gate else f" p={p:.2f}"


def _strongest(hits: list[tuple[str, float | None]]) -> Hit | None:
    """Several ids of one atom, or the branches of `any`: the best-supported one sets the confidence."""
    if not hits:
        return None
    probs = [p for _, p in hits if p is not None]
    return [t for t, _ in hits], (max(probs) if probs else None)


def _describe(cond: Any) -> str:
    if isinstance(cond, dict):
        return ",".join(f"{k}={_describe(v)}" for k, v in cond.items())
    if isinstance(cond, list):
        return "[" + "|".join(_describe(v) for v in cond) + "]"
    return str(cond)


# ======================================================================= condition compiler


@dataclass(frozen=True)
class _Known:
    causes: frozenset[str]
    groups: frozenset[str]
    flags: frozenset[str]
    mindsets: frozenset[str]
    fact_kinds: frozenset[str]
    cues: frozenset[str]


def _known() -> _Known:
    tax = taxonomy()
    return _Known(
        causes=frozenset(tax.cause_ids), groups=frozenset(tax.group_ids), flags=frozenset(tax.flag_ids),
        mindsets=frozenset(tax.mindset_ids), fact_kinds=frozenset(FACT_KINDS), cues=frozenset(cue_names()),
    )


def _ids(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class _Compiler:
    """Turns a `when` mapping into a closure; collects problems instead of stopping at the first."""

    def __init__(self, known: _Known, problems: list[str], where: str) -> None:
        self.known, self.problems, self.where = known, problems, where

    def bad(self, msg: str) -> Test:
        self.problems.append(f"{self.where}: {msg}")
        return lambda ctx: None

    def check_ids(self, kind: str, ids: list, allowed: Iterable[str]) -> bool:
        unknown = [i for i in ids if i not in allowed]
        for i in unknown:
            self.problems.append(f"{self.where}: unknown {kind} '{i}' in when")
        return not unknown

    def check_keys(self, cond: dict, allowed: set[str]) -> bool:
        extra = set(cond) - allowed
        if extra:
            self.problems.append(f"{self.where}: unexpected keys {sorted(extra)} in condition {cond}")
        return not extra

    def proba(self, cond: dict, key: str) -> float | None:
        p = cond.get(key)
        if p is None:
            return None
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            self.problems.append(f"{self.where}: {key} must be a number in [0, 1], got {p!r}")
            return None
        return float(p)

    def compile(self, cond: Any) -> Test:
        if not isinstance(cond, dict) or not cond:
            return self.bad(f"a condition must be a non-empty mapping, got {cond!r}")
        kinds = [k for k in cond if k in _ATOMS]
        if len(kinds) != 1:
            return self.bad(f"a condition needs exactly one of {sorted(_ATOMS)}, got {sorted(cond)}")
        return _ATOMS[kinds[0]](self, cond)

    # ---- combinators

    def c_always(self, cond: dict) -> Test:
        self.check_keys(cond, {"always"})
        if cond["always"] is not True:
            return self.bad("always must be true")
        return lambda ctx: (["always"], None)

    def c_all(self, cond: dict) -> Test:
        self.check_keys(cond, {"all"})
        if not isinstance(cond["all"], list) or not cond["all"]:
            return self.bad("all needs a non-empty list")
        parts = [self.compile(c) for c in cond["all"]]

        def test(ctx: Context) -> Hit | None:  # the weakest part sets the confidence
            texts: list[str] = []
            probs: list[float] = []
            for p in parts:
                hit = p(ctx)
                if hit is None:
                    return None
                texts += hit[0]
                if hit[1] is not None:
                    probs.append(hit[1])
            return texts, (min(probs) if probs else None)

        return test

    def c_any(self, cond: dict) -> Test:
        self.check_keys(cond, {"any"})
        if not isinstance(cond["any"], list) or not cond["any"]:
            return self.bad("any needs a non-empty list")
        parts = [self.compile(c) for c in cond["any"]]

        def test(ctx: Context) -> Hit | None:  # the strongest branch sets the confidence
            texts: list[str] = []
            probs: list[float] = []
            for p in parts:
                hit = p(ctx)
                if hit is not None:
                    texts += hit[0]
                    if hit[1] is not None:
                        probs.append(hit[1])
            return (texts, max(probs) if probs else None) if texts else None

        return test

    def c_not(self, cond: dict) -> Test:
        self.check_keys(cond, {"not"})
        inner, text = self.compile(cond["not"]), f"not {_describe(cond['not'])}"
        return lambda ctx: ([text], None) if inner(ctx) is None else None

    # ---- atoms over the triage

    def c_cause(self, cond: dict) -> Test:
        self.check_keys(cond, {"cause", "main", "min_proba"})
        ids = _ids(cond["cause"])
        self.check_ids("cause", ids, self.known.causes)
        main, lo = bool(cond.get("main", False)), self.proba(cond, "min_proba")
        wanted = frozenset(ids)

        def test(ctx: Context) -> Hit | None:
            if wanted.isdisjoint(ctx.cause_idx):  # none of its causes is among the note's top 3
                return None
            out = []
            for c in ids:
                i = ctx.cause_idx.get(c)
                if i is None or (main and i != 0):
                    continue
                p = ctx.t.cause_proba[i] if i < len(ctx.t.cause_proba) else None
                gate = lo if lo is not None else ctx.gates.get("cause", 0.0)
                if gate and (p is None or p < gate):
                    continue
                out.append((f"cause {c}{_gate_text(p, gate)}", p))
            return _strongest(out)

        return test

    def c_cause_group(self, cond: dict) -> Test:
        self.check_keys(cond, {"cause_group", "min_proba"})
        ids = _ids(cond["cause_group"])
        self.check_ids("cause group", ids, self.known.groups)
        lo = self.proba(cond, "min_proba")

        def test(ctx: Context) -> Hit | None:
            out = []
            for g in ids:
                ps = [ctx.t.cause_proba[i] for i, cg in enumerate(ctx.groups) if cg == g and i < len(ctx.t.cause_proba)]
                if g in ctx.groups:
                    p = sum(ps) if ps else None  # the group's share of the top causes
                    gate = lo if lo is not None else ctx.gates.get("cause_group", 0.0)
                    if gate and (p is None or p < gate):
                        continue
                    out.append((f"cause_group {g}{_gate_text(p, gate)}", p))
            return _strongest(out)

        return test

    def c_risk_level(self, cond: dict) -> Test:
        self.check_keys(cond, {"risk_level", "at_most"})
        lo, hi = cond["risk_level"], cond.get("at_most", "high")
        if not self.check_ids("risk level", [lo, hi], RISK_LEVELS):
            return lambda ctx: None
        i_lo, i_hi = RISK_LEVELS.index(lo), RISK_LEVELS.index(hi)

        def test(ctx: Context) -> Hit | None:
            if not i_lo <= ctx.level <= i_hi:
                return None
            return [f"risk_level {ctx.t.risk_level}"], None  # set by the rule from the flags, not a probability

        return test

    def c_flag(self, cond: dict) -> Test:
        self.check_keys(cond, {"flag", "min_proba", "max_proba"})
        ids = _ids(cond["flag"])
        self.check_ids("flag", ids, self.known.flags)
        return _labelled("flag", ids, self.proba(cond, "min_proba"), self.proba(cond, "max_proba"), main=False)

    def c_mindset(self, cond: dict) -> Test:
        self.check_keys(cond, {"mindset", "main", "min_proba", "max_proba"})
        ids = _ids(cond["mindset"])
        self.check_ids("mindset", ids, self.known.mindsets)
        return _labelled("mindset", ids, self.proba(cond, "min_proba"), self.proba(cond, "max_proba"),
                         main=bool(cond.get("main", False)))

    def c_uncertain(self, cond: dict) -> Test:
        self.check_keys(cond, {"uncertain"})
        ids = _ids(cond["uncertain"])
        if ids != ["any"]:
            self.check_ids("head", ids, HEADS)

        def test(ctx: Context) -> Hit | None:
            heads = [h for h in ctx.t.uncertain if ids == ["any"] or h in ids]
            return ([f"uncertain {h}" for h in heads], None) if heads else None

        return test

    def c_triage(self, cond: dict) -> Test:
        self.check_keys(cond, {"triage"})
        attr = cond["triage"]
        if not self.check_ids("triage attribute", [attr], _TRIAGE_ATTRS):
            return lambda ctx: None
        return lambda ctx: ([f"triage {attr}"], None) if getattr(ctx.t, attr) else None

    def c_top_proba(self, cond: dict) -> Test:
        self.check_keys(cond, {"top_proba", "below"})
        head = cond["top_proba"]
        below = self.proba({"below": cond.get("below")}, "below")
        if not self.check_ids("head", [head], ("cause", "risk_level", "mindset")) or below is None:
            return self.bad("top_proba needs a head (cause, risk_level, mindset) and below: p")

        def test(ctx: Context) -> Hit | None:
            p = _top_proba(ctx.t, head)
            return ([f"top {head} p={p:.2f} < {below:.2f}"], p) if p is not None and p < below else None

        return test

    def c_channel(self, cond: dict) -> Test:
        self.check_keys(cond, {"channel"})
        ids = _ids(cond["channel"])
        self.check_ids("channel", ids, CHANNELS)
        return lambda ctx: ([f"channel {ctx.channel}"], None) if ctx.channel in ids else None

    def c_enquiry(self, cond: dict) -> Test:
        self.check_keys(cond, {"enquiry"})
        want = cond["enquiry"]
        if not isinstance(want, bool):
            return self.bad("enquiry must be true or false")
        return lambda ctx: ([f"enquiry {str(want).lower()}"], None) if ctx.enquiry == want else None

    # ---- atoms over the facts

    def c_fact(self, cond: dict) -> Test:
        self.check_keys(cond, {"fact", "op", "value", "agg"})
        kind, op, agg = cond["fact"], cond.get("op"), cond.get("agg", "any")
        self.check_ids("fact", [kind], self.known.fact_kinds)
        if op is not None and op not in _OPS:
            return self.bad(f"unknown op '{op}' (use one of {list(_OPS)})")
        if op is not None and "value" not in cond:
            return self.bad(f"fact '{kind}' with op '{op}' needs a value")
        if agg not in _AGGS:
            return self.bad(f"unknown agg '{agg}' (use one of {list(_AGGS)})")
        return _fact_test(kind, op, cond.get("value"), agg)

    def c_cue(self, cond: dict) -> Test:
        self.check_keys(cond, {"cue"})
        ids = _ids(cond["cue"])
        self.check_ids("cue", ids, self.known.cues)

        def test(ctx: Context) -> Hit | None:
            found = [f"cue {c} '{ctx.cues[c]}'" for c in ids if c in ctx.cues]
            return (found, None) if found else None

        return test


def _labelled(kind: str, ids: list, lo: float | None, hi: float | None, main: bool) -> Test:
    """A flag or mindset atom: the label predicted (main first, if asked) or its probability within
    [min_proba, max_proba), and past the kind's confidence gate."""
    by_proba = lo is not None or hi is not None
    wanted = frozenset(ids)

    def test(ctx: Context) -> Hit | None:
        present, probas = (ctx.flags, ctx.t.risk_flag_proba) if kind == "flag" else (ctx.mindsets, ctx.t.mindset_proba)
        if not by_proba and wanted.isdisjoint(present):  # the common miss, without building anything
            return None
        out = []
        for label in ids:
            p = probas.get(label)
            if by_proba:
                q = p if p is not None else (1.0 if label in present else 0.0)
                if (lo is not None and q < lo) or (hi is not None and q >= hi):
                    continue
            elif label not in present or (main and present[0] != label):
                continue
            gate = lo if lo is not None else ctx.gates.get(kind, 0.0)
            if gate and (p is None or p < gate):
                continue
            said = kind == "flag" and not by_proba and label in ctx.t.said_outright
            out.append((f"flag {label} said" if said else f"{kind} {label}{_gate_text(p, gate)}", p))
        return _strongest(out)

    return test


def _fact_test(kind: str, op: str | None, value: Any, agg: str) -> Test:
    cmp = _OPS.get(op) if op else None

    def test(ctx: Context) -> Hit | None:
        vals = ctx.facts.get(kind)
        if not vals:
            return None
        if cmp is None:
            return [f"fact {kind}={vals[0]}"], None
        vals = [v for v in vals if v is not None]
        if agg == "count":
            return ([f"fact {kind} count={len(vals)} {op} {value}"], None) if cmp(len(vals), value) else None
        if agg in ("max", "min"):
            nums = [v for v in vals if isinstance(v, (int, float))]
            if not nums:
                return None
            v = max(nums) if agg == "max" else min(nums)
            return ([f"fact {kind} {agg}={v} {op} {value}"], None) if cmp(v, value) else None
        for v in vals:
            try:
                if cmp(v, value):
                    return [f"fact {kind}={v} {op} {value}"], None
            except TypeError:
                continue
        return None

    return test


_ATOMS: dict[str, Callable[[_Compiler, dict], Test]] = {
    "always": _Compiler.c_always, "all": _Compiler.c_all, "any": _Compiler.c_any, "not": _Compiler.c_not,
    "cause": _Compiler.c_cause, "cause_group": _Compiler.c_cause_group, "risk_level": _Compiler.c_risk_level,
    "flag": _Compiler.c_flag, "mindset": _Compiler.c_mindset, "uncertain": _Compiler.c_uncertain,
    "triage": _Compiler.c_triage, "top_proba": _Compiler.c_top_proba, "fact": _Compiler.c_fact, "cue": _Compiler.c_cue,
    "channel": _Compiler.c_channel, "enquiry": _Compiler.c_enquiry,
}


def _top_proba(t: Triage, head: str) -> float | None:
    if head == "cause":
        return t.cause_proba[0] if t.cause_proba else None
    probs = t.risk_level_proba if head == "risk_level" else t.mindset_proba
    return max(probs.values()) if probs else None


# ======================================================================= loader


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
    return [path]


def _read(path: Path, problems: list[str]) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = safe_yaml(fh)
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path.name}: cannot read YAML: {exc}".replace("\n", " "))
        return None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: top level must be a mapping, got {type(raw).__name__}")
        return None
    extra = set(raw) - _FILE_KEYS
    if extra:
        problems.append(f"{path.name}: unknown top-level keys {sorted(extra)} (allowed: {sorted(_FILE_KEYS)})")
    return raw


def _load_texts(raw: dict, key: str, fname: str, default_section: str | None,
                table: dict[str, Step], all_ids: set[str], problems: list[str]) -> None:
    entries = raw.get(key) or []
    if not isinstance(entries, list):
        problems.append(f"{fname}: '{key}' must be a list")
        return
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            problems.append(f"{fname}: {key} entry without an id: {entry!r}")
            continue
        sid, where = entry["id"], f"{fname}: {key} '{entry['id']}'"
        if set(entry) - _STEP_KEYS:
            problems.append(f"{where}: unknown keys {sorted(set(entry) - _STEP_KEYS)}")
        if sid in all_ids:
            problems.append(f"{where}: duplicate step/avoid id")
            continue
        text, section = entry.get("text"), entry.get("section", default_section)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: needs a non-empty text")
        if section not in SECTIONS:
            problems.append(f"{where}: section '{section}' is not one of {list(SECTIONS)}")
        all_ids.add(sid)
        table[sid] = Step(id=sid, text=str(text or "").strip(), section=str(section), short=str(entry.get("short", "")))


def _str_list(value: Any, where: str, what: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {what} must be a list of ids")
        return ()
    return tuple(value)


def _load_rule(entry: Any, fname: str, default_section: str | None, known: _Known,
               problems: list[str], seen: set[str]) -> Rule | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        problems.append(f"{fname}: rule without an id: {str(entry)[:80]}")
        return None
    rid = entry["id"]
    where = f"{fname}: rule '{rid}'"
    if rid in seen:
        problems.append(f"{where}: duplicate rule id")
    seen.add(rid)
    if set(entry) - _RULE_KEYS:
        problems.append(f"{where}: unknown keys {sorted(set(entry) - _RULE_KEYS)}")
    section = entry.get("section", default_section)
    if section not in SECTIONS:
        problems.append(f"{where}: section '{section}' is not one of {list(SECTIONS)}")
    priority = entry.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        problems.append(f"{where}: priority must be an integer, got {priority!r}")
        priority = 0
    if "when" not in entry:
        problems.append(f"{where}: missing 'when'")
    test = _Compiler(known, problems, where).compile(entry.get("when"))
    owner = entry.get("owner", "frontline")
    if owner not in OWNERS:
        problems.append(f"{where}: owner '{owner}' is not one of {list(OWNERS)}")
        owner = "frontline"
    departments = _str_list(entry.get("departments"), where, "departments", problems)
    for d in departments:
        if d not in DEPARTMENTS:
            problems.append(f"{where}: department '{d}' is not one of {list(DEPARTMENTS)}")
    review = entry.get("review", False)
    if not isinstance(review, bool):
        problems.append(f"{where}: review must be true or false")
    tier = entry.get("tier", "reference" if section == "general" else "then")
    if tier not in TIERS:
        problems.append(f"{where}: tier '{tier}' is not one of {list(TIERS)}")
        tier = "then"
    urgency = entry.get("urgency", 50)
    if isinstance(urgency, bool) or not isinstance(urgency, int) or not 0 <= urgency <= 100:
        problems.append(f"{where}: urgency must be an integer from 0 to 100, got {urgency!r}")
        urgency = 50
    return Rule(
        id=rid, section=str(section), priority=priority, test=test,
        steps=_str_list(entry.get("steps"), where, "steps", problems),
        avoid=_str_list(entry.get("avoid"), where, "avoid", problems),
        owner=owner, departments=departments, review=bool(review), source=fname,
        when=entry.get("when"), note=str(entry.get("note", "")), tier=str(tier), urgency=int(urgency),
    )


def _load_settings(raw: Any, fname: str, problems: list[str]) -> PlaybookSettings:
    if not isinstance(raw, dict):
        problems.append(f"{fname}: settings must be a mapping")
        return PlaybookSettings()
    default = PlaybookSettings()
    extra = set(raw) - set(PlaybookSettings.__dataclass_fields__)
    if extra:
        problems.append(f"{fname}: unknown settings {sorted(extra)}")
    hours = raw.get("reply_hours", default.reply_hours)
    if not isinstance(hours, dict) or set(hours) != set(RISK_LEVELS) or not all(
            isinstance(v, int) and v > 0 for v in hours.values()):
        problems.append(f"{fname}: settings.reply_hours needs a positive integer for each of {list(RISK_LEVELS)}")
        hours = default.reply_hours
    floor = raw.get("owner_floor", default.owner_floor)
    if not isinstance(floor, dict) or any(k not in RISK_LEVELS or v not in OWNERS for k, v in floor.items()):
        problems.append(f"{fname}: settings.owner_floor maps risk levels to owners")
        floor = default.owner_floor
    ints = {}
    for key in ("min_reply_hours", "decision_days", "complex_days", "extension_days"):
        v = raw.get(key, getattr(default, key))
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            problems.append(f"{fname}: settings.{key} must be a positive integer")
            v = getattr(default, key)
        ints[key] = v
    for key in ("max_now", "max_then", "max_avoid"):
        v = raw.get(key, getattr(default, key))
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            problems.append(f"{fname}: settings.{key} must be a positive integer")
            v = getattr(default, key)
        ints[key] = v
    gates = raw.get("gates", default.gates)
    if not isinstance(gates, dict) or set(gates) - set(GATED_KINDS):
        problems.append(f"{fname}: settings.gates maps {list(GATED_KINDS)} to thresholds")
        gates = default.gates
    for kind, p in gates.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            problems.append(f"{fname}: settings.gates.{kind} must be a number in [0, 1], got {p!r}")
    gates = {**default.gates, **{k: float(v) for k, v in gates.items() if isinstance(v, (int, float))}}
    floats = {}
    for key in ("review_cause_below", "review_cause_margin", "review_flag_margin", "review_level_below"):
        v = raw.get(key, getattr(default, key))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            problems.append(f"{fname}: settings.{key} must be a number in [0, 1], got {v!r}")
            v = getattr(default, key)
        floats[key] = float(v)
    return PlaybookSettings(reply_hours=dict(hours), owner_floor=dict(floor), gates=gates,
                            extension_text=str(raw.get("extension_text", default.extension_text)), **ints, **floats)


def _check_refs(rules: list[Rule], steps: dict, avoid: dict, problems: list[str]) -> None:
    for r in rules:
        for s in r.steps:
            if s not in steps:
                hint = " (it is an avoid id)" if s in avoid else ""
                problems.append(f"{r.source}: rule '{r.id}': step '{s}' is not defined{hint}")
        for a in r.avoid:
            if a not in avoid:
                hint = " (it is a step id)" if a in steps else ""
                problems.append(f"{r.source}: rule '{r.id}': avoid '{a}' is not defined{hint}")


def _order(rules: list[Rule]) -> tuple[Rule, ...]:
    """General rules first, then by priority (higher first), then file order."""
    indexed = list(enumerate(rules))
    indexed.sort(key=lambda ir: (ir[1].section != "general", -ir[1].priority, ir[0]))
    return tuple(r for _, r in indexed)


def load_playbook(path: Path | str = PLAYBOOK_DIR) -> Playbook:
    """Load and check a playbook directory (all *.yaml) or a single file.

    Raises PlaybookError listing every problem, each with its file and rule.
    """
    path = Path(path)
    problems: list[str] = []
    if not path.exists():
        raise PlaybookError(f"{path}: no such playbook file or directory")
    files = _files(path)
    if not files:
        raise PlaybookError(f"{path}: no *.yaml files")
    known = _known()
    steps: dict[str, Step] = {}
    avoid: dict[str, Step] = {}
    text_ids: set[str] = set()
    rules: list[Rule] = []
    seen: set[str] = set()
    settings, settings_from = PlaybookSettings(), None
    for f in files:
        raw = _read(f, problems)
        if raw is None:
            continue
        default_section = raw.get("section")
        if default_section is not None and default_section not in SECTIONS:
            problems.append(f"{f.name}: section '{default_section}' is not one of {list(SECTIONS)}")
        _load_texts(raw, "steps", f.name, default_section, steps, text_ids, problems)
        _load_texts(raw, "avoid", f.name, default_section, avoid, text_ids, problems)
        if "settings" in raw:
            if settings_from:
                problems.append(f"{f.name}: settings already given in {settings_from}")
            settings, settings_from = _load_settings(raw["settings"], f.name, problems), f.name
        entries = raw.get("rules") or []
        if not isinstance(entries, list):
            problems.append(f"{f.name}: 'rules' must be a list")
            continue
        for entry in entries:
            rule = _load_rule(entry, f.name, default_section, known, problems, seen)
            if rule is not None:
                rules.append(rule)
    if not rules and not problems:
        problems.append(f"{path}: the playbook has no rules")
    _check_refs(rules, steps, avoid, problems)
    if problems:
        raise PlaybookError(f"{len(problems)} problem(s) in playbook {path}:\n  " + "\n  ".join(problems))
    return Playbook(rules=_order(rules), steps=steps, avoid=avoid, settings=settings,
                    sources=tuple(f.name for f in files))


@lru_cache(maxsize=1)
def default_playbook() -> Playbook:
    """The project's playbook (data/playbook), loaded and checked once per process."""
    return load_playbook(playbook_dir())
