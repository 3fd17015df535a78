"""The service's case store routes: every triage kept, corrections with an author, the queue, agreement."""
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from pipeline.apps.service import ServiceSettings, create_app
from pipeline.apps.store import CaseStore

LOCAL = "http://localhost"  # the service answers only to the Host names it is told (loopback by default)
WANG = {"X-Tousu-User": quote("王丽")}  # header values are latin-1 on the wire: names go percent-encoded
NOTE = "第三次打电话催理赔了，客户张先生电话13812345678，再不赔就去找电视台曝光，还要去银保监投诉！"
CALM = "请问犹豫期是多少天？想了解一下退保流程。"


@pytest.fixture
def client(registry, database_url):
    with TestClient(create_app(registry, ServiceSettings(database_url=database_url)), base_url=LOCAL) as c:
        yield c


def triage(client, text=NOTE, case_id=None):
    body = {"text": text, "received": "2026-11-25"}
    if case_id:
        body["id"] = case_id
    r = client.post("/v1/triage", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_triage_is_stored_under_the_callers_id_or_a_new_one(client, database_url):
    given = triage(client, case_id="A-1")
    new = triage(client, CALM)
    assert given["case_id"] == "A-1" and given["stored"] is True
    assert new["case_id"].startswith(date.today().strftime("%Y%m%d") + "-") and new["stored"] is True
    case = client.get("/v1/cases/A-1").json()
    (stored,) = case["triages"]
    assert stored["result"]["triage"] == given["triage"] and stored["result"]["plan"] == given["plan"]
    assert stored["model_version"] == "v-small" and stored["processing_ms"] > 0
    assert "13812345678" not in stored["text_masked"]
    batch = client.post("/v1/triage/batch", json={"notes": [{"text": NOTE, "id": "B-1"}, {"text": CALM}]}).json()
    assert batch["stored"] is True and batch["results"][0]["case_id"] == "B-1"
    assert CaseStore(database_url).counts()["triages"] == 4


def test_a_correction_records_the_author_from_the_header_and_keeps_the_prediction(client):
    t = triage(client, case_id="A-1")
    predicted = t["triage"]["risk_level"]["id"]
    new_level = "low" if predicted != "low" else "high"
    r = client.post("/v1/cases/A-1/labels", json={"risk_level": new_level, "risk_flags": [], "comment": "只是咨询"},
                    headers={**WANG, "X-Tousu-Channel": "page"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"][0] == "risk_level" and body["author"] == "王丽"
    assert body["before"]["risk_level"] == predicted and body["after"]["risk_level"] == new_level
    case = client.get("/v1/cases/A-1").json()
    assert case["labels"]["risk_level"] == new_level and case["risk_level"] == new_level
    assert case["corrections"][0]["channel"] == "page" and case["corrections"][0]["comment"] == "只是咨询"
    assert case["triages"][0]["predicted"]["risk_level"] == predicted
    r = client.post("/v1/cases/A-1/labels", json={"resolved": True}, headers=WANG)
    assert r.json()["status"] == "resolved"


def test_a_correction_without_an_author_bad_labels_or_an_unknown_case_is_refused(client):
    triage(client, case_id="A-1")
    r = client.post("/v1/cases/A-1/labels", json={"risk_level": "low"})
    assert r.status_code == 422 and "X-Tousu-User" in r.json()["detail"]
    r = client.post("/v1/cases/A-1/labels", json={"risk_flags": ["bogus"]}, headers=WANG)
    assert r.status_code == 422 and "bogus" in r.json()["detail"]
    r = client.post("/v1/cases/A-1/labels", json={"priority": 1}, headers=WANG)
    assert r.status_code == 422
    r = client.post("/v1/cases/nope/labels", json={"risk_level": "low"}, headers=WANG)
    assert r.status_code == 404
    assert client.get("/v1/cases/nope").status_code == 404
    assert client.get("/v1/cases/A-1").json()["corrections"] == []


def test_with_named_tokens_the_author_is_the_tokens_name(registry, database_url, monkeypatch):
    monkeypatch.setenv("TOUSU_API_TOKENS", "zhang:tok-z,li:tok-l")
    with TestClient(create_app(registry, ServiceSettings.from_env(database_url=database_url)), base_url=LOCAL) as c:
        assert c.post("/v1/triage", json={"text": NOTE, "id": "A-1"}).status_code == 401
        auth = {"Authorization": "Bearer tok-l"}
        assert c.post("/v1/triage", json={"text": NOTE, "id": "A-1"}, headers=auth).status_code == 200
        r = c.post("/v1/cases/A-1/labels", json={"risk_level": "low", "risk_flags": []},
                   headers={**auth, "X-Tousu-User": quote("冒名")})
        assert r.status_code == 200 and r.json()["author"] == "li"


def test_the_queue_filters_by_risk_and_date_and_pages(client):
    ids = {}
    for i in range(5):
        ids[f"H-{i}"] = triage(client, NOTE, f"H-{i}")["triage"]["risk_level"]["id"]
    ids["L-0"] = triage(client, CALM, "L-0")["triage"]["risk_level"]["id"]
    today = date.today().isoformat()
    for level in ("high", "medium", "low"):
        r = client.get("/v1/cases", params={"risk_level": level, "since": today, "limit": 100})
        assert r.status_code == 200
        assert sorted(c["case_id"] for c in r.json()["cases"]) == sorted(k for k, v in ids.items() if v == level)
    seen, cursor = [], None
    while True:
        page = client.get("/v1/cases", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["case_id"] for c in page["cases"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert client.get("/v1/cases", params={"since": tomorrow}).json()["cases"] == []
    assert client.get("/v1/cases", params={"risk_level": "urgent"}).status_code == 422
    assert client.get("/v1/cases", params={"cursor": "garbage!"}).status_code == 422


def test_agreement_and_taxonomy_routes(client):
    t = triage(client, case_id="A-1")
    triage(client, case_id="A-2")
    client.post("/v1/cases/A-1/labels", json={"risk_level": t["triage"]["risk_level"]["id"]}, headers=WANG)
    other = "low" if t["triage"]["risk_level"]["id"] != "low" else "high"
    r = client.post("/v1/cases/A-2/labels", json={"risk_level": other, "risk_flags": []}, headers=WANG)
    assert r.status_code == 200, r.text
    stats = client.get("/v1/stats/agreement", params={"by": "day"}).json()
    assert stats["overall"]["n"] == 2 and stats["overall"]["agree"]["risk_level"] == 0.5
    assert stats["periods"][0]["agree"]["cause"] == 1.0
    assert client.get("/v1/stats/agreement", params={"by": "year"}).status_code == 422
    tax = client.get("/v1/taxonomy").json()
    assert len(tax["causes"]) == 31 and {"id": "high", "name": "重大投诉"} in tax["risk_levels"]
    assert all(c["name"] and c["group_name"] for c in tax["causes"])


def test_with_the_store_off_triage_still_works_and_case_routes_say_why(registry):
    with TestClient(create_app(registry, ServiceSettings(store=False)), base_url=LOCAL) as c:
        body = c.post("/v1/triage", json={"text": NOTE}).json()
        assert body["stored"] is False and body["triage"]["cause"]
        r = c.get("/v1/cases")
        assert r.status_code == 503 and "store" in r.json()["detail"]
        assert c.get("/readyz").json()["store"] == "off"


def test_a_store_that_cannot_open_does_not_stop_triage(registry, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = ServiceSettings(database_url=f"sqlite:///{blocker}/sub/cases.db")
    with TestClient(create_app(registry, settings), base_url=LOCAL) as c:
        body = c.post("/v1/triage", json={"text": NOTE}).json()
        assert body["stored"] is False and body["triage"]["risk_level"]["id"] in ("low", "medium", "high")
        assert c.get("/readyz").json()["store"] == "error"
        assert 'tousu_errors_total{kind="store_open"} 1' in c.get("/metrics").text
