"""Where the runtime knowledge lives: taxonomy, lexicons, playbook and the training corpus.

They ship inside the package (read through importlib.resources), so an
installed wheel runs from any folder. A complaint centre replaces the
playbook or the lexicons with its own folder (`--playbook DIR`,
`TOUSU_PLAYBOOK`; `--lexicon DIR`, `TOUSU_LEXICON`) instead of editing files
inside the installed package; the replacement passes the same schema check.
"""
from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

__all__ = ["bundled", "playbook_dir", "lexicon_dir", "lexicon_file", "taxonomy_path", "corpus_dir",
           "lexicon_yaml", "check_lexicon_dir", "LEXICON_FILES", "PLAYBOOK_ENV", "LEXICON_ENV"]

PLAYBOOK_ENV = "TOUSU_PLAYBOOK"
LEXICON_ENV = "TOUSU_LEXICON"


@lru_cache(maxsize=256)
def bundled(*parts: str) -> Path:
    """A path inside the packaged knowledge folder (a real file on every normal install); remembered,
    since the package does not move and the channel and facts lexicons are looked up once per note."""
    return Path(str(files(__name__).joinpath(*parts)))


def _override(env: str, name: str) -> Path | None:
    value = os.environ.get(env)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"${env}={value}: not a folder of {name} files")
    return path


def playbook_dir() -> Path:
    """The centre's own playbook ($TOUSU_PLAYBOOK) or the bundled one."""
    return _override(PLAYBOOK_ENV, "playbook") or bundled("playbook")


def lexicon_dir() -> Path:
    """The centre's own lexicon folder ($TOUSU_LEXICON) or the bundled one."""
    return _override(LEXICON_ENV, "lexicon") or bundled("lexicon")


def lexicon_file(name: str) -> Path:
    """One lexicon file; a centre's folder may replace some files and inherit the rest."""
    own = _override(LEXICON_ENV, "lexicon")
    if own is not None and (own / name).exists():
        return own / name
    return bundled("lexicon", name)


def safe_yaml(stream):
    """yaml.safe_load, with LibYAML's parser where installed: the same constructors, so the same data,
    several times faster (every command's start parses the lexicons, taxonomy and playbook)."""
    import yaml

    return yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)


LEXICON_FILES = ("cause_keywords.yaml", "channels.yaml", "demand.yaml", "facts.yaml", "insurance_terms.txt", "markers.yaml",
                 "stopwords.txt", "turns.yaml")


def check_lexicon_dir(path: Path) -> None:
    """A centre's lexicon folder: only known file names, YAML files that parse to a mapping.

    Raises ValueError naming the file and the problem.
    """
    import yaml

    problems = []
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        problems.append(f"{path}: no lexicon files (expected some of {', '.join(LEXICON_FILES)})")
    for f in files:
        if f.name not in LEXICON_FILES:
            problems.append(f"{f}: not a lexicon file tousu reads (known: {', '.join(LEXICON_FILES)})")
        elif f.suffix == ".yaml":
            try:
                raw = safe_yaml(f.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                problems.append(f"{f}: not valid YAML ({str(exc).splitlines()[0]})")
                continue
            if not isinstance(raw, dict):
                problems.append(f"{f}: must be a mapping at the top level")
    if problems:
        raise ValueError("; ".join(problems))


def taxonomy_path() -> Path:
    return bundled("taxonomy.yaml")


def corpus_dir() -> Path:
    """The labelled corpus the default model is trained from (first use needs it)."""
    return bundled("corpus")


_YAML_CACHE: dict[Path, dict] = {}


def lexicon_yaml(name: str) -> dict:
    """A lexicon YAML file, parsed once per process (facts.yaml serves both PII and facts)."""
    path = lexicon_file(name)
    if path not in _YAML_CACHE:
        with open(path, encoding="utf-8") as fh:
            _YAML_CACHE[path] = safe_yaml(fh)
    return _YAML_CACHE[path]
