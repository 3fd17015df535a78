"""The case store, against SQLite and a real PostgreSQL server (the `database_url` fixture runs each test on both)."""
import subprocess
import sys
import textwrap
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.io import validate_labels
from pipeline.apps.store import (CaseNotFound, CaseStore, StoreError, TriageRecord, current_revision, head_revision,
                            keyed_hash, make_engine, predicted_labels, upgrade, utcnow)

NOTE = "客户张先生（电话13812345678）称理赔拖了两个月，再不赔就找记者曝光"


def result(cause="contract_claims", level="high", flags=("media_threat",), mindset=("remedy",), second=0.1):
    """The shape of render.plan_to_json, reduced to what the store reads."""
    return {"triage": {"cause": [{"id": cause, "proba": 0.8}, {"id": "company_management", "proba": second},
                                 {"id": "staff_attitude", "proba": 0.01}],
                       "risk_level": {"id": level, "proba": 0.7},
                       "risk_flags": [{"id": f, "proba": 0.9} for f in flags],
                       "mindset": [{"id": m, "proba": 0.8} for m in mindset]},
            "facts": [{"kind": "amount", "value": 45000.0}],
            "plan": {"owner": "senior_specialist", "review": True, "steps": [{"id": "major_complaint.1"}]}}


@pytest.fixture
def store(database_url):
    s = CaseStore(database_url)
    yield s
    s.close()


def keep(store, case_id, text=NOTE, **kw):
    return store.record([TriageRecord(case_id, text, result(**kw), "v1", processing_ms=3.2)])[0]


# ------------------------------------------------------------------ storing

def test_a_triage_is_kept_with_masked_text_hash_heads_facts_plan_and_timing(store):
    keep(store, "C-1")
    case = store.get("C-1")
    t = case["triages"][0]
    assert "13812345678" not in t["text_masked"] and "138****5678" in t["text_masked"]
    assert "text_hmac" not in t and "dedupe_key" not in t  # keyed hashes are for matching, never shown
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT text_hmac FROM triages")).scalar() == keyed_hash(NOTE)
    assert t["model_version"] == "v1" and t["processing_ms"] == 3.2 and t["source"] == "serve"
    assert t["result"]["triage"]["risk_level"] == {"id": "high", "proba": 0.7}
    assert t["result"]["facts"] == [{"kind": "amount", "value": 45000.0}]
    assert t["result"]["plan"]["owner"] == "senior_specialist"
    assert t["predicted"] == {"cause": ["contract_claims"], "risk_level": "high", "risk_flags": ["media_threat"],
                              "mindset": ["remedy"]}
    assert case["status"] == "open" and case["risk_level"] == "high" and case["labels"] is None


def test_a_secondary_cause_is_a_label_only_when_probable():
    assert predicted_labels(result(second=0.1))["cause"] == ["contract_claims"]
    assert predicted_labels(result(second=0.3))["cause"] == ["contract_claims", "company_management"]


def test_every_assessment_of_a_case_is_kept_and_a_repeated_dedupe_key_once(store):
    keep(store, "C-1", level="medium")
    keep(store, "C-1", level="high")
    rec = TriageRecord("C-1", NOTE, result(), "v1", source="tag", dedupe_key="k")
    assert store.record([rec])[0] is not None
    assert store.record([rec]) == [None]
    case = store.get("C-1")
    assert [t["risk_level"] for t in case["triages"]] == ["medium", "high", "high"]
    assert case["last_triage_id"] == case["triages"][-1]["id"] and case["risk_level"] == "high"


def test_a_bad_case_id_is_refused(store):
    with pytest.raises(StoreError, match="1 to 128"):
        store.record([TriageRecord("x" * 129, NOTE, result(), "v1")])


# ------------------------------------------------------------------ corrections

