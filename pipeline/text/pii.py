"""Personal numbers in a note: found, and masked before anyone sees them.

Phones, mainland ID-card numbers, bank cards and e-mail addresses are masked
wherever a note is shown or stored (facts, the handler's card, logs). Masks
keep the text's length and separators, so a span found in the original text
is still valid in the masked one.

The regexes live in data/lexicon/facts.yaml (`patterns`), next to the other
fact patterns. A number right after a policy-number cue (保单号……) is a policy
number, not personal data, and is left alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from pipeline.knowledge import lexicon_yaml

#: Detection order: earlier kinds win an overlap (an 18-digit ID is not a bank card).
PII_KINDS: tuple[str, ...] = ("email", "id_number", "bank_card", "phone", "phone_landline")


@dataclass(frozen=True)
class PiiMatch:
    kind: str  # email, id_number, bank_card, phone (mobile or landline)
    start: int
    end: int
    masked: str


@lru_cache(maxsize=1)
def _lexicon() -> dict:
    return lexicon_yaml("facts.yaml")


def expand(pattern: str, fragments: dict[str, str]) -> str:
    """Replace `{NAME}` placeholders with fragments (no str.format: regexes hold braces)."""
    for name, frag in fragments.items():
        pattern = pattern.replace("{" + name + "}", frag)
    return pattern


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    lex = _lexicon()
    frags, pats = lex["fragments"], lex["patterns"]
    names = {"email": "email", "id_number": "id_number", "bank_card": "bank_card",
             "phone": "phone_mobile", "phone_landline": "phone_landline", "policy_number": "policy_number"}
    return {kind: re.compile(expand(pats[key], frags)) for kind, key in names.items()}


@lru_cache(maxsize=1)
def _candidate() -> re.Pattern | None:
    """The lexicon's `pii_candidate`: a pattern every personal number's match contains (None: none given).
    Most notes hold no run of seven digits and no '@', and for them the five scans can be skipped."""
    raw = _lexicon().get("pii_candidate")
    return re.compile(raw) if raw else None


def _mask_chars(s: str, keep: set[int]) -> str:
    """Star every digit or letter whose index (among digits/letters) is not kept."""
    out, k = [], 0
    for ch in s:
        if ch.isascii() and ch.isalnum():
            out.append(ch if k in keep else "*")
            k += 1
        else:
            out.append(ch)
    return "".join(out)


def _n_alnum(s: str) -> int:
    return sum(1 for ch in s if ch.isascii() and ch.isalnum())


def mask_value(kind: str, s: str) -> str:
    """The masked form of one personal number; same length, separators kept."""
    if kind == "email":
        local, _, domain = s.partition("@")
        return local[:1] + "*" * (len(local) - 1) + "@" + domain
    n = _n_alnum(s)
    if kind == "phone":  # hide the four digits before the last four: 138****5678
        keep = set(range(n)) - set(range(max(0, n - 8), n - 4))
    elif kind == "phone_landline":  # keep the area code and the last four digits
        area, _, local = s.partition("-")
        return area + "-" + _mask_chars(local, set(range(_n_alnum(local) - 4, _n_alnum(local))))
    elif kind == "id_number":  # first 3 and last 4: birth date and region hidden
        keep = set(range(3)) | set(range(n - 4, n))
    else:  # bank card: first 4 and last 4
        keep = set(range(4)) | set(range(n - 4, n))
    return _mask_chars(s, keep)


def _policy_spans(text: str) -> list[tuple[int, int]]:
    return [m.span("value") for m in _patterns()["policy_number"].finditer(text)]


def overlaps(span: tuple[int, int], taken: Iterable[tuple[int, int]]) -> bool:
    """Whether a half-open span shares a character with any of `taken`."""
    return any(span[0] < e and s < span[1] for s, e in taken)


def find_pii(text: str, skip: Iterable[tuple[int, int]] = ()) -> list[PiiMatch]:
    """Every personal number in the text, in text order, without overlaps.

    `skip` holds spans already claimed by another fact (e.g. policy numbers).
    """
    candidate = _candidate()
    if candidate is not None and candidate.search(text) is None:
        return []
    taken: list[tuple[int, int]] = list(skip) + _policy_spans(text)
    found: list[PiiMatch] = []
    pats = _patterns()
    for kind in PII_KINDS:
        for m in pats[kind].finditer(text):
            if overlaps(m.span(), taken):
                continue
            label = "phone" if kind == "phone_landline" else kind
            found.append(PiiMatch(label, m.start(), m.end(), mask_value(kind, m.group())))
            taken.append(m.span())
    return sorted(found, key=lambda p: p.start)


def mask_pii(text: str) -> str:
    """The text with phones, ID cards, bank cards and e-mails masked; same length."""
    if not text:
        return text
    out, pos = [], 0
    for p in find_pii(text):
        out.append(text[pos:p.start])
        out.append(p.masked)
        pos = p.end
    out.append(text[pos:])
    return "".join(out)
