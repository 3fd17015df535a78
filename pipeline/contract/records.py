"""Records that travel between the pipeline's stages.

Plain dataclasses so that every stage can be tested on its own and the
results serialise to JSON with a stable field order (`asdict`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Evidence:
    """A piece of the note that supports a label: where it is and what it says."""

    start: int
    end: int
    text: str
    source: str = "lexicon"  # "lexicon" (marker word found) or "model" (top weighted feature)
    # the same words as the note writes them (traditional characters stay traditional), so a page can mark
    # them in the note as it was typed; "" when the note's clean form is not character for character
    as_written: str = ""


@dataclass
class Triage:
    """The four heads for one note, with probabilities a handler can weigh.

    `cause` holds up to three ids, main first; `cause_group` is the group of
    each of them in the same order. `uncertain` names the heads whose top
    probability fell under the head's review threshold.
    """

    cause: list[str]
    cause_proba: list[float]
    cause_group: list[str]
    risk_level: str
    risk_level_proba: dict[str, float]
    risk_flags: list[str]
    risk_flag_proba: dict[str, float]
    mindset: list[str]
    mindset_proba: dict[str, float]
    flag_evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    # the top probability of each head as the review decision read it (mindset: the main-label softmax)
    head_top_proba: dict[str, float] = field(default_factory=dict)
    reconciliation: str | None = None  # set when the learned level was moved to agree with the flags
    truncated: bool = False
    is_transcript: bool = False
    risk_reason: str = ""  # why this level, in Chinese ("两个中度信号：媒体曝光；情绪激动")
    # flags on because the note says them outright ("情绪冲动", "第三次投诉") while the model's own probability
    # is under its threshold: the card says 原文明说 there, not a probability that looks like noise
    said_outright: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fact:
    """One fact pulled from the note. `text` is masked for personal numbers."""

    kind: str  # amount, age, date, policy_number, phone, id_number, bank_card, email, deadline, group_size, prior_complaints, product
    value: Any
    start: int
    end: int
    text: str


@dataclass
class Facts:
    items: list[Fact] = field(default_factory=list)

    def of(self, kind: str) -> list[Fact]:
        return [f for f in self.items if f.kind == kind]

    def first(self, kind: str) -> Any:
        found = self.of(kind)
        return found[0].value if found else None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [asdict(f) for f in self.items]}


@dataclass
class Step:
    id: str
    text: str
    section: str
    short: str = ""  # two to four characters, for the one-line general process


@dataclass
class FiredRule:
    """A playbook rule that fired, and the prediction or fact that made it fire."""

    rule: str
    because: str
    confidence: float | None = None
    tier: str = "then"


@dataclass
class ReplyDue:
    first_reply_hours: int
    decision_due: str | None  # ISO date: regulatory deadline counted from the received date (None: an enquiry)
    decision_days: int | None
    extension: str
    complex_due: str | None = None  # ISO date: the longest a complex case may take (30 days)
    extended_due: str | None = None  # ISO date: complex case with an approved extension (+30 days)
    customer_deadline_days: int | None = None  # the shortest deadline named in the note, in days


@dataclass
class HandlingPlan:
    """What to do, in three tiers: `now` (at most five, most urgent first), `then`, and `reference`
    (the general process, one collapsed line). `steps` is now + then, in that order."""

    steps: list[Step]
    avoid: list[Step]
    owner: str  # frontline < supervisor < senior_specialist
    departments: list[str]
    reply_due: ReplyDue
    fired: list[FiredRule]
    review: bool
    review_reasons: list[str] = field(default_factory=list)
    now: list[Step] = field(default_factory=list)
    then: list[Step] = field(default_factory=list)
    reference: list[Step] = field(default_factory=list)
    channel: str = "unknown"
    enquiry: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
