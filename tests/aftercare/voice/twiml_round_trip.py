"""TwiML checked by a round trip through the SDK's `VoiceResponse`: every verb is rebuilt with the SDK's
method of that name on its parent (so only verbs the SDK allows there), and must come out identical."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

from twilio.twiml import TwiML
from twilio.twiml.voice_response import VoiceResponse


def _parse(xml: str) -> Element:
    # Our own TwiML, built in the test: no untrusted XML is parsed here.
    return ElementTree.fromstring(xml.split("?>", 1)[1])  # noqa: S314


def _method_name(tag: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", tag).lower()


def _rebuild(source: Element, parent: TwiML) -> None:
    for element in source:
        method: Any = getattr(parent, _method_name(element.tag), None)
        assert method is not None, f"<{element.tag}> is not allowed inside <{source.tag}> by the SDK"
        child = method(element.text, **element.attrib) if element.text else method(**element.attrib)
        _rebuild(element, child)


def round_trip(xml: str) -> VoiceResponse:
    """The TwiML rebuilt through the SDK; asserts it is a `<Response>` and comes out the same."""
    root = _parse(xml)
    assert root.tag == "Response"
    rebuilt = VoiceResponse()
    _rebuild(root, rebuilt)
    assert str(rebuilt) == xml
    return rebuilt


def verbs(xml: str) -> list[tuple[str, str | None]]:
    """Each element in document order, with its text: `[("Say", "Hello"), ("Gather", None), …]`."""
    root = _parse(xml)
    return [(element.tag, element.text) for element in root.iter() if element is not root]


def attribute(xml: str, tag: str, name: str) -> str | None:
    """An attribute of the first element with this tag."""
    root = _parse(xml)
    found = root.find(f".//{tag}")
    return found.get(name) if found is not None else None
