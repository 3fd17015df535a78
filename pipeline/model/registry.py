"""Model versions on disk: a signed manifest per version, checked before anything is unpickled.

models/
  registry.json          {"promoted": "20261125-101500-123", "history": [...]}
  20261125-101500-123/
    model.joblib         the fitted Triager (a pickle)
    arrays.json          its prediction state as plain arrays (pipeline.model.arrays): what
    arrays.bin           `tousu score`, `tag` and `serve` load, without scikit-learn
    model.json           version, schema hash, data hash, config, metrics,
                         thresholds, library versions, sha256 of every file,
                         and an HMAC-SHA256 signature over all of it

A pickle can run code when loaded, and a sha256 beside the file proves only
that the two agree: whoever can replace the file can rewrite the hash. So the
manifest is signed with a key derived from the installation's secret
(pipeline.secret: $TOUSU_SECRET or a 0600 key file in the user's data folder),
which never lives in the models folder. A model is unpickled only when

- it is a version directory directly inside the models folder, its name
  matching `VERSION_PATTERN` (no path from registry.json, `--model` or
  `promote` reaches outside it, symbolic links included);
- its manifest's signature checks out with this installation's key;
- the label schema is this taxonomy's;
- the sha256 of the bytes read matches the manifest, and those same bytes,
  read once, are what is unpickled (a file swapped after the check is never
  opened again).

Anything else is a ModelError (exit 4), raised before unpickling. A
prediction-only load (`load_model(predict_only=True)`) checks every file the
same way but builds the model from the array files, never unpickling; a version saved
before the array format, or whose model the format does not reproduce, loads
from its pickle. The
registry pointer is replaced atomically; it holds the promotion history,
which rollback walks back one promotion at a time.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import platform
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.contract.taxonomy import taxonomy
from pipeline.paths import models_dir
from pipeline.secret import SecretError, derived_key

MODEL_FILE = "model.joblib"
ARRAY_FILES = ("arrays.json", "arrays.bin")  # pipeline.model.arrays.META_FILE, BLOB_FILE
MANIFEST = "model.json"
REGISTRY = "registry.json"
#: what a version name may be: the timestamps `save_model` makes (20261125-101500-123) and names
#: given to it; no dots or slashes, so a version is always one folder inside the models folder
VERSION_PATTERN = r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}"
_VERSION_RE = re.compile(VERSION_PATTERN)
_FILE_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]*(\.[0-9A-Za-z_-]+)*")
SIGNATURE_ALG = "HMAC-SHA256"
_KEY_PURPOSE = "model-manifest-v1"


class ModelError(RuntimeError):
    """A model that is missing, unsigned, tampered with, outside the models folder, or made for other labels."""


def is_version_name(name: str) -> bool:
    return isinstance(name, str) and _VERSION_RE.fullmatch(name) is not None


def _check_version_name(name: Any, where: str = "version") -> str:
    if not is_version_name(name):
        raise ModelError(f"{name!r} is not a model version name ({where}); versions are folder names "
                         f"inside the models folder matching {VERSION_PATTERN}, see `tousu models list`.")
    return name


def _write_json_atomic(path: Path, data: Any) -> None:
    from pipeline.io import replacing

    with replacing(path, suffix="") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)


def _read_bytes(path: Path) -> bytes:
    """One read of a regular file, never through a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; the model directory is incomplete. Retrain or roll back.") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror}); model files must be plain files "
                         "inside the models folder, not links.") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


# ------------------------------------------------------------------ signing

def _model_key() -> bytes:
    try:
        return derived_key(_KEY_PURPOSE)
    except SecretError as exc:
        raise ModelError(f"cannot check model signatures: {exc}") from None


def key_id(key: bytes | None = None) -> str:
    """A short name for the signing key, so a refusal can say 'signed with another key'."""
    return hashlib.sha256(b"tousu key id:" + (key or _model_key())).hexdigest()[:12]


