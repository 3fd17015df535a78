"""Multinomial logistic regression for the wide sparse heads (cause, mindset, risk level).

The objective is scikit-learn's `LogisticRegression(solver="lbfgs")` one, term for term: the
sample-weighted mean log loss plus ||W||^2 / (2 C sum(weights)), intercepts unpenalised, classes
absent from `y` left out; it stops on the same test (every gradient component within `tol`).
What differs is the cost on ~94k features x 31 classes, 2.9M coefficients (issue 19):
- memory: scipy's L-BFGS-B keeps (2m + 5) coefficient-sized float64 vectors (580 MB at m = 10)
  and copies x and the gradient several times over; here the m correction pairs are float32
  (a search direction needs no more) and the rest is five float64 vectors: about a third;
- time: X.T is a CSR matrix built once per fit (scikit-learn multiplies through a CSC view, twice
  the time), and there is no bound handling to pay for on an unbounded problem.
The path to the optimum differs, so a fit stopped at `tol` is not bit-identical to scikit-learn's;
the figures it gives are in docs/model_selection.md.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

__all__ = ["SoftmaxRegression", "minimise_lbfgs"]


def minimise_lbfgs(loss_and_gradient, x: np.ndarray, tol: float, max_iter: int, memory: int = 10,
                   max_halvings: int = 40) -> tuple[np.ndarray, int]:
    """L-BFGS (two-loop recursion, float32 history) with a backtracking Armijo line search, for
    a smooth convex objective. Stops when every gradient component is within `tol`, when a
    step no longer lowers the objective, or after `max_iter` iterations. Returns (x, iterations)."""
    f, g = loss_and_gradient(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    gamma = 1.0 / max(float(np.abs(g).max()), 1e-12)  # first step: the largest coordinate moves by about 1
    for iteration in range(max_iter):
        if float(np.abs(g).max()) <= tol:
            return x, iteration
        q = g.astype(np.float32)
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * float(np.dot(s, q))
            q -= np.float32(a) * y
            alphas.append(a)
        q *= np.float32(gamma)
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            b = rho * float(np.dot(y, q))
            q += np.float32(a - b) * s
        slope = -float(np.dot(g, q))  # direction is -q
        if not slope < 0:  # not a descent direction (rounding): forget the history, go down the gradient
            pairs.clear()
            q = g.astype(np.float32) * np.float32(gamma)
            slope = -float(np.dot(g, q))
        step = 1.0
        for _ in range(max_halvings):
            x_new = x - step * q
            f_new, g_new = loss_and_gradient(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            return x, iteration  # no step lowers the objective: as close as float64 allows
        s = (x_new - x).astype(np.float32)
        y = (g_new - g).astype(np.float32)
        sy = float(np.dot(s, y))
        if sy > 1e-10 * float(np.dot(y, y)):  # keep only pairs with positive curvature
            pairs.append((s, y, 1.0 / sy))
            gamma = sy / float(np.dot(y, y))
        if f - f_new <= 64 * np.finfo(float).eps * max(abs(f), abs(f_new), 1.0):
            return x_new, iteration + 1
        x, f, g = x_new, f_new, g_new
    return x, max_iter


@dataclass
class SoftmaxRegression:
    """`fit(X, y, sample_weight)` then `coef_` (classes, features), `intercept_`, `classes_`
    (the labels of `y` that occur, sorted), `n_iter_`; `decision_function(X)` as scikit-learn's.
    `fit_targets(X, T)` takes a weight per row and class instead: a note with a main and a secondary
    label is one row, not two copies of it (the same objective, without the copies' memory)."""

    C: float = 1.0
    tol: float = 1e-4
    max_iter: int = 100
    memory: int = 10  # L-BFGS correction pairs (float32): 8 * memory bytes per coefficient

    def fit(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None) -> "SoftmaxRegression":
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        n = len(codes)
        T = np.zeros((n, len(labels)))
        T[np.arange(n), codes] = 1.0 if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.fit_targets(X, T)
        self.classes_ = labels[self.classes_]
        return self

    def fit_targets(self, X, T: np.ndarray) -> "SoftmaxRegression":
        """Minimise sum_ic T_ic * (-log p_ic) / sum(T) + |W|^2 / (2 C sum(T)): scikit-learn's weighted
        multinomial log loss when each row has one label. `classes_`: the columns of T with any weight."""
        X = X.tocsr() if hasattr(X, "tocsr") else np.asarray(X, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        present = np.flatnonzero(T.sum(axis=0) > 0)
        if len(present) < 2:
            raise ValueError(f"a multinomial head needs at least two classes in y, got {list(present)}.")
        self.classes_ = present
        total = T.sum()
        share = T[:, present] / total  # each row's and class's part of the weighted mean log loss
        row_share = share.sum(axis=1)
        d, k = X.shape[1], len(present)
        l2 = 1.0 / (self.C * total)
        XT = X.T.tocsr() if hasattr(X, "tocsr") else X.T

        def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W = theta[: d * k].reshape(d, k)
            z = X @ W + theta[d * k:]
            lse = logsumexp(z, axis=1)
            loss = float(row_share @ lse - np.einsum("ij,ij->", share, z)) + 0.5 * l2 * float(np.dot(theta[: d * k], theta[: d * k]))
            g = np.exp(z - lse[:, None])
            g *= row_share[:, None]
            g -= share
            grad = np.empty_like(theta)
            grad_W = grad[: d * k].reshape(d, k)  # written in place: no coefficient-sized temporaries
            np.multiply(W, l2, out=grad_W)
            grad_W += XT @ g
            grad[d * k:] = g.sum(axis=0)
            return loss, grad

        theta, n_iter = minimise_lbfgs(loss_and_gradient, np.zeros(d * k + k), self.tol, self.max_iter, self.memory)
        self.coef_ = np.ascontiguousarray(theta[: d * k].reshape(d, k).T)
        self.intercept_ = theta[d * k:].copy()
        self.n_iter_ = np.array([n_iter])
        return self

    def decision_function(self, X) -> np.ndarray:
        return np.asarray(X @ self.coef_.T) + self.intercept_
