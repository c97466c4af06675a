"""The Japanese catalogue is whole and current.

- every entry has a Japanese text, none is fuzzy, and placeholders match the English;
- running `makemessages` would add nothing and drop nothing: every marked string has its
  entry, and no entry is left over from a string that went away;
- no template has text a person reads outside {% translate %} / {% blocktranslate %};
- the compiled catalogue the install step built is the one the .po says.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.template.base import Lexer, TokenType
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "ja" / "LC_MESSAGES" / "django.po"


def _catalogue(path: Path):
    with path.open("rb") as f:
        return read_po(f, locale="ja")


def _key(message) -> tuple:
    msgid = message.id if isinstance(message.id, str) else tuple(message.id)
    return (message.context or "", msgid)


def test_every_entry_is_translated_and_none_is_fuzzy():
    catalogue = _catalogue(PO)
    assert not catalogue.fuzzy, "the catalogue's header is marked fuzzy"
    missing, fuzzy = [], []
    for m in catalogue:
        if not m.id:
            continue
        texts = m.string if isinstance(m.string, (list, tuple)) else [m.string]
        if not all(texts):
            missing.append(m.id)
        if m.fuzzy:
            fuzzy.append(m.id)
    assert not missing, f"{len(missing)} entries without Japanese, e.g. {missing[:5]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy entries, e.g. {fuzzy[:5]}"
    assert len(catalogue) > 500  # the console's strings, not an empty file


def test_placeholders_match_the_english():
    problems = []
    for message, errors in _catalogue(PO).check():
        problems += [f"{message.id!r}: {e}" for e in errors]
    assert not problems, "\n".join(problems[:10])


def test_japanese_is_what_the_compiled_catalogue_says():
    # The .mo the install step compiled is loaded: a known entry reads in Japanese.
    with translation.override("ja"):
        assert translation.gettext("Your settings") == "個人設定"
    with translation.override("en"):
        assert translation.gettext("Your settings") == "Your settings"


def test_makemessages_would_add_and_drop_nothing(tmp_path):
    """Run makemessages on a copy of the tracked files and compare its entries with ours."""
    if not shutil.which("xgettext"):
        pytest.fail("xgettext is missing: `make test` installs GNU gettext (scripts/gettext.sh)")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    copy = tmp_path / "repo"
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ja", "--no-obsolete", "--add-location=file",
         "-i", ".venv/*", "-i", "tests/*", "-i", "bench/*", "-i", "node_modules/*"],
        cwd=copy, check=True, capture_output=True, env={"SECRET_KEY": "catalogue-check", "PATH": "/usr/bin:/bin",
                                                         "PYTHONPATH": str(copy)},
    )
    ours = {_key(m) for m in _catalogue(PO) if m.id}
    fresh = {_key(m) for m in _catalogue(copy / "locale" / "ja" / "LC_MESSAGES" / "django.po") if m.id}
    added, dropped = sorted(fresh - ours, key=str), sorted(ours - fresh, key=str)
    assert not added, f"makemessages would add {len(added)} entries (run `make messages`), e.g. {added[:5]}"
    assert not dropped, f"{len(dropped)} entries are no longer in the code, e.g. {dropped[:5]}"


# Text a person reads in a template must be marked. What may stand unmarked: names of
# products and standards, symbols, and template syntax.
ALLOWED_WORDS = {"Paydesk", "Stripe", "LINE", "Webhook", "JSON", "ID", "UTC", "HTMX", "API", "SLA", "CSV", "VIP",
                 "Esc", "Enter", "Shift", "Ctrl", "Cmd"}
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "label", "data-confirm", "value"}
# Words, with "StripeLINE" (two names either side of a tag) read as two.
WORD = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Za-z][a-z']+")


class _Reader(HTMLParser):
    """Collects what a person reads: text outside <script>/<style>, and readable attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.read: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and not (name == "value" and tag != "input"):
                self.read.append(value)
            if name == "value" and tag == "input" and dict(attrs).get("type") not in ("submit", "button"):
                self.read.pop() if value and self.read and self.read[-1] == value else None

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip:
            self.read.append(data)


def _unmarked(template: Path) -> list[str]:
    """The template with every tag and variable replaced by a neutral mark (and whatever a
    {% blocktranslate %} holds with it), then read as HTML: words left over are unmarked."""
    parts, inside = [], 0
    for token in Lexer(template.read_text()).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents else ""
            if name in ("blocktranslate", "blocktrans", "comment"):
                inside += 1
                parts.append("0")
            elif name in ("endblocktranslate", "endblocktrans", "endcomment"):
                inside -= 1
            elif name in ("translate", "trans"):
                parts.append("0")
            continue
        if token.token_type == TokenType.VAR:
            parts.append("0")
        elif token.token_type == TokenType.TEXT and not inside:
            parts.append(token.contents)
    reader = _Reader()
    reader.feed("".join(parts))
    reader.close()
    found = []
    for piece in reader.read:
        if [w for w in WORD.findall(piece) if w not in ALLOWED_WORDS]:
            found.append(" ".join(piece.split())[:80])
    return found


def _templates():
    return sorted((ROOT / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", _templates(), ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_templates_mark_what_people_read(template):
    assert not _unmarked(template), f"unmarked text in {template.name}: {_unmarked(template)[:5]}"


# docs/glossary.md's key terms: an English entry that says the word is said in Japanese with
# the glossary's word (any of them, where a counter may stand in: "3 tickets" → 「3件」).
GLOSSARY = {
    r"\brefund": ("返金",),
    r"partial refund|partly refunded|partially refunded": ("一部返金",),
    r"\bdisputes?\b": ("異議申し立て",),
    r"\bevidence\b": ("証拠",),
    r"early fraud warning": ("不正利用の早期警告",),
    r"\bsubscriptions?\b": ("サブスクリプション", "解約"),  # "Cancel subscription" → 「解約する」
    r"\binvoices?\b": ("請求書", "請求項目"),
    r"\bassignee": ("担当者",),
    r"\bunassigned\b": ("未割り当て",),
    r"internal note": ("社内メモ",),
    r"\bmacros?\b": ("マクロ",),
    r"\binbox": ("受信箱",),
    r"\btickets?\b": ("チケット", "件", "#"),
}


@pytest.mark.parametrize("english, japanese", GLOSSARY.items(), ids=list(GLOSSARY))
def test_the_glossary_is_used(english, japanese):
    astray = []
    for m in _catalogue(PO):
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        texts = [m.string] if isinstance(m.string, str) else list(m.string)
        said = [re.sub(r"%\(\w+\)[sd]|\{\w+\}", "", i) for i in ids]  # a placeholder is not the word
        if m.id and any(re.search(english, i, re.I) for i in said) and not any(w in t for t in texts for w in japanese):
            astray.append(f"{ids[0]!r} → {texts[0]!r}")
    assert not astray, f"not said with {japanese}:\n" + "\n".join(astray[:10])
