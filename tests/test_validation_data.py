"""The independent validation files load in the spec's format (never trained on)."""
import pytest

from pipeline.io import read_labelled


@pytest.mark.parametrize("name", ["validation.jsonl", "validation_transcripts.jsonl"])
def test_validation_file_loads(shared, name):
    path = shared / "data" / name
    if not path.exists():
        pytest.skip(f"{path} not present in this checkout (../shared/data)")
    df = read_labelled(path)
    assert len(df) > 0
    assert all(1 <= len(c) <= 3 for c in df["cause"])
