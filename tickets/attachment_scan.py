"""What a file is, from its bytes: the one check every attachment passes, a customer's (email
in) and an agent's (a reply or a note out), so both are held to the same rules.

The policy, and why:

- **Refused: programs and scripts.** A file that would run when an agent (or a customer) opens
  it: Windows (PE, "MZ"), Linux (ELF) and macOS (Mach-O) executables by their bytes, whatever the
  name says, and scripts, installers and shortcuts by their extension (.exe .bat .cmd .com .js
  .vbs .ps1 .scr .msi .jar .apk .dll .sh …), a `#!` script by its first line, and Office files
  with macros (.docm .xlsm …). No customer needs to send one of these to get help.
- **Refused: a disguise.** A name that promises a harmless document or picture while the bytes
  are something else dangerous ("invoice.pdf" that is a program, "photo.jpg" that is HTML):
  the name is what the agent trusts when opening it.
- **Zip: allowed, looked into.** Customers do zip a few screenshots or a statement export, so a
  zip is kept when what it lists is harmless; one holding a program or script, or encrypted
  (Paydesk cannot see inside, which is how malware gets past scanners), is refused. Archives
  Python cannot list without extra libraries (rar, 7z, cab, gz, xz, tar, disk images) are refused
  for the same reason: a customer can send the files themselves.
- **Stored, downloaded only: everything else** (HTML and SVG included). Refusing an unusual but
  harmless file (a video of the damage, an .eml) would lose a customer's evidence; the download
  view serves it as an attachment with nosniff and a sandboxing CSP, so it never runs in the
  console's origin. Only pictures the bytes prove to be JPEG/PNG/GIF/WebP are shown inline
  (thumbnails, `PREVIEWABLE`).
- **Size:** over TICKETS_ATTACHMENT_MAX_BYTES is refused, as before (name and size kept).

`scan()` returns a Verdict; a refusal carries a code and its facts, worded by `reason()` in the
active language (the composer's form error) or, stored in a note, in English.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import filetype
from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

# Extensions that run code when opened (Windows, macOS, Linux, Java, Android, Office macros).
DANGEROUS_EXTENSIONS = frozenset("""
    exe com bat cmd scr pif cpl msi msp mst msc dll sys drv ocx js jse vbs vbe wsf wsh wsc hta ps1 ps1xml psm1
    psd1 reg lnk url inf jar apk appx appxbundle msix msixbundle xap sh bash zsh csh ksh command app dmg pkg
    deb rpm run bin elf so dylib py pyc pyw pl rb php gadget scf iqy slk application xbap chm
""".split())
# Office files that carry macros (the x-variants cannot).
MACRO_EXTENSIONS = frozenset("docm dotm xlsm xltm xlam pptm potm ppam ppsm sldm".split())
# Archives Paydesk cannot list with the standard library: what is inside is unknown.
OPAQUE_ARCHIVES = frozenset("rar 7z cab gz tgz bz2 xz tar lz lz4 zst z lzh arj ace iso img vhd vhdx".split())
OPAQUE_MIMES = frozenset({
    "application/x-rar-compressed", "application/x-7z-compressed", "application/vnd.ms-cab-compressed",
    "application/gzip", "application/x-bzip2", "application/x-xz", "application/x-tar", "application/x-lzip",
    "application/x-lz4", "application/zstd", "application/x-compress", "application/x-lzop",
})
# Zip-based formats that are documents, not archives a person unpacks (their contents are the
# format's own parts). jar/apk are zips too, refused by extension.
ZIP_DOCUMENTS = frozenset("docx xlsx pptx odt ods odp epub".split())
# What the bytes must be for the console to show it inline (a thumbnail, the image itself).
PREVIEWABLE = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# What LINE accepts as an image message (JPEG or PNG, at most 10 MB).
LINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
LINE_IMAGE_MAX_BYTES = 10 * 1024 * 1024
# A name that promises one of these is lying dangerously when the bytes are markup or a program.
DOCUMENT_EXTENSIONS = frozenset("""
    pdf jpg jpeg png gif webp heic heif bmp tif tiff txt csv doc docx xls xlsx ppt pptx odt ods odp rtf zip
