"""The installation's secret key, for keyed hashes of personal numbers.

A repeat complainant is recognised by the same phone or ID number in several
notes; the number itself must never be shown or kept, and a plain hash of an
11-digit phone number is reversed by trying every number. An HMAC with a key
the reader does not have is not. The key is $TOUSU_SECRET when set (share it
between machines whose reports must agree), else a random key created once
in the user's data folder, readable by that user only.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["secret_key", "SECRET_ENV", "KEY_FILE"]

SECRET_ENV = "TOUSU_SECRET"
KEY_FILE = "secret.key"


def _key_file() -> Path:
    from pipeline.paths import user_data_dir

    return user_data_dir() / KEY_FILE


def secret_key() -> bytes:
    """$TOUSU_SECRET as bytes, else the per-user key file's 32 random bytes (created on first use, mode 600)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode("utf-8")
    path = _key_file()
    if not path.exists():
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never overwrites: of two processes starting at once, one key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes()
