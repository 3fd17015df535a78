"""The facts extractor skips a regex scan only where no match is possible: the same facts."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.handling import facts
from pipeline.handling.facts import _patterns, _triggers, extract_facts
from pipeline.text.prefilter import DIGIT, first_chars, may_match, note_chars, required_sets


@pytest.mark.parametrize("pattern, need", [
    ("a|bc", [{"a", "b"}]),
    (r"\d+年", [{"年"}, {DIGIT}]),
    (r"\d+", [{DIGIT}]),
    ("(?:x)?y", [{"y"}]),
    ("[^a]b?", []),
    ("(?=z)y", [{"y"}]),
    ("[0-3]+", [{"0", "1", "2", "3"}]),
    ("(?i)abc", []),
    ("(?i)媒体|曝光", [{"媒", "曝"}]),
    ("(?i)tmd|混蛋", []),
    ("(?:号码|编号|号)", [{"号", "编"}]),
    (r"\d+\s*[%％]|百分之", [{"%", "％", "百"}]),
    ("第.次", [{"次"}, {"第"}]),
])
def test_the_characters_a_match_needs(pattern, need):
    assert sorted(map(set, required_sets(re.compile(pattern))), key=sorted) == sorted(need, key=sorted)


@pytest.mark.parametrize("pattern, first", [
    ("a|bc", {"a", "b"}),
    ("(?<![不没])生气|气愤", {"生", "气"}),
    ("[锤捶]死|(?:踢|踹)(?:翻|倒)", {"锤", "捶", "踢", "踹"}),
    ("(?:已经?|先后)[^，]{0,8}次", {"已", "先"}),
    ("x?y", {"x", "y"}),
    ("x*", None),  # may match empty
    ("(?:a|)b", {"a", "b"}),
    (r"\d+次", None),  # a digit class: not listed
    ("[^a]b", None),
    (".b", None),
    ("(?i)ab", None),
    ("(?i)媒体", {"媒"}),
])
def test_the_characters_a_match_starts_with(pattern, first):
    got = first_chars(re.compile(pattern))
    assert (set(got) if got is not None else None) == first


def test_a_digit_stands_for_every_decimal_digit():
    assert DIGIT in note_chars("١٢٣") and DIGIT in note_chars("a7") and DIGIT not in note_chars("一二三")


NOTES = st.text(alphabet=st.sampled_from(list("0123456789一二两三四五六七八九十百千万亿岁旬年月日号第次趟元块%％¥"
                                              "人民币客户保单编合同内前周星期礼拜限天之以@.-:：“”《》买了花甲古稀 \n٣０")),
                max_size=80)


@given(st.one_of(NOTES, st.text(max_size=80)))
@settings(max_examples=400, deadline=None)
def test_every_match_holds_one_of_its_needed_characters(s):
    for name, needs in _triggers().items():
        for m in _patterns()[name].finditer(s):
            assert may_match(needs, note_chars(m.group())) or not m.group(), (name, m.group())


def test_the_facts_are_the_same_with_every_scan_done(monkeypatch, small_corpus):
    train, test = small_corpus
    notes = list(train["text"][:300]) + list(test["text"][:100])
    fast = [extract_facts(t) for t in notes]
    monkeypatch.setattr(facts, "_triggers", lambda: {name: () for name in _patterns()})
    assert [extract_facts(t) for t in notes] == fast
    assert any(f.items for f in fast)