def _signed_bytes(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(manifest: dict) -> dict:
    """The manifest with its signature: HMAC-SHA256 over its canonical JSON, with the installation's key."""
    key = _model_key()
    value = hmac.new(key, _signed_bytes(manifest), hashlib.sha256).hexdigest()
    return {**manifest, "signature": {"alg": SIGNATURE_ALG, "key_id": key_id(key), "value": value}}


def _signature_problem(manifest: dict) -> tuple[str, str] | None:
    """(a few words, the whole sentence) saying why the signature is refused; None when it checks out."""
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("value"), str):
        return ("not signed", "the manifest is not signed; tousu runs only models it signed itself. "
                "Retrain with `tousu train` (models made before signing must be retrained).")
    if sig.get("alg") != SIGNATURE_ALG:
        return ("unknown signature", f"signed with {sig.get('alg')!r}, not {SIGNATURE_ALG}; refusing to load it.")
    key = _model_key()
    expected = hmac.new(key, _signed_bytes(manifest), hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected, sig["value"]):
        return None
    if sig.get("key_id") != key_id(key):
        return ("signed with another key", f"signed with another key (key id {sig.get('key_id')}, this installation's "
                f"is {key_id(key)}); set TOUSU_SECRET to the secret that signed it, or retrain.")
    return ("signature does not match", "the manifest's signature does not match its content; the model was changed "
            "after training. Refusing to load it; retrain or roll back.")


def signature_problem(manifest: dict) -> str | None:
    """Why this manifest's signature would be refused, in a few words (for `models list`); None when it checks out."""
    problem = _signature_problem(manifest)
    return problem[0] if problem else None


