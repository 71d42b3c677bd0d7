"""Rules that pick out what a base manager should look at: pure functions over report data.

* **Order spike from few buyers**: in some 5-minute stretch a session took at least
  :data:`SPIKE_MIN_ORDERS` orders, and the whole session had at most a third as many buyers,
  so a handful of buyers placed them (the window's own buyers can only be fewer).
* **Relay failed / unstable**: a platform refused a session's relay (it gave up), or the relay
  broke and was retried at least :data:`RELAY_RETRIES` times.
* **Host far below their usual**: a host's paid GMV per session today is under
  :data:`BELOW_USUAL` of their mean over the previous :data:`HISTORY_DAYS` days, which must
  hold at least :data:`HISTORY_MIN_SESSIONS` sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from analytics.report.fmt import yuan
from analytics.report.model import Anomaly
from livebase.db.models import RelayIncident

SPIKE_WINDOW_MINUTES = 5
SPIKE_MIN_ORDERS = 10
SPIKE_ORDERS_PER_BUYER = 3
RELAY_RETRIES = 3
BELOW_USUAL = 0.5
HISTORY_DAYS = 28
HISTORY_MIN_SESSIONS = 3


def order_spikes(
    minutes: pd.DataFrame, buyers: Mapping[int, int], titles: Mapping[int, str], tz: str
) -> list[Anomaly]:
    """``minutes`` has ``session_id``, ``minute`` (UTC) and ``orders`` per session minute."""
    out: list[Anomaly] = []
    if minutes.empty:
        return out
    sold = minutes[minutes["orders"] > 0]
    for session_id, rows in sold.groupby("session_id", sort=True):
        per_minute = rows.set_index("minute")["orders"].sort_index()
        window = per_minute.rolling(f"{SPIKE_WINDOW_MINUTES}min").sum()
        peak = int(window.max())
        sid: Any = session_id
        session_buyers = buyers.get(int(sid), 0)
        if peak < SPIKE_MIN_ORDERS or session_buyers * SPIKE_ORDERS_PER_BUYER > peak:
            continue
        end: Any = window.idxmax()
        start = end - pd.Timedelta(minutes=SPIKE_WINDOW_MINUTES - 1)
        local = f"{start.tz_convert(tz):%H:%M}–{end.tz_convert(tz) + pd.Timedelta(minutes=1):%H:%M}"
        title = titles.get(int(sid), str(sid))
        out.append(
            Anomaly(
                kind="order_spike",
                subject=title,
                message_zh=(
                    f"场次「{title}」在 {local} 内成交 {peak} 单，全场仅 {session_buyers} 位买家"
                ),
                message_en=(
                    f"Session “{title}” took {peak} orders in {local} from at most "
                    f"{session_buyers} buyer(s)"
                ),
                figures={"orders": peak, "buyers": session_buyers},
            )
        )
    return out


def relay_problems(incidents: Iterable[RelayIncident], titles: Mapping[int, str]) -> list[Anomaly]:
    out: list[Anomaly] = []
    for incident in incidents:
        title = titles.get(incident.session_id, str(incident.session_id))
        error = incident.last_error or "—"
        figures: dict[str, int | float | None] = {
            "destination_id": incident.destination_id,
            "retries": incident.retries,
        }
        if incident.failed:
            out.append(
                Anomaly(
                    "relay_failed", title,
                    f"场次「{title}」推流到目标 #{incident.destination_id} 失败：{error}",
                    f"Session “{title}”: the relay to destination #{incident.destination_id} "
                    f"failed: {error}",
                    figures,
                )
            )  # fmt: skip
        elif incident.retries >= RELAY_RETRIES:
            out.append(
                Anomaly(
                    "relay_unstable", title,
                    f"场次「{title}」推流到目标 #{incident.destination_id} 中断 "
                    f"{incident.retries} 次：{error}",
                    f"Session “{title}”: the relay to destination #{incident.destination_id} "
                    f"broke {incident.retries} times: {error}",
                    figures,
                )
            )  # fmt: skip
    return out


def hosts_below_usual(
    today: Mapping[int, Sequence[int]],
    history: Mapping[int, Sequence[int]],
    names: Mapping[int, str],
) -> list[Anomaly]:
    """``today`` and ``history``: paid GMV (fen) of each of a host's sessions."""
    out: list[Anomaly] = []
    for host_id, sessions in sorted(today.items()):
        before = history.get(host_id, ())
        if len(before) < HISTORY_MIN_SESSIONS or not sessions:
            continue
        usual = sum(before) / len(before)
        now = sum(sessions) / len(sessions)
        if usual <= 0 or now >= BELOW_USUAL * usual:
            continue
        name = names.get(host_id, str(host_id))
        share = now / usual
        out.append(
            Anomaly(
                kind="host_below_usual",
                subject=name,
                message_zh=(
                    f"主播 {name} 今日场均成交 {yuan(round(now))}，仅为近 {HISTORY_DAYS} 天场均 "
                    f"{yuan(round(usual))} 的 {share:.0%}"
                ),
                message_en=(
                    f"Host {name} sold {yuan(round(now))} per session today, {share:.0%} of their "
                    f"{HISTORY_DAYS}-day usual {yuan(round(usual))}"
                ),
                figures={
                    "gmv_per_session_fen": round(now),
                    "usual_gmv_per_session_fen": round(usual),
                    "history_sessions": len(before),
                },
            )
        )
    return out
