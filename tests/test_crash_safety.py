"""A tag run killed with SIGKILL at random points and resumed gives exactly the uninterrupted rows."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.model.registry import promote, save_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _tag(src: Path, out: Path, env: dict, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cli", "tag", str(src), "-o", str(out), "--chunk-size", "40", "-q"]
    if resume:
        cmd.append("--resume")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux /proc; empty where there is none)."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]}


def test_sigkill_and_resume_loses_and_doubles_nothing(tmp_path, small_model, small_corpus):
    root = tmp_path / "models"
    save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    promote("v1", root)
    env = dict(os.environ, TOUSU_MODELS_DIR=str(root))
    texts = list(small_corpus[0]["text"])
    rows = pd.DataFrame({"id": [f"k{i}" for i in range(5000)], "text": [texts[i % len(texts)] for i in range(5000)], "seq": range(5000)})
    src = tmp_path / "in.jsonl"
    rows.to_json(src, orient="records", lines=True, force_ascii=False)

    whole = tmp_path / "whole.jsonl"
    done = _tag(src, whole, env, resume=False)
    assert done.wait(timeout=600) == 0, done.stderr.read()
    expected = pd.read_json(whole, lines=True)

    rng = random.Random(11)
    killed_runs, scale = 0, 1.0
    orphans: list[set[int]] = []  # the tagging workers of each killed run
    for attempt in range(8):
        if killed_runs == 3:
            break
        out = tmp_path / f"killed{attempt}.jsonl"
        kills = 0
        proc = _tag(src, out, env, resume=False)
        while True:
            time.sleep(rng.uniform(1.0, 3.0) * scale)
            if proc.poll() is not None:
                break
            workers = _children(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            orphans.append(workers)
            scale *= 1.25  # a slow or busy machine gets further into the file at every try
            if out.exists():  # the output appears only when complete, never half-written
                assert pd.read_json(out, lines=True).equals(expected)
            proc = _tag(src, out, env, resume=True)
        assert proc.returncode == 0, proc.stderr.read()
        got = pd.read_json(out, lines=True)
        assert got.equals(expected), f"attempt {attempt}: {len(got)} rows vs {len(expected)}"
        if kills:
            killed_runs += 1
        else:
            scale /= 2  # this machine finished before the first kill: kill sooner next time
    assert killed_runs == 3
    # the killed runs' workers go with them, not left waiting on their task queue holding memory
    deadline = time.time() + 15
    left = set().union(*orphans)
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = _alive(left)
    if Path("/proc").exists() and (os.cpu_count() or 1) > 1:  # tag runs workers there: some were killed
        assert any(orphans), "no killed run had started its workers: the check saw nothing"
    assert not left, f"{len(left)} worker process(es) of killed runs still running"
