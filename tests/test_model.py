"""The Triager: outputs a handler can trust, consistent with the label contract."""
import pickle

import numpy as np
import pytest

from pipeline.contract.records import Triage
from pipeline.contract.taxonomy import taxonomy

NOTES = [
    "客户李先生(68岁)对退保现金价值十分不满，称业务员当时没说退保有损失，情绪激动，扬言不解决就找媒体曝光。",
    "请问犹豫期是多少天？",
    "你们这帮骗子，理赔拖了两个月，再不赔我就去法院起诉你们！",
    "客户：我第三次打电话了还没人回\n坐席：您也可以向监管部门反映\n客户：我就想快点处理",
]


def test_predict_returns_one_triage_per_note_with_valid_ids(small_model):
    tax = taxonomy()
    out = small_model.predict(NOTES)
    assert len(out) == len(NOTES) and all(isinstance(t, Triage) for t in out)
    for t in out:
        assert 1 <= len(t.cause) <= 3 and set(t.cause) <= set(tax.cause_ids)
        assert t.cause_group == [tax.group_of(c) for c in t.cause]
        assert t.cause_proba == sorted(t.cause_proba, reverse=True)
        assert t.risk_level in ("low", "medium", "high")
        assert set(t.risk_flags) <= set(tax.flag_ids)
        assert len(t.mindset) <= 2 and set(t.mindset) <= set(tax.mindset_ids)
        assert abs(sum(t.risk_level_proba.values()) - 1) < 1e-3


def test_predict_proba_shapes(small_model):
    p = small_model.predict_proba(NOTES)
    assert p["cause"].shape == (4, 31) and p["risk_level"].shape == (4, 3)
    assert p["risk_flags"].shape == (4, 12) and p["mindset"].shape == (4, 7)
    assert np.allclose(p["cause"].sum(1), 1) and ((p["risk_flags"] >= 0) & (p["risk_flags"] <= 1)).all()


def test_risk_level_never_contradicts_the_flags(small_model, small_corpus):
    tax = taxonomy()
    order = {"low": 0, "medium": 1, "high": 2}
    _, test = small_corpus
    for t in small_model.predict(list(test["text"][:300])):
        floor = tax.risk_floor(t.risk_flags)
        assert order[t.risk_level] >= order[floor]
        if t.risk_level == "medium":
            assert floor == "medium"  # medium needs a medium sign
        if t.risk_level == "high" and floor == "low":
            pytest.fail(f"high with no sign: {t}")
        assert not {"anger", "abusive_language"} <= set(t.risk_flags)


def test_review_quotes_the_main_cause_probability_it_read(small_model, small_corpus):
    from pipeline.flow import triage_notes
    from pipeline.handling.playbook import default_playbook

    _, test = small_corpus
    below = default_playbook().settings.review_cause_below
    seen = 0
    for r in triage_notes(small_model, list(test["text"][:200])):
        p = r.triage.cause_proba[0]
        unsure = [x for x in r.plan.review_reasons if x.startswith("主要原因把握不足")]
        assert bool(unsure) == (p < below)
        if unsure:
            assert f"{p:.2f}" in unsure[0]
            seen += 1
    assert seen > 0


def test_flag_thresholds_are_tuned_not_all_half(small_model):
    th = small_model.flag_thresholds_
    assert set(th) == set(taxonomy().flag_ids)
    assert len(set(th.values())) > 1


def test_traditional_and_simplified_notes_get_identical_predictions(small_model):
    simp = "客户对退保现金价值十分不满，扬言要向金融监管局投诉并找记者曝光"
    trad = "客戶對退保現金價值十分不滿，揚言要向金融監管局投訴並找記者曝光"
    a, b = small_model.predict([simp, trad])
    assert a.cause == b.cause and a.risk_flags == b.risk_flags and a.mindset == b.mindset
    assert a.cause_proba == b.cause_proba


def test_an_agents_regulator_mention_is_not_the_customers_threat(small_model):
    t = small_model.predict([NOTES[3]])[0]
    assert "regulator_threat" not in t.risk_flags or t.risk_flag_proba["regulator_threat"] < 0.9


def test_explain_names_features_present_in_the_note(small_model):
    note = NOTES[0]
    expl = small_model.explain(note)
    assert any(k.startswith("cause:") for k in expl)
    from pipeline.model.features import WordNgrams
    present = set(WordNgrams(ngram_range=(1, 2))(note))
    for label, feats in expl.items():
        for name, weight in feats:
            assert weight > 0
            kind, _, feat = name.partition("__")
            if kind == "word":
                assert feat in present, (label, feat)


def test_evidence_points_into_the_customers_words(small_model):
    t = small_model.predict([NOTES[0]])[0]
    for flag, spans in t.flag_evidence.items():
        for e in spans:
            assert e.text and e.end > e.start


def test_model_pickles_and_predicts_the_same(small_model):
    again = pickle.loads(pickle.dumps(small_model))
    assert [t.cause for t in again.predict(NOTES)] == [t.cause for t in small_model.predict(NOTES)]
