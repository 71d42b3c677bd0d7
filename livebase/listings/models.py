"""The validated input of a listing: one set of rules for API bodies and imported rows."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic import Strict as StrictMode

from livebase import gi
from livebase.db.models import ProductStatus
from livebase.gi import GiSystem
from livebase.settings import SLUG_RE

FEN_MAX = 10**13
COUNT_MAX = 10**9
MAX_SKUS = 200
MAX_IMAGES = 20
MAX_THEMES = 20

Slug = Annotated[str, StringConstraints(pattern=SLUG_RE)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Fen = Annotated[
    int, StrictMode(), Field(ge=0, le=FEN_MAX, description="amount in fen (1/100 of a yuan)")
]
Count = Annotated[int, StrictMode(), Field(ge=0, le=COUNT_MAX)]
SkuCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
    Field(description="unique within the product: letters, digits, '.', '_' and '-'"),
]

STORED_IMAGE_RE = re.compile(r"^/media/images/([0-9a-f]{64})\.(jpg|png|webp|gif)$")
_URL_RE = re.compile(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", re.IGNORECASE)


def _image_url(value: str) -> str:
    if STORED_IMAGE_RE.match(value):
        return value
    if any(ord(ch) < 0x20 or ch in "|\x7f" for ch in value) or not _URL_RE.match(value):
        raise ValueError("an image is an http(s) URL, or /media/images/… as returned by an upload")
    return value


ImageUrl = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_image_url)
]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# Optional texts: blank means "not given", so a blank spreadsheet cell and a missing JSON field
# mean the same.
Text64 = Annotated[
    Annotated[str, StringConstraints(max_length=64, strip_whitespace=True)] | None,
    BeforeValidator(_blank_to_none),
]
Text100 = Annotated[
    Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] | None,
    BeforeValidator(_blank_to_none),
]
Text200 = Annotated[
    Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] | None,
    BeforeValidator(_blank_to_none),
]
Text500 = Annotated[
    Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)] | None,
    BeforeValidator(_blank_to_none),
]
Text2000 = Annotated[
    Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None,
    BeforeValidator(_blank_to_none),
]


def _credit_code(value: str | None) -> str | None:
    return None if value is None else gi.check_credit_code(value)


CreditCode = Annotated[
    Annotated[str, StringConstraints(max_length=40)] | None,
    BeforeValidator(_blank_to_none),
    AfterValidator(_credit_code),
    Field(description="the seller's unified social credit code (GB 32100-2015)"),
]


class StrictModel(BaseModel):
    """Unknown fields are refused: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


# --- GI claims ----------------------------------------------------------------------------------


class GiClaimIn(StrictModel):
    """A GI claim; fields may be left out while the listing is a draft (see ``livebase.gi``)."""

    system: GiSystem = Field(
        description="protected_product: 地理标志保护产品 (CNIPA); trademark: 地理标志证明商标/"
        "集体商标; agricultural: 农产品地理标志 (Ministry of Agriculture)"
    )
    registered_name: Text100 = Field(default=None, description="the exact registered name")
    registration_number: Text100 = Field(
        default=None,
        description="announcement number (protected_product), trademark registration number "
        "(trademark) or registration certificate number AGI+5 digits (agricultural)",
    )
    holder: Text200 = Field(default=None, description="registrant or certificate holder")
    protected_area: Text2000 = Field(default=None, description="the protected area")
    standard_code: Text64 = Field(
        default=None, description="product standard, e.g. GB/T 19690-2008, where there is one"
    )
    credit_code: CreditCode = None
    authorisation_ref: Text500 = Field(
        default=None, description="reference to the holder's authorisation of the seller"
    )

    @field_validator("registration_number")
    @classmethod
    def _number(cls, value: str | None, info: ValidationInfo) -> str | None:
        system = info.data.get("system")
        if value is None or system is None:
            return value
        return gi.check_registration_number(system, value)

    @field_validator("standard_code")
    @classmethod
    def _standard(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else gi.check_standard_code(info.data.get("system"), value)

    def claim(self) -> gi.GiClaim:
        return gi.GiClaim(**self.model_dump())


# --- SKUs and listings --------------------------------------------------------------------------


class SkuBase(StrictModel):
    sku: SkuCode
    spec_zh: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = Field(
        default="", description="the spec as shown to buyers, e.g. 500g 礼盒装"
    )
    spec_en: Text200 = None
    stock: Count = 0


class SkuIn(SkuBase):
    price_fen: Fen


class SkuCreate(SkuBase):
    price_fen: Fen | None = Field(
        default=None, description="amount in fen; defaults to the product's price_fen"
    )


class ListingFields(StrictModel):
    """What a listing says about itself, apart from its SKUs and its merchant."""

    title_zh: Name
    title_en: Name | None = None
    description_zh: LongText | None = None
    description_en: LongText | None = None
    category: Slug | None = Field(default=None, description="e.g. tea, fruit, rice")
    themes: list[Slug] = Field(
        default_factory=list, max_length=MAX_THEMES, description="slugs of the themes it suits"
    )
    images: list[ImageUrl] = Field(
        default_factory=list,
        max_length=MAX_IMAGES,
        description="in display order: http(s) URLs, or /media/images/… from an upload",
    )
    currency: Currency = "CNY"
    status: ProductStatus = ProductStatus.DRAFT
    gi: GiClaimIn | None = Field(
        default=None, description="a geographical-indication claim; must be complete to go live"
    )


def duplicates(values: list[str]) -> list[str]:
    """The values that occur more than once, each named once, in order."""
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated
