"""Analytics: event schemas, rollups, KPI definitions, rankings and daily reports.

The pure core lives here and is re-exported below: ``schemas`` (what events look like),
``aggregate`` (how events become counts), ``kpis`` (how counts become KPIs) and ``ranking``
(how KPIs become a ranked table). Definitions are documented in ``docs/metrics.md``.
Nothing in this package imports ``ingest`` or ``storefront_adapters``.
"""

from analytics import models as _models  # noqa: F401  (the rollup tables join the metadata)
from analytics.aggregate import Accumulator, totals_by
from analytics.kpis import (
    KPI_DEFINITIONS,
    TOTALS_FIELDS,
    KpiDefinition,
    KPIs,
    Totals,
    compute_kpis,
    kpi_frame,
    peak_concurrent_frame,
    peak_concurrent_viewers,
)
from analytics.platform import models as _platform_models  # noqa: F401  (and platform figures)
from analytics.ranking import Prior, fit_prior, group_priors, rank_entities, shrunk_score
from analytics.schemas import (
    EVENT_TYPES,
    MAX_CLOCK_SKEW,
    SCHEMAS,
    AnalyticsEvent,
    EventSchemaError,
    from_bus_event,
    parse_event,
    to_bus_event,
)

__all__ = (
    "EVENT_TYPES",
    "KPI_DEFINITIONS",
    "MAX_CLOCK_SKEW",
    "SCHEMAS",
    "TOTALS_FIELDS",
    "Accumulator",
    "AnalyticsEvent",
    "EventSchemaError",
    "KPIs",
    "KpiDefinition",
    "Prior",
    "Totals",
    "compute_kpis",
    "fit_prior",
    "from_bus_event",
    "group_priors",
    "kpi_frame",
    "parse_event",
    "peak_concurrent_frame",
    "peak_concurrent_viewers",
    "rank_entities",
    "shrunk_score",
    "to_bus_event",
    "totals_by",
)
