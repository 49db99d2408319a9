"""api.console.reports: date ranges, percentiles from latency buckets, grouping, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from orbyt.api.console.reports import day_range, percentile, summarize, to_csv
from orbyt.shared.errors import InvalidRequest
from orbyt.shared.usage import LATENCY_BUCKETS_MS, latency_bucket

TODAY = date(2026, 11, 29)


def test_latency_buckets_take_the_first_bound_at_or_above() -> None:
    assert latency_bucket(0) == "lat_le_50"
    assert latency_bucket(50) == "lat_le_50"
    assert latency_bucket(50.1) == "lat_le_100"
    assert latency_bucket(LATENCY_BUCKETS_MS[-1] + 1) == "lat_inf"


def test_percentile_interpolates_inside_its_bucket() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({"lat_le_100": 10}, 0.5) == pytest.approx(75.0)  # 50..100, halfway
    hist = {"lat_le_50": 50, "lat_le_1000": 50}
    assert percentile(hist, 0.5) == pytest.approx(50.0)
    assert percentile(hist, 0.95) == pytest.approx(500 + 500 * 0.9)
    assert percentile({"lat_inf": 3}, 0.5) == LATENCY_BUCKETS_MS[-1]


def test_percentile_of_real_latencies_lands_in_their_bucket() -> None:
    latencies = [30.0] * 90 + [4000.0] * 10
    hist: dict[str, int] = {}
    for ms in latencies:
        hist[latency_bucket(ms)] = hist.get(latency_bucket(ms), 0) + 1
    p50, p95 = percentile(hist, 0.5), percentile(hist, 0.95)
    assert p50 is not None and 0 <= p50 <= 50
    assert p95 is not None and 2500 <= p95 <= 5000


def test_day_range_defaults_to_the_last_seven_days() -> None:
    days = day_range(None, None, TODAY)
    assert days[0] == "2026-11-23" and days[-1] == "2026-11-29" and len(days) == 7
    assert day_range("2026-11-28", "2026-11-29", TODAY) == ["2026-11-28", "2026-11-29"]


@pytest.mark.parametrize(
    ("start", "end", "param"),
    [
        ("2026-11-31", None, "from"),
        ("20261101", None, "from"),
        (None, "2026-1-1", "to"),
        ("2026-11-29", "2026-11-01", "from"),
        ("2026-01-01", "2026-11-29", "from"),
    ],
)
def test_day_range_rejects_bad_ranges(start: str | None, end: str | None, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        day_range(start, end, TODAY)
    assert caught.value.param == param


ROWS = [
    (
        "2026-11-28",
        "key_a",
        {
            "openai/gpt-5-mini": {"requests": 3, "errors": 1, "cost_micros": 1500, "lat_le_100": 3},
            "anthropic/claude-3-haiku": {
                "requests": 1,
                "byok_requests": 1,
                "provider_billed_cost_micros": 700,
                "lat_le_250": 1,
            },
        },
    ),
    ("2026-11-29", "key_b", {"openai/gpt-5-mini": {"requests": 1, "prompt_tokens": 9}}),
]


def test_summarize_groups_and_keeps_byok_apart() -> None:
    by_provider, total = summarize(ROWS, "provider")
    groups = {g["group"]: g for g in by_provider}
    assert set(groups) == {"openai", "anthropic"}
    assert groups["openai"]["requests"] == 4 and groups["openai"]["error_rate"] == 0.25
    assert groups["anthropic"]["cost_usd"] == 0  # provider-billed, never gateway cost
    assert groups["anthropic"]["provider_billed_cost_usd"] == pytest.approx(0.0007)
    assert total["requests"] == 5 and total["cost_usd"] == pytest.approx(0.0015)
    by_key, _ = summarize(ROWS, "key")
    assert [g["group"] for g in by_key] == ["key_a", "key_b"]


def test_summarize_by_day_fills_every_day() -> None:
    days = ["2026-11-27", "2026-11-28", "2026-11-29"]
    by_day, _ = summarize(ROWS, "day", days)
    assert [g["group"] for g in by_day] == days
    assert by_day[0]["requests"] == 0 and by_day[0]["latency_p50_ms"] is None


def test_csv_has_one_line_per_day_key_and_model() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(ROWS))))
    assert [(r["day"], r["key_id"], r["model"]) for r in rows] == [
        ("2026-11-28", "key_a", "anthropic/claude-3-haiku"),
        ("2026-11-28", "key_a", "openai/gpt-5-mini"),
        ("2026-11-29", "key_b", "openai/gpt-5-mini"),
    ]
    assert rows[1]["cost_micros"] == "1500" and rows[0]["provider"] == "anthropic"


def test_csv_cells_never_start_a_spreadsheet_formula() -> None:
    text = to_csv([("2026-11-29", "=HYPERLINK(1)", {"+cmd/x": {"requests": 1}})])
    assert "\n'=HYPERLINK" not in text and ",'=HYPERLINK(1),'+cmd/x," in text
