"""A letter as a print-ready PDF: letterhead, window address, date, "Re:" line and body, with numbered
continuation pages; text prints as written, whatever characters it holds."""

from __future__ import annotations

import io
from datetime import date

import pytest
from pypdf import PdfReader

from aftercare.letters.pdf import (
    WINDOW_HEIGHT,
    WINDOW_TOP,
    Letterhead,
    format_letter_date,
    render_letter,
    unicode_fallback_font,
)
from aftercare.settings import Settings

HOSPITAL = Letterhead(
    "Aftercare General Hospital", ("1 Hospital Way", "Springfield, MA 01101"), "617-555-0100"
)
ADDRESS = ["Abdul Koepp", "313 Lockman Row Suite 4", "Peabody, MA 01940"]
DAY = date(2026, 11, 26)
INCH = 72


def letter(**overrides: object) -> bytes:
    options: dict[str, object] = {
        "letterhead": HOSPITAL,
        "recipient": ADDRESS,
        "letter_date": DAY,
        "body": "Dear Abdul,\n\nPlease call us to book your follow-up.\n\nThe care team",
    }
    options.update(overrides)
    return render_letter(**options)  # type: ignore[arg-type]


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def lines_with_position(pdf: bytes, page: int = 0) -> list[tuple[float, float, str]]:
    """Each text run on the page: left edge and baseline in points from the top-left corner."""
    reader = PdfReader(io.BytesIO(pdf))
    height = float(reader.pages[page].mediabox.height)
    found: list[tuple[float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            found.append((x, height - y, text.strip()))

    reader.pages[page].extract_text(visitor_text=visit)
    return found


def test_the_first_page_has_letterhead_date_address_re_line_and_body() -> None:
    [text] = pages(letter(subject="Your follow-up appointment"))
    lines = text.splitlines()
    assert lines[:4] == [
        "Aftercare General Hospital",
        "1 Hospital Way",
        "Springfield, MA 01101",
        "Tel. 617-555-0100",
    ]
    assert lines[4:7] == ADDRESS
    assert lines[7:9] == ["November 26, 2026", "Re: Your follow-up appointment"]
    assert lines[9:12] == ["Dear Abdul,", "Please call us to book your follow-up.", "The care team"]
    assert "Page 1 of 1" in lines


def test_the_address_block_sits_where_a_number_10_window_envelope_shows_it() -> None:
    positions = {text: (x, y) for x, y, text in lines_with_position(letter())}
    for line in ADDRESS:
        x, baseline = positions[line]
        assert x == pytest.approx(1 * INCH)
        assert WINDOW_TOP < baseline < WINDOW_TOP + WINDOW_HEIGHT
    assert positions["Aftercare General Hospital"][1] < WINDOW_TOP
    assert positions["November 26, 2026"][1] > WINDOW_TOP + WINDOW_HEIGHT


def test_a_long_address_is_shrunk_into_the_window_rather_than_pushed_out() -> None:
    address = [
        "Maria de los Angeles Gonzalez-Fernandez",
        "c/o Hope Shelter",
        "Apartment 12B",
        "Building 7",
        "4500 Very Long Boulevard Name Extension",
        "Springfield, MA 01101",
        "UNITED STATES",
    ]
    positions = {text: y for _, y, text in lines_with_position(letter(recipient=address))}
    assert all(WINDOW_TOP < positions[line] < WINDOW_TOP + WINDOW_HEIGHT for line in address)


def test_the_date_is_written_out_us_style_or_day_first() -> None:
    assert format_letter_date(DAY) == "November 26, 2026"
    assert format_letter_date(date(2026, 3, 1), "international") == "1 March 2026"
    [text] = pages(letter(date_style="international"))
    assert "26 November 2026" in text.splitlines()


def test_a_subject_already_starting_with_re_is_not_prefixed_twice() -> None:
    [text] = pages(letter(subject="RE: your results"))
    assert "RE: your results" in text.splitlines()
    assert "Re: RE:" not in text


def test_single_newlines_break_lines_and_blank_lines_separate_paragraphs() -> None:
    body = "Your appointment:\nMonday 9 am\nClinic B\n\n\n\nSee you then."
    positions = [(y, text) for _, y, text in lines_with_position(letter(body=body))]
    baselines = {text: y for y, text in positions}
    line_gap = baselines["Monday 9 am"] - baselines["Your appointment:"]
    assert baselines["Clinic B"] - baselines["Monday 9 am"] == pytest.approx(line_gap)
    assert baselines["See you then."] - baselines["Clinic B"] > line_gap


def test_a_long_body_continues_on_pages_with_a_header_and_page_n_of_m() -> None:
    paragraphs = [
        f"Paragraph {number}. " + "Keep taking your medication as prescribed. " * 12 for number in range(30)
    ]
    texts = pages(letter(body="\n\n".join(paragraphs), reference="msg-123"))
    total = len(texts)
    assert total >= 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {total}" in text
        assert "Ref. msg-123" in text
    second = texts[1].splitlines()
    assert second[0] == "Aftercare General Hospital · Abdul Koepp · November 26, 2026"
    assert "313 Lockman Row Suite 4" not in texts[1]
    assert "Paragraph 0." in texts[0]
    assert "Paragraph 29." in texts[-1]


def test_markup_characters_in_the_text_print_literally() -> None:
    body = 'Take <b>2</b> tablets & call "A&E" if <font size=30>worse</font> &amp; <br/> dizzy.'
    [text] = pages(
        letter(body=body, subject="<i>Results</i> & next steps", recipient=["Jo <Smith> & Co", *ADDRESS[1:]])
    )
    assert body in " ".join(text.split())
    assert "Re: <i>Results</i> & next steps" in text
    assert "Jo <Smith> & Co" in text


def test_control_characters_in_the_text_do_not_break_the_letter() -> None:
    [text] = pages(letter(body="Line\x00one\x0c\r\nline two\ttabbed"))
    assert "Lineone" in text
    assert "line two tabbed" in text


def test_characters_outside_latin_1_do_not_fail_the_letter() -> None:
    pdf = letter(
        recipient=["Иван Петров 王小明", "Łódź Street 5", "Boston, MA 02118"],
        body="Здравствуйте! 您好 😀 Zoë — “quoted” €5",
        subject="Ελληνικά",
    )
    [text] = pages(pdf)
    assert "Boston, MA 02118" in text
    assert "Łódź Street 5" in text
    assert "Zoë — “quoted” €5" in text


@pytest.mark.skipif(unicode_fallback_font() is None, reason="no DejaVu Sans on this system")
def test_cyrillic_and_greek_are_set_in_the_fallback_font() -> None:
    [text] = pages(letter(recipient=["Иван Петров", *ADDRESS[1:]], subject="Ελληνικά", body="Здравствуйте!"))
    assert "Иван Петров" in text
    assert "Re: Ελληνικά" in text
    assert "Здравствуйте!" in text


def test_the_same_letter_renders_to_the_same_bytes() -> None:
    assert letter() == letter()
    assert letter() != letter(letter_date=date(2026, 11, 27))


def test_a_letter_needs_a_recipient_address() -> None:
    with pytest.raises(ValueError, match="recipient address"):
        letter(recipient=["", "  "])


def test_the_letterhead_comes_from_the_hospital_settings() -> None:
    settings = Settings(
        hospital_name="St. Elsewhere",
        hospital_address="  5 Main St\n\nBoston, MA 02118 ",
        hospital_phone="+1 617 555 0199",
        _env_file=None,  # type: ignore[call-arg]
    )
    assert Letterhead.from_settings(settings) == Letterhead(
        "St. Elsewhere", ("5 Main St", "Boston, MA 02118"), "+1 617 555 0199"
    )
