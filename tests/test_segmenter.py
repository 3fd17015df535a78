"""The fast segmenter (rjieba) must cut exactly as jieba does, and jieba must stay the fallback."""
import importlib.util
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.text import tokenise
from pipeline.text.normalisation import clean, normalise
from pipeline.text.tokenise import SEGMENTER_ENV, USER_DICT, Tokenizer, segmenter_name

HAVE_RJIEBA = importlib.util.find_spec("rjieba") is not None
needs_rjieba = pytest.mark.skipif(not HAVE_RJIEBA, reason="rjieba is not installed (jieba is used instead)")


@pytest.fixture(scope="module")
def both():
    if not HAVE_RJIEBA:
        pytest.skip("rjieba is not installed")
    return tokenise._Jieba(str(USER_DICT)), tokenise._RJieba(str(USER_DICT))


@needs_rjieba
def test_rjieba_cuts_the_corpus_as_jieba_does(both):
    """The adoption rule of issue 19: the same tokens on at least 99.5% of corpus notes (HMM off)."""
    from pipeline.model.corpus import load_corpus

    jieba_seg, rjieba_seg = both
    texts = [normalise(t).model_text for t in load_corpus()["text"]]
    same = sum(jieba_seg.cut(t, False) == rjieba_seg.cut(t, False) for t in texts)
    assert same / len(texts) >= 0.995, f"{len(texts) - same} of {len(texts)} notes cut differently"


@needs_rjieba
def test_rjieba_keeps_the_user_dictionary_and_its_frequencies(both):
    jieba_seg, rjieba_seg = both
    note = "犹豫期退保的现金价值和退保手续费怎么算，核保结论加费承保"
    assert rjieba_seg.cut(note, False) == jieba_seg.cut(note, False)
    for term in ("犹豫期退保", "现金价值", "退保手续费", "核保结论", "加费承保"):
        assert term in rjieba_seg.cut(note, False)


CHARS = st.text(alphabet=st.sampled_from(list("客户要求退保理赔业务员媒体曝光监管投诉律师起诉第三次岁元万我们你们"
                                              "！？，。：\n 0123456789坐席abcXYZ.-%+#&_")), max_size=120)


@needs_rjieba
@given(st.one_of(st.text(max_size=200), CHARS, st.text(alphabet=string.printable, max_size=100)))
@settings(max_examples=300, deadline=None)
def test_rjieba_and_jieba_agree_on_any_cleaned_text(s):
    jieba_seg = tokenise._build(str(USER_DICT), "jieba")
    rjieba_seg = tokenise._build(str(USER_DICT), "rjieba")
    s = clean(s)
    assert rjieba_seg.cut(s, False) == jieba_seg.cut(s, False)


@needs_rjieba
def test_rjieba_is_the_default_where_installed(monkeypatch):
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    assert segmenter_name() == "rjieba"
    assert Tokenizer().segmenter.name == "rjieba"


def test_jieba_can_be_forced_and_gives_the_same_tokens(monkeypatch):
    note = "客户第三次来电，要求退保并退还全部保费45000元，否则向12378投诉"
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    default = Tokenizer()(note)
    monkeypatch.setenv(SEGMENTER_ENV, "jieba")
    forced = Tokenizer()
    assert forced.segmenter.name == "jieba"
    assert forced(note) == default


def test_without_rjieba_jieba_is_the_fallback(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rjieba" else real(name, *a))
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    assert segmenter_name() == "jieba"


def test_hmm_on_uses_jieba_where_the_two_are_not_known_to_agree(monkeypatch):
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    assert segmenter_name(hmm=True) == "jieba"
    assert Tokenizer(hmm=True).segmenter.name == "jieba"


def test_an_unknown_segmenter_name_is_refused(monkeypatch):
    monkeypatch.setenv(SEGMENTER_ENV, "thulac")
    with pytest.raises(ValueError, match=SEGMENTER_ENV):
        segmenter_name()
