"""Sign-up, teams, and the invite links that bring people in."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from sessions_app.forms import SignUpForm, TeamForm
from sessions_app.models import ApiToken, Invite, Team, Webhook, WebhookDelivery
from sessions_app.permissions import current_membership, set_current_team
from sessions_app.services import teams, tokens, webhooks
from sessions_app.services.validation import InvalidInput


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(_safe_next(request, reverse("team_create")))
    status = 400 if form.is_bound else 200
    return render(
        request,
        "registration/signup.html",
        {"form": form, "next": _safe_next(request, "")},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm()
    if request.method == "POST":
        try:
            team = teams.create_team(owner=request.user, data=request.POST)
        except InvalidInput as invalid:
            form = invalid.form
        else:
            set_current_team(request, team)
            messages.success(request, f"Team “{team.name}” created. Invite your colleagues below.")
            return redirect("team")
    status = 400 if form.is_bound else 200
    return render(request, "sessions_app/team_create.html", {"form": form}, status=status)


@login_required
@require_POST
def team_switch(request: HttpRequest, team_id: UUID) -> HttpResponse:
    team = get_object_or_404(Team.objects.for_member(request.user), pk=team_id)
    set_current_team(request, team)
    return redirect("dashboard")


@login_required
def team(request: HttpRequest, webhook_form=None) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return redirect("team_create")
    owner = membership.is_owner
    return render(
        request,
        "sessions_app/team.html",
        {
            "team": membership.team,
            "is_owner": owner,
            "members": membership.team.memberships.select_related("user"),
            "invites": membership.team.invites.filter(revoked_at=None) if owner else [],
            "webhooks": membership.team.webhooks.all() if owner else [],
            "deliveries": WebhookDelivery.objects.filter(
                webhook__team=membership.team
            ).select_related("webhook")[:30]
            if owner
            else [],
            "webhook_form": webhook_form or webhooks.WebhookForm(label_suffix=""),
        },
        status=400 if webhook_form else 200,
    )


@login_required
@require_POST
def webhook_add(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        raise Http404
    try:
        webhooks.add_webhook(team=membership.team, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        return team(request, webhook_form=invalid.form)
    messages.success(request, "Webhook added: decisions and rollout changes will be sent to it.")
    return redirect("team")


@login_required
@require_POST
def webhook_remove(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(
        Webhook.objects.filter(team__memberships__user=request.user).select_related("team"),
        pk=webhook_id,
    )
    webhooks.remove_webhook(webhook=webhook, by=request.user)
    messages.success(request, "Webhook removed.")
    return redirect("team")


@login_required
@require_POST
def invite_create(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        raise Http404
    teams.create_invite(team=membership.team, by=request.user)
    messages.success(request, "New invite link created. Share it with the people to invite.")
    return redirect("team")


@login_required
@require_POST
def invite_revoke(request: HttpRequest, invite_id: int) -> HttpResponse:
    invite = get_object_or_404(
        Invite.objects.filter(team__memberships__user=request.user).select_related("team"),
        pk=invite_id,
    )
    teams.revoke_invite(invite=invite, by=request.user)
    messages.success(request, "Invite link revoked: it no longer lets anyone join.")
    return redirect("team")


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    # A revoked or unknown token is simply not found.
    invite = get_object_or_404(
        Invite.objects.select_related("team", "created_by"),
        token=token,
        revoked_at=None,
    )
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        teams.accept_invite(invite=invite, user=request.user)
        set_current_team(request, invite.team)
        messages.success(request, f"Welcome to {invite.team.name}.")
        return redirect("dashboard")
    already_member = (
        request.user.is_authenticated and invite.team.memberships.filter(user=request.user).exists()
    )
    return render(
        request,
        "sessions_app/invite.html",
        {"invite": invite, "already_member": already_member},
    )


# --- Personal API tokens ----------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The signed-in user's page: their API tokens. A new token is shown once,
    in the answer to the form that created it, and never again."""
    new_token = ""
    if request.method == "POST":
        _, new_token = tokens.create_token(
            user=request.user,
            name=request.POST.get("name", ""),
            can_write=request.POST.get("can_write") == "on",
        )
    return render(
        request,
        "sessions_app/account.html",
        {"tokens": request.user.api_tokens.all(), "new_token": new_token},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    tokens.revoke_token(token=token, by=request.user)
    messages.success(request, f"Token “{token.name}” revoked: it no longer reads anything.")
    return redirect("account")
