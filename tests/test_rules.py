"""The playbook and the plan engine: one table per playbook section, invariants,
schema errors for broken playbook files, the seed case end to end."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.handling.facts import extract_facts
from pipeline.contract.records import Evidence, Fact, Facts, Triage
from pipeline.handling.render import plan_to_json, render_card
from pipeline.handling.plan import plan
from pipeline.handling.playbook import OWNERS, SECTIONS, PlaybookError, default_playbook, load_playbook
from pipeline.contract.taxonomy import taxonomy

GENERAL = ["general_listen", "general_record", "general_confirm", "general_apologise_answer", "general_report"]
SEED = (
    "客户李先生(68岁)上门投诉，其爱人王某于2004年3月购买公司红双喜A款保单，所交保费45000元，"
    "08年9月因急需用钱选择退保，所退保费51142.75元。客户对退保现金价值十分不满，坚持购买时业务人员"
    "并未对退保损失做任何说明，属于公司欺骗行为，要求公司给予退保差额的50%(¥2459.79)作为补偿。"
    "客户情绪冲动，称如果公司不予解决将做媒体曝光。"
)


# ---------------------------------------------------------------- builders


def tri(cause=("other",), risk="low", flags=(), mindset=(), *, cause_proba=None, flag_proba=None,
        mindset_proba=None, level_proba=None, uncertain=(), evidence=None, **extra) -> Triage:
    """A Triage built by hand: probabilities default to 0.8 for what is set."""
    cause = list(cause)
    flag_proba = dict(flag_proba or {f: 0.8 for f in flags})
    level_proba = level_proba or {lv: (0.8 if lv == risk else 0.1) for lv in ("low", "medium", "high")}
    return Triage(
        cause=cause, cause_proba=list(cause_proba or [0.8] * len(cause)),
        cause_group=[taxonomy().group_of(c) for c in cause],
        risk_level=risk, risk_level_proba=level_proba, risk_flags=list(flags), risk_flag_proba=flag_proba,
        mindset=list(mindset), mindset_proba=dict(mindset_proba or {m: 0.8 for m in mindset}),
        flag_evidence=evidence or {}, uncertain=list(uncertain), **extra,
    )


def facts(*items: tuple) -> Facts:
    """Facts from (kind, value) or (kind, value, text) tuples."""
    out = []
    for i, it in enumerate(items):
        kind, value = it[0], it[1]
        text = it[2] if len(it) > 2 else str(value)
        out.append(Fact(kind=kind, value=value, start=i * 10, end=i * 10 + len(text), text=text))
    return Facts(items=out)


def cue(name: str, text: str = "……") -> tuple:
    return ("cue", name, text)


@dataclass
class Case:
    name: str
    triage: Triage
    facts: Facts = field(default_factory=Facts)
    steps: tuple[str, ...] = ()
    owner: str = "frontline"
    avoid: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # steps that must not appear
    review: bool | None = None
    now: tuple[str, ...] = ()  # steps that must be in the `now` tier
    channel: str = "unknown"
    enquiry: bool = False
    thresholds: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # playbook settings this case overrides


def plan_of(case: Case):
    pb = default_playbook()
    if case.settings:
        pb = replace(pb, settings=replace(pb.settings, **case.settings))
    return plan(case.triage, case.facts, playbook=pb, channel=case.channel, enquiry=case.enquiry,
                flag_thresholds=case.thresholds)


def all_steps(p) -> list[str]:
    return [s.id for s in p.now + p.then + p.reference]


def check(case: Case) -> None:
    p = plan_of(case)
    step_ids = all_steps(p)
    for s in case.now:
        assert s in [x.id for x in p.now], f"{case.name}: {s} not in now; now is {[x.id for x in p.now]}"
    avoid_ids = [a.id for a in p.avoid]
    for s in case.steps:
        assert s in step_ids, f"{case.name}: missing step {s}; got {step_ids}"
    for s in case.absent:
        assert s not in step_ids, f"{case.name}: unexpected step {s}"
    for a in case.avoid:
        assert a in avoid_ids, f"{case.name}: missing avoid {a}; got {avoid_ids}"
    assert p.owner == case.owner, f"{case.name}: owner {p.owner} != {case.owner}; fired {[f.rule for f in p.fired]}"
    for d in case.departments:
        assert d in p.departments, f"{case.name}: missing department {d}"
    if case.review is not None:
        assert p.review is case.review


def run_table(cases: list[Case]):
    return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


# ---------------------------------------------------------------- section tables

GENERAL_CASES = [
    Case("low_complaint", tri(), steps=tuple(GENERAL) + ("perc_first_impression", "dl_regulatory"),
         avoid=("avoid_confrontation", "avoid_disparage_company", "avoid_miss_callback")),
    Case("plain_enquiry", tri(), enquiry=True, now=("enquiry_answer",), steps=("general_listen", "general_record"),
         absent=("general_apologise_answer", "dl_regulatory", "apol_oral")),
    Case("service_low", tri(("service_call_center",)), steps=tuple(GENERAL)),
    Case("medium_still_general_first", tri(("contract_claims",), "medium", ["anger"]), steps=tuple(GENERAL)),
]

NEGOTIATION_CASES = [
    Case("remedy_negotiates", tri(("contract_claims",), mindset=["remedy"]),
         steps=("nego_prepare", "nego_sincerity_authority", "nego_terms_first"),
         avoid=("avoid_recite_rules", "avoid_show_bottom_line_early")),
    Case("surrender_prep", tri(("contract_surrender",)), steps=("nego_prep_surrender",)),
    Case("forged_signature_prep", tri(("sales_forged_signature",)), steps=("nego_prep_signature",)),
    Case("claims_prep", tri(("contract_claims",)), steps=("nego_prep_claims",), absent=("nego_prepare",)),
    Case("premium_misappropriation", tri(("sales_premium_misappropriation",)), steps=("nego_prep_premium",),
         owner="supervisor", departments=("legal",)),
    Case("rebate_prep", tri(("sales_rebate",)), steps=("nego_prep_rebate",)),
    Case("compensation_cue_negotiates", tri(("contract_claims",)), facts(cue("compensation_demand", "赔偿")),
         steps=("nego_prepare",)),
    Case("customer_names_a_figure", tri(("contract_surrender",)),
         facts(cue("compensation_demand", "补偿"), ("amount", 2459.79, "2459.79元")),
         steps=("mind_recognition_no_onspot",)),
    Case("a_demand_without_a_figure_is_not_one", tri(("contract_surrender",)), facts(cue("compensation_demand", "补偿")),
         absent=("mind_recognition_no_onspot",)),
]

MINDSET_CASES = [
    Case("venting", tri(mindset=["venting"]), steps=("mind_venting_let_finish", "mind_venting_calm_tone"),
         avoid=("avoid_interrupt",)),
    Case("respect", tri(mindset=["respect"]), steps=("mind_respect_courtesy", "mind_respect_save_face"),
         avoid=("avoid_expose_customer_error",)),
    Case("remedy", tri(mindset=["remedy"]), steps=("mind_remedy_emotional", "mind_remedy_no_mental_damage")),
    Case("recognition", tri(mindset=["recognition"]),
         steps=("mind_recognition_understand", "mind_recognition_no_onspot"),
         avoid=("avoid_accept_proposal_on_spot",)),
    Case("self_expression", tri(mindset=["self_expression"]),
         steps=("mind_self_expr_acknowledge", "mind_self_expr_reason", "perc_projection_match"),
         owner="supervisor", avoid=("avoid_out_expert",)),
    Case("revenge", tri(mindset=["revenge"]),
         steps=("mind_revenge_reason", "mind_revenge_evidence", "mind_revenge_hint_evidence"),
         owner="supervisor", avoid=("avoid_provoke",)),
]

PERCEPTION_CASES = [
    Case("first_impression_always", tri(), steps=("perc_first_impression",)),
    Case("halo_staff_attitude", tri(("staff_attitude",)), steps=("perc_halo_attitude",)),
    Case("projection_expert", tri(("contract_coverage_scope",)), facts(cue("expert_customer", "我是律师")),
         steps=("perc_projection_match",), owner="supervisor"),
    Case("recency_prior", tri(("company_management",)), facts(("prior_complaints", 3, "第四次")),
         steps=("perc_recency_senior", "major_escalation_apology"), owner="supervisor"),
]

MAJOR_CASES = [
    Case("high_is_major", tri(("contract_claims",), "high", ["legal_threat", "anger"]),
         steps=("major_principles", "major_restate_core", "major_seek_basis", "major_legal_review"),
         owner="supervisor", departments=("legal",)),
    Case("high_media_senior", tri(("contract_claims",), "high", ["media_threat", "anger"]),
         steps=("major_senior_owner", "major_media_brand"), owner="senior_specialist", departments=("brand_pr",),
         avoid=("avoid_private_media_statement",)),
    Case("high_vip_senior", tri(("contract_claims",), "high", ["vip_identity", "regulator_threat"]),
         steps=("major_vip_priority", "major_regulator_liaison"), owner="senior_specialist",
         departments=("brand_pr", "regulator_liaison")),
    Case("vip_alone_low", tri(("service_counter",), "low", ["vip_identity"]), steps=("major_vip_priority",),
         owner="supervisor", absent=("major_principles",)),
    Case("large_demand", tri(("contract_claims",), "medium", ["excessive_demand"]),
         steps=("major_restate_core", "comp_no_lawyer_indirect"), owner="supervisor"),
    Case("escalated_repeat", tri(("company_management",), "medium", ["repeat_complaint"]),
         steps=("major_escalation_apology", "major_escalation_history"), owner="supervisor",
         avoid=("avoid_inconsistent_answers",)),
    Case("passed_around_cue", tri(("service_call_center",)), facts(cue("passed_around", "踢皮球")),
         steps=("major_escalation_apology",), owner="supervisor"),
    Case("regulator_threat_medium", tri(("contract_claims",), "medium", ["regulator_threat"]),
         steps=("major_regulator_liaison",), owner="supervisor", departments=("regulator_liaison",)),
]

SPECIAL_CASES = [
    Case("agitated_on_the_phone", tri(("contract_claims",), "medium", ["anger"]), channel="phone",
         steps=("spec_agitated_voice",), absent=("spec_private_room",), avoid=("avoid_raise_voice",)),
    Case("agitated_at_the_counter", tri(("contract_claims",), "medium", ["anger"]), channel="counter",
         steps=("spec_agitated_voice", "spec_private_room"), avoid=("avoid_raise_voice",)),
    Case("clash_with_handler", tri(("staff_attitude",), "medium", ["anger"]),
         steps=("spec_swap_handler",), owner="supervisor"),
    Case("clash_cue", tri(("contract_claims",)), facts(cue("handler_clash", "换个人")),
         steps=("spec_swap_handler",), owner="supervisor"),
    Case("performer_onlookers", tri(("service_counter",)), facts(cue("onlookers", "大吵大闹")), channel="counter",
         steps=("spec_performer_listen", "spec_private_room")),
    Case("physical_risk_at_the_counter", tri(("service_counter",), "high", ["violence_risk"]), channel="counter",
         now=("spec_physical_no_contact",), steps=("spec_physical_room",), avoid=("avoid_physical_contact",),
         owner="supervisor", departments=("security",)),
    Case("physical_threat_by_letter", tri(("contract_claims",), "high", ["violence_risk"]), channel="letter",
         now=("spec_physical_no_contact",), absent=("spec_physical_room",), owner="supervisor"),
    Case("goes_back_on_word", tri(("contract_claims",)), facts(cue("goes_back_on_word", "反悔")),
         steps=("spec_goes_back_record", "spec_goes_back_refuse", "spec_goes_back_pace"),
         avoid=("avoid_befriend",), owner="supervisor"),
    Case("rising_demands", tri(("contract_claims",)), facts(cue("demand_escalating", "得寸进尺")),
         steps=("spec_goes_back_refuse",), owner="supervisor"),
    Case("nitpicking_cue", tri(("sales_rebate",)), facts(cue("nitpicking", "小礼品")), steps=("spec_nitpick_record",)),
    Case("nitpicking_small_repeat", tri(("service_receipt",), "medium", ["repeat_complaint"]),
         facts(("amount", 30.0, "30元")), steps=("spec_nitpick_record",), owner="supervisor"),
    Case("not_nitpicking_large_repeat", tri(("contract_claims",), "medium", ["repeat_complaint"]),
         facts(("amount", 30000.0, "3万元")), absent=("spec_nitpick_record",), owner="supervisor"),
    Case("abusive", tri(("staff_attitude",), "medium", ["abusive_language"]),
         steps=("spec_abusive_respect", "spec_swap_handler"), avoid=("avoid_abuse_back",), owner="supervisor"),
    Case("hidden_agenda_withheld", tri(("contract_claims",)), facts(cue("demand_withheld", "你们看着办")),
         steps=("spec_hidden_junior_first", "spec_hidden_customer_states", "spec_hidden_core_first"),
         avoid=("avoid_leader_first", "avoid_company_offer_first"), owner="supervisor"),
    Case("hidden_agenda_leader_and_big_demand", tri(("contract_claims",), "medium", ["excessive_demand"]),
         facts(cue("leader_demand", "找你们领导")), steps=("spec_hidden_junior_first",), owner="supervisor"),
    Case("leader_alone_is_not_hidden_agenda", tri(("contract_claims",)), facts(cue("leader_demand", "找你们领导")),
         absent=("spec_hidden_junior_first",)),
    Case("professional_claimant", tri(("sales_contract_distortion",), "medium", ["professional_claimant"]),
         steps=("spec_pro_investigate", "spec_pro_no_fraud", "spec_pro_media", "spec_pro_no_hurry"),
         owner="senior_specialist", departments=("legal", "brand_pr")),
    Case("group_flag", tri(("sales_misrepresentation",), "high", ["group_complaint"]),
         steps=("spec_group_plan", "spec_group_external", "spec_group_representatives", "spec_group_confidential"),
         owner="senior_specialist", departments=("regulator_liaison", "brand_pr", "legal"),
         avoid=("avoid_side_deal",)),
    Case("group_size_fact", tri(("company_investment_return",)), facts(("group_size", 23, "23名客户")),
         steps=("spec_group_plan",), owner="senior_specialist"),
    Case("group_of_two_is_not_group", tri(("company_investment_return",)), facts(("group_size", 2, "我们两个人")),
         absent=("spec_group_plan",)),
    Case("gathering_police", tri(("company_investment_return",), "high", ["group_complaint"]),
         facts(cue("gathering", "拉横幅")), steps=("spec_group_police",), owner="senior_specialist",
         departments=("security",)),
]

COMPENSATION_CASES = [
    Case("limits_for_remedy", tri(("contract_claims",), mindset=["remedy"]),
         steps=("comp_actual_loss", "comp_reasonable_costs"), avoid=("avoid_promise_beyond_authority",)),
    Case("excessive", tri(("contract_claims",), "medium", ["excessive_demand"]),
         steps=("comp_actual_loss", "comp_no_lawyer_indirect", "comp_one_route"),
         avoid=("avoid_threaten_extortion",), owner="supervisor"),
    Case("mental_damage", tri(("contract_claims",)), facts(cue("mental_damage_demand", "精神损失")),
         steps=("comp_mental_damage",)),
    Case("lawyer_fee", tri(("contract_claims",)), facts(cue("lawyer_fee_demand", "律师费")),
         steps=("comp_no_lawyer_indirect",)),
    Case("extortion_combo", tri(("contract_claims",), "high", ["excessive_demand", "media_threat"]),
         steps=("comp_extortion_evidence",), avoid=("avoid_threaten_extortion",),
         owner="senior_specialist", departments=("legal", "brand_pr")),
]

APOLOGY_CASES = [
    Case("oral_apology", tri(mindset=["recognition"]), steps=("apol_oral",), avoid=("avoid_liability_words",)),
    Case("written_admission", tri(("sales_misrepresentation",)), facts(cue("written_admission_request", "书面道歉")),
         steps=("apol_written_on_request", "apol_written_facts"), avoid=("avoid_personal_written_note",),
         owner="supervisor", departments=("legal",)),
    Case("public_apology", tri(("staff_attitude",)), facts(cue("public_apology_demand", "登报道歉")),
         steps=("apol_public_check",), owner="senior_specialist", departments=("legal", "brand_pr")),
    Case("personal_rights", tri(("staff_attitude",)), facts(cue("personal_rights", "泄露隐私")),
         steps=("apol_personal_rights", "apol_public_check"), owner="supervisor", departments=("legal",)),
]

DEADLINE_CASES = [
    Case("regulatory_always", tri(), steps=("dl_regulatory",), absent=("dl_external",)),
    Case("customer_deadline", tri(("contract_claims",)), facts(("deadline", 3, "三天内")), steps=("dl_external",)),
    Case("regulator_forward_deadline", tri(("contract_claims",), "high", ["regulator_threat"]),
         facts(cue("regulator_forward", "监管转办"), ("deadline", 21, "15个工作日内")),
         steps=("dl_external", "dl_complex"), owner="supervisor", departments=("regulator_liaison",)),
]

BEYOND_CASES = [
    Case("self_harm", tri(("contract_claims",), "high", ["self_harm_threat"]),
         steps=("bey_selfharm_keep_talking", "bey_selfharm_supervisor"), avoid=("avoid_hang_up",),
         owner="supervisor", departments=("security",)),
    Case("self_harm_unsure", tri(("contract_claims",), flag_proba={"self_harm_threat": 0.35}),
         steps=("bey_selfharm_check",), owner="supervisor", review=True),
    Case("violence_unsure", tri(("service_counter",), flag_proba={"violence_risk": 0.3}),
         steps=("bey_violence_check",), review=True),
    Case("elderly_age", tri(("contract_claims",)), facts(("age", 72, "72岁")),
         steps=("bey_elderly_slow", "bey_elderly_family"), avoid=("avoid_rush_elderly",),
         absent=("bey_elderly_cash_value",)),
    Case("elderly_cue_surrender", tri(("contract_surrender",)), facts(cue("elderly", "老两口")),
         steps=("bey_elderly_slow", "bey_elderly_cash_value")),
    Case("not_elderly_59", tri(("contract_surrender",)), facts(("age", 59, "59岁")),
         absent=("bey_elderly_slow", "bey_elderly_cash_value")),
    Case("unsure_main_cause_is_reviewed", tri(("other",), cause_proba=[0.31]), review=True),
    Case("truncated_note_is_reviewed", tri(("contract_claims",), truncated=True), review=True),
    Case("level_hinging_on_a_borderline_flag_is_reviewed_when_the_playbook_asks",
         tri(("contract_claims",), "medium", ["anger"], flag_proba={"anger": 0.53}),
         thresholds={"anger": 0.5}, settings={"review_flag_margin": 0.05}, review=True),
    Case("a_playbook_without_the_hinge_margin_leaves_a_borderline_flag_alone",
         tri(("contract_claims",), "medium", ["anger"], flag_proba={"anger": 0.53}),
         thresholds={"anger": 0.5}, settings={"review_flag_margin": 0.0}, review=False),
    Case("a_borderline_flag_that_does_not_move_the_level_is_not", tri(("contract_claims",), "high",
                                                                     ["self_harm_threat", "anger"],
                                                                     flag_proba={"self_harm_threat": 0.9, "anger": 0.55}),
         thresholds={"anger": 0.5, "self_harm_threat": 0.5}, settings={"review_flag_margin": 0.05}, review=False,
         owner="supervisor"),
    Case("confident_no_review", tri(("contract_claims",), "medium", ["anger"]), review=False),
]

ALL_CASES = (GENERAL_CASES + NEGOTIATION_CASES + MINDSET_CASES + PERCEPTION_CASES + MAJOR_CASES
             + SPECIAL_CASES + COMPENSATION_CASES + APOLOGY_CASES + DEADLINE_CASES + BEYOND_CASES)


@run_table(GENERAL_CASES)
def test_general(case: Case) -> None:
    check(case)


@run_table(NEGOTIATION_CASES)
def test_negotiation(case: Case) -> None:
    check(case)


@run_table(MINDSET_CASES)
def test_mindset(case: Case) -> None:
    check(case)


@run_table(PERCEPTION_CASES)
def test_perception(case: Case) -> None:
    check(case)


@run_table(MAJOR_CASES)
def test_major(case: Case) -> None:
    check(case)


@run_table(SPECIAL_CASES)
def test_special_customer(case: Case) -> None:
    check(case)


@run_table(COMPENSATION_CASES)
def test_compensation(case: Case) -> None:
    check(case)


@run_table(APOLOGY_CASES)
def test_apology(case: Case) -> None:
    check(case)


@run_table(DEADLINE_CASES)
def test_deadline(case: Case) -> None:
    check(case)


@run_table(BEYOND_CASES)
def test_beyond_course(case: Case) -> None:
    check(case)


def test_plain_enquiry_is_answered_not_apologised_for() -> None:
    p = plan(tri(), Facts(), received=dt.date(2024, 5, 8), enquiry=True)
    assert [s.id for s in p.now] == ["enquiry_answer"]
    assert [s.id for s in p.reference] == ["general_listen", "general_record", "perc_first_impression"]
    assert "general_apologise_answer" not in all_steps(p) and "dl_regulatory" not in all_steps(p)
    assert p.reply_due.decision_due is None and p.reply_due.decision_days is None
    assert p.owner == "frontline" and p.departments == [] and not p.review and p.enquiry


def test_a_low_complaint_keeps_the_general_process_as_reference() -> None:
    p = plan(tri(), Facts(), received=dt.date(2024, 5, 8))
    assert [s.id for s in p.reference] == GENERAL + ["perc_first_impression"]
    assert not {s.id for s in p.now} & set(GENERAL)
    assert p.reply_due.decision_due == "2024-05-23"


def test_every_section_has_rules_and_is_exercised() -> None:
    pb = default_playbook()
    assert {r.section for r in pb.rules} == set(SECTIONS)
    fired = {f.rule for c in ALL_CASES for f in plan_of(c).fired}
    never = [r.id for r in pb.rules if r.id not in fired]
    assert never == [], f"rules no test case fires: {never}"


# ---------------------------------------------------------------- invariants


KEY_ACTION = {"self_harm_threat": "bey_selfharm_keep_talking", "violence_risk": "spec_physical_no_contact",
              "media_threat": "major_media_brand", "regulator_threat": "major_regulator_liaison",
              "legal_threat": "major_legal_review", "group_complaint": "spec_group_plan"}


def assert_invariants(t: Triage, f: Facts) -> None:
    pb = default_playbook()
    p = plan(t, f)
    now, then, ref = [s.id for s in p.now], [s.id for s in p.then], [s.id for s in p.reference]
    ids = now + then + ref
    assert len(now) <= pb.settings.max_now and len(then) <= pb.settings.max_then
    assert len(p.avoid) <= pb.settings.max_avoid
    assert len(ids) == len(set(ids)), "no step twice, in any tier"
    assert [s.id for s in p.steps] == now + then
    assert not set(GENERAL) & set(now + then), "the general process is reference, never a step to act on"
    assert len(p.avoid) == len({a.id for a in p.avoid}), "no duplicate avoid"
    if t.risk_level == "high":
        assert OWNERS.index(p.owner) >= OWNERS.index("supervisor")
    assert len(p.departments) == len(set(p.departments))
    if "self_harm_threat" in t.risk_flags:
        assert "bey_selfharm_keep_talking" in now[:2], "safety first"
    urg = {s: r.urgency for r in pb.rules for s in r.steps if r.tier == "now"}
    for flag, step in KEY_ACTION.items():
        if flag in t.risk_flags and step not in now:
            # only more urgent steps may keep an escalation out of the five places
            assert len(now) == pb.settings.max_now and all(urg.get(s, 0) >= urg[step] for s in now), \
                f"{flag}: {step} should be in now {now}"
    ranked = [urg[s] for s in now if s in urg]
    assert ranked == sorted(ranked, reverse=True), "now is ordered by urgency"
    if t.cause_proba and t.cause_proba[0] < pb.settings.review_cause_below:
        assert p.review and any("主要原因" in r for r in p.review_reasons)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_invariants_on_table(case: Case) -> None:
    assert_invariants(case.triage, case.facts)


_tax = taxonomy()


@st.composite
def triages(draw) -> Triage:
    causes = draw(st.lists(st.sampled_from(_tax.cause_ids), min_size=1, max_size=3, unique=True))
    flags = draw(st.lists(st.sampled_from(_tax.flag_ids), max_size=4, unique=True))
    minds = draw(st.lists(st.sampled_from(_tax.mindset_ids), max_size=2, unique=True))
    level = draw(st.sampled_from(["low", "medium", "high"]))
    probs = st.floats(0, 1)
    return tri(causes, level, flags, minds, cause_proba=sorted((draw(probs) for _ in causes), reverse=True),
               flag_proba={f: (draw(st.floats(0.5, 1)) if f in flags else draw(probs)) for f in _tax.flag_ids},
               mindset_proba={m: draw(probs) for m in minds})


@st.composite
def fact_sets(draw) -> Facts:
    items = []
    if draw(st.booleans()):
        items.append(("age", draw(st.integers(1, 110))))
    for _ in range(draw(st.integers(0, 3))):
        items.append(("amount", draw(st.floats(1, 1e7))))
    if draw(st.booleans()):
        items.append(("deadline", draw(st.one_of(st.none(), st.integers(0, 60)))))
    if draw(st.booleans()):
        items.append(("group_size", draw(st.integers(2, 200))))
    for name in draw(st.lists(st.sampled_from(["goes_back_on_word", "nitpicking", "leader_demand", "gathering",
                                               "demand_withheld", "elderly", "public_apology_demand"]),
                              max_size=3, unique=True)):
        items.append(cue(name))
    return facts(*items)


@settings(max_examples=300, deadline=None)
@given(triages(), fact_sets())
def test_invariants_random(t: Triage, f: Facts) -> None:
    assert_invariants(t, f)


def test_review_reasons_are_chinese_and_quote_the_probability() -> None:
    pb = default_playbook()
    pb = replace(pb, settings=replace(pb.settings, review_flag_margin=0.05))  # the hinge reason on
    p = plan(tri(("other",), "medium", ["anger"], cause_proba=[0.3], flag_proba={"anger": 0.52}), Facts(),
             playbook=pb, flag_thresholds={"anger": 0.5})
    assert p.review
    assert any(r.startswith("主要原因把握不足：其他") and "0.30" in r for r in p.review_reasons)
    assert any("情绪激动" in r and "0.52" in r and "0.50" in r for r in p.review_reasons)
    assert not any(re.search(r"[a-z]+_[a-z]+", r) for r in p.review_reasons), p.review_reasons


def test_two_causes_too_close_to_tell_which_is_main_mark_review() -> None:
    margin = default_playbook().settings.review_cause_margin
    second = round(0.55 - margin + 0.05, 2)  # the top two closer than the playbook's margin
    close = plan(tri(("contract_surrender", "sales_misrepresentation"), cause_proba=[0.55, second]), Facts())
    assert close.review
    assert any(r.startswith("主要原因与次要原因难分：解除合同处理的争议") and "0.55" in r and f"{second:.2f}" in r
               for r in close.review_reasons), close.review_reasons
    clear = plan(tri(("contract_surrender", "sales_misrepresentation"), cause_proba=[0.80, 0.15]), Facts())
    assert not clear.review


def test_a_level_the_learned_model_doubts_marks_review_with_both_figures() -> None:
    cut = default_playbook().settings.review_level_below
    assert 0 < cut < 1  # chosen on the slice-held-out curve (docs/model_selection.md)
    doubted = plan(tri(("contract_claims",), "medium", ["anger"],
                       level_proba={"low": 0.9, "medium": round(cut / 2, 2), "high": 0.9 - cut / 2}), Facts())
    reasons = [r for r in doubted.review_reasons if r.startswith("风险等级存疑")]
    assert reasons and f"「{taxonomy().name('medium')}」" in reasons[0] and f"更像「{taxonomy().name('low')}」（0.90）" in reasons[0] and f"{cut / 2:.2f}" in reasons[0] and f"{cut:.2f}" in reasons[0], doubted.review_reasons
    agreed = plan(tri(("contract_claims",), "medium", ["anger"],
                      level_proba={"low": 0.1, "medium": 0.8, "high": 0.1}), Facts())
    assert not any(r.startswith("风险等级存疑") for r in agreed.review_reasons)


def test_a_mindset_alone_never_marks_review() -> None:
    p = plan(tri(("contract_claims",), mindset=["venting"], mindset_proba={"venting": 0.41}), Facts())
    assert not p.review


def test_fired_records_carry_the_label_and_probability() -> None:
    t = tri(("contract_claims",), "high", ["media_threat"], flag_proba={"media_threat": 0.66},
            level_proba={"low": 0.1, "medium": 0.2, "high": 0.7})
    fired = {f.rule: f for f in plan(t, Facts()).fired}
    assert "flag media_threat p=0.66" in fired["major_media_threat"].because
    assert fired["major_media_threat"].confidence == pytest.approx(0.66)
    # `all`: the weakest part sets the confidence (the level is the rule's, so it brings none)
    assert fired["major_media_vip"].confidence == pytest.approx(0.66)
    assert fired["general_process"].because == "enquiry false" and fired["general_process"].confidence is None
    assert fired["major_media_threat"].tier == "now" and fired["general_process"].tier == "reference"


GATES = [
    # (what, triage, rule, fires)
    ("a cause at 0.00 in the top 3 does not fire its rule",
     tri(("contract_policy_service", "company_investment_return"), cause_proba=[0.99, 0.0]), "negotiation_prep_dividend", False),
    ("a cause above the default gate fires",
     tri(("contract_claims", "company_investment_return"), cause_proba=[0.6, 0.35]), "negotiation_prep_dividend", True),
    ("a cause just under the default gate does not",
     tri(("contract_claims", "company_investment_return"), cause_proba=[0.7, 0.29]), "negotiation_prep_dividend", False),
    ("a mindset under its gate does not fire",
     tri(("contract_claims",), mindset=["venting"], mindset_proba={"venting": 0.39}), "mindset_venting", False),
    ("a mindset over its gate fires",
     tri(("contract_claims",), mindset=["venting"], mindset_proba={"venting": 0.41}), "mindset_venting", True),
    ("a rule's own min_proba overrides the default",
     tri(("contract_claims",), flag_proba={"self_harm_threat": 0.25}), "beyond_self_harm_unsure", True),
]


@pytest.mark.parametrize("what, triage, rule, fires", GATES, ids=[g[0] for g in GATES])
def test_confidence_gates(what, triage, rule, fires) -> None:
    fired = {f.rule: f for f in plan(triage, Facts()).fired}
    assert (rule in fired) is fires
    if fires and rule.startswith(("negotiation", "mindset")):
        assert "≥ 0." in fired[rule].because, "the trace shows the gate it passed"


def test_gates_and_tiers_are_data(tmp_path: Path) -> None:
    body = rule_yaml(when={"cause": "contract_claims"}, tier="now", urgency=80) + \
        "settings:\n  gates: {cause: 0.9}\n"
    pb = load_playbook(write(tmp_path, "g.yaml", body))
    assert [s.id for s in plan(tri(("contract_claims",), cause_proba=[0.95]), Facts(), playbook=pb).now] == ["s1"]
    assert plan(tri(("contract_claims",), cause_proba=[0.85]), Facts(), playbook=pb).now == []


def test_safety_first_then_escalation_then_the_one_focus_step() -> None:
    t = tri(("contract_claims",), "high", ["self_harm_threat", "media_threat"], mindset=["venting"])
    now = [s.id for s in plan(t, Facts()).now]
    assert now[:2] == ["bey_selfharm_keep_talking", "bey_selfharm_supervisor"]
    assert now.index("major_media_brand") > 1
    assert len(now) <= 5


def test_only_one_focus_step_joins_now() -> None:
    t = tri(("contract_surrender",), mindset=["venting"])
    p = plan(t, Facts())
    focus = {s for r in default_playbook().rules if r.tier == "focus" for s in r.steps}
    assert len([s for s in p.now if s.id in focus]) == 1
    assert [s for s in p.then if s.id in focus], "the other focus steps come next"


# ---------------------------------------------------------------- reply due


def test_reply_due_by_level_and_received() -> None:
    p = plan(tri(("contract_claims",), "high", ["violence_risk"]), Facts(), received=dt.date(2024, 5, 8))
    r = p.reply_due
    assert r.first_reply_hours == 2 and r.decision_days == 15
    assert (r.decision_due, r.complex_due, r.extended_due) == ("2024-05-23", "2024-06-07", "2024-07-07")
    assert "30" in r.extension
    assert plan(tri(), Facts()).reply_due.first_reply_hours == 48
    assert plan(tri(), Facts(), enquiry=True).reply_due.decision_days is None
    assert plan(tri(("contract_claims",), "medium", ["anger"]), Facts()).reply_due.first_reply_hours == 24
    assert plan(tri(), Facts()).reply_due.decision_due is None


def test_customer_deadline_caps_first_reply() -> None:
    r = plan(tri(), facts(("deadline", 1, "明天之前"))).reply_due
    assert r.first_reply_hours == 24 and r.customer_deadline_days == 1
    r = plan(tri(), facts(("deadline", 0, "今天之内"))).reply_due
    assert r.first_reply_hours == 2
    assert plan(tri(), facts(("deadline", None, "周五前"))).reply_due.first_reply_hours == 48


# ---------------------------------------------------------------- schema errors

GOOD_STEPS = """
section: general
steps:
  - {id: s1, text: 倾听}
