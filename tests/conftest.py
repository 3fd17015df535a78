import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture
def shared() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def small_corpus():
    """Hand-written training notes only: enough for every label, quick to fit."""
    from pipeline.model.corpus import train_test

    train, test = train_test()
    return train[train["source"] == "handwritten"].reset_index(drop=True), test


@pytest.fixture(scope="session")
def small_model(small_corpus):
    """A small Triager (no char n-grams, 2 folds): the real estimator, fitted in seconds."""
    from pipeline.model.triager import Triager

    train, _ = small_corpus
    return Triager(char_ngrams=None, cv=2).fit(train["text"], train)


@pytest.fixture(scope="session")
def signed_copy(tmp_path_factory, small_model, small_corpus):
    """`signed_copy(root, version, metrics)`: `small_model` saved and signed as that version inside `root`.
    Each (version, metrics) is saved once per session and copied after that: a save takes about half a
    second, dozens of tests start from one, and the signature does not name the models folder."""
    import json
    import shutil

    from pipeline.model.registry import save_model

    saved: dict[str, Path] = {}

    def copy(root: Path, version: str, metrics: dict) -> Path:
        key = json.dumps([version, metrics], sort_keys=True)
        if key not in saved:
            saved[key] = save_model(small_model, small_corpus[0], metrics, root=tmp_path_factory.mktemp("signed"),
                                    version=version)
        root.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copytree(saved[key], root / version))

    return copy


@pytest.fixture
def registry(tmp_path, monkeypatch, signed_copy) -> Path:
    """A model registry in tmp holding `small_model`, promoted; no API tokens in the environment."""
    from pipeline.model.registry import promote

    root = tmp_path / "models"
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(root))
    monkeypatch.delenv("TOUSU_API_TOKEN", raising=False)
    monkeypatch.delenv("TOUSU_API_TOKENS", raising=False)
    path = signed_copy(root, "v-small", {"heldout": {"cause_top1": 0.5}})
    promote(path.name, root)
    return root


@pytest.fixture(autouse=True, scope="session")
def _secret_for_tests():
    """Models are signed, and the store's keyed hashes made, with a test secret: no test (nor a subprocess)
    creates or reads the user's key file."""
    old = os.environ.get("TOUSU_SECRET")
    os.environ["TOUSU_SECRET"] = "test-secret-not-for-production-0123456789"
    yield
    if old is None:
        os.environ.pop("TOUSU_SECRET", None)
    else:
        os.environ["TOUSU_SECRET"] = old


@pytest.fixture(autouse=True, scope="session")
def _case_store_in_tmp(tmp_path_factory):
    """No test (nor a subprocess it starts) writes to the user's real case store."""
    old = os.environ.get("TOUSU_DATABASE_URL")
    os.environ["TOUSU_DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('store') / 'cases.db'}"
    yield
    if old is None:
        os.environ.pop("TOUSU_DATABASE_URL", None)
    else:
        os.environ["TOUSU_DATABASE_URL"] = old


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server: the one .ci/run started ($TOUSU_TEST_DATABASE_URL), else one started here."""
    url = os.environ.get("TOUSU_TEST_DATABASE_URL")
    if url:
        yield url
        return
    proc = subprocess.run([str(ROOT / ".ci" / "postgres"), "start"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"PostgreSQL could not start here: {proc.stderr.strip() or proc.returncode}")
    found = dict(line.split("=", 1) for line in proc.stdout.split())
    yield found["TOUSU_TEST_DATABASE_URL"]
    subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", found["TOUSU_TEST_PG_DIR"]], capture_output=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """An empty database of each kind, fresh for every test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cases.db'}"
        return
    import sqlalchemy as sa

    server = request.getfixturevalue("postgres_server")
    name = "tousu_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()
