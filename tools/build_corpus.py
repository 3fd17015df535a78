"""Rebuild the corpus's generated part (seeded) and extend the fixed split to new ids.

    python -m tools.build_corpus                 # regenerate generated.jsonl, then extend split.csv
    python -m tools.build_corpus --no-generate   # only extend split.csv (after adding hand-written notes)
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.io import atomic_write
from pipeline.model.corpus import (
    CORPUS_DIR,
    SPLIT_PATH,
    assign_split,
    load_corpus,
    load_split,
)

GENERATOR_SEED = 20261125
GENERATED_N = 2600


def build(corpus_dir: Path = CORPUS_DIR, regenerate: bool = True) -> pd.DataFrame:
    """Regenerate the generated notes (seeded) and extend the split to new ids."""
    if regenerate:
        from tools.generate import generate_corpus

        gen = generate_corpus(GENERATED_N, seed=GENERATOR_SEED)
        atomic_write(corpus_dir / "generated.jsonl", gen, "jsonl")
    df = load_corpus(corpus_dir)
    existing = load_split(corpus_dir) if (corpus_dir / "split.csv").exists() else None
    if existing is not None:
        existing = existing[existing["id"].isin(set(df["id"]))]
    split = assign_split(df, existing)
    atomic_write(corpus_dir / "split.csv", split, "csv")
    return df


if __name__ == "__main__":
    import sys

    corpus = build(regenerate="--no-generate" not in sys.argv)
    print(f"{len(corpus)} notes; split written to {SPLIT_PATH}")
