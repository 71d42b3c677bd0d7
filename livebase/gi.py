"""Geographical-indication (GI) claims and the unified social credit code: pure checks, no I/O.

China runs three GI systems side by side, and a listing that claims a GI names one of them:

- ``protected_product``: 地理标志保护产品, approved by announcement (公告), formerly of AQSIQ and
  since 2018 of CNIPA (国家知识产权局);
- ``trademark``: 地理标志证明商标 / 集体商标, a certification or collective trademark registered
  by CNIPA's trademark office;
- ``agricultural``: 农产品地理标志, registered by the Ministry of Agriculture (农业农村部), which
  issues a registration certificate (登记证书).

A buyer or a regulator checks a claim against the register, so a claim that goes live must carry
everything they need: the system, the exact registered name, the registration / announcement /
certificate number, the holder, the protected area, the seller's unified social credit code and a
reference to the proof that the holder authorised the seller. The product standard (or, for
agricultural GIs, the quality-control technical specification) is optional: not every GI has one.

Number formats are checked only where they are published. Agricultural GI certificates are
numbered ``AGI`` and five digits (e.g. ``AGI01459`` in 农业部公告第2179号), and their
quality-control specifications ``AGI2014-02-1497`` (same announcement); announcement and trademark
registration numbers have no published format that we could rely on, so for them only presence
and length are checked.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# --- unified social credit code (统一社会信用代码), GB 32100-2015 --------------------------------

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 code characters (no I, O, S, V, Z); a character's value is its index here."""

CREDIT_CODE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
"""W_i = 3^(i-1) mod 31: 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28."""

_VALUES = {ch: i for i, ch in enumerate(CREDIT_CODE_CHARSET)}


