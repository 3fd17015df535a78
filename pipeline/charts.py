"""Charts people can read: Chinese glyphs that render, colours that differ, PNGs inside the page.

Matplotlib's default font has no Chinese glyphs (every character becomes a
box) and its default colour cycle repeats after ten lines. Every chart in
tousu's reports is drawn through this module: `cjk_font()` finds a CJK font
(Noto Sans CJK from Debian's fonts-noto-cjk first) and warns once when there
is none; `palette(n)` gives n colours that are told apart (tab10, tab20 with
its dark shades first, then tab20b/tab20c); `data_uri(fig)` turns a figure
into an embedded PNG so a report is one self-contained file.
"""
from __future__ import annotations

import base64
import io
import warnings
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: reports are written from servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["cjk_font", "palette", "style", "data_uri", "save", "barh", "lines", "stacked_barh", "heatmap", "NO_FONT_WARNING"]

#: families tried in order; the first one installed wins
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Noto Sans CJK JP",
                "Noto Sans CJK TC", "Noto Serif CJK SC", "AR PL UMing CN", "AR PL UKai CN")
#: font file names worth registering when matplotlib's font cache was built before the font was installed
_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "simhei", "msyh", "pingfang", "uming", "ukai")
NO_FONT_WARNING = ("no CJK font found for charts: Chinese labels will show as boxes; install one "
                   "(Debian/Ubuntu: apt-get install fonts-noto-cjk)")
_SAMPLE = "投诉原因风险"


def _has_glyphs(path: str) -> bool:
    try:
        from matplotlib.ft2font import FT2Font

        font = FT2Font(path)
        return all(font.get_char_index(ord(ch)) for ch in _SAMPLE)
    except Exception:  # noqa: BLE001 - an unreadable font file is simply not a candidate
        return False


def _installed() -> dict[str, str]:
    return {f.name: f.fname for f in font_manager.fontManager.ttflist}


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None (with a warning) when there is none."""
    for attempt in range(2):
        installed = _installed()
        for family in CJK_FAMILIES:
            if family in installed and _has_glyphs(installed[family]):
                return family
        if attempt == 0:  # the cache may predate the font: register matching system font files and look again
            for path in font_manager.findSystemFonts():
                if any(h in path.lower().replace("-", "").replace("_", "") for h in _FILE_HINTS):
                    try:
                        font_manager.fontManager.addfont(path)
                    except Exception:  # noqa: BLE001
                        continue
    warnings.warn(NO_FONT_WARNING, stacklevel=2)
    return None


def palette(n: int) -> list[str]:
    """n colours that are told apart: tab10 up to 10, tab20 (dark shades first) up to 20, then tab20b and tab20c."""
    cmaps = plt.colormaps
    if n <= 10:
        return [to_hex(c) for c in cmaps["tab10"].colors[:n]]
    t20 = cmaps["tab20"].colors
    colours = [t20[i] for i in range(0, 20, 2)] + [t20[i] for i in range(1, 20, 2)]
    colours += list(cmaps["tab20b"].colors) + list(cmaps["tab20c"].colors)
    out = [to_hex(c) for c in colours]
    seen: list[str] = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return [seen[i % len(seen)] for i in range(n)]


@contextmanager
def style() -> Iterator[None]:
    """Chinese-capable font, a proper minus sign and a light grid for the charts drawn inside."""
    family = cjk_font()
    rc = {"font.family": "sans-serif", "axes.unicode_minus": False, "axes.grid": True, "grid.alpha": 0.3,
          "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100}
    rc["font.sans-serif"] = ([family] if family else []) + ["DejaVu Sans"]
    with matplotlib.rc_context(rc):
        yield


def data_uri(fig: Figure, dpi: int = 110) -> str:
    """The figure as a `data:image/png;base64,...` URI (and closed)."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save(fig: Figure, path, dpi: int = 110) -> None:
    """The figure as a PNG file (and closed)."""
    with style():
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def barh(labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str,
         colors: Sequence[str] | None = None, legend: dict[str, str] | None = None, width: float = 7.5,
         annotate: bool = True) -> Figure:
    """Horizontal bars, first label on top, each bar's value written beside it; `legend`: name -> colour."""
    with style():
        fig, ax = plt.subplots(figsize=(width, max(1.6, 0.34 * len(labels) + 0.9)))
        ys = list(range(len(labels)))[::-1]
        ax.barh(ys, values, color=list(colors) if colors else palette(len(labels)), height=0.7)
        ax.set_yticks(ys, labels)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        if annotate and len(values):
            top = max(values) or 1
            for y, v in zip(ys, values):
                ax.text(v + top * 0.01, y, f"{v:,.0f}" if float(v).is_integer() else f"{v:.2f}", va="center", fontsize=8)
            ax.set_xlim(0, top * 1.12)
        if legend:
            from matplotlib.patches import Patch

            ax.legend(handles=[Patch(color=c, label=n) for n, c in legend.items()], fontsize=8, loc="lower right",
                      frameon=True, framealpha=0.9)
        fig.tight_layout()
    return fig


def lines(x: Sequence, series: dict[str, Sequence[float]], *, title: str, xlabel: str, ylabel: str,
          colors: Sequence[str] | None = None, width: float = 9.0) -> Figure:
    """One line per series, each in its own colour (and marker, so print in grey still tells them apart)."""
    markers = "osD^v<>ph*XP"
    with style():
        fig, ax = plt.subplots(figsize=(width, 3.8))
        for i, ((name, ys), colour) in enumerate(zip(series.items(), colors or palette(len(series)))):
            ax.plot(list(x), list(ys), label=name, color=colour, marker=markers[i % len(markers)], ms=4, lw=1.6)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.autofmt_xdate()
        fig.tight_layout()
    return fig


def stacked_barh(labels: Sequence[str], parts: dict[str, Sequence[float]], *, title: str, xlabel: str,
                 colors: Sequence[str] | None = None, width: float = 9.0) -> Figure:
    """One bar per label, split into parts (e.g. a branch's complaints by cause group), with a legend."""
    with style():
        fig, ax = plt.subplots(figsize=(width, max(1.8, 0.36 * len(labels) + 1.3)))
        ys = list(range(len(labels)))[::-1]
        left = [0.0] * len(labels)
        for (name, vals), colour in zip(parts.items(), colors or palette(len(parts))):
            ax.barh(ys, vals, left=left, color=colour, label=name, height=0.7)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_yticks(ys, labels)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        ax.legend(fontsize=8, ncol=min(len(parts), 6), loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.2 / (len(labels) + 3)),
                  frameon=False)
        fig.tight_layout()
    return fig


def heatmap(matrix: Sequence[Sequence[float]], row_labels: Sequence[str], col_labels: Sequence[str], *, title: str,
            xlabel: str, ylabel: str, cmap: str = "Blues") -> Figure:
    """A matrix with its numbers written in, e.g. a confusion matrix (rows: truth, columns: prediction)."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    with style():
        fig, ax = plt.subplots(figsize=(1.1 * len(col_labels) + 2.2, 0.7 * len(row_labels) + 1.8))
        ax.imshow(m, cmap=cmap)
        top = m.max() if m.size else 0
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, f"{m[i, j]:,.0f}", ha="center", va="center", fontsize=9,
                        color="white" if top and m[i, j] > 0.6 * top else "black")
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
        ax.set_yticks(range(len(row_labels)), row_labels)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(False)
        fig.tight_layout()
    return fig
