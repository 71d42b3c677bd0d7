"""Reading and writing sheets, and checking their rows: pure code, on bytes as Excel writes them."""

from __future__ import annotations

import codecs

import pytest
from listings_support import REAL_CODES, csv_text, image_bytes, xlsx_bytes

from livebase.listings import importer, tables
from livebase.listings.importer import COLUMNS, ImportRejected

HEADER = ["product", "merchant_id", "title_zh", "sku", "price_fen", "stock"]


def rows_of(sheet: tables.Sheet) -> list[tuple[int, tuple[str, ...]]]:
    return [(r.line, r.cells) for r in sheet.rows]


# --- encodings ---------------------------------------------------------------------------------

TEXT = csv_text([HEADER, ["new-1", 7, "陆河青梅", "500g", 3980, 10]])


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),  # Excel's "CSV UTF-8"
        (TEXT.encode("gbk"), "gbk"),  # Chinese Excel's plain "CSV"
        (TEXT.encode("gb18030"), "gbk"),
    ],
)
def test_utf8_bom_and_gbk_are_detected(data: bytes, encoding: str) -> None:
    sheet = tables.read(data)
    assert sheet.encoding == encoding and sheet.header == tuple(HEADER)
    assert rows_of(sheet) == [(2, ("new-1", "7", "陆河青梅", "500g", "3980", "10"))]


def test_a_declared_charset_wins() -> None:
    data = TEXT.encode("gbk")
    assert tables.read(data, charset="GBK").encoding == "gbk"
    with pytest.raises(tables.SheetError, match="not valid utf-8"):
        tables.read(data, charset="utf-8")
    with pytest.raises(tables.SheetError, match="not supported"):
        tables.read(data, charset="big5")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b" \r\n \r\n", "empty"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "UTF-16"),
        (TEXT.encode("utf-16-be"), "NUL bytes"),
        (b"product,title_zh\r\n1,\xff\xfe\xff\r\n", "neither UTF-8 nor GBK"),
        (codecs.BOM_UTF8 + b"product\r\n\xc7\xe0\r\n", "starts as UTF-8"),
        (image_bytes("PNG"), "neither UTF-8 nor GBK|NUL"),
        (b"PK\x03\x04not really a zip", "not an XLSX workbook"),
        (b'product,title_zh\r\n1,"unclosed\r\n', "malformed"),
    ],
)
def test_unreadable_files_say_why(data: bytes, message: str) -> None:
    with pytest.raises(tables.SheetError, match=message):
        tables.read(data)


def test_format_mismatch_is_explained() -> None:
    with pytest.raises(tables.SheetError, match="looks like CSV"):
        tables.read(TEXT.encode(), "xlsx")
    with pytest.raises(tables.SheetError, match="looks like XLSX"):
        tables.read(xlsx_bytes([HEADER]), "csv")


def test_semicolons_tabs_and_line_numbers() -> None:
    text = 'product;title_zh\r\n\r\n1;青梅\r\n2;"多行\r\n标题"\r\n3;茶\r\n'
    sheet = tables.read(text.encode())
    assert sheet.header == ("product", "title_zh")
    assert rows_of(sheet) == [(3, ("1", "青梅")), (4, ("2", "多行\r\n标题")), (6, ("3", "茶"))]
    assert tables.read(b"product\ttitle_zh\n1\tx\n").header == ("product", "title_zh")


def test_xlsx_cells_become_text() -> None:
    data = xlsx_bytes([[*HEADER, None], ["new-1", 7, "青梅", 500, 3980.0, None], [], ["x"]])
    sheet = tables.read(data)
    assert sheet.encoding == "xlsx" and sheet.header == tuple(HEADER)
    assert rows_of(sheet) == [
        (2, ("new-1", "7", "青梅", "500", "3980", "")),
        (4, ("x", "", "", "", "", "")),
    ]


def test_too_many_rows() -> None:
    text = "product\r\n" + "1\r\n" * (tables.MAX_ROWS + 1)
    with pytest.raises(tables.SheetError, match="more than"):
        tables.read(text.encode())


# --- writing -----------------------------------------------------------------------------------

EVIL = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "'=already", "normal", "茶"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formulas_are_defused_and_come_back_unchanged(fmt: str) -> None:
    writer = tables.write_csv if fmt == "csv" else tables.write_xlsx
    data = writer(["a", "b"], [[v, 5] for v in EVIL] + [[None, None]])
    if fmt == "csv":
        text = data.decode("utf-8-sig")
        assert data.startswith(codecs.BOM_UTF8) and "\r\n'+1,5\r\n" in text
        assert "\"'=HYPERLINK" in text and "\r\n''=already" in text
    sheet = tables.read(data)
    assert [r.cells[0] for r in sheet.rows] == EVIL


def test_xlsx_replaces_characters_it_cannot_hold() -> None:
    sheet = tables.read(tables.write_xlsx(["a"], [["bell\x07"]]))
    assert sheet.rows[0].cells == ("bell\ufffd",)


