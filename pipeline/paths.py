"""Where tousu keeps what it writes: models and the user's data folder, resolved in one place.

Models: $TOUSU_MODELS_DIR, else `models/` of the checkout when tousu runs
from a source checkout (an editable install or `python -m cli`), else
`models/` in the user's data folder (an installed wheel: nothing is ever
written inside site-packages).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["checkout_root", "user_data_dir", "models_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout this package was imported from, or None for an installed package."""
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "cli.py").is_file() and "site-packages" not in root.parts:
        return root
    return None


def user_data_dir() -> Path:
    """The per-user data folder ($XDG_DATA_HOME/tousu on Linux), created on first use."""
    import platformdirs

    folder = Path(platformdirs.user_data_dir("tousu", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def models_dir() -> Path:
    if os.environ.get("TOUSU_MODELS_DIR"):
        return Path(os.environ["TOUSU_MODELS_DIR"])
    root = checkout_root()
    return root / "models" if root is not None else user_data_dir() / "models"
