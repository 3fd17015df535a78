"""The page's supervisor view and labelling queue: what the routes serve, and that answers land where retrain reads."""
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from pipeline.apps.report import build_report, prepare, store_frame
from pipeline.apps.service import ServiceSettings, create_app
from pipeline.apps.store import CaseStore
from pipeline.model.suggest import uncertainty

LOCAL = "http://localhost"
WANG = {"X-Tousu-User": quote("王丽"), "X-Tousu-Channel": "page"}
TOKENS = {"zhang": "tok-zhang-0123456789", "li": "tok-li-0123456789"}
NOTES = {
    "N-1": "第三次打电话催理赔了，客户张先生电话13812345678，再不赔就去找电视台曝光，还要去银保监投诉！",
    "N-2": "请问犹豫期是多少天？想了解一下退保流程。",
    "N-3": "业务员当初说这是存款，现在才知道是保险，要求全额退保，不退就去法院起诉。",
    "N-4": "车险理赔定损金额太低，修理厂报价差了三千块，希望重新核定。",
    "N-5": "保单贷款利息怎么算的？客服说不清楚，态度也不好。",
}


@pytest.fixture
def client(registry, database_url):
    with TestClient(create_app(registry, ServiceSettings(database_url=database_url)), base_url=LOCAL) as c:
        yield c


def keep(client, case_id: str, text: str, received: date | None = None) -> dict:
    body = {"text": text, "id": case_id, **({"received": received.isoformat()} if received else {})}
    r = client.post("/v1/triage", json=body)
    assert r.status_code == 200 and r.json()["stored"], r.text
    return r.json()


# ------------------------------------------------------------------ supervisor view