def _check_signature(manifest: dict, where: Path) -> None:
    problem = _signature_problem(manifest)
    if problem:
        raise ModelError(f"{where}: {problem[1]}")


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
    """Write a new version directory, its manifest signed (under a temporary name, renamed when complete)."""
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    version = _check_version_name(version or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3])
    final = root / version
    if final.exists():
        raise ModelError(f"{final}: a model with this version already exists.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        import joblib

        joblib.dump(model, tmp / MODEL_FILE, compress=0)
        files = {MODEL_FILE: hashlib.sha256(_read_bytes(tmp / MODEL_FILE)).hexdigest()}
        arrays = _write_arrays(model, train_df, tmp)
        files.update(arrays.pop("files", {}))
        manifest = sign({
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
            "array_format": arrays,
            "files": files,
        })
        _write_json_atomic(tmp / MANIFEST, manifest)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


#: notes the array model must triage exactly as the fitted model before it is written (with the
#: first training notes): empty, white space, Latin, emoji, a lone surrogate, a repeated word
_CHECK_NOTES = ["", " ", "ab  \n\t c", "😀😀x", "\ud800退保", "退保\n\n\n退保", "1.5万元 3,000元",
                "客户称再不退保就去找记者曝光，已向银保监会投诉"]


def _write_arrays(model, train_df, folder: Path) -> dict:
    """The array files beside the pickle, when the array model gives the fitted model's predictions on a
    sample of notes bit for bit; else none, with the reason (the version then loads from its pickle)."""
    from pipeline.model import arrays

    try:
        meta, blob = arrays.to_arrays(model)
        meta_bytes, blob_bytes = arrays.dump(meta, blob)
        fast = arrays.ArrayTriager.from_bytes(meta_bytes, blob_bytes)
        texts = [str(t) for t in list(train_df["text"])[:64]] + _CHECK_NOTES
        problem = arrays.same_predictions(model, fast, texts)
    except arrays.Unsupported as exc:
        return {"written": False, "why": str(exc)}
    if problem:
        return {"written": False, "why": f"the array model does not reproduce the fitted one: {problem}"}
    files = {}
    for name, data in zip(ARRAY_FILES, (meta_bytes, blob_bytes)):
        (folder / name).write_bytes(data)
        files[name] = hashlib.sha256(_read_bytes(folder / name)).hexdigest()
    return {"written": True, "format": arrays.FORMAT, "files": files}


def model_path(model_dir: Path | str, root: Path | None = None) -> Path:
    """The version directory `model_dir` names (a version name, or a path to it), which must be a
    folder directly inside the models folder; anything else is refused before it is read."""
    root = Path(root or models_dir())
    given = Path(model_dir)
    path = root / given if len(given.parts) == 1 and not given.is_absolute() else given
    resolved, inside = path.resolve(), root.resolve()
    if resolved.parent != inside:
        raise ModelError(f"{model_dir}: outside the models folder {root}; tousu loads models only from there "
                         "(set TOUSU_MODELS_DIR to use another folder).")
    _check_version_name(resolved.name, where=str(model_dir))
    if not resolved.is_dir():
        raise ModelError(f"{model_dir}: no such model directory; run `tousu train` or `tousu models list`.")
    return resolved


def read_manifest(model_dir: Path) -> dict:
    """A version's manifest as written, unchecked: for listing; `verify` before trusting it."""
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise ModelError(f"{model_dir}: no {MANIFEST}; this is not a tousu model directory (train one with `tousu train`).")
    return _parse_manifest(_read_bytes(path), path)


def _parse_manifest(data: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: the manifest is not valid JSON ({exc}); the model directory is damaged.") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: the manifest is not a JSON object; the model directory is damaged.")
    return manifest


def _checked(model_dir: Path | str, root: Path | None = None, only: tuple[str, ...] | None = None
             ) -> tuple[Path, dict, dict[str, bytes]]:
    """The directory, its verified manifest and the verified bytes of every file it lists (or only of
    the files in `only`, when the manifest lists them all: a prediction-only load; the others are
    still read and checked, so a changed file refuses the version whichever files a command uses)."""
    path = model_path(model_dir, root)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise ModelError(f"{path}: no {MANIFEST}; this is not a tousu model directory (train one with `tousu train`).")
    manifest = _parse_manifest(_read_bytes(manifest_path), manifest_path)
    _check_signature(manifest, manifest_path)
    expected = taxonomy().schema_hash()
    if manifest.get("label_schema_hash") != expected:
        raise ModelError(f"{path}: trained for label schema {manifest.get('label_schema_hash')}, but this taxonomy is {expected}; retrain the model.")
    if manifest.get("version") != path.name:
        raise ModelError(f"{path}: the manifest is for version {manifest.get('version')!r}, not {path.name!r}; "
                         "a version's folder must keep its name.")
    files = manifest.get("files") or {}
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise ModelError(f"{path}: the manifest lists no {MODEL_FILE}; refusing to load.")
    for name in files:
        if not (isinstance(name, str) and _FILE_RE.fullmatch(name)):
            raise ModelError(f"{path}: the manifest lists {name!r}, which is not a file name inside the version folder.")
    keep = set(files) if only is None or not all(n in files for n in only) else set(only)
    contents: dict[str, bytes] = {}
    for name, digest in files.items():  # every file is checked, even one this load does not use
        data = _read_bytes(path / name)
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), str(digest)):
            raise ModelError(f"{path / name}: sha256 does not match {MANIFEST}; the file was changed after training. Refusing to load it; retrain or roll back.")
        if name in keep:
            contents[name] = data
    return path, manifest, contents


def verify(model_dir: Path | str, root: Path | None = None) -> dict:
    """Check place, signature, label schema and every file's hash; return the manifest."""
    return _checked(model_dir, root)[1]


