"""One ServiceSettings: read from the environment once, passed explicitly to the app and to uvicorn's workers."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import APIRouter

import cli
from pipeline.apps.service import ServiceSettings, SettingsError, app_factory, create_app
from pipeline.apps.service.settings import SETTINGS_ENV

ROOT = Path(__file__).resolve().parent.parent


def test_settings_from_the_environment():
    s = ServiceSettings.from_env({"TOUSU_API_TOKENS": "zhang:tok-z, li:tok-l", "TOUSU_MAX_BATCH": "7",
                                  "TOUSU_TIMEOUT_S": "2.5", "TOUSU_NO_STORE": "1", "TOUSU_DATABASE_URL": "sqlite:///x.db",
                                  "TOUSU_CORS_ORIGINS": "https://a.example, https://b.example"}, port=9000)
    assert s.api_tokens == {"zhang": "tok-z", "li": "tok-l"}
    assert (s.max_batch, s.timeout_s, s.store, s.database_url, s.port) == (7, 2.5, False, "sqlite:///x.db", 9000)
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert ServiceSettings.from_env({}) == ServiceSettings()


def test_bad_settings_are_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="TOUSU_MAX_BATCH"):
        ServiceSettings.from_env({"TOUSU_MAX_BATCH": "lots"})
    with pytest.raises(SettingsError, match="max_batch"):
        ServiceSettings(max_batch=0)


def test_worker_env_round_trips_the_whole_settings_object():
    s = ServiceSettings(host="0.0.0.0", port=8123, workers=3, max_note_chars=99, api_tokens={"li": "tok"}, store=False,
                        database_url="sqlite:///a.db", cors_origins=("https://a.example",), models_dir="/m")
    env = s.worker_env({"PATH": "/bin", "TOUSU_MAX_BATCH": "2"})
    assert env["PATH"] == "/bin" and json.loads(env[SETTINGS_ENV])["port"] == 8123
    # the serialised object wins over the single variables: every worker gets exactly what the CLI resolved
    assert ServiceSettings.from_env(env) == s


def test_app_factory_builds_the_app_from_the_serialised_settings(registry, monkeypatch):
    s = ServiceSettings(max_batch=3, store=False, models_dir=str(registry))
    monkeypatch.setenv(SETTINGS_ENV, s.to_json())
    app = app_factory()
    assert app.state.settings == s and app.state.store is None


def test_one_router_per_concern_and_dependencies_on_app_state(registry):
    from pipeline.apps.service import admin, cases, page, triage

    assert all(isinstance(m.router, APIRouter) for m in (admin, cases, page, triage))
    paths = {m.__name__.rsplit(".", 1)[1]: {r.path for r in m.router.routes} for m in (admin, cases, page, triage)}
    assert paths["triage"] == {"/v1/triage", "/v1/triage/batch"}
    assert {"/healthz", "/readyz", "/v1/model", "/metrics", "/v1/admin/reload"} <= paths["admin"]
    assert {"/v1/cases", "/v1/cases/{case_id}", "/v1/cases/{case_id}/labels"} <= paths["cases"]
    app = create_app(registry, ServiceSettings(store=False))
    assert app.state.holder.version == "v-small" and app.state.scorer.writer is None


@pytest.fixture
def no_serve(monkeypatch):
    """Catch what `tousu serve` would run instead of running it."""
    seen = {}

    def fake_execve(path, argv, env):
        seen.update(path=path, argv=argv, env=env)
        raise SystemExit(0)

    def fake_run(app, **kw):
        seen.update(app=app, **kw)

    import uvicorn

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def test_serve_with_one_worker_passes_the_settings_object_and_writes_no_environment(registry, tmp_path, no_serve):
    before = dict(os.environ)
    url = f"sqlite:///{tmp_path / 'one.db'}"
    result = CliRunner().invoke(cli.main, ["serve", "--port", "8765", "--no-store", "--database", url,
                                           "--allowed-host", "Triage.Example"])
    assert result.exit_code == 0, result.output
    assert dict(os.environ) == before
    settings = no_serve["app"].state.settings
    assert (settings.port, settings.store, settings.workers, no_serve["port"]) == (8765, False, 1, 8765)
    assert settings.models_dir == str(registry) and settings.hosts() == {"triage.example"}


def test_the_default_hosts_are_the_loopback_names_and_the_bind_address():
    assert ServiceSettings().hosts() == {"localhost", "127.0.0.1", "::1"}
    assert ServiceSettings(host="10.1.2.3").hosts() == {"localhost", "127.0.0.1", "::1", "10.1.2.3"}
    assert ServiceSettings(host="0.0.0.0").hosts() == {"localhost", "127.0.0.1", "::1"}
    assert ServiceSettings.from_env({"TOUSU_ALLOWED_HOSTS": "a.example, B.example"}).hosts() == {"a.example", "b.example"}


def test_serve_with_workers_hands_them_the_serialised_settings_and_writes_no_environment(registry, tmp_path, no_serve,
                                                                                         monkeypatch):
    monkeypatch.setenv("TOUSU_MAX_NOTE_CHARS", "500")
    before = dict(os.environ)
    url = f"sqlite:///{tmp_path / 'many.db'}"
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "3", "--port", "8766", "--database", url])
    assert result.exit_code == 0, result.output
    assert dict(os.environ) == before and SETTINGS_ENV not in os.environ
    assert no_serve["argv"][1:6] == ["-m", "uvicorn", "pipeline.apps.service:app_factory", "--factory", "--host"]
    assert "--workers" in no_serve["argv"] and no_serve["argv"][no_serve["argv"].index("--workers") + 1] == "3"
    settings = ServiceSettings.from_env(no_serve["env"])
    assert (settings.workers, settings.port, settings.database_url, settings.max_note_chars) == (3, 8766, url, 500)
    assert (tmp_path / "many.db").exists()  # the schema is made once, before the workers start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_with_two_workers_stores_where_the_cli_was_told(registry, tmp_path):
    """A real `tousu serve --workers 2`: both workers use the --database the CLI got, not the environment's."""
    port, url = _free_port(), f"sqlite:///{tmp_path / 'workers.db'}"
    env = {**os.environ, "TOUSU_DATABASE_URL": f"sqlite:///{tmp_path / 'not-this.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--workers", "2", "--port", str(port), "--database", url],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the service did not become ready")
        for i in range(6):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/triage", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"text": "理赔太慢了", "id": f"W-{i}"}).encode())
            with urllib.request.urlopen(req, timeout=30) as r:
                assert json.loads(r.read())["stored"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    from pipeline.apps.store import CaseStore

    with CaseStore(url) as store:
        assert store.counts()["triages"] == 6
    assert not (tmp_path / "not-this.db").exists()
