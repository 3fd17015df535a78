"""Attacks on what the case store keeps (issue 17): each test is named for the attack it stops, on SQLite and PostgreSQL."""
import hashlib
import os
import stat

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.apps.store import (CaseStore, CorrectionRow, StoreError, TriageRecord, keyed_hash, secret_key,
                                 text_problem)
from pipeline.io import validate_labels

PHONE = "13812345678"
NOTE = f"客户张先生（电话{PHONE}）称理赔拖了两个月，再不赔就找记者曝光"


def result(level="high", flags=("media_threat",)):
    return {"triage": {"cause": [{"id": "contract_claims", "proba": 0.8}], "risk_level": {"id": level, "proba": 0.7},
                       "risk_flags": [{"id": f, "proba": 0.9} for f in flags], "mindset": [{"id": "remedy", "proba": 0.8}]},
            "facts": [], "plan": {"review": False}}


@pytest.fixture
def store(database_url):
    s = CaseStore(database_url)
    yield s
    s.close()


def test_guessing_the_masked_phone_against_the_stored_hash_recovers_nothing(store):
    """17.1: the masked text leaves 4 digits to guess; with a plain sha256 beside it, 10,000 tries found the phone."""
    store.record([TriageRecord("C-1", NOTE, result(), "v1")])
    with store.engine.connect() as conn:
        masked, stored = conn.execute(sa.text("SELECT text_masked, text_hmac FROM triages")).one()
    assert PHONE not in masked and "138****5678" in masked
    guesses = (masked.replace("138****5678", f"138{i:04d}5678") for i in range(10_000))
    assert not any(hashlib.sha256(g.encode()).hexdigest() == stored for g in guesses)  # the old attack fails
    assert stored == keyed_hash(NOTE)  # the hash is of the original, keyed: only the key holder can match it
    case = store.get("C-1")
    assert "text_hmac" not in case["triages"][0] and stored not in str(case)


def test_the_hash_key_lives_outside_the_database_in_a_private_file(tmp_path, monkeypatch):
    """17.1: without TOUSU_SECRET the key is made once, mode 0600, in the user's data folder; a readable one is refused."""
    monkeypatch.delenv("TOUSU_SECRET")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    key = secret_key()
    path = tmp_path / "data" / "tousu" / "secret.key"
    assert path.read_bytes() == key and len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key() == key  # the same key on every use
    path.chmod(0o644)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(StoreError, match="chmod 600"):
        secret_key()
    monkeypatch.setenv("TOUSU_SECRET", "short")
    with pytest.raises(StoreError, match="16"):
        secret_key()


def test_a_phone_in_a_correction_comment_or_author_is_kept_masked(store):
    """17.2: the comment and the author are free text a person typed: masked when written, like the note."""
    store.record([TriageRecord("C-1", NOTE, result(), "v1")])
    store.correct("C-1", {}, author=f"王丽{PHONE}", resolved=True, comment=f"已回电客户{PHONE}，同意结案")
    case = store.get("C-1")
    assert PHONE not in str(case) and "138****5678" in case["corrections"][0]["comment"]
    with store.engine.connect() as conn:
        raw = [tuple(r) for r in conn.execute(sa.text("SELECT author, comment FROM corrections"))]
        raw += [tuple(r) for r in conn.execute(sa.text("SELECT resolved_by, corrected_by FROM cases"))]
    assert PHONE not in str(raw)


def test_a_failing_statement_does_not_carry_the_phone_into_its_error(store):
    """17.3: SQLAlchemy put `[parameters: ...]` (the unmasked text) into the error a log would print."""
    with pytest.raises(sa.exc.IntegrityError) as failed:
        with store.engine.begin() as conn:  # a correction for a case that does not exist: a foreign-key error
            conn.execute(CorrectionRow.__table__.insert().values(
                case_id="nope", created_at=pd.Timestamp.now().to_pydatetime(), author="x", channel="api", before={},
                changed=[], comment=f"电话{PHONE}"))
    assert PHONE not in str(failed.value) and "hidden" in str(failed.value).lower()


def test_a_new_sqlite_case_store_is_not_readable_by_other_users(tmp_path):
    """17.5: cases.db was created 0644, so any local user could read every masked note and correction."""
    path = tmp_path / "cases.db"
    with CaseStore(f"sqlite:///{path}") as s:
        s.record([TriageRecord("C-1", NOTE, result(), "v1")])
        for f in [path] + [p for p in (tmp_path / "cases.db-wal", tmp_path / "cases.db-shm") if p.exists()]:
            assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f


@pytest.mark.parametrize("bad", [
    {"case_id": "A\x00B"}, {"case_id": "x" * 129}, {"text": "理赔\ud800太慢"},
])
def test_a_nul_surrogate_or_overlong_id_in_one_record_is_refused_alike_and_nothing_is_kept(store, bad):
    """17.14: PostgreSQL gave a 500 and dropped the whole batch where SQLite kept it: now both refuse, the same way."""
    good = TriageRecord("OK-1", "理赔太慢", result(), "v1")
    with pytest.raises(StoreError):
        store.record([good, TriageRecord(**{"case_id": "B-1", "text": "理赔太慢", "result": result(),
                                            "model_version": "v1", **bad})])
    assert store.counts()["triages"] == 0
    store.record([good])
    for kwargs in ({"comment": "a\x00b"}, {"author": "王" * 129}, {"comment": "\udfff"}):
        with pytest.raises(StoreError):
            store.correct("OK-1", {}, **{"author": "王丽", "resolved": True, **kwargs})
    with pytest.raises(StoreError):
        store.get("OK\x00")
    with pytest.raises(StoreError):
        store.list_cases(cause="a\x00")
    assert store.counts()["corrections"] == 0
    assert text_problem("ok", "x") is None


def test_a_label_file_or_correction_that_breaks_the_risk_rule_is_refused_naming_the_rule(store):
    """17.18: risk low with violence_risk + self_harm_threat was accepted and exported for training."""
    store.record([TriageRecord("C-1", NOTE, result(), "v1")])
    with pytest.raises(StoreError, match="risk rule.*high-severity flag"):
        store.correct("C-1", {"risk_level": "low", "risk_flags": ["violence_risk", "self_harm_threat"]}, author="王丽")
    assert store.export_corrected() == []
    rows = pd.DataFrame([{"id": "1", "text": "要跳楼", "cause": ["other"], "risk_level": "low",
                          "risk_flags": ["violence_risk", "self_harm_threat"], "mindset": []}])
    _, problems = validate_labels(rows)
    assert [(p.field, "risk rule" in p.message) for p in problems] == [("risk_level", True)]
