"""tickets.attachment_scan: what a file is from its bytes, and which files are refused (the
same rules for a customer's email and an agent's reply)."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from tickets import attachment_scan
from tickets.attachment_scan import scan

from .conftest import ATTACHMENT_LIMIT

PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 48 + b"PE\x00\x00" + b"\x00" * 64
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 56
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def picture(kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 40)).save(out, kind)
    return out.getvalue()


def zipped(**members: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 12, 1, 9, 0, 0)), content)
    return out.getvalue()


@pytest.mark.parametrize("filename, content, declared, stored_as", [
    ("photo.jpg", picture("JPEG"), "image/jpeg", "image/jpeg"),
    ("photo.png", picture("PNG"), "image/png", "image/png"),
    ("anim.gif", picture("GIF"), "image/gif", "image/gif"),
    ("pic.webp", picture("WEBP"), "image/webp", "image/webp"),
    ("receipt.pdf", PDF, "application/pdf", "application/pdf"),
    ("orders.csv", b"id,amount\n1,2500\n", "text/csv", "text/csv"),
    ("notes.txt", "返品の件です".encode(), "text/plain", "text/plain"),
    ("statement.xlsx", zipped(**{"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None),
    ("screens.zip", zipped(**{"a.png": picture(), "b/readme.txt": b"hi"}), "application/zip", "application/zip"),
    # Stored but only ever downloaded (never inline): the download view's rule, not a refusal.
    ("page.html", b"<html><script>alert(1)</script></html>", "text/html", "text/html"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml", "image/svg+xml"),
    ("video-of-damage.mov", b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video/quicktime", "video/quicktime"),
], ids=lambda value: value if isinstance(value, str) and "/" not in value else "")
def test_common_customer_files_are_accepted(filename, content, declared, stored_as):
    verdict = scan(filename, content, declared)
    assert verdict.ok, verdict.reason()
    assert verdict.reason() == ""
    if stored_as:
        assert verdict.content_type == stored_as


def test_the_sniffed_type_is_stored_when_the_name_or_the_sender_is_wrong_harmlessly():
    verdict = scan("photo.png", picture("JPEG"), "application/octet-stream")
    assert verdict.ok and verdict.content_type == "image/jpeg"


@pytest.mark.parametrize("filename, content, code, words", [
    ("setup.exe", PE, "program", "Windows executable"),
    ("tool", ELF, "program", "Linux executable"),
    ("app", MACHO, "program", "macOS executable"),
    # The disguises: a harmless name, a program inside.
    ("invoice.pdf", PE, "disguised", "named .pdf but really: Windows executable"),
    ("photo.jpg", ELF, "disguised", "named .jpg but really: Linux executable"),
    ("photo.jpg", b"<html><body onload=alert(1)>", "disguised", "named .jpg but really: HTML or SVG"),
    ("receipt.pdf", b"\xef\xbb\xbf  <svg onload=alert(1)>", "disguised", "HTML or SVG"),
], ids=lambda value: value if isinstance(value, str) and " " not in value else "")
def test_programs_and_disguises_are_refused_by_their_bytes(filename, content, code, words):
    verdict = scan(filename, content, "application/pdf")
    assert verdict.code == code
    assert words in verdict.reason()


@pytest.mark.parametrize("filename", [
    "run.bat", "run.cmd", "x.com", "invoice.pdf.js", "a.vbs", "a.ps1", "screen.scr", "setup.msi", "app.jar",
    "app.apk", "lib.dll", "install.sh", "INVOICE.EXE", "report.hta", "shortcut.lnk", "trailing.exe. ",
])
def test_scripts_and_installers_are_refused_by_their_extension_even_as_text(filename):
    verdict = scan(filename, b"echo hello\n", "text/plain")
    assert verdict.code == "script"
    assert "a script or installer" in verdict.reason()


def test_a_shebang_script_is_refused_whatever_its_name():
    assert scan("notes.txt", b"#!/bin/sh\nrm -rf ~\n", "text/plain").code == "script"


def test_office_files_with_macros_are_refused():
    verdict = scan("budget.xlsm", zipped(**{"xl/vbaProject.bin": b"\x00"}), "application/vnd.ms-excel")
    assert verdict.code == "macro" and ".xlsm" in verdict.reason()


@pytest.mark.parametrize("members, code, named", [
    ({"photos/a.png": picture(), "setup.exe": b"MZ"}, "zip_program", "setup.exe"),
    ({"readme.txt": b"hi", "invoice.pdf": PE}, "zip_program", "invoice.pdf"),
    ({"inner.zip": b"PK\x03\x04"}, "zip_program", "inner.zip"),
], ids=["exe", "disguised-pdf", "nested-zip"])
def test_a_zip_holding_a_program_is_refused_with_its_name(members, code, named):
    verdict = scan("photos.zip", zipped(**members), "application/zip")
    assert verdict.code == code and named in verdict.reason()


def test_an_encrypted_or_broken_zip_and_archives_paydesk_cannot_open_are_refused():
    encrypted = bytearray(zipped(**{"a.txt": b"x"}))
    encrypted[6] |= 0x1  # the local header's "encrypted" flag
    central = encrypted.rfind(b"PK\x01\x02")
    encrypted[central + 8] |= 0x1  # and the central directory's
    assert scan("a.zip", bytes(encrypted)).code == "zip_locked"
    assert scan("a.zip", b"PK\x03\x04 not really a zip").code == "zip_locked"
    assert scan("files.rar", b"Rar!\x1a\x07\x00" + b"\x00" * 32).code == "archive"
    assert scan("files.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 32).code == "archive"
    assert scan("bundle.tar.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 32).code == "archive"


def test_size_over_the_limit_is_refused_even_unread():
    assert scan("big.png", b"", "image/png", size=ATTACHMENT_LIMIT + 1).code == "too_large"
    verdict = scan("big.png", b"x" * (ATTACHMENT_LIMIT + 1), "image/png")
    assert verdict.code == "too_large" and f"{ATTACHMENT_LIMIT:,}-byte limit" in verdict.reason()
    assert scan("edge.png", picture(), size=ATTACHMENT_LIMIT).ok


def test_reasons_are_worded_in_the_active_language():
    from django.utils import translation

    verdict = scan("setup.exe", PE)
    with translation.override("en"):
        english = verdict.reason()
    assert english.startswith("a program (Windows executable)")


def test_only_pictures_browsers_show_are_previewable():
    assert attachment_scan.previewable(picture("PNG")) == "image/png"
    assert attachment_scan.previewable(picture("JPEG")) == "image/jpeg"
    assert attachment_scan.previewable(b'<svg xmlns="http://www.w3.org/2000/svg"/>') == ""
    assert attachment_scan.previewable(PDF) == ""
    assert attachment_scan.previewable(b"") == ""
