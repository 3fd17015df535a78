"""Alternations rewritten to start with one literal each: the same matches, spans included."""
import random
import re

from pipeline.model.lexical import compile_markers, marker_patterns
from pipeline.text.regex_prefix import literal_first

CASES = [
    ["[!！]{2,}", "[?？]{2,}", "[!！][?？]|[?？][!！]"],
    ["多次", "第[二三四五六七八九十两0-9]+次", "[二三四五六七八九十两几0-9]+次(?:来电|投诉)", "又一次"],
    ["[十几数多好]{1,2}[个名位户]?(?:客户|人|家)", "[0-9]{2,}[个名位户](?:客户|人)", "群体"],
    ["(?:周|星期)[一二三四五六日天]前", "[0-9一二]+号前", "月底前", "[6-9][0-9]岁", "[.。]{3}"],
    ["(?:不会|不想|没想)[^，。,.!！]{0,8}(?:媒体|记者|12378)", "[¥￥]", "好+的", "走了+"],
]


def _spans(pattern: re.Pattern, text: str) -> list:
    return [(m.span(), m.group()) for m in pattern.finditer(text)]


def test_rewritten_alternations_find_the_same_matches():
    rng = random.Random(5)
    for patterns in CASES:
        forms = literal_first(patterns, ignorecase=True)
        assert forms is not None, patterns
        old = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        new = re.compile("|".join(f"(?:{p})" for p in forms), re.IGNORECASE)
        alphabet = sorted(set("".join(patterns)) | set("0123456789 ，。"))
        for _ in range(3000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
            assert _spans(old, text) == _spans(new, text), (patterns, text)


def test_what_cannot_be_rewritten_is_left_alone():
    assert literal_first(["tmd", "骗子"], ignorecase=True) is None  # a first letter with case
    assert literal_first(["tmd", "骗子"], ignorecase=False) == ["tmd", "骗子"]
    assert literal_first(["多?次"], ignorecase=False) is None  # an optional first character
    assert literal_first(["[0-9]*元"], ignorecase=False) is None  # a class that may be absent
    assert literal_first(["[0-9]+?元"], ignorecase=False) is None  # a lazy repeat
    assert literal_first(["(?P<n>[0-9]+)元"], ignorecase=False) is None  # a group the copies would repeat
    assert literal_first([r"\d+元"], ignorecase=False) is None
    assert literal_first(["走{2}了"], ignorecase=False) is None  # a repeated first character: left alone
    assert literal_first(["(?<!第)[0-9]+"], ignorecase=False) is None


def test_the_lexicon_markers_match_as_written():
    patterns = marker_patterns()
    compiled = compile_markers(patterns, "test")
    rng = random.Random(11)
    alphabet = sorted(set("".join("".join(v) for v in patterns.values())) | set("0123456789!！?？ ，。tTvV"))
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(4000)]
    for name, pats in patterns.items():
        written = re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE)
        for text in texts:
            assert _spans(written, text) == _spans(compiled[name], text), (name, text)
