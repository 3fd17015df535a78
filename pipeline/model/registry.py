"""Model versions on disk: a manifest per version, hashes checked on load.

models/
  registry.json          {"promoted": "20261125-101500", "history": [...]}
  20261125-101500/
    model.joblib         the fitted Triager
    model.json           version, schema hash, data hash, config, metrics,
                         thresholds, library versions, sha256 of every file

joblib files are pickles, and a pickle can run code when loaded. So a model
is loaded only after every file's sha256 matches its manifest and the
manifest's label-schema hash matches this taxonomy; anything else is refused
before unpickling. The registry pointer is replaced atomically, so it never
points at a half-written model.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib

from pipeline.contract.taxonomy import taxonomy
from pipeline.paths import models_dir

MODEL_FILE = "model.joblib"
MANIFEST = "model.json"


class ModelError(RuntimeError):
    """A model that is missing, tampered with, or made for another label schema."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def library_versions() -> dict[str, str]:
    import jieba
    import numpy
    import pandas
    import scipy
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "pandas": pandas.__version__, "jieba": jieba.__version__}


def data_hash(df) -> str:
    h = hashlib.sha256()
    for row in df[["id", "text", "cause", "risk_level", "risk_flags", "mindset"]].itertuples(index=False):
        h.update(json.dumps([str(x) if not isinstance(x, list) else x for x in row], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def save_model(model, train_df, metrics: dict, root: Path | None = None, version: str | None = None,
               note: str = "") -> Path:
    """Write a new version directory (under a temporary name, renamed when complete)."""
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    version = version or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    final = root / version
    if final.exists():
        raise ModelError(f"{final}: a model with this version already exists.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        joblib.dump(model, tmp / MODEL_FILE, compress=0)
        manifest = {
            "version": version,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "label_schema_hash": taxonomy().schema_hash(),
            "training_data_hash": data_hash(train_df),
            "n_train": int(len(train_df)),
            "feature_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()},
            "metrics": metrics,
            "thresholds": {"risk_flags": model.flag_thresholds_, "review": model.review_thresholds_},
            "libraries": library_versions(),
            "note": note,
            "files": {MODEL_FILE: sha256_file(tmp / MODEL_FILE)},
        }
        _write_json_atomic(tmp / MANIFEST, manifest)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_manifest(model_dir: Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise ModelError(f"{model_dir}: no {MANIFEST}; this is not a tousu model directory (train one with `tousu train`).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: the manifest is not valid JSON ({exc.msg}); the model directory is damaged.") from None


def verify(model_dir: Path) -> dict:
    """Check the manifest, every file's hash and the label schema; return the manifest."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: no such model directory; run `tousu train` or `tousu models list`.")
    manifest = read_manifest(model_dir)
    files = manifest.get("files") or {}
    if MODEL_FILE not in files:
        raise ModelError(f"{model_dir}: the manifest lists no {MODEL_FILE}; refusing to load.")
    for name, digest in files.items():
        path = model_dir / name
        if not path.exists():
            raise ModelError(f"{path}: missing; the model directory is incomplete. Retrain or roll back.")
        if sha256_file(path) != digest:
            raise ModelError(f"{path}: sha256 does not match {MANIFEST}; the file was changed after training. Refusing to load it; retrain or roll back.")
    expected = taxonomy().schema_hash()
    if manifest.get("label_schema_hash") != expected:
        raise ModelError(f"{model_dir}: trained for label schema {manifest.get('label_schema_hash')}, but this taxonomy is {expected}; retrain the model.")
    return manifest


def load_model(model_dir: Path | str | None = None):
    """The verified model of a directory, or the promoted one; never unpickles an unverified file."""
    model_dir = Path(model_dir) if model_dir else promoted_dir()
    manifest = verify(model_dir)
    try:
        model = joblib.load(model_dir / MODEL_FILE)
    except (AttributeError, ImportError) as exc:  # saved by another layout of the package
        raise ModelError(f"{model_dir}: saved by another version of tousu ({exc}); run `tousu train`.") from exc
    model.version_ = manifest["version"]
    return model, manifest


# ------------------------------------------------------------------ registry

def _registry_path(root: Path | None = None) -> Path:
    return (root or models_dir()) / "registry.json"


def read_registry(root: Path | None = None) -> dict:
    path = _registry_path(root)
    if not path.exists():
        return {"promoted": None, "history": []}
    return json.loads(path.read_text(encoding="utf-8"))


def versions(root: Path | None = None) -> list[str]:
    root = root or models_dir()
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists())


def promote(version: str, root: Path | None = None, reason: str = "") -> None:
    root = root or models_dir()
    verify(root / version)
    reg = read_registry(root)
    if reg.get("promoted") != version:
        reg["history"].append({"version": version, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "from": reg.get("promoted"), "reason": reason})
        reg["promoted"] = version
        _write_json_atomic(_registry_path(root), reg)


def rollback(root: Path | None = None) -> str:
    """Promote the version that was promoted before the current one."""
    root = root or models_dir()
    reg = read_registry(root)
    current = reg.get("promoted")
    previous = next((h["from"] for h in reversed(reg["history"]) if h["version"] == current and h.get("from")), None)
    if not previous:
        raise ModelError("nothing to roll back to: the promoted model has no earlier version.")
    promote(previous, root, reason=f"rollback from {current}")
    return previous


def promoted_dir(root: Path | None = None) -> Path:
    root = root or models_dir()
    reg = read_registry(root)
    if not reg.get("promoted"):
        raise ModelError(f"{root}: no promoted model yet; run `tousu train` (the quick start does it for you).")
    return root / reg["promoted"]
