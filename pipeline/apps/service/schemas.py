"""Request bodies: what a caller may send (unknown fields are refused, so no request can name a model path)."""
from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Note", "Batch", "Labels"]


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The complaint note (simplified, traditional or mixed Chinese).")
    id: str | None = Field(default=None, description="Your case id; echoed back.")
    received: date | None = Field(default=None, description="Date received (ISO, YYYY-MM-DD); default today. "
                                                            "Sets the reply deadlines.")
    extra: dict[str, Any] | None = Field(default=None, description="Any object; echoed back untouched.")


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: list[Note] = Field(description="The notes, at most ServiceSettings.max_batch of them.")


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cause: list[str] | None = Field(default=None, description="Cause ids, main first (1 to 3).")
    risk_level: str | None = Field(default=None, description="low, medium or high.")
    risk_flags: list[str] | None = Field(default=None, description="Flag ids (may be empty).")
    mindset: list[str] | None = Field(default=None, description="Mindset ids, main first (0 to 2).")
    resolved: bool | None = Field(default=None, description="true: mark the case resolved; false: reopen it.")
    comment: str | None = Field(default=None, max_length=2000, description="Why, in the handler's words.")
