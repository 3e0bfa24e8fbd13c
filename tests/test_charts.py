"""A metric's chart on the feature page: the SVG is parsed back and checked
against the numbers it draws (points, the baseline, the goal line and the
markers), read off its own axis ticks, for no point, one, a few and thousands;
and the words beside it say the latest value and the share of the gap closed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from sessions_app import charts
from sessions_app.models import Decision, EnsembleSession, Measurement, Metric, RolloutChange
from tests.factories import FeatureFactory, SessionFactory

WEEKLY = [
    (date(2025, 11, 3), "41.5"),
    (date(2025, 11, 10), "44"),
    (date(2025, 11, 17), "50"),
    (date(2025, 11, 24), "47"),
]


def make_metric(feature, *, baseline=40, target=70, unit="%", key="exports-7d", **fields):
    return Metric.objects.create(
        feature=feature,
        name=fields.pop("name", "Accounts exporting within 7 days"),
        key=key,
        unit=unit,
        baseline=baseline,
        target=target,
        direction="up" if target > baseline else "down",
        **fields,
    )


def measure(metric: Metric, rows) -> None:
    Measurement.objects.bulk_create(
        [Measurement(metric=metric, date=day, value=Decimal(str(value))) for day, value in rows]
    )


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def decide(session: EnsembleSession, day: date, outcome="go") -> Decision:
    decision = Decision.objects.create(session=session, outcome=outcome, rationale="Solid.")
    Decision.objects.filter(pk=decision.pk).update(decided_at=noon(day))
    return decision


def rollout(feature, day: date, action: str, stage="Pilot customers") -> None:
    change = RolloutChange.objects.create(feature=feature, stage_name=stage, action=action)
    RolloutChange.objects.filter(pk=change.pk).update(at=noon(day))


@pytest.fixture
def metric(feature) -> Metric:
    return make_metric(feature)


# --- Reading the SVG back ------------------------------------------------------------------


def chart_svg(client, metric: Metric) -> ET.Element:
    response = client.get(reverse("feature_detail", kwargs={"feature_id": metric.feature_id}))
    assert response.status_code == 200
    html = response.content.decode()
    found = re.search(rf'<svg [^>]*data-metric="{metric.key}".*?</svg>', html, re.DOTALL)
    assert found, "no chart for the metric on the feature page"
    return ET.fromstring(found[0])


def of_class(svg: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in svg.iter() if name in (el.get("class") or "").split()]


def y_ticks(svg: ET.Element) -> list[tuple[float, float]]:
    """(y, value) of each label on the vertical axis."""
    ticks = [el for el in of_class(svg, "tick") if el.get("text-anchor") == "end"]
    return [(float(el.get("y")), float(el.text.split()[0].rstrip("%"))) for el in ticks]


def value_at(svg: ET.Element, y: float) -> float:
    """The value an y coordinate stands for, read off the axis's first and last tick."""
    (y0, v0), (y1, v1) = y_ticks(svg)[0], y_ticks(svg)[-1]
    return v0 + (y - y0) * (v1 - v0) / (y1 - y0)


def polyline(svg: ET.Element) -> list[tuple[float, float]]:
    (series,) = of_class(svg, "series")
    return [tuple(map(float, pair.split(","))) for pair in series.get("points").split()]


def line_y(group: ET.Element) -> float:
    line = group.find("line")
    assert line.get("y1") == line.get("y2"), "a horizontal line"
    return float(line.get("y1"))


# --- Points --------------------------------------------------------------------------------


def test_points_are_placed_by_date_and_value_with_y_inverted(metric, teammate_client):
    measure(metric, WEEKLY)

    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)

    points = polyline(svg)
    assert len(points) == 4
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and len(set(xs)) == 4, "x grows with the date"
    assert xs[0] == chart.left and xs[-1] == chart.right
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert max(gaps) - min(gaps) < 0.2, "a week is the same width everywhere"
    for (_, y), (_, value) in zip(points, WEEKLY, strict=True):
        assert value_at(svg, y) == pytest.approx(float(value), abs=0.05)
    ys = [y for _, y in points]
    assert ys[2] < ys[3] < ys[1] < ys[0], "a higher value is drawn higher up"
    assert all(chart.top <= y <= chart.bottom for y in ys)
    dots = [dot.find("title").text for dot in of_class(svg, "point")]
    assert dots == ["3 Nov 2025: 41.5", "10 Nov 2025: 44", "17 Nov 2025: 50", "24 Nov 2025: 47"]


def test_the_chart_data_match_what_is_drawn(metric, teammate_client):
    measure(metric, WEEKLY)
    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)
    assert polyline(svg) == [(round(p.x, 1), round(p.y, 1)) for p in chart.points]
    assert [(p.day, p.value) for p in chart.points] == [(d, Decimal(v)) for d, v in WEEKLY]


