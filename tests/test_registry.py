"""Model artefacts: only signed models inside the models folder are unpickled, from the bytes that were checked."""
import hashlib
import json
import os
import pickle
import threading
import types

import pytest

from pipeline.model import registry
from pipeline.model.registry import ModelError, load_model, promote, rollback, save_model, sign

NOTE = "理赔拖了两个月，再不赔就去法院起诉"


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty models folder, the one tousu uses."""
    folder = tmp_path / "models"
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def saved(root, signed_copy):
    return root, signed_copy(root, "v1", {"heldout": {}})


@pytest.fixture
def outside(tmp_path, signed_copy):
    """A correctly signed model in a folder that is NOT the models folder."""
    return signed_copy(tmp_path / "elsewhere", "v9", {"heldout": {}})


def _evil_pickle(marker) -> bytes:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return pickle.dumps(Evil())


def _rewrite_manifest(path, **changes):
    m = json.loads((path / "model.json").read_text())
    m.update(changes)
    (path / "model.json").write_text(json.dumps(m))
    return m


def test_manifest_records_what_a_reviewer_needs_and_is_signed(saved):
    _, path = saved
    m = json.loads((path / "model.json").read_text())
    for key in ("version", "created", "label_schema_hash", "training_data_hash", "feature_config", "metrics",
                "thresholds", "libraries", "files", "signature"):
        assert key in m
    assert set(m["files"]) == {"model.joblib", "arrays.json", "arrays.bin"}  # the array model is signed too
    assert m["signature"]["alg"] == "HMAC-SHA256" and len(m["signature"]["value"]) == 64
    for name, digest in m["files"].items():
        assert digest == hashlib.sha256((path / name).read_bytes()).hexdigest()


def test_thresholds_come_back_from_the_artefact(saved, small_model):
    _, path = saved
    model, manifest = load_model(path)
    assert model.flag_thresholds_ == small_model.flag_thresholds_ == manifest["thresholds"]["risk_flags"]
    assert load_model("v1")[1]["version"] == "v1"  # a version name works as well as its path


def test_a_tampered_model_file_is_refused_before_loading(saved):
    _, path = saved
    with open(path / "model.joblib", "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(ModelError, match="sha256 does not match"):
        load_model(path)


def test_a_malicious_pickle_never_runs(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "pwned"
    (path / "model.joblib").write_bytes(_evil_pickle(marker))
    with pytest.raises(ModelError):
        load_model(path)
    assert not marker.exists()


def test_a_command_running_pickle_with_its_sha256_rewritten_is_refused_by_the_signature(saved, tmp_path):
    """The attack that beat the plain manifest: replace the pickle, rewrite its hash in model.json."""
    _, path = saved
    marker = tmp_path / "pwned"
    evil = _evil_pickle(marker)
    (path / "model.joblib").write_bytes(evil)
    _rewrite_manifest(path, files={"model.joblib": hashlib.sha256(evil).hexdigest()})
    with pytest.raises(ModelError, match="signature does not match"):
        load_model(path)
    with pytest.raises(ModelError, match="signature does not match"):
        promote("v1")
    assert not marker.exists()


def test_a_model_signed_with_another_secret_is_refused(saved, tmp_path, monkeypatch):
    """An attacker who writes the models folder but lacks this installation's secret signs with their own."""
    _, path = saved
    marker = tmp_path / "pwned"
    evil = _evil_pickle(marker)
    (path / "model.joblib").write_bytes(evil)
    m = json.loads((path / "model.json").read_text())
    m["files"] = {"model.joblib": hashlib.sha256(evil).hexdigest()}
    monkeypatch.setenv("TOUSU_SECRET", "the-attackers-own-secret-0123456789")
    (path / "model.json").write_text(json.dumps(sign(m)))
    monkeypatch.setenv("TOUSU_SECRET", "test-secret-not-for-production-0123456789")
    with pytest.raises(ModelError, match="signed with another key"):
        load_model(path)
    assert not marker.exists()


