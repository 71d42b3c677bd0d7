"""JSON objects read into Arrow columns by pyarrow's C++ reader, with msgspec's verdict.

:class:`JsonColumns` derives from a msgspec struct (by :func:`msgspec.inspect.type_info`) an
Arrow schema and the rules msgspec applies while decoding into it: the JSON types, bounds of
integers, lengths of strings in code points, required fields, defaults, ``None`` for an absent
Optional, names refused (fields typed ``UnsetType``), unknown names ignored. A struct with a
field of any other type is not read here at all (:attr:`JsonColumns.supported` is false).

pyarrow's reader is laxer than msgspec in places and crashes on one input, so it only ever sees
texts that pass a screen on columns (:meth:`JsonColumns.eligible`; the reasons are listed
there), and when it refuses a group of texts it refuses the whole group: the caller then
decodes that group with msgspec. What it reads, checked on columns, is what msgspec would
decode; ``tests/analytics/test_json_columns.py`` holds the two to each other on hostile texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

#: Smallest block of the reader (its default); a longer text gets a block of its own size.
BLOCK: Final = 1 << 20
#: Texts holding any of these are left to msgspec (RE2; ``.\{``: a ``{`` after the first
#: character); see :meth:`JsonColumns.eligible`.
SCREENED: Final = (r"[\x00-\x1f\\\[]", "null", "NaN", "Inf", r".\{")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  #: the struct's attribute
    key: str  #: its name in JSON
    type: pa.DataType
    required: bool
    default: pa.Scalar | None  #: where absent; None: absent stays None
    #: Optional with None for default: an explicit null means what absence means.
    nullable: bool
    #: ``(comparison, bound)`` on the value (integers) or its length in code points (strings).
    bounds: tuple[tuple[str, int], ...]


def _field(field: msgspec.inspect.Field) -> _Field | None:
    """How to read ``field`` on columns; None if this module cannot hold it to msgspec's rules."""
    kind, optional = field.type, False
    if isinstance(kind, msgspec.inspect.UnionType):
        rest = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(rest) != 1 or len(kind.types) != 2:
            return None
        kind, optional = rest[0], True
    if isinstance(kind, msgspec.inspect.IntType) and kind.multiple_of is None:
        arrow: pa.DataType = pa.int64()
        limits = {"greater": kind.gt, "greater_equal": kind.ge, "less": kind.lt}
        limits["less_equal"] = kind.le
    elif isinstance(kind, msgspec.inspect.StrType) and kind.pattern is None:
        arrow = pa.string()
        limits = {"greater_equal": kind.min_length, "less_equal": kind.max_length}
    else:
        return None
    default = None
    if not field.required:
        if field.default_factory is not msgspec.NODEFAULT or field.default is msgspec.NODEFAULT:
            return None
        if field.default is not None:
            try:
                default = pa.scalar(field.default, arrow)
            except (pa.ArrowException, TypeError, ValueError):
                return None
    bounds = tuple((name, bound) for name, bound in limits.items() if bound is not None)
    nullable = optional and not field.required and field.default is None
    return _Field(field.name, field.encode_name, arrow, field.required, default, nullable, bounds)


def _refused(field: msgspec.inspect.Field) -> bool:
    """A field typed ``UnsetType``: msgspec refuses every value of it."""
    kind = field.type
    return isinstance(kind, msgspec.inspect.CustomType) and kind.cls is msgspec.UnsetType


def _same(size: int, value: bool) -> pa.Array:
    return pc.fill_null(pa.nulls(size, pa.bool_()), value)


def _all(checks: list[Any], size: int) -> pa.Array:
    ok: Any = _same(size, True) if not checks else checks[0]
    for check in checks[1:]:
        ok = pc.and_(ok, check)
    return pc.fill_null(ok, False)


def _lines(texts: pa.Array) -> pa.Buffer:
    """The texts, each followed by a newline, as one buffer."""
    joined = pc.binary_join_element_wise(texts, "\n", "")
    size = pc.sum(pc.binary_length(joined)).as_py() or 0
    return joined.buffers()[2].slice(0, size)


