"""Forms validate every write, whether it comes from a page or the websocket."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from django.utils import timezone
from django.utils.text import slugify

from sessions_app.models import (
    ConfidenceVote,
    DashboardLink,
    Decision,
    EnsembleSession,
    Feature,
    FollowUp,
    Goal,
    Measurement,
    Metric,
    Note,
    Participant,
    Team,
)

User = get_user_model()


class PlainLabels:
    """Labels without Django's trailing colon: a field's accessible name is then
    the word alone ("Role", not "Role:"), as people and browser tests expect."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignUpForm(PlainLabels, UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)


class TeamForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]
        labels = {"name": "Team name"}


class FeatureForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Feature
        fields = ["name", "flag_key", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team

    def clean_flag_key(self) -> str:
        flag_key = self.cleaned_data["flag_key"]
        taken = Feature.objects.filter(team=self.team, flag_key=flag_key)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(
                f"Your team already has a feature with the flag key “{flag_key}”."
            )
        return flag_key


def team_members(team: Team):
    return User.objects.filter(memberships__team=team).order_by("username")


class SessionForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = EnsembleSession
        fields = [
            "feature",
            "title",
            "charter",
            "internal_tenant",
            "environment",
            "scheduled_start",
            "timebox_minutes",
            "facilitator",
        ]
        widgets = {
            "charter": forms.Textarea(attrs={"rows": 4}),
            "scheduled_start": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this team's features and members can be chosen: a forged id is
        # "not one of the available choices", never another team's row.
        self.fields["feature"].queryset = Feature.objects.filter(team=team)
        self.fields["facilitator"].queryset = team_members(team)
        self.fields["facilitator"].label_from_instance = lambda user: user.get_username()


class DashboardLinkForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = DashboardLink
        fields = ["label", "url"]


DashboardLinkFormSet = forms.inlineformset_factory(
    EnsembleSession,
    DashboardLink,
    form=DashboardLinkForm,
    extra=3,
    max_num=12,
    validate_max=True,
    can_delete=True,
)


class GoalForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Goal
        fields = ["text", "perspective"]
        labels = {"text": "Goal"}
        widgets = {"text": forms.Textarea(attrs={"rows": 2})}
        error_messages = {
            "text": {"required": "Write the goal you want the session to cover."},
            "perspective": {"required": "Choose the perspective this goal comes from."},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["perspective"].choices = Goal.Perspective.choices


class MergeGoalsForm(PlainLabels, forms.Form):
    duplicate = forms.ModelChoiceField(queryset=Goal.objects.none(), label="Duplicate")
    keep = forms.ModelChoiceField(queryset=Goal.objects.none(), label="Merge into")

    def __init__(self, *args, session: EnsembleSession, **kwargs):
        super().__init__(*args, **kwargs)
        goals = Goal.objects.filter(session=session)
        self.fields["duplicate"].queryset = goals
        self.fields["keep"].queryset = goals

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("duplicate") and cleaned.get("duplicate") == cleaned.get("keep"):
            raise forms.ValidationError("Choose two different goals to merge.")
        return cleaned


def _single_holder_error(session: EnsembleSession, role: str, exclude_pk: int | None):
    """The error when someone else already holds a role only one person may hold."""
    if role not in Participant.SINGLE_HOLDER_ROLES:
        return None
    holder = (
        session.participants.filter(role=role).exclude(pk=exclude_pk).select_related("user").first()
    )
    if holder is None:
        return None
    label = Participant.Role(role).label.lower()
    return forms.ValidationError(
        f"{holder.user.get_username()} is already the {label}; give them another role first."
    )


class ParticipantForm(PlainLabels, forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.none(), label="Member")
    role = forms.ChoiceField(choices=Participant.Role.choices, label="Role")

    def __init__(self, *args, session: EnsembleSession, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        self.fields["user"].queryset = team_members(session.feature.team).exclude(
            participations__session=session
        )
        self.fields["user"].label_from_instance = lambda user: user.get_username()

    def clean(self):
        cleaned = super().clean()
        if role := cleaned.get("role"):
            error = _single_holder_error(self.session, role, exclude_pk=None)
            if error:
                self.add_error("role", error)
        return cleaned


class RoleForm(PlainLabels, forms.Form):
    role = forms.ChoiceField(choices=Participant.Role.choices, label="Role")

    def __init__(self, *args, participant: Participant, **kwargs):
        super().__init__(*args, **kwargs)
        self.participant = participant

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        error = _single_holder_error(self.participant.session, role, self.participant.pk)
        if error:
            raise error
        return role


class RotationForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = EnsembleSession
        fields = ["rotation_minutes"]
        labels = {"rotation_minutes": "Rotate roles every (minutes)"}
        help_texts = {"rotation_minutes": "Leave empty for no rotation."}


client_id_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{8,64}$", "A client id is 8 to 64 letters, digits, dashes or underscores."
)


class SessionGoalField(forms.Field):
    """One of a session's goals, by id; cleaned, the goal itself.

    Not a ModelChoiceField: that field and its widget refer to each other, so
    each form would leave a reference cycle for the garbage collector (see
    NoteForm). The live room renders its own goal select, not this widget."""

    default_error_messages = {
        "invalid_choice": forms.ModelChoiceField.default_error_messages["invalid_choice"],
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.session_id = None  # The form says whose goals are valid choices.

    def to_python(self, value):
        if value in self.empty_values:
            return None
        ProhibitNullCharactersValidator()(value)  # as a ModelChoiceField says
        try:
            return Goal.objects.get(session_id=self.session_id, pk=value)
        except (ValueError, TypeError, Goal.DoesNotExist):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            ) from None


class NoteForm(PlainLabels, forms.ModelForm):
    """A note as typed in the live room, from the websocket or the plain form.

    A note is validated for every message of a busy room, so this form leaves
    no reference cycles behind (no ModelChoiceField, no cached bound fields;
    take the note from `instance`, not `save(commit=False)`, which stores a
    method of the form on it). Cycles wait for the garbage collector, and
    under the benchmark its collections held up the whole room for 17-29 ms
    about every 18 s (bench/README.md)."""

    goal = SessionGoalField(required=False, label="For goal")

    class Meta:
        model = Note
        fields = ["kind", "text", "goal", "client_id"]
        labels = {"text": "Note", "kind": "Kind"}
        widgets = {"text": forms.Textarea(attrs={"rows": 3})}
        error_messages = {
            "text": {"required": "Write the note before sending it."},
            "kind": {"required": "Choose the kind of note."},
        }

    def __init__(self, *args, session: EnsembleSession, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = Note.Kind.choices
        # Only this session's goals: a goal id from elsewhere is not a valid choice.
        self.fields["goal"].session_id = session.pk
        self.fields["client_id"].validators.append(client_id_validator)

    def __getitem__(self, name):
        # A new bound field each time: Django's cache of them on the form is a
        # cycle (each refers back to the form). Only an invalid note is shown.
        return self.fields[name].get_bound_field(self, name)


class NoteEditForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Note
        fields = ["text"]
        error_messages = {"text": {"required": "A note cannot be empty; delete it instead."}}


class GoalStatusForm(PlainLabels, forms.Form):
    status = forms.ChoiceField(choices=Goal.Status.choices)


class ConfidenceVoteForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = ConfidenceVote
        fields = ["score", "comment"]
        labels = {"score": "Confidence", "comment": "Comment"}
        widgets = {
            "score": forms.RadioSelect(choices=[(n, str(n)) for n in range(1, 6)]),
            "comment": forms.TextInput(),
        }
        error_messages = {"score": {"required": "Choose your confidence, from 1 to 5."}}


class DecisionForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Decision
        fields = ["outcome", "rationale", "revision_reason"]
        labels = {
            "outcome": "Decision",
            "rationale": "Rationale",
            "revision_reason": "Reason for the revision",
        }
        widgets = {
            "rationale": forms.Textarea(attrs={"rows": 4}),
            "revision_reason": forms.Textarea(attrs={"rows": 2}),
        }
        error_messages = {"rationale": {"required": "Say why: the rationale is required."}}

    def __init__(self, *args, session: EnsembleSession, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        self.revising = session.decisions.exists()
        if not self.revising:
            del self.fields["revision_reason"]

    def clean(self):
        cleaned = super().clean()
        if self.revising and not (cleaned.get("revision_reason") or "").strip():
            self.add_error("revision_reason", "Revising a decision needs a reason.")
        conditional = cleaned.get("outcome") == Decision.Outcome.GO_WITH_CONDITIONS
        if conditional and not self.session.follow_ups.exists():
            self.add_error(
                "outcome", "“Go with conditions” needs at least one follow-up: add it first."
            )
        return cleaned


class FollowUpForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ["text", "owner", "due", "tracker_url"]
        labels = {"text": "Follow-up", "owner": "Owner", "due": "Due"}
        widgets = {"due": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, session: EnsembleSession, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = team_members(session.feature.team)
        self.fields["owner"].label_from_instance = lambda user: user.get_username()


# --- Metrics ------------------------------------------------------------------------


class MetricForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Metric
        fields = ["name", "key", "definition", "unit", "baseline", "target"]
        labels = {"name": "Metric name", "key": "API key", "unit": "Unit"}
        help_texts = {
            "key": "How the API names it; made from the name when left empty.",
            "unit": "Shown after each value, such as % or ms.",
        }
        widgets = {"definition": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, feature: Feature, **kwargs):
        super().__init__(*args, **kwargs)
        self.feature = feature
        self.fields["key"].required = False

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("key") and cleaned.get("name"):
            cleaned["key"] = slugify(cleaned["name"])[:60] or "metric"
        others = Metric.objects.filter(feature=self.feature).exclude(pk=self.instance.pk)
        if cleaned.get("name") and others.filter(name=cleaned["name"]).exists():
            self.add_error("name", "This feature already has a metric with this name.")
        if cleaned.get("key") and others.filter(key=cleaned["key"]).exists():
            self.add_error("key", "This feature already has a metric with this key.")
        baseline, target = cleaned.get("baseline"), cleaned.get("target")
        if baseline is not None and baseline == target:
            self.add_error("target", "The target must differ from the baseline.")
        return cleaned

    def _post_clean(self):
        self.instance.key = self.cleaned_data.get("key", "")
        baseline, target = self.cleaned_data.get("baseline"), self.cleaned_data.get("target")
        if baseline is not None and target is not None:
            # Which way is better follows from the numbers, so it never contradicts them.
            up = target > baseline
            self.instance.direction = Metric.Direction.UP if up else Metric.Direction.DOWN
        super()._post_clean()


class MeasurementForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Measurement
        fields = ["date", "value"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"})}
        labels = {"date": "Measured on", "value": "Value"}

    def clean_date(self):
        day = self.cleaned_data["date"]
        if day > timezone.localdate() + timedelta(days=1):
            raise forms.ValidationError("That date is in the future.")
        return day