def test_an_unsigned_model_is_refused(saved):
    _, path = saved
    m = json.loads((path / "model.json").read_text())
    del m["signature"]
    (path / "model.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="not signed"):
        load_model(path)


def test_a_model_for_another_label_schema_is_refused(saved):
    _, path = saved
    m = json.loads((path / "model.json").read_text())
    m["label_schema_hash"] = "0000000000000000"
    (path / "model.json").write_text(json.dumps(sign(m)))  # signed by us, but for other labels
    with pytest.raises(ModelError, match="label schema"):
        load_model(path)


def test_a_signed_version_copied_under_another_name_is_refused(saved):
    import shutil

    root, path = saved
    shutil.copytree(path, root / "v2")
    with pytest.raises(ModelError, match="is for version 'v1', not 'v2'"):
        load_model("v2")


def test_a_file_swapped_after_its_hash_is_checked_is_never_loaded(saved, tmp_path, monkeypatch):
    """The moment between checking and unpickling is where a swapping process won; the bytes
    hashed must be the bytes unpickled. The file is swapped the instant its hash is known."""
    _, path = saved
    marker = tmp_path / "pwned"
    evil = _evil_pickle(marker)
    real = hashlib.sha256
    swapped = []

    class Swapping:
        def __init__(self, *args, **kw):
            self._h = real(*args, **kw)
            self._n = len(args[0]) if args else 0

        def update(self, data):
            self._n += len(data)
            self._h.update(data)

        def __getattr__(self, name):
            return getattr(self._h, name)

        def hexdigest(self):
            out = self._h.hexdigest()
            if self._n > 10_000 and not swapped:  # the model file's hash, not the manifest's
                (path / "model.joblib").write_bytes(evil)
                swapped.append(True)
            return out

    monkeypatch.setattr(registry, "hashlib", types.SimpleNamespace(sha256=Swapping))
    model, _ = load_model(path)
    assert swapped and (path / "model.joblib").read_bytes() == evil  # the swap did happen
    assert model.triage([NOTE])[0].cause and not marker.exists()


def test_a_process_swapping_the_file_in_a_loop_never_gets_its_pickle_run(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "pwned"
    good, evil = (path / "model.joblib").read_bytes(), _evil_pickle(marker)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            for data in (evil, good):
                tmp = path / ".swap"
                tmp.write_bytes(data)
                os.replace(tmp, path / "model.joblib")

    t = threading.Thread(target=swap)
    t.start()
    outcomes = set()
    try:
        for _ in range(15):
            try:
                load_model(path)
                outcomes.add("loaded")
            except ModelError:
                outcomes.add("refused")
    finally:
        stop.set()
        t.join()
    assert not marker.exists() and outcomes


def test_a_registry_pointing_outside_the_models_folder_is_refused(saved, outside, tmp_path):
    root, _ = saved
    promote("v1")
    for pointer in (str(outside), "../elsewhere/v9", str(tmp_path)):
        reg = json.loads((root / "registry.json").read_text())
        reg["promoted"] = pointer
        (root / "registry.json").write_text(json.dumps(reg))
        with pytest.raises(ModelError, match="not a model version name"):
            load_model()


def test_promote_refuses_a_path(saved, outside):
    root, _ = saved
    promote("v1")
    for name in ("../elsewhere/v9", str(outside), "v1/..", ".", ""):
        with pytest.raises(ModelError, match="not a model version name"):
            promote(name)
    assert registry.read_registry(root)["promoted"] == "v1"


def test_a_model_directory_outside_the_models_folder_is_never_loaded(saved, outside):
    with pytest.raises(ModelError, match="outside the models folder"):
        load_model(outside)  # signed with our key, but not in the models folder
    with pytest.raises(ModelError, match="outside the models folder"):
        load_model(outside.parent.parent / "models" / ".." / "elsewhere" / "v9")


def test_a_version_folder_linking_outside_is_refused(saved, outside):
    root, _ = saved
    (root / "v-link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelError, match="outside the models folder"):
        load_model("v-link")
    with pytest.raises(ModelError, match="outside the models folder"):
        promote("v-link")
    assert "v-link" not in registry.versions(root)


def test_a_model_file_linking_outside_is_refused(saved, outside):
    _, path = saved
    (path / "model.joblib").unlink()
    (path / "model.joblib").symlink_to(outside / "model.joblib")  # the same bytes, from outside
    with pytest.raises(ModelError, match="not links"):
        load_model(path)


def test_a_manifest_listing_a_path_is_refused(saved):
    _, path = saved
    m = json.loads((path / "model.json").read_text())
    m["files"]["../../etc/passwd"] = "0" * 64
    (path / "model.json").write_text(json.dumps(sign(m)))
    with pytest.raises(ModelError, match="not a file name inside the version folder"):
        load_model(path)


def test_save_model_refuses_a_version_name_that_is_a_path(root, small_model, small_corpus):
    with pytest.raises(ModelError, match="not a model version name"):
        save_model(small_model, small_corpus[0], {}, root=root, version="../escape")
    assert not (root.parent / "escape").exists()


def test_missing_model_directory_says_what_to_do(root):
    with pytest.raises(ModelError, match="tousu train"):
        load_model(root / "nothing")


# ------------------------------------------------------------------ promotion history

@pytest.fixture
def three(saved, signed_copy):
    root, _ = saved
    for v in ("v2", "v3"):
        signed_copy(root, v, {})
    for v in ("v1", "v2", "v3"):
        promote(v, reason=f"because {v}")
    return root


def test_rollback_walks_back_one_promotion_at_a_time_and_never_toggles(three):
    assert rollback() == "v2"
    assert rollback() == "v1"  # the old rollback went back to v3 here
    with pytest.raises(ModelError, match="nothing to roll back to: v1 is the first"):
        rollback()
    assert registry.promoted_dir().name == "v1"
    kinds = [(e.kind, e.version, e.previous) for e in registry.history()]
    assert kinds[-2:] == [("rollback", "v2", "v3"), ("rollback", "v1", "v2")]


def test_rollback_after_a_new_promotion_goes_back_to_the_version_it_replaced(three):
    assert rollback() == "v2"
    promote("v3", reason="fixed")  # v1 v2 v3 -> back to v2 -> v3 again
    assert registry.rollback_line() == ["v2", "v1"]
    assert rollback() == "v2" and rollback() == "v1"


def test_rollback_to_a_named_version_goes_there_in_one_step(three):
    assert rollback(to="v1") == "v1"
    assert registry.read_registry()["promoted"] == "v1"
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback()


def test_rollback_to_a_version_not_promoted_before_is_refused(three):
    rollback(to="v1")
    with pytest.raises(ModelError, match="v3 is not an earlier promotion"):
        rollback(to="v3")
    with pytest.raises(ModelError, match="already the promoted version"):
        rollback(to="v1")
    with pytest.raises(ModelError, match="not a model version name"):
        rollback(to="../v1")


def test_rollback_reads_a_registry_written_before_kinds_were_recorded(saved, small_model, small_corpus):
    """Old registries marked a rollback only in its reason; one that toggled still walks back cleanly."""
    root, _ = saved
    save_model(small_model, small_corpus[0], {}, root=root, version="v2")
    old = {"promoted": "v1", "history": [
        {"version": "v1", "at": "t1", "from": None, "reason": "trained"},
        {"version": "v2", "at": "t2", "from": "v1", "reason": "tousu train"},
        {"version": "v1", "at": "t3", "from": "v2", "reason": "rollback from v2"},
    ]}
    (root / "registry.json").write_text(json.dumps(old))
    assert registry.rollback_line() == []
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback()


# ------------------------------------------------------------------ prune

@pytest.fixture
def five(three, signed_copy):
    """v1..v4 promoted in turn (rollback line v3, v2, v1), v5 trained but not promoted (a challenger)."""
    root = three
    for v in ("v4", "v5"):
        signed_copy(root, v, {})
    promote("v4", reason="because v4")
    return root


def test_prune_keeps_the_promoted_the_newest_and_the_first_rollback_steps(five):
    plan = registry.prune(keep_newest=1)
    assert plan.remove == ["v1", "v2"]
    assert plan.keep == {"v3": "rollback step 1", "v4": "promoted", "v5": "one of the 1 newest"}
    assert registry.versions() == ["v3", "v4", "v5"]
    assert [e["version"] for e in registry.read_registry()["pruned"]] == ["v1", "v2"]
    assert not [p for p in five.iterdir() if p.name.startswith(".pruned-")]


def test_rollback_skips_pruned_versions_and_stops_where_they_begin(five):
    registry.prune(keep_newest=1)
    assert registry.rollback_line() == ["v3"]
    assert rollback() == "v3"
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback()


def test_a_dry_run_deletes_nothing_and_says_what_a_prune_would(five):
    plan = registry.prune_plan(keep_newest=0)
    assert plan.remove == ["v1", "v2", "v3", "v5"] and list(plan.keep) == ["v4"]
    assert registry.versions() == ["v1", "v2", "v3", "v4", "v5"]
    assert "pruned" not in registry.read_registry()


def test_prune_refuses_a_negative_count(five):
    with pytest.raises(ModelError, match="keep must be 0 or more"):
        registry.prune_plan(keep_newest=-1)
