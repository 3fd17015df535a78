"""Facts a handler needs, pulled from the note: amounts, age, dates, deadlines.

The rules layer reads these (an elderly customer, a group of 23, a demand of
45000 yuan, a deadline of three days) and the handler's card shows them with
their place in the note. Regexes and word lists are data
(data/lexicon/facts.yaml); this module only interprets what they match.

Order matters: personal numbers, policy numbers, dates, percentages, ages,
deadlines, group sizes and complaint counts are found first and their spans
claimed, so that none of them is ever read as money.

Script: the note is converted to simplified characters with OpenCC `t2s`
(and full-width digits/letters to half-width) before matching; every span
refers to that converted text. `t2s` maps character for character in
practice, so the converted text has the original's length and the spans also
fit the original; where a phrase conversion changed the length, they fit only
the converted text.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from functools import lru_cache
from typing import Iterator

from pipeline.contract.records import Fact, Facts
from pipeline.knowledge import lexicon_yaml
from pipeline.text.normalisation import simplified_halfwidth
from pipeline.text.pii import expand, find_pii, overlaps
from pipeline.text.prefilter import note_chars, required_sets

#: Every kind extract_facts can produce; the playbook's `fact:` conditions must use one of these.
FACT_KINDS: tuple[str, ...] = (
    "amount", "age", "date", "percent", "policy_number", "phone", "id_number", "bank_card",
    "email", "deadline", "group_size", "prior_complaints", "product", "cue",
)
#: What a person reads for each kind (card, page, workbook, rule trace).
FACT_NAMES = {
    "amount": "金额", "age": "年龄", "date": "日期", "percent": "百分比", "policy_number": "保单号",
    "phone": "电话", "id_number": "身份证号", "bank_card": "银行卡号", "email": "邮箱", "deadline": "客户期限",
    "group_size": "人数", "prior_complaints": "此前投诉次数", "product": "产品", "cue": "线索",
}

Span = tuple[int, int]

# ----------------------------------------------------------------- lexicon


@lru_cache(maxsize=1)
def lexicon() -> dict:
    """The facts lexicon, loaded once."""
    return lexicon_yaml("facts.yaml")


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    lex = lexicon()
    return {name: re.compile(expand(p, lex["fragments"])) for name, p in lex["patterns"].items()}


@lru_cache(maxsize=1)
def _triggers() -> dict[str, tuple[frozenset[str], ...]]:
    """Pattern name -> the character sets each of its matches needs one of (pipeline.text.prefilter)."""
    return {name: required_sets(p) for name, p in _patterns().items()}


@lru_cache(maxsize=16)
def _char_set(s: str) -> frozenset[str]:
    return note_chars(s)


def _find(name: str, s: str) -> Iterator[re.Match]:
    """`_patterns()[name].finditer(s)`, skipped when the note lacks every character of a set a match needs."""
    chars = _char_set(s)
    for need in _triggers()[name]:  # prefilter.may_match, inlined: thirty patterns per note
        if need.isdisjoint(chars):
            return iter(())
    return _patterns()[name].finditer(s)


def cue_names() -> list[str]:
    """Cue names the playbook may test with `cue:`."""
    return list(lexicon()["cues"])


# ----------------------------------------------------------------- script


def to_simplified(text: str) -> str:
    """Simplified script and half-width digits and letters (the normaliser's, so spans line up)."""
    return simplified_halfwidth(text) if text else ""


# ----------------------------------------------------------------- numbers

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3, "四": 4,
              "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9}
_CN_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}


def cn_int(s: str) -> int | None:
    """A Chinese integer: 四万五 -> 45000, 三千二百 -> 3200, 一百零五 -> 105; None if not one."""
    total = section = num = 0
    have_num = zero = after_unit = False
    last_unit, prev_unit = 1, False
    for ch in s:
        if ch in _CN_DIGITS:
            if _CN_DIGITS[ch] == 0:
                zero, prev_unit = True, False
                continue
            if have_num:
                return None  # 一二三: digits read one by one, not a numeral
            num, have_num = _CN_DIGITS[ch], True
        elif ch in _CN_UNITS:
            section += (num if have_num else 1) * _CN_UNITS[ch]
            num, have_num, zero, prev_unit, last_unit = 0, False, False, True, _CN_UNITS[ch]
            continue
        elif ch in _CN_BIG:
            big = _CN_BIG[ch]
            if big == 100_000_000:
                total = (total + section + num) * big
            else:
                total += (section + num) * big
            section = num = 0
            have_num, zero, prev_unit, last_unit = False, False, True, big
            continue
        else:
            return None
        after_unit, prev_unit = prev_unit and not zero, False
    if have_num and after_unit and last_unit >= 100:
        num *= last_unit // 10  # 四万五: a last digit right after a unit is one step below it (5000)
    return total + section + num


