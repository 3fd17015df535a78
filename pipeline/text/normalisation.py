"""Normalisation: what the model reads, kept apart from what the handler sees.

A note arrives in simplified, traditional or mixed script, sometimes as a
call transcript with speaker turns. The model must read one canonical form,
and a threat spoken by the agent ("您可以向监管部门反映") must never be read as
the customer's. The original text is always kept for output.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable

from pipeline.text.prefilter import screen

#: What the model reads at most; longer notes keep their full text for output.
MAX_MODEL_CHARS = 3000

_TIME = r"(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\]?\)?)"


class TurnLexicon:
    """The speaker-turn patterns, compiled from the lexicon file `turns.yaml` (roles, unnamed speakers,
    what staff say, the agent's statement of the case). Built once per process, on the first note."""

    _LISTS = ("customer_roles", "agent_roles", "address_forms", "agent_says", "customer_says")
    _PATTERNS = ("kin_pattern", "staff_number_pattern", "unnamed_pattern", "case_statement_pattern",
                 "suggestion_pattern")

    def __init__(self, raw: dict, where: str) -> None:
        missing = [k for k in self._LISTS + self._PATTERNS if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        for key in self._LISTS:
            if not isinstance(raw[key], list) or not all(isinstance(w, str) and w for w in raw[key]):
                raise ValueError(f"{where}: {key} must be a list of words")
        compiled: dict[str, re.Pattern] = {}
        for key in self._PATTERNS:
            try:
                compiled[key] = re.compile(raw[key])
            except (re.error, TypeError) as exc:
                raise ValueError(f"{where}: {key} does not compile: {exc}") from None
        kin, staff, unnamed = raw["kin_pattern"], raw["staff_number_pattern"], raw["unnamed_pattern"]
        roles = sorted(set(raw["customer_roles"]) | set(raw["agent_roles"]), key=lambda r: (-len(r), r))
        named = "|".join([kin, staff] + [re.escape(r) for r in roles])
        role = f"{named}|{unnamed}"
        # a speaker label: optional timestamp, role (optionally bracketed), then a colon, a closing
        # bracket, or (ASR style, named roles only) a space; it must start a line
        self.turn = re.compile(
            rf"^[ \t]*(?:{_TIME}[ \t]*)?(?:[\[【(（]\s*(?P<b>{role})\s*[\]】)）]|(?P<r>{role})(?:[ \t]*{_TIME})?(?=[ \t]*[:：])"
            rf"|(?P<s>{named})(?:[ \t]*{_TIME})?(?=[ \t]+\S|[ \t]*$))[ \t]*[:：]?[ \t]*",
            re.MULTILINE)
        # inline turns on one line ("客户：……坐席：……"): colon or bracket required
        self.inline = re.compile(rf"[\[【]\s*(?P<b>{role})\s*[\]】]|(?:(?<=[。！？!?；;，,…—\s])|^)(?P<r>{role})[ \t]*[:：]")
        self.inline_screen = screen(self.inline)
        # one-line ASR with labels between spaces ("坐席 您好 请问 客户 我想问一下"): named roles that are not
        # also forms of address, and only when the note starts with one
        address = set(raw["address_forms"])
        spoken = "|".join([kin, staff] + [re.escape(r) for r in roles if r not in address])
        self.spaced = re.compile(rf"(?:(?<=\s)|^)(?P<r>{spoken})(?=[ \t]+\S)[ \t]+")
        self.spaced_start = re.compile(rf"^(?:{spoken})[ \t]+\S")
        self.customer_role = re.compile(rf"(?:{kin}|{'|'.join(re.escape(r) for r in raw['customer_roles'])})")
        self.unnamed = compiled["unnamed_pattern"]
        self.agent_says = re.compile("|".join(re.escape(w) for w in raw["agent_says"]))
        self.customer_says = re.compile("|".join(re.escape(w) for w in raw["customer_says"]))
        self.case_statement = compiled["case_statement_pattern"]
        self.suggestion = compiled["suggestion_pattern"]


@lru_cache(maxsize=1)
def turn_lexicon() -> TurnLexicon:
    from pipeline.knowledge import lexicon_file, lexicon_yaml

    return TurnLexicon(lexicon_yaml("turns.yaml"), str(lexicon_file("turns.yaml")))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass
class NormalisedText:
    """One note after normalisation.

    `customer` is what the customer said (the whole note when it is not a
    transcript); `agent` is what staff said in a transcript; `case_statement`
    the agent's turns that state the customer's case (a callback's "关于您反映的…",
    a regulator forward). `model_text` is what the classifiers read: the
    customer's words and the case as staff stated it, capped.
    """

    original: str
    text: str
    customer: str
    agent: str = ""
    is_transcript: bool = False
    case_statement: str = ""  # the agent's turns that state the customer's case (read by the model too)
    truncated: bool = False
    turns: list[tuple[str, str]] = field(default_factory=list)
    max_chars: int = MAX_MODEL_CHARS

    @cached_property
    def model_text(self) -> str:
        """What the classifiers read: the customer's words (then the case as staff stated it), capped, with
        personal numbers masked (same length), so the digits of a phone number never read as a hotline
        (12345) or any other marker."""
        from pipeline.text.pii import mask_pii

        text = f"{self.customer}\n{self.case_statement}" if self.case_statement else self.customer
        return mask_pii(text[:self.max_chars])


@lru_cache(maxsize=1)
def _t2s() -> Callable[[str], str]:
    """OpenCC t2s, imported lazily (a few ms that `--help` need not pay); the wheel's compiled core
    when the Python wrapper is missing; the text unchanged (with a warning) without OpenCC."""
    try:
        import opencc

        if hasattr(opencc, "OpenCC"):
            return opencc.OpenCC("t2s").convert
        import opencc.clib as clib
        from opencc.clib import opencc_clib

        conv = opencc_clib._OpenCC(str(Path(clib.__file__).parent / "share" / "opencc" / "t2s.json"))
        return lambda s: conv.convert(s, len(s.encode("utf-8")))
    except Exception as exc:  # pragma: no cover - only without OpenCC
        warnings.warn(f"OpenCC unavailable ({exc}); traditional notes are read as they are")
        return lambda s: s


def to_simplified(text: str) -> str:
    return _t2s()(text) if text else text


def simplified_halfwidth(text: str) -> str:
    """Script and width only, character for character: what the facts extractor's spans index into."""
    return _halfwidth(to_simplified(text))


_HALFWIDTH = {0x3000: 0x20, **{c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                               for c in range(r[0], r[1] + 1)},
              **{ord(ch): ord(ch) - 0xFEE0 for ch in "＄％＠＃＆＋－．／＝＜＞"}}


#: any character `_halfwidth` changes; most notes hold none, and one C scan is cheaper than a translate
_FULLWIDTH = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_HALFWIDTH)) + "]")