def test_the_supervisor_view_is_the_reports_alerts_and_queues_open_cases_by_deadline(client, database_url):
    today = date.today()
    keep(client, "OLD", NOTES["N-1"], today - timedelta(days=90))     # long past its decision date
    keep(client, "NEAR", NOTES["N-3"], today - timedelta(days=14))    # due within days
    keep(client, "NEW", NOTES["N-2"], today)                          # due in weeks
    keep(client, "DONE", NOTES["N-4"], today - timedelta(days=90))    # overdue, but resolved
    assert client.post("/v1/cases/DONE/labels", json={"resolved": True}, headers=WANG).status_code == 200

    r = client.get("/v1/supervisor", params={"charts": "false"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["n"] == 4 and view["charts"] == {}
    # the queue: open cases only, overdue first, then the nearest decision date
    rows = view["queue"]["cases"]
    assert [q["case_id"] for q in rows] == ["OLD", "NEAR", "NEW"]
    assert rows[0]["overdue"] is True and rows[0]["days_left"] < 0 and view["queue"]["overdue"] == 1
    assert rows[0]["days_left"] < rows[1]["days_left"] < rows[2]["days_left"]
    assert all(q["cause_name"] and q["due"] for q in rows) and "13812345678" not in rows[0]["text"]
    # the alerts: exactly what `tousu report --store` finds on the same store
    deadline = [a for a in view["alerts"] if a["kind"] == "deadline"]
    assert deadline and deadline[0]["value"] == "OLD" and deadline[0]["overdue"] is True
    assert "DONE" not in {a["value"] for a in deadline}
    with CaseStore(database_url) as store:
        cases = prepare(store_frame(store), store.url, date_column="date", is_store=True)
        expected = build_report(cases, today=today)
    assert view["alerts"] == [a.to_json() for a in expected.alerts]
    assert view["risk"] == expected.risk and sum(g["n"] for g in view["groups"]) == 4
    # repeat complainants cannot be keyed on masked text: the view says so, as the report does
    assert any("脱敏" in n for n in view["notes"])


def test_the_supervisor_view_draws_the_reports_charts_and_answers_an_empty_store(client):
    empty = client.get("/v1/supervisor").json()
    assert empty["n"] == 0 and empty["queue"]["cases"] == [] and empty["alerts"] == []
    keep(client, "A-1", NOTES["N-1"], date.today() - timedelta(days=10))
    keep(client, "A-2", NOTES["N-4"], date.today() - timedelta(days=3))
    charts = client.get("/v1/supervisor").json()["charts"]
    assert set(charts) == {"groups", "causes", "trend"}
    assert all(uri.startswith("data:image/png;base64,") and len(uri) > 2000 for uri in charts.values())


# ------------------------------------------------------------------ labelling queue

def test_the_labelling_queue_serves_uncorrected_cases_most_doubtful_first(client, database_url, small_model):
    for case_id, text in NOTES.items():
        keep(client, case_id, text)
    r = client.get("/v1/labelling", params={"limit": 10})
    assert r.status_code == 200, r.text
    queue = r.json()
    assert queue["remaining"] == 5 and len(queue["cases"]) == 5
    # the doubt is the model's on the masked note the store keeps (what `tousu suggest` ranks by)
    with CaseStore(database_url) as store:
        masked = {c: store.get(c)["triages"][-1]["text_masked"] for c in NOTES}
    ids = list(masked)
    _, proba = small_model.predict_with_proba([masked[c] for c in ids])
    doubt = dict(zip(ids, uncertainty(proba, small_model.flag_threshold_vec_)))
    served = queue["cases"]
    assert served[0]["case_id"] == max(doubt, key=doubt.get)
    assert all(abs(c["uncertainty"] - doubt[c["case_id"]]) < 1e-3 for c in served)
    first = served[0]
    assert first["text"] == masked[first["case_id"]] and "13812345678" not in str(served)
    assert first["labels"]["cause"][0] == first["causes"][0]["id"] and 1 <= len(first["causes"]) <= 3
    assert all(c["name"] for c in first["causes"])
    # a skipped case is left out when the page asks again
    again = client.get("/v1/labelling", params={"skip": [first["case_id"]]}).json()
    assert first["case_id"] not in [c["case_id"] for c in again["cases"]] and len(again["cases"]) == 4


def test_a_labelled_case_leaves_the_queue_and_is_what_retrain_from_store_reads(client, database_url):
    for case_id, text in NOTES.items():
        keep(client, case_id, text)
    first = client.get("/v1/labelling").json()["cases"][0]
    labels = dict(first["labels"])
    labels["cause"] = [first["causes"][1]["id"]] if len(first["causes"]) > 1 else labels["cause"]
    r = client.post(f"/v1/cases/{first['case_id']}/labels", json=labels, headers=WANG)
    assert r.status_code == 200, r.text
    after = client.get("/v1/labelling").json()
    assert after["remaining"] == 4 and first["case_id"] not in [c["case_id"] for c in after["cases"]]
    # accepting the model's labels unchanged is a correction too: the handler confirmed them
    second = after["cases"][0]
    assert client.post(f"/v1/cases/{second['case_id']}/labels", json=second["labels"], headers=WANG).json()["changed"] == []
    assert client.get("/v1/labelling").json()["remaining"] == 3
    with CaseStore(database_url) as store:  # `tousu retrain --from-store` reads export_corrected
        rows = {r["id"]: r for r in store.export_corrected()}
    assert set(rows) == {first["case_id"], second["case_id"]}
    got = {k: rows[first["case_id"]][k] for k in ("cause", "risk_level", "risk_flags", "mindset")}
    assert got == labels and rows[first["case_id"]]["corrected_by"] == "王丽"
    assert rows[first["case_id"]]["text"] == first["text"]


def test_the_views_need_a_token_or_a_session_and_a_session_needs_its_csrf_header(registry, tmp_path):
    settings = ServiceSettings(database_url=f"sqlite:///{tmp_path / 'tok.db'}", api_tokens=TOKENS)
    with TestClient(create_app(registry, settings), base_url=LOCAL) as c:
        auth = {"Authorization": f"Bearer {TOKENS['li']}"}
        assert c.post("/v1/triage", json={"text": NOTES["N-1"], "id": "A-1"}, headers=auth).status_code == 200
        for path in ("/v1/labelling", "/v1/supervisor"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers={"Authorization": "Bearer wrong-token-000000"}).status_code == 401
        assert c.get("/v1/supervisor", params={"charts": "false"}, headers=auth).status_code == 200
        session = c.post("/v1/session", json={"token": TOKENS["zhang"]}).json()  # the page's login: a cookie
        item = c.get("/v1/labelling").json()["cases"][0]
        assert item["case_id"] == "A-1"
        r = c.post("/v1/cases/A-1/labels", json=item["labels"])
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = c.post("/v1/cases/A-1/labels", json=item["labels"], headers={"X-CSRF-Token": session["csrf"]})
        assert r.status_code == 200 and r.json()["author"] == "zhang"
        assert c.get("/v1/labelling").json() == {"cases": [], "remaining": 0, "pool": 0}
