"""The playbook and the plan engine: one table per playbook section, invariants,
schema errors for broken playbook files, the seed case end to end."""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.handling.facts import extract_facts
from pipeline.contract.records import Evidence, Fact, Facts, Triage
from pipeline.handling.render import plan_to_json, render_card
from pipeline.handling.playbook import (
    OWNERS, SECTIONS, PlaybookError, default_playbook, load_playbook, plan,
)
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


def check(case: Case) -> None:
    p = plan(case.triage, case.facts)
    step_ids = [s.id for s in p.steps]
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
    Case("plain_enquiry", tri(), steps=tuple(GENERAL) + ("perc_first_impression", "dl_regulatory"),
         avoid=("avoid_confrontation", "avoid_disparage_company", "avoid_miss_callback")),
    Case("service_low", tri(("service_call_center",)), steps=tuple(GENERAL)),
    Case("medium_still_general_first", tri(("contract_claims",), "medium", ["anger"]), steps=tuple(GENERAL)),
]

NEGOTIATION_CASES = [
    Case("remedy_negotiates", tri(("contract_claims",), mindset=["remedy"]),
         steps=("nego_prepare", "nego_sincerity_authority", "nego_terms_first", "nego_follow_through"),
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
    Case("agitated", tri(("contract_claims",), "medium", ["anger"]),
         steps=("spec_agitated_voice", "spec_private_room"), avoid=("avoid_raise_voice",)),
    Case("clash_with_handler", tri(("staff_attitude",), "medium", ["anger"]),
         steps=("spec_swap_handler",), owner="supervisor"),
    Case("clash_cue", tri(("contract_claims",)), facts(cue("handler_clash", "换个人")),
         steps=("spec_swap_handler",), owner="supervisor"),
    Case("performer_onlookers", tri(("service_counter",)), facts(cue("onlookers", "大吵大闹")),
         steps=("spec_performer_listen", "spec_private_room")),
    Case("physical_risk", tri(("service_counter",), "high", ["violence_risk"]),
         steps=("spec_physical_no_contact", "spec_physical_room"), avoid=("avoid_physical_contact",),
         owner="supervisor", departments=("security",)),
    Case("goes_back_on_word", tri(("contract_claims",)), facts(cue("goes_back_on_word", "反悔")),
         steps=("spec_goes_back_record", "spec_goes_back_refuse", "spec_goes_back_pace"),
         avoid=("avoid_befriend", "avoid_disparage_company"), owner="supervisor"),
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
    Case("low_confidence_cause", tri(("other",), uncertain=["cause"], cause_proba=[0.31]),
         steps=("bey_review_triage",), review=True),
    Case("reconciled_level", tri(("contract_claims",), "medium", ["anger"], reconciliation="raised to medium"),
         steps=("bey_review_triage",), review=True),
    Case("truncated_note", tri(("contract_claims",), truncated=True), steps=("bey_review_triage",), review=True),
    Case("split_risk_level", tri(("contract_claims",), "medium", ["anger"],
                                 level_proba={"low": 0.3, "medium": 0.4, "high": 0.3}),
         steps=("bey_review_triage",), review=True),
    Case("confident_no_review", tri(("contract_claims",), "medium", ["anger"]), review=False,
         absent=("bey_review_triage",)),
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


def test_plain_enquiry_exact_plan() -> None:
    p = plan(tri(), Facts())
    assert [s.id for s in p.steps] == GENERAL + ["perc_first_impression", "dl_regulatory"]
    assert p.owner == "frontline" and p.departments == [] and not p.review


def test_every_section_has_rules_and_is_exercised() -> None:
    pb = default_playbook()
    assert {r.section for r in pb.rules} == set(SECTIONS)
    fired = {f.rule for c in ALL_CASES for f in plan(c.triage, c.facts).fired}
    never = [r.id for r in pb.rules if r.id not in fired]
    assert never == [], f"rules no test case fires: {never}"


# ---------------------------------------------------------------- invariants


def assert_invariants(t: Triage, f: Facts) -> None:
    p = plan(t, f)
    ids = [s.id for s in p.steps]
    assert ids[: len(GENERAL)] == GENERAL, "the general process comes first"
    assert len(ids) == len(set(ids)), "no duplicate steps"
    assert len(p.avoid) == len({a.id for a in p.avoid}), "no duplicate avoid"
    if t.risk_level == "high":
        assert OWNERS.index(p.owner) >= OWNERS.index("supervisor")
    if t.uncertain:
        assert p.review
        for head in t.uncertain:
            assert any(head in r for r in p.review_reasons), f"review reasons must name {head}"
    assert len(p.departments) == len(set(p.departments))
    pb = default_playbook()
    for fr in p.fired:
        for s in pb.rule(fr.rule).steps:
            assert s in ids


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
    unc = draw(st.lists(st.sampled_from(["cause", "risk_level", "risk_flags", "mindset"]), max_size=2, unique=True))
    probs = st.floats(0, 1)
    return tri(causes, level, flags, minds, cause_proba=[draw(probs) for _ in causes],
               flag_proba={f: draw(probs) for f in _tax.flag_ids}, uncertain=unc,
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


def test_review_names_uncertain_heads() -> None:
    p = plan(tri(("other",), uncertain=["cause", "mindset"], cause_proba=[0.3]), Facts())
    assert p.review
    assert any(r.startswith("cause（投诉原因）") and "0.30" in r for r in p.review_reasons)
    assert any(r.startswith("mindset（客户心理）") for r in p.review_reasons)


def test_fired_records_carry_the_label_and_probability() -> None:
    t = tri(("contract_claims",), "high", ["media_threat"], flag_proba={"media_threat": 0.66},
            level_proba={"low": 0.1, "medium": 0.2, "high": 0.7})
    fired = {f.rule: f for f in plan(t, Facts()).fired}
    assert "flag media_threat p=0.66" in fired["major_media_threat"].because
    assert fired["major_media_threat"].confidence == pytest.approx(0.66)
    # `all`: the weakest part sets the confidence
    assert fired["major_media_vip"].confidence == pytest.approx(0.66)
    assert fired["general_process"].because == "always" and fired["general_process"].confidence is None


def test_steps_follow_priority_after_general() -> None:
    t = tri(("contract_claims",), "high", ["self_harm_threat", "anger"], mindset=["venting"])
    ids = [s.id for s in plan(t, Facts()).steps]
    assert ids.index("bey_selfharm_keep_talking") < ids.index("major_principles") < ids.index("mind_venting_let_finish")
    assert ids.index("mind_venting_let_finish") < ids.index("dl_regulatory")


# ---------------------------------------------------------------- reply due


def test_reply_due_by_level_and_received() -> None:
    p = plan(tri(("contract_claims",), "high", ["violence_risk"]), Facts(), received=dt.date(2024, 5, 8))
    r = p.reply_due
    assert r.first_reply_hours == 2 and r.decision_days == 15
    assert (r.decision_due, r.complex_due, r.extended_due) == ("2024-05-23", "2024-06-07", "2024-07-07")
    assert "30" in r.extension
    assert plan(tri(), Facts()).reply_due.first_reply_hours == 48
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
    assert [s.id for s in p.steps] == ["s1"] and [a.id for a in p.avoid] == ["a1"]


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
    body = rule_yaml() + "settings:\n  reply_hours: {high: 2, medium: 24}\n  decision_days: -1\n"
    with pytest.raises(PlaybookError) as err:
        load_playbook(write(tmp_path, "s.yaml", body))
    assert "reply_hours" in str(err.value) and "decision_days" in str(err.value)


# ---------------------------------------------------------------- the seed case


def seed_triage() -> Triage:
    return Triage(
        cause=["contract_surrender", "sales_misrepresentation"], cause_proba=[0.86, 0.71],
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
    p = plan(seed_triage(), f, received=dt.date(2024, 5, 8))
    ids = [s.id for s in p.steps]
    assert ids[0] == "general_listen"                      # listening first
    assert "general_apologise_answer" in ids               # apologising
    assert "major_restate_core" in ids                     # stating back the core problem
    assert "bey_elderly_cash_value" in ids                 # cash value in writing for an elderly customer
    assert "mind_recognition_no_onspot" in ids             # not adopting the customer's proposal on the spot
    assert "comp_actual_loss" in ids                       # the compensation limit
    assert "avoid_disparage_company" in [a.id for a in p.avoid]
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
                 "首次回复：2小时内", "2024-05-23", "1. 【一般流程】", "切勿：", "major_media_vip"):
        assert part in card, part
    assert "需人工复核" not in card
    out = plan_to_json(t, f, p)
    assert list(out) == ["triage", "facts", "plan"]
    assert list(out["plan"]) == ["owner", "departments", "reply_due", "review", "review_reasons", "steps",
                                 "avoid", "fired"]
    assert out["triage"]["cause"][0] == {"id": "contract_surrender", "name": "解除合同处理的争议(含现金价值)",
                                         "group": "contract", "proba": 0.86}
    json.dumps(out, ensure_ascii=False)  # serialisable


def test_card_masks_pii_and_shows_review() -> None:
    text = "客户电话13812345678，三天内不给答复就去报社"
    t = tri(("contract_claims",), "medium", ["media_threat"], uncertain=["mindset"],
            evidence={"media_threat": [Evidence(0, 16, "电话13812345678去报社")]})
    f = extract_facts(text)
    card = render_card(t, f, plan(t, f))
    assert "13812345678" not in card and "138****5678" in card
    assert card.splitlines()[1].startswith("【需人工复核】mindset（客户心理）")
    assert "13812345678" not in json.dumps(plan_to_json(t, f, plan(t, f)), ensure_ascii=False)


# ---------------------------------------------------------------- speed


def test_plan_is_fast() -> None:
    t, f = seed_triage(), extract_facts(SEED)
    plan(t, f)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        plan(t, f, received=dt.date(2024, 5, 8))
    per_call = (time.perf_counter() - start) / n
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} µs per plan"
