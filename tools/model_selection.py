"""Try a model setting on the slice-held-out estimate and record it (docs/model_selection.md).

    python -m tools.model_selection NAME '{"C": 10}' [--no-generated] [--k 5]

Each try prints its pooled figures and appends one JSON line to
docs/model_selection.jsonl; docs/model_selection.md is the readable table.
The independent validation files are never read here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipeline.model.corpus import load_corpus
from pipeline.apps.slices import slice_heldout
from pipeline.model.triager import Triager

LOG = Path(__file__).resolve().parent.parent / "docs" / "model_selection.jsonl"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("params", nargs="?", default="{}")
    ap.add_argument("--no-generated", action="store_true", help="train without the generated notes")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--predictions", type=Path, help="also write each note's pooled prediction (JSONL) here")
    args = ap.parse_args(argv)
    params = json.loads(args.params)
    df = load_corpus()
    keep = (lambda d: d[d["source"] != "generated"]) if args.no_generated else None
    start = time.time()
    result = slice_heldout(df, lambda: Triager(**params), k=args.k, train_filter=keep,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    row = {"name": args.name, "params": params, "generated": not args.no_generated,
           "minutes": round((time.time() - start) / 60, 1),
           **{k: v for k, v in result.items() if k not in ("folds", "predictions")}, "folds": result["folds"]}
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as fh:
            for case_id, p in result["predictions"].items():
                fh.write(json.dumps({"id": case_id, **p}, ensure_ascii=False) + "\n")
    LOG.parent.mkdir(exist_ok=True)
    with open(LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "folds"}, ensure_ascii=False))
    return row


if __name__ == "__main__":
    main()
