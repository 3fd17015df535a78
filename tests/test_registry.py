"""Model artefacts: hashes and label schema checked before anything is unpickled."""
import json

import pytest

from pipeline.model import registry
from pipeline.model.registry import ModelError, load_model, promote, rollback, save_model


@pytest.fixture
def saved(tmp_path, small_model, small_corpus):
    train, _ = small_corpus
    path = save_model(small_model, train, {"heldout": {}}, root=tmp_path, version="v1")
    return tmp_path, path


def test_manifest_records_what_a_reviewer_needs(saved):
    _, path = saved
    m = json.loads((path / "model.json").read_text())
    for key in ("version", "created", "label_schema_hash", "training_data_hash", "feature_config", "metrics", "thresholds", "libraries", "files"):
        assert key in m
    assert set(m["files"]) == {"model.joblib"}


def test_thresholds_come_back_from_the_artefact(saved, small_model):
    _, path = saved
    model, manifest = load_model(path)
    assert model.flag_thresholds_ == small_model.flag_thresholds_ == manifest["thresholds"]["risk_flags"]


def test_a_tampered_model_file_is_refused_before_loading(saved):
    _, path = saved
    with open(path / "model.joblib", "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(ModelError, match="sha256 does not match"):
        load_model(path)


def test_a_malicious_pickle_never_runs(saved, tmp_path):
    import os
    import pickle
    _, path = saved
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (path / "model.joblib").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelError):
        load_model(path)
    assert not marker.exists()


def test_a_model_for_another_label_schema_is_refused(saved):
    _, path = saved
    m = json.loads((path / "model.json").read_text())
    m["label_schema_hash"] = "0000000000000000"
    (path / "model.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="label schema"):
        load_model(path)


def test_promote_and_rollback(saved, small_model, small_corpus):
    root, _ = saved
    train, _ = small_corpus
    save_model(small_model, train, {}, root=root, version="v2")
    promote("v1", root)
    promote("v2", root)
    assert registry.read_registry(root)["promoted"] == "v2"
    assert rollback(root) == "v1"
    assert registry.promoted_dir(root).name == "v1"


def test_missing_model_directory_says_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="tousu train"):
        load_model(tmp_path / "nothing")
