"""A print batch for the print room: a zip of numbered PDFs with a manifest, or one merged PDF."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

from pypdf import PdfReader

from aftercare.letters.batches import BatchLetter, batch_pdf, batch_zip, page_count
from aftercare.letters.pdf import Letterhead, render_letter

HOSPITAL = Letterhead("Aftercare General Hospital", ("1 Hospital Way",))


def letter(message_id: str, name: str, paragraphs: int) -> BatchLetter:
    body = "\n\n".join(
        f"Paragraph {number}. " + "Please keep this letter. " * 30 for number in range(paragraphs)
    )
    pdf = render_letter(
        letterhead=HOSPITAL,
        recipient=[name, "1 Main St", "Boston, MA 02118"],
        letter_date=date(2026, 11, 26),
        body=body,
        reference=message_id,
    )
    return BatchLetter(message_id, pdf)


BATCH = [letter("msg-b", "Bea Second", 1), letter("msg-a", "Al First", 12), letter("msg-c", "Cy Third", 1)]


def test_the_letters_have_the_expected_page_counts() -> None:
    assert [page_count(item.pdf) for item in BATCH] == [1, 3, 1]


def test_the_zip_holds_one_numbered_pdf_per_letter_in_batch_order_and_a_manifest() -> None:
    archive = zipfile.ZipFile(io.BytesIO(batch_zip(BATCH)))
    assert archive.namelist() == ["0001-msg-b.pdf", "0002-msg-a.pdf", "0003-msg-c.pdf", "manifest.csv"]
    assert [archive.read(name) for name in archive.namelist()[:3]] == [item.pdf for item in BATCH]
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert manifest == [
        {"sequence": "1", "message_id": "msg-b", "pages": "1", "file": "0001-msg-b.pdf"},
        {"sequence": "2", "message_id": "msg-a", "pages": "3", "file": "0002-msg-a.pdf"},
        {"sequence": "3", "message_id": "msg-c", "pages": "1", "file": "0003-msg-c.pdf"},
    ]


def test_the_manifest_names_no_patient() -> None:
    manifest = zipfile.ZipFile(io.BytesIO(batch_zip(BATCH))).read("manifest.csv").decode()
    for name in ("Bea", "Second", "Main St", "Boston"):
        assert name not in manifest


def test_the_same_batch_zips_to_the_same_bytes() -> None:
    assert batch_zip(BATCH) == batch_zip(BATCH)


def test_the_merged_pdf_has_every_page_of_every_letter_in_order() -> None:
    reader = PdfReader(io.BytesIO(batch_pdf(BATCH)))
    texts = [page.extract_text() for page in reader.pages]
    assert len(texts) == 5
    assert "Bea Second" in texts[0]
    assert "Al First" in texts[1]
    assert ["Page 1 of 3" in texts[1], "Page 2 of 3" in texts[2], "Page 3 of 3" in texts[3]] == [True] * 3
    assert "Cy Third" in texts[4]


def test_a_duplex_merge_starts_every_letter_on_the_front_of_a_sheet() -> None:
    reader = PdfReader(io.BytesIO(batch_pdf(BATCH, duplex=True)))
    texts = [page.extract_text().strip() for page in reader.pages]
    assert len(texts) == 8
    assert ("Bea Second" in texts[0], texts[1]) == (True, "")
    assert "Al First" in texts[2]
    assert texts[5] == ""
    assert ("Cy Third" in texts[6], texts[7]) == (True, "")


def test_each_letter_in_the_merged_pdf_has_font_subsets_of_its_own() -> None:
    reader = PdfReader(io.BytesIO(batch_pdf(BATCH)))
    subsets_by_letter = [
        {str(font.get_object()["/BaseFont"]) for font in reader.pages[page]["/Resources"]["/Font"].values()}
        for page in (0, 1, 4)
    ]
    assert all(name.partition("+")[1] for names in subsets_by_letter for name in names)
    assert len(set.union(*subsets_by_letter)) == sum(len(names) for names in subsets_by_letter)


def test_an_empty_batch_gives_a_zip_with_only_the_header_of_the_manifest() -> None:
    archive = zipfile.ZipFile(io.BytesIO(batch_zip([])))
    assert archive.namelist() == ["manifest.csv"]
    assert archive.read("manifest.csv").decode() == "sequence,message_id,pages,file\n"
