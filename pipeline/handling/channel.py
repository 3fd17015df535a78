"""How the note reached the centre, and whether it is a plain enquiry: both change what to do.

A counter visit can be taken to a private room; a phone call cannot. A plain
question gets an answer or a callback time, not an apology and a 15-day
complaint decision. The cues are data (lexicon/channels.yaml).
"""
from __future__ import annotations

import re

from pipeline.contract.records import Triage
from pipeline.knowledge import lexicon_yaml

__all__ = ["infer_channel", "is_enquiry", "channel_id", "CHANNEL_NAMES"]

CHANNEL_NAMES = {"phone": "电话", "counter": "柜面", "letter": "信函/邮件", "regulator": "监管转办", "online": "线上",
                 "unknown": "未知"}


_CUE_PATTERNS: tuple[dict, dict[str, re.Pattern]] | None = None


def _cue_patterns(lex: dict) -> dict[str, re.Pattern]:
    """Channel -> one regex of its cue words (escaped, so a search finds one iff `cue in text` would
    for some cue): one C scan instead of a Python step per cue. Built once for the lexicon in use."""
    global _CUE_PATTERNS
    if _CUE_PATTERNS is None or _CUE_PATTERNS[0] is not lex:
        _CUE_PATTERNS = (lex, {channel: re.compile("|".join(map(re.escape, cues)))
                               for channel, cues in lex["cues"].items()})
    return _CUE_PATTERNS[1]


def infer_channel(text: str, is_transcript: bool = False) -> str:
    """The channel a note came by, read from its wording; `unknown` when nothing says."""
    if is_transcript:
        return "phone"
    lex = lexicon_yaml("channels.yaml")
    patterns = _cue_patterns(lex)
    for channel in lex["order"]:
        if patterns[channel].search(text):
            return channel
    return "unknown"


def is_enquiry(triage: Triage, text: str) -> bool:
    """No mindset, low risk, no flags, and the note asks something."""
    if triage.mindset or triage.risk_level != "low" or triage.risk_flags:
        return False
    return any(m in text for m in lexicon_yaml("channels.yaml")["enquiry_markers"])


def channel_id(value: str | None) -> str | None:
    """A channel column's value as an id: an id itself, or a name the lexicon knows (电话, 柜面, 12378转办 ...);
    None (read it from the note) when empty or unknown."""
    if not value or not str(value).strip():
        return None
    value = str(value).strip()
    if value in CHANNEL_NAMES and value != "unknown":
        return value
    for channel, names in lexicon_yaml("channels.yaml").get("names", {}).items():
        if any(n in value for n in names):
            return channel
    return None