def test_corrections_keep_who_when_what_changed_and_the_earlier_prediction(store):
    keep(store, "C-1")
    first = store.correct("C-1", {"risk_level": "medium", "risk_flags": []}, author="王丽", channel="page",
                          comment="客户只是抱怨，没有真要找媒体")
    assert first.changed == ["risk_level", "risk_flags"] and first.status == "open"
    second = store.correct("C-1", {"mindset": ["respect", "remedy"]}, author="李强", resolved=True)
    assert second.changed == ["mindset"] and second.status == "resolved"
    assert second.before == first.after
    case = store.get("C-1")
    assert case["labels"] == {"cause": ["contract_claims"], "risk_level": "medium", "risk_flags": [],
                              "mindset": ["respect", "remedy"]}
    assert case["risk_level"] == "medium" and case["corrected_by"] == "李强" and case["resolved_by"] == "李强"
    assert [(c["author"], c["channel"], c["changed"]) for c in case["corrections"]] == [
        ("王丽", "page", ["risk_level", "risk_flags"]), ("李强", "api", ["mindset"])]
    assert case["corrections"][0]["comment"] == "客户只是抱怨，没有真要找媒体"
    assert case["corrections"][0]["before"]["risk_level"] == "high"
    assert case["triages"][0]["predicted"]["risk_level"] == "high"  # the prediction is never overwritten


def test_resolving_alone_changes_no_label_and_reopening_works(store):
    keep(store, "C-1")
    done = store.correct("C-1", {}, author="王丽", resolved=True)
    assert done.changed == [] and done.status == "resolved"
    case = store.get("C-1")
    assert case["labels"] is None and case["corrected_at"] is None and case["corrections"][0]["after"] is None
    assert store.correct("C-1", {}, author="王丽", resolved=False).status == "open"
    assert store.get("C-1")["resolved_at"] is None


@pytest.mark.parametrize("labels, message", [
    ({"cause": []}, "cause: 0 ids given"),
    ({"cause": ["a", "b", "c", "d"]}, "cause: 4 ids given"),
    ({"risk_flags": ["bogus"]}, "unknown id"),
    ({"risk_level": "severe"}, "not one of"),
    ({"mindset": ["remedy", "remedy"]}, "repeated"),
    ({"priority": "high"}, "unknown label field"),
])
def test_labels_outside_the_taxonomy_are_refused_and_nothing_changes(store, labels, message):
    keep(store, "C-1")
    with pytest.raises(StoreError, match=message):
        store.correct("C-1", labels, author="王丽")
    case = store.get("C-1")
    assert case["corrections"] == [] and case["labels"] is None


def test_a_correction_needs_an_author_a_known_case_and_something_to_change(store):
    keep(store, "C-1")
    with pytest.raises(StoreError, match="author"):
        store.correct("C-1", {"risk_level": "low"}, author=" ")
    with pytest.raises(CaseNotFound):
        store.correct("nope", {"risk_level": "low"}, author="王丽")
    with pytest.raises(StoreError, match="nothing to change"):
        store.correct("C-1", {}, author="王丽")


def test_a_new_triage_does_not_override_the_handlers_risk_level_in_the_queue(store):
    keep(store, "C-1", level="high")
    store.correct("C-1", {"risk_level": "low", "risk_flags": []}, author="王丽")
    keep(store, "C-1", level="high")
    assert store.get("C-1")["risk_level"] == "low"
    assert [c["case_id"] for c in store.list_cases(risk_level="low").cases] == ["C-1"]


# ------------------------------------------------------------------ queries

def test_the_queue_filters_and_pages_through_every_case_exactly_once(store):
    for i in range(23):
        keep(store, f"C-{i:02d}", level=("high", "medium", "low")[i % 3])
    store.correct("C-00", {}, author="王丽", resolved=True)
    high = store.list_cases(risk_level="high", limit=5)
    seen, cursor = [], None
    while True:
        page = store.list_cases(risk_level="high", limit=3, cursor=cursor)
        seen += [c["case_id"] for c in page.cases]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == [f"C-{i:02d}" for i in range(0, 23, 3)] and len(seen) == len(set(seen))
    assert len(high.cases) == 5 and all(c["risk_level"] == "high" for c in high.cases)
    assert [c["case_id"] for c in store.list_cases(status="resolved").cases] == ["C-00"]
    assert len(store.list_cases(status="open", risk_level=["high", "medium"], limit=100).cases) == 15
    assert store.list_cases(since=date.today() + timedelta(days=1)).cases == []
    assert len(store.list_cases(until=date.today(), limit=100).cases) == 23
    assert "13812345678" not in store.list_cases(limit=1).cases[0]["text"]


