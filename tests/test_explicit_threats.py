"""A threat said outright is not left to the model's doubt; the demand clause is a feature of its own."""
from __future__ import annotations

import pytest

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


def test_a_physical_act_said_outright_sets_violence_whatever_the_model_says(small_model):
    model = small_model
    j = model.flag_classes_.index("violence_risk")
    for text, expected in (("客户在柜台前推了保安一把，被同事拉开。", True),
                           ("客户说他没有动手，只是声音大了点。", False),
                           ("客户询问保单贷款的利率是多少。", False)):
        docs, X = model.transform([text])
        p = {k: v[0].copy() for k, v in model._proba_from_X(X).items()}
        p["risk_flags"][j] = 0.0
        triage = model._triage(docs[0], p)
        assert ("violence_risk" in triage.risk_flags) is expected, text
        if expected:
            assert triage.flag_evidence["violence_risk"][0].text == "推了保安一把"
            assert triage.said_outright == ["violence_risk"]  # on by the words, not by the model: the card says so
    docs, X = model.transform(["客户在柜台前推了保安一把，被同事拉开。"])
    p = {k: v[0].copy() for k, v in model._proba_from_X(X).items()}
    p["risk_flags"][j] = 0.99
    assert "violence_risk" in model._triage(docs[0], p).risk_flags
    assert model._triage(docs[0], p).said_outright == []  # over the model's own bar: its probability stands


@pytest.mark.parametrize("text, sign", [
    ("客户在热线中称再算错保单贷款利息就上门砍人", "砍人"),
    ("我知道他每天几点从你们职场出来，下次让我碰见，我保证他走不出那条街。", "走不出那条街"),
    ("我見到佢一定打爆佢個頭", "打爆佢"),
    ("那个业务员再敢来，见一次打一次！", "见一次打一次"),
    ("现场有保户情绪失控翻倒桌椅", "翻倒桌"),
])
def test_harm_threatened_to_a_person_or_furniture_overturned_is_a_violence_sign(text, sign):
    assert explicit_threats(text)["violence_risk"][2] == sign


@pytest.mark.parametrize("text", ["我不会揍他的，你们放心", "理赔电话打了三次都没人接", "把他教的方法用上了"])
def test_no_violence_sign_in_a_denial_or_in_everyday_words(text):
    assert "violence_risk" not in explicit_threats(text)


def test_a_count_of_earlier_complaints_is_a_repeat_complaint_sign():
    assert explicit_threats("这事我反映第三回了")["repeat_complaint"][2] == "第三回"
    assert explicit_threats("这个问题我已经投诉过三次，每次都说等通知")["repeat_complaint"][2] == "投诉过三次"
    assert "repeat_complaint" not in explicit_threats("我想问一下保单贷款的利率")


@pytest.mark.parametrize("text, sign", [
    ("二次投诉。客户原诉：业务员承诺返还首年佣金的一半", "二次投诉"),
    ("客户今日再次投诉，称理赔仍未到账", "再次投诉"),
])
def test_a_complaint_made_again_in_the_handlers_own_word_is_a_repeat_sign(text, sign):
    assert explicit_threats(text)["repeat_complaint"][2] == sign


def test_an_air_fryer_is_not_anger_said_outright():
    """气炸 is anger in 肺都气炸了, and a kitchen appliance in 空气炸锅 (a gift promised at the sale)."""
    assert explicit_threats("我现在肺都气炸了！！")["anger"][2] == "气炸"
    assert "anger" not in explicit_threats("业务员承诺送一台空气炸锅和两张超市卡，至今没兑现")


@pytest.mark.parametrize("text", ["已向客户解释清楚，避免二次投诉", "请尽快回电，防止再次投诉"])
def test_a_complaint_the_note_wants_to_prevent_is_no_repeat_sign(text):
    assert "repeat_complaint" not in explicit_threats(text)


def test_tries_to_get_through_are_not_earlier_complaints():
    """不下十次 counts earlier complaints, unless what follows is the line itself (没人接, 占线, 转人工)."""
    assert explicit_threats("同一件事我反映了不下十次，到现在没人处理")["repeat_complaint"][2] == "不下十次"
    assert "repeat_complaint" not in explicit_threats("我这两天打了不下十次，不是坐席忙，就是转人工又绕回语音菜单")
    assert "repeat_complaint" not in explicit_threats("拨打热线不下二十次，或无人接听，或占线")