def test_the_axis_ticks_are_round_and_cover_every_value_baseline_and_target(metric):
    measure(metric, [(date(2025, 11, 3), "12.5"), (date(2025, 11, 10), "81")])
    chart = charts.build(metric)
    labels = [float(label.rstrip("%")) for _, label in chart.y_ticks]
    assert labels[0] <= 12.5 and labels[-1] >= 81
    steps = {round(b - a, 6) for a, b in zip(labels, labels[1:], strict=False)}
    assert len(steps) == 1, "evenly spaced"
    (step,) = steps
    assert step in {1, 2, 5, 10, 20, 50}
    assert 3 <= len(labels) <= 11


# --- Baseline and goal line ------------------------------------------------------------------


def test_the_goal_line_and_baseline_sit_at_their_values_on_the_axis(metric, teammate_client):
    measure(metric, WEEKLY)
    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)

    (goal,) = of_class(svg, "goal-line")
    (baseline,) = of_class(svg, "baseline")
    assert Decimal(goal.get("data-value")) == 70
    assert Decimal(baseline.get("data-value")) == 40
    assert value_at(svg, line_y(goal)) == pytest.approx(70, abs=0.05)
    assert value_at(svg, line_y(baseline)) == pytest.approx(40, abs=0.05)
    assert line_y(goal) == round(chart.target_y, 1)
    assert line_y(goal) < line_y(baseline), "the target is above the baseline when up is better"
    assert "Target 70%" in "".join(goal.itertext())
    assert "Baseline 40%" in "".join(baseline.itertext())


# --- Markers -----------------------------------------------------------------------------------


def test_markers_stand_at_the_decision_and_rollout_dates(metric, session, teammate_client):
    measure(metric, WEEKLY)
    decide(session, date(2025, 11, 10))
    rollout(metric.feature, date(2025, 11, 17), "enabled")
    rollout(metric.feature, date(2025, 11, 24), "paused")
    rollout(metric.feature, date(2025, 11, 12), "added")  # changes no one's access: no marker
    rollout(metric.feature, date(2025, 11, 14), "renamed")

    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)

    assert [(m.number, m.day, m.kind) for m in chart.markers] == [
        (1, date(2025, 11, 10), "decision"),
        (2, date(2025, 11, 17), "rollout"),
        (3, date(2025, 11, 24), "rollout"),
    ]
    assert [m.label for m in chart.markers] == [
        "Go: Bulk export walkthrough",
        "Pilot customers enabled",
        "Pilot customers paused",
    ]
    drawn = of_class(svg, "marker")
    assert [(g.get("class"), g.get("data-date")) for g in drawn] == [
        ("marker marker-decision", "2025-11-10"),
        ("marker marker-rollout", "2025-11-17"),
        ("marker marker-rollout", "2025-11-24"),
    ]
    points_x = [x for x, _ in polyline(svg)]
    for group, point_x in zip(drawn, points_x[1:], strict=True):
        line = group.find("line")
        assert float(line.get("x1")) == float(line.get("x2")) == point_x, "at its date's x"
        assert float(line.get("y1")) == chart.top and float(line.get("y2")) == chart.bottom
    desc = svg.find("desc").text
    assert "Markers: 1, 10 Nov 2025, Go: Bulk export walkthrough;" in desc
    assert "3, 24 Nov 2025, Pilot customers paused." in desc


@pytest.mark.parametrize("action", ["approved", "enabled", "paused", "overrode the gate"])
def test_each_access_changing_rollout_action_gets_a_marker(metric, action):
    measure(metric, WEEKLY)
    rollout(metric.feature, date(2025, 11, 17), action)
    assert [(m.kind, m.day) for m in charts.build(metric).markers] == [
        ("rollout", date(2025, 11, 17))
    ]


def test_a_marker_before_the_first_measurement_widens_the_time_axis(metric, session):
    measure(metric, WEEKLY)
    decide(session, date(2025, 10, 27))

    chart = charts.build(metric)

    (marker,) = chart.markers
    assert marker.x == chart.left
    assert chart.points[0].x > chart.left
    assert chart.points[-1].x == chart.right


def test_another_features_decisions_and_rollout_are_not_marked(metric, facilitator):
    other = FeatureFactory(team=metric.feature.team)
    decide(SessionFactory(feature=other, facilitator=facilitator), date(2025, 11, 10))
    rollout(other, date(2025, 11, 17), "enabled")
    measure(metric, WEEKLY)
    assert charts.build(metric).markers == []


# --- No point, one point ---------------------------------------------------------------------


