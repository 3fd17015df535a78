"""The handler's page in a real browser: type the seed case, press 分诊, read the result."""
import json
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.registry import promote, save_model

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SEED = ("客户李先生(68岁)上门投诉，其爱人王某于2004年3月购买公司红双喜A款保单，所交保费45000元，"
        "08年9月因急需用钱选择退保，所退保费51142.75元。客户对退保现金价值十分不满，坚持购买时业务人员"
        "并未对退保损失做任何说明，属于公司欺骗行为，要求公司给予退保差额的50%(¥2459.79)作为补偿。"
        "客户情绪冲动，称如果公司不予解决将做媒体曝光。")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, monkeypatch, small_model, small_corpus):
    import uvicorn

    from pipeline.service import create_app

    root = tmp_path / "models"
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(root))
    monkeypatch.delenv("TOUSU_API_TOKEN", raising=False)
    promote(save_model(small_model, small_corpus[0], {"heldout": {}}, root=root, version="v-browser").name, root)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("the service did not become ready in 30 s")
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


def test_the_page_triages_the_seed_case(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")

    req = urllib.request.Request(server + "/v1/triage", data=json.dumps({"text": SEED}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        expected = json.loads(r.read())
    first_step = expected["plan"]["steps"][0]["text"]

    profile = tempfile.mkdtemp(prefix="tousu-chromium-", dir=tmp_path)
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True,
                                                       viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page = ctx.new_page()
            external = []
            page.on("request", lambda rq: None if rq.url.startswith(server) else external.append(rq.url))
            page.goto(server + "/")
            page.fill("#note", SEED)
            page.click("#triage-button")
            page.wait_for_selector("#steps li", timeout=30_000)
            risk = page.inner_text("#risk-level")
            assert "high" in risk and "重大投诉" in risk
            flags = page.inner_text("#flags")
            assert "媒体" in flags or "曝光" in flags
            assert page.inner_text("#steps li:first-child").strip() == first_step
            assert page.locator("#steps li").count() == len(expected["plan"]["steps"])
            assert external == [], f"the page fetched outside the service: {external}"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser_triage.png"), full_page=True)
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
