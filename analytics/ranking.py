"""Rankings of hosts and themes on a score that small samples cannot game.

Raw GMV mostly measures the time slot, and a raw ratio from a few viewers is mostly luck. The
score is the *expected paid GMV per viewer* after empirical-Bayes shrinkage toward the group
(a base, or the whole city), split as conversion × spend per buyer:

    score = (buyers + a) / (uv + a + b)  ×  (gmv_fen + k·m) / (buyers + k)

* ``Beta(a, b)`` is the prior of conversion, fitted to the group by the method of moments;
* ``m`` is the group's paid GMV per buyer and ``k`` (default 10) how many buyers' worth of
  weight that mean carries;
* only entities with at least ``min_uv`` viewers are scored, ranked and used to fit the prior;
  the others are listed with the reason.

``docs/metrics.md`` has the derivation and a worked example (``tests/analytics`` checks it).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from analytics.kpis import TOTALS_FIELDS, kpi_frame

#: Raw figures shown beside the score, as computed by :mod:`analytics.kpis`.
RAW_COLUMNS: Final = (
    "gmv_fen",
    "refund_fen",
    "net_gmv_fen",
    "orders",
    "buyers",
    "views",
    "uv",
    "uv_value_fen",
    "gpm_fen",
    "view_to_buy_rate",
)
#: Figures compared with the previous period (``<name>_prev``, ``_change``, ``_change_pct``).
COMPARED_COLUMNS: Final = ("gmv_fen", "net_gmv_fen", "uv", "buyers", "uv_value_fen", "score")


@dataclass(frozen=True, slots=True)
class Prior:
    """The group's prior, fitted on its entities with enough exposure."""

    conversion: float  #: pooled buyers / UV of the eligible entities (Beta mean)
    strength_uv: float  #: a + b, the prior's weight in viewers
    spend_fen: float  #: pooled paid GMV per buyer, m
    spend_buyers: float  #: k, the spend prior's weight in buyers
    fitted_on: int  #: how many entities the prior was fitted on
    fallback: bool  #: True when the spread could not be estimated and strength is the default

    @property
    def a(self) -> float:
        return self.conversion * self.strength_uv

    @property
    def b(self) -> float:
        return (1 - self.conversion) * self.strength_uv


def fit_prior(
    uv: Sequence[int],
    buyers: Sequence[int],
    gmv_fen: Sequence[int],
    *,
    spend_buyers: float = 10,
    fallback_strength_uv: float = 100,
) -> Prior:
    """Method-of-moments prior from the eligible entities of one group.

    With rates ``p_i = buyers_i / uv_i`` and pooled rate ``p``, the observed spread
    ``V = mean((p_i - p)²)`` is the true spread ``τ²`` plus binomial noise
    ``E = mean(p(1 - p) / uv_i)``; so ``τ² = V - E`` and a Beta of mean ``p`` and variance
    ``τ²`` has ``a + b = p(1 - p) / τ² - 1``. When that cannot be estimated (fewer than two
    entities, ``p`` at 0 or 1, or no spread beyond noise) the strength is
    ``fallback_strength_uv``.
    """
    count = len(uv)
    total_uv, total_buyers, total_gmv = sum(uv), sum(buyers), sum(gmv_fen)
    p = total_buyers / total_uv if total_uv else 0.0
    spend = total_gmv / total_buyers if total_buyers else 0.0
    strength: float | None = None
    if count >= 2 and 0 < p < 1:
        observed = sum((b / n - p) ** 2 for n, b in zip(uv, buyers, strict=True)) / count
        noise = sum(p * (1 - p) / n for n in uv) / count
        spread = observed - noise
        if spread > 0:
            strength = max(0.0, p * (1 - p) / spread - 1)
    return Prior(
        conversion=p,
        strength_uv=fallback_strength_uv if strength is None else strength,
        spend_fen=spend,
        spend_buyers=spend_buyers,
        fitted_on=count,
        fallback=strength is None,
    )


def shrunk_score(prior: Prior, uv: Any, buyers: Any, gmv_fen: Any) -> Any:
    """Expected paid GMV per viewer in fen (float); ints or columns alike."""
    conversion = (buyers + prior.a) / (uv + prior.strength_uv)
    spend = (gmv_fen + prior.spend_buyers * prior.spend_fen) / (buyers + prior.spend_buyers)
    return conversion * spend


def _change_pct(current: pd.Series[Any], previous: pd.Series[Any]) -> pd.Series[float]:
    base = previous.astype("Float64")
    return (current.astype("Float64") - base) / base.mask(base == 0)