def load_model(model_dir: Path | str | None = None, root: Path | None = None, *, predict_only: bool = False):
    """The verified model of a version (name or path inside the models folder), or the promoted one.

    The bytes that are hashed are the bytes that are unpickled: the file is read once.
    `predict_only`: the array model (pipeline.model.arrays.ArrayTriager: triage and probabilities,
    no scikit-learn import, a fraction of the start) where the version has one, else the Triager."""
    root = Path(root or models_dir())
    path, manifest, contents = _checked(model_dir if model_dir else promoted_dir(root), root,
                                        only=ARRAY_FILES if predict_only else None)
    if all(name in contents for name in ARRAY_FILES) and MODEL_FILE not in contents:
        from pipeline.model.arrays import ArrayTriager

        try:
            model = ArrayTriager.from_bytes(*(contents[name] for name in ARRAY_FILES))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: the array files cannot be read ({exc}); run `tousu train`.") from exc
    else:
        import joblib

        try:
            model = joblib.load(io.BytesIO(contents[MODEL_FILE]))
        except (AttributeError, ImportError) as exc:  # saved by another layout of the package
            raise ModelError(f"{path}: saved by another version of tousu ({exc}); run `tousu train`.") from exc
    model.version_ = manifest["version"]
    return model, manifest


# ------------------------------------------------------------------ registry

@dataclass(frozen=True)
class Promotion:
    """One line of the promotion history: which version became the promoted one, when, from what, why."""

    version: str
    at: str
    previous: str | None
    reason: str
    kind: str  # "promote" or "rollback"

    @classmethod
    def of(cls, entry: dict) -> "Promotion":
        reason = str(entry.get("reason") or "")
        # registries written before `kind` existed marked a rollback by its reason only
        kind = entry.get("kind") or ("rollback" if reason.startswith("rollback from") else "promote")
        return cls(entry["version"], str(entry.get("at") or ""), entry.get("from"), reason, kind)


def _registry_path(root: Path | None = None) -> Path:
    return Path(root or models_dir()) / REGISTRY