# --- rows to drafts ----------------------------------------------------------------------------


def sheet_of(rows: list[list[object]]) -> tables.Sheet:
    return tables.read(csv_text(rows).encode())


def problems_of(plan: importer.Plan) -> list[tuple[int, str]]:
    return [(p.line, p.column) for p in plan.all_problems()]


def test_rows_group_into_products() -> None:
    plan = importer.plan(
        sheet_of(
            [
                [*HEADER, "themes", "images", "gi_system", "gi_credit_code"],
                [
                    "new-a",
                    7,
                    "青梅",
                    "500g",
                    3980,
                    10,
                    "gi-produce|arts-crafts",
                    "https://a.example/1.jpg",
                    "agricultural",
                    REAL_CODES[0],
                ],
                ["new-a", "", "", "1kg", 7000, 5, "", "", "", ""],
                ["12", "", "茶", "250g", "12800", "", "", "", "", ""],
            ]
        )
    )
    assert problems_of(plan) == []
    first, second = plan.drafts
    assert (first.key, first.product_id, first.lines, first.merchant_id) == (
        "new-a",
        None,
        [2, 3],
        7,
    )
    assert [s.sku for s in first.skus] == ["500g", "1kg"] and first.skus[1].price_fen == 7000
    assert first.listing is not None and first.listing.themes == ["gi-produce", "arts-crafts"]
    assert first.listing.gi is not None and first.listing.gi.credit_code == REAL_CODES[0]
    assert (second.product_id, second.skus[0].stock) == (12, 0)
    assert "gi" in second.given and "status" not in second.given


def test_every_bad_cell_is_reported_by_line_and_column() -> None:
    plan = importer.plan(
        sheet_of(
            [
                [*HEADER, "status", "gi_system", "gi_credit_code", "gi_registration_number"],
                ["new-a", 7, "好", "ok", 100, 1, "active", "", "", ""],
                ["new-b", 7, "", "bad sku!", -5, "many", "live", "", "91440300568520498B", ""],
                ["", 7, "无主", "x", 1, 1, "", "", "", ""],
                ["new-c", 7, "茶", "a", "39.80", 1, "", "agricultural", "", "12345"],
                ["new-c", 7, "不同", "a", 1, 1, "", "", "", ""],
                ["0", "", "x", "z", 1, 1, "", "", "", ""],
            ]
        )
    )
    assert problems_of(plan) == [
        (3, "gi_system"),
        (3, "price_fen"),
        (3, "sku"),
        (3, "status"),
        (3, "stock"),
        (3, "title_zh"),
        (4, "product"),
        (5, "gi_registration_number"),
        (5, "price_fen"),
        (6, "sku"),
        (6, "title_zh"),
        (7, "product"),
    ]
    by_place = {(p.line, p.column): p.message for p in plan.all_problems()}
    assert "¥39.80 is 3980" in by_place[(5, "price_fen")]
    assert "'many' is not a whole number" in by_place[(3, "stock")]
    assert "differs from line 5" in by_place[(6, "title_zh")]
    assert "appears twice (also line 5)" in by_place[(6, "sku")]
    assert by_place[(3, "title_zh")] == "required"
    assert "AGI and five digits" in by_place[(5, "gi_registration_number")]
    assert [d.key for d in plan.drafts if not d.problems] == ["new-a"]


@pytest.mark.parametrize(
    ("header", "column", "message"),
    [
        (["product", "title_zh", "sku"], "price_fen", "required"),
        (["product", "title_zh", "sku", "price_fen", "colour"], "colour", "unknown column"),
        (["product", "title_zh", "sku", "price_fen", "SKU"], "sku", "more than once"),
    ],
)
def test_a_bad_header_rejects_the_file(header: list[str], column: str, message: str) -> None:
    with pytest.raises(ImportRejected) as info:
        importer.plan(sheet_of([header, ["1"] * len(header)]))
    assert [(p.line, p.column) for p in info.value.problems] == [(1, column)]
    assert message in info.value.problems[0].message


def test_values_under_no_column_are_reported() -> None:
    plan = importer.plan(sheet_of([HEADER, ["new-1", 7, "x", "a", 1, 1, "stray"]]))
    assert problems_of(plan) == [(2, "(row)")]


def test_export_columns_are_importable() -> None:
    assert importer.plan(sheet_of([list(COLUMNS)])).drafts == []
    assert set(importer.REQUIRED) <= set(COLUMNS)


def test_numbers_as_spreadsheets_write_them() -> None:
    plan = importer.plan(
        sheet_of(
            [
                HEADER,
                ["new-1", "7", "a", "x", "1E+3", "+2"],
                ["new-2", "7", "b", "x", "1E+999999999", "NaN"],
            ]
        )
    )
    good, bad = plan.drafts
    assert (good.skus[0].price_fen, good.skus[0].stock) == (1000, 2) and not good.problems
    assert [(p.column, p.message) for p in bad.problems] == [
        ("price_fen", "'1E+999999999' is out of range"),
        ("stock", "'NaN' is not a whole number"),
    ]