def test_a_metric_without_measurements_draws_its_goal_and_says_so(metric, teammate_client):
    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)

    assert chart.points == [] and chart.latest is None and chart.progress is None
    assert chart.summary == "No measurements yet. The goal is from 40% to 70%."
    assert of_class(svg, "series") == []
    assert svg.find("title").text == "Accounts exporting within 7 days, 0 measurements"
    assert svg.find("desc").text == "No measurements yet. The goal is from 40% to 70%."
    (goal,) = of_class(svg, "goal-line")
    assert value_at(svg, line_y(goal)) == pytest.approx(70, abs=0.05)


def test_one_measurement_is_drawn_in_the_middle(metric, teammate_client):
    measure(metric, [(date(2025, 11, 17), "50")])

    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)

    ((x, y),) = polyline(svg)
    assert x == pytest.approx((chart.left + chart.right) / 2, abs=0.1)
    assert value_at(svg, y) == pytest.approx(50, abs=0.05)
    assert svg.find("title").text == "Accounts exporting within 7 days, 1 measurement"
    assert len(of_class(svg, "point")) == 1


def test_the_chart_is_an_image_labelled_by_its_title_and_description(metric, teammate_client):
    measure(metric, WEEKLY)
    svg = chart_svg(teammate_client, metric)
    assert svg.get("role") == "img"
    ids = svg.get("aria-labelledby").split()
    assert ids == [svg.find("title").get("id"), svg.find("desc").get("id")]
    assert svg.find("desc").text == ("Latest 47% on 24 Nov 2025: 23% of the way from 40% to 70%.")


def test_text_on_the_chart_is_escaped(feature, session, teammate_client):
    metric = make_metric(feature, name="<script>alert(1)</script> exports")
    EnsembleSession.objects.filter(pk=session.pk).update(title="<b>Bold</b> walkthrough")
    decide(session, date(2025, 11, 10))
    measure(metric, WEEKLY)

    response = teammate_client.get(reverse("feature_detail", kwargs={"feature_id": feature.pk}))
    html = response.content.decode()
    assert "<script>alert(1)" not in html
    assert "<b>Bold</b>" not in html
    svg = chart_svg(teammate_client, metric)
    assert svg.find("title").text.startswith("<script>alert(1)</script> exports")
    (marker,) = of_class(svg, "marker")
    assert marker.find("title").text == "Go: <b>Bold</b> walkthrough"


# --- Thousands of points -------------------------------------------------------------------------


@pytest.fixture
def five_thousand(metric) -> list[tuple[date, Decimal]]:
    start = date(2012, 1, 1)
    rows = []
    for n in range(5000):
        value = Decimal(50 + (n * 37 % 101) / 10).quantize(Decimal("0.001"))
        rows.append((start + timedelta(days=n), value))
    rows[1234] = (rows[1234][0], Decimal("500"))  # one spike up
    rows[3210] = (rows[3210][0], Decimal("-300"))  # and one down
    rows[-1] = (rows[-1][0], Decimal("55.5"))
    measure(metric, rows)
    return rows


def test_five_thousand_points_are_thinned_keeping_extremes_and_the_latest(metric, five_thousand):
    chart = charts.build(metric)

    assert chart.count == 5000
    columns = chart.right - chart.left + 1
    assert len(chart.points) <= 2 * columns
    assert len(chart.points) < 5000
    kept = [(p.day, p.value) for p in chart.points]
    assert five_thousand[1234] in kept
    assert five_thousand[3210] in kept
    assert kept[-1] == five_thousand[-1]
    assert chart.latest.value == Decimal("55.5")
    assert kept == sorted(kept), "still in date order"
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)


def test_thinning_keeps_each_pixel_columns_lowest_and_highest_value(metric, five_thousand):
    chart = charts.build(metric)
    first, last = five_thousand[0][0], five_thousand[-1][0]
    span = (last - first).days
    by_column: dict[int, list[Decimal]] = {}
    for day, value in five_thousand:
        x = chart.left + (day - first).days / span * (chart.right - chart.left)
        by_column.setdefault(int(x), []).append(value)
    kept: dict[int, set[Decimal]] = {}
    for point in chart.points:
        kept.setdefault(int(point.x), set()).add(point.value)
    assert set(kept) == set(by_column), "every column keeps a point"
    for column, values in by_column.items():
        assert {min(values), max(values)} <= kept[column]


def test_five_thousand_points_render_as_a_bounded_svg(metric, five_thousand, teammate_client):
    chart = charts.build(metric)
    svg = chart_svg(teammate_client, metric)

    points = polyline(svg)
    assert len(points) == len(chart.points)
    assert of_class(svg, "point") == [], "no dots when they cannot be told apart"
    highest = min(y for _, y in points)
    lowest = max(y for _, y in points)
    assert value_at(svg, highest) == pytest.approx(500, abs=0.5)
    assert value_at(svg, lowest) == pytest.approx(-300, abs=0.5)
    assert value_at(svg, points[-1][1]) == pytest.approx(55.5, abs=0.5)
    assert points[-1][0] == chart.right
    assert svg.find("title").text == "Accounts exporting within 7 days, 5000 measurements"


