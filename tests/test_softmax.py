"""The multinomial solver of the wide heads: scikit-learn's objective, a third of the memory (issue 19)."""
import numpy as np
import pytest
from scipy import sparse
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

from pipeline.model.softmax import SoftmaxRegression, minimise_lbfgs


def _problem(seed: int = 0, n: int = 400, d: int = 300, k: int = 5):
    rng = np.random.default_rng(seed)
    X = sparse.random(n, d, density=0.05, random_state=seed, format="csr")
    truth = rng.normal(size=(d, k)) * 3
    y = (X @ truth + rng.gumbel(size=(n, k))).argmax(1)
    return X, y, rng.uniform(0.2, 2.0, n)


def _objective(X, y, w, C, coef, intercept):
    """scikit-learn's lbfgs objective, written out: weighted mean log loss + ||W||^2 / (2 C sum w)."""
    z = X @ coef.T + intercept
    codes = np.searchsorted(np.unique(y), y)
    return float(w @ (logsumexp(z, 1) - z[np.arange(len(y)), codes]) / w.sum() + (coef ** 2).sum() / (2 * C * w.sum()))


def test_it_reaches_scikit_learns_optimum_of_the_same_objective():
    X, y, w = _problem()
    ours = SoftmaxRegression(C=10, tol=1e-7, max_iter=5000).fit(X, y, sample_weight=w)
    theirs = LogisticRegression(C=10, tol=1e-7, max_iter=5000).fit(X, y, sample_weight=w)
    assert _objective(X, y, w, 10, ours.coef_, ours.intercept_) == pytest.approx(
        _objective(X, y, w, 10, theirs.coef_, theirs.intercept_), rel=1e-6)
    assert np.abs(ours.coef_ - theirs.coef_).max() < 1e-2 * np.abs(theirs.coef_).max()
    assert (ours.decision_function(X).argmax(1) == theirs.decision_function(X).argmax(1)).mean() == 1.0


def test_at_the_training_tolerance_it_is_at_least_as_converged_as_scikit_learn():
    X, y, w = _problem(seed=1, n=600, d=800, k=8)
    ours = SoftmaxRegression(C=10, tol=3e-4, max_iter=3000).fit(X, y, sample_weight=w)
    theirs = LogisticRegression(C=10, tol=1e-3, max_iter=3000).fit(X, y, sample_weight=w)
    assert _objective(X, y, w, 10, ours.coef_, ours.intercept_) <= _objective(X, y, w, 10, theirs.coef_, theirs.intercept_) + 1e-6


def test_a_weight_of_two_is_the_same_as_the_row_twice():
    X, y, _ = _problem(seed=2, n=200)
    w = np.ones(len(y)); w[:50] = 2.0
    weighted = SoftmaxRegression(C=3, tol=1e-8, max_iter=5000).fit(X, y, sample_weight=w)
    doubled = SoftmaxRegression(C=3, tol=1e-8, max_iter=5000).fit(sparse.vstack([X, X[:50]]), np.r_[y, y[:50]])
    assert np.abs(weighted.coef_ - doubled.coef_).max() < 1e-4


def test_classes_absent_from_y_are_left_out_as_scikit_learn_does():
    X, y, _ = _problem(seed=3, k=6)
    y = np.where(y == 2, 0, y)  # class 2 never occurs
    model = SoftmaxRegression(C=10, tol=1e-4, max_iter=3000).fit(X, y)
    assert list(model.classes_) == sorted(set(y)) and model.coef_.shape == (len(set(y)), X.shape[1])
    assert model.decision_function(X).shape == (X.shape[0], len(set(y)))


def test_one_class_is_a_clear_error():
    X, _, _ = _problem()
    with pytest.raises(ValueError, match="at least two classes"):
        SoftmaxRegression().fit(X, np.zeros(X.shape[0], dtype=int))


def test_the_minimiser_finds_a_quadratics_minimum_and_says_how_many_steps():
    A = np.diag(np.linspace(1, 50, 40))
    b = np.linspace(-1, 1, 40)
    x, steps = minimise_lbfgs(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(40), tol=1e-9, max_iter=500)
    assert np.allclose(x, np.linalg.solve(A, b), atol=1e-7) and 0 < steps < 500
    x, steps = minimise_lbfgs(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(40), tol=1e-9, max_iter=3)
    assert steps == 3



def test_a_second_label_weighted_on_the_same_row_is_the_same_model_as_an_extra_row_for_it():
    """The cause head's secondary causes: a class weight on the note's own row, not a copy of the row."""
    X, y, w = _problem(seed=4, n=300, k=5)
    second = (y + 1) % 5
    extra = np.arange(0, 300, 3)  # a third of the notes have a secondary label, at weight 0.1
    rows = SoftmaxRegression(C=10, tol=1e-8, max_iter=5000).fit(
        sparse.vstack([X, X[extra]]), np.r_[y, second[extra]], sample_weight=np.r_[w, 0.1 * w[extra]])
    T = np.zeros((300, 5))
    T[np.arange(300), y] = w
    T[extra, second[extra]] += 0.1 * w[extra]
    targets = SoftmaxRegression(C=10, tol=1e-8, max_iter=5000).fit_targets(X, T)
    assert list(targets.classes_) == list(rows.classes_)
    assert np.abs(targets.coef_ - rows.coef_).max() < 1e-4 * np.abs(rows.coef_).max()
    assert np.abs(targets.intercept_ - rows.intercept_).max() < 1e-4
