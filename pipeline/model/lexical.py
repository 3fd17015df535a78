"""What turns a note into feature counts, without scikit-learn: the word analyzer, the marker
lexicon and the counting of character n-grams over a fitted vocabulary.

Both the fitted model (pipeline.model.features, scikit-learn's vectorizers) and the array model
(pipeline.model.arrays, what `tousu score` and `tousu tag` load) count with this code, so the
two give the same numbers; keeping scikit-learn out of this module keeps it out of their start.
"""
from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType
from itertools import repeat
from typing import Callable, Iterable, Mapping

import numpy as np

from pipeline.knowledge import lexicon_file, safe_yaml
from pipeline.model.keytable import KeyTable
from pipeline.text.prefilter import start_screen
from pipeline.text.regex_prefix import literal_first
from pipeline.text.tokenise import Tokenizer



MARKERS_PATH = lexicon_file("markers.yaml")


def marker_patterns(path: str = str(MARKERS_PATH)) -> dict[str, list[str]]:
    """Marker name -> its patterns as written in the lexicon file (what a fitted model keeps)."""
    with open(path, encoding="utf-8") as fh:
        return {name: [str(p) for p in pats] for name, pats in safe_yaml(fh)["markers"].items()}


def compile_markers(patterns: dict[str, list[str]], where: str) -> dict[str, re.Pattern]:
    """Marker name -> one compiled alternation; a bad pattern names its marker and `where` it is."""
    return _compiled(tuple((name, tuple(pats)) for name, pats in patterns.items()), where)


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[tuple[str, tuple[str, ...]], ...], where: str) -> dict[str, re.Pattern]:
    out: dict[str, re.Pattern] = {}
    for name, pats in patterns:
        # the same matches, written so that the engine skips in C to where one can start
        pats = literal_first(list(pats), ignorecase=True) or pats
        try:
            out[name] = re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{where}: marker '{name}' has a bad pattern: {exc}") from None
    return out


@lru_cache(maxsize=4)
def load_markers(path: str = str(MARKERS_PATH)) -> dict[str, re.Pattern]:
    """The lexicon file's markers, compiled (evidence, explicit threats, models saved before they kept
    their own lists)."""
    return compile_markers(marker_patterns(path), path)


def marker_rows(path: str, names: list[str], texts: Iterable[str],
                patterns: dict[str, list[str]] | None = None) -> np.ndarray:
    """log(1 + count) of each named marker in each text (notes x markers), the marker feature block.
    `patterns`: the lists the model was fitted with (a later edit of the lexicon file must not change
    an existing model's features); None: the file at `path` (models saved before they kept them)."""
    texts = list(texts)
    markers = load_markers(path) if patterns is None else compile_markers(
        {name: patterns[name] for name in names}, "the model's marker lists")
    counts = np.array([[len(findall(text)) for text in texts] for findall in (markers[name].findall for name in names)],
                      dtype=np.int64).T.reshape(len(texts), len(names))
    return _log1p_counts(counts)


@lru_cache(maxsize=1)
def _log1p_table() -> np.ndarray:
    """np.log1p(n) for the counts a marker reaches in a note, each computed as the scalar call it replaces."""
    return np.array([np.log1p(n) if n else 0.0 for n in range(256)], dtype=np.float64)


def _log1p_counts(counts: np.ndarray) -> np.ndarray:
    """log(1 + count) per cell, 0 where the count is 0: the same doubles as `np.log1p(n)` cell by cell
    (a table of them; a count past the table is computed the same way)."""
    table = _log1p_table()
    rows = table[np.minimum(counts, len(table) - 1)]
    for i, j in zip(*np.nonzero(counts >= len(table))):
        rows[i, j] = np.log1p(int(counts[i, j]))
    return rows


def find_markers(text: str, name: str, path: str = str(MARKERS_PATH)) -> list[tuple[int, int, str]]:
    """Spans of one marker in a text, for evidence."""
    return [(m.start(), m.end(), m.group(0)) for m in load_markers(path)[name].finditer(text)]