# --- Words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "words"),
    [
        (0, "no progress yet,"),
        (0.005, "no progress yet,"),
        (0.02, "2% of the way"),
        (0.245, "a quarter of the way (24%)"),
        (0.23, "23% of the way"),
        (0.1, "10% of the way"),
        (0.25, "a quarter of the way (25%)"),
        (1 / 3, "a third of the way (33%)"),
        (0.5, "half way (50%)"),
        (0.6, "60% of the way"),
        (2 / 3, "two thirds of the way (67%)"),
        (0.75, "three quarters of the way (75%)"),
        (0.9, "90% of the way"),
        (1, "the target is reached, going"),
        (1.5, "past the target, which goes"),
        (-0.2, "moving away from the target (-20% of the way), which goes"),
    ],
)
def test_progress_is_said_in_words_people_use(share, words):
    assert charts.progress_words(share) == words


def test_the_issues_example_reads_as_written(metric):
    measure(metric, [(date(2026, 11, 3), "44"), (date(2026, 11, 17), "50")])
    chart = charts.build(metric)
    assert chart.progress == pytest.approx(1 / 3)
    assert chart.summary == "Latest 50% on 17 Nov 2026: a third of the way (33%) from 40% to 70%."


@pytest.mark.parametrize(
    ("latest", "summary"),
    [
        ("40", "Latest 40% on 17 Nov 2025: no progress yet, from 40% to 70%."),
        ("55", "Latest 55% on 17 Nov 2025: half way (50%) from 40% to 70%."),
        ("70", "Latest 70% on 17 Nov 2025: the target is reached, going from 40% to 70%."),
        ("80", "Latest 80% on 17 Nov 2025: past the target, which goes from 40% to 70%."),
        (
            "37",
            "Latest 37% on 17 Nov 2025: moving away from the target (-10% of the way), "
            "which goes from 40% to 70%.",
        ),
    ],
)
def test_the_summary_beside_the_chart_names_the_latest_value_and_progress(
    metric, teammate_client, latest, summary
):
    measure(metric, [(date(2025, 11, 10), "45"), (date(2025, 11, 17), latest)])
    assert charts.build(metric).summary == summary
    html = teammate_client.get(
        reverse("feature_detail", kwargs={"feature_id": metric.feature_id})
    ).content.decode()
    assert f">{summary}</p>" in html, "beside the chart, for everyone"
    assert svg_desc(html, metric) == summary


def svg_desc(html: str, metric: Metric) -> str:
    found = re.search(rf'<svg [^>]*data-metric="{metric.key}".*?</svg>', html, re.DOTALL)
    return ET.fromstring(found[0]).find("desc").text


# --- Lower is better -----------------------------------------------------------------------------


@pytest.fixture
def export_time(feature) -> Metric:
    return make_metric(
        feature, name="p95 export time", key="p95", unit="ms", baseline=900, target=600
    )


def test_a_metric_where_lower_is_better_draws_its_goal_below_the_baseline(
    export_time, teammate_client
):
    measure(
        export_time,
        [(date(2025, 11, 3), "900"), (date(2025, 11, 10), "850"), (date(2025, 11, 17), "800")],
    )

    chart = charts.build(export_time)
    svg = chart_svg(teammate_client, export_time)

    assert chart.progress == pytest.approx(1 / 3)
    assert chart.summary == (
        "Latest 800 ms on 17 Nov 2025: a third of the way (33%) from 900 ms to 600 ms."
    )
    (goal,) = of_class(svg, "goal-line")
    (baseline,) = of_class(svg, "baseline")
    assert value_at(svg, line_y(goal)) == pytest.approx(600, abs=0.5)
    assert value_at(svg, line_y(baseline)) == pytest.approx(900, abs=0.5)
    assert line_y(goal) > line_y(baseline), "the target is drawn below the baseline"
    ys = [y for _, y in polyline(svg)]
    assert ys[0] < ys[1] < ys[2], "falling values go down the chart"
    assert "Target 600 ms" in "".join(goal.itertext())


@pytest.mark.parametrize(
    ("latest", "words"),
    [
        ("600", "the target is reached, going"),
        ("450", "past the target, which goes"),
        ("750", "half way (50%)"),
        ("990", "moving away from the target (-30% of the way), which goes"),
    ],
)
def test_progress_when_lower_is_better(export_time, latest, words):
    measure(export_time, [(date(2025, 11, 17), latest)])
    assert charts.build(export_time).summary == (
        f"Latest {latest} ms on 17 Nov 2025: {words} from 900 ms to 600 ms."
    )
