from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, Exists, OuterRef

from sessions_app.models.sessions import EnsembleSession


class GoalQuerySet(models.QuerySet):
    def for_board(self, viewer) -> GoalQuerySet:
        """Goals as the board shows them: must-cover first, then most votes."""
        return (
            self.select_related("author")
            .annotate(
                vote_count=Count("votes", distinct=True),
                voted_by_viewer=Exists(GoalVote.objects.filter(goal=OuterRef("pk"), user=viewer)),
            )
            .order_by("-must_cover", "-vote_count", "created_at", "id")
        )


class Goal(models.Model):
    class Perspective(models.TextChoices):
        SUPPORT = "support", "Support"
        SUCCESS = "success", "Customer success"
        ENGINEERING = "engineering", "Engineering"
        PRODUCT = "product", "Product"
        DESIGN = "design", "Design"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COVERED = "covered", "Covered"
        PROBLEM = "problem", "Problem found"
        SKIPPED = "skipped", "Skipped"

    TEXT_MAX_LENGTH = 500

    session = models.ForeignKey(EnsembleSession, on_delete=models.CASCADE, related_name="goals")
    text = models.CharField(max_length=TEXT_MAX_LENGTH)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="goals",
    )
    perspective = models.CharField(max_length=12, choices=Perspective.choices)
    must_cover = models.BooleanField("must cover", default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GoalQuerySet.as_manager()

    class Meta:
        ordering = ["-must_cover", "created_at", "id"]

    def __str__(self) -> str:
        return self.text


class GoalVote(models.Model):
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="goal_votes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["goal", "user"], name="one_vote_per_member_per_goal")
        ]

    def __str__(self) -> str:
        return f"{self.user} votes for {self.goal}"
