"""Analytics: event schemas, rollups, KPI definitions, rankings and daily reports."""
