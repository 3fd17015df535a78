"""The installation's secret: one key that lives outside the models folder and the case store.

Where it comes from: $TOUSU_SECRET when set (at least 16 characters; share
it between machines that must accept each other's models or agree on keyed
hashes), else `secret.key` in the user's data folder: 32 random bytes created
on first use with mode 0600, used as they are. Whoever can read it can sign
models that tousu will unpickle, so a key file that others may read, or one
reached through a symbolic link, is refused.

Each use gets its own key derived from the secret (`derived_key(purpose)`),
so a value computed for one purpose (a model signature, a keyed note hash)
says nothing about another.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from pipeline.paths import user_data_dir

__all__ = ["SECRET_ENV", "KEY_FILE", "SecretError", "secret_key", "derived_key", "key_file"]

SECRET_ENV = "TOUSU_SECRET"
KEY_FILE = "secret.key"
MIN_CHARS = 16


class SecretError(RuntimeError):
    """The secret is too short, unreadable, or readable by other users."""


def key_file() -> Path:
    """Where the key file lives when $TOUSU_SECRET is not set."""
    return user_data_dir() / KEY_FILE


def _create(path: Path) -> None:
    """Write a new key under a temporary name, then link it into place: a second process
    starting at the same moment either wins or reads the complete file, never a half-written one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SecretError(f"{path}: cannot read the secret key ({exc.strerror}); set {SECRET_ENV} or fix the file.") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SecretError(f"{path}: the secret key is not a regular file.")
        if mode & 0o077:
            raise SecretError(f"{path}: the secret key may be read by other users (mode {stat.S_IMODE(mode):04o}); "
                              f"run `chmod 600 {path}`.")
        key = fh.read()
    if len(key) < MIN_CHARS:
        raise SecretError(f"{path}: the secret key is shorter than {MIN_CHARS} bytes; delete the file to get a new one.")
    return key


def secret_key() -> bytes:
    """The installation's secret: $TOUSU_SECRET, else the key file (created 0600 on first use)."""
    value = os.environ.get(SECRET_ENV)
    if value:
        if len(value) < MIN_CHARS:
            raise SecretError(f"{SECRET_ENV} is shorter than {MIN_CHARS} characters; use a long random value.")
        return value.encode("utf-8")
    path = key_file()
    if not path.exists():
        _create(path)
    return _read(path)


def derived_key(purpose: str) -> bytes:
    """A key for one purpose only (e.g. "model-manifest"), derived from the secret."""
    return hmac.new(secret_key(), f"tousu:{purpose}".encode("utf-8"), hashlib.sha256).digest()
