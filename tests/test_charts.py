"""Charts people can read: Chinese glyphs render, colours differ, and a missing font is said out loud."""
from __future__ import annotations

import warnings

import pytest

from pipeline import charts


@pytest.mark.parametrize("n", [5, 10, 12, 20, 31])
def test_palette_colours_are_all_different(n):
    colours = charts.palette(n)
    assert len(colours) == n and len(set(colours)) == n


def _missing_glyph_warnings(draw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = draw()
        fig.canvas.draw()
    return [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]


def test_chinese_titles_and_labels_render_without_missing_glyphs():
    if charts.cjk_font() is None:
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk)")
    fig = lambda: charts.barh(["理赔与给付责任的争议", "业务员"], [3, 5], title="投诉原因类别", xlabel="件数")  # noqa: E731
    assert _missing_glyph_warnings(fig) == []


def test_the_glyph_check_would_see_boxes_without_a_cjk_font():
    """The negative control for the test above: matplotlib's own font has no Chinese and says so."""
    import matplotlib.pyplot as plt

    def draw():
        fig, ax = plt.subplots()
        ax.set_title("投诉原因", fontfamily="DejaVu Sans")
        return fig

    assert _missing_glyph_warnings(draw)


def test_no_cjk_font_warns_once_and_charts_still_draw(monkeypatch):
    monkeypatch.setattr(charts, "CJK_FAMILIES", ("No Such Font CJK",))
    monkeypatch.setattr(charts.font_manager, "findSystemFonts", lambda *a, **k: [])
    charts.cjk_font.cache_clear()
    try:
        with pytest.warns(UserWarning, match="fonts-noto-cjk"):
            assert charts.cjk_font() is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert charts.data_uri(charts.barh(["a"], [1], title="t", xlabel="x")).startswith("data:image/png;base64,")
    finally:
        charts.cjk_font.cache_clear()
