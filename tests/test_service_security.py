"""Attacks on the service (issue 17), each test named for the attack it stops."""
import json
import logging
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from pipeline.apps.service import ServiceSettings, SettingsError, create_app
from pipeline.apps.store import CaseStore

LOCAL = "http://localhost"
PHONE = "13812345678"
NOTE = f"第三次打电话催理赔了，客户张先生电话{PHONE}，再不赔就去找电视台曝光，还要去银保监投诉！"
WANG = {"X-Tousu-User": quote("王丽")}
TOKENS = {"zhang": "tok-zhang-0123456789", "li": "tok-li-0123456789"}


@pytest.fixture
def client(registry, database_url):
    with TestClient(create_app(registry, ServiceSettings(database_url=database_url)), base_url=LOCAL) as c:
        yield c


@pytest.fixture
def token_client(registry, tmp_path):
    settings = ServiceSettings(database_url=f"sqlite:///{tmp_path / 'tok.db'}", api_tokens=TOKENS)
    with TestClient(create_app(registry, settings), base_url=LOCAL) as c:
        yield c


def raw_json(body) -> dict:
    """Request kwargs sending `body` as ASCII JSON: lone surrogates travel as \\udXXX escapes, as a client may send them."""
    return {"content": json.dumps(body).encode("ascii"), "headers": {"Content-Type": "application/json"}}


def keep(client, case_id="A-1", text=NOTE, headers=None):
    r = client.post("/v1/triage", json={"text": text, "id": case_id}, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_api_never_returns_a_hash_of_the_original_note(client):
    """17.1: GET /v1/cases/{id} returned the plain sha256 that gave the phone number back in 1,235 guesses."""
    keep(client)
    case = client.get("/v1/cases/A-1").json()
    assert not {"text_sha256", "text_hmac", "dedupe_key"} & set(case["triages"][0])
    assert PHONE not in json.dumps(case, ensure_ascii=False)


def test_a_phone_in_a_correction_comment_is_masked_in_the_api_and_the_page_data(client):
    """17.2: correction comments were kept, returned and shown unmasked."""
    keep(client)
    r = client.post("/v1/cases/A-1/labels", json={"resolved": True, "comment": f"已回电{PHONE}"}, headers=WANG)
    assert r.status_code == 200, r.text
    case = client.get("/v1/cases/A-1").json()
    assert case["corrections"][0]["comment"] == "已回电138****5678"
    assert PHONE not in json.dumps(case, ensure_ascii=False)


def test_a_lone_surrogate_beside_a_phone_is_a_422_and_no_log_line_holds_the_phone(client, caplog, monkeypatch):
    """17.3: a lone \\ud800 in a comment gave a 500 on both databases and logged the phone beside it."""
    caplog.set_level(logging.INFO, logger="tousu.service")
    keep(client)
    body = raw_json({"resolved": True, "comment": f"\ud800 电话{PHONE}"})
    r = client.post("/v1/cases/A-1/labels", content=body["content"], headers={**body["headers"], **WANG})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "comment"] and PHONE not in r.text
    r = client.post("/v1/triage", json={"text": 123, "id": f"x{PHONE}"})  # a validation error naming the phone's field
    assert r.status_code == 422 and PHONE not in r.text and "input" not in r.json()["detail"][0]
    # an unexpected error whose message and traceback carry the phone: logged masked, answered without detail
    from pipeline.apps.store import CaseStore as Store

    monkeypatch.setattr(Store, "get", lambda self, case_id: (_ for _ in ()).throw(RuntimeError(f"boom {PHONE}")))
    r = client.get("/v1/cases/A-1")
    assert r.status_code == 500 and PHONE not in r.text
    assert "boom" in caplog.text and PHONE not in caplog.text


