"""KPI definitions, written once and evaluated on one scope or on a table of many.

Every KPI is a function of the additive (or exactly deduplicated) counts in :class:`Totals`.
The same function takes Python ints and returns ``int``/``float``/``None``, or takes pandas
integer columns and returns a nullable column (``Int64``/``Float64``) with ``<NA>`` where the
scalar form gives ``None``. Live counters, rollups and reports all go through here, and
``docs/metrics.md`` documents each definition (a test keeps the two in step).

Rules shared by all KPIs:

* An undefined ratio (zero denominator) is ``None``/``<NA>``, never 0 and never NaN.
* Money is whole fen (分). Sums are exact; a per-unit amount (GPM, UV value) is rounded half up
  to whole fen with integer arithmetic, so no float ever touches money.
* Rates (conversions, CTR, ACU …) are the float quotient, unrounded; rounding is for display.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, overload

import pandas as pd


@dataclass(frozen=True, slots=True)
class Totals:
    """The counts behind every KPI for one scope (a session, a host-day, a base-week …).

    Fields marked *distinct* are sizes of exact sets and are not additive: the UV of a day is
    the size of the union of its sessions' viewer sets, not the sum of their UVs. Rollups keep
    those sets (see ``docs/metrics.md``). ``peak_concurrent`` combines by maximum over minutes.
    """

    gmv_fen: int = 0  #: sum of amount_fen over distinct paid orders
    refund_fen: int = 0  #: sum of amount_fen over distinct refunds
    orders: int = 0  #: distinct paid order ids
    buyers: int = 0  #: distinct (platform, buyer_id) with a paid order
    views: int = 0  #: viewer.joined events (a viewer who comes back counts again)
    uv: int = 0  #: distinct (source, viewer_id) with any viewer event
    viewer_seconds: int = 0  #: sum of watch_seconds of heartbeats and leaves
    live_seconds: int = 0  #: seconds between stream.started and stream.ended
    peak_concurrent: int = 0  #: highest per-minute concurrency (see peak_concurrent_viewers)
    impressions: int = 0  #: product card impressions (sum of counts)
    clicks: int = 0  #: product.clicked events
    clickers: int = 0  #: distinct viewers with a product click
    click_buyers: int = 0  #: distinct clickers who paid an order carrying their viewer id
    interacting_uv: int = 0  #: distinct viewers with a like, comment, share or follow

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 0:
                raise ValueError(f"Totals.{f.name} must be a non-negative int, not {value!r}")


TOTALS_FIELDS: Final = tuple(f.name for f in fields(Totals))


# Two primitives carry all the arithmetic; each writes its expression once, and the scalar and
# column branches differ only in how a zero denominator becomes None or <NA>.


def _half_up(numerator: Any, denominator: Any) -> Any:
    # floor(n/d + 1/2) in integers: exact for any size, and the same expression for ints and
    # Int64 columns (both floor on //).
    return (2 * numerator + denominator) // (2 * denominator)


def _int_column(column: pd.Series[int]) -> pd.Series[int]:
    return column.astype("Int64")


def _nonzero(column: pd.Series[int]) -> pd.Series[int]:
    column = _int_column(column)
    return column.mask(column == 0)


@overload
def ratio(numerator: int, denominator: int) -> float | None: ...
@overload
def ratio(numerator: pd.Series[int], denominator: pd.Series[int]) -> pd.Series[float]: ...
def ratio(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator`` as a float; None (or <NA>) when the denominator is 0."""
    if isinstance(denominator, pd.Series):
        num = _int_column(numerator).astype("Float64")
        return num / _nonzero(denominator).astype("Float64")
    if denominator == 0:
        return None
    return numerator / denominator


@overload
def fen_per(amount_fen: int, units: int, scale: int = 1) -> int | None: ...
@overload
def fen_per(
    amount_fen: pd.Series[int], units: pd.Series[int], scale: int = 1
) -> pd.Series[int]: ...
def fen_per(amount_fen: Any, units: Any, scale: int = 1) -> Any:
    """Fen per ``scale`` units, rounded half up to whole fen; None (<NA>) when no units."""
    if isinstance(units, pd.Series):
        return _half_up(_int_column(amount_fen) * scale, _nonzero(units))
    if units == 0:
        return None
    return _half_up(amount_fen * scale, units)


# One function per derived KPI. The overloads only tell the type checker that ints give
# scalars and columns give columns; each body is the single definition.


@overload
def net_gmv_fen(gmv_fen: int, refund_fen: int) -> int: ...
@overload
def net_gmv_fen(gmv_fen: pd.Series[int], refund_fen: pd.Series[int]) -> pd.Series[int]: ...
def net_gmv_fen(gmv_fen: Any, refund_fen: Any) -> Any:
    """Paid GMV less refunds in the same scope; negative when refunds outweigh sales."""
    return gmv_fen - refund_fen


