"""Usage reports as pure functions: the day range of a query, percentiles from the latency
histogram, totals grouped by key, model, provider or day, and the CSV export.

Input rows are what `shared.usage.read_days` returns: (day, key_id, model -> field ->
counter). Costs are stored in USD millionths and reported in USD. BYOK traffic is reported
apart (`byok_requests`, `provider_billed_cost_usd`): the caller's provider account pays it,
so it is never part of `cost_usd`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.usage import LATENCY_BUCKETS_MS, LATENCY_OVERFLOW

GroupBy = Literal["key", "model", "provider", "day"]
GROUPS: tuple[GroupBy, ...] = ("key", "model", "provider", "day")
MAX_DAYS = 90  # usage hashes live RETENTION_SECONDS (90 days)
Row = tuple[str, str, Mapping[str, Mapping[str, int]]]  # (day, key_id, model -> counters)
SUMMED = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "attempts",
    "latency_ms",
    "cost_micros",
    "byok_requests",
    "provider_billed_cost_micros",
    "batch_requests",
    "batch_cost_micros",
)
CSV_FIELDS = ("day", "key_id", "model", "provider", *SUMMED)
_BUCKETS = [f"lat_le_{b}" for b in LATENCY_BUCKETS_MS] + [LATENCY_OVERFLOW]


def day_range(start: str | None, end: str | None, today: date | None = None) -> list[str]:
    """The days from `start` to `end` inclusive (YYYY-MM-DD, UTC); default the last 7 days.
    A malformed date, a reversed range or more than MAX_DAYS days is a 400."""
    today = today or datetime.now(UTC).date()
    last = _date(end, "to") if end else today
    first = _date(start, "from") if start else last - timedelta(days=6)
    if first > last:
        raise InvalidRequest("'from' must not be after 'to'.", param="from")
    span = (last - first).days + 1
    if span > MAX_DAYS:
        raise InvalidRequest(f"A usage query spans at most {MAX_DAYS} days.", param="from")
    return [(first + timedelta(days=i)).isoformat() for i in range(span)]


def _date(value: str, param: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"'{param}' must be a date as YYYY-MM-DD.", param=param) from None


def percentile(hist: Mapping[str, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a latency histogram (`lat_le_*` counters), linearly
    interpolated inside its bucket; None without observations. A quantile that falls in the
    overflow bucket is reported as the last finite bound."""
    counts = [max(0, int(hist.get(name, 0))) for name in _BUCKETS]
    total = sum(counts)
    if total == 0:
        return None
    target = q * total
    seen = 0
    lower = 0.0
    for bound, count in zip((*LATENCY_BUCKETS_MS, None), counts, strict=True):
        if count and seen + count >= target:
            if bound is None:
                return float(LATENCY_BUCKETS_MS[-1])
            return lower + (bound - lower) * (target - seen) / count
        seen += count
        lower = float(bound) if bound is not None else lower
    return float(LATENCY_BUCKETS_MS[-1])


def provider_of(model: str) -> str:
    return model.partition("/")[0] if "/" in model else "unknown"


def _label(group_by: GroupBy, on: str, key_id: str, model: str) -> str:
    if group_by == "key":
        return key_id
    if group_by == "model":
        return model
    if group_by == "provider":
        return provider_of(model)
    return on


def _finish(group: str, sums: Mapping[str, int]) -> dict[str, object]:
    requests = sums.get("requests", 0)
    return {
        "group": group,
        "requests": requests,
        "errors": sums.get("errors", 0),
        "error_rate": round(sums.get("errors", 0) / requests, 4) if requests else 0.0,
        "prompt_tokens": sums.get("prompt_tokens", 0),
        "completion_tokens": sums.get("completion_tokens", 0),
        "cached_tokens": sums.get("cached_tokens", 0),
        "cost_usd": sums.get("cost_micros", 0) / 1e6,
        "byok_requests": sums.get("byok_requests", 0),
        "provider_billed_cost_usd": sums.get("provider_billed_cost_micros", 0) / 1e6,
        "batch_requests": sums.get("batch_requests", 0),
        "latency_mean_ms": round(sums.get("latency_ms", 0) / requests, 1) if requests else None,
        "latency_p50_ms": _round(percentile(sums, 0.5)),
        "latency_p95_ms": _round(percentile(sums, 0.95)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _add(into: dict[str, int], counters: Mapping[str, int]) -> None:
    for name, value in counters.items():
        if name in SUMMED or name.startswith("lat_"):
            into[name] = into.get(name, 0) + value


def summarize(
    rows: Iterable[Row], group_by: GroupBy, days: list[str] | None = None
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """(one total per group, sorted by label; the grand total). With group_by="day" and
    `days`, every day of the range is present, zero-filled, so charts have no gaps."""
    groups: dict[str, dict[str, int]] = {}
    if group_by == "day" and days:
        groups = {d: {} for d in days}
    total: dict[str, int] = {}
    for on, key_id, models in rows:
        for model, counters in models.items():
            _add(groups.setdefault(_label(group_by, on, key_id, model), {}), counters)
            _add(total, counters)
    return [_finish(g, groups[g]) for g in sorted(groups)], _finish("total", total)


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: Iterable[Row]) -> str:
    """One line per (day, key, model) with every summed counter; costs stay in USD
    millionths (integers, exact)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for on, key_id, models in sorted(rows, key=lambda r: (r[0], r[1])):
        for model in sorted(models):
            counters = models[model]
            cells = [on, key_id, model, provider_of(model)]
            cells += [str(counters.get(name, 0)) for name in SUMMED]
            writer.writerow([_cell(c) for c in cells])
    return out.getvalue()