@pytest.mark.parametrize("method, path, kwargs", [
    ("post", "/v1/triage", {"json": {"text": "理赔太慢", "id": "A\x00B"}}),
    ("post", "/v1/triage", {"json": {"text": "理赔太慢", "id": "x" * 129}}),
    ("post", "/v1/triage", {"json": {"text": "理赔\ud800太慢"}}),
    ("post", "/v1/triage", {"json": {"text": "理赔\x00太慢"}}),
    ("post", "/v1/triage", {"json": {"text": "理赔太慢", "extra": {"\udfff": 1}}}),
    ("post", "/v1/triage", {"json": {"text": "理赔太慢", "received": "9999-12-31"}}),
    ("post", "/v1/triage/batch", {"json": {"notes": [{"text": "理赔太慢", "id": "ok"}, {"text": "理赔太慢", "id": "b\x00"}]}}),
    ("get", "/v1/cases/A%00B", {}),
    ("get", "/v1/cases/" + "x" * 129, {}),
    ("get", "/v1/cases", {"params": {"cause": "a\x00"}}),
    ("get", "/v1/cases", {"params": {"risk_level": "\x00"}}),
    ("get", "/v1/cases", {"params": {"cursor": "QQ\x00"}}),
    ("post", "/v1/cases/A-1/labels", {"json": {"resolved": True, "comment": "a\x00b"}, "headers": WANG}),
    ("post", "/v1/cases/A-1/labels", {"json": {"resolved": True, "comment": "长" * 2001}, "headers": WANG}),
    ("post", "/v1/cases/A-1/labels", {"json": {"resolved": True}, "headers": {"X-Tousu-User": "w" * 129}}),
    ("post", "/v1/cases/A-1/labels", {"json": {"resolved": True}, "headers": {"X-Tousu-User": "%00"}}),
    ("post", "/v1/cases/A-1/labels", {"json": {"risk_flags": ["\ud800"]}, "headers": WANG}),
])
def test_nul_surrogate_and_overlong_input_is_422_on_every_backend(client, database_url, method, path, kwargs):
    """17.14: on PostgreSQL these gave a 500 (and one bad id dropped a whole batch) where SQLite accepted them."""
    keep(client)
    if "json" in kwargs:
        body = raw_json(kwargs.pop("json"))
        kwargs = {**kwargs, "content": body["content"], "headers": {**kwargs.get("headers", {}), **body["headers"]}}
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == 422, (r.status_code, r.text)
    with CaseStore(database_url) as store:
        assert store.counts() == {"cases": 1, "triages": 1, "corrections": 0, "corrected_cases": 0, "resolved_cases": 0}


def test_a_token_holder_cannot_choose_another_author_nor_shadow_the_single_token(registry, tmp_path, monkeypatch):
    """17.15: with TOUSU_API_TOKEN the X-Tousu-User header set any author; a named token 'api' disabled the single one."""
    monkeypatch.setenv("TOUSU_API_TOKEN", "single-token-0123456789")
    settings = ServiceSettings.from_env(database_url=f"sqlite:///{tmp_path / 'id.db'}")
    with TestClient(create_app(registry, settings), base_url=LOCAL) as c:
        auth = {"Authorization": "Bearer single-token-0123456789"}
        keep(c, headers=auth)
        r = c.post("/v1/cases/A-1/labels", json={"resolved": True}, headers={**auth, "X-Tousu-User": quote("冒名")})
        assert r.status_code == 200 and r.json()["author"] == "api"
    monkeypatch.setenv("TOUSU_API_TOKENS", "api:other-token-0123456789")
    with pytest.raises(SettingsError, match="'api'"):
        ServiceSettings.from_env()
    with pytest.raises(SettingsError, match="share one token"):
        ServiceSettings(api_tokens={"a": "same-token", "b": "same-token"})


