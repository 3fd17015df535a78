"""The report as one self-contained Chinese HTML page: alerts first, then counts, trends and cases.

Charts are PNGs embedded as data URIs (pipeline.charts), styles are inline,
and there is no script and no external asset, so the file opens the same
offline, in a mail attachment or on a shared drive. Every note shown is
masked again here (phone, ID-card, bank-card numbers, e-mail).
"""
from __future__ import annotations

import os
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Sequence

from pipeline import charts
from pipeline.apps.report import ALL, Alert, Report
from pipeline.contract.taxonomy import taxonomy
from pipeline.io import replacing

__all__ = ["render_html", "write_html", "group_colours", "alert_line", "group_chart", "cause_chart", "trend_chart",
           "LEVEL_NAMES"]

LEVEL_NAMES = {lvl: f"{taxonomy().name(lvl)}（{mark}）" for lvl, mark in (("high", "高"), ("medium", "中"), ("low", "低"))}
LEVEL_COLOURS = {"high": "#c62828", "medium": "#ef6c00", "low": "#2e7d32"}
MAX_ROWS = 50

_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Zen Hei",sans-serif;
 color:#222;max-width:1180px;margin:0 auto;padding:24px 28px 60px;line-height:1.55;background:#fafafa}
h1{font-size:26px;margin:0 0 6px}h2{font-size:20px;margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid #ddd}
h3{font-size:16px;margin:18px 0 6px}.meta{color:#555;font-size:14px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13.5px;background:#fff}
th,td{border:1px solid #d6d6d6;padding:4px 9px;text-align:left;vertical-align:top;white-space:nowrap}th{background:#f0f0f0}
td.t{white-space:normal;min-width:360px}td.w{white-space:normal;min-width:120px}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.alerts{border:2px solid #c62828;border-radius:6px;background:#fff5f5;padding:10px 18px 6px;margin:18px 0}
.alerts.none{border-color:#2e7d32;background:#f3faf3}.alerts h2{border:none;margin-top:6px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin:10px 0}
.card{background:#fff;border:1px solid #ddd;border-left:6px solid #999;border-radius:4px;padding:8px 16px;min-width:150px}
.card b{font-size:24px;display:block}.chart{max-width:100%;height:auto;display:block;margin:6px 0 12px;background:#fff}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}.note{color:#555;font-size:13px}
.sample{background:#fff;border-left:3px solid #90a4ae;padding:4px 10px;margin:4px 0;font-size:13.5px}
.overdue{color:#c62828;font-weight:bold}.tag{display:inline-block;background:#eceff1;border-radius:3px;padding:0 5px;margin:1px 2px;font-size:12.5px}
details{margin:6px 0 10px;font-size:13.5px;color:#444}
"""


def _name(label: str | None) -> str:
    if not label:
        return "全部投诉"
    try:
        return taxonomy().name(label)
    except KeyError:
        return label


def group_colours() -> dict[str, str]:
    """One colour per cause group, the same in every chart of the page."""
    groups = taxonomy().group_ids
    return dict(zip(groups, charts.palette(len(groups))))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for row in rows:
        cells = []
        for j, v in enumerate(row):
            raw = v if isinstance(v, _Raw) else escape("" if v is None else str(v))
            cls = ' class="n"' if j in numeric else (' class="w"' if isinstance(v, _Raw) else ' class="t"' if len(raw) > 40 else "")
            cells.append(f"<td{cls}>{raw}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _img(fig, alt: str) -> str:
    return f'<img class="chart" alt="{escape(alt)}" src="{charts.data_uri(fig)}">'


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


# ------------------------------------------------------------------ charts (the page's supervisor view shows the same ones)

def group_chart(r: Report, colours: dict[str, str] | None = None):
    """Counts by cause group, one colour per group."""
    colours = colours or group_colours()
    groups = list(r.groups)
    return charts.barh([_name(g) for g in groups], [r.groups[g] for g in groups], title="投诉原因类别",
                       xlabel="件数", colors=[colours.get(g, "#9e9e9e") for g in groups], width=5.6)


def cause_chart(r: Report, colours: dict[str, str] | None = None, top: int = 15):
    """The `top` main causes, coloured by their group."""
    tax = taxonomy()
    colours = colours or group_colours()
    shown = list(r.causes)[:top]
    return charts.barh([_short(_name(c)) for c in shown], [r.causes[c] for c in shown],
                       title=f"主要投诉原因（前 {len(shown)} 位，颜色为类别）", xlabel="件数",
                       colors=[colours.get(tax.group_of(c), "#9e9e9e") for c in shown], width=7.4,
                       legend={_name(g): colours[g] for g in tax.group_ids if any(tax.group_of(c) == g for c in shown)})


def trend_chart(r: Report, colours: dict[str, str] | None = None):
    """Complaints per 7-day period by cause group, and their total; None without dates."""
    if r.weekly.empty:
        return None
    colours = colours or group_colours()
    w = r.weekly
    x = [d.date() for d in w.index]
    series = {"合计": list(w.sum(axis=1))}
    series.update({_name(g): list(w[g]) for g in w.columns})
    cols = ["#333333"] + [colours.get(g, "#9e9e9e") for g in w.columns]
    return charts.lines(x, series, title="每周投诉件数（按原因类别）", xlabel=f"每 7 天（截至 {r.as_of}）的起始日",
                        ylabel="件数", colors=cols)


# ------------------------------------------------------------------ sections

def _alerts(r: Report) -> str:
    spikes = [a for a in r.alerts if a.kind == "spike"]
    repeats = [a for a in r.alerts if a.kind == "repeat"]
    deadlines = [a for a in r.alerts if a.kind == "deadline"]
    s = r.settings
    if not r.alerts:
        checked = (["激增"] if r.as_of else []) + ["重复投诉"] + (["临近处理时限"] if r.is_store else [])
        said = f"截至 {escape(r.as_of)}，" if r.as_of else "没有可用的日期，未做激增预警；"
        return (f'<section class="alerts none"><h2>预警：本期没有预警</h2><p class="note">{said}'
                f"没有{'、'.join(checked)}的情况（见下方说明）。</p>{_method(r)}</section>")
    parts = [f'<section class="alerts"><h2>预警（{len(r.alerts)} 条）</h2>']
    if spikes:
        rows = [[_by_name(a.by), a.value, _name(a.cause), f"{a.window['start']} ~ {a.window['end']}", a.count,
                 f"{a.baseline:.1f}", f"{a.detail['ratio']} 倍" if a.detail.get("ratio") else "–", f"{a.detail['p_value']:.2g}",
                 "不含：" + "、".join(_name(c) for c in a.detail["excluding_causes"]) if a.detail.get("excluding_causes") else ""]
                for a in spikes]
        head = ["维度", "取值", "投诉原因", "窗口", "窗口内件数", "预期件数", "倍数", "p 值", "说明"]
        if not any(row[-1] for row in rows):
            head, rows = head[:-1], [row[:-1] for row in rows]
        parts.append(f"<h3>激增预警（{len(spikes)}）：近 {s.window_days} 天投诉远高于自身基线和其他单位</h3>")
        parts.append(_table(head, rows, (4, 5, 6, 7)))
    if repeats:
        rows = [[a.value, a.count, _name(a.cause), a.detail.get("first") or "–", a.detail.get("last") or "–",
                 a.detail["high_risk"], "、".join(map(str, a.detail["case_ids"][:8])) + ("……" if a.count > 8 else "")]
                for a in repeats[:MAX_ROWS]]
        key = f"“{r.customer_key}”列" if r.customer_key and r.customer_key != "personal_number" else "号码指纹（HMAC，不含号码本身）"
        parts.append(f"<h3>重复投诉（{len(repeats)}）：{s.repeat_days} 天内同一客户 {s.repeat_min} 件及以上（按{escape(key)}）</h3>")
        parts.append(_table(["客户", "件数", "主要原因", "首次", "最近", "高风险件数", "案件号"], rows, (1, 5)))
        if len(repeats) > MAX_ROWS:
            parts.append(f'<p class="note">另有 {len(repeats) - MAX_ROWS} 位，见 --json 输出。</p>')
    if deadlines:
        rows = []
        for a in deadlines[:MAX_ROWS]:
            left = a.detail["days_left"]
            status = _Raw(f'<span class="overdue">已逾期 {-left} 天</span>') if left < 0 else ("今天到期" if left == 0 else f"还剩 {left} 天")
            rows.append([a.value, _name(a.cause), LEVEL_NAMES.get(a.detail["risk_level"], a.detail["risk_level"]),
                         a.window.get("start") or "–", a.detail["due"], status])
        parts.append(f"<h3>处理时限（{len(deadlines)}）：未结案且 {s.deadline_days} 天内到期或已逾期</h3>")
        parts.append(_table(["案件号", "投诉原因", "风险等级", "收到日期", "处理决定期限", "状态"], rows))
        if len(deadlines) > MAX_ROWS:
            parts.append(f'<p class="note">另有 {len(deadlines) - MAX_ROWS} 件，见 --json 输出。</p>')
    parts.append(_method(r) + "</section>")
    return "".join(parts)


def _by_name(by: str | None) -> str:
    return by if by else ALL


def _method(r: Report) -> str:
    s = r.settings
    return (f"<details><summary>预警方法与阈值</summary><p>激增：对每个维度取值（及其各投诉原因），比较最近 {s.window_days} 天"
            f"与之前最多 {s.baseline_days} 天的件数。假设没有激增时，该单元的每件投诉落在窗口内的概率 p0 取“窗口天数占比”与"
            f"“其他取值同一原因落在窗口内的比例”（向天数占比收缩，先验相当于 10 件）中的较大者（全中心同时上升不算某一单位激增），做单侧精确二项检验；"
            f"窗口内至少 {s.min_count} 件、至少为预期的 {s.min_ratio:g} 倍、且 p 值不超过 {s.alpha:g} 除以检验单元数（Bonferroni 校正）"
            f"才报警。某单位“全部投诉”的预警只在去掉已报警的原因后仍显著时保留。阈值可用 --alert-days、--baseline-days、"
            f"--min-count、--min-ratio、--alpha 调整。</p><p>重复投诉：{s.repeat_days} 天内同一客户 {s.repeat_min} 件及以上；"
            f"客户按 --customer-column 识别，否则按文中电话、身份证、银行卡号码的 HMAC-SHA256 指纹（密钥来自 $TOUSU_SECRET 或本机密钥文件），"
            f"报告中不出现号码本身。</p><p>处理时限：案件库中未结案、距监管处理决定期限（收到日期起按处理规则的天数，未记收到日期的按入库日期）"
            f"不足 {s.deadline_days} 天或已逾期的案件。</p></details>")


def _overview(r: Report, colours: dict[str, str]) -> str:
    tax = taxonomy()
    cards = "".join(
        f'<div class="card" style="border-left-color:{LEVEL_COLOURS[lvl]}"><span>{LEVEL_NAMES[lvl]}</span>'
        f"<b>{r.risk.get(lvl, 0):,}</b><span class=\"note\">{_pct(r.risk.get(lvl, 0), r.n)}</span></div>"
        for lvl in ("high", "medium", "low"))
    fig_groups, fig_causes = group_chart(r, colours), cause_chart(r, colours)
    flags = sorted(r.flags, key=lambda k: -r.flags[k])
    fig_flags = charts.barh([_name(f) for f in flags] or ["无"], [r.flags[f] for f in flags] or [0], title="风险标记",
                            xlabel="件数", width=5.6) if flags else None
    minds = list(r.mindsets)
    fig_minds = charts.barh([_name(m) if m != "none" else "无明显心理诉求" for m in minds], [r.mindsets[m] for m in minds],
                            title="客户心理（主要）", xlabel="件数", width=5.6)
    cause_rows = [[_name(c), _name(tax.group_of(c)), c, n, _pct(n, r.n)] for c, n in r.causes.items()]
    out = [f"<h2>概览</h2><div class=\"cards\">{cards}</div>",
           f'<div class="grid"><div>{_img(fig_groups, "投诉原因类别")}</div><div>{_img(fig_minds, "客户心理")}</div></div>',
           _img(fig_causes, "主要投诉原因")]
    if fig_flags is not None:
        out.append(f'<div class="grid"><div>{_img(fig_flags, "风险标记")}</div><div>'
                   + _table(["风险标记", "件数", "占比"], [[_name(f), r.flags[f], _pct(r.flags[f], r.n)] for f in flags], (1, 2))
                   + "</div></div>")
    out.append("<details><summary>全部投诉原因（主要原因计数）</summary>"
               + _table(["投诉原因", "类别", "编号", "件数", "占比"], cause_rows, (3, 4)) + "</details>")
    return "".join(out)


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


def _trend(r: Report, colours: dict[str, str]) -> str:
    if r.weekly.empty:
        return "<h2>每周趋势</h2><p class=\"note\">没有可用的日期，无法画趋势。</p>"
    return f"<h2>每周趋势</h2>{_img(trend_chart(r, colours), '每周趋势')}"


def _breakdowns(r: Report, colours: dict[str, str]) -> str:
    out = []
    for col, table in r.breakdowns.items():
        groups = [g for g in taxonomy().group_ids if g in table.columns]
        labels = [str(v) for v in table.index]
        fig = charts.stacked_barh(labels, {_name(g): list(table[g]) for g in groups}, title=f"按“{col}”的投诉件数（按原因类别）",
                                  xlabel="件数", colors=[colours.get(g, "#9e9e9e") for g in groups])
        rows = [[v, int(t["total"]), _pct(int(t["total"]), r.n), int(t["high"]), _pct(int(t["high"]), int(t["total"])),
                 _name(t["top_cause"])] for v, t in table.iterrows()]
        out.append(f"<h2>按“{escape(col)}”分布</h2>{_img(fig, col)}"
                   + _table([col, "件数", "占全部", "高风险件数", "高风险占比", "最多的投诉原因"], rows, (1, 2, 3, 4)))
    return "".join(out)


def _rising(r: Report) -> str:
    if not r.rising_periods:
        return ""
    p = r.rising_periods
    head = f"<h2>上升最快的投诉原因</h2><p class=\"note\">本期 {p['current']} 对比上期 {p['previous']}（各 {p['days']} 天）。</p>"
    if not r.rising:
        return head + "<p>本期没有明显上升的投诉原因（本期至少 3 件、比上期多出一个标准差以上）。</p>"
    rows = [[_name(x["cause"]), x["previous"], x["current"], f"+{x['change']}", f"{x['ratio']:.1f} 倍" if x["ratio"] else "新出现"]
            for x in r.rising]
    return head + _table(["投诉原因", "上期", "本期", "增加", "本期/上期"], rows, (1, 2, 3, 4))


def _top_risk(r: Report) -> str:
    if not r.top_risk:
        return ""
    rows = []
    for c in r.top_risk:
        flags = _Raw("".join(f'<span class="tag">{escape(_name(f))}</span>' for f in c["flags"]) or "–")
        rows.append([c["id"], c["date"] or "–", *[c["by"][b] for b in r.by], LEVEL_NAMES.get(c["level"], c["level"]),
                     _name(c["cause"]), flags, c["text"]])
    return (f"<h2>风险最高的案件（前 {len(rows)} 件）</h2>"
            + _table(["案件号", "日期", *r.by, "风险等级", "投诉原因", "风险标记", "内容（已脱敏）"], rows))


def _samples(r: Report) -> str:
    out = ["<h2>主要投诉原因的样例（已脱敏）</h2>"]
    for cause, texts in r.samples.items():
        out.append(f"<h3>{escape(_name(cause))}（{r.causes.get(cause, 0):,} 件）</h3>")
        out += [f'<div class="sample">{escape(t)}</div>' for t in texts] or ['<p class="note">（没有文本）</p>']
    return "".join(out)


def render_html(r: Report) -> str:
    """The whole page."""
    colours = group_colours()
    period = f"{r.period['start']} 至 {r.period['end']}" if r.period["start"] else "无日期"
    date_col = f"{r.date_column}{'（自动识别）' if r.date_guessed else ''}" if r.date_column else "无（用 --date-column 指定）"
    no_date = f"{r.n_no_date:,} 件"
    if r.n_bad_date:
        no_date += f"（其中 {r.n_bad_date:,} 件日期无法解析，例如：{'、'.join(r.bad_date_examples[:3])}）"
    meta = _table(["项目", "内容"], [
        ["数据来源", ("案件库 " if r.is_store else "") + r.source], ["案件数", f"{r.n:,}"], ["时间范围", period],
        ["日期列", date_col], ["无日期（不计入趋势和预警）", no_date],
        ["标注出错而未计入的行", f"{r.n_errors:,}"], ["分组维度", "、".join(r.by) or "无（用 --by 指定，如 机构、产品、渠道）"],
    ])
    notes = "".join(f"<li>{escape(n)}</li>" for n in r.notes)
    body = [f"<h1>投诉分析报告</h1><p class=\"meta\">生成于 {datetime.now():%Y-%m-%d %H:%M}，预警截至 {escape(r.as_of or '–')}</p>",
            _alerts(r), meta, f"<ul class=\"note\">{notes}</ul>" if notes else "", _overview(r, colours), _trend(r, colours),
            _breakdowns(r, colours), _rising(r), _top_risk(r), _samples(r)]
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>投诉分析报告 · {escape(r.source)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>'
            + "".join(body) + "</body></html>")


def alert_line(a: Alert) -> str:
    """One alert in one line, for the terminal."""
    if a.kind == "spike":
        return f"激增 {a.by or ALL}={a.value} {_name(a.cause)}: {a.count} 件 (预期 {a.baseline})"
    if a.kind == "repeat":
        return f"重复投诉 {a.value}: {a.count} 件"
    return f"时限 {a.value}: {a.detail['due']} ({a.detail['days_left']} 天)"


def write_html(path: str | Path, html: str) -> Path:
    """Write the page atomically (a temporary file beside it, then a rename): a reader never sees half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, suffix=".tmp") as tmp:
        tmp.write_text(html, encoding="utf-8")
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a report is an ordinary file
    return path