avoid:
  - {id: a1, text: 不要争吵}
"""


def write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def rule_yaml(**over) -> str:
    rule = {"id": "r1", "section": "general", "priority": 1, "when": {"always": True},
            "steps": ["s1"], "avoid": ["a1"], "owner": "frontline"}
    rule.update(over)
    return GOOD_STEPS + "rules:\n  - " + json.dumps(rule, ensure_ascii=False) + "\n"


def test_minimal_playbook_loads_and_plans(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "pb.yaml", rule_yaml()))
    p = plan(tri(), Facts(), playbook=pb)
    assert [s.id for s in p.reference] == ["s1"] and [a.id for a in p.avoid] == ["a1"]


BROKEN = [
    ("unknown_flag", {"when": {"flag": "media_threatt"}}, "unknown flag 'media_threatt'"),
    ("unknown_cause", {"when": {"cause": ["contract_surrender", "surrender"]}}, "unknown cause 'surrender'"),
    ("unknown_group", {"when": {"cause_group": "agents"}}, "unknown cause group 'agents'"),
    ("unknown_mindset", {"when": {"mindset": "anger"}}, "unknown mindset 'anger'"),
    ("unknown_level", {"when": {"risk_level": "critical"}}, "unknown risk level 'critical'"),
    ("unknown_fact", {"when": {"fact": "salary", "op": ">=", "value": 1}}, "unknown fact 'salary'"),
    ("unknown_cue", {"when": {"cue": "sneaky"}}, "unknown cue 'sneaky'"),
    ("bad_op", {"when": {"fact": "age", "op": "=>", "value": 60}}, "unknown op '=>'"),
    ("bad_proba", {"when": {"flag": "anger", "min_proba": 1.5}}, "min_proba must be a number in [0, 1]"),
    ("two_atoms", {"when": {"flag": "anger", "mindset": "venting"}}, "exactly one of"),
    ("undefined_step", {"steps": ["s1", "s9"]}, "step 's9' is not defined"),
    ("avoid_as_step", {"steps": ["a1"]}, "step 'a1' is not defined (it is an avoid id)"),
    ("undefined_avoid", {"avoid": ["a9"]}, "avoid 'a9' is not defined"),
    ("bad_owner", {"owner": "boss"}, "owner 'boss'"),
    ("bad_department", {"departments": ["marketing"]}, "department 'marketing'"),
    ("bad_section", {"section": "misc"}, "section 'misc'"),
    ("bad_priority", {"priority": "high"}, "priority must be an integer"),
    ("bad_tier", {"tier": "soon"}, "tier 'soon' is not one of"),
    ("bad_urgency", {"urgency": 101}, "urgency must be an integer from 0 to 100"),
    ("bad_channel", {"when": {"channel": "fax"}}, "unknown channel 'fax'"),
    ("bad_gate", {"when": {"cause": "contract_claims", "min_proba": -0.1}}, "min_proba must be a number in [0, 1]"),
    ("bad_enquiry", {"when": {"enquiry": "yes"}}, "enquiry must be true or false"),
    ("unknown_key", {"steps_": ["s1"]}, "unknown keys ['steps_']"),
]


@pytest.mark.parametrize("name,override,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_schema_errors(tmp_path: Path, name: str, override: dict, message: str) -> None:
    path = write(tmp_path, f"{name}.yaml", rule_yaml(**override))
    with pytest.raises(PlaybookError) as err:
        load_playbook(path)
    text = str(err.value)
    assert message in text
    assert f"{name}.yaml" in text
    if name not in ("undefined_step", "avoid_as_step", "undefined_avoid"):
        assert "rule 'r1'" in text


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", rule_yaml())
    write(tmp_path, "b.yaml", GOOD_STEPS.replace("section: general", "section: mindset")
          + "rules:\n  - {id: r1, section: mindset, priority: 2, when: {always: true}}\n")
    with pytest.raises(PlaybookError) as err:
        load_playbook(tmp_path)
    text = str(err.value)
    assert "b.yaml: rule 'r1': duplicate rule id" in text
    assert "b.yaml: steps 's1': duplicate step/avoid id" in text
    assert "b.yaml: avoid 'a1': duplicate step/avoid id" in text


def test_all_problems_listed_at_once(tmp_path: Path) -> None:
    body = GOOD_STEPS + """rules:
  - {id: r1, section: general, priority: 1, when: {flag: nope}, steps: [s1], owner: boss}
  - {id: r2, section: general, priority: 1, when: {cue: nope}, steps: [zz], departments: [pr]}
