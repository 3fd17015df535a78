"""Reading and writing case files: CSV, JSONL, Excel, Parquet.

Chinese exports come in UTF-8, UTF-8 with BOM and GB18030/GBK; list fields
are `|`-separated in CSV and Excel and JSON arrays in JSONL (labels.md).
Every column is read as text so extra columns pass through untouched, and
every write goes to a temporary file first and is renamed into place.
"""
from __future__ import annotations

import csv
import errno
import io as _io
import json
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; the json module writes the same values without it
    orjson = None

from pipeline.contract.ids import unknown_ids_message
from pipeline.contract.taxonomy import RISK_LEVELS, taxonomy

LIST_FIELDS = ("cause", "risk_flags", "mindset")
LABEL_FIELDS = ("cause", "risk_level", "risk_flags", "mindset")
REQUIRED = ("id", "text") + LABEL_FIELDS
ERROR_COLUMN = "error"
_SURROGATES = re.compile(r"[\ud800-\udfff]")

csv.field_size_limit(2**31 - 1)  # a 1 MB note is one field; Python's csv stops at 128 KB by default

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


class CaseFileError(ValueError):
    """A file that cannot be read as a whole: one sentence naming the problem and the fix."""


class RunRefused(ValueError):
    """A request that contradicts itself or what is on disk (the output is the input, a resume of
    another run): refused before anything is written, exit code 2."""


class OutputError(Exception):
    """The output cannot be written (disk full, read-only or missing folder): one sentence, exit code 7.
    Nothing half-written is left behind."""


_WRITE_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a part of the path is a file, not a folder",  # mkdir on a file's name
    errno.ENOENT: "the folder does not exist",
    errno.EFBIG: "the file is too large for this file system",
}


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """One sentence for a failed write: where, and why in words a user can act on."""
    reason = _WRITE_REASONS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {path}: {reason}; nothing was written.")


@dataclass
class Problem:
    where: str  # "line 12" or "row 7"
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}, field '{self.field}': {self.message}"


class LabelFileError(CaseFileError):
    """A labelled file with problems; lists every problem, not just the first."""

    def __init__(self, path: str | Path, problems: list[Problem]):
        self.path = str(path)
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{self.path}: {len(problems)} problem(s) in the labelled file, nothing loaded:\n{shown}{more}")


# ---------------------------------------------------------------- formats

def file_format(path: str | Path) -> str:
    if str(path) == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in EXCEL_SUFFIXES:
        return "excel"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix == ".xls":
        raise CaseFileError(f"{path}: old .xls workbooks are not supported; save it as .xlsx or CSV in Excel and try again.")
    raise CaseFileError(f"{path}: unknown file type '{suffix}'; use .csv, .jsonl, .xlsx or .parquet.")


