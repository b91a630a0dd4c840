"""Every document version as a printed PDF form (issue #12): bilingual titles, Chinese names
that render (no empty boxes: the text is read back from the PDF), the hash, signature blocks
with who signed, when and through which door, stamp areas on the papers the customer stamps
(ENG-13, ENG-31), the office's interface person by name (ENG-31), numbered copies of the
acceptance certificate (ENG-31), and a layout compared with a reference image.

Rendering needs a stored version (it reads the project, the signatures and the code), so these
run on a real database; SQLite is enough — the rows are the decision path's and the documents'
own, tested on both backends elsewhere.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageChops, ImageStat
from pypdf import PdfReader

from models import paperwork
from models.document_body import DOCUMENT_KINDS
from models.gate_data import InspectionIn
from siteflow.documents import codes, fonts
from siteflow.documents.pdf import render_pdf
from tasks.documents import body_for
from tests.conftest import SQLITE_ONLY
from tests.document_samples import (
    ADDRESS,
    CONTACT,
    CUSTOMER,
    OFFICE,
    add_project,
    sample_project,
    sign,
    store,
)

pytestmark = SQLITE_ONLY
REFERENCE = Path(__file__).parent / "references" / "acceptance-certificate-p1.png"
FIXED_CODE = "7K3MQ9XD2HPW"


def pages(pdf: bytes) -> list[str]:
    """The text of each page, whitespace removed (CJK text is extracted without spaces, and a
    line may break anywhere)."""
    return ["".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages]


def squeeze(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("kind", sorted(DOCUMENT_KINDS))
def test_every_document_kind_renders_to_a_pdf_with_its_titles_names_and_hash(
    database_url: str, kind: str
) -> None:
    project = sample_project()
    add_project(project)
    doc_id = store(body_for(kind, project.code, project.customer))
    pdf = render_pdf(doc_id)
    assert pdf.startswith(b"%PDF-")
    text = "".join(pages(pdf))
    zh, en, rule = DOCUMENT_KINDS[kind]
    assert squeeze(zh) in text and squeeze(en) in text
    assert CUSTOMER in text and CONTACT in text  # Chinese names come back as text: real glyphs
    from models.document import Document
    from siteflow.db import session_scope

    with session_scope() as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        assert doc.sha256 in text
        code = codes.code_for(session, doc_id)
    assert codes.grouped(code) in text  # the verification code on the paper


def test_arrival_certificate_has_a_stamp_area_date_lines_and_the_signer_with_the_door(
    database_url: str,
) -> None:
    """ENG-13: the customer signs and stamps the arrival certificate on site."""
    project = sample_project()
    add_project(project)
    body = paperwork.arrival_certificate(
        project, InspectionIn.model_validate({"expected_boxes": 12, "counted_boxes": 12, "box1_opened": True})
    )
    doc_id = store(body)
    unsigned = "".join(pages(render_pdf(doc_id)))
    assert "盖章处" in unsigned and "Stamp" in unsigned  # the stamp area
    assert "日期/Date:" in unsigned and "年" in unsigned and "月" in unsigned  # the date line
    assert "已发布，待签字" in unsigned
    sign(doc_id, (CONTACT, "chen.jing@gd-mobile.example", "customer", "email"))
    text = "".join(pages(render_pdf(doc_id)))
    assert f"{CONTACT}·customer·sign" in text
    assert "2027-01-2010:30CST" in text  # when, on the site's clock, UTC beside it
    assert "经/via:本人邮件链接/ownmailedlink" in text  # through which door
    assert "已签字/Signed" in text


def test_acceptance_certificate_comes_in_three_numbered_copies_naming_the_office_person(
    database_url: str,
) -> None:
    """ENG-31: three copies, each numbered and starting on a page of its own, returned to the
    office's interface person — printed by name, not by role."""
    project = sample_project()
    add_project(project)
    doc_id = store(paperwork.acceptance_certificate(project, "2027-01-20", 0))
    texts = pages(render_pdf(doc_id))
    firsts = [
        i for i, t in enumerate(texts) if "第1份/共3份" in t or "第2份/共3份" in t or "第3份/共3份" in t
    ]
    for n in (1, 2, 3):
        starts = [i for i, t in enumerate(texts) if f"第{n}份/共3份·copy{n}/3" in t]
        assert starts, f"copy {n} missing"
    assert len(texts) % 3 == 0 and len(texts) >= 3  # each copy the same number of pages
    per_copy = len(texts) // 3
    for n in (1, 2, 3):
        first_page = texts[(n - 1) * per_copy]
        assert f"第{n}份/共3份·copy{n}/3" in first_page and "验收证书" in first_page
        assert squeeze(OFFICE) in "".join(texts[(n - 1) * per_copy : n * per_copy])
    assert firsts
    assert "".join(texts).count("盖章处") == 3  # one stamp area per copy


def test_a_missing_cjk_font_is_refused_with_how_to_install_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = sample_project()
    add_project(project)
    doc_id = store(body_for("survey-plan", project.code, project.customer))
    monkeypatch.setattr(fonts, "cjk_font_installed", lambda: False)
    with pytest.raises(fonts.CjkFontMissing, match="apt-get install fonts-noto-cjk"):
        render_pdf(doc_id)


def page_image(pdf: bytes, scale: float = 0.7) -> Image.Image:
    document = pypdfium2.PdfDocument(pdf)
    image = document[0].render(scale=scale).to_pil().convert("L")
    document.close()
    return image


def test_the_acceptance_certificate_looks_like_its_reference(database_url: str) -> None:
    """The layout of page 1 (title, copy number, QR, tables) against a committed reference, with
    a tolerance for small font differences. SITEFLOW_WRITE_REFERENCES=1 writes it anew (look at
    it before committing)."""
    project = sample_project()
    add_project(project)
    doc_id = store(paperwork.acceptance_certificate(project, "2027-01-20", 0), code=FIXED_CODE)
    sign(
        doc_id,
        (CONTACT, "chen.jing@gd-mobile.example", "customer", "email"),
        ("李娜 Li Na", "li.na@siteflow.example", "pm", "web"),
    )
    image = page_image(render_pdf(doc_id))
    if os.environ.get("SITEFLOW_WRITE_REFERENCES") == "1":
        image.save(REFERENCE)
    reference = Image.open(REFERENCE).convert("L")
    assert image.size == reference.size, "the page size changed (A4 expected)"
    diff = ImageChops.difference(image, reference)
    mean = ImageStat.Stat(diff).mean[0]  # 0 = identical, 255 = inverted
    blurred_diff = ImageChops.difference(image.resize((62, 88)), reference.resize((62, 88)))
    assert mean < 6.0, f"page 1 differs from the reference by {mean:.1f}/255 on average"
    assert max(blurred_diff.getdata()) < 60, "a region of the page moved or vanished (layout change)"  # type: ignore[arg-type]
    assert ADDRESS  # the reference shows the site's address (checked as text in the kind tests)
