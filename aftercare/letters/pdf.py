"""A letter as a print-ready PDF: letterhead, the recipient's address in the envelope window, the date, an
optional "Re:" line and the body; continuation pages carry a small header, every page a "Page N of M"
footer.

The layout fits a US Letter sheet folded in three into a #10 single-window envelope: the address block
sits 2⅛" from the top and 1" from the left, inside the part of the window that shows however the folded
sheet slides in the envelope. Text is set in Bitstream Vera (shipped with reportlab, so a letter renders
the same everywhere); characters Vera lacks are set in DejaVu Sans when the system has it, and print as
an empty box otherwise rather than failing the letter.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    FrameBreak,
    Image,
    KeepInFrame,
    NextPageTemplate,
    PageTemplate,
    Paragraph,
    Spacer,
)

from aftercare.settings import Settings

DateStyle = Literal["us", "international"]

PAGE_WIDTH: float = LETTER[0]
PAGE_HEIGHT: float = LETTER[1]
MARGIN: float = 1 * inch
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
LETTERHEAD_TOP = 0.5 * inch
LETTERHEAD_HEIGHT = 1.3 * inch
LOGO_HEIGHT = 0.5 * inch
WINDOW_TOP = 2.125 * inch
WINDOW_WIDTH = 3.25 * inch
WINDOW_HEIGHT = 1.0 * inch
FIRST_BODY_TOP = 3.5 * inch
LATER_BODY_TOP = 1.25 * inch
BODY_BOTTOM = 1.0 * inch
FOOTER_BASELINE = 0.5 * inch
FOLDS = (PAGE_HEIGHT / 3, PAGE_HEIGHT * 2 / 3)

SANS, SANS_BOLD = "AftercareSans", "AftercareSans-Bold"
FALLBACK, FALLBACK_BOLD = "AftercareFallback", "AftercareFallback-Bold"
_FALLBACK_DIRECTORIES = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_GREY = Color(0.35, 0.35, 0.35)
_FOLD_MARK = Color(0.6, 0.6, 0.6)
# reportlab keeps each font's per-document subsetting state in the shared, registered font objects.
_RENDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Letterhead:
    """The sender printed at the top of the first page."""

    name: str
    address_lines: tuple[str, ...] = ()
    phone: str | None = None
    logo: bytes | None = None  # a PNG or JPEG image, printed above the name

    def for_facility(
        self, name: str, return_address: Sequence[str], phone: str | None, logo: bytes | None
    ) -> Letterhead:
        """A facility's letterhead: its name, return address, phone and logo, this one's where it has none."""
        lines = tuple(line.strip() for line in return_address if line.strip())
        return Letterhead(
            name=name, address_lines=lines or self.address_lines, phone=phone or self.phone, logo=logo
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Letterhead:
        """The hospital's letterhead: `hospital_name`, `hospital_address` (lines separated by newlines or
        `|`, which fits in one environment variable), `hospital_phone`."""
        raw = settings.hospital_address.replace("|", "\n")
        lines = tuple(line.strip() for line in raw.splitlines() if line.strip())
        return cls(name=settings.hospital_name, address_lines=lines, phone=settings.hospital_phone)


def format_letter_date(day: date, style: DateStyle = "us") -> str:
    """The date as a letter prints it: `November 26, 2026` (US) or `26 November 2026`."""
    month = _MONTHS[day.month - 1]
    return f"{month} {day.day}, {day.year}" if style == "us" else f"{day.day} {month} {day.year}"


def unicode_fallback_font() -> Path | None:
    """The font used for characters the letter font lacks (DejaVu Sans), if the system has it."""
    return _fonts().fallback


def render_letter(
    *,
    letterhead: Letterhead,
    recipient: Sequence[str],
    letter_date: date,
    body: str,
    subject: str | None = None,
    date_style: DateStyle = "us",
    reference: str | None = None,
) -> bytes:
    """Render one letter to PDF bytes; the same input gives the same bytes.

    `recipient` is the address block, one line per item. `body` is plain text: a blank line starts a
    new paragraph, a single newline breaks the line. `reference` (the message id) is printed small in
    the footer so a page of a printed batch can be traced back to its letter.
    """
    lines = [clean for line in recipient if (clean := _clean(line).strip())]
    if not lines:
        raise ValueError("a letter needs a recipient address")
    styles = _styles()
    when = format_letter_date(letter_date, date_style)
    story: list[Any] = [
        _fit(_letterhead_flowables(letterhead, styles), TEXT_WIDTH, LETTERHEAD_HEIGHT),
        FrameBreak(),
        _fit([Paragraph(_markup(line), styles["address"]) for line in lines], WINDOW_WIDTH, WINDOW_HEIGHT),
        FrameBreak(),
        NextPageTemplate("later"),
        Paragraph(escape(when), styles["date"]),
    ]
    if subject and subject.strip():
        story.append(Paragraph(_markup(_re_line(subject), bold=True), styles["subject"]))
    story.append(Spacer(1, 6))
    story.extend(Paragraph(text, styles["body"]) for text in _body_paragraphs(body))

    header = f"{letterhead.name} · {lines[0]} · {when}"
    buffer = io.BytesIO()
    document = _document(buffer, header, styles, reference)
    with _RENDER_LOCK:
        document.build(story, canvasmaker=_numbered_canvas(reference))
    return buffer.getvalue()


# --- layout ---------------------------------------------------------------------------------------


def _document(
    buffer: io.BytesIO, header: str, styles: dict[str, ParagraphStyle], reference: str | None
) -> BaseDocTemplate:
    def from_top(top: float, height: float) -> float:
        return PAGE_HEIGHT - top - height

    frame_options = {"leftPadding": 0, "rightPadding": 0, "topPadding": 0, "bottomPadding": 0}
    first = PageTemplate(
        id="first",
        frames=[
            Frame(
                MARGIN,
                from_top(LETTERHEAD_TOP, LETTERHEAD_HEIGHT),
                TEXT_WIDTH,
                LETTERHEAD_HEIGHT,
                id="letterhead",
                **frame_options,
            ),
            Frame(
                MARGIN,
                from_top(WINDOW_TOP, WINDOW_HEIGHT),
                WINDOW_WIDTH,
                WINDOW_HEIGHT,
                id="window",
                **frame_options,
            ),
            Frame(
                MARGIN,
                BODY_BOTTOM,
                TEXT_WIDTH,
                PAGE_HEIGHT - FIRST_BODY_TOP - BODY_BOTTOM,
                id="body",
                **frame_options,
            ),
        ],
        onPage=_fold_marks,
    )
    header_paragraph = Paragraph(_markup(header), styles["header"])

    def draw_header(canvas: Canvas, document: BaseDocTemplate) -> None:
        _, height = header_paragraph.wrapOn(canvas, TEXT_WIDTH, inch)
        header_paragraph.drawOn(canvas, MARGIN, PAGE_HEIGHT - 0.6 * inch - height)
        canvas.saveState()
        canvas.setStrokeColor(_GREY)
        canvas.setLineWidth(0.5)
        rule = PAGE_HEIGHT - 0.7 * inch - height
        canvas.line(MARGIN, rule, PAGE_WIDTH - MARGIN, rule)
        canvas.restoreState()
        _fold_marks(canvas, document)

    later = PageTemplate(
        id="later",
        frames=[
            Frame(
                MARGIN,
                BODY_BOTTOM,
                TEXT_WIDTH,
                PAGE_HEIGHT - LATER_BODY_TOP - BODY_BOTTOM,
                id="body",
                **frame_options,
            )
        ],
        onPage=draw_header,
    )
    return BaseDocTemplate(
        buffer,
        pagesize=LETTER,
        pageTemplates=[first, later],
        invariant=1,
        initialFontName=SANS,
        title="Letter",
        author=header.split(" · ")[0],
        subject=reference or "",
        creator="Aftercare",
    )


def _fold_marks(canvas: Canvas, _document: BaseDocTemplate) -> None:
    canvas.saveState()
    canvas.setStrokeColor(_FOLD_MARK)
    canvas.setLineWidth(0.5)
    for fold in FOLDS:
        canvas.line(0.2 * inch, fold, 0.45 * inch, fold)
    canvas.restoreState()


def _numbered_canvas(reference: str | None) -> Any:
    """A canvas class that holds pages back until the count is known, then stamps "Page N of M"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._footer(number, total)
                super().showPage()
            super().save()

        def _footer(self, number: int, total: int) -> None:
            self.saveState()
            self.setFont(SANS, 8)
            self.setFillColor(_GREY)
            self.drawCentredString(PAGE_WIDTH / 2, FOOTER_BASELINE, f"Page {number} of {total}")
            if reference:
                self.drawRightString(PAGE_WIDTH - MARGIN, FOOTER_BASELINE, f"Ref. {_clean(reference)}")
            self.restoreState()

    return NumberedCanvas


