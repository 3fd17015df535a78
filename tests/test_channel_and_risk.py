"""How a note came in, whether it is a plain question, and the level by the spec's rule with its reason."""
import pytest

from pipeline.contract.records import Fact, Facts, Triage
from pipeline.handling.channel import channel_id, infer_channel, is_enquiry
from pipeline.handling.risk import decide_risk

CHANNELS = [
    ("客户：我要退保\n坐席：好的请稍等\n客户：快点", True, "phone"),
    ("客户来电称理赔拖了两个月，再不赔就发抖音曝光", False, "phone"),
    ("客户到柜面办理退保，对现金价值不满，在大厅大声喧哗", False, "counter"),
    ("XX监管局转办：投诉人反映理赔久拖不决，请于15个工作日内答复", False, "regulator"),
    ("尊敬的贵公司领导：……此致 敬礼", False, "letter"),
    ("客户在微信公众号留言说App登不上去", False, "online"),
    ("理赔慢", False, "unknown"),
]


@pytest.mark.parametrize("text, transcript, channel", CHANNELS, ids=[c[2] + str(i) for i, c in enumerate(CHANNELS)])
def test_the_channel_is_read_from_the_note(text, transcript, channel):
    assert infer_channel(text, transcript) == channel


@pytest.mark.parametrize("value, channel", [("柜面", "counter"), ("电话", "phone"), ("12378转办", "regulator"),
                                            ("微信", "online"), ("counter", "counter"), ("", None), ("未知渠道", None)])
def test_a_channel_column_value_becomes_an_id(value, channel):
    assert channel_id(value) == channel


def _t(level="low", flags=(), mindset=()):
    return Triage(cause=["other"], cause_proba=[0.9], cause_group=["other"], risk_level=level, risk_level_proba={},
                  risk_flags=list(flags), risk_flag_proba={}, mindset=list(mindset), mindset_proba={})


def test_only_a_low_question_without_a_mindset_is_an_enquiry():
    assert is_enquiry(_t(), "请问犹豫期是多少天？")
    assert not is_enquiry(_t(), "理赔慢得很")                          # no question
    assert not is_enquiry(_t(mindset=["remedy"]), "请问什么时候赔？")     # wants something
    assert not is_enquiry(_t("medium", ["anger"]), "请问你们怎么回事？")


def deadline(text="周五前", days=3):
    return Fact("deadline", days, 0, len(text), text)


RULE = [
    ([], Facts(), "low", "无升级信号"),
    (["vip_identity"], Facts(), "low", "特殊身份"),
    (["anger"], Facts(), "medium", "一个中度信号：情绪激动"),
    (["anger", "media_threat"], Facts(), "high", "两个中度信号"),
    (["self_harm_threat"], Facts(), "high", "高度信号：轻生言论"),
    (["vip_identity", "legal_threat"], Facts(), "high", "特殊身份客户扬言"),
    (["media_threat"], Facts([deadline()]), "high", "“周五前”"),
    (["regulator_threat"], Facts([deadline("15个工作日内", 21), Fact("cue", "regulator_forward", 0, 2, "转办")]),
     "high", "监管转办"),
    (["legal_threat"], Facts([deadline()]), "medium", "一个中度信号"),  # a dated lawsuit is not a media/regulator action
    (["anger"], Facts([deadline()]), "medium", "一个中度信号"),
]


@pytest.mark.parametrize("flags, facts, level, reason", RULE, ids=[f"{'+'.join(r[0]) or 'none'}-{i}" for i, r in enumerate(RULE)])
def test_the_level_is_the_rules_with_its_reason(flags, facts, level, reason):
    decision = decide_risk(flags, facts)
    assert decision.level == level and reason in decision.reason
