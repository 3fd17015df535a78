"""Compare jieba-compatible segmenters with jieba on the corpus: token agreement and speed.

    python bench/segmenters.py [--notes N] [--repeat R]

For every segmenter that imports here (rjieba, jieba_fast_dat, jieba_next;
each skipped with a reason when not installed), the project's user dictionary
is added the way `pipeline.text.tokenise` adds it to jieba, and every corpus
note's `model_text` (what the classifier reads) is cut with HMM off, as the
Tokenizer does. It prints, per segmenter:

- raw agreement: share of notes whose token list equals jieba's exactly;
- tokenizer agreement: the same after the Tokenizer's clean-up (stop words,
  punctuation, number shapes), i.e. what the features actually see;
- the speed ratio: its notes per second over jieba's, same notes, same process.

The adoption rule (issue 19): raw agreement >= 99.5% and unchanged tag output
on the validation files. Prints one JSON line per segmenter with `--json`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.text.tokenise import USER_DICT, Tokenizer, _Jieba, _RJieba, read_word_list

Cut = Callable[[str], list[str]]


def _dictionary() -> list[tuple[str, int | None, str | None]]:
    out = []
    for line in read_word_list(USER_DICT):
        parts = line.split()
        out.append((parts[0], int(parts[1]) if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None))
    return out


def jieba_cut(hmm: bool) -> Cut:
    seg = _Jieba(str(USER_DICT))
    return lambda text: seg.cut(text, hmm)


def rjieba_cut(hmm: bool) -> Cut:
    """The adapter tousu uses (pipeline.text.tokenise._RJieba)."""
    seg = _RJieba(str(USER_DICT))
    return lambda text: seg.cut(text, hmm)


def _jieba_like(module: str, hmm: bool) -> Cut:
    import importlib

    mod = importlib.import_module(module)
    tk = mod.Tokenizer()
    tk.initialize()
    for word, freq, tag in _dictionary():
        tk.add_word(word, freq, tag)
    return lambda text: list(tk.cut(text, HMM=hmm))


SEGMENTERS: dict[str, Callable[[bool], Cut]] = {
    "rjieba": rjieba_cut,
    "jieba_fast_dat": lambda hmm: _jieba_like("jieba_fast_dat", hmm),
    "jieba_next": lambda hmm: _jieba_like("jieba_next", hmm),
}


def notes(limit: int | None) -> list[str]:
    from pipeline.model.corpus import load_corpus
    from pipeline.text.normalisation import normalise

    texts = [normalise(t).model_text for t in load_corpus()["text"]]
    return texts[:limit] if limit else texts


def rate(cut: Cut, texts: list[str], repeat: int) -> float:
    """Notes per second, best of `repeat` passes (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for t in texts:
            cut(t)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def compare(name: str, cut: Cut, reference: list[list[str]], texts: list[str], tokenizer: Tokenizer,
            ref_rate: float, repeat: int) -> dict:
    raw_same = clean_same = 0
    examples = []
    for text, ref in zip(texts, reference):
        got = cut(text)
        if got == ref:
            raw_same += 1
            clean_same += 1
            continue
        if tokenizer.clean(got) == tokenizer.clean(ref):
            clean_same += 1
        if len(examples) < 3:
            i = next((k for k, (a, b) in enumerate(zip(got, ref)) if a != b), min(len(got), len(ref)))
            examples.append({"jieba": ref[max(i - 2, 0):i + 3], name: got[max(i - 2, 0):i + 3]})
    r = rate(cut, texts, repeat)
    return {"segmenter": name, "notes": len(texts), "raw_agreement": round(raw_same / len(texts), 5),
            "tokenizer_agreement": round(clean_same / len(texts), 5), "notes_per_s": round(r, 1),
            "jieba_notes_per_s": round(ref_rate, 1), "speed_ratio": round(r / ref_rate, 2), "differences": examples}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notes", type=int, default=None, help="Only the first N corpus notes (default: all).")
    ap.add_argument("--repeat", type=int, default=3, help="Timing passes; the best counts.")
    ap.add_argument("--json", action="store_true", help="One JSON line per segmenter.")
    ap.add_argument("--hmm", action="store_true", help="Compare with HMM on (the Tokenizer runs with it off).")
    args = ap.parse_args(argv)
    tokenizer = Tokenizer()
    hmm = args.hmm or tokenizer.hmm
    texts = notes(args.notes)
    ref_cut = jieba_cut(hmm)
    reference = [ref_cut(t) for t in texts]
    ref_rate = rate(ref_cut, texts, args.repeat)
    if not args.json:
        print(f"{len(texts)} corpus notes, HMM={hmm}, user dictionary {USER_DICT.name}; "
              f"jieba {ref_rate:,.0f} notes/s")
    for name, make in SEGMENTERS.items():
        try:
            cut = make(hmm)
        except ImportError as exc:
            row = {"segmenter": name, "skipped": f"not installed ({exc})"}
        else:
            row = compare(name, cut, reference, texts, tokenizer, ref_rate, args.repeat)
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        elif "skipped" in row:
            print(f"{name:<16} skipped: {row['skipped']}")
        else:
            print(f"{name:<16} raw agreement {row['raw_agreement']:.2%}  tokenizer agreement "
                  f"{row['tokenizer_agreement']:.2%}  {row['notes_per_s']:,.0f} notes/s = {row['speed_ratio']:.2f}x jieba")
            for ex in row["differences"]:
                print(f"{'':<16} e.g. {ex}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
