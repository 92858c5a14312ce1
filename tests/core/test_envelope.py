"""The protocol v1 envelope (rtlab.core.envelope): validation, encoding, round trips.

Every refusal is an EnvelopeError with an exact code and a message that names the
field at fault; ``ref`` carries the event's id only when that id was readable.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtlab.core.envelope import (
    DEFAULT_NAMESPACE,
    JSON,
    MAX_ID,
    MID,
    NAME,
    NAMESPACE,
    Ack,
    EnvelopeError,
    ErrorCode,
    Event,
    _loads,
    decode_event,
    decode_reply,
    encode_ack,
    encode_ack_error,
    encode_error,
    encode_event,
    event_parts,
    json_text,
)


def refusal(message: str | bytes) -> EnvelopeError:
    """The EnvelopeError that decode_event raises for ``message`` (and nothing else)."""
    with pytest.raises(EnvelopeError) as caught:
        decode_event(message, binary=False)  # bytes here: a text frame's UTF-8
    return caught.value


def envelope(**fields: object) -> str:
    """A JSON object with a valid event name, plus (or overridden by) ``fields``."""
    return json.dumps({"event": "ping", **fields})


# -- codes and the error object ---------------------------------------------------------


def test_error_codes_are_the_documented_strings():
    assert {code.value for code in ErrorCode} == {
        "invalid_json",
        "invalid",
        "unsupported",
        "unknown_event",
        "unknown_namespace",
        "not_connected",
        "not_member",
        "forbidden",
        "rate_limited",
        "limit_exceeded",
        "internal",
        "unavailable",
        "unknown_user",
    }
    assert str(ErrorCode.NOT_MEMBER) == "not_member"  # StrEnum: goes into JSON as is


def test_envelope_error_is_a_value_error_with_code_message_and_ref():
    error = EnvelopeError(ErrorCode.INVALID, "data must be a room id", 7)
    assert isinstance(error, ValueError)
    assert (error.code, error.message, error.ref, str(error)) == (
        ErrorCode.INVALID,
        "data must be a room id",
        7,
        "data must be a room id",
    )
    answer = json.loads(error.to_json("/chat"))
    assert answer == {
        "event": "error",
        "data": {"code": "invalid", "message": "data must be a room id", "ref": 7},
        "ns": "/chat",
    }
    assert "ref" not in json.loads(EnvelopeError(ErrorCode.INTERNAL, "x").to_json())["data"]


# -- not JSON, not an object ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "   ", "{", "{'event': 'x'}", '{"event": "x",}', "hello", b"\xff\xfe\x00", "\ufeff{}"],
)
def test_not_json_is_invalid_json(text):
    error = refusal(text)
    assert error.code is ErrorCode.INVALID_JSON
    assert error.message.startswith("not valid JSON")
    assert error.ref is None


def test_too_deep_nesting_is_invalid_json_not_a_recursion_error():
    for text in ["[" * 100_000, '{"event": "x", "data": ' + "[" * 100_000 + "]" * 100_000 + "}"]:
        error = refusal(text)
        assert error.code is ErrorCode.INVALID_JSON
        assert "nested too deeply" in error.message
        assert error.ref is None


def test_huge_integer_is_invalid_json():
    error = refusal('{"event": "x", "data": ' + "9" * 10_000 + "}")
    assert error.code is ErrorCode.INVALID_JSON


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[]", "list"), ('"event"', "str"), ("42", "int"), ("null", "NoneType"), ("NaN", "float")],
)
def test_json_that_is_not_an_object_is_invalid(text, kind):
    error = refusal(text)
    assert error.code is ErrorCode.INVALID
    assert error.message == f"a message must be a JSON object, got {kind}"
    assert error.ref is None


def test_bytes_are_decoded_as_utf8():
    assert decode_event(b'{"event": "a", "data": "\xc3\xa9"}', binary=False) == Event("a", "é")


# -- fields -----------------------------------------------------------------------------


def test_the_smallest_valid_event_gets_the_defaults():
    assert decode_event('{"event": "ping"}') == Event("ping", None, DEFAULT_NAMESPACE, None, None)
    assert decode_event(
        '{"event": "send-message", "data": {"roomId": "r", "message": "hi"}, '
        '"ns": "/chat", "id": 7, "mid": "a1"}'
    ) == Event("send-message", {"roomId": "r", "message": "hi"}, "/chat", 7, "a1")


@pytest.mark.parametrize("field", ["extra", "Event", "ack", "", "data "])
def test_unexpected_field_is_named(field):
    error = refusal(envelope(**{field: 1}))
    assert error.code is ErrorCode.INVALID
    assert error.message == f"unexpected field {field!r}"


def test_the_first_unexpected_field_in_sorted_order_is_named():
    assert refusal(envelope(zeta=1, alpha=2)).message == "unexpected field 'alpha'"


@pytest.mark.parametrize(
    "name",
    ["a", "A", "0", "send-message", "user.joined", "ns:event", "snake_case", "x" * 64, "a-._:"],
)
def test_valid_event_names(name):
    assert decode_event(json.dumps({"event": name})).event == name


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        " ",
        "has space",
        "-leading",
        "_leading",
        ".x",
        "x" * 65,
        "é",
        "a/b",
        "a\n",
        5,
        True,
        ["x"],
        {"a": 1},
    ],
)
def test_bad_event_names_are_invalid_and_named(name):
    error = refusal(json.dumps({"event": name}))
    assert error.code is ErrorCode.INVALID
    assert error.message.startswith("event must be a name of 1 to 64 letters")
    assert repr(name)[:40] in error.message


def test_missing_event_is_invalid():
    error = refusal('{"data": 1}')
    assert error.code is ErrorCode.INVALID
    assert error.message.startswith("event must be")
    assert error.message.endswith("got None")


@pytest.mark.parametrize("ns", ["/", "/chat", "/notifications", "/a_b-C9", "/" + "n" * 63])
def test_valid_namespaces(ns):
    assert decode_event(envelope(ns=ns)).ns == ns


@pytest.mark.parametrize(
    "ns", ["", "chat", "//", "/chat/room", "/a b", "/é", "/" + "n" * 64, None, 1, ["/"]]
)
def test_bad_namespaces_are_invalid_and_named(ns):
    error = refusal(envelope(ns=ns))
    assert error.code is ErrorCode.INVALID
    assert error.message.startswith("ns must look like '/chat'")


@pytest.mark.parametrize("id", [0, 1, 12345, MAX_ID])
def test_valid_ids(id):
    assert decode_event(envelope(id=id)).id == id


def test_null_id_means_no_acknowledgement():
    assert decode_event(envelope(id=None)).id is None


@pytest.mark.parametrize(
    "raw",
    [
        "true",
        "false",
        "-1",
        str(MAX_ID + 1),
        str(2**64),
        "1.0",
        "1.5",
        "1e3",
        '"7"',
        "[7]",
        '{"n": 7}',
        "-0.0",
    ],
)
def test_bad_ids_are_invalid_named_and_have_no_ref(raw):
    error = refusal('{"event": "ping", "id": ' + raw + "}")
    assert error.code is ErrorCode.INVALID
    assert error.message.startswith(f"id must be a whole number from 0 to {MAX_ID}, got ")
    assert error.ref is None


@pytest.mark.parametrize("mid", ["a", "!", "~", "a1-b2_c3", "x" * 64, "{uuid}", '"quoted"'])
def test_valid_mids(mid):
    assert decode_event(envelope(mid=mid)).mid == mid


def test_null_mid_means_none():
    assert decode_event(envelope(mid=None)).mid is None


@pytest.mark.parametrize("mid", ["", " ", "a b", "tab\t", "x" * 65, "é", "\x7f", 5, True, ["a"]])
def test_bad_mids_are_invalid_and_named(mid):
    error = refusal(envelope(mid=mid))
    assert error.code is ErrorCode.INVALID
    assert error.message.startswith("mid must be 1 to 64 printable characters")


# -- ref: the id, when it could be read ----------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"extra": 1},
        {"event": "bad name"},
        {"event": None},
        {"ns": "chat"},
        {"mid": ""},
    ],
)
@pytest.mark.parametrize("id", [0, 9, MAX_ID])
def test_ref_is_the_readable_id_of_a_refused_event(fields, id):
    error = refusal(envelope(id=id, **fields))
    assert error.code is ErrorCode.INVALID
    assert error.ref == id


@pytest.mark.parametrize("id", [-1, True, 1.0, "3", MAX_ID + 1])
def test_no_ref_when_the_id_itself_is_unreadable(id):
    error = refusal(envelope(id=id, extra=1))
    assert error.message.startswith("id must be")  # the id is checked first
    assert error.ref is None


def test_no_ref_without_an_id():
    assert refusal(envelope(extra=1)).ref is None


# -- encoding ---------------------------------------------------------------------------


def test_encode_event_is_compact_utf8_json_with_id_and_mid_only_when_given():
    assert encode_event("hi") == '{"event":"hi","data":null,"ns":"/"}'
    assert (
        encode_event("hi", {"t": "é✓"}, "/chat") == '{"event":"hi","data":{"t":"é✓"},"ns":"/chat"}'
    )
    assert encode_event("hi", 1, "/", 0) == '{"event":"hi","data":1,"ns":"/","id":0}'
    assert encode_event("hi", 1, "/", 5, "m") == '{"event":"hi","data":1,"ns":"/","id":5,"mid":"m"}'
    assert encode_event("hi", mid="m") == '{"event":"hi","data":null,"ns":"/","mid":"m"}'


def test_encode_ack_and_ack_error():
    assert encode_ack(3, {"ok": True}) == '{"ack":3,"data":{"ok":true}}'
    assert encode_ack(4) == '{"ack":4,"data":null}'
    assert encode_ack_error(5, ErrorCode.NOT_MEMBER, "join 'r' first") == (
        '{"ack":5,"error":{"code":"not_member","message":"join \'r\' first"}}'
    )


def test_encode_error_has_ref_only_when_given():
    assert json.loads(encode_error(ErrorCode.INVALID, "bad", 0)) == {
        "event": "error",
        "data": {"code": "invalid", "message": "bad", "ref": 0},
        "ns": "/",
    }
    assert json.loads(encode_error(ErrorCode.UNSUPPORTED, "binary", ns="/chat")) == {
        "event": "error",
        "data": {"code": "unsupported", "message": "binary"},
        "ns": "/chat",
    }


def test_decode_reply_reads_acks_errors_and_events():
    assert decode_reply(encode_ack(3, [1, 2])) == Ack(3, [1, 2], None)
    assert decode_reply(encode_ack(0)) == Ack(0, None, None)
    assert decode_reply(encode_ack_error(9, ErrorCode.INVALID, "no")) == Ack(
        9, None, {"code": "invalid", "message": "no"}
    )
    assert decode_reply(encode_event("user-joined", {"userId": "a"}, "/chat")) == Event(
        "user-joined", {"userId": "a"}, "/chat"
    )
    assert decode_reply('{"event": "x"}') == Event("x", None, "/")
    assert decode_reply(encode_error(ErrorCode.INVALID, "m", 2)) == Event(
        "error", {"code": "invalid", "message": "m", "ref": 2}, "/"
    )


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("nope", ErrorCode.INVALID_JSON, "not valid JSON"),
        ("[1]", ErrorCode.INVALID, "JSON object"),
        ('{"event": 5}', ErrorCode.INVALID, "event must be a string"),
        ('{"data": 1}', ErrorCode.INVALID, "event must be a string"),
        ('{"ack": -1}', ErrorCode.INVALID, "id must be"),
        ('{"ack": "1"}', ErrorCode.INVALID, "id must be"),
    ],
)
def test_decode_reply_refuses_what_a_server_would_never_send(text, code, words):
    with pytest.raises(EnvelopeError) as caught:
        decode_reply(text)
    assert caught.value.code is code
    assert words in caught.value.message


def test_encoded_messages_are_valid_utf8_even_for_lone_surrogates_from_json_escapes():
    """``"\\ud800"`` is valid JSON (JavaScript's JSON.stringify writes it for a lone
    surrogate), so decode_event accepts it; whatever the server then encodes with
    that text must still be UTF-8, or it cannot go out in a text frame."""
    try:
        event = decode_event(
            '{"event": "send-message", "data": {"roomId": "r", "message": "x\\ud800"}}'
        )
    except EnvelopeError as error:  # refusing it is a fix too, if it says why
        assert error.code is ErrorCode.INVALID
        return
    for text, data in (
        (encode_event("receive-message", event.data), event.data),
        (encode_ack(1, event.data), event.data),
        (encode_error(ErrorCode.INVALID, event.data["message"]), event.data["message"]),
    ):
        text.encode("utf-8")  # raises UnicodeEncodeError if the text holds a lone surrogate
        decoded = json.loads(text)["data"]
        assert (decoded if isinstance(data, dict) else decoded["message"]) == data


# -- properties -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
# Objects built mostly from the envelope's own keys, so that every rule gets exercised.
envelope_like = st.dictionaries(
    st.sampled_from(["event", "data", "ns", "id", "mid", "extra"]) | st.text(max_size=5),
    json_values
    | st.from_regex(NAME, fullmatch=True)
    | st.from_regex(NAMESPACE, fullmatch=True)
    | st.integers(min_value=-2, max_value=MAX_ID + 2),
    max_size=6,
)


def check_refusal(error: EnvelopeError) -> None:
    assert isinstance(error.code, ErrorCode)
    assert error.message
    assert error.ref is None or (type(error.ref) is int and 0 <= error.ref <= MAX_ID)
    answer = decode_reply(error.to_json())  # the refusal itself is a readable event
    assert isinstance(answer, Event)
    assert answer.event == "error"
    assert answer.data["code"] == error.code.value


@settings(max_examples=300)
@given(st.text() | st.binary())
def test_decode_event_raises_only_envelope_error_on_any_text(text):
    try:
        event = decode_event(text)
    except EnvelopeError as error:
        check_refusal(error)
    else:
        assert isinstance(event, Event)


@pytest.mark.slow
@settings(max_examples=300)
@given(json_values | envelope_like)
def test_decode_event_raises_only_envelope_error_on_any_json_value(value):
    text = json.dumps(value)
    try:
        event = decode_event(text)
    except EnvelopeError as error:
        check_refusal(error)
        assert error.code is not ErrorCode.INVALID_JSON  # it was JSON
        if isinstance(value, dict):
            raw_id = value.get("id")
            readable = type(raw_id) is int and 0 <= raw_id <= MAX_ID
            assert error.ref == (raw_id if readable else None)
    else:
        assert isinstance(value, dict)
        assert set(value) <= {"event", "data", "ns", "id", "mid"}
        assert event.event == value["event"]
        assert event.data == value.get("data")
        assert event.ns == value.get("ns", "/")
        assert event.id == value.get("id")
        assert event.mid == value.get("mid")


events = st.builds(
    Event,
    event=st.from_regex(NAME, fullmatch=True),
    data=json_values,
    ns=st.from_regex(NAMESPACE, fullmatch=True),
    id=st.none() | st.integers(min_value=0, max_value=MAX_ID),
    mid=st.none() | st.from_regex(MID, fullmatch=True),
)


@pytest.mark.slow
@settings(max_examples=300)
@given(events)
def test_any_valid_event_round_trips(event):
    text = encode_event(event.event, event.data, event.ns, event.id, event.mid)
    assert decode_event(text) == event
    assert decode_event(text.encode("utf-8"), binary=False) == event


@pytest.mark.slow
@settings(max_examples=300)
@given(events)
def test_an_events_parts_wrap_its_data_encoded_elsewhere_as_encode_event_would(event):
    prefix, suffix = event_parts(event.event, event.ns)
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    assert prefix + data + suffix == encode_event(event.event, event.data, event.ns)


any_text = st.text(  # with lone surrogates, which st.text() leaves out by default
    st.characters(max_codepoint=0x7F) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    max_size=10,
)
any_json = st.recursive(
    st.none() | st.integers() | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=10,
)


@given(any_json)
def test_whatever_decode_event_accepts_encodes_back_to_utf8(data):
    """json.dumps escapes lone surrogates as \\udXXX: valid JSON, so a client can send them."""
    try:
        event = decode_event(json.dumps({"event": "echo", "data": data}))
    except EnvelopeError as error:
        assert error.code is ErrorCode.INVALID
        return
    for text in (encode_event("echo", event.data), encode_ack(1, event.data)):
        assert json.loads(text.encode("utf-8"))["data"] == event.data  # the same data back


@given(st.integers(min_value=0, max_value=MAX_ID), json_values, st.sampled_from(list(ErrorCode)))
def test_acks_and_errors_round_trip(id, data, code):
    assert decode_reply(encode_ack(id, data)) == Ack(id, data, None)
    assert decode_reply(encode_ack_error(id, code, "why")) == Ack(
        id, None, {"code": code.value, "message": "why"}
    )
    assert decode_reply(encode_error(code, "why", id, "/chat")) == Event(
        "error", {"code": code.value, "message": "why", "ref": id}, "/chat"
    )


@given(json_values | st.floats() | st.text())
def test_json_text_writes_what_the_json_encoder_writes(value):
    """The C encoder made once writes what ``JSON.encode`` writes, NaN and non-ASCII too."""
    assert json_text(value) == JSON.encode(value)


def test_json_text_refuses_what_json_cannot_carry():
    with pytest.raises(TypeError, match="bytes is not JSON serializable"):
        json_text({"data": b"raw"})  # _dumps catches this and packs a binary frame


@given(
    st.text(max_size=30)
    | st.tuples(st.sampled_from(["", " ", "\n"]), json_values, st.sampled_from(["", " ", "x"])).map(
        lambda parts: parts[0] + json.dumps(parts[1]) + parts[2]
    )
)
def test_an_event_is_parsed_as_json_loads_parses_it(text):
    """The C scanner called directly (envelope._loads) takes and refuses what json.loads does."""
    try:
        expected = json.dumps(json.loads(text))
    except ValueError as error:
        with pytest.raises(EnvelopeError, match="not valid JSON"):
            _loads(text)
        assert str(error) in str(refusal(text))
        return
    assert json.dumps(_loads(text)) == expected