class JsonColumns:
    """Reads JSON texts of one msgspec struct into columns; see the module's docstring."""

    def __init__(self, struct: type[msgspec.Struct]) -> None:
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        fields = [f for f in info.fields if not _refused(f)]
        read = [_field(f) for f in fields]
        self.fields: tuple[_Field, ...] = tuple(f for f in read if f is not None)
        self.refused: tuple[str, ...] = tuple(f.encode_name for f in info.fields if _refused(f))
        #: Whether :meth:`read` can take this struct's texts (else all go to msgspec).
        self.supported: bool = (
            len(self.fields) == len(fields)
            and not info.array_like
            and not info.forbid_unknown_fields
            and info.tag_field is None
        )
        self.schema = pa.schema([(f.key, f.type) for f in self.fields])
        #: ``"name":null`` of the nullable fields, which the screen lets through.
        self.nulls = "|".join(f'"{re.escape(f.key)}":null' for f in self.fields if f.nullable)

    def eligible(self, texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        """Which texts the reader may see; false for all when the struct is not supported.

        - Starts with ``{``, ends with ``}``, no control character (so no newline): joined by
          newlines, each line is one text, and every block of the reader (which ends blocks
          after a newline) starts with ``{``. pyarrow crashes (segmentation fault) when the
          first value of a buffer or block is a top-level ``null``; this is what keeps it from
          ever seeing one. JSON takes no raw control character inside a string either.
        - No backslash: no escapes, so names are as written (the screen on refused names
          holds) and strings are raw (no lone surrogates).
        - No ``null`` but as ``"name":null`` (just so) for an Optional field whose default is
          None, where null and absence mean the same: a missing value in any other column
          means the name was absent, never an explicit null (which msgspec refuses for a field
          that is not Optional, even one with a default). With no backslash and no nesting,
          ``"name":null`` can only be a name of the object and its value.
        - No ``NaN`` or ``Inf``: the reader takes these non-JSON numbers, msgspec does not.
        - No ``[`` and no second ``{``: no nesting, which the reader takes to any depth and
          msgspec and orjson do not (recursion limits, about a thousand levels).
        - No ``"name"`` for a refused name (typed ``UnsetType``), wherever it stands.
        - None at all if any text is invalid UTF-8, which the reader does not check.

        All but the first and last character are screened by one regular expression: one
        pass, where a pass per string would cost ten.
        """
        size = len(texts)
        try:
            texts.validate(full=True)  # UTF-8, which the reader does not check
        except pa.ArrowInvalid:
            return _same(size, False)
        if not self.supported:
            return _same(size, False)
        refused = [f'"{re.escape(name)}"' for name in self.refused]
        # Taking the allowed nulls out can only join characters into more of what is screened.
        seen = pc.replace_substring_regex(texts, self.nulls, "") if self.nulls else texts
        screened = pc.match_substring_regex(seen, "|".join([*SCREENED, *refused]))
        checks = [pc.starts_with(texts, "{"), pc.ends_with(texts, "}"), pc.invert(screened)]
        return _all(checks, size)

    def read(self, texts: pa.Array) -> tuple[dict[str, pa.Array], pa.Array] | None:
        """The fields of eligible ``texts`` by attribute name, defaults filled in, and which
        texts msgspec would decode; None when the reader refuses them (as a whole). Only for
        texts :meth:`eligible` passes: pyarrow crashes on some others.

        Refused: invalid UTF-8 (checked first: the reader does not), a value of another JSON
        type than its field's, an integer beyond 64 bits, a field's name given twice, a number too
        large for a double anywhere, any JSON error. A text of two objects (``{}{}``) the
        reader takes as two rows: since ``}`` then ``{`` cannot follow each other inside a
        value, texts can only be split between values, so as many rows as texts means one
        object per text.
        """
        size = len(texts)
        try:
            texts.validate(full=True)
            longest = pc.max(pc.binary_length(texts)).as_py() or 0
            table = pj.read_json(
                pa.BufferReader(_lines(texts)),
                # One thread: the caller reads files in parallel already.
                read_options=pj.ReadOptions(use_threads=False, block_size=max(BLOCK, longest + 1)),
                parse_options=pj.ParseOptions(
                    explicit_schema=self.schema, unexpected_field_behavior="ignore"
                ),
            )
        except pa.ArrowException:
            return None
        if table.num_rows != size:
            return None
        checks: list[Any] = []
        columns = {}
        for field in self.fields:
            column = table[field.key].combine_chunks()
            if field.required:
                checks.append(pc.is_valid(column))
            # No control character in strings: screened on the texts.
            measured = pc.utf8_length(column) if pa.types.is_string(field.type) else column
            for comparison, bound in field.bounds:
                checks.append(pc.fill_null(getattr(pc, comparison)(measured, bound), True))
            if field.default is not None:
                column = pc.fill_null(column, field.default)
            columns[field.name] = column
        return columns, _all(checks, size)
