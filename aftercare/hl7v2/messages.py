"""An HL7 v2 message as the mapping reads it: parsed by the `hl7` package, fields by their v2 names.

Problems carry what an acknowledgement needs: the code (`AE` for a message that cannot be mapped,
`AR` for one Aftercare does not take), the HL7 table 0357 error code and the field (`PID-3`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import hl7

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")
SUPPORTED_EVENTS = ("A01", "A02", "A03", "A04", "A08", "A11", "A13", "A40")
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")

AckCode = Literal["AE", "AR"]


class V2Problem(Exception):
    """A message Aftercare cannot act on, with what its ERR segment says."""

    def __init__(self, ack: AckCode, location: str, code: str, text: str) -> None:
        super().__init__(f"{location}: {text}" if location else text)
        self.ack = ack
        self.location = location
        self.code = code
        self.text = text


def unmappable(location: str, text: str, code: str = "102") -> V2Problem:
    """An `AE`: the field at `location` (`PID-7`) cannot be mapped."""
    return V2Problem("AE", location, code, text)


@dataclass(frozen=True)
class Header:
    """What MSH says about a message: who sent it, its control id, type and version."""

    sending_application: str
    sending_facility: str
    control_id: str
    message_code: str
    event: str
    version: str


class V2Message:
    """A parsed message: segments by id, fields as repetitions of components (unescaped).

    The `hl7` package reads the separators and escape character MSH declares and unescapes text; the
    message is split into segments and fields once, as that package lays them out (MSH-1 the field
    separator, MSH-2 the encoding characters), and a field into repetitions and components only when
    the mapping reads it.
    """

    def __init__(self, text: str) -> None:
        self.text = normalise_segment_separators(text)
        if not self.text.startswith("MSH") or len(self.text) < 8:
            raise V2Problem("AR", "MSH", "100", "the message does not start with an MSH segment")
        stripped = self.text.strip()
        try:
            plan = hl7.parser.create_parse_plan(stripped)
        except Exception as error:  # the parser's errors are plain exceptions of several kinds
            raise V2Problem("AR", "MSH", "100", f"the message cannot be parsed: {error}") from error
        self._separators: str = plan.separators  # segment, field, repetition, component, subcomponent
        self._codec = hl7.Message(self._separators[0], esc=plan.esc, separators=self._separators)
        self._segments = [self._fields(segment) for segment in stripped.split(self._separators[0])]
        self._index: dict[str, list[int]] = {}
        for position, fields in enumerate(self._segments):
            self._index.setdefault(fields[0], []).append(position)
        try:
            self.header = self._read_header()
        except (IndexError, KeyError) as error:
            raise V2Problem("AR", "MSH", "101", "the MSH segment is incomplete") from error

    def _fields(self, segment: str) -> list[str]:
        """A segment's fields; MSH, BHS and FHS start with their id, the field separator and the
        encoding characters, as in the `hl7` package."""
        separator = self._separators[1]
        if segment[:3] in ("MSH", "BHS", "FHS") and len(segment) > 3:
            declared = segment[3]
            end = segment.find(declared, 4)
            return [segment[:3], declared, segment[4:end], *segment[end + 1 :].split(separator)]
        return segment.split(separator)

    def _read_header(self) -> Header:
        """MSH-3/4 sender, MSH-10 control id, MSH-9 type and MSH-12 version."""
        msh = self._segments[self._index["MSH"][0]]
        message_type = self._components(msh[9])
        return Header(
            sending_application=msh[3],
            sending_facility=msh[4],
            control_id=msh[10],
            message_code=message_type[0] if message_type else "",
            event=message_type[1] if len(message_type) > 1 else "",
            version=msh[12].split(self._separators[3])[0],
        )

    def check_segment_ids(self) -> None:
        """`AE` naming the first segment whose id is not one: delimiters other than MSH declares."""
        for position, segment in enumerate(self._segments, start=1):
            if not _SEGMENT_ID.match(segment[0]):
                raise unmappable(
                    segment[0][:3],
                    f"segment {position} ({segment[0][:12]!r}) does not use the delimiters MSH declares",
                    "100",
                )

    def first_field_longer_than(self, limit: int) -> str:
        """The first field (`PID-5`, MSH aside) with a component longer than `limit` characters once
        unescaped; `""` when none has one."""
        for segment in self._segments:
            if segment[0] in ("MSH", "BHS", "FHS"):
                continue
            for number, raw in enumerate(segment[1:], start=1):
                if len(raw) <= limit:
                    continue
                for repetition in raw.split(self._separators[2]):
                    if any(len(part) > limit for part in self._components(repetition)):
                        return f"{segment[0]}-{number}"
        return ""

    def segments(self, segment_id: str) -> list[int]:
        """Positions of the segments with this id, in order."""
        return list(self._index.get(segment_id, []))

    def has(self, segment_id: str) -> bool:
        """Whether the message holds such a segment."""
        return bool(self.segments(segment_id))

    def repetitions(
        self, segment_id: str, field: int, index: int = 0, *, subcomponents: bool = False
    ) -> list[list[str]]:
        """`PID-3` of the `index`th PID: each repetition as its components (empty ones dropped); a
        component's subcomponents joined by `&` when asked for (CX.4), else its first alone."""
        positions = self.segments(segment_id)
        if index >= len(positions):
            return []
        segment = self._segments[positions[index]]
        if segment_id == "MSH":
            field -= 1
        if field >= len(segment):
            return []
        raw = segment[field]
        repeated = raw.split(self._separators[2]) if raw else []
        found = [self._components(item) for item in repeated if item.strip()]
        if subcomponents:
            return found
        return [[component.split("&")[0] for component in item] for item in found]

    def first(self, segment_id: str, field: int, index: int = 0) -> list[str]:
        """The first repetition of a field, as components; `[]` when empty."""
        found = self.repetitions(segment_id, field, index)
        return found[0] if found else []

    def value(self, segment_id: str, field: int, component: int = 1, index: int = 0) -> str:
        """One component (1-based) of the first repetition; `""` when absent."""
        components = self.first(segment_id, field, index)
        return components[component - 1] if len(components) >= component else ""

    def _components(self, text: str) -> list[str]:
        parts = text.split(self._separators[3])
        return [
            "&".join(self._codec.unescape(sub).strip() for sub in part.split(self._separators[4]))
            for part in parts
        ]


def normalise_segment_separators(text: str) -> str:
    """Segments end in CR; interface engines often send LF or CRLF, which are taken as the same."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x0b\x1c ")
    return lines + "\r"