def _logo(data: bytes | None) -> list[Any]:
    """The logo as a flowable, at most half an inch high; nothing when the bytes are not an image."""
    if not data:
        return []
    try:
        width, height = ImageReader(io.BytesIO(data)).getSize()
    except (OSError, ValueError):
        return []
    scale = min(LOGO_HEIGHT / height, TEXT_WIDTH / width)
    logo = Image(io.BytesIO(data), width=width * scale, height=height * scale)
    logo.hAlign = "LEFT"
    return [logo, Spacer(1, 4)]


def _letterhead_flowables(letterhead: Letterhead, styles: dict[str, ParagraphStyle]) -> list[Any]:
    flowables: list[Any] = _logo(letterhead.logo)
    flowables.append(Paragraph(_markup(_clean(letterhead.name), bold=True), styles["letterhead_name"]))
    details = [*letterhead.address_lines]
    if letterhead.phone:
        details.append(f"Tel. {letterhead.phone}")
    flowables.extend(Paragraph(_markup(_clean(line)), styles["letterhead"]) for line in details)
    return flowables


def _fit(flowables: list[Any], width: float, height: float) -> KeepInFrame:
    return KeepInFrame(width, height, content=flowables, mode="shrink")


def _re_line(subject: str) -> str:
    text = " ".join(_clean(subject).split())
    return text if text.lower().startswith("re:") else f"Re: {text}"


