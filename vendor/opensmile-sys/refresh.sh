#!/usr/bin/env bash
# Refreshes vendor/opensmile-sys from the PyPI package `opensmile` (audEERING's openSMILE-python).
# Its sdist carries openSMILE's prebuilt SMILEapi library for every platform and the config tree;
# the C++ source is not published anywhere serd can reach, so the library is vendored as built.
#
#   vendor/opensmile-sys/refresh.sh [VERSION]      (default: the version in PROVENANCE.md, else 2.6.0)
#
# Needs python3 with pip. Rewrites lib/, config/, LICENSE and PROVENANCE.md; include/SMILEapi.h is
# serd's own header (written from the library's exported symbols) and is left alone: check it
# against `nm -D --defined-only lib/linux-x86_64/libSMILEapi.so` after a refresh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-$(sed -n 's/^- version: //p' "$here/PROVENANCE.md" 2>/dev/null || true)}
version=${version:-2.6.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --no-binary :all: "opensmile==$version" -d "$work"
archive=$(ls "$work"/opensmile-"$version".tar.gz)
sha=$(sha256sum "$archive" | cut -d' ' -f1)
tar -xzf "$archive" -C "$work"
src="$work/opensmile-$version"
core="$src/opensmile/core"

# Platform folder names follow Rust's target_os-target_arch.
declare -A platforms=(
  [manylinux_2_17_x86_64/libSMILEapi.so]=linux-x86_64
  [manylinux_2_17_aarch64/libSMILEapi.so]=linux-aarch64
  [manylinux_2_17_armv7l/libSMILEapi.so]=linux-arm
  [macosx_10_4_x86_64/libSMILEapi.dylib]=macos-x86_64
  [macosx_11_0_arm64/libSMILEapi.dylib]=macos-aarch64
  [win_amd64/SMILEapi.dll]=windows-x86_64
)
rm -rf "$here/lib" "$here/config"
taken=()
for from in "${!platforms[@]}"; do
  to="lib/${platforms[$from]}/$(basename "$from")"
  mkdir -p "$here/$(dirname "$to")"
  cp "$core/bin/$from" "$here/$to"
  taken+=("opensmile/core/bin/$from -> $to")
done

# The configuration files of the two feature sets serd offers, and what they include.
for dir in egemaps/v02 gemaps/v01b compare shared; do
  mkdir -p "$here/config/$dir"
  cp "$core/config/$dir"/* "$here/config/$dir/"
  taken+=("opensmile/core/config/$dir/* -> config/$dir/")
done
cp "$src/LICENSE" "$here/LICENSE"
taken+=("LICENSE -> LICENSE")

{
  echo "# Provenance of vendor/opensmile-sys"
  echo
  echo "openSMILE's SMILEapi shared library and configuration files, as shipped in the PyPI package"
  echo "\`opensmile\` (audEERING GmbH). Licence: audEERING's research licence (see LICENSE): free for"
  echo "private, research and educational use, not for commercial use."
  echo
  echo "- package: opensmile (PyPI), source distribution"
  echo "- version: $version"
  echo "- archive: $(basename "$archive")"
  echo "- sha256: $sha"
  echo "- refreshed: $(date -u +%Y-%m-%d) by vendor/opensmile-sys/refresh.sh"
  echo
  echo "Files taken (archive path -> vendor path):"
  echo
  printf '%s\n' "${taken[@]}" | sort | sed 's/^/- /'
  echo
  echo "Not from the package: include/SMILEapi.h, written for serd from the library's exported"
  echo "symbols (\`nm -D --defined-only\`) and the ctypes signatures in opensmile/core/lib.py."
  echo
  echo "sha256 of the vendored libraries:"
  echo
  (cd "$here" && find lib -type f | sort | xargs sha256sum | sed 's/^/- /')
} > "$here/PROVENANCE.md"
echo "vendor/opensmile-sys refreshed from opensmile $version (sha256 $sha)"