"""
    with pytest.raises(PlaybookError) as err:
        load_playbook(write(tmp_path, "many.yaml", body))
    text = str(err.value)
    assert text.startswith("5 problem(s)")
    for part in ("rule 'r1': unknown flag 'nope'", "rule 'r1': owner 'boss'", "rule 'r2': unknown cue 'nope'",
                 "rule 'r2': department 'pr'", "rule 'r2': step 'zz' is not defined"):
        assert part in text


def test_invalid_yaml_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="bad.yaml: cannot read YAML"):
        load_playbook(write(tmp_path, "bad.yaml", "rules: [\n  - {id: r1"))
    with pytest.raises(PlaybookError, match="top level must be a mapping"):
        load_playbook(write(tmp_path, "list.yaml", "- a\n- b\n"))
    with pytest.raises(PlaybookError, match="no such playbook"):
        load_playbook(tmp_path / "missing")


def test_bad_settings(tmp_path: Path) -> None:
    body = rule_yaml() + "settings:\n  reply_hours: {high: 2, medium: 24}\n  decision_days: -1\n" \
        "  gates: {cause: 1.5}\n  review_cause_below: 2\n"
    with pytest.raises(PlaybookError) as err:
        load_playbook(write(tmp_path, "s.yaml", body))
    for part in ("reply_hours", "decision_days", "gates.cause", "review_cause_below"):
        assert part in str(err.value)


# ---------------------------------------------------------------- the seed case


def seed_triage() -> Triage:
    return Triage(
        cause=["contract_surrender", "sales_misrepresentation"], cause_proba=[0.86, 0.09],
        cause_group=["contract", "sales"], risk_level="high",
        risk_level_proba={"low": 0.04, "medium": 0.18, "high": 0.78},
        risk_flags=["media_threat", "anger"],
        risk_flag_proba={"media_threat": 0.93, "anger": 0.81, "excessive_demand": 0.14, "legal_threat": 0.05},
        mindset=["remedy", "recognition"], mindset_proba={"remedy": 0.84, "recognition": 0.67, "revenge": 0.08},
        flag_evidence={
            "media_threat": [Evidence(SEED.index("媒体曝光"), SEED.index("媒体曝光") + 4, "媒体曝光")],
            "anger": [Evidence(SEED.index("情绪冲动"), SEED.index("情绪冲动") + 4, "情绪冲动")],
        },
    )


def test_seed_case() -> None:
    f = extract_facts(SEED)
    assert [x.value for x in f.of("amount")] == [45000.0, 51142.75, 2459.79]
    assert f.first("age") == 68
    p = plan(seed_triage(), f, received=dt.date(2024, 5, 8), channel="counter")
    now = [s.id for s in p.now]
    assert "major_media_brand" in now                      # tell brand PR about the media threat
    assert "major_restate_core" in now                     # stating back the core problem
    assert "mind_recognition_no_onspot" in now             # not adopting the 50% proposal on the spot
    assert "bey_elderly_cash_value" in now                 # cash value in writing for the 68-year-old
    assert len(now) <= 5 and len(p.now) + len(p.then) <= 12
    assert [s.id for s in p.reference][:2] == ["general_listen", "general_record"]  # listening, collapsed
    assert "spec_private_room" in [s.id for s in p.then]   # at the counter
    assert OWNERS.index(p.owner) >= OWNERS.index("senior_specialist")
    assert "brand_pr" in p.departments
    assert not p.review
    assert p.reply_due.first_reply_hours == 2 and p.reply_due.decision_due == "2024-05-23"


def test_seed_card_and_json() -> None:
    t, f = seed_triage(), extract_facts(SEED)
    p = plan(t, f, received=dt.date(2024, 5, 8))
    card = render_card(t, f, p)
    for part in ("解除合同处理的争议(含现金价值)", "0.86", "重大投诉", "媒体曝光", "“媒体曝光”", "补救心理",
                 "45,000元", "51,142.75元", "2,459.79元", "68岁", "资深投诉专员", "品牌公关",
                 "首次回复：2小时内", "2024-05-23", "■ 现在就做", "■ 切勿", "一般流程：倾听 → 记录 → 复述确认",
                 "major_media_vip"):
        assert part in card, part
    lines = card.splitlines()
    assert lines.index("■ 现在就做") < lines.index("■ 接着做") < lines.index("── 分诊依据 ──")
    assert lines.index("■ 现在就做") <= 5, "what to do now is on the first screen"
    assert "需人工复核" not in card
    assert "〔" not in card, "no label ids on the handler's card"
    out = plan_to_json(t, f, p)
    assert list(out) == ["triage", "facts", "plan"]
    assert list(out["plan"])[:4] == ["owner", "owner_name", "departments", "department_names"]
    assert [s["id"] for s in out["plan"]["now"]] == [s.id for s in p.now]
    assert out["triage"]["cause"][0] == {"id": "contract_surrender", "name": "解除合同处理的争议(含现金价值)",
                                         "group": "contract", "proba": 0.86}
    json.dumps(out, ensure_ascii=False)  # serialisable


def test_a_flag_said_outright_under_the_models_bar_reads_as_said_not_as_a_low_probability() -> None:
    """The seed's 情绪冲动 sets anger whatever the model thinks; a card saying 情绪激动 0.04, or a rule
    fired on 情绪激动 p=0.04, looks like noise to a handler. Where the note says it, the card, the JSON
    and the rule trace say 原文明说."""
    from dataclasses import replace as with_

    t = with_(seed_triage(), risk_flag_proba={"media_threat": 0.93, "anger": 0.04}, said_outright=["anger"])
    f = extract_facts(SEED)
    p = plan(t, f, received=dt.date(2024, 5, 8), channel="counter")
    card = render_card(t, f, p)
    assert "  - 情绪激动 原文明说  依据：“情绪冲动”" in card.splitlines()
    assert "情绪激动 0.04" not in card and "情绪激动 p=0.04" not in card
    assert "  - 媒体曝光 0.93  依据：“媒体曝光”" in card.splitlines()
    assert any("情绪激动（原文明说）" in line for line in card.splitlines() if line.startswith("  - special_agitated"))
    flags = {x["id"]: x for x in plan_to_json(t, f, p)["triage"]["risk_flags"]}
    assert flags["anger"]["said_outright"] is True and flags["anger"]["proba"] == 0.04
    assert flags["media_threat"]["said_outright"] is False


def test_a_ranked_cause_far_below_the_first_reads_under_one_percent_not_zero() -> None:
    """'误导保障范围 0.00' beside the main cause reads as ruled out or a fault; the card says <0.01."""
    from dataclasses import replace as with_

    t = with_(seed_triage(), cause_proba=[0.996, 0.003])
    f = extract_facts(SEED)
    card = render_card(t, f, plan(t, f, received=dt.date(2024, 5, 8)))
    line = next(x for x in card.splitlines() if x.startswith("投诉原因："))
    assert line == "投诉原因：解除合同处理的争议(含现金价值) 1.00；误导保障范围、投资收益 <0.01"


def test_card_masks_pii_and_shows_review() -> None:
    text = "客户电话13812345678，三天内不给答复就去报社"
    t = tri(("contract_claims",), "medium", ["media_threat"], cause_proba=[0.3],
            evidence={"media_threat": [Evidence(0, 16, "电话13812345678去报社")]})
    f = extract_facts(text)
    card = render_card(t, f, plan(t, f))
    assert "13812345678" not in card and "138****5678" in card
    assert [ln for ln in card.splitlines() if ln.startswith("【需人工复核】主要原因把握不足")]
    assert "13812345678" not in json.dumps(plan_to_json(t, f, plan(t, f)), ensure_ascii=False)


# ------------------------------------------------------ the trace as a handler reads it

BECAUSE_ZH = [
    ("enquiry false", "不是单纯咨询"),
    ("risk_level high", "风险等级为「重大投诉」"),
    ("flag repeat_complaint p=0.99; fact prior_complaints=2 >= 2", "多次投诉、踢皮球 p=0.99；此前投诉次数 2 ≥ 2"),
    ("mindset remedy p=0.95 ≥ 0.40; cue compensation_demand '全额退保'", "补救心理 p=0.95 ≥ 0.40；原文线索「全额退保」"),
    ("fact age max=68 >= 60", "年龄（最大） 68 ≥ 60"),
    ("cue compensation_demand '补偿'; fact amount=45000.0", "原文线索「补偿」；金额 45000"),
    ("cue onlookers '在大厅'; channel counter", "原文线索「在大厅」；渠道：柜面"),
    ("flag self_harm_threat p=0.30; not flag=self_harm_threat", "轻生言论 p=0.30；未判定为「轻生言论」"),
    ("uncertain cause", "模型对投诉原因没有把握"),
    ("top risk_level p=0.45 < 0.50", "风险等级最高概率 p=0.45 < 0.50"),
    ("cause_group contract p=0.71", "合同或保单服务规则 p=0.71"),
    ("triage truncated", "原文过长，只读了前面部分"),
    ("always", "一律适用"),
]


@pytest.mark.parametrize("because,said", BECAUSE_ZH, ids=[b for b, _ in BECAUSE_ZH])
def test_the_rule_trace_reads_in_chinese(because: str, said: str) -> None:
    from pipeline.handling.review import because_zh

    assert because_zh(because) == said


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_every_fired_rule_of_the_table_reads_without_machine_words(case: Case) -> None:
    """What the card and the page show for each fired rule: no condition keyword (flag, cue, fact,
    enquiry, risk_level, channel...) and no snake_case id; the JSON keeps the machine form."""
    from pipeline.handling.review import because_zh

    machine = re.compile(r"\b(?:flag|cue|fact|enquiry|risk_level|cause_group|channel|uncertain|triage|top|not|always"
                         r"|true|false)\b|[a-z]+_[a-z]+")
    p = plan_of(case)
    assert p.fired
    for fired in p.fired:
        said = because_zh(fired.because)
        assert said and not machine.search(said), (fired.rule, fired.because, said)