def credit_code_check_char(first17: str) -> str:
    """The 18th (check) character for the first 17 characters of a credit code.

    C18 = 31 - (Σ C_i × W_i mod 31), where a result of 31 stands for the character ``0``.
    """
    if len(first17) != 17:
        raise ValueError(f"need the first 17 characters, got {len(first17)}")
    try:
        total = sum(_VALUES[ch] * w for ch, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not a credit code character") from exc
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def normalize_credit_code(value: str) -> str:
    """Upper case without spaces, as printed on a business licence."""
    return "".join(value.split()).upper()


def check_credit_code(value: str) -> str:
    """The normalised code, or ``ValueError`` saying precisely what is wrong with it."""
    code = normalize_credit_code(value)
    if len(code) != 18:
        raise ValueError(f"a unified social credit code has 18 characters, not {len(code)}")
    bad = sorted({ch for ch in code if ch not in _VALUES})
    if bad:
        raise ValueError(
            f"a unified social credit code uses digits and the letters "
            f"ABCDEFGHJKLMNPQRTUWXY only, not {''.join(bad)!r}"
        )
    if not code[2:8].isdigit():
        raise ValueError(
            "characters 3 to 8 of a unified social credit code are the registering "
            "authority's administrative division code, which is six digits"
        )
    if credit_code_check_char(code[:17]) != code[17]:
        raise ValueError(
            "not a valid unified social credit code: the check character (the 18th) does not "
            "match the first 17 (GB 32100-2015); check it against the business licence"
        )
    return code


def is_valid_credit_code(value: str) -> bool:
    try:
        check_credit_code(value)
    except ValueError:
        return False
    return True


# --- GI claims ----------------------------------------------------------------------------------


class GiSystem(enum.StrEnum):
    PROTECTED_PRODUCT = "protected_product"
    TRADEMARK = "trademark"
    AGRICULTURAL = "agricultural"

    @property
    def name_zh(self) -> str:
        return _SYSTEM_NAMES[self][0]

    @property
    def number_label(self) -> str:
        """What the registration number of this system is called on its documents."""
        return _SYSTEM_NAMES[self][1]


_SYSTEM_NAMES = {
    GiSystem.PROTECTED_PRODUCT: ("地理标志保护产品", "announcement number (公告号)"),
    GiSystem.TRADEMARK: ("地理标志证明商标/集体商标", "trademark registration number (注册号)"),
    GiSystem.AGRICULTURAL: ("农产品地理标志", "registration certificate number (登记证书编号)"),
}

AGI_CERTIFICATE_RE = re.compile(r"^AGI\d{5}$")
AGI_SPEC_RE = re.compile(r"^AGI\d{4}-\d{2}-\d{1,5}$")
# A Chinese standard code is its prefix (GB, GB/T, an industry code such as NY/T, a local DB44/T,
# a group T/ABC), a sequence number and the year: "GB/T 19690-2008", "DB44/T 1234-2013".
STANDARD_CODE_RE = re.compile(
    r"^(?:GB(?:/[TZ])?|[A-Z]{2}(?:/[TZ])?|DB\d{2}(?:/[TZ])?|T/[A-Z0-9]{2,20})"
    r" ?\d{1,6}(?:\.\d{1,3})?(?:-|—)(?:\d{4}|\d{2})$"
)
NUMBER_MAX = 100


def check_registration_number(system: GiSystem, value: str) -> str:
    number = value.strip()
    if not number:
        raise ValueError(f"the {system.number_label} is empty")
    if len(number) > NUMBER_MAX:
        raise ValueError(f"the {system.number_label} is longer than {NUMBER_MAX} characters")
    if system is GiSystem.AGRICULTURAL and not AGI_CERTIFICATE_RE.match(number.upper()):
        raise ValueError(
            "an agricultural GI registration certificate number is AGI and five digits, "
            "e.g. AGI01459"
        )
    return number.upper() if system is GiSystem.AGRICULTURAL else number


def check_standard_code(system: GiSystem | None, value: str) -> str:
    code = " ".join(value.split())
    if system is GiSystem.AGRICULTURAL and AGI_SPEC_RE.match(code):
        return code
    if not STANDARD_CODE_RE.match(code):
        hint = " or an AGI quality-control specification such as AGI2014-02-1497"
        raise ValueError(
            "not a standard code such as GB/T 19690-2008 or DB44/T 1234-2013"
            + (hint if system is GiSystem.AGRICULTURAL else "")
        )
    return code


@dataclass(frozen=True, slots=True)
class GiClaim:
    """What a listing states about its GI; fields may be missing while it is a draft."""

    system: GiSystem
    registered_name: str | None = None
    registration_number: str | None = None
    holder: str | None = None
    protected_area: str | None = None
    standard_code: str | None = None
    credit_code: str | None = None
    authorisation_ref: str | None = None


REQUIRED_TO_GO_LIVE = (
    "registered_name",
    "registration_number",
    "holder",
    "protected_area",
    "credit_code",
    "authorisation_ref",
)


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str


def problems(claim: GiClaim) -> list[Problem]:
    """Why ``claim`` cannot go live; empty when it is complete and well-formed."""
    found: list[Problem] = []
    for name in REQUIRED_TO_GO_LIVE:
        value = getattr(claim, name)
        if value is None or not value.strip():
            found.append(Problem(name, _MISSING[name]))
    checks = (
        ("registration_number", lambda v: check_registration_number(claim.system, v)),
        ("credit_code", check_credit_code),
        ("standard_code", lambda v: check_standard_code(claim.system, v)),
    )
    for name, check in checks:
        value = getattr(claim, name)
        if value is not None and value.strip():
            try:
                check(value)
            except ValueError as exc:
                found.append(Problem(name, str(exc)))
    return found


_MISSING = {
    "registered_name": "the exact registered name of the GI is required",
    "registration_number": "the registration, announcement or certificate number is required",
    "holder": "the holder of the GI (the registrant or certificate holder) is required",
    "protected_area": "the protected area as registered is required",
    "credit_code": "the seller's unified social credit code is required",
    "authorisation_ref": "a reference to the holder's authorisation of the seller is required",
}
