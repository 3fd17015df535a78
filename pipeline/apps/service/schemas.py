"""What a caller may send, checked at the edge so every database backend sees the same input.

Unknown fields are refused (no request can name a model path). Every string a caller sends, in a body,
a path or a query, is refused with 422 when it holds a NUL or a lone surrogate (PostgreSQL cannot store
the first, no backend can encode the second) or is longer than its column.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from pipeline.apps.store import MAX_COMMENT_CHARS, MAX_ID_CHARS, text_problem

__all__ = ["Note", "Batch", "Labels", "SessionLogin", "Text", "CaseId", "LabelId", "check_text"]

#: received dates outside this range are refused (deadlines are computed from them)
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def check_text(value: str) -> str:
    problem = text_problem(value, "the text")
    if problem:
        raise ValueError(problem)
    return value


def _check_tree(value: Any) -> Any:
    """Every string in a JSON value, keys included, passes check_text."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k)
            _check_tree(v)
    elif isinstance(value, list):
        for v in value:
            _check_tree(v)
    return value


def _check_day(value: date | None) -> date | None:
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"the date must be between {FIRST_DAY} and {LAST_DAY}")
    return value


Text = Annotated[str, AfterValidator(check_text)]
CaseId = Annotated[str, StringConstraints(max_length=MAX_ID_CHARS), AfterValidator(check_text)]
LabelId = Annotated[str, StringConstraints(max_length=64), AfterValidator(check_text)]


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="The complaint note (simplified, traditional or mixed Chinese).")
    id: CaseId | None = Field(default=None, description="Your case id (at most 128 characters); echoed back.")
    received: Annotated[date | None, AfterValidator(_check_day)] = Field(
        default=None, description="Date received (ISO, YYYY-MM-DD); default today. Sets the reply deadlines.")
    channel: Literal["phone", "counter", "letter", "regulator", "online"] | None = Field(
        default=None, description="How the note came in; default: read from the note. Some steps depend on it "
                                  "(a private room only at the counter).")
    extra: Annotated[dict[str, Any] | None, AfterValidator(_check_tree)] = Field(
        default=None, description="Any object; echoed back untouched.")


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: list[Note] = Field(description="The notes, at most ServiceSettings.max_batch of them.")


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cause: list[LabelId] | None = Field(default=None, description="Cause ids, main first (1 to 3).")
    risk_level: LabelId | None = Field(default=None, description="low, medium or high.")
    risk_flags: list[LabelId] | None = Field(default=None, description="Flag ids (may be empty).")
    mindset: list[LabelId] | None = Field(default=None, description="Mindset ids, main first (0 to 2).")
    resolved: bool | None = Field(default=None, description="true: mark the case resolved; false: reopen it.")
    comment: Annotated[str, StringConstraints(max_length=MAX_COMMENT_CHARS), AfterValidator(check_text)] | None = Field(
        default=None, description="Why, in the handler's words (personal numbers in it are masked when kept).")


class SessionLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(max_length=512)] = Field(description="Your API token.")
