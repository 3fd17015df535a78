"""The project's labelled corpus and its fixed train/test split.

`handwritten/*.jsonl` are notes written one by one; `generated.jsonl` is the
seeded generator's output (tools/generate.py). Both ship inside the package
(pipeline/knowledge/corpus/) because first-use training needs them.
`split.csv` fixes which ids are held out,
so every figure in the project is measured on the same notes. New ids are
added to the split stratified by main cause; existing ids never move.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from pipeline.io import read_labelled
from pipeline.knowledge import corpus_dir

CORPUS_DIR = corpus_dir()
SPLIT_PATH = CORPUS_DIR / "split.csv"
GENERATED_PATH = CORPUS_DIR / "generated.jsonl"
TEST_SHARE = 0.2


def corpus_files(corpus_dir: Path = CORPUS_DIR) -> list[Path]:
    files = sorted((corpus_dir / "handwritten").glob("*.jsonl"))
    if (corpus_dir / "generated.jsonl").exists():
        files.append(corpus_dir / "generated.jsonl")
    return files


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> pd.DataFrame:
    """All labelled notes of the corpus, validated; raises on any bad file."""
    frames = [read_labelled(f) for f in corpus_files(corpus_dir)]
    if not frames:
        raise FileNotFoundError(f"{corpus_dir}: no corpus files; run `python -m tools.build_corpus` to build it.")
    df = pd.concat(frames, ignore_index=True)
    dupes = df["id"][df["id"].duplicated()].tolist()
    if dupes:
        raise ValueError(f"{corpus_dir}: ids used in more than one corpus file: {dupes[:10]}")
    if "source" not in df.columns:
        df["source"] = "handwritten"
    df["source"] = df["source"].fillna("handwritten")
    return df


def _rank(case_id: str) -> str:
    return hashlib.sha256(case_id.encode()).hexdigest()


def assign_split(df: pd.DataFrame, existing: pd.DataFrame | None = None, test_share: float = TEST_SHARE) -> pd.DataFrame:
    """id -> train|test, stratified by main cause and by source; old assignments kept."""
    known = dict(zip(existing["id"], existing["split"])) if existing is not None else {}
    out = []
    strata = df.assign(main=[c[0] for c in df["cause"]])
    for _, group in strata.groupby(["main", "source"], sort=True):
        ids = list(group["id"])
        n_test_wanted = round(len(ids) * test_share)
        n_test = sum(1 for i in ids if known.get(i) == "test")
        for case_id in sorted((i for i in ids if i not in known), key=_rank):
            split = "test" if n_test < n_test_wanted else "train"
            n_test += split == "test"
            out.append((case_id, split))
        out.extend((i, known[i]) for i in ids if i in known)
    return pd.DataFrame(out, columns=["id", "split"]).sort_values("id").reset_index(drop=True)


def load_split(corpus_dir: Path = CORPUS_DIR) -> pd.DataFrame:
    return pd.read_csv(corpus_dir / "split.csv", dtype=str, encoding="utf-8-sig")


def train_test(df: pd.DataFrame | None = None, corpus_dir: Path = CORPUS_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed split. An id missing from split.csv is an error, not a silent train row."""
    df = load_corpus(corpus_dir) if df is None else df
    table = load_split(corpus_dir)
    split = dict(zip(table["id"], table["split"]))
    missing = [i for i in df["id"] if i not in split]
    if missing:
        raise ValueError(f"{len(missing)} corpus ids are not in split.csv (e.g. {missing[:3]}); run `python -m tools.build_corpus`.")
    is_test = df["id"].map(split).eq("test")
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
