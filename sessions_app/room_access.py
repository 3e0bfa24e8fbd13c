"""Who may stay in a live room: checked again before each message.

The handshake found a login and a member. Later, before every note and every
heartbeat, the room asks whether that still holds: not logged out (here or in
another tab), the login's session not deleted or expired, the password not
changed since, the account still active, and the user still a member of the
session's team. These are the checks of Django's get_user, without its side
effects on the session, plus membership, in one statement that is composed
once per process: composing it through the ORM cost a millisecond each time,
a tenth of a busy room's database thread. Sessions are kept in the database
(Django's default engine).

A note needs no statement of its own for this: once the check has verified a
login, the note's insert is made on condition that the login is unchanged
since (Login.guard), and only a refused insert runs the check again.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from sessions_app.models import EnsembleSession, Feature, Membership
from sessions_app.services.timeline import Guard

# Close codes the client must not reconnect after.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


def is_member(user, session_id) -> bool:
    return Membership.objects.filter(user=user, team__features__sessions__pk=session_id).exists()


def column(meta, name: str) -> str:
    """A model field's column, quoted, for the statements composed here."""
    return connection.ops.quote_name(meta.get_field(name).column)


@cache
def _statement(vendor: str) -> str:
    """The user's password hash and the login's session data, if both still
    exist, whether the user is a member of the session's team, and the
    session's revision (which a heartbeat's answer carries)."""
    q = connection.ops.quote_name
    user = get_user_model()._meta
    member, feature, session = Membership._meta, Feature._meta, EnsembleSession._meta

    team, feature_id = column(member, "team"), column(session, "feature")

    return (
        f"SELECT u.{column(user, 'password')},"
        f" (SELECT s.{q('session_data')} FROM {q(Session._meta.db_table)} s"
        f"  WHERE s.{q('session_key')} = %s AND s.{q('expire_date')} > %s),"
        f" EXISTS (SELECT 1 FROM {q(member.db_table)} m"
        f"  JOIN {q(feature.db_table)} f ON f.{column(feature, 'team')} = m.{team}"
        f"  JOIN {q(session.db_table)} e ON e.{feature_id} = f.{q(feature.pk.column)}"
        f"  WHERE m.{column(member, 'user')} = u.{q(user.pk.column)}"
        f"  AND e.{q(session.pk.column)} = %s),"
        f" (SELECT r.{column(session, 'revision')} FROM {q(session.db_table)} r"
        f"  WHERE r.{q(session.pk.column)} = %s)"
        f" FROM {q(user.db_table)} u"
        f" WHERE u.{q(user.pk.column)} = %s AND u.{column(user, 'is_active')} = %s"
    )


@cache
def _guard_condition(vendor: str) -> str:
    """True while a login holds exactly as it was last verified: the same
    password hash and session data, the session unexpired, the account
    active, and the user a member of the session's team. A condition of the
    note's own insert (see Login.guard), so it names the session row `e`."""
    q = connection.ops.quote_name
    user = get_user_model()._meta
    member, feature, session = Membership._meta, Feature._meta, EnsembleSession._meta

    team = column(member, "team")
    return (
        f"EXISTS (SELECT 1 FROM {q(user.db_table)} u"
        f"  WHERE u.{q(user.pk.column)} = %s AND u.{column(user, 'is_active')} = %s"
        f"  AND u.{column(user, 'password')} = %s)"
        f" AND EXISTS (SELECT 1 FROM {q(Session._meta.db_table)} s"
        f"  WHERE s.{q('session_key')} = %s AND s.{q('expire_date')} > %s"
        f"  AND s.{q('session_data')} = %s)"
        f" AND EXISTS (SELECT 1 FROM {q(member.db_table)} m"
        f"  JOIN {q(feature.db_table)} f ON f.{column(feature, 'team')} = m.{team}"
        f"  WHERE m.{column(member, 'user')} = %s"
        f"  AND f.{q(feature.pk.column)} = e.{column(session, 'feature')})"
    )


class Login:
    """The login a live-room connection was opened with (see the module)."""

    def __init__(self, user, session_key: str | None):
        self.user, self.session_key = user, session_key
        # The session data and password hash last found to hold: while
        # neither changes, the signature and the hash need no new check.
        self.verified: tuple[str, str] | None = None
        # The session's revision when the check last ran.
        self.revision = 0

    def refusal(self, session_id) -> int | None:
        """The close code for a user who may no longer be in the room, else None."""
        if not self.session_key:
            return UNAUTHENTICATED
        fields = get_user_model()._meta
        session_pk = EnsembleSession._meta.pk.get_db_prep_value(session_id, connection)
        params = [
            self.session_key,
            Session._meta.get_field("expire_date").get_db_prep_value(timezone.now(), connection),
            session_pk,
            session_pk,
            fields.pk.get_db_prep_value(self.user.pk, connection),
            fields.get_field("is_active").get_db_prep_value(True, connection),
        ]
        with connection.cursor() as cursor:
            cursor.execute(_statement(connection.vendor), params)
            row = cursor.fetchone()
        if row is None or row[1] is None:
            return UNAUTHENTICATED
        password, session_data, member, self.revision = row
        if self.verified != (session_data, password):
            if not self._holds(session_data, password):
                return UNAUTHENTICATED
            self.verified = (session_data, password)
        return None if member else FORBIDDEN

    def guard(self) -> Guard | None:
        """The condition under which a write may skip refusal(): this login
        still holds as it was last verified. None before it was verified.
        A write made under it that is refused runs refusal(), which says
        whether the login ended or merely changed (and verifies it again)."""
        if self.verified is None or not self.session_key:
            return None
        session_data, password = self.verified
        fields = get_user_model()._meta
        user_pk = fields.pk.get_db_prep_value(self.user.pk, connection)
        params = [
            user_pk,
            fields.get_field("is_active").get_db_prep_value(True, connection),
            password,
            self.session_key,
            Session._meta.get_field("expire_date").get_db_prep_value(timezone.now(), connection),
            session_data,
            user_pk,
        ]
        return Guard(_guard_condition(connection.vendor), params)

    def _holds(self, session_data: str, password: str) -> bool:
        data = SessionStore().decode(session_data)
        if str(data.get(SESSION_KEY)) != str(self.user.pk):
            return False
        current = get_user_model()(pk=self.user.pk, password=password)
        held = data.get(HASH_SESSION_KEY) or ""
        return any(
            constant_time_compare(held, current._get_session_auth_hash(secret=secret))
            for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        )
