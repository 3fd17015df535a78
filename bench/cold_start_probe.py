"""What cold start of `tousu score` would be with a model folder that loads without scikit-learn.

    python bench/cold_start_probe.py [--runs 5]

The fitted model is a pickle of scikit-learn objects, so loading it imports
scikit-learn (and with it SciPy's statistics and pandas), which is most of
`tousu score`'s start. This probe measures, in whole processes run in turn:

- `jieba`: `python -c "import jieba; jieba.initialize()"` (the issue's yardstick);
- `score`: `python -m cli score "..."` as it is now;
- `arrays`: everything prediction needs except scikit-learn: the same text,
  segmenter, facts and playbook modules, plus the promoted model's weights,
  IDF vectors and vocabularies read back from .npy/.json files written once
  into a temporary folder (weights memory-mapped). It does not compute a
  triage (that needs a scikit-learn-free predictor, a few milliseconds of
  matrix work), so it is the floor a format change could reach.

Prints the medians and each one's ratio to `jieba`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOAD_ARRAYS = r"""
import json, sys
from pathlib import Path
import numpy as np
import scipy.sparse
from pipeline.text.normalisation import normalise
from pipeline.text.tokenise import Tokenizer
from pipeline.handling.facts import extract_facts
from pipeline.handling.playbook import default_playbook
from pipeline.handling.result import Result
folder = Path(sys.argv[1])
meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in meta["arrays"]}
vocab = {name: json.loads((folder / f"{name}.vocab.json").read_text(encoding="utf-8")) for name in meta["vocabularies"]}
doc = normalise("客户称再不退保就去找记者曝光")
Tokenizer()(doc.model_text)
extract_facts(doc.text)
default_playbook()
"""


def export(model, folder: Path) -> None:
    """The prediction state of a fitted Triager as plain arrays and JSON (what a fast format would hold)."""
    import numpy as np

    arrays, vocabularies = {}, []
    for name, part in model.features_.transformer_list:
        if hasattr(part, "vocabulary_"):
            (folder / f"{name}.vocab.json").write_text(json.dumps({k: int(v) for k, v in part.vocabulary_.items()}, ensure_ascii=False), encoding="utf-8")
            vocabularies.append(name)
            arrays[f"{name}_idf"] = part.idf_
    for head in ("cause_head_", "mindset_head_", "level_head_", "flag_head_", "mindset_any_head_"):
        h = getattr(model, head)
        arrays[f"{head}weights"] = h.weights
        arrays[f"{head}intercept"] = h.intercept
    for key, value in arrays.items():
        np.save(folder / f"{key}.npy", np.ascontiguousarray(value))
    (folder / "meta.json").write_text(json.dumps({"arrays": list(arrays), "vocabularies": vocabularies}), encoding="utf-8")


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    from pipeline.model.registry import load_model

    model, manifest = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export(model, folder)
        size = sum(p.stat().st_size for p in folder.iterdir())
        cmds = {
            "jieba": [sys.executable, "-c", "import jieba; jieba.initialize()"],
            "score": [sys.executable, "-m", "cli", "score", "客户称再不退保就去找记者曝光"],
            "arrays": [sys.executable, "-c", LOAD_ARRAYS, str(folder)],
        }
        for cmd in cmds.values():  # caches (jieba's dictionary cache, .pyc files) warm once
            wall(cmd)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for k, cmd in cmds.items():
                times[k].append(wall(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"model {manifest['version']}; arrays and vocabularies {size / 1e6:.1f} MB; median of {args.runs} runs, in turn")
    for k, v in med.items():
        print(f"{k:<8}{v:6.2f} s  {v / med['jieba']:.2f}x jieba")
    return 0


if __name__ == "__main__":
    sys.exit(main())