""".split())
MARKUP_STARTS = (b"<!doctype html", b"<html", b"<script", b"<svg", b"<?xml", b"<head", b"<body", b"<iframe")

# The sniffed kinds of a program, by their magic bytes (filetype knows PE and ELF, not Mach-O).
MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


@dataclass(frozen=True)
class Verdict:
    filename: str
    size: int
    content_type: str  # what to store: the sniffed type when the bytes say, else the declared one
    code: str = ""  # "" when accepted; too_large, program, script, macro, disguised, archive, zip_program, zip_locked
    facts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.code

    def reason(self) -> str:
        """Why it was refused, in the active language ("" when accepted)."""
        return reason(self.code, self.facts)


def reason(code: str, facts: dict) -> str:
    if not code:
        return ""
    facts = {**facts, "kind": str(PROGRAM_KINDS.get(facts.get("kind"), facts.get("kind", "")))}
    if code == "too_large":
        return gettext("over the %(limit)s-byte limit") % {"limit": f"{facts.get('limit', 0):,}"}
    if code == "program":
        return gettext("a program (%(kind)s), which could harm the computer that opens it") % facts
    if code == "script":
        return gettext("a script or installer (.%(extension)s), which could harm the computer that opens it") % facts
    if code == "macro":
        return gettext("an Office file with macros (.%(extension)s), which can run code when opened") % facts
    if code == "disguised":
        return gettext("named .%(extension)s but really: %(kind)s") % facts
    if code == "archive":
        return gettext("an archive Paydesk cannot look inside (%(kind)s)") % facts
    if code == "zip_program":
        return gettext("a zip holding a program or script (%(member)s)") % facts
    if code == "zip_locked":
        return gettext("a zip that is encrypted or cannot be read, so what is inside is unknown")
    return code


def extension(filename: str) -> str:
    name = (filename or "").strip().rstrip(". ").lower()  # Windows ignores trailing dots and spaces
    return name.rpartition(".")[2] if "." in name else ""


def sniff(head: bytes) -> str:
    """The MIME type the bytes say ("" when they say nothing filetype knows)."""
    if head[:4] in MACHO_MAGICS:
        # CAFEBABE is also a Java class file: a program either way.
        return "application/x-mach-binary"
    kind = filetype.guess(head[:8192])
    return kind.mime if kind else ""


PROGRAM_KINDS = {
    "pe": gettext_lazy("Windows executable"),
    "elf": gettext_lazy("Linux executable"),
    "macho": gettext_lazy("macOS executable"),
    "markup": gettext_lazy("HTML or SVG"),
}


def program_kind(head: bytes, sniffed: str) -> str:
    """pe, elf or macho when the bytes are a program, else ""."""
    if head[:2] == b"MZ" or sniffed == "application/x-msdownload":
        return "pe"
    if head[:4] == b"\x7fELF" or sniffed == "application/x-executable":
        return "elf"
    if sniffed == "application/x-mach-binary":
        return "macho"
    return ""


def _zip_verdict(content: bytes) -> tuple[str, dict]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for info in archive.infolist():
                if info.flag_bits & 0x1:
                    return "zip_locked", {}
                name = info.filename.rsplit("/", 1)[-1]
                if extension(name) in DANGEROUS_EXTENSIONS:
                    return "zip_program", {"member": name[:80]}
                if extension(name) in ("zip", *OPAQUE_ARCHIVES):
                    # A zip in a zip is how scanners are walked past: not opened further.
                    return "zip_program", {"member": name[:80]}
                if not info.is_dir() and info.file_size:
                    with archive.open(info) as member:
                        head = member.read(64)
                    if program_kind(head, sniff(head)):
                        return "zip_program", {"member": name[:80]}
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, ValueError, OSError):
        return "zip_locked", {}
    return "", {}


def scan(filename: str, content: bytes, declared_type: str = "", size: int | None = None,
         *, limit: int | None = None) -> Verdict:
    """The verdict on one file. `size` stands in when the content was not read (too large)."""
    limit = settings.TICKETS_ATTACHMENT_MAX_BYTES if limit is None else limit
    length = size if size is not None else len(content)
    declared_type = (declared_type or "").split(";")[0].strip().lower()
    head = content[:8192]
    sniffed = sniff(head) if head else ""

    def verdict(code="", **facts) -> Verdict:
        # The bytes' own type is stored when they say one (a .png that is a JPEG is served as
        # a JPEG), else what the sender declared.
        return Verdict(filename, length, sniffed or declared_type or "application/octet-stream", code, facts)

    if length > limit:
        return verdict("too_large", limit=limit)
    ext = extension(filename)
    kind = program_kind(head, sniffed)
    if kind:
        if ext in DOCUMENT_EXTENSIONS:
            return verdict("disguised", extension=ext, kind=kind)
        return verdict("program", kind=kind)
    if ext in MACRO_EXTENSIONS:
        return verdict("macro", extension=ext)
    if ext in DANGEROUS_EXTENSIONS:
        return verdict("script", extension=ext)
    if head.startswith(b"#!"):
        return verdict("script", extension=ext or "sh")
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if ext in DOCUMENT_EXTENSIONS and ext not in ("txt", "csv") and lowered.startswith(MARKUP_STARTS):
        return verdict("disguised", extension=ext, kind="markup")
    if ext in OPAQUE_ARCHIVES or sniffed in OPAQUE_MIMES:
        return verdict("archive", kind=ext or sniffed.rpartition("/")[2])
    if sniffed == "application/zip" or ext == "zip":
        if ext not in ZIP_DOCUMENTS:
            code, facts = _zip_verdict(content)
            if code:
                return verdict(code, **facts)
    return verdict()


def previewable(head: bytes) -> str:
    """The image type to serve inline when the bytes are a picture browsers show, else ""."""
    sniffed = sniff(head) if head else ""
    return sniffed if sniffed in PREVIEWABLE else ""