def detect_encoding(path: str | Path, sample_bytes: int = 1 << 20) -> str:
    """BOM first, then strict UTF-8, then GB18030 (a superset of GBK), as Chinese Excel exports them."""
    with open(path, "rb") as fh:
        raw = fh.read(sample_bytes)
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for enc in ("utf-8", "gb18030"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError as exc:
            # a multi-byte character cut by the sample's end is not an error
            if len(raw) == sample_bytes and exc.start >= len(raw) - 4:
                return enc
            continue
        if enc == "gb18030" and text and sum(ch.isprintable() or ch in "\r\n\t" for ch in text) < 0.95 * len(text):
            continue
        return enc
    raise CaseFileError(f"{path}: cannot tell the text encoding (not UTF-8, UTF-16 or GB18030); pass --encoding, e.g. --encoding gbk.")


def check_exists(path: str | Path) -> None:
    if str(path) == "-":
        return
    p = Path(path)
    if not p.exists():
        raise CaseFileError(f"{path}: no such file; check the path.")
    if p.is_dir():
        raise CaseFileError(f"{path}: is a folder, not a file; name one CSV, JSONL, Excel or Parquet file.")
    if p.stat().st_size == 0:
        raise CaseFileError(f"{path}: the file is empty; it needs a header row and at least one note.")


def require_column(path: str | Path, columns, column: str, what: str = "text", option: str = "--text-column") -> None:
    """Every command that reads a case file names a missing column and the ones there are, the same way."""
    columns = [str(c) for c in columns]
    if column in columns:
        return
    shown = ", ".join(columns[:20]) + (f", ... ({len(columns)} in all)" if len(columns) > 20 else "")
    raise CaseFileError(f"{path}: no {what} column '{column}' (columns: {shown or 'none'}); name it with {option}.")


def refuse_same_file(input_path: str | Path, output_path: str | Path) -> None:
    """Writing the output over the input would lose the unmasked original: refuse, whatever path
    (relative, through a symlink, a hard link) names the same file."""
    if str(input_path) == "-":
        return
    same = os.path.realpath(input_path) == os.path.realpath(output_path)
    if not same and os.path.exists(output_path) and os.path.exists(input_path):
        same = os.path.samefile(input_path, output_path)
    if same:
        raise RunRefused(f"the output {output_path} is the input file; name another file with -o "
                         "(writing over it would lose the original).")


def _blank_row(fields: list[str], width: int) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip() and width > 1)


def count_rows(path: str | Path, encoding: str | None = None) -> int | None:
    """Rows (not lines: a note may span several) as the readers will yield them, for a progress
    bar's total; None when that cannot be known cheaply (stdin, Excel) or the file will fail anyway."""
    if str(path) == "-":
        return None
    try:
        fmt = file_format(path)
        if fmt == "csv":
            enc = encoding or detect_encoding(path)
            sep = "\t" if Path(path).suffix.lower() == ".tsv" else ","
            with open(path, encoding=enc, newline="") as fh:
                reader = csv.reader((line.replace("\0", "") for line in fh), delimiter=sep)
                width = len(next(reader, None) or [])
                return sum(1 for fields in reader if not _blank_row(fields, width))
        if fmt == "jsonl":
            with open(path, "rb") as fh:
                return sum(1 for line in fh if line.strip())
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - unreadable or damaged: the reader itself will say so
        return None
    return None


def _parse_jsonl_line(line: str, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return {ERROR_COLUMN: f"line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})"}
    if not isinstance(obj, dict):
        return {ERROR_COLUMN: f"line {lineno}: a JSON {type(obj).__name__}, not an object"}
    return obj


def iter_chunks(path: str | Path, chunksize: int = 2000, encoding: str | None = None, sheet: str | int | None = 0) -> Iterator[pd.DataFrame]:
    """Stream a case file in chunks of rows; columns as read, values as text.

    A JSONL line that is not valid JSON becomes a row with only an `error`
    value, so a broken line costs one row, not the file.
    """
    check_exists(path)
    fmt = file_format(path)
    if fmt == "csv":
        enc = encoding or detect_encoding(path)
        yield from _csv_chunks(path, enc, "\t" if Path(path).suffix.lower() == ".tsv" else ",", chunksize)
    elif fmt == "jsonl":
        fh = sys.stdin if str(path) == "-" else open(path, encoding=encoding or detect_encoding(path))
        try:
            rows: list[dict] = []
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                rows.append(_parse_jsonl_line(line, lineno))
                if len(rows) >= chunksize:
                    yield pd.DataFrame.from_records(rows)
                    rows = []
            if rows:
                yield pd.DataFrame.from_records(rows)
        except UnicodeDecodeError as exc:
            raise CaseFileError(f"{path}: not readable as text ({exc.reason}); pass --encoding.") from None
        finally:
            if fh is not sys.stdin:
                fh.close()
    elif fmt == "excel":
        try:
            df = pd.read_excel(path, sheet_name=sheet, dtype=str, keep_default_na=False)
        except ValueError as exc:
            raise CaseFileError(f"{path}: cannot read the workbook ({exc}).") from None
        except Exception as exc:  # openpyxl raises many kinds on a corrupt file
            raise CaseFileError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}).") from None
        if not len(df.columns):
            raise CaseFileError(f"{path}: the sheet is empty; it needs a header row.")
        df = ids_from_headers(df)
        for start in range(0, max(len(df), 1), chunksize):  # a header and no rows: one empty chunk
            yield df.iloc[start:start + chunksize].reset_index(drop=True)
    else:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise CaseFileError(f"{path}: not a readable Parquet file ({type(exc).__name__}).") from None
        if pf.metadata.num_rows == 0:  # the columns and no rows
            yield pf.schema_arrow.empty_table().to_pandas()
            return
        for batch in pf.iter_batches(batch_size=chunksize):
            yield batch.to_pandas()


