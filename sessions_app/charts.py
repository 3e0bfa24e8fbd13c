"""A metric's chart, drawn on the server as SVG: the measurements as a line,
the baseline, the target as the goal line, and markers for the decisions and
rollout changes that might have moved the number.

Everything is computed here as numbers and words; the template only places
them (metric_chart.html), so the same figures feed the picture, its text
alternative and the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from sessions_app.models import Decision, Metric, RolloutChange

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 24, 40
# Markers for the rollout changes that change who has the feature.
ROLLOUT_MARKS = ("approved", "enabled", "paused", "overrode the gate")
# Beyond this many points a line keeps, per pixel column, its lowest and highest
# point: the same picture, a bounded SVG, and no spike smoothed away.
MAX_POINTS = 2 * (WIDTH - LEFT - RIGHT)
# Markers closer than this (in SVG units) share one number label.
MARKER_LABEL_WIDTH = 16
# Dots on each point only where they can be told apart.
MAX_DOTS = 60
# The data table under the chart lists this many; the CSV download has them all.
RECENT = 20


@dataclass(frozen=True)
class Point:
    day: date
    value: Decimal
    x: float = 0.0
    y: float = 0.0

    @property
    def number(self) -> str:
        return f"{self.value.normalize():f}"


@dataclass(frozen=True)
class Marker:
    number: int
    day: date
    kind: str  # "decision" or "rollout"
    label: str
    x: float
    # The number shown above its line: markers closer than a label's width
    # share one ("1–3"), shown on the first of them.
    tag: str = ""


@dataclass
class Chart:
    metric: Metric
    points: list[Point] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    baseline_y: float = 0.0
    target_y: float = 0.0
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    latest: Point | None = None
    recent: list[Point] = field(default_factory=list)  # newest first, for the data table
    progress: float | None = None  # share of the gap from baseline to target closed
    count: int = 0
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def dots(self) -> list[Point]:
        return self.points if len(self.points) <= MAX_DOTS else []

    @property
    def baseline_label(self) -> str:
        return fmt(self.metric.baseline, self.metric.unit)

    @property
    def target_label(self) -> str:
        return fmt(self.metric.target, self.metric.unit)

    @property
    def summary(self) -> str:
        """The chart in words: what a screen reader says, and what sits beside it."""
        metric = self.metric
        goal = f"from {fmt(metric.baseline, metric.unit)} to {fmt(metric.target, metric.unit)}"
        if self.latest is None:
            return f"No measurements yet. The goal is {goal}."
        latest = f"{fmt(self.latest.value, metric.unit)} on {self.latest.day:%-d %b %Y}"
        return f"Latest {latest}: {progress_words(self.progress)} {goal}."


def fmt(value: Decimal | float, unit: str) -> str:
    number = f"{Decimal(value).normalize():f}" if isinstance(value, Decimal) else f"{value:g}"
    return f"{number}{unit}" if unit in ("%", "‰") else f"{number} {unit}".rstrip()


def progress_words(share: float | None) -> str:
    """“a third of the way”, in words people use, with the percentage."""
    if share is None:
        return ""
    if share >= 1:
        return "the target is reached, going" if share < 1.005 else "past the target, which goes"
    if share < 0:
        return f"moving away from the target ({share:.0%} of the way), which goes"
    fractions = [
        (0.0, "no progress yet"),
        (0.25, "a quarter of the way"),
        (1 / 3, "a third of the way"),
        (0.5, "half way"),
        (2 / 3, "two thirds of the way"),
        (0.75, "three quarters of the way"),
    ]
    for value, words in fractions:
        if abs(share - value) < 0.01:  # within a point: the words are true
            return words + ("," if value == 0 else f" ({share:.0%})")
    return f"{share:.0%} of the way"


def build(metric: Metric, *, now: datetime | None = None) -> Chart:
    measurements = list(metric.measurements.order_by("date").values_list("date", "value"))
    chart = Chart(metric=metric, count=len(measurements))
    markers = _markers(metric)
    days = [day for day, _ in measurements] + [day for day, _, _ in markers]
    if not days:
        days = [timezone.localdate(now)]
    first, last = min(days), max(days)
    if first == last:
        first, last = first - timedelta(days=1), last + timedelta(days=1)
    values = [float(value) for _, value in measurements]
    low, high, step = _nice_range(values + [float(metric.baseline), float(metric.target)])

    span = (last - first).days

    def x_of(day: date) -> float:
        return chart.left + (day - first).days / span * (chart.right - chart.left)

    def y_of(value: float) -> float:
        return chart.bottom - (value - low) / (high - low) * (chart.bottom - chart.top)

    points = [Point(day, value, x_of(day), y_of(float(value))) for day, value in measurements]
    chart.points = _thin(points)
    chart.baseline_y = y_of(float(metric.baseline))
    chart.target_y = y_of(float(metric.target))
    chart.y_ticks = [
        (y_of(low + i * step), fmt(_clean(low + i * step), metric.unit))
        for i in range(round((high - low) / step) + 1)
    ]
    tick_format = "%b %Y" if span > 300 else "%-d %b"
    chart.x_ticks = [(x_of(day), f"{day:{tick_format}}") for day in _date_ticks(first, last)]
    chart.markers = _tagged(
        [
            Marker(number, day, kind, label, x_of(day))
            for number, (day, kind, label) in enumerate(markers, start=1)
        ]
    )
    if points:
        chart.latest = points[-1]
        chart.recent = points[-RECENT:][::-1]
        gap = float(metric.target - metric.baseline)
        chart.progress = float(points[-1].value - metric.baseline) / gap
    return chart


def _markers(metric: Metric) -> list[tuple[date, str, str]]:
    decisions = Decision.objects.filter(session__feature_id=metric.feature_id).select_related(
        "session"
    )
    changes = RolloutChange.objects.filter(feature_id=metric.feature_id, action__in=ROLLOUT_MARKS)
    found = [
        (
            timezone.localdate(d.decided_at),
            "decision",
            f"{d.get_outcome_display()}: {d.session.title}",
        )
        for d in decisions
    ] + [
        (timezone.localdate(c.at), "rollout", f"{c.stage_name} {c.action}".strip()) for c in changes
    ]
    return sorted(found, key=lambda marker: marker[0])


def _tagged(markers: list[Marker]) -> list[Marker]:
    groups: list[list[Marker]] = []
    for marker in markers:
        if groups and marker.x - groups[-1][0].x < MARKER_LABEL_WIDTH:
            groups[-1].append(marker)
        else:
            groups.append([marker])
    tagged = []
    for group in groups:
        first, last = group[0].number, group[-1].number
        tag = str(first) if first == last else f"{first}–{last}"
        tagged += [replace(m, tag=tag if m is group[0] else "") for m in group]
    return tagged


def _thin(points: list[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return points
    columns: dict[int, list[Point]] = {}
    for point in points:
        columns.setdefault(int(point.x), []).append(point)
    kept: list[Point] = []
    for column in columns.values():
        lowest = min(column, key=lambda p: p.value)
        highest = max(column, key=lambda p: p.value)
        kept.extend(sorted({lowest, highest}, key=lambda p: p.day))
    # The latest value is what the words beside the chart speak of: keep it.
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _nice_range(values: list[float]) -> tuple[float, float, float]:
    """Round axis ends and a round step (1, 2 or 5 × 10ⁿ), about five ticks."""
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    raw = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _clean(value: float) -> Decimal:
    return Decimal(repr(round(value, 6)))


def _date_ticks(first: date, last: date) -> list[date]:
    span = last.toordinal() - first.toordinal()
    every = max(1, math.ceil(span / 6))
    return [date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1, every)]
