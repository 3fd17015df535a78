"""Normalisation skips work only where it would change nothing: the same text and turns."""
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.text import normalisation as N
from pipeline.text.prefilter import screen

TEXT = st.text(alphabet=st.sampled_from(list("客户坐席客服：:【】[]，。 \n你好要退保ＡＢａｚ０９＄％　１2") + ["\uff5e"]), max_size=60)


@given(st.one_of(TEXT, st.text(max_size=60)))
@settings(max_examples=400, deadline=None)
def test_halfwidth_is_the_translation(s):
    assert N._halfwidth(s) == s.translate(N._HALFWIDTH)


@given(st.one_of(TEXT, st.text(max_size=60)))
@settings(max_examples=400, deadline=None)
def test_the_turns_are_the_same_with_every_scan_done(s):
    lex = N.turn_lexicon()
    matches = [m.span() for m in lex.inline.finditer(s)]
    if matches:
        assert lex.inline_screen.search(s)
    fast = N.split_turns(s)
    screen_was, lex.inline_screen = lex.inline_screen, None
    try:
        assert N.split_turns(s) == fast
    finally:
        lex.inline_screen = screen_was


def test_a_screen_is_one_required_character_class():
    assert screen(re.compile(r"\d+年")).pattern == "[年]"
    assert screen(re.compile(r"\d+")).pattern == r"[\d]"
    assert screen(re.compile(r"[^a]")) is None
    assert N.split_turns("客户：我要退保 坐席：好的") and N.split_turns("【客户】我要退保【坐席】好的")
