"""A call's TwiML, built from its rendered script: the greeting and the first question, each question
as a `<Gather>` posting to its signed webhook, re-prompts, the end (goodbye, transfer or voicemail
recording), and the voicemail left on a machine. Every answer survives the SDK round trip."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from aftercare.voice import twiml
from models.voice import CallScript, RenderedCall
from tests.aftercare.voice.twiml_round_trip import attribute, round_trip, verbs

URLS = twiml.CallUrls("https://outreach.hospital.example", "msg-1")
SCRIPT = {
    "say": "Hello Abdul.",
    "gather": [
        {"id": "feeling", "prompt": "Press 1 if you feel well, 2 if you feel worse.", "digits": "12"},
        {"id": "medicines", "prompt": "Press 1 if you have your medicines.", "reprompt": "Press 1 or 2."},
    ],
    "voicemail": "This is your care team. Please call us back.",
}


def call(**changes: object) -> RenderedCall:
    return RenderedCall(script=CallScript.model_validate({**SCRIPT, **changes}), language="es")


def test_the_opening_greets_then_asks_the_first_question_posting_to_its_webhook() -> None:
    xml = str(twiml.opening(call(), URLS))
    round_trip(xml)
    assert verbs(xml) == [
        ("Say", "Hello Abdul."),
        ("Gather", None),
        ("Say", "Press 1 if you feel well, 2 if you feel worse."),
    ]
    action = urlsplit(attribute(xml, "Gather", "action") or "")
    assert (action.scheme, action.netloc, action.path) == (
        "https",
        "outreach.hospital.example",
        "/webhooks/twilio/voice/gather",
    )
    assert parse_qs(action.query) == {"message_id": ["msg-1"], "question": ["0"], "attempt": ["1"]}
    assert attribute(xml, "Gather", "numDigits") == "1"
    assert attribute(xml, "Gather", "actionOnEmptyResult") == "true"
    assert attribute(xml, "Say", "language") == "es-US"


def test_a_second_attempt_says_the_reprompt() -> None:
    xml = str(twiml.question(call(), URLS, 1, 2))
    round_trip(xml)
    assert ("Say", "Press 1 or 2.") in verbs(xml)
    assert "attempt=2" in (attribute(xml, "Gather", "action") or "")


def test_after_the_last_answer_the_call_says_goodbye_and_hangs_up() -> None:
    xml = str(twiml.after_answer(call(), URLS, 1, {"feeling": "1", "medicines": "1"}))
    round_trip(xml)
    assert verbs(xml) == [("Say", "Thank you. Goodbye."), ("Hangup", None)]


def test_a_transfer_on_an_answer_dials_the_care_team() -> None:
    transfer = {"to": "+15550100100", "question": "feeling", "digits": "2"}
    worse = str(twiml.after_answer(call(transfer=transfer), URLS, 1, {"feeling": "2"}))
    well = str(twiml.after_answer(call(transfer=transfer), URLS, 1, {"feeling": "1"}))
    round_trip(worse)
    assert ("Dial", "+15550100100") in verbs(worse)
    assert "Dial" not in [verb for verb, _ in verbs(well)]


def test_a_voicemail_for_a_nurse_is_recorded_to_its_webhook() -> None:
    xml = str(twiml.after_answer(call(record={}), URLS, 1, {}))
    round_trip(xml)
    assert [verb for verb, _ in verbs(xml)] == ["Say", "Record"]
    assert "/webhooks/twilio/voice/recording?" in (attribute(xml, "Record", "action") or "")
    assert attribute(xml, "Record", "finishOnKey") == "#"


def test_a_machine_hears_only_the_minimal_voicemail() -> None:
    xml = str(twiml.voicemail(call()))
    round_trip(xml)
    assert verbs(xml) == [("Say", "This is your care team. Please call us back."), ("Hangup", None)]


def test_keys_outside_the_allowed_digits_do_not_answer() -> None:
    question = call().script.gather[0]
    assert twiml.accepts(question, "2")
    assert not twiml.accepts(question, "3")
    assert not twiml.accepts(question, "")
    assert not twiml.accepts(question, None)
