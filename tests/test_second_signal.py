"""A second medium sign makes a major complaint, so a flag judged by degree must be likelier than not to be it.

labels.md: one medium sign is medium, two are high (senior specialist, brand PR). Anger, a repeat
complaint and an excessive demand are judged by degree; at a probability near their tuned thresholds
they turned ordinary complaints into major ones (markers.yaml `second_signal`).
"""
import re

import pytest

from pipeline.contract.records import Triage
from pipeline.contract.taxonomy import taxonomy
from pipeline.handling.review import level_hinges_on
from pipeline.model.lexical import drop_weak_second_signals, second_signal, second_signal_bar

BAR, JUDGED = second_signal()
CALL_BAR = second_signal_bar(is_transcript=True)


def test_the_bundled_bar_covers_the_flags_judged_by_degree():
    assert 0.0 < BAR < 1.0
    assert JUDGED == {"anger", "repeat_complaint", "excessive_demand"}


@pytest.mark.parametrize("flags, proba, said, kept", [
    # a threat and a weak anger: the anger does not make it a major complaint
    (["media_threat", "anger"], {"media_threat": 0.95, "anger": BAR - 0.05}, (), ["media_threat"]),
    # a threat and a likely anger: two medium signs, high
    (["media_threat", "anger"], {"media_threat": 0.95, "anger": BAR + 0.05}, (), ["media_threat", "anger"]),
    # anger said in so many words ("情绪冲动") is the note's own words, not a judgement
    (["media_threat", "anger"], {"media_threat": 0.95, "anger": 0.15}, ("anger",), ["media_threat", "anger"]),
    # one medium sign alone: its own threshold decides, not the bar
    (["anger"], {"anger": BAR - 0.1}, (), ["anger"]),
    # a high sign makes the note high anyway: nothing to drop
    (["violence_risk", "anger"], {"violence_risk": 0.9, "anger": BAR - 0.1}, (), ["violence_risk", "anger"]),
    # two weak judged flags: the weaker goes, the other stays as the one medium sign
    (["anger", "repeat_complaint"], {"anger": BAR - 0.05, "repeat_complaint": BAR - 0.1}, (), ["anger"]),
    # three medium signs, one weak: two strong ones remain, still high
    (["media_threat", "legal_threat", "excessive_demand"],
     {"media_threat": 0.9, "legal_threat": 0.9, "excessive_demand": BAR - 0.2}, (), ["media_threat", "legal_threat"]),
    # a threat flag is never judged by degree here, however unsure
    (["media_threat", "regulator_threat"], {"media_threat": 0.3, "regulator_threat": 0.3}, (),
     ["media_threat", "regulator_threat"]),
])
def test_a_judged_flag_under_the_bar_never_makes_the_second_medium_sign(flags, proba, said, kept):
    assert drop_weak_second_signals(flags, proba, said) == kept


def test_the_level_of_the_flags_kept_is_the_rules_level():
    tax = taxonomy()
    kept = drop_weak_second_signals(["regulator_threat", "repeat_complaint"],
                                    {"regulator_threat": 0.99, "repeat_complaint": BAR - 0.01})
    assert tax.risk_floor(kept) == "medium"


def _triage(flags, proba):
    return Triage(cause=["contract_claims"], cause_proba=[0.9], cause_group=["contract"],
                  risk_level=taxonomy().risk_floor(flags), risk_level_proba={"low": 0.1, "medium": 0.8, "high": 0.1},
                  risk_flags=list(flags), risk_flag_proba=proba, mindset=["remedy"], mindset_proba={"remedy": 0.9},
                  flag_evidence={}, uncertain=[])


def test_review_reads_a_dropped_second_sign_against_the_bar_it_missed():
    thresholds = {"media_threat": 0.45, "anger": 0.35}
    near_bar = _triage(["media_threat"], {"media_threat": 0.95, "anger": BAR - 0.02})
    assert [(f, thr) for f, _, thr in level_hinges_on(near_bar, thresholds, 0.05)] == [("anger", BAR)]
    # the same anger far under the bar (but over its own threshold) leaves the level in no doubt
    clear = _triage(["media_threat"], {"media_threat": 0.95, "anger": BAR - 0.12})
    assert level_hinges_on(clear, thresholds, 0.05) == []


@pytest.mark.parametrize("section, message", [
    ("second_signal:\n  bar: 1.5\n  flags: [anger]\n", "second_signal bar is 1.5, outside [0, 1]"),
    ("second_signal:\n  bar: 0.5\n  flags: [violence_risk]\n", "'violence_risk', which is not a medium risk flag"),
    ("second_signal:\n  bar: 0.5\n  transcript_bar: -0.1\n  flags: [anger]\n",
     "second_signal transcript_bar is -0.1, outside [0, 1]"),
])
def test_a_bad_second_signal_section_is_a_lexicon_error_naming_the_file(tmp_path, section, message):
    bad = tmp_path / "markers.yaml"
    bad.write_text("version: 2\nmarkers: {}\n" + section, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        second_signal(str(bad))
    assert str(bad) in str(err.value)


def test_without_the_section_nothing_is_dropped(tmp_path):
    plain = tmp_path / "markers.yaml"
    plain.write_text("version: 2\nmarkers: {}\n", encoding="utf-8")
    assert drop_weak_second_signals(["media_threat", "anger"], {"media_threat": 0.9, "anger": 0.36},
                                    path=str(plain)) == ["media_threat", "anger"]


def test_a_call_transcript_asks_more_of_a_judged_second_sign():
    """In a call the model reads the customer's turns alone, often unpunctuated ASR: a judged flag between
    the two bars is a second medium sign in a written note, not in a call."""
    assert BAR < CALL_BAR < 1.0
    between = {"media_threat": 0.95, "anger": (BAR + CALL_BAR) / 2}
    assert drop_weak_second_signals(["media_threat", "anger"], between) == ["media_threat", "anger"]
    assert drop_weak_second_signals(["media_threat", "anger"], between, is_transcript=True) == ["media_threat"]
    # said outright, it stays in a call too
    assert drop_weak_second_signals(["media_threat", "anger"], between, ("anger",), is_transcript=True) == [
        "media_threat", "anger"]


def test_review_reads_a_call_against_the_call_bar():
    thresholds = {"media_threat": 0.45, "anger": 0.35}
    call = _triage(["media_threat"], {"media_threat": 0.95, "anger": CALL_BAR - 0.02})
    call.is_transcript = True
    assert [(f, thr) for f, _, thr in level_hinges_on(call, thresholds, 0.05)] == [("anger", CALL_BAR)]


def test_without_a_transcript_bar_a_call_uses_the_notes_bar(tmp_path):
    plain = tmp_path / "markers.yaml"
    plain.write_text("version: 2\nmarkers: {}\nsecond_signal:\n  bar: 0.5\n  flags: [anger]\n", encoding="utf-8")
    assert second_signal_bar(True, str(plain)) == second_signal_bar(False, str(plain)) == 0.5
