#!/usr/bin/env bash
# The demo's dispute evidence PDFs write the customer's conversations (Japanese included) in
# Noto Sans CJK (DISPUTES_PDF_FONT). Installed from Debian when we may; otherwise a note, and
# the demo runs on: assembling evidence then says the PDF needs the font.
set -uo pipefail
font=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
if [ -f "$font" ] || [ -n "${DISPUTES_PDF_FONT:-}" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "fonts: installing Debian's fonts-noto-cjk (Japanese in dispute evidence PDFs)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null && exit 0
fi
echo "fonts: no Noto Sans CJK at $font; install fonts-noto-cjk (or set DISPUTES_PDF_FONT) for the conversation PDF in dispute evidence"
exit 0