@pytest.mark.parametrize("kwargs, message", [({"risk_level": "urgent"}, "risk_level"), ({"status": "closed"}, "status"),
                                             ({"limit": 0}, "limit"), ({"cursor": "garbage!"}, "cursor")])
def test_bad_filters_are_refused_with_the_reason(store, kwargs, message):
    with pytest.raises(StoreError, match=message):
        store.list_cases(**kwargs)


# ------------------------------------------------------------------ back into training

def test_the_export_is_a_label_file_of_corrected_cases_only(store, tmp_path):
    keep(store, "C-1")
    keep(store, "C-2")
    keep(store, "C-3")
    store.correct("C-1", {"risk_level": "medium"}, author="王丽")
    store.correct("C-2", {}, author="王丽", resolved=True)  # resolved, never relabelled: not training data
    rows = store.export_corrected()
    assert [r["id"] for r in rows] == ["C-1"]
    frame, problems = validate_labels(pd.DataFrame(rows))
    assert problems == []
    assert frame.loc[0, "risk_level"] == "medium" and frame.loc[0, "cause"] == ["contract_claims"]
    assert "138****5678" in rows[0]["text"]
    assert store.export_corrected(since=date.today() + timedelta(days=1)) == []
    audit = store.export_audit()
    assert [r["case_id"] for r in audit] == ["C-1", "C-2", "C-3"]
    assert audit[0]["pred_risk_level"] == "high" and audit[0]["labels"]["risk_level"] == "medium"


def test_agreement_compares_the_prediction_the_handler_saw_per_head(store):
    keep(store, "A", level="high", flags=("media_threat",), mindset=("remedy",))
    keep(store, "B", level="high", flags=("media_threat",), mindset=("remedy",))
    store.correct("A", {"risk_level": "high"}, author="王丽")  # confirms everything
    store.correct("B", {"risk_level": "medium", "risk_flags": [], "mindset": ["respect"]}, author="王丽")
    keep(store, "B", level="low")  # a later triage does not change what the handler corrected
    (row,) = store.agreement(by="day")
    assert row.period == utcnow().date().isoformat() and row.n == 2
    assert row.agree == {"cause": 1.0, "risk_level": 0.5, "risk_flags": 0.5, "mindset": 0.5}
    (week,) = store.agreement(by="week")
    assert date.fromisoformat(week.period).weekday() == 0
    with pytest.raises(StoreError):
        store.agreement(by="year")


# ------------------------------------------------------------------ concurrency

WRITER = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r} + "/..", {tests!r}]  # this checkout's package, not another installed one
    from pipeline.apps.store import CaseStore, TriageRecord
    from test_store import result
    url, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = CaseStore(url)  # every process opens the (possibly empty) database at once: the schema is created once
    for i in range(n):
        # each process writes its own cases, and all of them write to the shared case "S-<i>"
        store.record([TriageRecord(f"W{{worker}}-{{i}}", "理赔拖了两个月", result(), "v1"),
                      TriageRecord(f"S-{{i}}", "理赔拖了两个月", result(), "v1")])