@contextmanager
def _registry_lock(root: Path):
    """One read-modify-write of registry.json at a time (two rollbacks must not both step back once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".registry.lock", "a") as fh:
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock, the write is still atomic
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_registry(root: Path | None = None) -> dict:
    """registry.json, checked: every version it names is a version name (never a path)."""
    path = _registry_path(root)
    if not path.exists():
        return {"promoted": None, "history": []}
    try:
        reg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); restore it or promote a version again.") from None
    if not isinstance(reg, dict) or not isinstance(reg.get("history", []), list):
        raise ModelError(f"{path}: not a registry (needs promoted and history); restore it or promote a version again.")
    reg.setdefault("history", [])
    if reg.get("promoted") is not None:
        _check_version_name(reg["promoted"], where=f"{path}: promoted")
    for entry in reg["history"]:
        if not isinstance(entry, dict):
            raise ModelError(f"{path}: a history entry is not an object; restore the file or promote a version again.")
        _check_version_name(entry.get("version"), where=f"{path}: history")
        if entry.get("from") is not None:
            _check_version_name(entry["from"], where=f"{path}: history")
    return reg


def history(root: Path | None = None) -> list[Promotion]:
    """Every promotion and rollback, oldest first."""
    return [Promotion.of(e) for e in read_registry(root)["history"]]


def promotion_stack(entries: list[Promotion]) -> list[str]:
    """The versions a rollback walks back through, oldest first, the promoted one last.

    A promotion puts its version on top; a rollback takes the line back to where that
    version was, dropping what was promoted after it. So rolling back twice goes two
    promotions back instead of returning to the version just left."""
    stack: list[str] = []
    for e in entries:
        if e.kind == "rollback" and e.version in stack:
            del stack[len(stack) - stack[::-1].index(e.version):]
        elif not stack or stack[-1] != e.version:
            stack.append(e.version)
    return stack


def rollback_line(root: Path | None = None) -> list[str]:
    """The earlier versions rollback would go to, newest first."""
    reg = read_registry(root)
    current = reg.get("promoted")
    if not current:
        return []
    stack = promotion_stack([Promotion.of(e) for e in reg["history"]])
    if not stack or stack[-1] != current:
        stack.append(current)
    pruned = {e.get("version") for e in reg.get("pruned", []) if isinstance(e, dict)}
    return [v for v in stack[-2::-1] if v not in pruned]


def versions(root: Path | None = None) -> list[str]:
    root = Path(root or models_dir())
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir()
                  if is_version_name(p.name) and p.is_dir() and not p.is_symlink() and (p / MANIFEST).exists())


def _record(root: Path, version: str, reason: str, kind: str) -> None:
    reg = read_registry(root)
    if reg.get("promoted") != version:
        reg["history"].append({"version": version, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "from": reg.get("promoted"), "reason": reason, "kind": kind})
        reg["promoted"] = version
        _write_json_atomic(_registry_path(root), reg)


def promote(version: str, root: Path | None = None, reason: str = "") -> None:
    """Make a verified version the promoted one (every command and the service use it)."""
    root = Path(root or models_dir())
    _check_version_name(version)
    verify(version, root)
    with _registry_lock(root):
        _record(root, version, reason, "promote")


def rollback(root: Path | None = None, to: str | None = None, reason: str = "") -> str:
    """Go back one promotion (or to `to`, an earlier version of the promotion line); return the version."""
    root = Path(root or models_dir())
    with _registry_lock(root):
        current = read_registry(root).get("promoted")
        if not current:
            raise ModelError(f"{root}: no promoted model yet; nothing to roll back.")
        line = rollback_line(root)
        if to is None:
            if not line:
                raise ModelError(f"nothing to roll back to: {current} is the first promoted version (see `tousu models list`).")
            target = line[0]
        else:
            _check_version_name(to)
            if to == current:
                raise ModelError(f"{to} is already the promoted version.")
            if to not in line:
                raise ModelError(f"{to} is not an earlier promotion to roll back to (rollback can go to: "
                                 f"{', '.join(line) or 'none'}); use `tousu models promote {to}` to promote it.")
            target = to
        verify(target, root)
        _record(root, target, f"rollback from {current}" + (f": {reason}" if reason else ""), "rollback")
    return target


@dataclass(frozen=True)
class PrunePlan:
    """What `prune` removes and why the rest stays."""

    remove: list[str]
    keep: dict[str, str]  # version -> why it stays


def prune_plan(root: Path | None = None, keep_newest: int = 5) -> PrunePlan:
    """Versions to delete: all but the promoted one, the first `keep_newest` steps of the rollback
    line and the `keep_newest` newest versions (a challenger not yet promoted is among them)."""
    if keep_newest < 0:
        raise ModelError(f"keep must be 0 or more, got {keep_newest}.")
    root = Path(root or models_dir())
    reg = read_registry(root)
    keep: dict[str, str] = {}
    if reg.get("promoted"):
        keep[reg["promoted"]] = "promoted"
    for step, v in enumerate(rollback_line(root)[:keep_newest], 1):
        keep.setdefault(v, f"rollback step {step}")
    present = versions(root)
    for v in present[::-1][:keep_newest]:
        keep.setdefault(v, f"one of the {keep_newest} newest")
    return PrunePlan(remove=[v for v in present if v not in keep], keep={v: keep[v] for v in present if v in keep})


def prune(root: Path | None = None, keep_newest: int = 5) -> PrunePlan:
    """Delete the versions `prune_plan` names, under the registry lock, and note each in registry.json.

    A version is first renamed to a hidden name, then deleted: a reader never sees half a folder
    under a version name, and an interrupted prune leaves only a hidden folder behind."""
    root = Path(root or models_dir())
    with _registry_lock(root):
        plan = prune_plan(root, keep_newest)
        if not plan.remove:
            return plan
        for v in plan.remove:
            hidden = root / f".pruned-{v}-{os.getpid()}"
            os.replace(root / v, hidden)
            shutil.rmtree(hidden)
        reg = read_registry(root)
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        reg.setdefault("pruned", []).extend({"version": v, "at": at} for v in plan.remove)
        _write_json_atomic(_registry_path(root), reg)
    return plan


def promoted_dir(root: Path | None = None) -> Path:
    root = Path(root or models_dir())
    reg = read_registry(root)
    if not reg.get("promoted"):
        raise ModelError(f"{root}: no promoted model yet; run `tousu train` (the quick start does it for you).")
    return root / reg["promoted"]
