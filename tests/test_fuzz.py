"""Property-based fuzzing of what clients send: websocket messages, every form
(walked from the URLconf, with bodies near the valid ones the authorization
matrix posts) and the API. Whatever comes in, the server never answers 500,
never closes a socket with an internal error, and stores nothing from what it
refuses.

Example counts stay small so the suite stays fast; HYPOTHESIS_PROFILE=deep runs
many more. CI runs the same examples every time (derandomized), so a failure
there is reproducible; locally each run explores new ones.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os

import pytest
from channels.db import database_sync_to_async
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sessions_app import consumers
from sessions_app.models import (
    ApiToken,
    EnsembleSession,
    Event,
    Measurement,
    Metric,
    Note,
    RolloutChange,
    RolloutStage,
)
from sessions_app.services.tokens import create_token
from sessions_app.views.features import STAGE_ACTIONS
from tests.live_room import TIMEOUT, communicator, fresh_channel_layer, make_room, session_cookie
from tests.test_authorization_matrix import (
    APP_ROUTES,
    REFUSED,
    client_for,
    make_cast,
    post_data,
    prepare,
    snapshot,
    url_for,
)

settings.register_profile(
    "fast",
    max_examples=5,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("deep", parent=settings.get_profile("fast"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# Text as a browser sends it (any character UTF-8 can carry), with the ones that
# break databases and parsers often, and sizes past every limit now and then.
AWKWARD = [
    "",
    " ",
    "\x00",
    "0",
    "-1",
    "1e400",
    "NaN",
    "99999999999999999999",
    "2030-02-30",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "'; DROP TABLE notes; --",
    "\u202e\u0000\ufeff",
]
# Past every length limit (built when drawn, so that reports stay short).
too_long = st.sampled_from([("é", 5_000), ("x", 70_000)]).map(lambda pair: pair[0] * pair[1])
texts = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=60), st.sampled_from(AWKWARD), too_long
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


# --- The websocket ---------------------------------------------------------------------

KINDS = [kind for kind, _ in Note.Kind.choices]
# Lone surrogates are valid in JSON text ("\ud800") but not in UTF-8, so not in a database.
any_text = st.one_of(
    st.text(st.characters(exclude_categories=["Co"]), max_size=60),
    st.sampled_from([*AWKWARD, "\ud800 lone", "\udfff"]),
    too_long,
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["note", "edit_note", "delete_note", "hello", "ping"]) | json_values},
    optional={
        "client_id": st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z") | json_values,
        "kind": st.sampled_from(KINDS) | json_values,
        "text": any_text | json_values,
        "goal": st.integers() | json_values,
        "seq": st.integers(min_value=-2, max_value=3) | st.integers() | json_values,
        "since": st.integers() | json_values,
    },
)
frames = st.one_of(
    messages.map(lambda m: json.dumps(m)),
    st.text(max_size=80),  # rarely JSON at all
    st.binary(max_size=80),  # a binary frame
    # Deeper than the JSON parser's recursion limit, and past the size limit.
    st.integers(1, 20_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(4_300, 6_000).map(
        lambda digits: '{"type": "hello", "since": 1' + "0" * digits + "}"
    ),
    st.integers(32_001, 40_000).map(lambda size: "x" * size),
)
# Notes the server must refuse, whatever else they hold.
refused_notes = st.fixed_dictionaries(
    {
        "type": st.just("note"),
        "client_id": st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z"),
        "kind": st.sampled_from(KINDS),
        "text": any_text,
    }
).flatmap(
    lambda note: st.one_of(
        st.just({**note, "kind": "not-a-kind"}),
        st.just({**note, "text": "   "}),
        st.just({**note, "text": "x" * (Note.TEXT_MAX_LENGTH + 1)}),
        st.just({**note, "client_id": "bad id!"}),
        st.just({**note, "goal": 10**12}),
        st.just({key: value for key, value in note.items() if key != "text"}),
    )
)


def timeline(session_id) -> tuple:
    session = EnsembleSession.objects.get(pk=session_id)
    return (
        session.last_seq,
        session.revision,
        list(Note.objects.order_by("pk").values_list("seq", "text", "revision", "deleted_at")),
        Event.objects.count(),
    )


BARRIERS = itertools.count()


async def exchange(ws, frame: str | bytes) -> list[dict]:
    """Send a frame, then a barrier; everything the server sent in between.
    The barrier is a message of an unknown type, named uniquely: the server
    answers each message in order, so its error marks the end of the frame's
    answers (a ping would not: pongs may be delayed, and merged). A close on
    the way is returned as {"type": "closed", "code": …}."""
    barrier = f"barrier-{next(BARRIERS)}"
    # send_input, not send_to: that helper cannot send an empty frame.
    key = "bytes" if isinstance(frame, bytes) else "text"
    await ws.send_input({"type": "websocket.receive", key: frame})
    await ws.send_json_to({"type": barrier})
    replies = []
    while True:
        output = await ws.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return [*replies, {"type": "closed", "code": output.get("code")}]
        reply = json.loads(output["text"])
        if reply["type"] == "error" and repr(barrier) in reply["message"]:
            return replies
        replies.append(reply)


@pytest.mark.django_db(transaction=True)
# The server, running beside Hypothesis, draws random channel names meanwhile.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
async def test_fuzzed_websocket_messages_never_close_the_socket_and_refusals_store_nothing(
    monkeypatch,
):
    fresh_channel_layer()
    # The rate limit is tested elsewhere: here its clock races ahead, so every
    # message is handled.
    ticks = itertools.count(step=1_000)
    monkeypatch.setattr(consumers, "clock", lambda: float(next(ticks)))
    room = await database_sync_to_async(make_room)()
    ws = communicator(room.session_id, await database_sync_to_async(session_cookie)(room.sam))
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert connected
    loop = asyncio.get_running_loop()

    def send(frame) -> list[dict]:
        return asyncio.run_coroutine_threadsafe(exchange(ws, frame), loop).result(TIMEOUT * 3)

    @settings(max_examples=settings.default.max_examples * 12)
    @given(frame=frames)
    def anything(frame):
        before = timeline(room.session_id)
        replies = send(frame)
        assert not [r for r in replies if r["type"] == "closed"], (frame, replies)
        kinds = {reply["type"] for reply in replies}
        if "error" in kinds and not kinds & {"ack", "note"}:
            assert timeline(room.session_id) == before, (frame, replies)

    @settings(max_examples=settings.default.max_examples * 4)
    @given(note=refused_notes)
    def refused(note):
        before = timeline(room.session_id)
        replies = send(json.dumps(note))
        kinds = [reply["type"] for reply in replies]
        assert "error" in kinds and "ack" not in kinds and "closed" not in kinds, (note, replies)
        assert timeline(room.session_id) == before

    def run_in_thread(check) -> None:
        try:
            check()
        finally:
            connections.close_all()

    try:
        # Hypothesis drives from a thread of its own while this loop serves the socket.
        await asyncio.to_thread(run_in_thread, anything)
        await asyncio.to_thread(run_in_thread, refused)
    finally:
        await ws.disconnect(timeout=TIMEOUT)
        fresh_channel_layer()


# --- Every form ------------------------------------------------------------------------------

# Each rollout action is its own form behind one URL pattern.
POST_CASES = [
    pytest.param(route, action, id=f"{route.name}-{action}" if action else route.name)
    for route in APP_ROUTES
    if not route.name.startswith("api_")
    for action in (STAGE_ACTIONS if route.name == "rollout_stage" else [None])
]
# Who posts: someone allowed to, so that the fuzzed data reaches the form.
POSTER = {"review_vote": "member", "token_revoke": "member"}
EXTRA_KEYS = ["next", "reason", "name", "text", "role", "status", "goal", "direction", "done"]


def bodies(valid: dict):
    """Each valid field kept, replaced with something awkward, repeated or left
    out, and some fields no form asked for."""
    fields = {
        key: st.one_of(
            st.just([str(value)]),
            st.lists(texts, min_size=1, max_size=2),
            st.just(None),
        )
        for key, value in valid.items()
    }
    extra = st.dictionaries(st.sampled_from(EXTRA_KEYS), texts.map(lambda t: [t]), max_size=2)
    return st.tuples(st.fixed_dictionaries(fields), extra).map(
        lambda parts: {
            key: value for key, value in {**parts[1], **parts[0]}.items() if value is not None
        }
    )


@pytest.mark.parametrize(("route", "action"), POST_CASES)
def test_fuzzed_form_posts_never_fail_with_500_and_a_400_stores_nothing(route, action, db):
    cast = make_cast()
    prepare(route.name, cast.session)
    if action:
        cast.rows["action"] = action
        if action in ("enable", "pause"):
            RolloutStage.objects.filter(pk=cast.rows["stage_id"]).update(status="approved")
    url = url_for(route, cast.rows)
    client = client_for(cast, POSTER.get(route.name, "owner"))
    query = st.dictionaries(st.sampled_from(["next", "feature", "q", "perspective"]), texts)
    valid = post_data(route.name, cast)
    # Always tried: a NUL character (which no database column takes) in every
    # field, and in the fields no form asked for.
    nul = {key: ["x\x00"] for key in [*valid, *EXTRA_KEYS]}

    @example(body=nul, params={"next": "\x00"})
    @given(body=bodies(valid), params=query)
    def check(body, params):
        savepoint = transaction.savepoint_create()
        try:
            assert client.get(url, params).status_code < 500
            before = snapshot()
            response = client.post(url, body)
            assert response.status_code < 500
            if response.status_code == 400:
                assert snapshot() == before, body
        finally:
            transaction.savepoint_rollback(savepoint)

    check()


# --- The API -------------------------------------------------------------------------------

API_ROUTES = [r for r in APP_ROUTES if r.name.startswith("api_")]
headers = st.one_of(
    st.just("Bearer {token}"),
    st.text(st.characters(codec="latin-1"), max_size=40),
    st.sampled_from(["Bearer", "Bearer ", "bearer {token}", "Basic Zm9vOmJhcg==", "Bearer ens_"]),
)
api_bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.fixed_dictionaries(
        {"date": st.dates().map(str) | json_values, "value": st.floats() | json_values}
    ).map(lambda value: json.dumps(value).encode()),
    st.lists(
        st.fixed_dictionaries({"date": st.dates().map(str) | texts, "value": st.integers()}),
        max_size=3,
    ).map(lambda items: json.dumps({"measurements": items}).encode()),
)


def api_rows(cast) -> dict:
    rows = {"flag_key": cast.rows["flag_key"]}
    if any(field.name == "key" for field in Metric._meta.fields):
        metric = Metric.objects.create(
            feature=cast.session.feature, name="Adoption", key="adoption", baseline=40, target=70
        )
        rows["metric_key"] = metric.key
    return rows


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: r.name)
def test_fuzzed_api_requests_never_fail_with_500_and_a_refusal_stores_nothing(route, db):
    cast = make_cast()
    token_row, token = create_token(user=cast.users["member"], name="Fuzz")
    if hasattr(token_row, "can_write"):
        type(token_row).objects.filter(pk=token_row.pk).update(can_write=True)
    url = url_for(route, api_rows(cast))

    @settings(max_examples=settings.default.max_examples * 4)
    @given(
        authorization=headers,
        params=st.dictionaries(st.sampled_from(["team", "since", "x"]), texts),
        body=api_bodies,
    )
    def check(authorization, params, body):
        savepoint = transaction.savepoint_create()
        try:
            auth = {"Authorization": authorization.replace("{token}", token)}
            response = Client().get(url, params, headers=auth)
            assert response.status_code < 500
            stored = Measurement.objects.count()
            response = Client().post(url, body, content_type="application/json", headers=auth)
            assert response.status_code < 500
            if str(response.status_code) in REFUSED | {"400", "413", "429"}:
                assert Measurement.objects.count() == stored
        finally:
            transaction.savepoint_rollback(savepoint)

    check()


# --- What the fuzzing found, each fixed --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("[" * 2_000 + "]" * 2_000, id="nested-past-the-recursion-limit"),
        pytest.param('{"type": "hello", "since": 1' + "0" * 5_000 + "}", id="5000-digit-number"),
    ],
)
async def test_json_the_parser_gives_up_on_gets_an_error_and_the_socket_stays_open(frame):
    fresh_channel_layer()
    room = await database_sync_to_async(make_room)()
    ws = communicator(room.session_id, await database_sync_to_async(session_cookie)(room.sam))
    assert (await ws.connect(timeout=TIMEOUT))[0]
    try:
        replies = await exchange(ws, frame)
        assert [r for r in replies if r["type"] != "panel"] == [
            {"type": "error", "message": "That message was not valid JSON."}
        ]
    finally:
        await ws.disconnect(timeout=TIMEOUT)
        fresh_channel_layer()


@pytest.mark.django_db(transaction=True)
async def test_a_lone_surrogate_in_a_note_is_stored_as_a_replacement_character():
    """JSON may escape half a character ("\\ud800"); UTF-8 cannot hold it, so
    storing it failed and closed the socket with an internal error."""
    fresh_channel_layer()
    room = await database_sync_to_async(make_room)()
    ws = communicator(room.session_id, await database_sync_to_async(session_cookie)(room.sam))
    assert (await ws.connect(timeout=TIMEOUT))[0]
    try:
        frame = '{"type": "note", "client_id": "surrogate-1", "kind": "bug", "text": "a\\ud800b"}'
        replies = await exchange(ws, frame)
        assert "ack" in [r["type"] for r in replies]
        assert await database_sync_to_async(Note.objects.values_list("text", flat=True).get)() == (
            "a\ufffdb"
        )
    finally:
        await ws.disconnect(timeout=TIMEOUT)
        fresh_channel_layer()


def test_a_nul_character_in_a_token_name_is_dropped_instead_of_failing(teammate_client):
    response = teammate_client.post(reverse("account"), {"name": "C\x00I"})
    assert response.status_code == 200
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["CI"]


@pytest.mark.parametrize("action", ["pause", "override"])
def test_a_nul_character_in_a_rollout_reason_is_refused_with_a_message(
    action, feature, facilitator_client
):
    status = "approved" if action == "pause" else "pending"
    stage = RolloutStage.objects.create(feature=feature, position=1, name="Pilot", status=status)
    url = reverse("rollout_stage", args=[feature.pk, stage.pk, action])

    response = facilitator_client.post(url, {"reason": "because\x00"}, follow=True)

    assert response.status_code == 200
    assert "A reason is text of at most 2,000 characters." in response.content.decode()
    assert RolloutStage.objects.get().status == status
    assert not RolloutChange.objects.exists()


@pytest.mark.parametrize("client_id", ["x\x00abcdefgh", "x" * 5_000])
def test_a_malformed_client_id_is_refused_by_the_form_not_by_the_database(
    client_id, session, teammate_client
):
    session.status = EnsembleSession.Status.LIVE
    session.save()
    url = reverse("note_add", args=[session.pk])

    response = teammate_client.post(url, {"kind": "bug", "text": "Hi", "client_id": client_id})

    assert response.status_code == 400
    assert "A client id is 8 to 64 letters" in response.content.decode()
    assert not Note.objects.exists()
