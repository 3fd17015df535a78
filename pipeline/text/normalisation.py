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

CUSTOMER_ROLES = ("客户", "用户", "顾客", "来电人", "来电者", "投保人", "被保险人", "消费者", "客人", "先生", "女士", "家属")
AGENT_ROLES = ("坐席", "座席", "客服", "接线员", "工作人员", "柜员", "专员", "理赔员", "服务人员", "客服人员", "回访员")

_TIME = r"(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\]?\)?)"
_ROLE = "|".join(sorted(CUSTOMER_ROLES + AGENT_ROLES, key=len, reverse=True))
# A speaker label: optional timestamp, role (optionally bracketed), then a colon,
# a closing bracket, or (ASR style) a space. It must start a line.
_TURN = re.compile(
    rf"^[ \t]*(?:{_TIME}[ \t]*)?(?:[\[【(（]\s*(?P<b>{_ROLE})\s*[\]】)）]|(?P<r>{_ROLE})(?:[ \t]*{_TIME})?(?=[ \t]*[:：]|[ \t]+\S|[ \t]*$))[ \t]*[:：]?[ \t]*",
    re.MULTILINE,
)
# Inline turns on one line ("客户：……坐席：……"): colon or bracket required.
_INLINE_TURN = re.compile(rf"[\[【]\s*(?P<b>{_ROLE})\s*[\]】]|(?:(?<=[。！？!?；;，,\s])|^)(?P<r>{_ROLE})[:：]")

_INLINE_SCREEN = screen(_INLINE_TURN)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass
class NormalisedText:
    """One note after normalisation.

    `customer` is what the customer said (the whole note when it is not a
    transcript); `agent` is what staff said in a transcript. `model_text` is
    what the classifiers read: the customer's words, capped.
    """

    original: str
    text: str
    customer: str
    agent: str = ""
    is_transcript: bool = False
    truncated: bool = False
    turns: list[tuple[str, str]] = field(default_factory=list)
    max_chars: int = MAX_MODEL_CHARS

    @cached_property
    def model_text(self) -> str:
        """What the classifiers read: the customer's words, capped, with personal numbers masked (same
        length), so the digits of a phone number never read as a hotline (12345) or any other marker."""
        from pipeline.text.pii import mask_pii

        return mask_pii(self.customer[:self.max_chars])


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


def _role_kind(role: str) -> str:
    return "customer" if role in CUSTOMER_ROLES else "agent"


def split_turns(text: str) -> list[tuple[str, str]]:
    """Speaker turns as (customer|agent|unknown, words); [] when the text is not a transcript.

    A transcript needs at least two labelled turns with both sides present, so
    an agent's summary that starts "客户：..." stays a note.
    """
    matches = list(_TURN.finditer(text))
    if len(matches) < 2:  # inline turns need a bracket or a colon: a note with neither is not scanned
        matches = list(_INLINE_TURN.finditer(text)) if _INLINE_SCREEN is None or _INLINE_SCREEN.search(text) else []
    if len(matches) < 2:
        return []
    kinds = {_role_kind(m.group("b") or m.group("r")) for m in matches}
    if kinds != {"customer", "agent"}:
        return []
    turns: list[tuple[str, str]] = []
    head = text[: matches[0].start()].strip()
    if head:
        turns.append(("unknown", head))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        words = text[m.end():end].strip()
        if words:
            turns.append((_role_kind(m.group("b") or m.group("r")), words))
    return turns


def normalise(text: str, max_chars: int = MAX_MODEL_CHARS) -> NormalisedText:
    """Normalise one note; never raises on odd input (None, numbers, control characters)."""
    original = text if isinstance(text, str) else ("" if text is None else str(text))
    cleaned = clean(original)
    turns = split_turns(cleaned)
    if turns:
        customer = "\n".join(w for k, w in turns if k != "agent")
        agent = "\n".join(w for k, w in turns if k == "agent")
    else:
        customer, agent = cleaned, ""
    return NormalisedText(
        original=original,
        text=cleaned,
        customer=customer,
        agent=agent,
        is_transcript=bool(turns),
        truncated=len(customer) > max_chars,
        turns=turns,
        max_chars=max_chars,
    )