def _halfwidth(text: str) -> str:
    """Full-width ASCII letters, digits and a few signs become half-width; Chinese punctuation stays."""
    return text.translate(_HALFWIDTH) if _FULLWIDTH.search(text) else text


def clean(text: str) -> str:
    """Script, width, control characters and whitespace, in one canonical form.

    Idempotent: clean(clean(x)) == clean(x).
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = _SURROGATE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    text = _halfwidth(text)
    text = to_simplified(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n", text)
    return text.strip()


def _role_kind(role: str, lex: TurnLexicon) -> str:
    role = re.sub(r"\s", "", role)
    if lex.customer_role.fullmatch(role):
        return "customer"
    if lex.unnamed.fullmatch(role):
        return "anon:" + role.upper()
    return "agent"


def _sides_of_unnamed(turns: list[tuple[str, str]], lex: TurnLexicon) -> list[tuple[str, str]]:
    """An export's unnamed speakers ("A:", "说话人1：") given sides: the one who talks most like staff
    is the agent (and any other who only talks like staff), the rest the customer's side. [] when no
    speaker talks like staff: a note whose sides cannot be told is read whole (split_turns checks that
    both sides speak)."""
    anon = sorted({k for k, _ in turns if k.startswith("anon:")})
    if not anon:
        return turns
    score: dict[str, float] = {}
    for k in anon:
        words = " ".join(w for kind, w in turns if kind == k)
        score[k] = len(lex.agent_says.findall(words)) - len(lex.customer_says.findall(words))
    agent = max(anon, key=lambda k: score[k])
    if score[agent] <= 0 and "agent" not in {k for k, _ in turns}:
        return []
    agents = {agent} if score[agent] > 0 else set()
    agents |= {k for k in anon if k != agent and score[k] > 0 and score[k] >= score[agent] / 2}
    return [("agent" if k in agents else "customer" if k.startswith("anon:") else k, w) for k, w in turns]


def _label_ends(text: str) -> int:
    """Colons and closing brackets: each inline speaker label ends in one."""
    return text.count("：") + text.count(":") + text.count("】") + text.count("]")


def split_turns(text: str) -> list[tuple[str, str]]:
    """Speaker turns as (customer|agent|unknown, words); [] when the text is not a transcript.

    A transcript needs at least two labelled turns with both sides present, so
    an agent's summary that starts "客户：..." stays a note. Speakers named by a role
    (客户, 坐席, 客户女儿, 工号1032) take its side; unnamed ones (A/B, 说话人1/2) are
    sided by what they say.
    """
    lex = turn_lexicon()
    matches = list(lex.turn.finditer(text))
    if len(matches) < 2:  # two inline turns need two colons or closing brackets: a note with fewer is not scanned
        matches = list(lex.inline.finditer(text)) if _label_ends(text) >= 2 and (
            lex.inline_screen is None or lex.inline_screen.search(text)) else []
    if len(matches) < 2 and lex.spaced_start.match(text):
        matches = list(lex.spaced.finditer(text))
    if len(matches) < 2:
        return []
    kinds = [_role_kind(next(v for v in m.groupdict().values() if v), lex) for m in matches]
    named = {k for k in kinds if not k.startswith("anon:")}
    if len(set(kinds)) < 2 or (named and not (named <= {"customer", "agent"})):
        return []
    turns: list[tuple[str, str]] = []
    head = text[: matches[0].start()].strip()
    if head:
        turns.append(("unknown", head))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        words = text[m.end():end].strip()
        if words:
            turns.append((kinds[i], words))
    turns = _sides_of_unnamed(turns, lex)
    if {k for k, _ in turns} & {"customer", "agent"} != {"customer", "agent"}:
        return []
    return turns


def case_statement(turns: list[tuple[str, str]]) -> str:
    """The agent's turns that state the customer's case, without one that suggests where to complain."""
    lex = turn_lexicon()
    return "\n".join(w for k, w in turns if k == "agent" and lex.case_statement.search(w) and not lex.suggestion.search(w))


def normalise(text: str, max_chars: int = MAX_MODEL_CHARS) -> NormalisedText:
    """Normalise one note; never raises on odd input (None, numbers, control characters)."""
    original = text if isinstance(text, str) else ("" if text is None else str(text))
    cleaned = clean(original)
    turns = split_turns(cleaned)
    if turns:
        customer = "\n".join(w for k, w in turns if k != "agent")
        agent = "\n".join(w for k, w in turns if k == "agent")
        case = case_statement(turns)
    else:
        customer, agent, case = cleaned, "", ""
    return NormalisedText(
        original=original,
        text=cleaned,
        customer=customer,
        agent=agent,
        is_transcript=bool(turns),
        case_statement=case,
        truncated=len(customer) > max_chars,
        turns=turns,
        max_chars=max_chars,
    )
