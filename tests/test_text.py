"""Normalisation: one canonical form for the model, the customer's words kept apart from the agent's."""
import pickle

import pytest

from pipeline.text.normalisation import MAX_MODEL_CHARS, clean, normalise
from pipeline.text.tokenise import Tokenizer


@pytest.mark.parametrize("transcript", [
    "客户：我要退保，现金价值太低了\n坐席：您也可以向监管部门反映\n客户：我先问问",
    "[00:00:03] 客户：我要退保，现金价值太低了\n[00:00:09] 坐席：您也可以向监管部门反映\n[00:00:15] 客户：我先问问",
    "[客户]我要退保，现金价值太低了\n[客服]您也可以向监管部门反映\n[客户]我先问问",
    "客户 喂 我要退保 现金价值太低了\n坐席 您也可以向监管部门反映\n客户 我先问问",
    "客户：我要退保，现金价值太低了。坐席：您也可以向监管部门反映。客户：我先问问",
    # a relative speaking for the customer, an agent named by staff number or by a title
    "客户女儿：我妈要退保，现金价值太低了\n坐席：您也可以向监管部门反映\n客户女儿：我先问问",
    "工号1032：您好，您也可以向监管部门反映。客户：我要退保，现金价值太低了。工号1032：好的",
    "理赔专员：王女士您好，您也可以向监管部门反映\n客户妻子：我要退保，现金价值太低了",
    # unnamed speakers: the side is read from what each says
    "A:喂 我要退保 现金价值太低了\nB:您好先生 请问有什么可以帮您 您也可以向监管部门反映\nA:我先问问",
    "说话人1：您好很高兴为您服务 您也可以向监管部门反映 说话人2：我要退保 你们现金价值太低了 说话人1：好的",
    # ASR on one line, labels between spaces
    "坐席 您好 请问有什么可以帮您 客户 喂 我要退保 现金价值太低了 坐席 您也可以向监管部门反映 客户 我先问问",
])
def test_agent_words_never_count_as_the_customers(transcript):
    doc = normalise(transcript)
    assert doc.is_transcript
    assert "监管" not in doc.model_text
    assert "退保" in doc.customer and "监管部门" in doc.agent


@pytest.mark.parametrize("transcript, stated", [
    ("专员：张先生您好，关于从您儿子账户扣保费的事给您回个电话\n客户：你们录错了卡号，我要退回来", "儿子账户扣保费"),
    ("工号6120：您好，您通过12378反映的问题，监管已经转办过来了。客户：对，我要求退款", "12378"),
])
def test_an_agent_turn_that_states_the_case_is_read_with_the_customers_words(transcript, stated):
    doc = normalise(transcript)
    assert doc.is_transcript and stated in doc.model_text and stated not in doc.customer


def test_an_agent_suggesting_where_to_complain_is_never_read_as_the_case():
    doc = normalise("坐席：关于您的问题，您也可以向监管部门反映\n客户：我先问问，退保能退多少")
    assert doc.is_transcript and "监管" not in doc.model_text and doc.case_statement == ""


@pytest.mark.parametrize("note", [
    "A：退还全部保费\nB：只退现金价值\n客户要求按A方案处理，向监管部门反映",  # options, not speakers
    "工号1032的客服态度很差，我要向监管部门反映，还要退保",  # a staff number inside a sentence
    "先生 您好 我是来退保的 向监管部门反映过了",  # an address, not a label
])
def test_labels_that_are_not_speakers_leave_the_note_whole(note):
    doc = normalise(note)
    assert not doc.is_transcript and "监管" in doc.model_text


def test_an_agent_summary_is_not_a_transcript():
    doc = normalise("客户来电反映退保金额太低，要求公司解释，坐席已记录。")
    assert not doc.is_transcript and doc.customer == doc.text


def test_traditional_and_simplified_give_the_same_tokens():
    tk = Tokenizer()
    trad = "客戶對退保現金價值十分不滿，揚言要向金融監管局投訴並找記者曝光"
    simp = "客户对退保现金价值十分不满，扬言要向金融监管局投诉并找记者曝光"
    assert tk(clean(trad)) == tk(clean(simp))


def test_full_width_digits_and_letters_become_half_width_but_chinese_punctuation_stays():
    assert clean("保单号ＡＢ１２３４，保费４５０００元！") == "保单号AB1234，保费45000元！"


def test_control_characters_surrogates_and_whitespace_are_cleaned():
    assert clean("退保\x00\x07金额\u200b太低\ud800  了\r\n\r\n\n好") == "退保 金额太低 了\n好"