@lru_cache(maxsize=4)
def _evidence_map(path: str) -> dict[str, tuple[str, ...]]:
    with open(path, encoding="utf-8") as fh:
        raw = safe_yaml(fh)
    return {flag: tuple(names) for flag, names in raw.get("evidence", {}).items()}


def evidence_map(path: str = str(MARKERS_PATH)) -> dict[str, tuple[str, ...]]:
    """Flag -> marker lists that show its evidence."""
    return _evidence_map(path)


class WordNgrams:
    """Analyzer for TfidfVectorizer: jieba tokens, then n-grams joined by a space."""

    def __init__(self, tokenizer: Tokenizer | None = None, ngram_range: tuple[int, int] = (1, 2)):
        self.tokenizer = tokenizer or Tokenizer()
        self.ngram_range = tuple(ngram_range)

    def __call__(self, text: str) -> list[str]:
        tokens = self.tokenizer(text)
        lo, hi = self.ngram_range
        grams = list(tokens) if lo == 1 else []
        if lo <= 2 <= hi:  # `a + " " + b`: the strings " ".join would make, at half its cost per pair
            grams += [a + " " + b for a, b in zip(tokens, tokens[1:])]
        for n in range(max(3, lo), hi + 1):
            grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return grams


# ------------------------------------------------------------------ counting over a fitted vocabulary

WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's own (VectorizerMixin._white_spaces)
_CODE_BITS = 21  # every Unicode code point (+1) fits in 21 bits, so three fit in one uint64