def _body_paragraphs(body: str) -> list[str]:
    text = _clean(body.replace("\r\n", "\n").replace("\r", "\n")).strip("\n")
    paragraphs = []
    for block in _BLANK_LINE.split(text):
        lines = [line.rstrip() for line in block.split("\n")]
        if any(lines):
            paragraphs.append("<br/>".join(_markup(line) for line in lines))
    return paragraphs


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.replace("\t", " "))


# --- fonts and markup -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fonts:
    covered: frozenset[int]
    fallback: Path | None
    fallback_covered: frozenset[int]


@lru_cache(maxsize=1)
def _fonts() -> _Fonts:
    """Register the letter fonts once: Vera from reportlab's package, DejaVu Sans for the rest."""
    shipped = Path(reportlab.__file__).parent / "fonts"
    sans = TTFont(SANS, str(shipped / "Vera.ttf"))
    pdfmetrics.registerFont(sans)
    pdfmetrics.registerFont(TTFont(SANS_BOLD, str(shipped / "VeraBd.ttf")))
    pdfmetrics.registerFontFamily(SANS, normal=SANS, bold=SANS_BOLD, italic=SANS, boldItalic=SANS_BOLD)
    fallback = _find_fallback()
    fallback_covered: frozenset[int] = frozenset()
    if fallback is not None:
        regular = TTFont(FALLBACK, str(fallback))
        bold_path = fallback.with_name("DejaVuSans-Bold.ttf")
        pdfmetrics.registerFont(regular)
        pdfmetrics.registerFont(TTFont(FALLBACK_BOLD, str(bold_path if bold_path.exists() else fallback)))
        fallback_covered = frozenset(regular.face.charToGlyph)
    return _Fonts(frozenset(sans.face.charToGlyph), fallback, fallback_covered)


def _find_fallback() -> Path | None:
    for directory in _FALLBACK_DIRECTORIES:
        candidate = Path(directory) / "DejaVuSans.ttf"
        if candidate.is_file():
            return candidate
    return None


def _markup(text: str, *, bold: bool = False) -> str:
    """Text as Paragraph markup: escaped, with runs the letter font lacks switched to the fallback."""
    fonts = _fonts()
    fallback_name = FALLBACK_BOLD if bold else FALLBACK

    def needs_fallback(character: str) -> bool:
        code = ord(character)
        return code not in fonts.covered and code in fonts.fallback_covered

    parts = []
    for use_fallback, run in groupby(text, key=needs_fallback):
        chunk = escape("".join(run))
        parts.append(f'<font name="{fallback_name}">{chunk}</font>' if use_fallback else chunk)
    return "".join(parts)


@lru_cache(maxsize=1)
def _styles() -> dict[str, ParagraphStyle]:
    _fonts()
    base = ParagraphStyle("letter", fontName=SANS, fontSize=10.5, leading=14)
    return {
        "letterhead_name": ParagraphStyle(
            "letterhead_name", base, fontName=SANS_BOLD, fontSize=14, leading=18, spaceAfter=2
        ),
        "letterhead": ParagraphStyle("letterhead", base, fontSize=9, leading=11.5, textColor=_GREY),
        "address": ParagraphStyle("address", base, fontSize=10, leading=12),
        "date": ParagraphStyle("date", base, spaceAfter=14),
        "subject": ParagraphStyle("subject", base, fontName=SANS_BOLD, spaceAfter=4),
        "body": ParagraphStyle("body", base, spaceAfter=9, allowWidows=0, allowOrphans=0),
        "header": ParagraphStyle("header", base, fontSize=8, leading=10, textColor=_GREY),
    }
