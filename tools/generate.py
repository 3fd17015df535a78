"""Seeded generator of labelled complaint notes, composed from phrase banks.

Why a generator: the handwritten corpus is small, and a TF-IDF model needs
to see every cause, flag and mindset in many wordings, voices and scripts.
The generator picks the labels first (balanced over causes, flags and
mindsets), then picks one phrase per label from the banks in
data/corpus/phrasebank/ and composes them in a shuffled order with varied
connectors. Labels therefore come from the components chosen, never from
reading the text afterwards; the risk level follows the spec's rule
(`Taxonomy.risk_floor`, raised to high for a dated media/regulator threat or
a regulator's forward with a reply deadline).

    python -m tools.generate -n 2600 -o /tmp/gen.jsonl

See data/corpus/GENERATOR.md for the banks, slots and probabilities.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import yaml

from pipeline.contract.taxonomy import Taxonomy, taxonomy

BANK_DIR = Path(__file__).resolve().parent.parent / "data" / "corpus" / "phrasebank"
DEFAULT_SEED = 20261125
MIN_LEN, MAX_LEN = 20, 400

# Shares of the whole corpus (exact counts, drawn once per run).
SHARE_ENQUIRY = 0.10
SHARE_TRANSCRIPT = 0.12
SHARE_TRADITIONAL = 0.12
SHARE_NOISE = 0.08

# Per complaint.
P_SECONDARY = 0.30
P_HARD_NEGATIVE = 0.10
P_DATED_THREAT = 0.30  # a media/regulator flag is phrased with a concrete deadline
P_FORWARD_DEADLINE = 0.5  # a regulator's forward sets a reply deadline
N_FLAGS = ((0, 1, 2, 3), (0.34, 0.40, 0.19, 0.07))
N_FLAGS_QUIET = ((0, 1, 2), (0.50, 0.35, 0.15))  # regulator forwards and `other` causes

# Relative frequency of each flag; the rarer, graver ones a little less often.
FLAG_WEIGHT = {
    "media_threat": 1.0, "regulator_threat": 1.0, "legal_threat": 1.0, "abusive_language": 0.8,
    "anger": 1.3, "violence_risk": 0.55, "self_harm_threat": 0.5, "group_complaint": 0.6,
    "repeat_complaint": 1.2, "vip_identity": 0.6, "excessive_demand": 0.8, "professional_claimant": 0.6,
}
MINDSET_WEIGHT = {"remedy": 3.0, "recognition": 1.5, "respect": 1.5, "venting": 1.2, "self_expression": 1.0, "revenge": 0.9}
# Flags make some mindsets likelier (an insulting caller is often venting).
MINDSET_AFFINITY = {
    "anger": {"venting": 2.0, "revenge": 1.5},
    "abusive_language": {"venting": 2.0, "revenge": 1.8},
    "professional_claimant": {"self_expression": 3.0, "remedy": 2.0},
    "media_threat": {"revenge": 1.5, "recognition": 1.3},
    "regulator_threat": {"recognition": 1.3, "remedy": 1.2},
    "legal_threat": {"revenge": 1.4, "recognition": 1.4},
    "repeat_complaint": {"respect": 2.0},
    "vip_identity": {"self_expression": 1.6, "respect": 1.6},
    "self_harm_threat": {"remedy": 1.5, "venting": 1.3},
}
EXCLUSIVE_FLAGS = {"anger": "abusive_language", "abusive_language": "anger"}
DATED_FLAGS = ("media_threat", "regulator_threat")
DEMAND_MINDSETS = {"remedy", "recognition", "respect"}

REPORTING_ENDINGS = ("称", "反映", "表示", "来电内容：", "反映：")
SLOT_RE = re.compile(r"\{(\w+)\}")
FIRST_PERSON_RE = re.compile(r"我(?!司)|你们|咱")
TRAILING_PUNCT = "。，；、 "
FIRST_PERSON_POOLS = {"S": ["我"], "O": ["我"], "Sp": ["我"], "Sd": ["我的", "我"], "co": ["你们", "你们公司", "你们"]}
CN_NUM = {2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十"}


# ---------------------------------------------------------------- the banks


@dataclass(frozen=True)
class Phrase:
    """One bank entry. `speech`: the customer's own words, quoted by third-person voices."""

    text: str
    flags: tuple[str, ...] = ()
    speech: bool = False
    policy: bool = False  # presupposes the customer's own policy: not for `other` notes


@dataclass(frozen=True)
class Banks:
    voices: dict[str, dict]
    slots: dict[str, Any]
    backgrounds: tuple[Phrase, ...]
    causes: dict[str, tuple[Phrase, ...]]
    cause_pairs: dict[str, tuple[str, ...]]
    flags: dict[str, dict[str, tuple[Phrase, ...]]]
    mindsets: dict[str, dict[str, tuple[Phrase, ...]]]
    hard_negatives: dict[str, dict[str, tuple[Phrase, ...]]]
    deadlines: dict[str, Any]
    enquiries: dict[str, Any]
    style: dict[str, Any]