def test_cleaning_is_idempotent():
    for s in ["客戶：我要退保！！\n坐席：好的", "  ＡＢＣ\t１２３  ", "混合體 text 与简体"]:
        assert clean(clean(s)) == clean(s)


def test_very_long_notes_keep_their_text_and_say_the_model_read_less():
    long = "客户要求退保。" * 1000
    doc = normalise(long)
    assert doc.original == long and doc.truncated
    assert len(doc.model_text) == MAX_MODEL_CHARS


@pytest.mark.parametrize("odd, text", [(None, ""), (12345, "12345"), ("", ""), ("   ", ""), ("😀😀", "😀😀"),
                                       ("\x00\x01", ""), ("退保\ud800", "退保")])
def test_odd_input_becomes_a_plain_empty_or_cleaned_note(odd, text):
    doc = normalise(odd)
    assert doc.text == text and doc.customer == text
    assert doc.original == ("" if odd is None else str(odd))
    assert not doc.is_transcript and not doc.truncated


@pytest.mark.parametrize("term", ["现金价值", "犹豫期", "保全", "核保", "理赔", "回访", "万能险", "分红险", "12378", "金融监管局", "消协", "退保"])
def test_domain_terms_stay_whole(term):
    assert term in Tokenizer()(f"客户说{term}的问题一直没解决")


def test_tokenizer_is_picklable_and_deterministic():
    tk = Tokenizer()
    text = "客户对万能险结算利率不满，要求按宣传的保底收益赔偿"
    again = pickle.loads(pickle.dumps(tk))
    assert again(text) == tk(text) == tk(text)
    assert len(pickle.dumps(tk)) < 1000  # the dictionary is rebuilt, not carried


def test_numbers_become_shapes_but_hotlines_stay():
    tokens = Tokenizer()("打了12378，保费45000元")
    assert "12378" in tokens and "<num5>" in tokens and "45000" not in tokens


def test_the_model_never_reads_a_personal_number():
    """17.4: "客户手机13812345678" must not read as the 12345 hotline; spans keep their place."""
    from pipeline.model.features import evidence_map, find_markers

    doc = normalise("客户手机13812345678，身份证110101199003071234，来问保单贷款")
    assert "12345" not in doc.model_text and "19900307" not in doc.model_text
    assert len(doc.model_text) == len(doc.customer)
    for marker in evidence_map().get("regulator_threat", []):
        assert not find_markers(doc.model_text, marker), marker


def _turns_yaml() -> dict:
    import yaml

    from pipeline.knowledge import bundled

    return yaml.safe_load(bundled("lexicon", "turns.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("change, message", [
    ({"agent_roles": None}, "agent_roles must be a list of words"),
    ({"case_statement_pattern": "关于(("}, "case_statement_pattern does not compile"),
    ({"unnamed_pattern": ...}, "missing unnamed_pattern"),
])
def test_a_bad_turns_lexicon_is_refused_naming_the_file_and_the_key(change, message):
    from pipeline.text.normalisation import TurnLexicon

    raw = _turns_yaml()
    for key, value in change.items():
        if value is ...:
            del raw[key]
        else:
            raw[key] = value
    with pytest.raises(ValueError, match=message) as err:
        TurnLexicon(raw, "centre/turns.yaml")
    assert "centre/turns.yaml" in str(err.value)


def test_a_centres_own_speaker_label_is_read_from_its_turns_lexicon(monkeypatch):
    from pipeline.text import normalisation as N

    text = "服务代表：您也可以向监管部门反映\n客户：我要退保，现金价值太低了"
    assert not N.split_turns(text)  # the bundled lexicon does not know the label
    raw = _turns_yaml()
    raw["agent_roles"] = raw["agent_roles"] + ["服务代表"]
    centre = N.TurnLexicon(raw, "centre/turns.yaml")
    monkeypatch.setattr(N, "turn_lexicon", lambda: centre)
    assert [k for k, _ in N.split_turns(text)] == ["agent", "customer"]
    doc = N.normalise(text)
    assert doc.is_transcript and "监管" not in doc.model_text


def test_evidence_carries_the_words_as_the_note_writes_them():
    """The page marks evidence in the note as typed: a traditional note's 消保會, not the model's 消保会."""
    from pipeline.contract.records import Evidence
    from pipeline.model.decide import _as_written

    doc = normalise("客戶：你們再不處理，我就去消保會投訴。")
    assert _as_written(doc, Evidence(0, 3, "消保会")).as_written == "消保會"
    assert _as_written(doc, Evidence(0, 3, "媒体")).as_written == ""  # not in the note: nothing to mark
    simplified = normalise("我就去消保会投诉")
    assert _as_written(simplified, Evidence(3, 6, "消保会")).as_written == "消保会"