@overload
def pcu(peak_concurrent: int, live_seconds: int) -> int | None: ...
@overload
def pcu(peak_concurrent: pd.Series[int], live_seconds: pd.Series[int]) -> pd.Series[int]: ...
def pcu(peak_concurrent: Any, live_seconds: Any) -> Any:
    """Peak concurrent viewers; None when the scope was never live."""
    if isinstance(live_seconds, pd.Series):
        return _int_column(peak_concurrent).mask(live_seconds == 0)
    return None if live_seconds == 0 else peak_concurrent


@overload
def acu(viewer_seconds: int, live_seconds: int) -> float | None: ...
@overload
def acu(viewer_seconds: pd.Series[int], live_seconds: pd.Series[int]) -> pd.Series[float]: ...
def acu(viewer_seconds: Any, live_seconds: Any) -> Any:
    """Average concurrent viewers: viewer-seconds per live second."""
    return ratio(viewer_seconds, live_seconds)


@overload
def avg_watch_seconds(viewer_seconds: int, uv: int) -> float | None: ...
@overload
def avg_watch_seconds(viewer_seconds: pd.Series[int], uv: pd.Series[int]) -> pd.Series[float]: ...
def avg_watch_seconds(viewer_seconds: Any, uv: Any) -> Any:
    """Average watch time per unique viewer, in seconds."""
    return ratio(viewer_seconds, uv)


@overload
def gpm_fen(gmv_fen: int, views: int) -> int | None: ...
@overload
def gpm_fen(gmv_fen: pd.Series[int], views: pd.Series[int]) -> pd.Series[int]: ...
def gpm_fen(gmv_fen: Any, views: Any) -> Any:
    """GPM: paid GMV per 1,000 views, in fen."""
    return fen_per(gmv_fen, views, 1000)


@overload
def gpm_uv_fen(gmv_fen: int, uv: int) -> int | None: ...
@overload
def gpm_uv_fen(gmv_fen: pd.Series[int], uv: pd.Series[int]) -> pd.Series[int]: ...
def gpm_uv_fen(gmv_fen: Any, uv: Any) -> Any:
    """GPM per 1,000 unique viewers (labelled "GPM (UV)" wherever shown), in fen."""
    return fen_per(gmv_fen, uv, 1000)


@overload
def uv_value_fen(gmv_fen: int, uv: int) -> int | None: ...
@overload
def uv_value_fen(gmv_fen: pd.Series[int], uv: pd.Series[int]) -> pd.Series[int]: ...
def uv_value_fen(gmv_fen: Any, uv: Any) -> Any:
    """UV value: paid GMV per unique viewer, in fen."""
    return fen_per(gmv_fen, uv)


@overload
def view_to_buy_rate(buyers: int, uv: int) -> float | None: ...
@overload
def view_to_buy_rate(buyers: pd.Series[int], uv: pd.Series[int]) -> pd.Series[float]: ...
def view_to_buy_rate(buyers: Any, uv: Any) -> Any:
    """View-to-buy conversion: buyers per unique viewer."""
    return ratio(buyers, uv)


@overload
def click_through_rate(clicks: int, impressions: int) -> float | None: ...
@overload
def click_through_rate(clicks: pd.Series[int], impressions: pd.Series[int]) -> pd.Series[float]: ...
def click_through_rate(clicks: Any, impressions: Any) -> Any:
    """Product click-through: clicks per product impression."""
    return ratio(clicks, impressions)


@overload
def click_to_buy_rate(click_buyers: int, clickers: int) -> float | None: ...
@overload
def click_to_buy_rate(
    click_buyers: pd.Series[int], clickers: pd.Series[int]
) -> pd.Series[float]: ...
def click_to_buy_rate(click_buyers: Any, clickers: Any) -> Any:
    """Click-to-buy conversion: clicking viewers who paid, per clicking viewer."""
    return ratio(click_buyers, clickers)


@overload
def interaction_rate(interacting_uv: int, uv: int) -> float | None: ...
@overload
def interaction_rate(interacting_uv: pd.Series[int], uv: pd.Series[int]) -> pd.Series[float]: ...
def interaction_rate(interacting_uv: Any, uv: Any) -> Any:
    """Interaction rate: viewers who liked, commented, shared or followed, per unique viewer."""
    return ratio(interacting_uv, uv)


@dataclass(frozen=True, slots=True)
class KpiDefinition:
    """One KPI: its name (a :class:`KPIs` field and a column), unit, inputs and formula."""

    name: str
    unit: str
    inputs: tuple[str, ...]
    formula: Callable[..., Any] | None = None  # None: the single input, as counted

    def evaluate(self, values: Sequence[Any]) -> Any:
        return values[0] if self.formula is None else self.formula(*values)