def test_a_sign_gate_outside_zero_to_one_is_a_lexicon_error_naming_the_file(tmp_path):
    import yaml

    from pipeline.model.lexical import MARKERS_PATH, _explicit_threats

    raw = yaml.safe_load(MARKERS_PATH.read_text(encoding="utf-8"))
    raw["explicit_threats"]["signs"]["gate"] = 1.5
    bad = tmp_path / "markers.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"markers.yaml: explicit_threats gate of \w+ is 1.5, outside \[0, 1\]"):
        _explicit_threats(str(bad))


def test_a_threat_the_customer_disclaims_everywhere_needs_near_certainty(small_model):
    from pipeline.model.lexical import disclaimed_bar

    model = small_model
    j = model.flag_classes_.index("media_threat")
    sure_enough = (model.flag_threshold_vec_[j] + disclaimed_bar()) / 2  # over the tuned bar, under the raised one
    for text, expected in (("我也不是来闹的，更不会去找记者，就想请你们再看看这个病算不算既往症。", False),
                           ("我在网上看到有文章说重疾险要看疾病定义，想请人讲讲两款产品的区别。", False),
                           ("我不会去找记者，但三天内不解决我就发微博曝光。", True),
                           ("这件事我会找记者报道。", True)):
        docs, X = model.transform([text])
        p = {k: v[0].copy() for k, v in model._proba_from_X(X).items()}
        p["risk_flags"][j] = sure_enough
        assert ("media_threat" in model._triage(docs[0], p).risk_flags) is expected, text
        p["risk_flags"][j] = 0.995  # the model all but certain: the disclaimer does not hide it
        assert "media_threat" in model._triage(docs[0], p).risk_flags, text


def test_what_disclaims_a_threat_is_a_negation_just_before_or_hearsay():
    from pipeline.model.lexical import disclaimed_threats

    assert disclaimed_threats("我就是想把事办了，不至于找消协。") == {"regulator_threat"}
    assert disclaimed_threats("近日在新闻上看到有保险公司被监管接管") == {"media_threat", "regulator_threat"}
    assert disclaimed_threats("今天下班前没有回音我就找监管局的朋友") == frozenset()  # a condition, not a denial
    assert disclaimed_threats("客户询问保单贷款的利率是多少。") == frozenset()  # nothing named, nothing disclaimed
    # what is said online is reported, not threatened; a threat beside it still counts
    assert disclaimed_threats("网上都说贵公司要被接管，我交的钱还能拿回来吗") == {"media_threat"}
    assert disclaimed_threats("网上传言你们要倒闭，不给退我就找记者曝光") == frozenset()


def test_a_disclaimer_bar_outside_zero_to_one_is_a_lexicon_error_naming_the_file(tmp_path):
    import yaml

    from pipeline.model.lexical import MARKERS_PATH, _disclaimers

    raw = yaml.safe_load(MARKERS_PATH.read_text(encoding="utf-8"))
    raw["explicit_threats"]["disclaimed"]["bar"] = -0.1
    bad = tmp_path / "markers.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"markers.yaml: explicit_threats disclaimed bar is -0.1, outside \[0, 1\]"):
        _disclaimers(str(bad))


def test_jumping_to_the_first_character_a_threat_can_start_with_finds_the_same_spans(monkeypatch):
    """explicit_threats starts each flag's scan at the first character its matches can start with; on every
    hand-written note of the corpus the spans are those a scan from the first character finds."""
    import re

    from pipeline.model import lexical
    from pipeline.model.corpus import load_corpus
    from pipeline.text.normalisation import normalise

    corpus = load_corpus()
    notes = [normalise(t).model_text for t in corpus.loc[corpus["source"] == "handwritten", "text"]]
    screened = [explicit_threats(text) for text in notes]
    screens = lexical._threat_screens(str(lexical.MARKERS_PATH))
    assert any(s is not None for s in screens.values())
    monkeypatch.setattr(lexical, "_threat_screens", lambda path: {flag: None for flag in screens})
    assert [explicit_threats(text) for text in notes] == screened
    assert sum(map(len, screened)) > 1000  # the comparison covers notes with threats, not only notes without
    assert re.compile("(?<!不)生气").search("不生气", 1) is None  # a look-behind still sees the text before pos
