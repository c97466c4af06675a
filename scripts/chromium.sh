#!/usr/bin/env bash
# Debian's Chromium for the browser tests and screenshots (Playwright never downloads one).
set -euo pipefail
# fonts-noto-cjk: Japanese in the screenshots, and in the dispute evidence PDFs (DISPUTES_PDF_FONT).
if [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]; then exit 0; fi
echo "chromium: installing Debian's chromium and fonts-noto-cjk"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
