"""The scoring service: every route, the bounds, auth, hot reload under load, PII in logs."""
import json
import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

from pipeline.contract.taxonomy import taxonomy
from pipeline.model.registry import promote, save_model
from pipeline.apps.service import ServiceSettings, create_app

LOCAL = "http://localhost"  # the service answers only to the Host names it is told (loopback by default)

SEED = ("客户李先生(68岁)上门投诉，其爱人王某于2004年3月购买公司红双喜A款保单，所交保费45000元，"
        "08年9月因急需用钱选择退保，所退保费51142.75元。客户对退保现金价值十分不满，坚持购买时业务人员"
        "并未对退保损失做任何说明，属于公司欺骗行为，要求公司给予退保差额的50%(¥2459.79)作为补偿。"
        "客户情绪冲动，称如果公司不予解决将做媒体曝光。")
PHONE = "13812345678"


@pytest.fixture
def client(registry):
    settings = ServiceSettings(max_body_bytes=20_000, max_note_chars=2_000, max_batch=5)
    with TestClient(create_app(registry, settings), base_url=LOCAL) as c:
        yield c


def test_triage_one_note(client):
    r = client.post("/v1/triage", json={"text": SEED, "id": "A-1", "received": "2026-11-25", "extra": {"渠道": "柜面", "n": 3}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["id", "case_id", "stored", "triage", "facts", "plan", "model_version", "elapsed_ms", "extra"]
    assert body["case_id"] == "A-1" and body["stored"] is True
    assert body["id"] == "A-1" and body["extra"] == {"渠道": "柜面", "n": 3} and body["model_version"] == "v-small"
    flags = [f["id"] for f in body["triage"]["risk_flags"]]
    assert "media_threat" in flags
    # the level the service returns is the spec's rule over the flags it returns (the small test model may
    # or may not read 情绪冲动 as anger; the full model's high for this note is test_end_to_end's)
    assert body["triage"]["risk_level"]["id"] == taxonomy().risk_floor(flags) in ("medium", "high")
    assert body["triage"]["risk_level"]["reason"]
    assert body["plan"]["steps"] and body["plan"]["reply_due"]["decision_due"].startswith("2026-12")
    assert body["elapsed_ms"] >= 0
    assert r.headers["x-request-id"]


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"] != "bad id\twith spaces"


def test_batch(client):
    notes = [{"text": SEED, "id": "1"}, {"text": "請問猶豫期是多少天？", "id": "2", "extra": {"k": "v"}}]
    r = client.post("/v1/triage/batch", json={"notes": notes})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["id"] for x in res] == ["1", "2"] and res[1]["extra"] == {"k": "v"}
    seed_flags = [f["id"] for f in res[0]["triage"]["risk_flags"]]
    assert "media_threat" in seed_flags and res[0]["triage"]["risk_level"]["id"] == taxonomy().risk_floor(seed_flags)
    assert res[1]["triage"]["risk_level"]["id"] == "low" and res[1]["triage"]["risk_flags"] == []
    assert client.post("/v1/triage/batch", json={"notes": []}).json()["results"] == []


def test_batch_too_big_is_413(client):
    r = client.post("/v1/triage/batch", json={"notes": [{"text": "理赔太慢"}] * 6})
    assert r.status_code == 413 and "at most 5" in r.json()["detail"]


def test_health_ready_model_metrics_openapi_page(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model_version"] == "v-small"
    m = client.get("/v1/model").json()
    assert m["version"] == "v-small" and m["metrics"] == {"heldout": {"cause_top1": 0.5}}
    level = client.post("/v1/triage", json={"text": SEED}).json()["triage"]["risk_level"]["id"]
    client.post("/v1/triage", json={"text": ""})
    text = client.get("/metrics").text
    assert 'tousu_requests_total{route="/v1/triage",method="POST",status="200"} 1' in text
    assert 'tousu_requests_total{route="/v1/triage",method="POST",status="422"} 1' in text
    assert 'tousu_request_seconds_bucket{route="/v1/triage",le="+Inf"} 2' in text
    assert f'tousu_predictions_total{{risk_level="{level}"}} 1' in text
    assert all(f'tousu_predictions_total{{risk_level="{x}"}} 0' in text for x in ("low", "medium", "high") if x != level)
    assert "# TYPE tousu_errors_total counter" in text and 'tousu_model_info{version="v-small"} 1' in text
    spec = client.get("/openapi.json").json()
    assert {"/v1/triage", "/v1/triage/batch", "/healthz", "/readyz", "/v1/model", "/metrics", "/v1/admin/reload"} <= set(spec["paths"])
    page = client.get("/")
    assert page.status_code == 200 and 'id="triage-button"' in page.text and "分诊" in page.text
    assert "http" not in page.text.split("<body>")[0].replace('http-equiv', '')  # no external resources in the head
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200


@pytest.mark.parametrize("payload, where", [
    ({}, "text"),                                     # missing text
    ({"text": 123}, "text"),                          # wrong type
    ({"text": "ok", "received": "2026-13-45"}, "received"),
    ({"text": "ok", "extra": [1, 2]}, "extra"),
    ({"text": "ok", "model_path": "/tmp/evil.joblib"}, "model_path"),  # no request can name a model
    ({"text": "   "}, "text"),                        # empty
])
def test_bad_bodies_are_422(client, payload, where):
    r = client.post("/v1/triage", json=payload)
    assert r.status_code == 422, r.text
    assert where in json.dumps(r.json()["detail"])


def test_not_json_is_422(client):
    r = client.post("/v1/triage", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_note_too_long_is_422_with_a_clear_message(client):
    r = client.post("/v1/triage", json={"text": "理" * 2_001})
    assert r.status_code == 422
    assert "2001 characters" in r.json()["detail"][0]["msg"] and "at most 2000" in r.json()["detail"][0]["msg"]


def test_oversize_body_is_413(client):
    r = client.post("/v1/triage", json={"text": "理" * 10_000})  # 30 kB of UTF-8 > 20 kB
    assert r.status_code == 413 and "20000 bytes" in r.json()["detail"]


def test_oversize_streamed_body_is_413(client):
    def chunks():
        yield b'{"text": "'
        for _ in range(30):
            yield b"a" * 1000
        yield b'"}'
    r = client.post("/v1/triage", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_timeout_is_504(registry, monkeypatch):
    import pipeline.apps.service.scoring as scoring

    real = scoring.score_notes
    monkeypatch.setattr(scoring, "score_notes", lambda model, notes: (time.sleep(0.5), real(model, notes))[1])
    with TestClient(create_app(registry, ServiceSettings(timeout_s=0.05)), base_url=LOCAL) as c:
        r = c.post("/v1/triage", json={"text": SEED})
        assert r.status_code == 504
        assert 'tousu_errors_total{kind="timeout"} 1' in c.get("/metrics").text


def test_token_auth(registry, monkeypatch):
    monkeypatch.setenv("TOUSU_API_TOKEN", "s3cret")
    with TestClient(create_app(registry), base_url=LOCAL) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        for method, path in (("post", "/v1/triage"), ("post", "/v1/triage/batch"), ("get", "/v1/model"), ("get", "/metrics"),
                             ("post", "/v1/admin/reload"), ("get", "/openapi.json"), ("get", "/v1/cases"),
                             ("get", "/v1/cases/A-1"), ("post", "/v1/cases/A-1/labels"), ("get", "/v1/stats/agreement"),
                             ("get", "/v1/taxonomy"), ("get", "/v1/session"), ("post", "/v1/session/logout")):
            assert getattr(c, method)(path).status_code == 401, path
        # the page and the docs are shells without data: they load, and the page asks for the token
        page = c.get("/")
        assert page.status_code == 200 and 'id="login-form"' in page.text
        assert c.get("/docs").status_code == 200
        assert c.post("/v1/triage", json={"text": SEED}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/v1/triage", json={"text": SEED}, headers={"Authorization": "s3cret"}).status_code == 401
        ok = c.post("/v1/triage", json={"text": SEED}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.headers["x-request-id"]


def test_no_cors_by_default(client):
    r = client.options("/v1/triage", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_not_ready_with_an_empty_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("TOUSU_API_TOKEN", raising=False)
    with TestClient(create_app(tmp_path / "empty"), base_url=LOCAL) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and "no promoted model" in r.json()["detail"]
        assert c.post("/v1/triage", json={"text": SEED}).status_code == 503
        assert c.get("/v1/model").status_code == 503
        assert c.post("/v1/admin/reload").status_code == 503


def test_a_tampered_model_is_not_reloaded(client, registry, small_model, small_corpus):
    path = save_model(small_model, small_corpus[0], {"heldout": {}}, root=registry, version="v-bad")
    promote(path.name, registry)
    with open(path / "model.joblib", "ab") as fh:
        fh.write(b"tampered")
    r = client.post("/v1/admin/reload")
    assert r.status_code == 409 and "sha256" in r.json()["detail"] and "still serving v-small" in r.json()["detail"]
    assert client.post("/v1/triage", json={"text": SEED}).json()["model_version"] == "v-small"


def test_hot_reload_under_concurrent_requests(client, registry, small_model, small_corpus):
    failures, versions, stop = [], set(), threading.Event()
    lock = threading.Lock()

    def hammer():
        while not stop.is_set():
            r = client.post("/v1/triage", json={"text": SEED})
            with lock:
                if r.status_code != 200:
                    failures.append(r.status_code)
                else:
                    versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    path = save_model(small_model, small_corpus[0], {"heldout": {}}, root=registry, version="v-two")
    promote(path.name, registry)
    r = client.post("/v1/admin/reload")
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert r.status_code == 200 and r.json() == {"old_version": "v-small", "new_version": "v-two", "changed": True}
    assert failures == []
    assert versions == {"v-small", "v-two"}
    assert client.get("/v1/model").json()["version"] == "v-two"
    assert client.post("/v1/triage", json={"text": SEED}).json()["model_version"] == "v-two"


def test_one_masked_json_log_line_per_request(client, caplog):
    caplog.set_level(logging.INFO, logger="tousu.service")
    r = client.post("/v1/triage", json={"text": f"我的电话{PHONE}，理赔拖了一个月", "id": f"case-{PHONE}"},
                    headers={"X-Request-ID": f"req-{PHONE}"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == f"req-{PHONE}"
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "tousu.service"]
    request_lines = [x for x in lines if x.get("route") == "/v1/triage"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert {"request_id", "route", "status", "elapsed_ms"} <= set(line) and line["status"] == 200
    assert line["model_version"] == "v-small"
    assert PHONE not in caplog.text
    assert "138" in line["request_id"] and "case-" in line["ids"][0]
