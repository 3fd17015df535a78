"""The engine tests only the rules whose gate a note meets: a rule left out could not have fired."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract.records import Fact, Facts, Triage
from pipeline.contract.taxonomy import RISK_LEVELS, taxonomy
from pipeline.handling import gates
from pipeline.handling.facts import FACT_KINDS, cue_names
from pipeline.handling.gates import gate_of, note_keys
from pipeline.handling.plan import plan
from pipeline.handling.playbook import CHANNELS, Context, default_playbook


@pytest.mark.parametrize("cond, gate", [
    ({"mindset": "remedy"}, {("mindset", "remedy")}),
    ({"mindset": "remedy", "min_proba": 0.2}, None),
    ({"flag": ["anger", "abusive_language"]}, {("flag", "anger"), ("flag", "abusive_language")}),
    ({"any": [{"cue": "elderly"}, {"fact": "age", "op": ">=", "value": 60}]}, {("cue", "elderly"), ("fact", "age")}),
    ({"any": [{"cue": "elderly"}, {"not": {"flag": "anger"}}]}, None),
    ({"all": [{"risk_level": "medium"}, {"channel": "counter"}]}, {("channel", "counter")}),
    ({"all": [{"enquiry": True}, {"top_proba": "cause", "below": 0.5}]}, None),
    ({"risk_level": "low", "at_most": "medium"}, {("level", "low"), ("level", "medium")}),
    ({"always": True}, None),
])
def test_the_gate_of_a_condition(cond, gate):
    found = gate_of(cond)
    assert (None if found is None else set(found)) == gate


tax = taxonomy()
PROBA = st.sampled_from([0.05, 0.2, 0.35, 0.45, 0.6, 0.9])


@st.composite
def notes(draw):
    cause = draw(st.lists(st.sampled_from(tax.cause_ids), min_size=1, max_size=3, unique=True))
    flags = draw(st.lists(st.sampled_from(tax.flag_ids), max_size=4, unique=True))
    mindset = draw(st.lists(st.sampled_from(tax.mindset_ids), max_size=2, unique=True))
    triage = Triage(
        cause=cause, cause_proba=[draw(PROBA) for _ in cause], cause_group=[tax.group_of(c) for c in cause],
        risk_level=draw(st.sampled_from(RISK_LEVELS)), risk_level_proba={lv: draw(PROBA) for lv in RISK_LEVELS},
        risk_flags=flags, risk_flag_proba={f: draw(PROBA) for f in tax.flag_ids},
        mindset=mindset, mindset_proba={m: draw(PROBA) for m in tax.mindset_ids},
        uncertain=draw(st.lists(st.sampled_from(["cause", "risk_level", "mindset"]), max_size=2, unique=True)),
        truncated=draw(st.booleans()), is_transcript=draw(st.booleans()))
    kinds = [k for k in FACT_KINDS if k != "cue"]
    items = [Fact(kind=k, value=draw(st.sampled_from([1, 3, 30, 65, 20000, None])), start=0, end=1, text="x")
             for k in draw(st.lists(st.sampled_from(kinds), max_size=4))]
    items += [Fact(kind="cue", value=c, start=0, end=1, text="x")
              for c in draw(st.lists(st.sampled_from(cue_names()), max_size=3))]
    return triage, Facts(items=items), draw(st.sampled_from(CHANNELS)), draw(st.booleans())


@given(notes())
@settings(max_examples=300, deadline=None)
def test_a_rule_that_fires_meets_its_gate(note):
    triage, facts, channel, enquiry = note
    pb = default_playbook()
    ctx = Context(triage, facts, channel=channel, enquiry=enquiry, gates=pb.settings.gates)
    candidates = set(pb.index.candidates(note_keys(ctx)))
    for i, rule in enumerate(pb.rules):
        if rule.test(ctx) is not None:
            assert i in candidates, rule.id


@given(notes())
@settings(max_examples=100, deadline=None)
def test_the_plan_is_the_same_with_every_rule_tested(note):
    triage, facts, channel, enquiry = note
    fast = plan(triage, facts, channel=channel, enquiry=enquiry)
    index = default_playbook().index
    every = list(range(len(default_playbook().rules)))
    original, alike = gates.RuleIndex.candidates, index.alike
    try:  # every rule tested, each condition on its own
        gates.RuleIndex.candidates = lambda self, keys: every
        index.alike = [None] * len(every)
        assert plan(triage, facts, channel=channel, enquiry=enquiry) == fast
    finally:
        gates.RuleIndex.candidates, index.alike = original, alike
    assert index is default_playbook().index


def test_rules_with_one_condition_share_its_test():
    pb = default_playbook()
    index = pb.index
    shared = [i for i, first in enumerate(index.alike) if first is not None]
    assert shared, "the default playbook repeats some conditions"
    for i in shared:
        assert pb.rules[i].when == pb.rules[index.alike[i]].when and index.alike[i] <= i
