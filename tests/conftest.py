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
    from pipeline.corpus import train_test

    train, test = train_test()
    return train[train["source"] == "handwritten"].reset_index(drop=True), test


@pytest.fixture(scope="session")
def small_model(small_corpus):
    """A small Triager (no char n-grams, 2 folds): the real estimator, fitted in seconds."""
    from pipeline.model import Triager

    train, _ = small_corpus
    return Triager(char_ngrams=None, cv=2).fit(train)
