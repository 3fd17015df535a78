"""Property tests: any Unicode string is handled, and the plan's invariants always hold."""
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.handling.facts import extract_facts
from pipeline.text.pii import mask_pii
from pipeline.text.normalisation import clean, normalise
from pipeline.text.tokenise import Tokenizer

TOKENIZER = Tokenizer()
CHINESE = st.text(alphabet=st.sampled_from(list("客户要求退保理赔业务员媒体曝光监管投诉律师起诉第三次岁元万我们你们！？，。：\n 0123456789坐席：")), max_size=120)
ANY = st.one_of(st.text(max_size=200), CHINESE, st.text(alphabet=string.printable, max_size=100))


@given(ANY)
@settings(max_examples=300, deadline=None)
def test_normalise_handles_any_string_and_is_idempotent(s):
    doc = normalise(s)
    assert isinstance(doc.text, str) and doc.original == s
    assert clean(doc.text) == doc.text
    assert len(doc.model_text) <= len(doc.customer)


@given(ANY)
@settings(max_examples=300, deadline=None)
def test_tokenizer_handles_any_string(s):
    tokens = TOKENIZER(clean(s))
    assert all(isinstance(t, str) and t and not t.isspace() for t in tokens)
    assert tokens == TOKENIZER(clean(s))


@given(ANY)
@settings(max_examples=300, deadline=None)
def test_fact_extractor_handles_any_string_with_spans_inside(s):
    text = clean(s)
    for f in extract_facts(text).items:
        assert 0 <= f.start <= f.end <= len(text)


@given(ANY)
@settings(max_examples=200, deadline=None)
def test_masking_keeps_length_and_is_idempotent(s):
    once = mask_pii(s)
    assert len(once) == len(s) and mask_pii(once) == once


LEVELS = ["frontline", "supervisor", "senior_specialist"]


@given(CHINESE)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_plan_invariants_hold_for_real_predictions(small_model, s):
    from pipeline.contract.taxonomy import taxonomy
    from pipeline.flow import triage_notes
    from pipeline.handling.playbook import default_playbook

    result = triage_notes(small_model, [s])[0]
    t, p = result.triage, result.plan
    settings = default_playbook().settings
    ids = [step.id for step in p.now + p.then + p.reference]
    assert len(p.now) <= settings.max_now and len(p.then) <= settings.max_then
    assert len(ids) == len(set(ids)) and len(p.avoid) == len({a.id for a in p.avoid})
    tax = taxonomy()
    order = {"low": 0, "medium": 1, "high": 2}
    assert order[t.risk_level] >= order[tax.risk_floor(t.risk_flags)], "never below the rule"
    assert t.risk_reason, "every level says why"
    if t.risk_level == "high":
        assert LEVELS.index(p.owner) >= LEVELS.index("supervisor")
    if t.cause_proba[0] < settings.review_cause_below:
        assert p.review
