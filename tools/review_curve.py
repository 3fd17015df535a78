"""The coverage/accuracy curve behind the review thresholds (playbook settings review_cause_below,
review_cause_margin, review_flag_margin, review_level_below): never the validation files.

    python -m tools.review_curve --slices PRED.jsonl    # slice-held-out predictions (new writers)
    python -m tools.review_curve [--model DIR]          # the fixed held-out split, one model

PRED.jsonl is what `python -m tools.model_selection NAME --predictions PRED.jsonl` writes: each note
predicted by a model that never saw its writer, which is what the independent files are like. For each
setting: the share of notes review marks, main-cause top-1 and risk-level accuracy on the notes it
leaves unmarked, the share of wrong notes (main cause or level) it catches, and the share of call
transcripts it marks (they are marked more, and a handler's queue of calls should not fill with
reviews). The chosen point keeps both shares within `--max-share` and the unmarked level accuracy at
`--min-level` or above; among those, the one that catches most.
"""
from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from types import SimpleNamespace

from pipeline.handling.playbook import default_playbook
from pipeline.handling.review import review_reasons


def _slice_rows(path: str) -> list[tuple[SimpleNamespace, dict, str, str, bool]]:
    from pipeline.model.corpus import load_corpus

    gold = load_corpus().set_index("id")
    rows = []
    for line in open(path, encoding="utf-8"):
        p = json.loads(line)
        is_call = "transcript" in str(gold.at[p["id"], "style"])
        # a call is read against the calls' own bar for a judged second sign, as the product reads it
        t = SimpleNamespace(**{k: p[k] for k in ("cause", "cause_proba", "risk_level", "risk_flags",
                                                  "risk_flag_proba", "truncated")},
                            risk_level_proba=p.get("risk_level_proba", {}), is_transcript=is_call)
        rows.append((t, p["thresholds"], gold.at[p["id"], "cause"][0], gold.at[p["id"], "risk_level"], is_call))
    return rows


def _heldout_rows(model_dir: str | None) -> list[tuple[SimpleNamespace, dict, str, str, bool]]:
    from pipeline.flow import triage_notes
    from pipeline.model.corpus import train_test
    from pipeline.model.registry import load_model

    model, _ = load_model(model_dir)
    _, test = train_test()
    results = triage_notes(model, list(test["text"]), with_plan=False)
    return [(r.triage, model.flag_thresholds_, c[0], lv, "transcript" in str(style))
            for r, c, lv, style in zip(results, test["cause"], test["risk_level"], test["style"])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", help="slice-held-out predictions (tools.model_selection --predictions)")
    ap.add_argument("--model")
    ap.add_argument("--max-share", type=float, default=0.18)
    ap.add_argument("--min-level", type=float, default=0.92,
                    help="keep only points whose unmarked risk-level accuracy is at least this (the escalation "
                         "is what costs most when wrong; issue 15 asks 0.92)")
    args = ap.parse_args()
    rows = _slice_rows(args.slices) if args.slices else _heldout_rows(args.model)
    cause_ok = [t.cause[0] == c for t, _, c, _, _ in rows]
    level_ok = [t.risk_level == lv for t, _, _, lv, _ in rows]
    calls = [i for i, row in enumerate(rows) if row[4]]
    wrong = [i for i in range(len(rows)) if not (cause_ok[i] and level_ok[i])]
    print(f"{'slice-held-out' if args.slices else 'held-out split'}, n={len(rows)}; all notes: "
          f"cause {sum(cause_ok) / len(rows):.3f}, risk {sum(level_ok) / len(rows):.3f}")
    print(f"{'below':>6} {'margin':>6} {'flag':>6} {'level':>6} {'review':>7} {'cause':>7} {'risk':>7} {'catches':>8} "
          f"{'calls':>6}")
    best = None
    current = default_playbook().settings
    for below, margin, flag, level in itertools.product((0.0, 0.4, 0.5), (0.0, 0.2, 0.3, 0.4, 0.5), (0.0, 0.05, 0.08, 0.1),
                                                        (0.0, 0.1, 0.2, 0.3, 0.4)):
        settings = replace(current, review_cause_below=below, review_cause_margin=margin, review_flag_margin=flag,
                           review_level_below=level)
        # the playbook's own review rule (the rules that ask for a person are left out: they are not tuned here)
        marked = [bool(review_reasons(t, settings, thr, [], {})) for t, thr, _, _, _ in rows]
        rest = [i for i, m in enumerate(marked) if not m]
        share = sum(marked) / len(marked)
        c = sum(cause_ok[i] for i in rest) / len(rest)
        lv = sum(level_ok[i] for i in rest) / len(rest)
        caught = sum(marked[i] for i in wrong) / len(wrong)
        call_share = sum(marked[i] for i in calls) / len(calls) if calls else 0.0
        print(f"{below:>6.2f} {margin:>6.2f} {flag:>6.2f} {level:>6.2f} {share:>7.3f} {c:>7.3f} {lv:>7.3f} {caught:>8.3f} "
              f"{call_share:>6.3f}")
        if (share <= args.max_share and call_share <= args.max_share and lv >= args.min_level
                and (best is None or caught > best[-2])):
            best = (below, margin, flag, level, share, c, lv, caught, call_share)
    print(f"current playbook: review_cause_below={current.review_cause_below}, "
          f"review_cause_margin={current.review_cause_margin}, review_flag_margin={current.review_flag_margin}, "
          f"review_level_below={current.review_level_below}")
    if best:
        below, margin, flag, level, share, c, lv, caught, call_share = best
        print(f"most caught within {args.max_share:.0%} marked (notes and calls), unmarked level >= {args.min_level}: "
              f"review_cause_below={below}, "
              f"review_cause_margin={margin}, review_flag_margin={flag}, review_level_below={level} (review {share:.3f}, "
              f"calls {call_share:.3f}, unmarked cause {c:.3f}, risk {lv:.3f}, catches {caught:.3f})")


if __name__ == "__main__":
    main()