def _phrase(item: str | dict, kind: str | None = None) -> Phrase:
    """A bank item is a string or {t: text, flags: [...], policy: bool}; `say` items are always speech."""
    if isinstance(item, dict):
        text, flags, policy = str(item["t"]), tuple(item.get("flags", ())), bool(item.get("policy", False))
    else:
        text, flags, policy = str(item), (), False
    speech = kind == "say" or (kind is None and bool(FIRST_PERSON_RE.search(SLOT_RE.sub("", text))))
    return Phrase(text=text, flags=flags, speech=speech, policy=policy)


def _kinded(block: dict[str, list]) -> dict[str, tuple[Phrase, ...]]:
    return {kind: tuple(_phrase(i, kind) for i in items) for kind, items in block.items()}


def _read(name: str) -> dict:
    with open(BANK_DIR / name, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@lru_cache(maxsize=1)
def load_banks() -> Banks:
    """Read every bank once and check its ids against the taxonomy, so a typo fails loudly."""
    tax = taxonomy()
    causes_raw = _read("causes.yaml")
    banks = Banks(
        voices=_read("voices.yaml")["voices"],
        slots=_read("slots.yaml"),
        backgrounds=tuple(_phrase(t) for t in _read("backgrounds.yaml")["backgrounds"]),
        causes={c: tuple(_phrase(i) for i in items) for c, items in causes_raw["causes"].items()},
        cause_pairs={c: tuple(v) for c, v in _read("cause_pairs.yaml")["pairs"].items()},
        flags={f: _kinded(b) for f, b in _read("flags.yaml")["flags"].items()},
        mindsets={m: _kinded(b) for m, b in _read("mindsets.yaml")["mindsets"].items()},
        hard_negatives={f: _kinded(b) for f, b in _read("hard_negatives.yaml")["hard_negatives"].items()},
        deadlines=_read("deadlines.yaml"),
        enquiries=_read("enquiries.yaml"),
        style=_read("style.yaml"),
    )
    _check_banks(banks, tax)
    return banks


def _check_banks(banks: Banks, tax: Taxonomy) -> None:
    problems = []
    for head, have, want in (
        ("causes", banks.causes, tax.cause_ids),
        ("flags", banks.flags, tax.flag_ids),
        ("mindsets", banks.mindsets, tax.mindset_ids),
        ("enquiry questions", banks.enquiries["questions"], tax.cause_ids),
    ):
        if set(have) != set(want):
            problems.append(f"{head}: missing {sorted(set(want) - set(have))}, unknown {sorted(set(have) - set(want))}")
    for main, secs in banks.cause_pairs.items():
        unknown = [c for c in (main, *secs) if c not in tax.causes]
        if unknown:
            problems.append(f"cause_pairs: unknown {unknown}")
    for phrases in banks.causes.values():
        for p in phrases:
            problems += [f"cause phrase flag {f}" for f in p.flags if f not in tax.flags]
    for f in banks.hard_negatives:
        if f not in tax.flags:
            problems.append(f"hard_negatives: unknown flag {f}")
    if problems:
        raise ValueError(f"{BANK_DIR}: " + "; ".join(problems))


# ---------------------------------------------------------------- one note


@dataclass
class Part:
    """One sentence of a note and the labels it carries.

    `drop` orders what may be cut when the note is too long (0 = never);
    labels are read from the parts that remain, so cutting stays consistent.
    """

    kind: str
    text: str
    rank: float
    causes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    mindsets: tuple[str, ...] = ()
    dated: bool = False
    drop: int = 0
    bare: str = ""  # the sentence without its reporting frame, for use after "客户称" or "诉求："
    speech: bool = False

    def __post_init__(self) -> None:
        self.bare = self.bare or self.text


@dataclass
class Ctx:
    """What one note needs while it is composed: its random source, voice and fixed slot values."""

    rng: random.Random
    banks: Banks
    voice_name: str
    voice: dict
    fixed: dict[str, str]
    group: str = "other"
    deadline_mode: str = "concrete"

    @property
    def third(self) -> bool:
        return self.voice["person"] == "third"


CALL_VOICE = {"person": "first", "kinds": ["say"], **FIRST_PERSON_POOLS, "openers": [""], "closings": [""]}


def _pick(rng: random.Random, seq: Sequence) -> Any:
    return seq[rng.randrange(len(seq))]


def _years_text(rng: random.Random, years: int) -> str:
    years = max(years, 2)
    if years in CN_NUM and rng.random() < 0.4:
        return CN_NUM[years]
    if years > 10 and rng.random() < 0.2:
        return "十几"
    return str(years)


def _amount(rng: random.Random, small: bool = False) -> str:
    """A sum of money in one of the ways notes write it."""
    if small:
        v = rng.randrange(100, 5000, 10)
        return _pick(rng, [f"{v}元", f"{v}块", f"{v}元", f"{v}.00元"])
    v = rng.randrange(2000, 20000, 100) if rng.random() < 0.5 else rng.randrange(10000, 300000, 1000)
    forms = [f"{v}元", f"{v}元", f"{v}块", f"¥{v:,}", f"{v}.00元", f"{v}元钱"]
    if v >= 10000 and v % 1000 == 0:
        forms += [f"{v / 10000:g}万元", f"{v / 10000:g}万"]
    return _pick(rng, forms)


NOTE_YEAR = 2025  # the year the notes are written in, so that a purchase date and "已交费N年" agree


def _date(rng: random.Random) -> tuple[str, int]:
    """A purchase date as notes write it, and the number of years since then."""
    y, m, d = rng.randint(2004, 2023), rng.randint(1, 12), rng.randint(1, 28)
    if rng.random() < 0.12:
        ago = rng.choice((1, 2))
        return (f"去年{m}月" if ago == 1 else "前年"), ago
    text = _pick(rng, [f"{y}年{m}月", f"{y}年", f"{y % 100:02d}年{m}月", f"{y}.{m}", f"{y}年{m}月{d}日",
                       f"{y}-{m:02d}-{d:02d}", f"{y}年{m}月份"])
    return text, NOTE_YEAR - y


def _recent_date(rng: random.Random) -> str:
    m, d = rng.randint(1, 12), rng.randint(1, 28)
    return _pick(rng, ["上个月", f"{m}月{d}日", "上周", "月初", "前几天", f"{m}月份", "上上周"])


def _fixed_slots(rng: random.Random, slots: dict) -> dict[str, str]:
    """Slot values held for the whole note, so a relation or product stays the same throughout."""
    surname = _pick(rng, slots["surnames"])
    surname2 = _pick(rng, [s for s in slots["surnames"] if s != surname])
    city = _pick(rng, slots["cities"])
    age = rng.randint(45, 82) if rng.random() < 0.7 else rng.randint(26, 44)
    date, years = _date(rng)
    fixed = {
        "surname": surname, "surname2": surname2, "city": city, "age": str(age),
        "years": _years_text(rng, years), "relation": _pick(rng, slots["relations"]),
        "product": _pick(rng, slots["products"]), "date": date, "date2": _recent_date(rng),
        "company": _pick(rng, slots["companies"]), "gift": _pick(rng, slots["gifts"]),
        "time": _pick(rng, slots["times"]),
        "phone": f"1{_pick(rng, '3578')}{rng.randint(0, 9)}****{rng.randint(0, 9999):04d}",
    }
    fixed["elder"] = fixed["relation"] if fixed["relation"] in slots["elders"] else _pick(rng, slots["elders"])
    fixed["elder_age"] = str(rng.randint(68, 90))
    fixed["name"] = _pick(rng, slots["name_patterns"]).replace("{surname}", surname)
    fixed["agent"] = _pick(rng, slots["agent_patterns"]).replace("{surname2}", surname2)
    fixed["branch"] = _pick(rng, slots["branches"]).replace("{city}", city)
    return fixed


def fill(ctx: Ctx, template: str, first_person: bool) -> str:
    """Fill the slots of a bank phrase for this note's voice.

    Pronoun slots take the voice's words, or first-person words when the
    phrase is the customer speaking; a subject at the very start may be
    dropped, as Chinese notes often do.
    """
    rng, slots = ctx.rng, ctx.banks.slots
    pools = FIRST_PERSON_POOLS if first_person else ctx.voice

    def one(match: re.Match) -> str:
        key = match.group(1)
        if key in ("S", "O", "Sp", "Sd", "co"):
            if key == "S" and match.start() == 0 and rng.random() < 0.22:
                return ""
            return _pick(rng, pools[key])
        if key in ctx.fixed:
            return ctx.fixed[key]
        if key == "amount":
            return _amount(rng)
        if key == "amount2":
            return _amount(rng, small=True)
        if key in ("pct", "pct2"):
            return _pick(rng, slots[key])
        if key == "fault":
            return _pick(rng, slots["faults"][ctx.group])
        if key == "n":
            return _pick(rng, ["两", "三", "四", "2", "3", "5", "好几"])
        if key == "digits4":
            return f"{rng.randint(0, 9999):04d}"
        if key == "deadline":
            return _pick(rng, ctx.banks.deadlines["concrete" if ctx.deadline_mode == "concrete" else "vague"])
        if key in ("point", "span"):
            return _pick(rng, ctx.banks.deadlines[key + "s"])
        raise KeyError(f"unknown slot {{{key}}} in phrase: {template}")

    text = SLOT_RE.sub(one, template)
    return text.replace("第两", "第二")


def _strip(text: str) -> str:
    return text.rstrip(TRAILING_PUNCT)


def speech(ctx: Ctx, text: str) -> tuple[str, str]:
    """The customer's words as this voice writes them: as is, or framed as reported speech.

    Returns the framed sentence and the bare quote, which reads better right
    after an opener that already says "客户称".
    """
    if not ctx.third:
        return text, text
    frame = _pick(ctx.rng, ctx.banks.style["speech_frames"])
    x = _strip(text)
    if "“" in frame and ctx.rng.random() < 0.25 and not x.endswith(("？", "！")):
        x += "！"
    out = frame.replace("{x}", x).replace("{verb}", _pick(ctx.rng, ctx.voice["report"]))
    bare = f"“{x}”" if ctx.rng.random() < 0.5 else x
    return out.replace("{S}", _pick(ctx.rng, ctx.voice["S"]) or "客户"), bare


def render(ctx: Ctx, phrase: Phrase, lead_p: float = 0.0) -> tuple[str, str]:
    """One bank phrase in this note's voice, as (sentence, bare sentence).

    Short topic phrases (a bare "代签名") get a tag frame; third-person
    narrative sometimes gets a reporting lead ("客户反映……") so that the
    same fact appears both as the agent's summary and as a report.
    """
    rng = ctx.rng
    if phrase.speech:
        return speech(ctx, fill(ctx, phrase.text, first_person=True))
    text = fill(ctx, phrase.text, first_person=not ctx.third)
    if "{" not in phrase.text and len(phrase.text) <= 8:
        frames = ctx.banks.style["tag_frames"]["third" if ctx.third else "first"]
        tagged = _pick(rng, frames).replace("{x}", text)
        return tagged, tagged
    if ctx.third and lead_p and not phrase.text.startswith("{S}") and rng.random() < lead_p:
        return _pick(rng, ctx.voice["S"]) + _pick(rng, ctx.voice["report"]) + text, text
    return text, text


def phrase_for(ctx: Ctx, block: dict[str, tuple[Phrase, ...]]) -> Phrase:
    """A phrase of a flag/mindset/hard-negative block whose kind fits the voice (say, note, phone, onsite)."""
    kinds = [k for k in ctx.voice["kinds"] if k in block]
    pool = [p for k in kinds for p in block[k] if not (p.policy and ctx.group == "other")]
    return _pick(ctx.rng, pool)


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    total = sum(weights.values())
    x = rng.random() * total
    for key, w in weights.items():
        x -= w
        if x <= 0:
            return key
    return next(reversed(weights))


def _balanced(base: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
    """Base weights nudged toward their target share, so that every label reaches its floor."""
    total, wsum = sum(counts.values()), sum(base.values())
    return {k: w * (total * w / wsum + 1) / (counts.get(k, 0) + 1) for k, w in base.items()}


# ---------------------------------------------------------------- choosing labels


@dataclass
class Plan:
    """The labels of one complaint, chosen before any text is written."""

    main: str
    secondary: list[str]
    flags: list[str]
    mindsets: list[str]
    dated: set[str] = field(default_factory=set)  # flags whose phrase carries a deadline


def choose_secondary(rng: random.Random, banks: Banks, main: str) -> list[str]:
    """0-2 secondary causes; a known pairing (surrender behind a mis-sale) when there is one."""
    if main == "other" or rng.random() >= P_SECONDARY:
        return []
    pool = [c for c in banks.causes if c not in (main, "other")]
    out: list[str] = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        pairs = [c for c in banks.cause_pairs.get(main, ()) if c not in out]
        cand = _pick(rng, pairs) if pairs and rng.random() < 0.6 else _pick(rng, [c for c in pool if c not in out])
        out.append(cand)
    return out


def choose_flags(rng: random.Random, counts: dict[str, int], forced: Sequence[str], quiet: bool) -> list[str]:
    """0-3 flags, never anger with abusive_language (the spec makes them exclusive)."""
    sizes, probs = N_FLAGS_QUIET if quiet else N_FLAGS
    k = rng.choices(sizes, probs)[0]
    chosen = list(forced)
    for _ in range(k):
        weights = {f: w for f, w in _balanced(FLAG_WEIGHT, counts).items()
                   if f not in chosen and EXCLUSIVE_FLAGS.get(f) not in chosen}
        chosen.append(_weighted(rng, weights))
    return chosen


def choose_mindsets(rng: random.Random, counts: dict[str, int], flags: Iterable[str]) -> list[str]:
    """1-2 mindsets, main first, leaning on the flags; an excessive demand is a remedy or revenge."""
    flags = set(flags)
    base = dict(MINDSET_WEIGHT)
    for f in flags:
        for m, mult in MINDSET_AFFINITY.get(f, {}).items():
            base[m] *= mult
    chosen: list[str] = []
    for _ in range(1 if rng.random() < 0.6 else 2):
        weights = {m: w for m, w in _balanced(base, counts).items() if m not in chosen}
        chosen.append(_weighted(rng, weights))
    if "excessive_demand" in flags and not {"remedy", "revenge"} & set(chosen):
        chosen[-1] = "remedy" if rng.random() < 0.75 else "revenge"
    return chosen


def plan_complaint(rng: random.Random, banks: Banks, main: str, voice: dict, counts: dict[str, dict[str, int]]) -> Plan:
    forced = list(voice.get("forced_flags", []))
    flags = choose_flags(rng, counts["flags"], forced, quiet=bool(forced) or main == "other")
    dated = {f for f in flags if f in DATED_FLAGS and f not in forced and rng.random() < P_DATED_THREAT}
    return Plan(main=main, secondary=choose_secondary(rng, banks, main), flags=flags,
                mindsets=choose_mindsets(rng, counts["mindsets"], flags), dated=dated)


# ---------------------------------------------------------------- composing parts


def jitter(rng: random.Random, base: float, width: float = 1.3) -> float:
    return base + rng.uniform(-width, width)


def dated_threat(ctx: Ctx, flag: str) -> tuple[str, str]:
    """A media/regulator threat tied to a concrete deadline ("周五前不解决就上电视")."""
    dl, rng = ctx.banks.deadlines, ctx.rng
    use_note = ctx.third and rng.random() < 0.5
    tmpl = _pick(rng, dl["note_templates" if use_note else "say_templates"])
    act = _pick(rng, dl["actions"][flag]["note" if use_note else "say"])
    text = (tmpl.replace("{deadline}", _pick(rng, dl["concrete"])).replace("{cond_note}", _pick(rng, dl["conditions_note"]))
            .replace("{cond}", _pick(rng, dl["conditions"])).replace("{act_note}", act).replace("{act}", act))
    if use_note:
        note = fill(ctx, text, first_person=False)
        return note, note
    return speech(ctx, fill(ctx, text, first_person=True))


def cause_parts(ctx: Ctx, plan: Plan) -> list[Part]:
    rng, banks = ctx.rng, ctx.banks
    parts = []
    n_main = 2 if rng.random() < 0.4 else 1
    for i, ph in enumerate(rng.sample(banks.causes[plan.main], n_main)):
        text, bare = render(ctx, ph, lead_p=0.3)
        parts.append(Part("cause", text, jitter(rng, 2.0 + 0.3 * i, 0.9), causes=(plan.main,) if i == 0 else (),
                          flags=ph.flags, drop=0 if i == 0 else 2, bare=bare, speech=ph.speech))
    for c in plan.secondary:
        ph = _pick(rng, banks.causes[c])
        text, bare = render(ctx, ph, lead_p=0.3)
        parts.append(Part("cause_secondary", text, jitter(rng, 3.0), causes=(c,), flags=ph.flags, drop=2,
                          bare=bare, speech=ph.speech))
    return parts


def flag_parts(ctx: Ctx, plan: Plan, forced: Sequence[str]) -> list[Part]:
    rng, parts = ctx.rng, []
    for f in plan.flags:
        if f in forced:
            continue
        if f in plan.dated:
            (text, bare), is_speech = dated_threat(ctx, f), True
        else:
            ph = phrase_for(ctx, ctx.banks.flags[f])
            (text, bare), is_speech = render(ctx, ph), ph.speech
        parts.append(Part("flag", text, jitter(rng, 4.0, 1.6), flags=(f,), dated=f in plan.dated, bare=bare, speech=is_speech))
    return parts


def mindset_parts(ctx: Ctx, plan: Plan) -> list[Part]:
    rng, parts = ctx.rng, []
    for i, m in enumerate(plan.mindsets):
        block = ctx.banks.mindsets[m]
        n = 2 if i == 0 and rng.random() < 0.35 else 1
        seen: set[str] = set()
        for j in range(n):
            ph = phrase_for(ctx, block)
            if ph.text in seen:
                continue
            seen.add(ph.text)
            text, bare = render(ctx, ph)
            parts.append(Part("mindset", text, jitter(rng, 5.0 + 0.3 * i, 1.2), mindsets=(m,) if j == 0 else (),
                              drop=0 if j == 0 else 2, bare=bare, speech=ph.speech))
    return parts


def hard_negative_part(ctx: Ctx, flags: Iterable[str]) -> Part | None:
    """A look-alike of a flag the note does not have; never next to the real thing."""
    present = set(flags)
    options = [f for f, block in ctx.banks.hard_negatives.items()
               if f not in present and any(k in block for k in ctx.voice["kinds"])]
    if not options:
        return None
    ph = phrase_for(ctx, ctx.banks.hard_negatives[_pick(ctx.rng, options)])
    text, bare = render(ctx, ph)
    return Part("hard_negative", text, jitter(ctx.rng, 4.0, 2.0), drop=5, bare=bare, speech=ph.speech)


def background_part(ctx: Ctx, p: float) -> Part | None:
    if ctx.rng.random() >= p:
        return None
    ph = _pick(ctx.rng, ctx.banks.backgrounds)
    text, bare = render(ctx, ph)
    return Part("background", text, jitter(ctx.rng, 1.0, 0.6), drop=3, bare=bare)


def complaint_parts(ctx: Ctx, plan: Plan, transcript: bool) -> list[Part]:
    """Every sentence of a complaint, each holding the labels it shows."""
    rng, voice = ctx.rng, ctx.voice
    forced = list(voice.get("forced_flags", []))
    vague = bool(set(plan.flags) & set(DATED_FLAGS)) and not plan.dated
    ctx.deadline_mode = "vague" if vague else "concrete"
    parts: list[Part] = []
    if not transcript:
        opener = fill(ctx, _pick(rng, voice["openers"]), first_person=not ctx.third)
        parts.append(Part("opener", opener, -math.inf, flags=tuple(forced)))
    bg = background_part(ctx, 0.35 if plan.main == "other" else 0.9 if ctx.voice_name == "letter" else 0.7)
    parts += [bg] if bg else []
    parts += cause_parts(ctx, plan)
    parts += flag_parts(ctx, plan, forced)
    parts += mindset_parts(ctx, plan)
    if rng.random() < P_HARD_NEGATIVE:
        hn = hard_negative_part(ctx, plan.flags)
        parts += [hn] if hn else []
    if ctx.voice_name == "regulator":
        first_m = min((p for p in parts if p.kind == "mindset"), key=lambda p: p.rank)
        if first_m.speech or set(first_m.mindsets) & DEMAND_MINDSETS:  # "诉求：" only before a demand
            first_m.text = _pick(rng, voice["demand_leads"]) + first_m.bare
        for p in parts:
            if p.kind == "mindset":
                p.rank = 6.0 + p.rank / 10  # the forward states the demand last
        dated = rng.random() < P_FORWARD_DEADLINE
        close = _pick(rng, voice["deadline_closings" if dated else "plain_closings"])
        parts.append(Part("closing", close, math.inf, dated=dated))
    elif not transcript and rng.random() < 0.45:
        parts.append(Part("closing", fill(ctx, _pick(rng, voice["closings"]), first_person=not ctx.third), math.inf, drop=4))
    return parts


def enquiry_parts(ctx: Ctx, cause: str, transcript: bool) -> list[Part]:
    """A plain question: low risk, no flags, no mindset; the question names the cause."""
    rng, enq = ctx.rng, ctx.banks.enquiries
    person = "third" if ctx.third else "first"
    qs = rng.sample(enq["questions"][cause], 2 if rng.random() < 0.2 else 1)
    q = "，另外".join(fill(ctx, x, first_person=True) for x in qs)
    if not ctx.third:
        q += "？"
    opener = _pick(rng, enq["openers"]["first" if transcript else person])
    if ctx.voice_name == "counter" and not transcript:
        opener = "客户到柜面咨询"
    parts = [Part("question", fill(ctx, opener, first_person=not ctx.third) + q, 0.0, causes=(cause,))]
    bg = background_part(ctx, 0.35)
    if bg:
        bg.rank = 1.0
        parts.append(bg)
    if rng.random() < 0.15:
        parts.append(Part("hard_negative", fill(ctx, _pick(rng, enq["asides"]), first_person=True), 2.0, drop=5))
    if not transcript and rng.random() < 0.6:
        parts.append(Part("closing", _pick(rng, enq["closings"][person]), math.inf, drop=4))
    return parts


# ---------------------------------------------------------------- surface


def _end(rng: random.Random, voice_name: str, kind: str, last: bool) -> str:
    """The punctuation after a sentence, by voice: formal notes are tidier than chat."""
    if voice_name == "wechat":
        return _pick(rng, ["，", "，", " ", "。", "。", "！", "...", "\n"]) if not last else _pick(rng, ["", "。", "！", "？？"])
    emphatic = kind in ("flag", "mindset") and voice_name in ("customer", "letter")
    if last:
        return "！" if emphatic and rng.random() < 0.35 else "。"
    if emphatic and rng.random() < 0.25:
        return "！"
    return _pick(rng, ["。", "。", "。", "，", "，", "；"]) if voice_name != "customer" else _pick(rng, ["。", "，", "，", "。"])


def _connector(ctx: Ctx, part: Part, first_body: bool) -> str:
    con = ctx.banks.style["connectors"]
    if first_body:
        if not ctx.third and part.kind in ("flag", "mindset") and ctx.rng.random() < 0.15:
            return _pick(ctx.rng, con["flag_first" if part.kind == "flag" else "mindset_first"])
        return ""
    if ctx.rng.random() >= 0.22:
        return ""
    key = {"cause_secondary": "cause_secondary", "mindset": "mindset"}.get(part.kind, "any")
    if key == "mindset" and ctx.third and not part.speech:
        key = "mindset_note"  # "现要求……", "故客户要求……": only before the agent's own summary
    return _pick(ctx.rng, con[key])


def join_note(ctx: Ctx, parts: list[Part]) -> str:
    """Order the sentences and join them with varied connectors and punctuation."""
    rng = ctx.rng
    ordered = sorted(parts, key=lambda p: p.rank)
    head = [p for p in ordered if p.rank == -math.inf]
    tail = [p for p in ordered if p.rank == math.inf]
    body = [p for p in ordered if p not in head and p not in tail]
    out = "".join(p.text for p in head)
    reporting = out.endswith(REPORTING_ENDINGS)
    if out and out[-1] not in "，。：！？\n、 】" and body and not reporting:
        out += "，"
    for i, p in enumerate(body):
        # after "客户来电称" the first sentence drops its own "客户称：" frame
        text = _strip(p.bare if i == 0 and reporting else p.text)
        out += _connector(ctx, p, i == 0) + text
        if not text.endswith(("？", "！", "…")):
            out += _end(rng, ctx.voice_name, p.kind, last=i == len(body) - 1)
    for p in tail:
        if p.text and out and out[-1] not in "，。！？\n… ":
            out += " " if ctx.voice_name == "wechat" else "。"
        out += p.text
    return out.strip()


def transcript_text(ctx: Ctx, parts: list[Part], fmt: str, optional_turns: bool) -> str:
    """A call transcript: the customer's sentences in their turns, the agent's harmless turns between."""
    rng, tr = ctx.rng, ctx.banks.style["transcript"]
    cust, agent = _pick(rng, tr["labels"][fmt])
    body = sorted(parts, key=lambda p: p.rank)
    enquiry = any(p.kind == "question" for p in body)
    used: set[str] = set()

    def agent_line(key: str) -> str:
        options = [t for t in tr[key] if t not in used] or tr[key]
        line = _pick(rng, options)
        used.add(line)
        return line

    turns: list[tuple[str, str]] = [(agent, fill(ctx, _pick(rng, tr["agent_greet"]), True))]
    if not enquiry:
        turns.append((cust, fill(ctx, _pick(rng, tr["customer_open"]), True)))
    i = 0
    while i < len(body):
        chunk = [body[i].text]
        if i + 1 < len(body) and rng.random() < 0.35:
            chunk.append(body[i + 1].text)
            i += 1
        i += 1
        turns.append((cust, "，".join(_strip(c) for c in chunk)))
        if optional_turns and i < len(body) and rng.random() < 0.55:
            key = "agent_enquiry" if enquiry else "agent_ask" if rng.random() < 0.4 else "agent_ack"
            turns.append((agent, agent_line(key)))
    if enquiry and optional_turns and rng.random() < 0.7:
        turns.append((agent, agent_line("agent_enquiry")))
    if optional_turns and rng.random() < (0.1 if enquiry else 0.3):
        turns.append((agent, _pick(rng, tr["agent_regulator"])))
    if optional_turns and rng.random() < 0.4:
        turns.append((cust, _pick(rng, tr["customer_filler"])))
    turns.append((agent, _pick(rng, tr["agent_close"])))
    sep = "\n" if rng.random() < 0.7 else " "
    if fmt == "asr":
        return sep.join(label + _asr(rng, text, label == cust, tr["asr_fillers"]) for label, text in turns)
    return sep.join(label + (t if t.endswith(("。", "？", "！", "”")) else _strip(t) + "。") for label, t in turns)


def _asr(rng: random.Random, text: str, customer: bool, fillers: Sequence[str]) -> str:
    """Speech-recogniser output: no punctuation, and the customer's hesitations kept."""
    chunks = [c for c in re.split(r"[，。！？；：、“”（）【】\s…]+", text) if c]
    out = []
    for c in chunks:
        if customer and rng.random() < 0.3:
            out.append(_pick(rng, fillers))
        out.append(c)
    return " ".join(out)


def to_traditional(rng: random.Random, text: str, mixed: bool) -> str:
    """Traditional script (Hong Kong/Taiwan customers, or a system that mixes both)."""
    conv = _opencc()
    if not mixed:
        return conv.convert(text)
    pieces = re.split(r"(?<=[。！？\n])", text)
    flips = [rng.random() < 0.5 for _ in pieces]
    if not any(flips):
        flips[0] = True
    return "".join(conv.convert(p) if f else p for p, f in zip(pieces, flips))


@lru_cache(maxsize=1)
def _opencc():
    import opencc

    return opencc.OpenCC("s2t")


def add_noise(rng: random.Random, banks: Banks, text: str) -> tuple[str, str]:
    """Light typing noise: homophone slips from the bank's table, or full-width digits."""
    if re.search(r"[0-9]", text) and rng.random() < 0.4:
        return text.translate(str.maketrans("0123456789", "０１２３４５６７８９")), "fullwidth"
    table = [(a, b) for a, b in banks.style["typos"].items() if a in text]
    if not table:
        return text, ""
    for a, b in rng.sample(table, min(len(table), rng.randint(1, 3))):
        text = text.replace(a, b, 1)
    return text, "typo"


# ---------------------------------------------------------------- assembling a record


def labels_of(parts: Iterable[Part], tax: Taxonomy) -> dict[str, Any]:
    """The four heads, read from the parts that made it into the note."""
    parts = list(parts)
    causes: list[str] = []
    for p in sorted(parts, key=lambda p: (p.kind != "cause" and p.kind != "question", p.rank)):
        causes += [c for c in p.causes if c not in causes]
    flags = {f for p in parts for f in p.flags}
    if "abusive_language" in flags:
        flags.discard("anger")  # insults take abusive_language alone
    mindsets: list[str] = []
    for p in parts:
        mindsets += [m for m in p.mindsets if m not in mindsets]
    dated = any(p.dated for p in parts)
    level = tax.risk_floor(flags)
    if dated:
        level = "high"
    ordered_flags = [f for f in tax.flag_ids if f in flags]
    return {"cause": causes[:3], "risk_level": level, "risk_flags": ordered_flags, "mindset": mindsets[:2]}


def _render(ctx: Ctx, parts: list[Part], transcript: str | None, optional_turns: bool = True) -> str:
    if transcript:
        body = [p for p in parts if p.kind not in ("opener", "closing")]
        return transcript_text(ctx, body, transcript, optional_turns)
    return join_note(ctx, parts)


def fit_length(ctx: Ctx, parts: list[Part], transcript: str | None) -> tuple[str, list[Part]] | None:
    """Cut optional sentences (hard negative, closing, background, extras) until the note fits."""
    state = random.Random(ctx.rng.random())
    parts = list(parts)
    for optional_turns in (True, False):
        while True:
            ctx.rng = random.Random(state.random())
            text = _render(ctx, parts, transcript, optional_turns)
            if len(text) <= MAX_LEN:
                return (text, parts) if len(text) >= MIN_LEN else None
            droppable = [p for p in parts if p.drop]
            if not droppable:
                break
            parts.remove(max(droppable, key=lambda p: (p.drop, p.rank)))
    return None


class Generator:
    """Composes notes one at a time, keeping label counts for balance and texts for uniqueness."""

    def __init__(self, seed: int, banks: Banks | None = None):
        self.rng = random.Random(seed)
        self.banks = banks or load_banks()
        self.tax = taxonomy()
        self.counts: dict[str, dict[str, int]] = {"flags": {}, "mindsets": {}}
        self.seen: set[str] = set()

    def _voice(self, enquiry: bool, transcript: str | None) -> tuple[str, dict]:
        if transcript:
            return "call", CALL_VOICE
        voices = self.banks.voices
        if enquiry:
            name = _weighted(self.rng, {"agent_summary": 0.4, "counter": 0.15, "customer": 0.2, "wechat": 0.25})
        else:
            name = _weighted(self.rng, {k: v["weight"] for k, v in voices.items()})
        return name, voices[name]

    def one(self, main: str, enquiry: bool, transcript: str | None) -> tuple[str, dict[str, Any], str]:
        """One note: its text, its labels and its voice name. Retries until it is new and fits."""
        for _ in range(60):
            name, voice = self._voice(enquiry, transcript)
            ctx = Ctx(self.rng, self.banks, name, voice, _fixed_slots(self.rng, self.banks.slots),
                      group=self.tax.group_of(main))
            if enquiry:
                parts = enquiry_parts(ctx, main, bool(transcript))
            else:
                plan = plan_complaint(self.rng, self.banks, main, voice, self.counts)
                parts = complaint_parts(ctx, plan, bool(transcript))
            fitted = fit_length(ctx, parts, transcript)
            if fitted is None or fitted[0] in self.seen:
                continue
            text, kept = fitted
            labels = labels_of(kept, self.tax)
            if labels["cause"][:1] != [main]:
                continue
            self.seen.add(text)
            for f in labels["risk_flags"]:
                self.counts["flags"][f] = self.counts["flags"].get(f, 0) + 1
            for m in labels["mindset"]:
                self.counts["mindsets"][m] = self.counts["mindsets"].get(m, 0) + 1
            return text, labels, name
        raise RuntimeError(f"could not compose a new note for {main} in 60 tries")


def _cause_schedule(rng: random.Random, causes: list[str], n: int) -> list[str]:
    """Main causes in shuffled blocks of all 31, so each is main n/31 times give or take one."""
    out: list[str] = []
    while len(out) < n:
        block = list(causes)
        rng.shuffle(block)
        out += block
    return out[:n]


def generate_corpus(n: int, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """`n` labelled notes, the same for the same seed (one random.Random(seed), no global state)."""
    gen = Generator(seed)
    rng = gen.rng
    schedule = _cause_schedule(rng, gen.tax.cause_ids, n)
    idx = list(range(n))
    enquiries = set(rng.sample(idx, round(n * SHARE_ENQUIRY)))
    transcripts = set(rng.sample(idx, round(n * SHARE_TRANSCRIPT)))
    traditional = set(rng.sample(idx, round(n * SHARE_TRADITIONAL)))
    noisy = set(rng.sample(idx, round(n * SHARE_NOISE)))
    fmts = ("colon", "colon", "bracket", "asr")
    rows = []
    for i in range(n):
        fmt = _pick(rng, fmts) if i in transcripts else None
        text, labels, voice = gen.one(schedule[i], i in enquiries, fmt)
        style = ("enquiry_" if i in enquiries else "") + (f"transcript_{fmt}" if fmt else voice)
        if i in noisy:
            noised, how = add_noise(rng, gen.banks, text)
            if noised not in gen.seen and how:
                gen.seen.add(noised)
                text, style = noised, f"{style}+{how}"
        if i in traditional:
            mixed = rng.random() < 0.25
            converted = to_traditional(rng, text, mixed)
            if converted not in gen.seen:
                gen.seen.add(converted)
                text, style = converted, style + ("+mixed_script" if mixed else "+traditional")
        rows.append({"id": f"g-{i + 1:05d}", "text": text, **labels, "source": "generated", "style": style})
    cols = ["id", "text", "cause", "risk_level", "risk_flags", "mindset", "source", "style"]
    return pd.DataFrame(rows, columns=cols)


def write_jsonl(df: pd.DataFrame, path: Path | str) -> None:
    """JSONL as the spec wants it: UTF-8, lists as JSON arrays."""
    with open(path, "w", encoding="utf-8") as fh:
        for rec in df.to_dict(orient="records"):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate labelled complaint notes from the phrase banks.")
    ap.add_argument("-n", type=int, default=2600, help="number of notes (default 2600)")
    ap.add_argument("-o", "--output", required=True, help="JSONL file to write")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    df = generate_corpus(args.n, seed=args.seed)
    write_jsonl(df, args.output)
    print(f"wrote {len(df)} notes to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
