"""`tousu tag` uses every core unless told otherwise (the output does not depend on the count)."""
import os
import sys

import pytest
from click.testing import CliRunner

import cli


@pytest.fixture
def seen(monkeypatch, registry):
    """The keyword arguments `tag` hands to tag_file (which is not run)."""
    import pipeline.apps.batch as batch

    got: dict = {}

    def fake_tag_file(model, model_dir, input_path, output_path, **kw):
        got.update(kw)
        return batch.TagSummary(rows=1)

    monkeypatch.setattr(batch, "tag_file", fake_tag_file)
    return got


def _tag(tmp_path, *extra: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "客户要求退保"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(tmp_path / "out.jsonl"), "-q", *extra])
    assert result.exit_code == 0, result.output


def test_every_core_by_default(seen, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    _tag(tmp_path)
    assert seen["jobs"] == (os.cpu_count() or 1)


def test_jobs_given_are_kept(seen, tmp_path):
    _tag(tmp_path, "--jobs", "1")
    assert seen["jobs"] == 1


def test_one_process_by_default_on_windows(seen, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    _tag(tmp_path)
    assert seen["jobs"] == 1
