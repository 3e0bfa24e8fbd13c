from __future__ import annotations

from django.db import models

from sessions_app.models.features import Feature


class Metric(models.Model):
    """A feature's measurable aspirational goal: from a baseline towards a target."""

    class Direction(models.TextChoices):
        UP = "up", "Higher is better"
        DOWN = "down", "Lower is better"

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=120)
    # How the API names it: /api/v1/features/<flag_key>/metrics/<key>/measurements
    key = models.SlugField(max_length=60)
    definition = models.TextField(blank=True, max_length=2000)
    unit = models.CharField(max_length=20, blank=True)
    baseline = models.DecimalField(max_digits=12, decimal_places=3)
    target = models.DecimalField(max_digits=12, decimal_places=3)
    direction = models.CharField(max_length=4, choices=Direction.choices, default=Direction.UP)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["feature", "name"], name="metric_name_unique_per_feature"
            ),
            models.UniqueConstraint(
                fields=["feature", "key"], name="metric_key_unique_per_feature"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Measurement(models.Model):
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="measurements")
    date = models.DateField()
    value = models.DecimalField(max_digits=12, decimal_places=3)

    class Meta:
        ordering = ["metric", "date"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "date"], name="one_measurement_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.metric} on {self.date}: {self.value}"
