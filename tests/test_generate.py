"""The seeded generator of training notes (pipeline/generate.py)."""
from __future__ import annotations

import json
import re
from collections import Counter

import pandas as pd
import pytest
from opencc import OpenCC

from tools.generate import MAX_LEN, MIN_LEN, generate_corpus, load_banks, main
from pipeline.io import read_labelled
from pipeline.contract.taxonomy import RISK_LEVELS, taxonomy

N = 2600
LEVEL = {lvl: i for i, lvl in enumerate(RISK_LEVELS)}


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return generate_corpus(N)


def test_same_seed_same_corpus_other_seed_other_corpus():
    a, b = generate_corpus(300, seed=7), generate_corpus(300, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = generate_corpus(300, seed=8)
    assert (a["text"] != c["text"]).mean() > 0.9


def test_columns_ids_and_source(corpus):
    assert list(corpus.columns) == ["id", "text", "cause", "risk_level", "risk_flags", "mindset", "source", "style"]
    assert corpus["id"].tolist() == [f"g-{i:05d}" for i in range(1, N + 1)]
    assert set(corpus["source"]) == {"generated"}


def test_every_label_id_is_valid(corpus):
    tax = taxonomy()
    for row in corpus.itertuples():
        assert 1 <= len(row.cause) <= 3 and len(set(row.cause)) == len(row.cause)
        assert set(row.cause) <= set(tax.cause_ids)
        assert row.risk_level in RISK_LEVELS
        assert set(row.risk_flags) <= set(tax.flag_ids) and len(set(row.risk_flags)) == len(row.risk_flags)
        assert 0 <= len(row.mindset) <= 2 and set(row.mindset) <= set(tax.mindset_ids)
        assert not {"anger", "abusive_language"} <= set(row.risk_flags), "insults take abusive_language alone"


def test_risk_level_never_below_the_rules_floor(corpus):
    tax = taxonomy()
    for row in corpus.itertuples():
        assert LEVEL[row.risk_level] >= LEVEL[tax.risk_floor(row.risk_flags)], row.id
    # the deadline rule is what lifts a note above its floor, and it does happen
    lifted = [r for r in corpus.itertuples() if r.risk_level != tax.risk_floor(r.risk_flags)]
    assert lifted and all(r.risk_level == "high" for r in lifted)
    assert all({"media_threat", "regulator_threat"} & set(r.risk_flags) for r in lifted)


def test_balance_floors(corpus):
    tax = taxonomy()
    main_cause = Counter(c[0] for c in corpus["cause"])
    flags = Counter(f for fs in corpus["risk_flags"] for f in fs)
    mindsets = Counter(m for ms in corpus["mindset"] for m in ms)
    assert {c: main_cause[c] for c in tax.cause_ids if main_cause[c] < 60} == {}
    assert {f: flags[f] for f in tax.flag_ids if flags[f] < 80} == {}
    assert {m: mindsets[m] for m in tax.mindset_ids if mindsets[m] < 100} == {}
    assert set(corpus["risk_level"]) == set(RISK_LEVELS)


def test_no_two_notes_identical_and_lengths(corpus):
    assert not corpus["text"].duplicated().any()
    lengths = corpus["text"].str.len()
    assert lengths.min() >= MIN_LEN and lengths.max() <= MAX_LEN


def test_traditional_script_notes_exist(corpus):
    t2s = OpenCC("t2s")
    trad = corpus[corpus["style"].str.contains(r"\+traditional|\+mixed_script")]
    assert len(trad) >= 0.08 * N
    assert sum(t2s.convert(t) != t for t in trad["text"]) >= 0.95 * len(trad)


def test_shares_of_enquiries_transcripts_and_noise(corpus):
    style = corpus["style"]
    enquiries = corpus[style.str.startswith("enquiry")]
    assert 0.08 * N <= len(enquiries) <= 0.12 * N
    assert all(r.risk_level == "low" and not r.risk_flags and not r.mindset for r in enquiries.itertuples())
    assert 0.10 * N <= style.str.contains("transcript").sum() <= 0.14 * N
    assert style.str.contains(r"\+typo|\+fullwidth").sum() >= 0.05 * N


def test_regulator_forwards_carry_regulator_threat(corpus):
    forwards = corpus[corpus["style"].str.startswith("regulator")]
    assert len(forwards) > 100
    assert all("regulator_threat" in fs for fs in forwards["risk_flags"])


def test_agent_turns_in_transcripts_are_only_the_agents_lines(corpus):
    """Flags live in the customer's turns; the agent's turns come from the agent bank."""
    tr = load_banks().style["transcript"]
    allowed = {t for key in ("agent_greet", "agent_ask", "agent_ack", "agent_enquiry", "agent_regulator", "agent_close")
               for t in tr[key]}
    allowed = {t.replace("{digits4}", "####") for t in allowed}
    plain = corpus["style"].str.contains("transcript_colon") & ~corpus["style"].str.contains(r"\+")
    rows = corpus[plain & corpus["text"].str.startswith("坐席：")]
    checked = 0
    for text in rows["text"]:
        if "\n" not in text:
            continue
        for line in text.split("\n"):
            if line.startswith("坐席："):
                assert re.sub(r"工号\d{4}", "工号####", line[3:]) in allowed, line
                checked += 1
    assert checked > 50


def test_cli_writes_jsonl_that_loads_as_a_labelled_file(tmp_path):
    out = tmp_path / "gen.jsonl"
    assert main(["-n", "60", "-o", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 60
    first = json.loads(lines[0])
    assert isinstance(first["cause"], list) and isinstance(first["risk_flags"], list)
    assert "\\u" not in lines[0]  # ensure_ascii=False
    assert len(read_labelled(out)) == 60


def test_phrase_banks_are_big_enough():
    banks = load_banks()
    for cause, phrases in banks.causes.items():
        assert len({p.text for p in phrases}) >= 12, cause
    for flag, block in banks.flags.items():
        assert sum(len(v) for v in block.values()) >= 15, flag
    for mindset, block in banks.mindsets.items():
        assert sum(len(v) for v in block.values()) >= 15, mindset