def cn_number(s: str) -> float | None:
    """A Chinese number, decimals included: 一点五万 -> 15000."""
    if "点" not in s:
        n = cn_int(s)
        return None if n is None else float(n)
    left, right = s.split("点", 1)
    mult = 1
    while right and right[-1] in _CN_BIG:
        mult *= _CN_BIG[right[-1]]
        right = right[:-1]
    if not right or any(c not in _CN_DIGITS for c in right):
        return None
    whole = cn_int(left) if left else 0
    if whole is None:
        return None
    return (whole + float("0." + "".join(str(_CN_DIGITS[c]) for c in right))) * mult


def parse_number(tok: str) -> float | None:
    """Arabic (with thousands commas) or Chinese."""
    tok = tok.replace(",", "").strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", tok):
        return float(tok)
    return cn_number(tok)


def _count(tok: str, vague: dict[str, int] | None = None) -> int | None:
    if vague and tok in vague:
        return vague[tok]
    n = parse_number(tok)
    return None if n is None else int(n)


# ----------------------------------------------------------------- claims


class _Claims:
    """Spans already taken by a fact that must not be read again (as money)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def free(self, span: Span) -> bool:
        return not overlaps(span, self.spans)

    def take(self, span: Span) -> None:
        self.spans.append(span)


def _fact(kind: str, value, m: re.Match | Span, text: str) -> Fact:
    start, end = m.span() if isinstance(m, re.Match) else m
    return Fact(kind=kind, value=value, start=start, end=end, text=text[start:end])


def _free_matches(name: str, s: str, claims: _Claims, take: bool = True) -> Iterator[re.Match]:
    for m in _find(name, s):
        if m.group().strip() and claims.free(m.span()):
            if take:
                claims.take(m.span())
            yield m


# ----------------------------------------------------------------- extractors


def _policy_numbers(s: str, claims: _Claims) -> list[Fact]:
    out = []
    for m in _free_matches("policy_number", s, claims, take=False):
        claims.take(m.span("value"))
        out.append(_fact("policy_number", m.group("value"), m.span("value"), s))
    return out


def _personal_numbers(s: str, claims: _Claims) -> list[Fact]:
    out = []
    for p in find_pii(s, skip=claims.spans):
        claims.take((p.start, p.end))
        out.append(Fact(kind=p.kind, value=p.masked, start=p.start, end=p.end, text=p.masked))
    return out


def _two_digit_year(yy: str) -> int:
    n = int(yy)
    return 2000 + n if n <= 40 else 1900 + n


def _iso(y: int | None, m: int | None = None, d: int | None = None) -> str | None:
    """YYYY, YYYY-MM, YYYY-MM-DD or --MM-DD; None when the parts are not a date."""
    if m is not None and not 1 <= m <= 12:
        return None
    if d is not None:
        try:
            dt.date(y or 2000, m or 1, d)
        except ValueError:
            return None
    if y is None:
        return f"--{m:02d}-{d:02d}"
    if m is None:
        return f"{y:04d}"
    return f"{y:04d}-{m:02d}" if d is None else f"{y:04d}-{m:02d}-{d:02d}"


def _int_or_none(m: re.Match, group: str) -> int | None:
    g = m.groupdict().get(group)
    return int(g) if g else None


def _dates(s: str, claims: _Claims, received: dt.date | None) -> list[Fact]:
    out = []
    for name in ("date_ymd_cn", "date_iso", "date_yy_m", "date_cn_year", "date_year", "date_yy", "date_md"):
        for m in _find(name, s):
            if not claims.free(m.span()):
                continue
            g = m.groupdict()
            if g.get("ycn"):
                y = int("".join(str(_CN_DIGITS[c]) for c in g["ycn"]))
                month = cn_int(g["mcn"]) if g.get("mcn") else None
                value = _iso(y, month)
            elif g.get("yy"):
                value = _iso(_two_digit_year(g["yy"]), _int_or_none(m, "m"), _int_or_none(m, "d"))
            elif g.get("y"):
                value = _iso(int(g["y"]), _int_or_none(m, "m"), _int_or_none(m, "d"))
            else:  # month and day only: the year is the received year when known
                value = _iso(received.year if received else None, int(g["m"]), int(g["d"]))
            if value is None:
                continue
            claims.take(m.span())
            out.append(_fact("date", value, m, s))
    return out


def _percents(s: str, claims: _Claims) -> list[Fact]:
    out = []
    for m in _free_matches("percent", s, claims):
        tok = m.group("value") or m.group("cn")
        out.append(_fact("percent", parse_number(tok), m, s))
    return out


def _ages(s: str, claims: _Claims) -> list[Fact]:
    cfg = lexicon()["age"]
    out = []
    for m in _free_matches("age_number", s, claims, take=False):
        n = parse_number(m.group("n"))
        if n is None:
            continue
        age = int(n) + cfg["approx_add"].get(m.group("approx") or "", 0)
        if cfg["min"] <= age <= cfg["max"]:
            claims.take(m.span())
            out.append(_fact("age", age, m, s))
    for m in _free_matches("age_decade", s, claims):
        age = _CN_DIGITS[m.group("n")] * 10 + cfg["decade_mods"].get(m.group("mod") or "", 0)
        out.append(_fact("age", age, m, s))
    for m in _free_matches("age_named", s, claims):
        mod = (m.group("mod") or "").replace("已近", "近")
        age = cfg["named"][m.group("word")] + cfg["decade_mods"].get(mod, 0)
        out.append(_fact("age", age, m, s))
    return out


def _business_days(n: int, received: dt.date | None) -> int:
    """Calendar days that n working days span (weekends skipped; holidays not known)."""
    if received is None:
        return math.ceil(n * 7 / 5)
    day, left = received, n
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return (day - received).days


def _weekday_days(which: str | None, d: str, received: dt.date | None) -> int | None:
    if received is None:
        return None
    wd = 6 if d in "日天7" else (int(d) - 1 if d.isdigit() else _CN_DIGITS[d] - 1)
    if which == "下":
        return 7 - received.weekday() + wd
    return (wd - received.weekday()) % 7


def _named_days(word: str, received: dt.date | None) -> int | None:
    named = lexicon()["deadline"]["named_days"]
    if word in named:
        return named[word]
    if received is None:
        return None
    if word in ("月底", "本月底"):
        nxt = (received.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return (nxt - dt.timedelta(days=1) - received).days
    if word == "年底":
        return (dt.date(received.year, 12, 31) - received).days
    if word in ("本周", "这周"):
        return 6 - received.weekday()
    return 13 - received.weekday()  # 下周: to the end of next week


def _date_days(month: int, day: int, received: dt.date | None) -> int | None:
    if received is None:
        return None
    try:
        target = dt.date(received.year, month, day)
    except ValueError:
        return None
    if target < received:
        target = target.replace(year=target.year + 1)
    return (target - received).days


def _relative_days(n: int, unit: str, received: dt.date | None) -> int:
    if unit == "工作日":
        return _business_days(n, received)
    if unit == "小时":
        return math.ceil(n / 24)
    return n * lexicon()["deadline"]["unit_days"][unit]


def _deadlines(s: str, claims: _Claims, received: dt.date | None) -> list[Fact]:
    """Customer or regulator deadlines, value in calendar days from `received` (None if unknown)."""
    not_after = lexicon().get("deadline_not_after", [])
    out: list[Fact] = []
    taken: list[Span] = []

    def add(m: re.Match, days: int | None) -> None:
        if overlaps(m.span(), taken):
            return
        before = s[max(0, m.start() - 6):m.start()]
        if any(w in before for w in not_after):
            return  # 犹豫期10天内: a contract period, not a deadline
        taken.append(m.span())
        claims.take(m.span())
        out.append(_fact("deadline", days, m, s))

    for name in ("deadline_limit", "deadline_relative"):
        for m in _find(name, s):
            n = _count(m.group("n"))
            if n is not None:
                add(m, _relative_days(n, m.group("unit"), received))
    for m in _find("deadline_weekday", s):
        add(m, _weekday_days(m.group("which"), m.group("d"), received))
    for m in _find("deadline_date", s):
        add(m, _date_days(int(m.group("m")), int(m.group("d")), received))
    for m in _find("deadline_named", s):
        add(m, _named_days(m.group("w"), received))
    return out


def _group_sizes(s: str, claims: _Claims) -> list[Fact]:
    cfg = lexicon()["group"]
    out = []
    for name in ("group_prefixed", "group_customers"):
        for m in _free_matches(name, s, claims, take=False):
            n = _count(m.group("n"), lexicon()["vague_counts"])
            if n is not None and n >= cfg["min"]:
                claims.take(m.span())
                out.append(_fact("group_size", n, m, s))
    return out


def _prior_complaints(s: str, claims: _Claims) -> list[Fact]:
    """How many times the customer has already raised it: 第三次 -> 2 before this one."""
    out = []
    for m in _free_matches("prior_ordinal", s, claims, take=False):
        n = _count(m.group("n") or m.group("n2"))
        if n is not None and n >= 1:
            claims.take(m.span())
            out.append(_fact("prior_complaints", n - 1, m, s))
    for name in ("prior_calls", "prior_verb_count", "prior_count_verb"):
        for m in _free_matches(name, s, claims, take=False):
            n = _count(m.group("n"), lexicon()["vague_counts"])
            if n is not None and n >= 1:
                claims.take(m.span())
                out.append(_fact("prior_complaints", n, m, s))
    words = lexicon()["prior"]["words"]
    for m in _free_matches("prior_word", s, claims):
        out.append(_fact("prior_complaints", words[m.group("w")], m, s))
    return out


def _money_value(m: re.Match) -> float | None:
    g = m.groupdict()
    base = parse_number(g["num"])
    if base is None:
        return None
    mults = lexicon()["money"]["multipliers"]
    if g.get("mult"):
        base *= mults[g["mult"]]
        if g.get("tail"):  # 3万5 -> 35000; 2万5千 -> 25000
            base += int(g["tail"]) * (1000 if g.get("tailunit") else mults[g["mult"]] // 10)
    if g.get("mult2"):
        base *= mults[g["mult2"]]
    return round(base, 2)


@lru_cache(maxsize=1)
def _money_words() -> dict:
    """The money lexicon with its word lists as tuples, which str.startswith takes whole."""
    money = dict(lexicon()["money"])
    for key in ("kuai_not_before", "counters"):
        money[key] = tuple(money[key])
    return money


#: without a prefix, a number is money only with a unit (元, 块) or a big multiplier (万, 亿) in its match
_MONEY_MARKS = frozenset("元圆块万亿")


def _is_money(m: re.Match, s: str) -> bool:
    """A unit or a prefix makes money; a bare 万 does unless a counter or an idiom follows."""
    if "pre" not in m.re.groupindex and _MONEY_MARKS.isdisjoint(m.group()):
        return False  # most numbers of a note: no prefix, no unit, no 万 (the test below, one C call)
    money = _money_words()
    g = m.groupdict()
    if g.get("unit") == "块" and s.startswith(money["kuai_not_before"], m.end()):
        return False
    if g.get("pre") or g.get("unit"):
        return True
    has_big = g.get("mult") in ("万", "亿") or g.get("mult2") in ("万", "亿") or "万" in g["num"] or "亿" in g["num"]
    if not has_big:
        return False
    after = s[m.end():m.end() + 3]
    if after.startswith(money["counters"]):
        return False
    window = s[max(0, m.start() - 2):m.end() + 3]
    return not any(i in window for i in money["idioms"])


def _amounts(s: str, claims: _Claims) -> list[Fact]:
    out = []
    for name in ("money_prefixed", "money_arabic", "money_cn"):
        for m in _find(name, s):
            if not m.group("num") or not _is_money(m, s) or not claims.free(m.span()):
                continue
            value = _money_value(m)
            if value is None or value <= 0:
                continue
            end = m.end()
            while end > m.start() and s[end - 1].isspace():
                end -= 1
            claims.take((m.start(), end))
            out.append(_fact("amount", value, (m.start(), end), s))
    return out


def _clean_product(name: str) -> str | None:
    lex = lexicon()
    for suf in lex["product_strip_suffixes"]:
        if name.endswith(suf) and len(name) > len(suf) + 1:
            name = name[: -len(suf)]
    name = name.strip(" 的了")
    if len(name) < 2 or name in lex["product_generic"]:
        return None
    return name


def _products(s: str) -> list[Fact]:
    lex = lexicon()
    out: list[Fact] = []
    taken: list[Span] = []
    for name in ("product_book", "product_quoted", "product_bought"):
        for m in _find(name, s):
            raw = m.group("name")
            if name != "product_bought":
                if not any(k in raw for k in lex["product_markers"]):
                    continue
                if any(raw.endswith(e) for e in lex["product_not_endings"]):
                    continue
            clean = _clean_product(raw)
            span = m.span("name")
            if clean is None or any(span[0] < e and b < span[1] for b, e in taken):
                continue
            taken.append(span)
            out.append(Fact(kind="product", value=clean, start=span[0], end=span[1], text=s[span[0]:span[1]]))
    return out


@lru_cache(maxsize=1)
def _cue_phrases() -> list[tuple[str, str]]:
    pairs = [(phrase, cue) for cue, phrases in lexicon()["cues"].items() for phrase in phrases]
    return sorted(pairs, key=lambda p: -len(p[0]))


@lru_cache(maxsize=1)
def _cues_by_first_char() -> dict[str, tuple[int, ...]]:
    """First character -> positions in `_cue_phrases()` of the phrases that start with it."""
    index: dict[str, list[int]] = {}
    for i, (phrase, _) in enumerate(_cue_phrases()):
        index.setdefault(phrase[0], []).append(i)
    return {ch: tuple(ids) for ch, ids in index.items()}


@lru_cache(maxsize=1)
def _cue_other_chars() -> tuple[frozenset[str], ...]:
    """Per phrase of `_cue_phrases()`: its characters after the first, all of which a note must hold."""
    return tuple(frozenset(phrase[1:]) for phrase, _ in _cue_phrases())


@lru_cache(maxsize=1)
def _cue_first_chars() -> frozenset[str]:
    """The cue phrases' first characters, as a set: a set meets a note's characters fastest."""
    return frozenset(_cues_by_first_char())


@lru_cache(maxsize=1)
def _not_cue_words() -> tuple[tuple[str, frozenset[str]], ...]:
    words = tuple(lexicon().get("not_cues") or ())
    return tuple((w, frozenset(w)) for w in check_not_cues(words, [p for p, _ in _cue_phrases()]))


def check_not_cues(words: tuple[str, ...] | list[str], phrases: list[str]) -> tuple[str, ...]:
    """Each `not_cues` word must hold a cue phrase: one that holds none blocks nothing and is a typo."""
    for w in words:
        if not isinstance(w, str) or not any(p in w for p in phrases):
            raise ValueError(f"facts.yaml: not_cues word {w!r} holds no cue phrase, so it cannot block one")
    return tuple(words)


def _not_cue_spans(s: str, chars: frozenset[str] | set[str]) -> list[Span]:
    """Where the note holds a longer word that contains a cue phrase without meaning it (facts.yaml `not_cues`)."""
    spans: list[Span] = []
    for word, need in _not_cue_words():
        if need <= chars:
            start = s.find(word)
            while start >= 0:
                spans.append((start, start + len(word)))
                start = s.find(word, start + 1)
    return spans


def _cues(s: str) -> list[Fact]:
    """Cue phrases, longest first; a phrase inside a longer one of the same cue is not repeated.

    Only phrases whose every character occurs in the note are searched for (the rest cannot occur),
    in the same longest-first order: of some 35 phrases a note holds the first character of, it
    holds every character of about one."""
    out: list[Fact] = []
    phrases = _cue_phrases()
    by_first = _cues_by_first_char()
    others = _cue_other_chars()
    chars = _char_set(s)  # the note's characters, found once per note
    firsts = chars.intersection(_cue_first_chars())
    present = sorted(i for ch in firsts for i in by_first[ch] if others[i] <= chars)
    blocked = _not_cue_spans(s, chars) if present else []
    for phrase, cue in (phrases[i] for i in present):
        start = s.find(phrase)
        while start >= 0:
            end = start + len(phrase)
            if any(b0 <= start and end <= b1 for b0, b1 in blocked):
                pass  # inside a longer word that does not mean the cue (转办公室)
            elif not overlaps((start, end), [(f.start, f.end) for f in out if f.value == cue]):
                out.append(Fact(kind="cue", value=cue, start=start, end=end, text=phrase))
            start = s.find(phrase, start + 1)
    return out


# ----------------------------------------------------------------- public


def extract_facts(text: str, received: dt.date | None = None, *, simplified: bool = False) -> Facts:
    """All facts of a note, in text order; spans refer to the simplified text.

    `simplified`: the text is already the normaliser's clean form (`NormalisedText.text`), which
    script and width conversion leave as it is (cleaning is idempotent), so it is not converted again."""
    if isinstance(received, dt.datetime):
        received = received.date()
    s = (text or "") if simplified else to_simplified(text or "")
    claims = _Claims()
    items: list[Fact] = []
    items += _policy_numbers(s, claims)
    items += _personal_numbers(s, claims)
    items += _dates(s, claims, received)
    items += _percents(s, claims)
    items += _ages(s, claims)
    items += _deadlines(s, claims, received)
    items += _group_sizes(s, claims)
    items += _prior_complaints(s, claims)
    items += _amounts(s, claims)
    items += _products(s)
    items += _cues(s)
    items.sort(key=lambda f: (f.start, FACT_KINDS.index(f.kind), f.end))
    return Facts(items=items)
