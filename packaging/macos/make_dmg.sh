#!/bin/sh
# A DMG holding photofind.app and a link to /Applications (drag to install).
#   sh packaging/macos/make_dmg.sh dist/photofind.app dist/photofind-0.1.0-macos.dmg
# macOS only (hdiutil). The .app itself comes from PyInstaller (packaging/pyinstaller).
set -eu
app="$1"
dmg="$2"
[ -d "$app/Contents/MacOS" ] || { echo "make_dmg.sh: $app is not an .app bundle" >&2; exit 1; }
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/photofind.app"
ln -s /Applications "$stage/Applications"
# Ad-hoc signature, so Apple silicon runs it; a release signs and notarises with its own identity.
codesign --force --deep --sign - "$stage/photofind.app"
rm -f "$dmg"
hdiutil create -volname photofind -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
