"""The coverage/accuracy curve behind the review thresholds (playbook settings review_cause_below,
review_flag_margin), on the corpus's held-out split: never the validation files.

    python -m tools.review_curve [--model DIR]

For each pair of thresholds: the share of notes review marks, and main-cause top-1 and risk-level
accuracy on the notes it leaves unmarked. The chosen point is the one with the most unmarked notes
whose unmarked accuracy stays at or above the target on both heads; its row is printed last.
"""
from __future__ import annotations

import argparse

from pipeline.flow import triage_notes
from pipeline.handling.playbook import default_playbook
from pipeline.handling.review import level_hinges_on
from pipeline.model.corpus import train_test
from pipeline.model.registry import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--target", type=float, default=0.92)
    ap.add_argument("--max-share", type=float, default=0.2)
    args = ap.parse_args()
    model, manifest = load_model(args.model)
    _, test = train_test()
    results = triage_notes(model, list(test["text"]), with_plan=False)
    thresholds = model.flag_thresholds_
    cause_ok = [r.triage.cause[0] == g[0] for r, g in zip(results, test["cause"])]
    level_ok = [r.triage.risk_level == g for r, g in zip(results, test["risk_level"])]
    print(f"model {manifest['version']} on the held-out split, n={len(test)}; "
          f"all notes: cause {sum(cause_ok) / len(test):.3f}, risk {sum(level_ok) / len(test):.3f}")
    print(f"{'cause_below':>11} {'flag_margin':>11} {'review':>7} {'cause':>7} {'risk':>7}")
    best = None
    for below in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
        for margin in (0.0, 0.05, 0.1, 0.15, 0.2):
            marked = [r.triage.cause_proba[0] < below or bool(level_hinges_on(r.triage, thresholds, margin))
                      or r.triage.truncated for r in results]
            rest = [i for i, m in enumerate(marked) if not m]
            share = sum(marked) / len(marked)
            c = sum(cause_ok[i] for i in rest) / len(rest)
            lv = sum(level_ok[i] for i in rest) / len(rest)
            print(f"{below:>11.2f} {margin:>11.2f} {share:>7.3f} {c:>7.3f} {lv:>7.3f}")
            if share <= args.max_share and c >= args.target and lv >= args.target and (best is None or share < best[2]):
                best = (below, margin, share, c, lv)
    current = default_playbook().settings
    print(f"current playbook: review_cause_below={current.review_cause_below}, "
          f"review_flag_margin={current.review_flag_margin}")
    if best:
        print(f"chosen: review_cause_below={best[0]}, review_flag_margin={best[1]} "
              f"(review {best[2]:.3f}, unmarked cause {best[3]:.3f}, risk {best[4]:.3f})")
    else:
        print(f"no point reaches {args.target} on both heads with review <= {args.max_share}")


if __name__ == "__main__":
    main()
