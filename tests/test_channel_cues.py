"""The channel read by one regex per channel is the channel the cue-by-cue reading gives."""
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.handling.channel import infer_channel
from pipeline.knowledge import lexicon_yaml


def _cue_by_cue(text: str) -> str:
    lex = lexicon_yaml("channels.yaml")
    for channel in lex["order"]:
        if any(cue in text for cue in lex["cues"][channel]):
            return channel
    return "unknown"


_CUES = [c for cues in lexicon_yaml("channels.yaml")["cues"].values() for c in cues]


@given(st.lists(st.one_of(st.sampled_from(_CUES), st.text(max_size=3)), max_size=6).map("".join))
@settings(max_examples=500, deadline=None)
def test_the_same_channel_as_cue_by_cue(text):
    assert infer_channel(text) == _cue_by_cue(text)
    assert infer_channel(text, is_transcript=True) == "phone"