""")


@pytest.mark.slow  # several processes at once: about 15 s on 2 cores
def test_several_processes_writing_at_once_lose_nothing(database_url, tmp_path):
    from pathlib import Path

    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parent)))
    workers, n = 4, 40
    procs = [subprocess.Popen([sys.executable, str(script), database_url, str(w), str(n)], stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with CaseStore(database_url) as store:
        counts = store.counts()
        assert counts["triages"] == workers * n * 2
        assert counts["cases"] == workers * n + n
        assert len(store.get("S-0")["triages"]) == workers


# ------------------------------------------------------------------ migrations

def test_the_migrations_build_exactly_the_schema_the_code_expects(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from pipeline.apps.store import Base

    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision() == "0003"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    engine.dispose()


def test_a_populated_database_upgrades_without_losing_a_case(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0001")
    now = utcnow()
    with engine.begin() as conn:  # what the first release wrote: cases and triages, no corrections yet
        conn.execute(sa.text("INSERT INTO cases (case_id, created_at, updated_at, risk_level, main_cause, review, "
                             "last_triage_id) VALUES ('OLD-1', :t, :t, 'high', 'contract_claims', true, 1)"), {"t": now})
        conn.execute(sa.text("INSERT INTO triages (case_id, created_at, source, model_version, text_masked, text_sha256, "
                             "predicted, result, risk_level) VALUES ('OLD-1', :t, 'serve', 'v0', '旧的投诉', :h, :p, :r, 'high')"),
                     {"t": now, "h": __import__("hashlib").sha256("旧的投诉".encode()).hexdigest(), "r": __import__("json").dumps(result()),
                      "p": __import__("json").dumps(predicted_labels(result()))})
    engine.dispose()
    with CaseStore(database_url) as store:  # opening the store upgrades it
        assert current_revision(store.engine) == head_revision()
        case = store.get("OLD-1")
        assert case["status"] == "open" and case["n_corrections"] == 0 and case["triages"][0]["text_masked"] == "旧的投诉"
        store.correct("OLD-1", {"risk_level": "medium"}, author="王丽")
        assert [r["id"] for r in store.export_corrected()] == ["OLD-1"]


def test_the_latest_migration_downgrades_and_upgrades_again(database_url):
    from alembic import command

    from pipeline.apps.store import _alembic_config

    with CaseStore(database_url) as store:
        keep(store, "C-1")
        engine = store.engine
        cfg = _alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
        assert current_revision(engine) == "0002"
        assert upgrade(engine) == "0003"
        assert store.get("C-1")["status"] == "open"


def test_one_batch_may_hold_a_case_twice_and_a_dedupe_key_twice(store):
    recs = [TriageRecord("C-1", NOTE, result(level="medium"), "v1"), TriageRecord("C-2", NOTE, result(), "v1", dedupe_key="k"),
            TriageRecord("C-1", NOTE, result(level="high"), "v1"), TriageRecord("C-2", NOTE, result(), "v1", dedupe_key="k")]
    ids = store.record(recs)
    assert ids[3] is None and len(set(ids[:3])) == 3
    case = store.get("C-1")
    assert case["risk_level"] == "high" and case["last_triage_id"] == ids[2] and len(case["triages"]) == 2
    assert store.counts() == {"cases": 2, "triages": 3, "corrections": 0, "corrected_cases": 0, "resolved_cases": 0}


def test_group_commit_gives_every_caller_its_own_ids_and_isolates_a_bad_request(store):
    import threading

    from pipeline.apps.store import GroupCommitter

    writer = GroupCommitter(store, max_batch=16)
    got, errors = {}, []

    def caller(k: int) -> None:
        for i in range(10):
            case_id = "x" * 200 if (k, i) == (3, 5) else f"G{k}-{i}"  # one bad request among 80
            try:
                got[(k, i)] = writer.record([TriageRecord(case_id, NOTE, result(), "v1")])
            except StoreError as exc:
                errors.append((k, i, str(exc)))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert [e[:2] for e in errors] == [(3, 5)] and "1 to 128" in errors[0][2]
    ids = [v[0] for v in got.values()]
    assert len(ids) == 79 == len(set(ids))
    assert store.counts()["triages"] == 79
    assert store.get("G7-9")["triages"][0]["id"] == got[(7, 9)][0]
