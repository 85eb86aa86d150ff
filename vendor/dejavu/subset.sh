#!/bin/sh
# Regenerates DejaVuSans-subset.ttf, the font serd's PNG figures are drawn in: DejaVu Sans from
# Debian's fonts-dejavu-core, cut down to printable ASCII, Latin-1 and a few punctuation marks
# (32 KB instead of 760 KB). Needs fonttools (`pip install fonttools`); see PROVENANCE.md.
set -eu
here=$(dirname "$0")
src=${1:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}
pyftsubset "$src" \
  --unicodes='U+0020-007E,U+00A0-00FF,U+2013,U+2014,U+2018-201D,U+2026,U+2212' \
  --layout-features='kern' --no-hinting --desubroutinize --name-IDs='*' \
  --output-file="$here/DejaVuSans-subset.ttf"
sha256sum "$src" "$here/DejaVuSans-subset.ttf"
