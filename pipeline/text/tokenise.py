"""jieba with the project's domain dictionary, as a picklable callable.

jieba's module-level tokenizer is global state: a user dictionary added by
one caller changes everybody's segmentation. `Tokenizer` owns a private
`jieba.Tokenizer`, builds it on first use and drops it when pickled, so a
fitted model carries only the dictionary paths and rebuilds the same
segmentation wherever it is loaded.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import jieba

from pipeline.knowledge import lexicon_file

USER_DICT = lexicon_file("insurance_terms.txt")
STOPWORDS = lexicon_file("stopwords.txt")

jieba.setLogLevel(logging.WARNING)

_PUNCT_OR_SPACE = re.compile(r"^[\s\W_]+$", re.UNICODE)
_DIGITS = re.compile(r"^\d+(?:\.\d+)?$")


def read_word_list(path: Path) -> list[str]:
    """One entry per line; '#' starts a comment line."""
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=4)
def _build(user_dict: str) -> jieba.Tokenizer:
    tk = jieba.Tokenizer()
    tk.initialize()
    for line in read_word_list(Path(user_dict)):
        parts = line.split()
        word = parts[0]
        freq = int(parts[1]) if len(parts) > 1 else None
        tag = parts[2] if len(parts) > 2 else None
        tk.add_word(word, freq, tag)
    return tk


class Tokenizer:
    """Callable text -> tokens. Deterministic: no HMM guessing of new words.

    Pure digit runs become a shape token (`<num4>` for a four-digit number) so
    that amounts and years generalise instead of memorising exact values.
    """

    def __init__(self, user_dict: str | Path = USER_DICT, stopwords: str | Path = STOPWORDS, hmm: bool = False):
        self.user_dict = str(user_dict)
        self.stopwords = str(stopwords)
        self.hmm = hmm
        self._stop: frozenset[str] | None = None
        self._terms: frozenset[str] | None = None

    @property
    def jieba(self) -> jieba.Tokenizer:
        return _build(self.user_dict)

    @property
    def stop(self) -> frozenset[str]:
        if self._stop is None:
            self._stop = frozenset(read_word_list(Path(self.stopwords)))
        return self._stop

    @property
    def terms(self) -> frozenset[str]:
        """Dictionary words; numeric ones (12378, 95519) are kept as they are."""
        if self._terms is None:
            self._terms = frozenset(line.split()[0].lower() for line in read_word_list(Path(self.user_dict)))
        return self._terms

    def __call__(self, text: str) -> list[str]:
        stop = self.stop
        terms = self.terms
        out: list[str] = []
        for tok in self.jieba.lcut(text, HMM=self.hmm):
            tok = tok.strip().lower()
            if not tok or tok in stop or _PUNCT_OR_SPACE.match(tok):
                continue
            if _DIGITS.match(tok) and tok not in terms:
                tok = f"<num{min(len(tok.split('.')[0]), 9)}>"
            out.append(tok)
        return out

    def __getstate__(self) -> dict:
        return {"user_dict": self.user_dict, "stopwords": self.stopwords, "hmm": self.hmm}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"Tokenizer(user_dict={Path(self.user_dict).name!r}, hmm={self.hmm})"
