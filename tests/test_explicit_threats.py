"""A threat said outright is not left to the model's doubt; the demand clause is a feature of its own."""
from __future__ import annotations


from pipeline.model.features import DemandWords, demand_clauses, explicit_threat_gate, explicit_threats


def test_a_dated_threat_to_a_newspaper_is_a_media_threat():
    said = explicit_threats("如下周一前仍无专人联系本人，本人将把全部往来邮件提供给《都市报》。")
    assert "media_threat" in said
    start, end, words = said["media_threat"]
    assert "都市报" in words and words.startswith("提供给")


def test_a_complaint_already_lodged_with_the_consumer_council_is_a_regulator_threat():
    assert explicit_threats("我已经在消协那边登记了")["regulator_threat"][2] == "已经在消协"


def test_a_threat_denied_just_before_is_not_said():
    assert explicit_threats("我不会去找媒体的，只想把钱退回来") == {}


def test_reading_about_a_product_online_is_no_threat():
    assert explicit_threats("我在网上看到你们的产品介绍") == {}


def test_the_gate_sits_under_the_threat_flags_tuned_thresholds(small_model):
    gate = explicit_threat_gate()
    assert 0 < gate < min(small_model.flag_thresholds_[f] for f in ("media_threat", "regulator_threat", "legal_threat"))


def test_a_low_model_probability_fires_the_flag_only_when_the_threat_is_said(small_model):
    model = small_model
    j = model.flag_classes_.index("media_threat")
    said = "客户称如果三天内不给答复，就把材料交给电视台曝光。"
    quiet = "客户询问保单贷款的利率是多少。"
    for text, expected in ((said, True), (quiet, False)):
        docs, X = model.transform([text])
        p = {k: v[0].copy() for k, v in model._proba_from_X(X).items()}
        p["risk_flags"][j] = (explicit_threat_gate() + model.flag_threshold_vec_[j]) / 2  # between gate and bar
        triage = model._triage(docs[0], p)
        assert ("media_threat" in triage.risk_flags) is expected
        if expected:
            assert triage.flag_evidence["media_threat"][0].text.endswith("电视台")


def test_the_demand_clause_is_the_clause_with_the_cue_and_the_one_after():
    text = "业务员当初说随时可退。现在退保只退一千多，要求全额退还保费，并处理业务员。"
    assert demand_clauses(text) == ["现在退保只退一千多", "要求全额退还保费", "并处理业务员"]
    grams = DemandWords()(text)
    assert grams and all(g.startswith("D:") for g in grams) and "D:退还" in grams
    assert demand_clauses("客户来电咨询保单贷款利率") == []
