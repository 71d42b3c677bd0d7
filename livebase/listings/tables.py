"""Sheets in and out: CSV (UTF-8, with or without BOM, or GBK) and XLSX, as rows of text.

Reading gives every row its line number as a person sees it: the spreadsheet row in XLSX, the
line where the record starts in CSV. Cells that a spreadsheet would run as a formula (starting
with ``=``, ``+``, ``-``, ``@``) are written with a leading apostrophe, which reading removes
again, so an export opens safely and imports back unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

Format = Literal["csv", "xlsx"]
MAX_ROWS = 10_000
MAX_COLUMNS = 64
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC = b"PK\x03\x04"


class SheetError(ValueError):
    """The file as a whole cannot be read; the message says why, for the uploader."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sheet:
    header: tuple[str, ...]
    header_line: int
    rows: list[Row]
    encoding: str  # "utf-8", "utf-8-sig", "gbk" or "xlsx"


def detect_format(data: bytes) -> Format:
    return "xlsx" if data.startswith(ZIP_MAGIC) else "csv"


def read(data: bytes, fmt: Format | None = None, charset: str | None = None) -> Sheet:
    """The header and the non-blank rows of ``data``; ``SheetError`` if it cannot be read."""
    if not data.strip():
        raise SheetError("the file is empty")
    actual = detect_format(data)
    if fmt is not None and fmt != actual:
        raise SheetError(
            f"the file looks like {actual.upper()}, not {fmt.upper()}; "
            f"send it with format={actual} or leave format out"
        )
    return _read_xlsx(data) if actual == "xlsx" else _read_csv(data, charset)


def decode(data: bytes, charset: str | None = None) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in.

    Chinese Excel saves "CSV" in GBK and "CSV UTF-8" with a BOM; both are common, so both are
    read. A file that is valid UTF-8 is taken as UTF-8: GBK text is practically never valid
    UTF-8. GB 18030 decodes every GBK file and is used for it.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SheetError(
            "the file is UTF-16 text (Excel's 'Unicode text'); save it as 'CSV UTF-8' instead"
        )
    if b"\x00" in data:
        raise SheetError("the file contains NUL bytes, so it is not a CSV text file")
    if charset:
        name = charset.strip().lower()
        name = {"gbk": "gb18030", "gb2312": "gb18030", "utf8": "utf-8"}.get(name, name)
        if name not in ("utf-8", "gb18030", "utf-8-sig"):
            raise SheetError(f"charset {charset!r} is not supported; use UTF-8 or GBK")
        try:
            return data.decode(name), "gbk" if name == "gb18030" else name
        except UnicodeDecodeError as exc:
            raise SheetError(f"the file is not valid {charset} text: {exc.reason}") from exc
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise SheetError(
                f"the file starts as UTF-8 but byte {exc.start + 3} is not UTF-8"
            ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise SheetError(
            "the file is neither UTF-8 nor GBK text; save it from Excel as 'CSV UTF-8'"
        ) from exc


def _delimiter(text: str) -> str:
    # Excel in some locales separates with semicolons; tab-separated text is also common.
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(data: bytes, charset: str | None) -> Sheet:
    text, encoding = decode(data, charset)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    records: list[Row] = []
    start = 1
    try:
        for cells in reader:
            records.append(Row(start, tuple(_unescape(c.strip()) for c in cells)))
            start = reader.line_num + 1
            if len(records) > MAX_ROWS + 1:
                raise SheetError(f"the file has more than {MAX_ROWS} rows; split it")
    except csv.Error as exc:
        raise SheetError(f"line {start}: the CSV is malformed: {exc}") from exc
    return _sheet(records, encoding)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _unescape(str(value).strip())


def _read_xlsx(data: bytes) -> Sheet:
    records: list[Row] = []
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except zipfile.BadZipFile as exc:
        raise SheetError("the file is not an XLSX workbook (not a valid zip archive)") from exc
    except Exception as exc:  # openpyxl reports a broken workbook in many ways
        raise SheetError(f"the file is not a readable XLSX workbook: {exc}") from exc
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS)
        for line, values in enumerate(rows, start=1):
            records.append(Row(line, tuple(_cell_text(v) for v in values)))
            if len(records) > MAX_ROWS + 1:
                raise SheetError(f"the workbook has more than {MAX_ROWS} rows; split it")
    except SheetError:
        raise
    except Exception as exc:  # a damaged workbook fails in many ways inside openpyxl
        raise SheetError(f"the workbook could not be read: {exc}") from exc
    finally:
        book.close()
    return _sheet(records, "xlsx")


def _sheet(records: list[Row], encoding: str) -> Sheet:
    rows = [r for r in records if any(r.cells)]
    if not rows:
        raise SheetError("the file has no header row")
    header, body = rows[0], rows[1:]
    width = len(header.cells)
    while width and not header.cells[width - 1]:
        width -= 1  # trailing empty header cells (XLSX pads rows to the widest)
    return Sheet(
        header=tuple(c.lower() for c in header.cells[:width]),
        header_line=header.line,
        rows=[Row(r.line, _fit(r.cells, width)) for r in body],
        encoding=encoding,
    )


def _fit(cells: tuple[str, ...], width: int) -> tuple[str, ...]:
    if any(cells[width:]):
        return cells  # a value under no header is a mistake for the importer to report
    return (*cells[:width], *([""] * (width - len(cells))))


def _escape(value: str) -> str:
    # Apostrophes already in front are escaped too, so that reading strips exactly one.
    return "'" + value if value.lstrip("'").startswith(FORMULA_START) else value


def _unescape(value: str) -> str:
    if value.startswith("'") and value.lstrip("'").startswith(FORMULA_START):
        return value[1:]
    return value


def write_csv(header: Sequence[str], rows: Iterable[Sequence[str | int | None]]) -> bytes:
    """UTF-8 with a BOM, which Excel needs to show Chinese text correctly."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _escape(v) if isinstance(v, str) else v for v in row])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[str | int | None]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("products")
    sheet.append(list(header))
    for row in rows:
        sheet.append([_xlsx_value(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_value(value: str | int | None) -> str | int | None:
    if not isinstance(value, str):
        return value
    # XLSX cannot hold most control characters; they are shown as U+FFFD rather than failing.
    return _escape(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
