"""The array model (pipeline.model.arrays): the fitted Triager's predictions, bit for bit, without scikit-learn."""
import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline.model import arrays
from pipeline.model.registry import ARRAY_FILES, MODEL_FILE, ModelError, load_model, save_model

ODD = ["", " ", "a", "ab  \n\t c", "İstanbul ÀB ǅ", "😀😀x", "x" * 5, "ＡＢＣ１２３", "退保\n\n\n退保", "1.5万元 3,000元",
       "\ud800退保", "客户称再不退保就去找记者曝光，已向银保监会投诉，律师函已发"]


def _validation_texts(shared) -> list[str]:
    path = shared / "data" / "validation.jsonl"
    if not path.exists():
        pytest.skip("no shared validation file")
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _array_model(model) -> arrays.ArrayTriager:
    return arrays.ArrayTriager.from_bytes(*arrays.dump(*arrays.to_arrays(model)))


def _assert_same(model, fast, texts) -> None:
    a_tri, a_p = model.predict_with_proba(texts)
    b_tri, b_p = fast.predict_with_proba(texts)
    assert a_p.keys() == b_p.keys()
    for head in a_p:
        assert a_p[head].tobytes() == b_p[head].tobytes(), head  # the same bits, not merely close
    assert a_tri == b_tri
    assert np.array_equal(model.mindset_presence_proba(texts), fast.mindset_presence_proba(texts))


def test_the_array_model_triages_the_validation_notes_as_the_fitted_model(small_model, shared):
    texts = _validation_texts(shared) + ODD
    fast = _array_model(small_model)
    _assert_same(small_model, fast, texts)
    # what the issue asks in so many words: top-3 cause probabilities, flags, mindset
    for a, b in zip(small_model.triage(texts), fast.triage(texts)):
        assert a.cause == b.cause and np.allclose(a.cause_proba, b.cause_proba, atol=1e-9, rtol=0)
        assert a.risk_flags == b.risk_flags and a.mindset == b.mindset and a.risk_level == b.risk_level


def test_character_ngrams_and_markers_give_scikit_learns_matrix_bit_for_bit(small_corpus):
    """The small model has no character block; the shipped one has. Its matrix, block by block."""
    from pipeline.model.features import build_features, transform_fast
    from pipeline.text.normalisation import normalise

    train, test = small_corpus
    texts = [normalise(t).model_text for t in list(train["text"])[:300] + list(test["text"])[:100] + ODD]
    texts += [t for t in ODD if "\ud800" not in t]  # raw too: the char block counts what it is given
    union = build_features(marker_weight=0.3).fit(texts[:200])
    blob = arrays._Blob()
    specs = arrays._feature_parts(union, blob)
    assert [p["kind"] for p in specs] == ["word", "char", "marker"]
    data = blob.bytes()
    table = {k: np.frombuffer(data, np.dtype(v["dtype"]), int(np.prod(v["shape"])), v["offset"]).reshape(v["shape"])
             for k, v in blob.table.items()}
    from scipy import sparse

    ours = sparse.hstack([arrays._Part(p, table).transform(texts) for p in specs]).tocsr()
    theirs = transform_fast(union, texts)
    assert np.array_equal(ours.indptr, theirs.indptr) and np.array_equal(ours.indices, theirs.indices)
    assert ours.data.tobytes() == theirs.data.tobytes()


def test_a_model_with_a_part_the_format_does_not_know_is_unsupported(small_model):
    import copy

    from sklearn.feature_extraction.text import CountVectorizer

    odd = copy.deepcopy(small_model)
    odd.features_.transformer_list.append(("count", CountVectorizer().fit(["alpha beta"])))
    with pytest.raises(arrays.Unsupported, match="count"):
        arrays.to_arrays(odd)


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(folder))
    return folder


def test_save_writes_signed_array_files_and_predict_only_loads_them(root, small_model, small_corpus):
    path = save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    manifest = json.loads((path / "model.json").read_text())
    assert manifest["array_format"]["written"] is True
    assert set(ARRAY_FILES) | {MODEL_FILE} <= set(manifest["files"])
    fast, _ = load_model("v1", root, predict_only=True)
    full, _ = load_model("v1", root)
    assert isinstance(fast, arrays.ArrayTriager) and fast.version_ == "v1"
    assert type(full).__name__ == "Triager"
    texts = list(small_corpus[1]["text"])[:50]
    _assert_same(full, fast, texts)


def test_a_tampered_array_file_is_refused(root, small_model, small_corpus):
    path = save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    blob = bytearray((path / "arrays.bin").read_bytes())
    blob[-1] ^= 1
    (path / "arrays.bin").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        load_model("v1", root, predict_only=True)


def test_a_version_saved_before_the_array_format_loads_from_its_pickle(root, small_model, small_corpus):
    from pipeline.model.registry import sign

    path = save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    manifest = json.loads((path / "model.json").read_text())
    for name in ARRAY_FILES:
        (path / name).unlink()
        del manifest["files"][name]
    del manifest["array_format"]
    manifest.pop("signature")
    (path / "model.json").write_text(json.dumps(sign(manifest)))
    model, _ = load_model("v1", root, predict_only=True)
    assert type(model).__name__ == "Triager"


def test_scoring_with_the_array_model_imports_no_scikit_learn_pandas_or_joblib(root, small_model, small_corpus):
    from pipeline.model.registry import promote

    save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    promote("v1", root)
    code = ("import sys, cli\n"
            "sys.argv = ['tousu', 'score', '客户称再不退保就去找记者曝光', '--json']\n"
            "try:\n    cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = sorted(m for m in ('sklearn', 'pandas', 'joblib', 'sqlalchemy', 'fastapi') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(arrays.__file__).rsplit("/pipeline/", 1)[0])
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout
    assert '"risk_level"' in out.stdout


def test_a_tampered_pickle_refuses_the_version_even_for_a_prediction_only_load(root, small_model, small_corpus):
    path = save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    with open(path / MODEL_FILE, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelError, match="sha256"):
        load_model("v1", root, predict_only=True)