def _rank_one_period(
    totals: pd.DataFrame,
    keys: list[str],
    entity: str,
    *,
    min_uv: int,
    spend_buyers: float,
    fallback_strength_uv: float,
) -> tuple[pd.DataFrame, dict[Hashable, Prior]]:
    missing = [c for c in (*keys, *TOTALS_FIELDS) if c not in totals.columns]
    if missing:
        raise ValueError(f"ranking input lacks column(s): {', '.join(missing)}")
    if totals.duplicated(subset=keys).any():
        raise ValueError(f"ranking input has more than one row per {' + '.join(keys)}")
    kpis = kpi_frame(totals)
    table = pd.concat([totals[keys].reset_index(drop=True), kpis.reset_index(drop=True)], axis=1)
    table = table[[*keys, *RAW_COLUMNS]]
    eligible = (table["uv"] >= min_uv) & (table["uv"] > 0)
    table["score"] = pd.Series(pd.NA, index=table.index, dtype="Float64")
    table["rank"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    reason = [
        pd.NA
        if ok
        else ("no viewers" if uv == 0 else f"below minimum exposure: {uv} UV < {min_uv}")
        for ok, uv in zip(eligible, table["uv"], strict=True)
    ]
    table["unranked_reason"] = pd.array(reason, dtype="string")
    groups: dict[Hashable, Any] = (
        dict(table.groupby(keys[0], sort=True, dropna=False).groups)
        if len(keys) == 2
        else {None: table.index}
    )
    priors: dict[Hashable, Prior] = {}
    for group, index in groups.items():
        rows = table.loc[index]
        fit = rows[eligible.loc[index]]
        prior = fit_prior(
            [int(v) for v in fit["uv"]],
            [int(v) for v in fit["buyers"]],
            [int(v) for v in fit["gmv_fen"]],
            spend_buyers=spend_buyers,
            fallback_strength_uv=fallback_strength_uv,
        )
        priors[group] = prior
        score = shrunk_score(prior, fit["uv"], fit["buyers"], fit["gmv_fen"]).astype("Float64")
        table.loc[fit.index, "score"] = score
        # Ties: more viewers first (more evidence), then more GMV, then the entity id, so
        # the same input always gives the same order.
        ordered = table.loc[fit.index].sort_values(
            ["score", "uv", "gmv_fen", entity],
            ascending=[False, False, False, True],
            kind="stable",
        )
        table.loc[ordered.index, "rank"] = range(1, len(ordered) + 1)
    return table, priors


def rank_entities(
    current: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    *,
    entity: str,
    group: str | None = None,
    min_uv: int = 100,
    spend_buyers: float = 10,
    fallback_strength_uv: float = 100,
) -> pd.DataFrame:
    """Rank the entities of a period, per ``group`` (e.g. ``"base"``) or all together.

    ``current`` and ``previous`` hold one row per entity (per group) with every
    :class:`~analytics.kpis.Totals` field as a column. The result has the keys, the raw figures
    (:data:`RAW_COLUMNS`), ``score``, ``rank`` (``<NA>`` when unranked, with
    ``unranked_reason``), ``rank_prev`` and ``rank_change`` (positive is a climb), and for
    each of :data:`COMPARED_COLUMNS` its ``_prev``, ``_change`` and ``_change_pct`` (a
    fraction; ``<NA>`` without a previous figure or when it was 0). Ranked rows come first in
    rank order within each group, then unranked rows by UV.
    """
    keys = [group, entity] if group is not None else [entity]
    options: dict[str, Any] = {
        "min_uv": min_uv,
        "spend_buyers": spend_buyers,
        "fallback_strength_uv": fallback_strength_uv,
    }
    table, _ = _rank_one_period(current, keys, entity, **options)
    compared = [*COMPARED_COLUMNS, "rank"]
    if previous is not None:
        before, _ = _rank_one_period(previous, keys, entity, **options)
        before = before[[*keys, *compared]].rename(columns={c: f"{c}_prev" for c in compared})
        table = table.merge(before, on=keys, how="left", validate="one_to_one")
    else:
        for column in compared:
            table[f"{column}_prev"] = pd.Series(pd.NA, index=table.index, dtype=table[column].dtype)
    for column in COMPARED_COLUMNS:
        table[f"{column}_change"] = table[column] - table[f"{column}_prev"]
        table[f"{column}_change_pct"] = _change_pct(table[column], table[f"{column}_prev"])
    table["rank_change"] = table["rank_prev"] - table["rank"]
    table["_unranked"] = table["rank"].isna()
    table = table.sort_values(
        [*keys[:-1], "_unranked", "rank", "uv", entity],
        ascending=[*([True] * len(keys[:-1])), True, True, False, True],
        kind="stable",
        na_position="last",
    )
    return table.drop(columns="_unranked").reset_index(drop=True)


def group_priors(
    current: pd.DataFrame,
    *,
    entity: str,
    group: str | None = None,
    min_uv: int = 100,
    spend_buyers: float = 10,
    fallback_strength_uv: float = 100,
) -> dict[Hashable, Prior]:
    """The prior each group's scores were shrunk toward (``None`` keys the single group)."""
    keys = [group, entity] if group is not None else [entity]
    _, priors = _rank_one_period(
        current,
        keys,
        entity,
        min_uv=min_uv,
        spend_buyers=spend_buyers,
        fallback_strength_uv=fallback_strength_uv,
    )
    return priors
