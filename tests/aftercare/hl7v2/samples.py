"""The HL7 v2.5.1 sample messages under `samples/`, as a hospital's interface engine sends them."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    """A sample message with CR segment separators."""
    return (SAMPLES / f"{name}.hl7").read_text().strip("\n").replace("\n", "\r") + "\r"


def with_control_id(text: str, control_id: str) -> str:
    """The same message under another MSH-10."""
    fields = text.split("\r", 1)[0].split("|")
    fields[9] = control_id
    return "|".join(fields) + "\r" + text.split("\r", 1)[1]