def test_the_page_logs_in_with_a_token_into_an_httponly_strict_cookie_and_posts_need_the_csrf_token(token_client):
    """17.16: GET / answered 401 and the page could not send a token; now it logs in, and a forged POST is refused."""
    c = token_client
    assert c.get("/").status_code == 200 and c.get("/v1/session").status_code == 401
    assert c.post("/v1/session", json={"token": "wrong"}).status_code == 401
    r = c.post("/v1/session", json={"token": TOKENS["li"]})
    assert r.status_code == 200 and r.json()["user"] == "li"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKENS["li"] not in cookie
    csrf = r.json()["csrf"]
    assert c.get("/v1/session").json() == {"auth": "session", "user": "li", "csrf": csrf}
    assert c.get("/v1/cases").status_code == 200  # the cookie alone reads
    assert c.post("/v1/triage", json={"text": NOTE, "id": "A-1"}).status_code == 403  # ... but cannot write
    assert c.post("/v1/triage", json={"text": NOTE, "id": "A-1"}, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert c.post("/v1/triage", json={"text": NOTE, "id": "A-1"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    r = c.post("/v1/cases/A-1/labels", json={"resolved": True}, headers={"X-CSRF-Token": csrf, **WANG})
    assert r.status_code == 200 and r.json()["author"] == "li"  # the session's name, not the header's
    # a tampered cookie is no session; logging out ends it
    value = cookie.split(";")[0].split("=", 1)[1]
    c.cookies.clear()
    c.cookies.set("tousu_session", value[:-1] + ("0" if value[-1] != "0" else "1"))
    assert c.get("/v1/cases").status_code == 401
    c.cookies.clear()
    c.cookies.set("tousu_session", value)
    r = c.post("/v1/session/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"]


def test_a_session_ends_when_its_token_is_rotated(registry, tmp_path):
    """17.16: a cookie is bound to the token it came from: a new token for the same name ends old sessions."""
    url = f"sqlite:///{tmp_path / 'rot.db'}"
    with TestClient(create_app(registry, ServiceSettings(database_url=url, api_tokens=TOKENS)), base_url=LOCAL) as c:
        value = c.post("/v1/session", json={"token": TOKENS["li"]}).headers["set-cookie"].split(";")[0].split("=", 1)[1]
    rotated = {**TOKENS, "li": "tok-li-rotated-000000"}
    with TestClient(create_app(registry, ServiceSettings(database_url=url, api_tokens=rotated)), base_url=LOCAL) as c:
        c.cookies.set("tousu_session", value)
        assert c.get("/v1/cases").status_code == 401
    with TestClient(create_app(registry, ServiceSettings(database_url=url, api_tokens=TOKENS)), base_url=LOCAL) as c:
        c.cookies.set("tousu_session", value)
        assert c.get("/v1/cases").status_code == 200  # the same secret and token: another worker accepts it


def test_dns_rebinding_with_a_foreign_host_header_reads_nothing_and_redirects_nowhere(client):
    """17.17: any Host header was accepted, so a rebinding page read the queue; /v1/cases/ redirected to its host."""
    keep(client)
    evil = {"Host": "evil.example"}
    for path in ("/v1/cases", "/v1/cases/", "/v1/cases/A-1", "/"):
        r = client.get(path, headers=evil, follow_redirects=False)
        assert r.status_code == 400 and "evil.example" not in r.headers.get("location", ""), path
    assert client.get("/healthz", headers=evil).status_code == 200  # probes may use the pod's address
    assert client.get("/v1/cases", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_a_cross_site_form_post_and_framing_are_refused_and_case_data_is_not_cached(client):
    """17.17: a form on another site could POST /v1/admin/reload; pages could be framed; case data was cacheable."""
    form = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/v1/admin/reload", content=b"x=1", headers=form).status_code == 403
    assert client.post("/v1/admin/reload", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post("/v1/admin/reload", headers={"Origin": LOCAL}).status_code == 200  # the page itself
    assert client.post("/v1/admin/reload", headers={"Origin": "https://localhost"}).status_code == 200  # behind TLS
    assert client.post("/v1/admin/reload", headers={"Origin": "http://localhost:9999"}).status_code == 403
    keep(client)
    for path in ("/", "/v1/cases/A-1", "/v1/cases", "/docs"):
        h = client.get(path).headers
        assert h["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in h["content-security-policy"], path
        assert h["referrer-policy"] == "no-referrer" and h["cache-control"] == "no-store", path


def test_the_docs_page_loads_nothing_from_a_cdn(client):
    """17.17: /docs loaded swagger-ui from cdn.jsdelivr.net."""
    page = client.get("/docs")
    assert page.status_code == 200 and "cdn." not in page.text and "//" not in page.text.replace("<!doctype", "")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/docs.js").status_code == 200
    assert "/v1/triage" in client.get("/openapi.json").json()["paths"]


def test_guessing_tokens_is_throttled_with_429(registry, tmp_path):
    """17.17: repeated wrong tokens from one client were answered 401 forever; now 429 after the limit."""
    settings = ServiceSettings(store=False, api_tokens=TOKENS, auth_failures=5, auth_window_s=60)
    with TestClient(create_app(registry, settings), base_url=LOCAL) as c:
        codes = [c.get("/v1/model", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(5)]
        assert codes == [401] * 5
        r = c.get("/v1/model", headers={"Authorization": f"Bearer {TOKENS['li']}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert c.post("/v1/session", json={"token": TOKENS["li"]}).status_code == 429  # the login form too


def test_a_correction_that_breaks_the_risk_rule_is_a_422_naming_the_rule(client):
    """17.18: risk low with violence_risk + self_harm_threat was accepted and exported for training."""
    keep(client)
    r = client.post("/v1/cases/A-1/labels", json={"risk_level": "low", "risk_flags": ["violence_risk", "self_harm_threat"]},
                    headers=WANG)
    assert r.status_code == 422 and "risk rule" in r.json()["detail"] and "high-severity flag" in r.json()["detail"]
    assert client.get("/v1/cases/A-1").json()["corrections"] == []
