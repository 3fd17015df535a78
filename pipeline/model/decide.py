"""How a fitted model's probabilities become a triage: top causes, flags by threshold (or by an outright
threat at the lexicon's gate), the rule's floor for the level, mindsets, evidence, review heads.

One mixin for the two model forms (the fitted `Triager` and the `ArrayTriager` that `tousu score` and
`tousu tag` load), so the decision is written once. It reads only fitted state (`taxonomy_`, the label
sets, thresholds) and imports no scikit-learn.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.contract.records import Evidence, Triage
from pipeline.contract.taxonomy import HEADS
from pipeline.model.lexical import (disclaimable_flags, disclaimed_bar, disclaimed_threats, drop_weak_second_signals,
                                   evidence_map, explicit_threat_gates, explicit_threats, find_markers)
from pipeline.text.normalisation import NormalisedText

__all__ = ["NO_MINDSET", "TriageDecision"]

NO_MINDSET = "__none__"

#: the heads whose probabilities a triage shows, rounded to four places
_SHOWN = ("cause", "risk_level", "risk_flags", "mindset_any")


def round4(a: np.ndarray) -> np.ndarray:
    """`round(float(x), 4)` for every element (the same doubles), over a whole array at once.

    Away from a tie, the integer nearest x * 1e4 computed in floating point is the one nearest the
    exact product (the product's error is far below the 1e-5 margin), and k / 1e4, one correctly
    rounded division, is the double nearest k * 10**-4: what Python's round returns. The rare element
    near a tie, huge or not finite goes through Python's round itself."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # infinities and huge values: Python's round below
        y = a * 1e4
        out = np.rint(y) / 1e4
        odd = ~(np.abs(a) < 1e6) | (np.abs(y - np.floor(y) - 0.5) < 1e-5)
    if odd.any():
        flat_a, flat_out = a.reshape(-1), out.reshape(-1)
        for i in np.flatnonzero(odd.reshape(-1)).tolist():
            flat_out[i] = round(float(flat_a[i]), 4)
    return out


def _label_set(head: str, doc: str | None = None) -> property:
    """One head's label ids, in column order, from the fitted `classes_`."""
    return property(lambda self: self.classes_[head], doc=doc or f"The label ids of {head}, in column order.")


class TriageDecision:
    """Prediction shared by the model forms: the class provides `transform(texts) -> (docs, X)`, the
    fitted heads (`cause_head_`, `level_head_`, `flag_head_`, `mindset_head_`, `mindset_any_head_`),
    `taxonomy_`, `classes_`, `flag_thresholds_`/`flag_threshold_vec_`, `mindset_second_threshold_`,
    `review_thresholds_` and `risk_policy`."""

    cause_classes_ = _label_set("cause")
    level_classes_ = _label_set("risk_level")
    flag_classes_ = _label_set("risk_flags")
    mindset_classes_ = _label_set("mindset", "Mindset ids plus `NO_MINDSET`, the class of a note with no mindset.")

    def _proba_from_X(self, X) -> dict[str, np.ndarray]:
        """The four heads, plus `mindset_any` (each mindset present at all), which only triage reads."""
        flags = self.flag_head_.proba(X)
        return {
            "mindset_any": self.mindset_any_head_.proba(X),
            "cause": self.cause_head_.proba(X),
            "risk_level": self.level_head_.proba(X),
            "risk_flags": flags,
            "mindset": self.mindset_head_.proba(X),
        }

    @staticmethod
    def _heads_only(proba: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {head: proba[head] for head in HEADS}

    def predict_proba(self, texts: Sequence[str | NormalisedText]) -> dict[str, np.ndarray]:
        """Head -> probability matrix (notes x classes), columns in `classes_[head]` order:
        cause, risk_level and mindset (last column `NO_MINDSET`) sum to 1 per note;
        risk_flags are independent, one probability per flag."""
        _, X = self.transform(texts)
        return self._heads_only(self._proba_from_X(X))

    def mindset_presence_proba(self, texts: Sequence[str | NormalisedText]) -> np.ndarray:
        """Notes x mindsets (`classes_['mindset']` without `NO_MINDSET`): how likely each mindset is
        present at all, main or second; what picks the second mindset and what the handler sees."""
        _, X = self.transform(texts)
        return self.mindset_any_head_.proba(X)

    def triage(self, texts: Sequence[str | NormalisedText], evidence: bool = True) -> list[Triage]:
        """The rich result per note: top-3 causes, level, flags with evidence, mindsets, review heads.
        `evidence=False` leaves each flag's quoted spans out (a tagged file has no column for them)."""
        return self.predict_with_proba(texts, evidence=evidence)[0]

    def predict_with_proba(self, texts: Sequence[str | NormalisedText], evidence: bool = True
                           ) -> tuple[list[Triage], dict[str, np.ndarray]]:
        """Triages and the four heads' probability matrices behind them, from one pass over the features."""
        docs, X = self.transform(texts)
        proba = self._proba_from_X(X)
        shown = {k: round4(proba[k]).tolist() for k in _SHOWN}  # the whole batch rounded at once
        triages = [self._triage(docs[i], {k: v[i] for k, v in proba.items()}, {k: v[i] for k, v in shown.items()},
                                evidence=evidence) for i in range(len(docs))]
        return triages, self._heads_only(proba)

    def _reconcile(self, level_p: np.ndarray, flags: list[str]) -> tuple[str, str | None]:
        """The spec's rule decides the floor; the learned model may lift medium to high
        (a dated media or regulator action, which flags alone cannot show)."""
        tax = self.taxonomy_
        learned = self.level_classes_[int(level_p.argmax())]
        floor = tax.risk_floor(flags)
        order = {lvl: i for i, lvl in enumerate(self.level_classes_)}
        if self.risk_policy == "max":
            final = max(learned, floor, key=order.get)
            if final == "medium" and floor == "low":
                final = "low"
        else:
            final = floor
            if floor == "medium" and learned == "high":
                final = "high"
        note = None
        if final != learned:
            note = f"learned {learned} ({level_p.max():.2f}) -> {final}: flags {sorted(flags) or 'none'} give at least {floor}"
        return final, note

    def _triage(self, doc: NormalisedText, p: dict[str, np.ndarray], shown: dict[str, list[float]] | None = None,
                evidence: bool = True) -> Triage:
        """One note's triage from its probability rows; `shown`: those of `_SHOWN` rounded (`round4`)."""
        if shown is None:
            shown = {k: round4(p[k]).tolist() for k in _SHOWN}
        tax = self.taxonomy_
        mindset_classes = self.mindset_classes_  # a property: read once, not once per label
        order = (-p["cause"]).argsort()[:3].tolist()  # np.argsort's own method, without its wrapper
        cause_classes = self.cause_classes_
        cause = [cause_classes[j] for j in order]
        flag_p = p["risk_flags"]
        # Python floats (tolist: the same values): a comparison per label on numpy scalars costs more
        flag_list = flag_p.tolist()
        # a threat or sign said outright lowers its flag's bar to the lexicon's gate for that flag;
        # one the customer disclaims wherever it is named ("我不会去找记者") raises it
        said = explicit_threats(doc.model_text)
        gates = explicit_threat_gates()
        over = [pr >= t for pr, t in zip(flag_list, self.flag_threshold_vec_.tolist())]
        # a disclaimer can only hold back a threat flag over its threshold and not said outright: most notes have none
        disclaimable = disclaimable_flags()
        if any(o and f in disclaimable and f not in said for f, o in zip(self.flag_classes_, over)):
            disclaimed = disclaimed_threats(doc.model_text).difference(said)
        else:
            disclaimed = frozenset()
        bar = disclaimed_bar()
        flags = tax.resolve_flags([f for f, pr, o in zip(self.flag_classes_, flag_list, over)
                                   if (o and (f not in disclaimed or pr >= bar)) or (f in said and pr >= gates[f])])
        # a flag judged by degree makes the second medium sign (a major complaint) only when it is likelier than not
        if len(flags) >= 2:
            flags = drop_weak_second_signals(flags, dict(zip(self.flag_classes_, flag_list)), said, tax,
                                             is_transcript=doc.is_transcript)
        level, note = self._reconcile(p["risk_level"], flags)
        m_order = (-p["mindset"]).argsort()
        mindset: list[str] = []
        first = mindset_classes[m_order[0]]
        if first != NO_MINDSET:
            mindset.append(first)
            any_p = p["mindset_any"]
            ranked = [j for j in (-any_p).argsort().tolist() if mindset_classes[j] != first]
            j = ranked[0]
            if any_p[j] >= self.mindset_second_threshold_:
                mindset.append(mindset_classes[j])
        tops = {"cause": float(p["cause"].max()), "mindset": float(p["mindset"].max()), "risk_level": float(p["risk_level"].max())}
        uncertain = [head for head, top in tops.items() if top < self.review_thresholds_.get(head, 0.0)]
        return Triage(
            cause=cause,
            cause_proba=[shown["cause"][j] for j in order],
            cause_group=[tax.group_of(c) for c in cause],
            risk_level=level,
            risk_level_proba=dict(zip(self.level_classes_, shown["risk_level"])),
            risk_flags=flags,
            risk_flag_proba=dict(zip(self.flag_classes_, shown["risk_flags"])),
            mindset=mindset,
            # shown to the handler: how likely each mindset is present at all (main or second)
            mindset_proba=dict(zip(mindset_classes[:-1], shown["mindset_any"])),
            flag_evidence={f: self._evidence(doc, f, said.get(f)) for f in flags} if evidence else {},
            uncertain=uncertain,
            head_top_proba={h: round(v, 4) for h, v in tops.items()},
            reconciliation=note,
            truncated=doc.truncated,
            is_transcript=doc.is_transcript,
            said_outright=[f for f in flags if f in said and not over[self.flag_classes_.index(f)]] if said else [],
        )

    def _evidence(self, doc: NormalisedText, flag: str, said: tuple[int, int, str] | None = None) -> list[Evidence]:
        """Lexicon spans in what the model read: offsets refer to `NormalisedText.customer`, and a span past
        its end lies in the agent's statement of the case that `model_text` adds after it.
        A threat said outright comes first: it is the sentence a handler needs to see."""
        found: list[Evidence] = []
        for marker in evidence_map().get(flag, []):
            for start, end, text in find_markers(doc.model_text, marker):
                found.append(Evidence(start, end, text, "lexicon"))
        found.sort(key=lambda e: e.start)
        if said is not None:
            found = [Evidence(*said, "lexicon")] + [e for e in found if not (said[0] <= e.start and e.end <= said[1])]
        return [_as_written(doc, e) for e in found[:5]]


def _as_written(doc: NormalisedText, ev: Evidence) -> Evidence:
    """The evidence with the note's own characters: the clean text is simplified character for character
    (same length as the original), so the first place it says these words is the same place in the original."""
    if len(doc.original) != len(doc.text):
        return ev
    i = doc.text.find(ev.text)
    if i < 0:
        return ev
    return Evidence(ev.start, ev.end, ev.text, ev.source, doc.original[i:i + len(ev.text)])