def _unique_header(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in header:
        name = name.strip() if isinstance(name, str) else str(name)
        if name in seen:
            seen[name] += 1
            out.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def _csv_chunks(path: str | Path, enc: str, sep: str, chunksize: int) -> Iterator[pd.DataFrame]:
    """CSV rows with Python's C-backed csv reader: a ragged row keeps its place as a row error,
    a short row is padded, NUL bytes are dropped, and every value stays text."""
    try:
        with open(path, encoding=enc, newline="") as fh:
            reader = csv.reader((line.replace("\0", "") for line in fh), delimiter=sep)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise CaseFileError(f"{path}: the file is empty; it needs a header row and at least one note.")
            columns = _unique_header(header)
            width = len(columns)
            rows: list[list[str]] = []
            errors: list[str] = []
            yielded = False
            for fields in reader:
                if _blank_row(fields, width):
                    continue  # a blank line is not a row
                if len(fields) > width:
                    errors.append(f"ragged CSV row ending on line {reader.line_num}: {len(fields)} fields, the header has {width}")
                    rows.append([""] * width)
                else:
                    errors.append("")
                    rows.append(fields + [""] * (width - len(fields)))
                if len(rows) >= chunksize:
                    yield _csv_frame(rows, errors, columns)
                    yielded = True
                    rows, errors = [], []
            if rows:
                yield _csv_frame(rows, errors, columns)
                yielded = True
            if not yielded:  # a quiet day's export: the header and no rows is a file with 0 rows
                yield _csv_frame([], [], columns)
    except UnicodeDecodeError as exc:
        raise CaseFileError(f"{path}: not readable as {enc} ({exc.reason}); pass --encoding, e.g. --encoding gb18030.") from None
    except UnicodeError as exc:
        raise CaseFileError(f"{path}: not readable as {enc} ({exc}); pass --encoding.") from None
    except csv.Error as exc:
        raise CaseFileError(f"{path}: broken CSV ({exc}); check quoting on that line.") from None


def _csv_frame(rows: list[list[str]], errors: list[str], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns, dtype=object)
    if any(errors):
        df[ERROR_COLUMN] = errors
    return df


def read_table(path: str | Path, encoding: str | None = None, sheet: str | int | None = 0) -> pd.DataFrame:
    chunks = list(iter_chunks(path, chunksize=50_000, encoding=encoding, sheet=sheet))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


# ---------------------------------------------------------------- labelled cases

def as_list(value: Any) -> list[str]:
    """A list field from any of its spellings: JSON array, `a|b`, empty, NaN."""
    if value is None:
        return []
    if isinstance(value, float) and value != value:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    if hasattr(value, "tolist"):
        return as_list(value.tolist())
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return as_list(parsed)
        except json.JSONDecodeError:
            pass
    return [part.strip() for part in text.split("|") if part.strip()]


def _where(fmt: str, index: int) -> str:
    # index is the 0-based data row; CSV/Excel users count the header as row/line 1
    return f"line {index + 1}" if fmt == "jsonl" else f"row {index + 2}"


def label_problems(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for every way the four label fields of one case break the taxonomy.

    Shared by label files and by handlers' corrections, so both accept exactly the same labels.
    """
    tax = taxonomy()
    known = {"cause": tax.cause_ids, "risk_flags": tax.flag_ids, "mindset": tax.mindset_ids}
    limits = {"cause": (1, 3), "risk_flags": (0, len(tax.flag_ids)), "mindset": (0, 2)}
    problems: list[tuple[str, str]] = []
    for field in LIST_FIELDS:
        values = as_list(rec.get(field))
        lo, hi = limits[field]
        if not lo <= len(values) <= hi:
            problems.append((field, f"{len(values)} ids given, {lo} to {hi} allowed"))
        unknown = [v for v in values if v not in known[field]]
        if unknown:
            names = {i: tax.name(i) for i in known[field]}  # a Chinese name typed for its id is suggested too
            problems.append((field, unknown_ids_message(unknown, known[field], names)))
        if len(set(values)) != len(values):
            problems.append((field, "an id is repeated"))
    level = str(rec.get("risk_level") or "").strip()
    if level not in RISK_LEVELS:
        problems.append(("risk_level", f"'{level}' is not one of {list(RISK_LEVELS)}"))
    else:
        flags = [f for f in as_list(rec.get("risk_flags")) if f in known["risk_flags"]]
        floor = tax.risk_floor(flags)
        if RISK_LEVELS.index(level) < RISK_LEVELS.index(floor):
            problems.append(("risk_level", f"'{level}' breaks the risk rule: {_risk_rule(flags, floor)}, "
                                           f"so the level must be at least '{floor}'"))
    return problems


def _risk_rule(flags: list[str], floor: str) -> str:
    """The clause of the spec's risk rule (Taxonomy.risk_floor) that sets `floor` for these flags, in words."""
    tax = taxonomy()
    high = [f for f in flags if f in tax.high_flags]
    if high:
        return f"a high-severity flag ({', '.join(high)}) makes a case high"
    medium = [f for f in flags if f in tax.medium_flags]
    threats = [f for f in flags if f in tax.threat_flags]
    if floor == "high" and "vip_identity" in flags and threats:
        return f"vip_identity with a threat flag ({', '.join(threats)}) makes a case high"
    if len(medium) >= 2:
        return f"two or more medium-severity flags ({', '.join(medium)}) make a case high"
    return f"a medium-severity flag ({', '.join(medium)}) makes a case at least medium"


def validate_labels(df: pd.DataFrame, fmt: str = "jsonl") -> tuple[pd.DataFrame, list[Problem]]:
    """Check every labelled row against the taxonomy; return clean rows and all problems."""
    problems: list[Problem] = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        there = ", ".join(map(str, df.columns)) or "none"
        return df, [Problem("header", c, f"required column is missing (columns: {there})") for c in missing]
    out = df.copy()
    seen: dict[str, int] = {}
    for i, row in enumerate(df.itertuples(index=False)):
        rec = row._asdict() if hasattr(row, "_asdict") else dict(zip(df.columns, row))
        where = _where(fmt, i)
        if ERROR_COLUMN in rec and isinstance(rec.get(ERROR_COLUMN), str) and rec[ERROR_COLUMN]:
            problems.append(Problem(where, "*", rec[ERROR_COLUMN]))
            continue
        case_id = "" if rec.get("id") is None or (isinstance(rec.get("id"), float) and rec["id"] != rec["id"]) else str(rec["id"]).strip()
        if not case_id:
            problems.append(Problem(where, "id", "missing"))
        elif case_id in seen:
            problems.append(Problem(where, "id", f"duplicate id '{case_id}' (first at {_where(fmt, seen[case_id])})"))
        else:
            seen[case_id] = i
        text = rec.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(where, "text", "missing or empty"))
        problems += [Problem(where, f, m) for f, m in label_problems(rec)]
    for field in LIST_FIELDS:
        out[field] = [as_list(v) for v in df[field]]
    out["id"] = [str(v).strip() for v in df["id"]]
    out["risk_level"] = [str(v).strip() for v in df["risk_level"]]
    return out, problems


def read_labelled(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """Load a labelled file in the spec's format, or raise LabelFileError listing every problem."""
    fmt = file_format(path)
    df = read_table(path, encoding=encoding)
    if df.empty:
        raise CaseFileError(f"{path}: the file has no labelled rows; nothing to learn from.")
    clean, problems = validate_labels(df, fmt)
    if problems:
        raise LabelFileError(path, problems)
    return clean


# ---------------------------------------------------------------- writing

def _is_array(value: Any) -> bool:
    """A numpy array, as a list cell of a Parquet input reads."""
    return hasattr(value, "tolist") and bool(getattr(value, "ndim", 0))


def _cell_for_flat(value: Any) -> Any:
    if _is_array(value):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _json_default(value: Any) -> Any:
    if _is_array(value):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


#: what `json.dumps(rec, ensure_ascii=False, default=_json_default)` does, without a new encoder per row
_JSON_LINE = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode


def _jsonl_records(df: pd.DataFrame) -> Iterator[dict]:
    """Each row as the dict its JSONL line holds (NaN -> null)."""
    cols = list(df.columns)
    for row in df.itertuples(index=False, name=None):
        rec = {}
        for c, v in zip(cols, row):
            if isinstance(v, float) and v != v:
                v = None
            rec[c] = v
        yield rec


def _jsonl_line(rec: dict) -> str:
    line = _JSON_LINE(rec)
    if _SURROGATES.search(line):  # a lone surrogate is not UTF-8: escape this record instead
        line = json.dumps(rec, ensure_ascii=True, default=_json_default)
    return line


def _record_bytes(rec: dict) -> bytes:
    """One JSONL line's UTF-8 bytes (without the newline): orjson, several times faster than the json
    module on a tagged row (issue 19), with the same values; the json module for what orjson refuses
    (a lone surrogate, an integer past 64 bits, a dict with keys that are not strings)."""
    if orjson is not None:
        try:
            return orjson.dumps(rec, default=_json_default)
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            pass
    return _jsonl_line(rec).encode("utf-8")


def dataframe_to_jsonl(df: pd.DataFrame, fh) -> None:
    for rec in _jsonl_records(df):
        fh.write(_record_bytes(rec).decode("utf-8") + "\n")


def _utf8(text: str) -> bytes | None:
    """The text's UTF-8 bytes; None when it holds a lone surrogate (which UTF-8 cannot carry)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def jsonl_bytes(df: pd.DataFrame) -> bytes:
    """The UTF-8 bytes `dataframe_to_jsonl` writes."""
    return b"".join([_record_bytes(rec) + b"\n" for rec in _jsonl_records(df)])


def _no_surrogates(value: Any) -> Any:
    """Flat formats must be valid UTF-8: a lone surrogate becomes U+FFFD there."""
    return _SURROGATES.sub("\ufffd", value) if isinstance(value, str) and _SURROGATES.search(value) else value


def _flat_column(values: Iterable[Any]) -> list[Any]:
    """One column's cells for a flat format: lists `|`-joined, dicts as JSON, lone surrogates replaced.
    A str passes as it is and a list is joined at once (what `_cell_for_flat` gives them), and one
    encode of the column's text looks for surrogates instead of a search per cell."""
    cells = [v if type(v) is str else "|".join(map(str, v)) if type(v) is list else _cell_for_flat(v)
             for v in values]
    if _utf8("".join([v for v in cells if isinstance(v, str)])) is None:
        cells = [_no_surrogates(v) for v in cells]
    return cells


def flatten_lists(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = _flat_column(out[c])
    return out


def frame_bytes(df: pd.DataFrame, fmt: str, header: bool = True) -> bytes:
    """The UTF-8 bytes `write_frame` writes to a text file of a text format (JSONL or CSV)."""
    if fmt == "jsonl":
        return jsonl_bytes(df)
    buf = _io.StringIO(newline="")
    write_frame(df, buf, fmt, header=header)
    return buf.getvalue().encode("utf-8")


def write_frame(df: pd.DataFrame, fh_or_path, fmt: str, header: bool = True) -> None:
    """Write one frame in a format; lists become `|`-joined in flat formats."""
    if fmt == "jsonl":
        dataframe_to_jsonl(df, fh_or_path)
    elif fmt == "csv":
        flatten_lists(df).to_csv(fh_or_path, index=False, header=header, quoting=csv.QUOTE_MINIMAL)
    elif fmt == "excel":
        write_workbook(df, fh_or_path)
    elif fmt == "parquet":
        df.to_parquet(fh_or_path, index=False, engine="pyarrow")
    else:
        raise CaseFileError(f"cannot write format {fmt}")


# ---------------------------------------------------------------- the workbook for people

DATA_SHEET, SUMMARY_SHEET, FIELDS_SHEET = "数据", "汇总", "字段说明"
#: Chinese name columns written beside the label-id columns of `tousu tag` output (the id columns stay, for machines)
NAME_COLUMNS = {"pred_cause": "预测投诉原因", "pred_cause_group": "预测原因类别", "pred_risk_level": "预测风险等级",
                "pred_risk_flags": "预测风险标记", "pred_mindset": "预测客户心理"}
#: what each column tousu adds means, for the header notes and the 字段说明 sheet
FIELD_NOTES = {
    "pred_cause": "投诉原因编号（最多 3 个，主要的在前，| 分隔）", "pred_cause_proba": "各投诉原因的概率（与投诉原因编号对应）",
    "pred_cause_group": "投诉原因类别编号", "pred_risk_level": "升级风险等级编号：low 一般 / medium 可能升级 / high 重大",
    "pred_risk_flags": "风险标记编号（| 分隔）", "pred_mindset": "客户心理编号（最多 2 个，主要的在前）",
    "review": "是否需要人工复核（True/False）", "review_reasons": "需要复核的原因", "plan_owner": "负责人编号",
    "plan_departments": "协同部门编号", "plan_steps": "处理步骤编号（按顺序）", "reply_first_hours": "首次回复时限（小时）",
    "decision_due": "监管处理决定期限（收到日期起算）", "plan_step_texts": "处理步骤（按顺序）", "plan_avoid": "切勿",
    "plan_fired": "触发的处理规则", "facts": "从文本提取的关键事实（号码已脱敏）", "error": "出错原因（空表示已标注）",
    "risk_reason": "风险等级的依据（按信号规则）", "channel": "渠道：phone 电话 / counter 柜面 / letter 信函 / regulator 监管转办 / online 线上",
    "plan_now": "现在就做的步骤（最多 5 条，最急的在前）", "plan_owner_name": "负责人",
    **{name: "模型判断的中文名称（编号在左边一列）" for name in NAME_COLUMNS.values()},
}
#: the workbook's headers for the columns tousu adds: people read Chinese; reading a tagged workbook back
#: maps them to the ids again (`ids_from_headers`), so the data sheet stays machine-readable
HEADERS_ZH = {
    "pred_cause": "投诉原因编号", "pred_cause_proba": "投诉原因概率", "pred_cause_group": "原因类别编号",
    "pred_risk_level": "风险等级编号", "risk_reason": "风险等级依据", "pred_risk_flags": "风险标记编号",
    "pred_mindset": "客户心理编号", "channel": "渠道", "review": "需人工复核", "review_reasons": "复核原因",
    "plan_now": "现在就做", "plan_owner": "负责人编号", "plan_owner_name": "负责人", "plan_departments": "协同部门编号",
    "plan_steps": "处理步骤编号", "reply_first_hours": "首次回复时限（小时）", "decision_due": "处理决定期限",
    "plan_step_texts": "处理步骤", "plan_avoid": "切勿", "plan_fired": "触发的处理规则", "facts": "关键事实",
    "error": "出错原因",
}
_TAGGED_SIGNATURE = (HEADERS_ZH["pred_cause"], HEADERS_ZH["pred_risk_level"])


def ids_from_headers(df: pd.DataFrame) -> pd.DataFrame:
    """A tagged workbook's Chinese headers back to the column ids (only in a workbook tousu tagged: a
    centre's own 渠道 column in an input file stays as it is)."""
    if not all(h in df.columns for h in _TAGGED_SIGNATURE):
        return df
    back = {h: c for c, h in HEADERS_ZH.items() if h in df.columns and c not in df.columns}
    return df.rename(columns=back)


#: columns whose cells wrap (long lists and plans), besides any column with long text
WRAP_COLUMNS = ("plan_steps", "plan_step_texts", "plan_avoid", "plan_fired", "facts", "review_reasons",
                "预测投诉原因", "预测风险标记")
_MAX_WIDTH, _MIN_WIDTH = 60, 6


def _names(values: Any, sep: str = "；") -> str:
    """Label ids -> their Chinese names (an unknown id is kept as it is)."""
    tax = taxonomy()
    return sep.join(tax.name_or_id(v) for v in as_list(values))


def with_names(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with a Chinese name column right after each label-id column it has (ids kept)."""
    out = df
    for id_col, name_col in NAME_COLUMNS.items():
        if id_col not in out.columns:
            continue
        names = [_names(v) for v in out[id_col]]
        if name_col in out.columns:  # a workbook tagged again: the names follow the new ids
            out = out.drop(columns=[name_col])
        out.insert(list(out.columns).index(id_col) + 1, name_col, names)
    return out


def _display_width(value: Any) -> int:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    line = max(text.split("\n"), key=len) if text else ""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in line)


def _format_sheet(ws, frame: pd.DataFrame, ids: list[str] | None = None) -> None:
    """Bold frozen header with a filter, widths from the content, long cells wrapped, notes on tousu's columns.
    `ids`: each column's id where the header shows its Chinese name."""
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    header_font, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    wrap = Alignment(wrap_text=True, vertical="top")
    sample = frame.head(500)
    for j, (col, col_id) in enumerate(zip(frame.columns, ids or list(frame.columns)), start=1):
        letter = get_column_letter(j)
        cell = ws.cell(row=1, column=j)
        cell.font, cell.fill = header_font, fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        if col_id in FIELD_NOTES:
            cell.comment = Comment(FIELD_NOTES[col_id], "tousu")
        widths = sorted(_display_width(v) for v in sample[col]) if len(sample) else [0]
        typical = widths[-(-9 * (len(widths) - 1) // 10)]  # the 90th percentile, rounded up
        width = min(max(_display_width(col) + 2, typical + 2, _MIN_WIDTH), _MAX_WIDTH)
        ws.column_dimensions[letter].width = width
        if col_id in WRAP_COLUMNS or typical + 2 > _MAX_WIDTH:
            for row in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                row[0].alignment = wrap
    ws.freeze_panes = "A2"
    if len(frame.columns):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"


def _summary_sheet(ws, df: pd.DataFrame) -> None:
    """Counts by risk level, cause group, main cause, flag and main mindset, with ids beside the names."""
    from openpyxl.styles import Font

    tax = taxonomy()
    ok = df[df[ERROR_COLUMN].fillna("").astype(str) == ""] if ERROR_COLUMN in df.columns else df
    n = len(ok)
    bold = Font(bold=True)
    ws.append(["案件数", n])
    ws.append(["出错而未标注", len(df) - n])
    main = [as_list(v)[:1] for v in ok["pred_cause"]]
    tables = [
        ("风险等级", [str(v) for v in ok["pred_risk_level"] if isinstance(v, str) and v], list(reversed(RISK_LEVELS))),
        ("原因类别", [tax.group_of(m[0]) for m in main if m], tax.group_ids),
        ("投诉原因（主要原因）", [m[0] for m in main if m], tax.cause_ids),
        ("风险标记", [f for v in ok.get("pred_risk_flags", []) for f in as_list(v)], tax.flag_ids),
        ("客户心理（主要）", [(as_list(v) or ["none"])[0] for v in ok.get("pred_mindset", [])], tax.mindset_ids + ["none"]),
    ]
    for title, values, order in tables:
        counts = pd.Series(values, dtype=object).value_counts()
        ws.append([])
        ws.append([title, "编号", "件数", "占比"])
        for c in ws[ws.max_row]:
            c.font = bold
        for label in sorted(order, key=lambda k: -int(counts.get(k, 0))):
            k = int(counts.get(label, 0))
            name = "无明显心理诉求" if label == "none" else _names(label)
            ws.append([name, label, k, round(k / n, 4) if n else 0])
            ws.cell(row=ws.max_row, column=4).number_format = "0.0%"
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = 32
    ws.freeze_panes = "A2"


def write_workbook(df: pd.DataFrame, path) -> None:
    """An Excel workbook people can read; the data sheet stays first and machine-readable.

    Data sheet: every column as written before (label ids `|`-separated), a Chinese name column beside
    each label-id column of `tousu tag` output, Chinese headers on the columns tousu adds (read back as
    ids), bold frozen header with a filter, widths from the content, long and plan cells wrapped, a note on
    each column tousu adds. Then a summary sheet (counts by risk, cause group, cause, flag, mindset) when
    the frame is tagged, and a sheet naming each column's id and meaning.
    """
    tagged = "pred_cause" in df.columns and "pred_risk_level" in df.columns
    frame = with_names(df) if tagged else df
    # the machine's `*_name` twin of a Chinese name column says the same thing once more
    frame = frame.drop(columns=[f"{c}_name" for c, name in NAME_COLUMNS.items()
                                if f"{c}_name" in frame.columns and name in frame.columns])
    ids = list(frame.columns)
    flat = flatten_lists(frame)
    if tagged:
        flat = flat.rename(columns={c: h for c, h in HEADERS_ZH.items() if c in flat.columns and h not in flat.columns})
    # a cell starting with = + - @ would run as a formula in Excel: keep it text
    for c in flat.columns:
        if flat[c].dtype == object:
            flat[c] = [("'" + v) if isinstance(v, str) and v and v[0] in "=+-@" else v for v in flat[c]]
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        flat.to_excel(xw, index=False, sheet_name=DATA_SHEET)
        _format_sheet(xw.sheets[DATA_SHEET], flat, ids)
        if tagged:
            _summary_sheet(xw.book.create_sheet(SUMMARY_SHEET), df)
        fields = xw.book.create_sheet(FIELDS_SHEET)
        fields.append(["列名", "编号（程序读取用）", "说明"])
        for col, col_id in zip(flat.columns, ids):
            fields.append([col, col_id, FIELD_NOTES.get(col_id, "原文件的列（原样保留）")])
        fields.column_dimensions["A"].width, fields.column_dimensions["B"].width = 24, 22
        fields.column_dimensions["C"].width = 60
        fields.freeze_panes = "A2"


@contextmanager
def replacing(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary file beside `path` to write into; on success it is fsynced and renamed over `path`,
    on any failure removed. The one way tousu writes a file: a reader sees the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path: str | Path, df: pd.DataFrame, fmt: str | None = None) -> None:
    """Write to a temporary file beside the target, fsync, then rename into place; a failed write
    (disk full, read-only folder) raises OutputError and leaves nothing behind."""
    path = Path(path)
    fmt = fmt or file_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:
            if fmt in ("jsonl", "csv"):
                with open(tmp, "w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as fh:
                    write_frame(df, fh, fmt)
            else:
                write_frame(df, tmp, fmt)
    except OSError as exc:
        raise output_error(path, exc) from None


def to_jsonl_string(df: pd.DataFrame) -> str:
    buf = _io.StringIO()
    dataframe_to_jsonl(df, buf)
    return buf.getvalue()
