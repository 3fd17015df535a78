"""Alternations rewritten so that every alternative starts with one literal character.

Python's regex engine skips ahead in C to the next place a match can start only when it knows the
characters a match starts with: a literal, a character class, or an alternation whose every
alternative starts with a literal. One alternative that starts with a class (`[0-9]+次`) or a group
(`(?:周|星期)[一二]前`) makes it try every alternative at every position of the note. This module
writes such an alternative as one alternative per first character (`0[0-9]*次|1[0-9]*次|...`,
`周[一二]前|星期[一二]前`): at any position at most one of them can start, and it then tries what the
original tried, in the same order, so the matches are the same ones, spans included.

Only plain forms are rewritten (a class of listed characters or short ranges, with no escapes, at
least once; a group of plain words); under IGNORECASE only characters without case. Anything else
leaves the whole alternation as it was (`literal_first` returns None).
"""
from __future__ import annotations

import re

from pipeline.text.prefilter import caseless

__all__ = ["literal_first"]

#: `[chars]` with an optional quantifier that requires at least one, then the rest of the alternative
_CLASS_FIRST = re.compile(r"\[([^\]\\^\[]+)\](\+|\{(\d+)(?:,(\d*))?\})?(?![?+*{])(.*)", re.DOTALL)
#: `(?:word|word|...)` then the rest, the words free of regex syntax
_WORDS_FIRST = re.compile(r"\(\?:([^()\\\[\]{}.*+?^$|]+(?:\|[^()\\\[\]{}.*+?^$|]+)*)\)(?![?+*{])(.*)", re.DOTALL)
_SYNTAX = set("\\[](){}.*+?^$|")
_MAX_CLASS = 64


def _lit(ch: str) -> str:
    """One character as a literal in a pattern."""
    return "\\" + ch if ch in _SYNTAX or ch == "-" else ch


def _class_chars(body: str) -> list[str] | None:
    """The characters of a class body such as `0-9一二两`, in order; None for anything else."""
    chars: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = ord(body[i]), ord(body[i + 2])
            if hi < lo or hi - lo >= _MAX_CLASS:
                return None
            chars.extend(chr(x) for x in range(lo, hi + 1))
            i += 3
        elif body[i] == "-":
            return None
        else:
            chars.append(body[i])
            i += 1
    unique = list(dict.fromkeys(chars))
    return unique if len(unique) <= _MAX_CLASS else None


def _top_level(pattern: str) -> list[str]:
    """The pattern split at its top-level `|` (an ordered alternation is the same split or whole)."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":  # a `]` right after the opening is a member
                i += 1
            in_class = True
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _first_char_forms(alt: str) -> list[str] | None:
    """The alternative as alternatives that each start with one literal character; None if not plain."""
    if alt and alt[0] not in _SYNTAX:
        return [alt] if alt[1:2] not in ("?", "*", "{") else None
    m = _CLASS_FIRST.fullmatch(alt)
    if m:
        body, quant, lo, hi, rest = m.groups()
        chars = _class_chars(body)
        if chars is None or "\\" in chars:
            return None
        if quant is None:
            tail = ""
        elif quant == "+":
            tail = f"[{body}]*"
        else:
            low = int(lo)
            if low < 1:
                return None
            if hi is None:  # {n}
                tail = f"[{body}]{{{low - 1}}}"
            elif hi == "":  # {n,}
                tail = f"[{body}]{{{low - 1},}}"
            else:
                if int(hi) < low:
                    return None
                tail = f"[{body}]{{{low - 1},{int(hi) - 1}}}"
        return [_lit(ch) + (f"(?:{tail}{rest})" if tail or rest else "") for ch in chars]
    m = _WORDS_FIRST.fullmatch(alt)
    if m:
        words, rest = m.groups()
        if any(not w for w in words.split("|")):
            return None
        return [f"{w}(?:{rest})" if rest else w for w in words.split("|")]
    return None


def literal_first(patterns: list[str], ignorecase: bool) -> list[str] | None:
    """The alternation of `patterns` as alternatives that each start with one literal character (see
    the module's note), or None when one cannot be written so, a first character has case under
    IGNORECASE, or a pattern holds a capturing group (which the copies would repeat)."""
    out: list[str] = []
    for pattern in patterns:
        try:
            if re.compile(pattern).groups:
                return None
        except re.error:
            return None
        for alt in _top_level(pattern):
            forms = _first_char_forms(alt)
            if forms is None:
                return None
            for form in forms:
                first = form[1] if form[0] == "\\" else form[0]
                if form[0] in _SYNTAX and form[0] != "\\" or (ignorecase and not caseless(first)):
                    return None
            out.extend(forms)
    return out
