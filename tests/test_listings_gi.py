"""GB 32100-2015 credit codes and GI claims: pure checks, against published examples."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from livebase import gi
from livebase.gi import GiClaim, GiSystem
from livebase.listings.models import GiClaimIn

# Real codes as published. Source: python-stdnum, tests/test_cn_uscc.doctest ("These have been
# found online and should all be valid numbers"). The selection spans registration authorities
# 1 and 9, entity types 1 and 2, letters in the subject code, and digit and letter check
# characters including 0.
PUBLISHED = [
    "121200004013590816",  # authority 1 (机构编制): a public institution
    "91110000600037341L",
    "91110000710926094P",
    "91310000631696382C",
    "91310115MA1K3BTP2B",  # a newer "MA" subject code
    "91340600MA2PBNE723",
    "9131012056010553X5",  # an X inside the subject code
    "91440300568520498A",
    "9144030071526726XG",
    "9144060573144633XL",
    "91442000696462712R",
    "91620105L015101280",  # check character 0 (31 - 0 → 31 → 0)
    "92340602MA2PBMEM24",  # authority 9, type 2 (个体工商户)
]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code: str) -> None:
    assert gi.credit_code_check_char(code[:17]) == code[17]
    assert gi.check_credit_code(code) == code


def test_the_standards_worked_example() -> None:
    # GB 32100-2015's worked example, as reproduced in published copies of its check-code
    # annex: for 91350100M000100Y4Z the sum is 1640, 1640 mod 31 = 28, 31 - 28 = 3, so the
    # check character is 3 and the code as written (ending in Z) is not valid.
    first17 = "91350100M000100Y4"
    values = [gi.CREDIT_CODE_CHARSET.index(ch) for ch in first17]
    assert sum(v * w for v, w in zip(values, gi.CREDIT_CODE_WEIGHTS, strict=True)) == 1640
    assert gi.credit_code_check_char(first17) == "3"
    assert not gi.is_valid_credit_code(first17 + "Z")
    assert gi.is_valid_credit_code(first17 + "3")


def test_weights_are_the_standards_table() -> None:
    assert gi.CREDIT_CODE_WEIGHTS == (
        1,
        3,
        9,
        27,
        19,
        26,
        16,
        17,
        20,
        29,
        25,
        13,
        8,
        24,
        10,
        30,
        28,
    )
    assert len(gi.CREDIT_CODE_CHARSET) == 31 and not set("IOSVZ") & set(gi.CREDIT_CODE_CHARSET)


def test_every_single_character_change_is_caught() -> None:
    code = "91440300568520498A"
    for i in range(18):
        for ch in gi.CREDIT_CODE_CHARSET:
            if ch != code[i]:
                changed = code[:i] + ch + code[i + 1 :]
                if i in range(2, 8) and not ch.isdigit():
                    continue  # refused for its format before the check character
                assert not gi.is_valid_credit_code(changed), changed


def test_spaces_and_lower_case_are_normalised() -> None:
    assert gi.check_credit_code(" 9144 0300 5685 2049 8a ") == "91440300568520498A"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "18 characters, not 0"),
        ("9144030056852049", "18 characters, not 16"),
        ("91440300568520498A0", "18 characters, not 19"),
        ("9144030056852049OA", "not 'O'"),
        ("91440300568520I9SA", "not 'IS'"),
        ("91AB0300568520498A", "six digits"),
        ("91440300568520498B", "check character"),
        ("91440300568520498Z", "not 'Z'"),
        ("９１４４０３００５６８５２０４９８Ａ", "not"),  # full-width characters
    ],
)
def test_bad_codes_say_what_is_wrong(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gi.check_credit_code(code)


def test_check_char_needs_17_code_characters() -> None:
    with pytest.raises(ValueError, match="17"):
        gi.credit_code_check_char("9144")
    with pytest.raises(ValueError, match="'I'"):
        gi.credit_code_check_char("9144030056852049I")


# --- registration numbers and standards ----------------------------------------------------


def test_agricultural_certificate_numbers_follow_the_published_format() -> None:
    # 农业部公告第2179号 names certificates AGI01459, AGI01460 and AGI00423.
    for number in ("AGI01459", "AGI01460", "AGI00423", "agi00423"):
        assert gi.check_registration_number(GiSystem.AGRICULTURAL, number) == number.upper()
    for number in ("AGI1459", "AGI014590", "GI01459", "AGI-01459", "01459"):
        with pytest.raises(ValueError, match="AGI and five digits"):
            gi.check_registration_number(GiSystem.AGRICULTURAL, number)


@pytest.mark.parametrize("system", [GiSystem.PROTECTED_PRODUCT, GiSystem.TRADEMARK])
def test_unpublished_number_formats_are_only_checked_for_presence(system: GiSystem) -> None:
    for number in ("国家质检总局2006年第XX号公告", "第12345678号", "示例-0001"):
        assert gi.check_registration_number(system, number) == number
    with pytest.raises(ValueError, match="empty"):
        gi.check_registration_number(system, "   ")
    with pytest.raises(ValueError, match="longer than 100"):
        gi.check_registration_number(system, "9" * 101)


@pytest.mark.parametrize(
    "code",
    [
        "GB/T 19690-2008",
        "GB 19051-2008",
        "DB44/T 1234-2013",
        "NY/T 1234-2006",
        "T/GDAS 001-2020",
        "GB/T 19690—2008",
        "DB44/T 12.3-2013",
    ],
)
def test_standard_codes(code: str) -> None:
    assert gi.check_standard_code(GiSystem.PROTECTED_PRODUCT, code) == code


def test_agricultural_quality_specifications_count_as_standards() -> None:
    # The quality-control specification numbers of 农业部公告第2179号 and 第1813号.
    for spec in ("AGI2014-02-1497", "AGI2012-02-869"):
        assert gi.check_standard_code(GiSystem.AGRICULTURAL, spec) == spec
    with pytest.raises(ValueError, match="AGI2014-02-1497"):
        gi.check_standard_code(GiSystem.AGRICULTURAL, "AGI-spec")
    with pytest.raises(ValueError, match="not a standard code"):
        gi.check_standard_code(GiSystem.TRADEMARK, "AGI2014-02-1497")


@pytest.mark.parametrize("code", ["GB/T", "19690-2008", "GB/T 19690", "gb/t 19690-2008", "x"])
def test_not_standard_codes(code: str) -> None:
    with pytest.raises(ValueError, match="not a standard code"):
        gi.check_standard_code(None, code)


# --- completeness --------------------------------------------------------------------------

COMPLETE = GiClaim(
    system=GiSystem.PROTECTED_PRODUCT,
    registered_name="陆河青梅",
    registration_number="国家质检总局公告",
    holder="陆河县人民政府",
    protected_area="陆河县现辖行政区域",
    credit_code="91442000696462712R",
    authorisation_ref="授权书 001",
)


def test_a_complete_claim_has_no_problems() -> None:
    assert gi.problems(COMPLETE) == []


def test_an_empty_claim_names_every_missing_field() -> None:
    found = gi.problems(GiClaim(system=GiSystem.TRADEMARK))
    assert [p.field for p in found] == list(gi.REQUIRED_TO_GO_LIVE)
    assert all(p.message for p in found)


def test_blank_counts_as_missing_and_bad_values_are_named() -> None:
    claim = GiClaim(
        system=GiSystem.AGRICULTURAL,
        registered_name="  ",
        registration_number="12345",
        holder="x",
        protected_area="y",
        standard_code="nonsense",
        credit_code="91442000696462712X",
        authorisation_ref="z",
    )
    assert {p.field for p in gi.problems(claim)} == {
        "registered_name",
        "registration_number",
        "standard_code",
        "credit_code",
    }


def test_the_api_model_checks_formats_per_system() -> None:
    claim = GiClaimIn.model_validate(
        {
            "system": "agricultural",
            "registration_number": "agi00423",
            "holder": "  ",
            "credit_code": "9144 2000 6964 6271 2r",
        }
    )
    assert claim.registration_number == "AGI00423" and claim.holder is None
    assert claim.credit_code == "91442000696462712R"
    with pytest.raises(ValidationError) as info:
        GiClaimIn.model_validate(
            {
                "system": "agricultural",
                "registration_number": "12345",
                "credit_code": "91442000696462712X",
                "colour": "red",
            }
        )
    assert {e["loc"][0] for e in info.value.errors()} == {
        "registration_number",
        "credit_code",
        "colour",
    }
    with pytest.raises(ValidationError, match="system"):
        GiClaimIn.model_validate({"system": "madrid"})


def test_system_names() -> None:
    assert GiSystem.PROTECTED_PRODUCT.name_zh == "地理标志保护产品"
    assert GiSystem.AGRICULTURAL.name_zh == "农产品地理标志"
    assert "商标" in GiSystem.TRADEMARK.name_zh
