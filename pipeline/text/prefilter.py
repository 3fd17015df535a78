"""Which characters a regex match cannot do without, so that a scan that cannot match is skipped.

Facts, markers and threats are found by many regexes over each note, and most of them
match few notes. A pattern such as `(?P<y>\\d{4})\\s*年\\s*(?P<m>\\d{1,2})\\s*月` matches only a
note holding a digit, a 年 and a 月; a note lacking one of them is not scanned at all. The
sets are read off the parsed pattern (literals, small character classes, `\\d`, required
repeats, groups and alternations); anything else (negated classes, `.`, look-arounds, optional
parts) requires nothing, so a skipped scan is always one that would have found no match.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from re import _constants as c
from re import _parser

__all__ = ["DIGIT", "caseless", "required_sets", "note_chars", "may_match", "screen", "first_chars", "start_screen"]

#: Stands for "any decimal digit" (what `\d` matches) in a required set and in a note's characters.
DIGIT = "\\d"
_ANY_DIGIT = re.compile(r"\d")
_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT))
_ATOMIC = getattr(c, "ATOMIC_GROUP", None)

Sets = tuple[frozenset[str], ...]


def caseless(ch: str) -> bool:
    """A character that matches only itself under IGNORECASE: no case of its own, and a kind of
    character (CJK and other letters without case, punctuation, digits, currency signs) no cased
    character folds to."""
    cat = unicodedata.category(ch)
    return ch.lower() == ch == ch.upper() and (cat in ("Lo", "Nd", "Sc") or cat.startswith("P"))


def _item(op, av, ic: bool) -> Sets:
    """The sets one parsed item requires (each: one of its characters is in every match)."""
    if op is c.LITERAL:
        ch = chr(av)
        return (frozenset(ch),) if not ic or caseless(ch) else ()
    if op is c.IN:
        chars: set[str] = set()
        for o, a in av:
            if o is c.LITERAL:
                chars.add(chr(a))
            elif o is c.RANGE and a[1] - a[0] < 64:
                chars.update(chr(x) for x in range(a[0], a[1] + 1))
            elif o is c.CATEGORY and a is c.CATEGORY_DIGIT:
                chars.add(DIGIT)
            else:  # a negation, another category (\w, \s) or a wide range: not a short list
                return ()
        if ic and not all(ch == DIGIT or caseless(ch) for ch in chars):
            return ()
        return (frozenset(chars),)
    if op in _REPEATS:
        lo, _, sub = av
        return _seq(sub, ic) if lo >= 1 else ()
    if op is c.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        inner = (ic or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE
        return _seq(sub, inner)
    if op is c.BRANCH:
        picked = []
        for branch in av[1]:
            sets = _seq(branch, ic)
            if not sets:
                return ()  # one alternative requires nothing: neither does the alternation
            picked.append(min(sets, key=_rarity))
        return (frozenset().union(*picked),)
    if op is _ATOMIC:
        return _seq(av, ic)
    return ()  # zero-width assertions, any character, group references: nothing required


def _rarity(chars: frozenset[str]) -> tuple[bool, int]:
    """Which set of an alternative to require: most notes hold a digit, so a set with `DIGIT` last,
    then the smallest."""
    return DIGIT in chars, len(chars)


def _seq(items, ic: bool) -> Sets:
    found: list[frozenset[str]] = []
    for op, av in items:
        for s in _item(op, av, ic):
            if s not in found:
                found.append(s)
    return tuple(found)


@lru_cache(maxsize=512)
def required_sets(pattern: re.Pattern) -> Sets:
    """Character sets of which every match of `pattern` holds at least one character each (`DIGIT`:
    any decimal digit); () when none can be named. The likeliest misses first."""
    if pattern.flags & (re.LOCALE | re.VERBOSE) or not isinstance(pattern.pattern, str):
        return ()
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except re.error:
        return ()
    ic = bool(pattern.flags & re.IGNORECASE)
    return tuple(sorted(_seq(parsed, ic), key=_rarity))


def note_chars(text: str) -> frozenset[str]:
    """The characters of a text, with `DIGIT` added when it holds a decimal digit."""
    chars = frozenset(text)
    return chars | {DIGIT} if _ANY_DIGIT.search(text) else chars


def may_match(sets: Sets, chars: frozenset[str]) -> bool:
    """False when a text with these characters (`note_chars`) cannot hold a match."""
    for s in sets:
        if s.isdisjoint(chars):
            return False
    return True


def screen(pattern: re.Pattern) -> re.Pattern | None:
    """A character class a text must hold one character of for `pattern` to match (its likeliest miss,
    as one C scan); None when no such class can be named."""
    sets = required_sets(pattern)
    if not sets:
        return None
    return _char_class(sets[0])


def _char_class(chars: frozenset[str]) -> re.Pattern:
    """One compiled class of these characters (`DIGIT`: any decimal digit)."""
    members = "".join(re.escape(ch) for ch in sorted(chars) if ch != DIGIT) + (r"\d" if DIGIT in chars else "")
    return re.compile(f"[{members}]")


_ZERO_WIDTH = (c.ASSERT, c.ASSERT_NOT, c.AT)


def _first_item(op, av, ic: bool) -> tuple[set[str] | None, bool]:
    """(characters a match of this item can start with, whether it can match empty); None: any."""
    if op is c.LITERAL:
        ch = chr(av)
        return ({ch}, False) if not ic or caseless(ch) else (None, False)
    if op is c.IN:
        sets = _item(op, av, ic)
        return (set(sets[0]), False) if sets and DIGIT not in sets[0] else (None, False)
    if op in _ZERO_WIDTH:  # look-arounds and anchors consume nothing: the next item starts the match
        return set(), True
    if op is c.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        return _first_seq(sub, (ic or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE)
    if op is _ATOMIC:
        return _first_seq(av, ic)
    if op is c.BRANCH:
        chars: set[str] = set()
        empty = False
        for branch in av[1]:
            f, e = _first_seq(branch, ic)
            if f is None:
                return None, False
            chars |= f
            empty = empty or e
        return chars, empty
    if op in _REPEATS:
        lo, _, sub = av
        f, e = _first_seq(sub, ic)
        return f, e or lo == 0
    return None, False  # any character, a negated class, a category, a group reference


def _first_seq(items, ic: bool) -> tuple[set[str] | None, bool]:
    chars: set[str] = set()
    for op, av in items:
        f, empty = _first_item(op, av, ic)
        if f is None:
            return None, False
        chars |= f
        if not empty:
            return chars, False
    return chars, True


@lru_cache(maxsize=512)
def first_chars(pattern: re.Pattern) -> frozenset[str] | None:
    """The characters every match of `pattern` starts with one of; None when they cannot be listed
    (a match may be empty, or start with any character, a digit class or a negated class)."""
    if pattern.flags & (re.LOCALE | re.VERBOSE) or not isinstance(pattern.pattern, str):
        return None
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except re.error:
        return None
    chars, empty = _first_seq(parsed, bool(pattern.flags & re.IGNORECASE))
    return None if chars is None or empty or not chars else frozenset(chars)


def start_screen(pattern: re.Pattern) -> re.Pattern | None:
    """A class of the characters a match of `pattern` can start with: `pattern.finditer(text, pos)` from
    the class's first hit finds every match `pattern.finditer(text)` finds (look-behinds still see the
    text before `pos`), after one C scan instead of an attempt at every character. Worth it for an
    alternation whose branches start with a group, a class or a look-behind, where the regex engine
    cannot skip ahead by itself. None when the class cannot be named."""
    chars = first_chars(pattern)
    return None if chars is None else _char_class(chars)
