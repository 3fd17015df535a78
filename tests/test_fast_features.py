"""The faster prediction path must give scikit-learn's feature matrix bit for bit."""
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from pipeline.model.features import _counts, build_features, transform_fast
from pipeline.text.normalisation import normalise
from pipeline.text.tokenise import Tokenizer

ODD = ["", " ", "a", "ab  \n\t c", "İstanbul ÀB ǅ", "😀😀x", "x" * 5, "ＡＢＣ１２３", "退保\n\n\n退保", "1.5万元 3,000元"]


def _same(a, b) -> None:
    assert type(a) is type(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert a.data.tobytes() == b.data.tobytes()  # equal bits, not merely close values


@pytest.fixture(scope="module")
def texts(small_corpus):
    train, test = small_corpus
    return [normalise(t).model_text for t in list(train["text"]) + list(test["text"])]


@pytest.fixture(scope="module")
def fitted(texts):
    """The shipped feature settings (word + char 1-3 + markers), fitted on part of the corpus."""
    return build_features(marker_weight=0.3).fit(texts[: len(texts) // 2])


def test_fast_transform_is_scikit_learns_matrix_bit_for_bit(fitted, texts):
    _same(transform_fast(fitted, texts + ODD), fitted.transform(texts + ODD).tocsr())


def test_fast_transform_of_one_note_and_of_none(fitted, texts):
    _same(transform_fast(fitted, texts[:1]), fitted.transform(texts[:1]).tocsr())
    _same(transform_fast(fitted, ["客户"]), fitted.transform(["客户"]).tocsr())


@pytest.mark.parametrize("part", ["word", "char"])
def test_the_counts_take_the_fast_path_and_equal_scikit_learns(fitted, texts, part):
    vec = dict(fitted.transformer_list)[part]
    counts = _counts(vec, texts + ODD)
    assert counts is not None
    reference = CountVectorizer.transform(vec, texts + ODD)  # the raw counts TF-IDF starts from
    assert np.array_equal(counts.indptr, reference.indptr) and np.array_equal(counts.indices, reference.indices)
    assert np.array_equal(counts.data, reference.data)


def test_the_small_model_without_char_ngrams(small_model, texts):
    _same(transform_fast(small_model.features_, texts), small_model.features_.transform(texts).tocsr())


@pytest.mark.parametrize("vec", [
    TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)),
    TfidfVectorizer(analyzer="char", ngram_range=(2, 5)),
    TfidfVectorizer(analyzer="char", ngram_range=(1, 2), binary=True),
    TfidfVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False, sublinear_tf=True),
    TfidfVectorizer(analyzer="word"),
])
def test_other_vectorizer_settings_give_the_same_matrix(vec, texts):
    union = FeatureUnion([("v", vec)]).fit(texts[:300])
    _same(transform_fast(union, texts[:300] + ODD), union.transform(texts[:300] + ODD).tocsr())


def test_settings_it_does_not_copy_are_left_to_scikit_learn(texts):
    for vec in (TfidfVectorizer(analyzer="char_wb"), TfidfVectorizer(analyzer="char", binary=True),
                TfidfVectorizer(analyzer="char", ngram_range=(2, 5))):
        vec.fit(texts[:100])
        assert _counts(vec, texts[:10]) is None


def test_cleaning_remembered_tokens_gives_what_cleaning_each_gives(texts):
    tk = Tokenizer()
    for t in texts[:200] + ODD:
        raw = tk.segmenter.cut(t, tk.hmm)
        once = tk.clean(raw)
        assert once == [c for c in (tk._clean_one(r) for r in raw) if c]
        assert tk.clean(raw) == once  # the second time comes from the memo


def test_the_heads_give_the_same_scores_with_their_weights_kept_wide(small_model, texts):
    import gc

    from pipeline.model import triager

    _, X = small_model.transform(texts[:50] + texts[:1])
    head = small_model.cause_head_
    expected = np.asarray(X @ head.weights, dtype=np.float64) + head.intercept  # scipy's own float32 product
    assert head.scores(X).tobytes() == expected.tobytes()
    assert id(head.weights) in triager._WIDE
    flags = small_model.flag_head_
    assert flags.proba(X[:1]).tobytes() == flags.proba(X[:1]).tobytes()
    one_off = triager._Linear.from_coef(["a", "b"], np.ones((2, X.shape[1])), np.zeros(2))
    key = id(one_off.weights)
    one_off.scores(X)
    assert key in triager._WIDE
    del one_off
    gc.collect()
    assert key not in triager._WIDE  # the copy goes with its weights


def test_a_fitted_model_keeps_its_marker_patterns_when_the_lexicon_file_changes(tmp_path):
    from pipeline.model.features import MarkerCounts
    from pipeline.model.lexical import load_markers
    from pipeline.knowledge import lexicon_file

    lexicon = tmp_path / "markers.yaml"
    lexicon.write_text(lexicon_file("markers.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    notes = ["我真的气炸了！！你们太过分", "请问犹豫期是多少天？"]
    fitted = MarkerCounts(str(lexicon)).fit(notes)
    before = fitted.transform(notes).toarray()
    anger = fitted.names_.index("anger")
    lexicon.write_text(lexicon.read_text(encoding="utf-8").replace("anger:         ['气死'", "anger:         ['犹豫期', '气死'"),
                       encoding="utf-8")
    load_markers.cache_clear()
    assert np.array_equal(fitted.transform(notes).toarray(), before)  # the model's own patterns
    refitted = MarkerCounts(str(lexicon)).fit(notes)
    assert refitted.transform(notes).toarray()[1, anger] > before[1, anger]  # a new fit reads the edit