def char_keys(vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Each vocabulary n-gram as one integer (its code points + 1, 21 bits apart), sorted, with its
    column: the whole character vocabulary as two arrays. None if a term is longer than three characters."""
    keys, cols = [], []
    for term, col in vocabulary.items():
        if not 1 <= len(term) <= 3:
            return None
        key = 0
        for k, ch in enumerate(term):
            key |= (ord(ch) + 1) << (_CODE_BITS * k)
        keys.append(key)
        cols.append(col)
    keys_arr = np.array(keys, dtype=np.uint64)
    order = np.argsort(keys_arr, kind="stable")
    return keys_arr[order], np.array(cols, dtype=np.int64)[order]


def count_cells(rows: np.ndarray, cols: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, count) of the distinct (row, column) cells, sorted by row then column: what
    np.unique(..., return_counts=True) gives, at about half its cost. The cells come in runs already
    (row by row, or one run per n-gram length), which the stable sort (timsort) merges instead of
    sorting from scratch."""
    cells = rows * width + cols
    cells.sort(kind="stable")
    if not cells.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    first = np.empty(cells.size, dtype=bool)
    first[0] = True
    np.not_equal(cells[1:], cells[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=cells.size)
    cells = cells[starts]
    return cells // width, cells % width, counts.astype(np.int64, copy=False)


def char_counts(table: KeyTable, width: int, ngram_range: tuple[int, int], lowercase: bool,
                docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(row, column, count) of every in-vocabulary character n-gram, sorted by row then column,
    computed over the whole batch with array operations instead of one dictionary step per n-gram.
    `table`: the vocabulary's keys (`char_keys`) and columns, built once by the model that owns them.
    None when a text cannot be counted this way (a lone surrogate)."""
    lo, hi = ngram_range
    texts = [WHITE_SPACES.sub(" ", d.lower() if lowercase else d) for d in docs]
    try:
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + 1
    except UnicodeEncodeError:  # a lone surrogate: let the per-n-gram path handle it
        return None
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if codes.size != lens.sum():
        return None
    total = codes.size
    row_of = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
    left = (np.cumsum(lens)[row_of] - np.arange(total)) if total else np.zeros(0, dtype=np.int64)  # chars to the end
    rows_parts, cols_parts = [], []
    key = None
    for k in range(1, hi + 1):
        if k == 1:
            key = codes
        else:
            key = key[:-1] | (codes[k - 1:] << np.uint64(_CODE_BITS * (k - 1)))
        if k < lo:
            continue
        fits = left[:key.size] >= k
        col = table.lookup(key)
        hit = fits & (col >= 0)
        rows_parts.append(row_of[:key.size][hit])
        cols_parts.append(col[hit])
    rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_parts) if cols_parts else np.zeros(0, dtype=np.int64)
    return count_cells(rows, cols, max(width, 1))


def generic_counts(get: Callable, analyze: Callable[[str], list[str]], docs: list[str]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, count) of every in-vocabulary n-gram, sorted by row then column: `get` (-1 for an
    unknown n-gram) maps every n-gram to its column in C, and the batch's (row, column) cells are
    counted at once with array operations instead of a Counter per document."""
    cols: list[int] = []
    sizes: list[int] = []
    for doc in docs:
        grams = analyze(doc)
        cols += map(get, grams, repeat(-1))
        sizes.append(len(grams))
    j = np.array(cols, dtype=np.int64)
    row = np.repeat(np.arange(len(docs), dtype=np.int64), sizes)
    keep = j >= 0
    row, j = row[keep], j[keep]
    return count_cells(row, j, int(j.max()) + 1 if j.size else 1)


DEMAND_PATH = lexicon_file("demand.yaml")


@lru_cache(maxsize=4)
def _demand_patterns(path: str) -> tuple[re.Pattern, re.Pattern]:
    with open(path, encoding="utf-8") as fh:
        raw = safe_yaml(fh)
    return re.compile("|".join(f"(?:{c})" for c in raw["cues"])), re.compile(raw["clause_breaks"])


def demand_clauses(text: str, path: str = str(DEMAND_PATH)) -> list[str]:
    """The clauses that carry the customer's demand (a cue's clause and the one after it), in order."""
    cue, breaks = _demand_patterns(path)
    clauses = [c for c in breaks.split(text) if c.strip()]
    keep: set[int] = set()
    for i, clause in enumerate(clauses):
        if cue.search(clause):
            keep.update((i, i + 1))
    return [clauses[i] for i in sorted(keep) if i < len(clauses)]


class DemandWords(WordNgrams):
    """Analyzer: word n-grams of the demand clauses only, marked `D:` so they are columns of their own.
    The main cause is the dispute the customer wants settled, and the demand says which one it is."""

    def __init__(self, tokenizer: Tokenizer | None = None, ngram_range: tuple[int, int] = (1, 2),
                 path: str = str(DEMAND_PATH)):
        super().__init__(tokenizer, ngram_range)
        self.path = path

    def __call__(self, text: str) -> list[str]:
        grams: list[str] = []
        for clause in demand_clauses(text, self.path):
            grams += super().__call__(clause)
        return ["D:" + g for g in grams]


@lru_cache(maxsize=4)
def _explicit_threats(path: str) -> tuple[Mapping[str, float], dict[str, re.Pattern], re.Pattern | None]:
    """Per flag: the gate and one pattern. A threat is an intent word shortly before its target; a sign
    (a physical act, a count of earlier complaints) is its own words and may carry a gate of its own."""
    with open(path, encoding="utf-8") as fh:
        raw = safe_yaml(fh).get("explicit_threats") or {}
    if not raw:
        return MappingProxyType({}), {}, None
    within = int(raw.get("within", 10))
    gate = float(raw.get("gate", 1.0))
    patterns = {flag: f"{raw['intent']}[^，。！？,!?]{{0,{within}}}?(?:{'|'.join(targets)})"
                for flag, targets in raw.get("targets", {}).items()}
    gates = {flag: gate for flag in patterns}
    signs = raw.get("signs") or {}
    for flag, words in (signs.get("patterns") or {}).items():
        patterns[flag] = "|".join(f"(?:{p})" for p in ([patterns[flag]] if flag in patterns else []) + list(words))
        gates[flag] = float(signs.get("gate", gate))
    from pipeline.contract.taxonomy import taxonomy

    for flag, g in gates.items():
        if flag not in taxonomy().flag_ids:
            raise ValueError(f"{path}: explicit_threats names '{flag}', which is not a risk flag")
        if not 0.0 <= g <= 1.0:
            raise ValueError(f"{path}: explicit_threats gate of {flag} is {g}, outside [0, 1]")
    compiled = {}
    for flag, pattern in patterns.items():
        try:
            compiled[flag] = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{path}: explicit_threats pattern of {flag} does not compile: {exc}") from exc
    return MappingProxyType(gates), compiled, re.compile(raw["not_after"]) if raw.get("not_after") else None


@lru_cache(maxsize=4)
def _disclaimers(path: str) -> tuple[float, dict[str, re.Pattern], re.Pattern | None, re.Pattern | None]:
    """The raised bar, each threat flag's targets, and what before or after a mention disclaims it."""
    with open(path, encoding="utf-8") as fh:
        raw = safe_yaml(fh).get("explicit_threats") or {}
    spec = raw.get("disclaimed") or {}
    if not spec:
        return 1.0, {}, None, None
    bar = float(spec.get("bar", 1.0))
    if not 0.0 <= bar <= 1.0:
        raise ValueError(f"{path}: explicit_threats disclaimed bar is {bar}, outside [0, 1]")
    try:
        targets = {flag: re.compile("|".join(f"(?:{w})" for w in words))
                   for flag, words in (raw.get("targets") or {}).items()}
        before = re.compile(spec["before"]) if spec.get("before") else None
        after = re.compile(spec["after"]) if spec.get("after") else None
    except re.error as exc:
        raise ValueError(f"{path}: explicit_threats disclaimed pattern does not compile: {exc}") from exc
    return bar, targets, before, after


def disclaimed_bar(path: str = str(MARKERS_PATH)) -> float:
    """The probability a disclaimed threat needs to fire anyway (markers.yaml `explicit_threats.disclaimed`)."""
    return _disclaimers(path)[0]


@lru_cache(maxsize=4)
def disclaimable_flags(path: str = str(MARKERS_PATH)) -> frozenset[str]:
    """The flags a disclaimer can hold back (those with named targets); read for every note."""
    _, targets, before, after = _disclaimers(path)
    return frozenset(targets) if (before is not None or after is not None) else frozenset()


def disclaimed_threats(text: str, path: str = str(MARKERS_PATH)) -> frozenset[str]:
    """Threat flags every mention of whose targets the customer disclaims: negated just before ("不会去找
    记者") or only read or heard ("在网上看到"). A flag with no mention at all is not disclaimed."""
    _, targets, before, after = _disclaimers(path)
    if before is None and after is None:
        return frozenset()
    found = []
    for flag, rx in targets.items():
        mentions = 0
        for m in rx.finditer(text):
            mentions += 1
            if not ((before is not None and before.search(text, max(0, m.start() - 14), m.start()))
                    or (after is not None and after.match(text, m.end(), m.end() + 14))):
                break
        else:
            if mentions:
                found.append(flag)
    return frozenset(found)


@lru_cache(maxsize=4)
def second_signal(path: str = str(MARKERS_PATH)) -> tuple[float, frozenset[str]]:
    """(bar, flags): the probability a flag judged by degree needs to count as a second medium sign
    (markers.yaml `second_signal`); (0.0, empty) when the lexicon sets none."""
    bar, _, flags = _second_signal(path)
    return bar, flags


def second_signal_bar(is_transcript: bool, path: str = str(MARKERS_PATH)) -> float:
    """The bar a judged flag must pass to be the second medium sign: `transcript_bar` in a call transcript
    (the note's bar when the lexicon sets none), `bar` in any other note."""
    return _second_signal(path)[1 if is_transcript else 0]


@lru_cache(maxsize=4)
def _second_signal(path: str) -> tuple[float, float, frozenset[str]]:
    with open(path, encoding="utf-8") as fh:
        spec = safe_yaml(fh).get("second_signal") or {}
    if not spec:
        return 0.0, 0.0, frozenset()
    bar = float(spec.get("bar", 0.0))
    transcript_bar = float(spec.get("transcript_bar", bar))
    for name, value in (("bar", bar), ("transcript_bar", transcript_bar)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{path}: second_signal {name} is {value}, outside [0, 1]")
    from pipeline.contract.taxonomy import taxonomy

    tax = taxonomy()
    flags = frozenset(spec.get("flags") or ())
    for flag in sorted(flags):
        if flag not in tax.medium_flags:
            raise ValueError(f"{path}: second_signal names '{flag}', which is not a medium risk flag")
    return bar, transcript_bar, flags


def drop_weak_second_signals(flags: list[str], proba: Mapping[str, float], said: Iterable[str] = (), tax=None,
                             path: str = str(MARKERS_PATH), is_transcript: bool = False) -> list[str]:
    """The flags without the weak second signs: while two or more medium signs would make the note high
    (and nothing else does), the weakest judged flag under the bar is dropped. A flag said outright
    (`said`: "情绪冲动", "第三次投诉") is the note's own words, not a judgement, and stays. `tax`: the label
    rule to read (a fitted model's own; the installed taxonomy when None). A call transcript has its own bar."""
    note_bar, call_bar, judged = _second_signal(path)
    bar = call_bar if is_transcript else note_bar
    if not judged:
        return flags
    if tax is None:
        from pipeline.contract.taxonomy import taxonomy

        tax = taxonomy()
    medium = [f for f in flags if f in tax.medium_flags]
    if len(medium) < 2 or tax.high_whatever_the_count(flags):
        return flags  # one medium sign, or high whatever the medium signs are
    kept = list(flags)
    while len(medium) >= 2:
        weak = [f for f in medium if f in judged and f not in said and proba[f] < bar]
        if not weak:
            break
        weakest = min(weak, key=lambda f: proba[f])
        kept.remove(weakest)
        medium.remove(weakest)
    return kept


def explicit_threat_gate(flag: str = "media_threat", path: str = str(MARKERS_PATH)) -> float:
    """The lowest probability at which a flag said outright fires (markers.yaml `explicit_threats`);
    1.0 for a flag with no outright wording."""
    return _explicit_threats(path)[0].get(flag, 1.0)


def explicit_threat_gates(path: str = str(MARKERS_PATH)) -> Mapping[str, float]:
    """Flag -> its gate, for every flag with outright wording (read-only: one mapping per lexicon file,
    read for every note)."""
    return _explicit_threats(path)[0]


@lru_cache(maxsize=4)
def _threat_screens(path: str) -> dict[str, re.Pattern | None]:
    """Per flag, the class of characters its pattern's matches start with (`start_screen`): the signs'
    alternations start with groups, classes and look-behinds, which the regex engine tries at every
    character of the note."""
    return {flag: start_screen(pattern) for flag, pattern in _explicit_threats(path)[1].items()}


def explicit_threats(text: str, path: str = str(MARKERS_PATH)) -> dict[str, tuple[int, int, str]]:
    """Flag -> the first span where the customer says the threat outright (not negated just before).
    Each flag's scan starts at the first character a match of it can start with (`_threat_screens`)."""
    _, patterns, negated = _explicit_threats(path)
    screens = _threat_screens(path)
    found: dict[str, tuple[int, int, str]] = {}
    for flag, pattern in patterns.items():
        screen = screens[flag]
        hit = screen.search(text) if screen is not None else None
        if screen is not None and hit is None:
            continue
        for m in pattern.finditer(text, hit.start() if hit else 0):
            if negated is not None and negated.search(text[max(0, m.start() - 8):min(m.end(), m.start() + 4)]):
                continue
            found[flag] = (m.start(), m.end(), m.group(0))
            break
    return found
