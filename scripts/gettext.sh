#!/usr/bin/env bash
# GNU gettext's xgettext: `manage.py makemessages` needs it, and so does the test that checks
# the Japanese catalogue holds every marked string. Compiling needs nothing (babel does it).
set -euo pipefail
if command -v xgettext >/dev/null && command -v msgmerge >/dev/null; then exit 0; fi
echo "gettext: installing Debian's gettext"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null
