"""A day's print batch as files for the print room: a zip of one PDF per letter with a manifest, or all
letters merged into one PDF, in batch order."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("sequence", "message_id", "pages", "file")
# A fixed timestamp keeps the same batch the same bytes (zip entries otherwise carry the current time).
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
_SUBSET_TAG_LENGTH = 6


@dataclass(frozen=True)
class BatchLetter:
    """One letter of a batch: its message and its rendered PDF."""

    message_id: str
    pdf: bytes


def letter_file_name(sequence: int, message_id: str) -> str:
    """The letter's file name in the zip: `0001-<message id>.pdf`."""
    return f"{sequence:04d}-{message_id}.pdf"


def page_count(pdf: bytes) -> int:
    """How many pages a PDF has."""
    return len(PdfReader(io.BytesIO(pdf)).pages)


def batch_zip(letters: Sequence[BatchLetter]) -> bytes:
    """A zip of the letters, one PDF each, numbered in order, and `manifest.csv` (sequence, message id,
    pages, file). The manifest names no patient: the address is only inside each PDF."""
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for sequence, letter in enumerate(letters, start=1):
            name = letter_file_name(sequence, letter.message_id)
            archive.writestr(_entry(name), letter.pdf)
            writer.writerow((sequence, letter.message_id, page_count(letter.pdf), name))
        archive.writestr(_entry(MANIFEST), manifest.getvalue().encode())
    return buffer.getvalue()


def batch_pdf(letters: Sequence[BatchLetter], *, duplex: bool = False) -> bytes:
    """All letters in one PDF, in order. With `duplex`, a letter with an odd page count is followed by a
    blank page, so every letter starts on the front of a sheet when printed on both sides."""
    writer = PdfWriter()
    for sequence, letter in enumerate(letters, start=1):
        first_page = len(writer.pages)
        writer.append(PdfReader(io.BytesIO(letter.pdf)))
        _retag_font_subsets(writer, first_page, sequence)
        if duplex and (len(writer.pages) - first_page) % 2:
            last = writer.pages[-1]
            writer.add_blank_page(float(last.mediabox.width), float(last.mediabox.height))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


def _retag_font_subsets(writer: PdfWriter, first_page: int, sequence: int) -> None:
    """Give this letter's embedded font subsets tags of their own.

    Every letter's subsets are tagged `AAAAAA+`, `AAAAAB+`, ... by reportlab; in a merged file, different
    subsets under one name can make a printer's RIP reuse the wrong glyphs. The tag becomes the letter's
    sequence number (four letters) followed by the last two letters of the original tag.
    """
    prefix = _letters(sequence, _SUBSET_TAG_LENGTH - 2)
    seen: set[int] = set()
    for page in writer.pages[first_page:]:
        resources = page.get("/Resources")
        fonts = resources.get_object().get("/Font") if resources is not None else None
        if fonts is None:
            continue
        for reference in fonts.get_object().values():
            font = reference.get_object()
            if id(font) in seen or not isinstance(font, DictionaryObject):
                continue
            seen.add(id(font))
            _retag(font, "/BaseFont", prefix)
            descriptor = font.get("/FontDescriptor")
            if descriptor is not None:
                _retag(descriptor.get_object(), "/FontName", prefix)


def _retag(dictionary: DictionaryObject, key: str, prefix: str) -> None:
    name = str(dictionary.get(key, ""))
    tag, plus, rest = name.lstrip("/").partition("+")
    if plus and len(tag) == _SUBSET_TAG_LENGTH and tag.isalpha() and tag.isupper():
        dictionary[NameObject(key)] = NameObject(f"/{prefix}{tag[len(prefix) :]}+{rest}")


def _letters(number: int, width: int) -> str:
    """`number` in base 26 as `width` capital letters (A = 0)."""
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 26)
        digits.append(chr(ord("A") + remainder))
    return "".join(reversed(digits))