def _count(name: str, unit: str) -> KpiDefinition:
    return KpiDefinition(name, unit, (name,))


#: Every KPI, in report order. The single registry both evaluators walk.
KPI_DEFINITIONS: Final[tuple[KpiDefinition, ...]] = (
    _count("gmv_fen", "fen"),
    _count("refund_fen", "fen"),
    KpiDefinition("net_gmv_fen", "fen", ("gmv_fen", "refund_fen"), net_gmv_fen),
    _count("orders", "orders"),
    _count("buyers", "buyers"),
    _count("views", "views"),
    _count("uv", "viewers"),
    KpiDefinition("pcu", "viewers", ("peak_concurrent", "live_seconds"), pcu),
    KpiDefinition("acu", "viewers", ("viewer_seconds", "live_seconds"), acu),
    KpiDefinition("avg_watch_seconds", "seconds", ("viewer_seconds", "uv"), avg_watch_seconds),
    KpiDefinition("gpm_fen", "fen per 1,000 views", ("gmv_fen", "views"), gpm_fen),
    KpiDefinition("gpm_uv_fen", "fen per 1,000 UV", ("gmv_fen", "uv"), gpm_uv_fen),
    KpiDefinition("uv_value_fen", "fen per UV", ("gmv_fen", "uv"), uv_value_fen),
    KpiDefinition("view_to_buy_rate", "ratio", ("buyers", "uv"), view_to_buy_rate),
    KpiDefinition("click_through_rate", "ratio", ("clicks", "impressions"), click_through_rate),
    KpiDefinition("click_to_buy_rate", "ratio", ("click_buyers", "clickers"), click_to_buy_rate),
    KpiDefinition("interaction_rate", "ratio", ("interacting_uv", "uv"), interaction_rate),
)


@dataclass(frozen=True, slots=True)
class KPIs:
    """Every KPI of one scope; None where a ratio is undefined."""

    gmv_fen: int
    refund_fen: int
    net_gmv_fen: int
    orders: int
    buyers: int
    views: int
    uv: int
    pcu: int | None
    acu: float | None
    avg_watch_seconds: float | None
    gpm_fen: int | None
    gpm_uv_fen: int | None
    uv_value_fen: int | None
    view_to_buy_rate: float | None
    click_through_rate: float | None
    click_to_buy_rate: float | None
    interaction_rate: float | None


def compute_kpis(totals: Totals) -> KPIs:
    """All KPIs of one scope."""
    values = {
        kpi.name: kpi.evaluate([getattr(totals, name) for name in kpi.inputs])
        for kpi in KPI_DEFINITIONS
    }
    return KPIs(**values)


def kpi_frame(totals: pd.DataFrame) -> pd.DataFrame:
    """All KPIs of every row of a table with one column per :class:`Totals` field.

    The result keeps the index and has one column per KPI, in :data:`KPI_DEFINITIONS` order:
    ``Int64`` for counts and fen, ``Float64`` for rates, ``<NA>`` where undefined.
    """
    missing = [name for name in TOTALS_FIELDS if name not in totals.columns]
    if missing:
        raise ValueError(f"totals table lacks column(s): {', '.join(missing)}")
    columns: dict[str, pd.Series[int]] = {}
    for name in TOTALS_FIELDS:
        column = totals[name]
        if column.isna().any() or (column < 0).any():
            raise ValueError(f"totals column {name!r} must be non-negative counts, without gaps")
        columns[name] = _int_column(column)
    return pd.DataFrame(
        {kpi.name: kpi.evaluate([columns[name] for name in kpi.inputs]) for kpi in KPI_DEFINITIONS},
        index=totals.index,
    )


def peak_concurrent_viewers(samples: Iterable[tuple[Hashable, int]]) -> int:
    """PCU from ``(minute, viewers present)`` samples, possibly of several sessions at once.

    Samples of the same minute are added first (two rooms live together add up), then the
    highest minute wins. No samples give 0; :func:`pcu` turns "never live" into None.
    """
    per_minute: defaultdict[Hashable, int] = defaultdict(int)
    for minute, present in samples:
        per_minute[minute] += present
    return max(per_minute.values(), default=0)


def peak_concurrent_frame(
    samples: pd.DataFrame, by: Sequence[str], minute: str = "minute", present: str = "present"
) -> pd.Series[int]:
    """:func:`peak_concurrent_viewers` for each group ``by`` of a table of samples."""
    per_minute = samples.groupby([*by, minute], sort=True)[present].sum()
    return per_minute.groupby(level=list(range(len(by))), sort=True).max().astype("Int64")
