"""The dashboard's charts as inline SVG: every mark of the plotly figure drawn where it belongs, with its value."""

from __future__ import annotations

import datetime as dt
import itertools
import pickle
import re

import pandas as pd

from scope3lib.reporting import charts, svg


def _entries() -> pd.DataFrame:
    rows = []
    for month in range(1, 4):
        for category, source, kg in ((1, "manual", 2000.0), (1, "ml", 3000.0), (6, "import", 500.0)):
            rows.append({"period_start": dt.date(2025, month, 1), "category": category, "data_source": source,
                         "kg_co2e": kg * month, "supplier": f"Supplier {category}"})
    return pd.DataFrame(rows)


def _bars(chart: str) -> list[dict[str, float | str]]:
    return [{"x": float(m[1]), "y": float(m[2]), "w": float(m[3]), "h": float(m[4]), "title": m[5]}
            for m in re.finditer(r"<rect class='bar' x='([\d.-]+)' y='([\d.-]+)' width='([\d.]+)' "
                                 r"height='([\d.]+)'[^>]*><title>([^<]*)</title>", chart)]


def test_a_stacked_monthly_chart_has_every_bar_stacked_in_order_with_its_value() -> None:
    chart = svg.figure_svg(charts.trend(_entries()))
    assert chart.startswith("<svg class='s3-chart'") and "<g class='marks'>" in chart
    assert "Emissions by month (t CO2e)" in chart and "Jan 2025" in chart and "Mar 2025" in chart
    bars = _bars(chart)
    assert len(bars) == 9  # 3 months x 3 sources
    march = [b for b in bars if "Mar 2025" in str(b["title"])]
    # Stacked: each source's bar starts where the one below ends, and heights follow the values (6, 1.5, 9 t).
    ordered = sorted(march, key=lambda b: -float(b["y"]))
    for below, above in itertools.pairwise(ordered):
        assert abs(float(above["y"]) + float(above["h"]) - float(below["y"])) < 0.2
    heights = {str(b["title"]).split(",")[0]: float(b["h"]) for b in march}
    assert abs(heights["ML estimate"] / heights["supplier data"] - 1.5) < 0.02
    assert "supplier data, Mar 2025: 6.0" in chart
    assert "class='legend'" in chart and "spend-based (EEIO)" in chart


def test_horizontal_bars_keep_plotlys_order_and_lengths() -> None:
    chart = svg.figure_svg(charts.by_category(_entries()))
    bars = _bars(chart)
    assert len(bars) == 2
    small, large = sorted(bars, key=lambda b: float(b["w"]))
    assert abs(float(large["w"]) / float(small["w"]) - 10) < 0.1  # 30 t against 3 t
    assert float(large["y"]) < float(small["y"])  # the largest on top, as plotly draws the last category
    assert "class='legend'" not in chart  # one series: no legend


def test_a_donut_has_a_slice_per_source_and_its_share() -> None:
    chart = svg.figure_svg(charts.data_sources(_entries()))
    assert chart.count("<path class='slice'") == 3
    assert "36.4%" in chart and "9.1%" in chart and "ML estimate: 18,000 (54.5%)" in chart


def test_an_empty_figure_says_why() -> None:
    chart = svg.figure_svg(charts.trend(_entries().iloc[0:0]))
    assert "no data for this selection" in chart and "<rect class='bar'" not in chart


def test_a_line_on_a_second_axis_and_a_figure_kept_by_pickle_draw_the_same() -> None:
    today = dt.date(2025, 3, 31)
    daily = pd.DataFrame({"day": [today - dt.timedelta(days=d) for d in range(3)], "kwh": [10.0, 12.0, 8.0],
                          "kg_co2e": [4.0, 5.0, 3.0]})
    fig = charts.recent_energy(daily, today=today)
    chart = svg.figure_svg(fig)
    assert len(_bars(chart)) == 3 and "<path class='line'" in chart and chart.count("<circle class='point'") == 3
    assert "kg CO2e" in chart and "31 Mar" in chart
    kept = pickle.loads(pickle.dumps(fig))  # the dashboard service keeps tenant panels pickled: typed arrays
    assert svg.figure_svg(kept) == chart
