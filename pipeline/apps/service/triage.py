"""Routes: triage one note or a batch (the JSON of `tousu score --json`, plus the case id it is kept under)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from pipeline.apps.service.deps import HolderDep, ScorerDep, SettingsDep, loaded_model
from pipeline.apps.service.schemas import Batch, Note
from pipeline.apps.service.scoring import Scored, Scorer, ScoringTimeout
from pipeline.apps.service.settings import ServiceSettings

router = APIRouter(tags=["triage"])


def check_note(note: Note, where: list, settings: ServiceSettings) -> None:
    """422 for an empty note or one over max_note_chars (pydantic has already checked the types)."""
    if len(note.text) > settings.max_note_chars:
        raise HTTPException(422, detail=[{"loc": where + ["text"], "type": "too_long",
                                          "msg": f"the note is {len(note.text)} characters long; at most "
                                                 f"{settings.max_note_chars} are accepted. Split it or shorten it."}])
    if not note.text.strip():
        raise HTTPException(422, detail=[{"loc": where + ["text"], "type": "empty", "msg": "the note is empty."}])


async def _score(request: Request, holder, scorer: Scorer, notes: list[Note]) -> Scored:
    model, manifest = loaded_model(holder)
    try:
        done = await scorer.score(model, manifest["version"], notes)
    except ScoringTimeout as exc:
        raise HTTPException(504, detail=str(exc)) from None
    request.scope["state"]["log"].update({"model_version": done.version, "notes": len(notes), "ids": done.case_ids[:10]})
    if done.store_error and scorer.writer is not None:
        request.scope["state"]["log"]["store_error"] = done.store_error
    return done


@router.post("/v1/triage", summary="Triage one note")
async def triage_one(note: Note, request: Request, settings: SettingsDep, holder: HolderDep, scorer: ScorerDep) -> dict:
    check_note(note, ["body"], settings)
    done = await _score(request, holder, scorer, [note])
    return {"id": note.id, "case_id": done.case_ids[0], "stored": done.store_error is None, **done.results[0],
            "model_version": done.version, "elapsed_ms": done.elapsed_ms, "extra": note.extra}


@router.post("/v1/triage/batch", summary="Triage several notes (at most ServiceSettings.max_batch)")
async def triage_batch(batch: Batch, request: Request, settings: SettingsDep, holder: HolderDep, scorer: ScorerDep) -> dict:
    if len(batch.notes) > settings.max_batch:
        raise HTTPException(413, detail=f"{len(batch.notes)} notes in one batch; at most {settings.max_batch} "
                                        "are accepted. Send several batches.")
    for i, note in enumerate(batch.notes):
        check_note(note, ["body", "notes", i], settings)
    if not batch.notes:
        return {"results": [], "model_version": holder.version, "elapsed_ms": 0.0}
    done = await _score(request, holder, scorer, batch.notes)
    return {"results": [{"id": n.id, "case_id": c, **r, "extra": n.extra}
                        for n, c, r in zip(batch.notes, done.case_ids, done.results)],
            "stored": done.store_error is None, "model_version": done.version, "elapsed_ms": done.elapsed_ms}
