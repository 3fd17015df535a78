"""jieba's segmentation with the project's domain dictionary, as a picklable callable.

jieba's module-level tokenizer is global state: a user dictionary added by
one caller changes everybody's segmentation. `Tokenizer` owns a private
segmenter, builds it on first use and drops it when pickled, so a fitted
model carries only the dictionary paths and rebuilds the same segmentation
wherever it is loaded.

The segmenter is rjieba (jieba-rs, jieba's algorithm and dictionary in Rust)
when it is installed: the same tokens as jieba on every corpus note with HMM
off (bench/segmenters.py measures it) at about 15 times the speed, and a
dictionary that loads in a fraction of jieba's time. jieba itself is the
fallback (no rjieba wheel, `TOUSU_SEGMENTER=jieba`, or HMM on, where the two
are not checked to agree).
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from pipeline.knowledge import lexicon_file

USER_DICT = lexicon_file("insurance_terms.txt")
STOPWORDS = lexicon_file("stopwords.txt")
SEGMENTER_ENV = "TOUSU_SEGMENTER"  # "jieba" forces the pure-Python segmenter
SEGMENTERS = ("rjieba", "jieba")

_PUNCT_OR_SPACE = re.compile(r"^[\s\W_]+$", re.UNICODE)
_DIGITS = re.compile(r"^\d+(?:\.\d+)?$")
_MEMO_MAX = 200_000  # distinct raw tokens remembered per Tokenizer (a few MB at most)


def read_word_list(path: Path) -> list[str]:
    """One entry per line; '#' starts a comment line."""
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


def _user_words(user_dict: str) -> list[tuple[str, int | None, str | None]]:
    """`word [freq] [pos]` lines of a user dictionary, as jieba's add_word takes them."""
    out = []
    for line in read_word_list(Path(user_dict)):
        parts = line.split()
        out.append((parts[0], int(parts[1]) if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None))
    return out


class Segmenter(Protocol):
    name: str

    def cut(self, text: str, hmm: bool) -> list[str]: ...


class _Jieba:
    """jieba.Tokenizer, private to this process and dictionary."""

    name = "jieba"

    def __init__(self, user_dict: str):
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.tk = jieba.Tokenizer()
        self.tk.initialize()
        for word, freq, tag in _user_words(user_dict):
            self.tk.add_word(word, freq, tag)

    def cut(self, text: str, hmm: bool) -> list[str]:
        return self.tk.lcut(text, HMM=hmm)


def _rjieba_class():
    """rjieba.Jieba without `import rjieba`: the package's __init__ builds a module-level default
    segmenter (a second dictionary load, about a quarter second) that tousu never uses. Falls back to
    the ordinary import where the package is laid out differently."""
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("rjieba")
    if spec is None:
        raise ImportError("rjieba is not installed")
    try:
        folder = Path(list(spec.submodule_search_locations or [])[0])
        lib = next(p for p in folder.iterdir()
                   if p.name.startswith("rjieba.") and p.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)))
        loader = importlib.machinery.ExtensionFileLoader("rjieba.rjieba", str(lib))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader("rjieba.rjieba", loader))
        loader.exec_module(module)
        return module.Jieba
    except (IndexError, StopIteration, OSError, ImportError, AttributeError):
        import rjieba

        return rjieba.Jieba


class _RJieba:
    """rjieba.Jieba (jieba-rs) with the same user dictionary, added the same way."""

    name = "rjieba"

    def __init__(self, user_dict: str):
        self.tk = _rjieba_class()()
        for word, freq, tag in _user_words(user_dict):
            self.tk.add_word(word, freq, tag)

    def cut(self, text: str, hmm: bool) -> list[str]:
        return self.tk.cut(text, hmm)


def segmenter_name(hmm: bool = False) -> str:
    """The segmenter a Tokenizer will use here: rjieba when installed, HMM off and not overridden."""
    wanted = os.environ.get(SEGMENTER_ENV, "").strip().lower()
    if wanted and wanted not in SEGMENTERS:
        raise ValueError(f"{SEGMENTER_ENV}={wanted!r}: expected one of {', '.join(SEGMENTERS)}.")
    if wanted == "jieba" or hmm:
        return "jieba"
    import importlib.util

    return "rjieba" if importlib.util.find_spec("rjieba") is not None else "jieba"


@lru_cache(maxsize=8)
def _build(user_dict: str, name: str = "jieba") -> Segmenter:
    if name == "rjieba":
        try:
            return _RJieba(user_dict)
        except ImportError:
            pass
    return _Jieba(user_dict)


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
        self._segmenter: Segmenter | None = None
        self._memo: dict[str, str] = {}

    @property
    def segmenter(self) -> Segmenter:
        """Chosen once per instance (see `segmenter_name`), shared by instances with the same dictionary."""
        if self._segmenter is None:
            self._segmenter = _build(self.user_dict, segmenter_name(self.hmm))
        return self._segmenter

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
        return self.clean(self.segmenter.cut(text, self.hmm))

    def clean(self, tokens: list[str]) -> list[str]:
        """Raw segmenter tokens -> feature tokens: lower-cased, no stop words or punctuation, number shapes.

        Each distinct token is cleaned once and remembered (notes repeat the same few thousand words),
        so a note costs one dictionary look-up per token."""
        memo = self._memo
        found = list(map(memo.get, tokens))  # map and filter: the same steps as comprehensions, in C
        if None in found:
            for i, tok in enumerate(tokens):
                if found[i] is None:
                    found[i] = self._clean_one(tok)
                    if len(memo) < _MEMO_MAX:
                        memo[tok] = found[i]
        return list(filter(None, found))

    def _clean_one(self, tok: str) -> str:
        """One token's feature form; "" for a token that is dropped."""
        tok = tok.strip().lower()
        if not tok or tok in self.stop or _PUNCT_OR_SPACE.match(tok):
            return ""
        if _DIGITS.match(tok) and tok not in self.terms:
            return f"<num{min(len(tok.split('.')[0]), 9)}>"
        return tok

    def __getstate__(self) -> dict:
        return {"user_dict": self.user_dict, "stopwords": self.stopwords, "hmm": self.hmm}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"Tokenizer(user_dict={Path(self.user_dict).name!r}, hmm={self.hmm})"
