"""Build the demo backlog behind docs/report.png: real notes, really tagged, with a planted spike.

The corpus's held-out notes and the validation notes get 90 days of received
dates, eight branches, five products and a customer number; 24 claim-dispute
notes are planted at 海淀支公司 in the last two days, and one customer calls
four times in a month. Then:

    python docs/report_demo.py /tmp/demo.csv
    python -m cli tag /tmp/demo.csv -o /tmp/demo.tagged.csv --id-column 工单号 --received-column 受理日期
    python -m cli report /tmp/demo.tagged.csv -o /tmp/report.html --id-column 工单号 \\
        --by 机构 --by 产品 --date-column 受理日期 --customer-column 客户号
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot=docs/report.png \\
        --window-size=1440,2400 file:///tmp/report.html
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BRANCHES = ["东城支公司", "西城支公司", "海淀支公司", "朝阳支公司", "丰台支公司", "通州支公司", "昌平支公司", "大兴支公司"]
PRODUCTS = ["终身寿险", "重疾险", "医疗险", "年金险", "万能险"]


def demo(seed: int = 3) -> pd.DataFrame:
    from pipeline.model.corpus import train_test

    rng = np.random.default_rng(seed)
    _, test = train_test()
    val = pd.read_json(ROOT.parent / "shared" / "data" / "validation.jsonl", lines=True)
    notes = pd.concat([test[["text", "cause"]], val[["text", "cause"]]], ignore_index=True)
    end = pd.Timestamp("2026-11-30")
    n = len(notes)
    df = pd.DataFrame({
        "工单号": [f"TS2026{i:05d}" for i in range(n)],
        "受理日期": (end - pd.to_timedelta(rng.integers(2, 90, size=n), unit="D")).strftime("%Y-%m-%d"),
        "机构": np.array(BRANCHES)[rng.integers(len(BRANCHES), size=n)],
        "产品": np.array(PRODUCTS)[rng.integers(len(PRODUCTS), size=n)],
        "客户号": [f"K{k:06d}" for k in rng.integers(0, 10**6, size=n)],
        "text": notes["text"],
    })
    claims = [i for i, c in enumerate(notes["cause"]) if list(c)[:1] == ["contract_claims"]]
    plant = rng.choice(claims, size=24, replace=False)
    df.loc[plant, "机构"] = "海淀支公司"
    df.loc[plant, "受理日期"] = (end - pd.to_timedelta(rng.integers(0, 2, size=24), unit="D")).strftime("%Y-%m-%d")
    repeat = rng.choice(np.setdiff1d(np.arange(n), plant), size=4, replace=False)
    df.loc[repeat, "客户号"] = "K900017"
    df.loc[repeat, "受理日期"] = ["2026-11-05", "2026-11-12", "2026-11-20", "2026-11-27"]
    df.loc[rng.choice(n, size=6, replace=False), "受理日期"] = "待补录"  # dates that do not parse, as real exports have
    return df


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo.csv")
    demo().to_csv(out, index=False, encoding="utf-8-sig")
    print(f"wrote {out}", file=sys.stderr)
