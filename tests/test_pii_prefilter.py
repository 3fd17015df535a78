"""find_pii skips its scans only for a note that cannot hold a personal number: the same matches."""
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.text import pii
from pipeline.text.pii import PII_KINDS, _candidate, _patterns, find_pii, mask_pii

NOTES = st.text(alphabet=st.sampled_from(list("0123456789０１２３４５６７８９Xx+- @._abcAB电话保单号码：") + ["\u3000"]),
                max_size=60)


@given(st.one_of(NOTES, st.text(max_size=60)))
@settings(max_examples=500, deadline=None)
def test_every_personal_number_holds_a_candidate(s):
    for kind in PII_KINDS:
        for m in _patterns()[kind].finditer(s):
            assert _candidate().search(m.group()), (kind, m.group())


def test_the_masks_are_the_same_with_every_scan_done(monkeypatch, small_corpus):
    train, test = small_corpus
    notes = list(train["text"][:300]) + list(test["text"][:100]) + [
        "电话13812345678", "手机 138 1234 5678", "卡号6222 0212 3456 7890", "a.b@example.com",
        "座机010-12345678", "身份证110101199003071234", "保单号P2024000123456"]
    fast = [(find_pii(t), mask_pii(t)) for t in notes]
    monkeypatch.setattr(pii, "_candidate", lambda: None)
    assert [(find_pii(t), mask_pii(t)) for t in notes] == fast
    assert sum(1 for found, _ in fast if found) >= 6


@given(st.one_of(NOTES, st.text(max_size=60)))
@settings(max_examples=500, deadline=None)
def test_the_candidate_finds_what_the_plain_alternation_finds(s):
    import re

    assert bool(_candidate().search(s)) == bool(re.search(r"@|\d{7}|\d{4}[ -]\d{4}", s))
