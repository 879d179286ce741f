#!/usr/bin/env bash
# `npm run package`: builds dist/tdc-milter_<version>_amd64.deb with dpkg-deb from the compiled tree
# (dist/, after `npm run build`). The package carries its own Node.js runtime (this machine's node,
# stripped) under /usr/lib/tdc-milter with the production node_modules, so it needs no network and
# no Debian nodejs at install time. Maintainer scripts: packaging/debian/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VERSION=$(node -p 'require("./package.json").version')
NODE=$(command -v node)
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
if [ "$NODE_MAJOR" -lt 20 ]; then
  echo "build-package: $NODE is Node $("$NODE" --version); the package must carry Node >= 20" >&2
  exit 1
fi
[ -f dist/lib/main.js ] || { echo "build-package: dist/lib/main.js missing; run npm run build first" >&2; exit 1; }
for tool in dpkg-deb gzip strip; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-package: $tool not found (Debian packages dpkg, gzip, binutils)" >&2; exit 1; }
done

OUT=$ROOT/dist/tdc-milter_${VERSION}_amd64.deb
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/tdc-milter-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/root
echo "build-package: staging tdc-milter $VERSION in $PKG"

# The runtime: node (stripped of its debug info: 98 MB -> about 90 MB), our compiled lib/, and the
# production dependencies exactly as installed in node_modules (npm ls --omit=dev lists them).
LIBDIR=$PKG/usr/lib/tdc-milter
install -d -m 0755 "$LIBDIR"
install -m 0755 "$NODE" "$LIBDIR/node"
strip --strip-unneeded "$LIBDIR/node"
(cd dist && find lib -name '*.js' -print0 | cpio -0 -pdm --quiet "$LIBDIR")
# main.js runs through /usr/bin/tdc-milter on the carried node, never through its `#!/usr/bin/env node` line.
sed -i '1{/^#!/d}' "$LIBDIR/lib/main.js"
node -e '
  const p = require("./package.json");
  const out = { name: p.name, version: p.version, description: p.description, license: p.license, main: "lib/main.js", private: true };
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
' > "$LIBDIR/package.json"
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  rel=${dir#"$ROOT"/}
  install -d "$LIBDIR/$(dirname "$rel")"
  # Nested node_modules are listed on their own, so copy each package without its node_modules.
  (cd "$ROOT" && find "$rel" -path "$rel/node_modules" -prune -o -type f ! -name '*.map' ! -name '*.md' ! -name '*.ts' ! -name '.*' -print0 |
    cpio -0 -pdm --quiet "$LIBDIR")
done
find "$LIBDIR" -type d -exec chmod 0755 {} + && find "$LIBDIR" -type f ! -path "$LIBDIR/node" -exec chmod 0644 {} +

NODE_LICENSE=$(dirname "$(readlink -f "$NODE")")/../share/doc/nodejs/LICENSE
[ -r "$NODE_LICENSE" ] || { echo "build-package: Node.js LICENSE not found at $NODE_LICENSE" >&2; exit 1; }
install -m 0644 "$NODE_LICENSE" "$LIBDIR/node.LICENSE"

install -d -m 0755 "$PKG/usr/bin"
install -m 0755 packaging/tdc-milter.sh "$PKG/usr/bin/tdc-milter"

# /etc/tdc-milter/milter.conf: the documented example with journaling off until the admin sets it up.
install -d -m 0755 "$PKG/etc/tdc-milter"
# Only the first `enabled = yes` (the [tdc] one) changes; its comment lines follow unchanged.
awk '!done && /^enabled = yes / { print "enabled = no                          # off until you set intake_address (then: yes); see milter.conf(5)"; done = 1; next } { print }' \
  milter.conf.example > "$PKG/etc/tdc-milter/milter.conf"
grep -q '^enabled = no ' "$PKG/etc/tdc-milter/milter.conf" || { echo "build-package: no [tdc] enabled = yes line in milter.conf.example" >&2; exit 1; }
chmod 0644 "$PKG/etc/tdc-milter/milter.conf"

install -d -m 0755 "$PKG/lib/systemd/system"
install -m 0644 examples/tdc-milter.service "$PKG/lib/systemd/system/tdc-milter.service"

# Documentation: files over 4 KiB gzip -9n'd (Debian policy 12.3).
DOC=$PKG/usr/share/doc/tdc-milter
install -d -m 0755 "$DOC/examples"
install -m 0644 README.md "$DOC/README.md"
install -m 0644 CHANGELOG.md "$DOC/CHANGELOG.md"
install -m 0644 milter.conf.example "$DOC/examples/milter.conf.example"
for f in README.md postfix-main.cf postfix-master.cf sendmail.mc logrotate.conf tdc-milter.service; do
  install -m 0644 "examples/$f" "$DOC/examples/$f"
done
# The Debian changelog (a native package's changelog.gz), made from CHANGELOG.md's entries.
MAINT=$(sed -n 's/^Maintainer: //p' packaging/debian/control)
awk -v maint="$MAINT" '
  function close_entry() { if (ver != "") { cmd = "date -uR -d " day; cmd | getline d; close(cmd); printf "\n -- %s  %s\n\n", maint, d } }
  /^## / { close_entry(); ver = $2; day = $4; printf "tdc-milter (%s) unstable; urgency=medium\n\n", ver; next }
  ver != "" && /^- / { sub(/^- /, ""); printf "  * %s\n", $0; next }
  ver != "" && /^  / { sub(/^  /, ""); printf "    %s\n", $0; next }
  END { close_entry() }
' CHANGELOG.md > "$DOC/changelog"
{
  cat packaging/copyright
  echo
  echo "Files: usr/lib/tdc-milter/node"
  echo "Copyright: Node.js contributors and the authors of its bundled components"
  echo "License: Node.js"
  echo " The Node.js runtime and the licenses of the components it bundles (MIT, BSD,"
  echo " Apache-2.0 and others) are in /usr/lib/tdc-milter/node.LICENSE."
} > "$DOC/copyright"
chmod 0644 "$DOC/copyright"
# README.md stays as it is: the unit's Documentation= names it.
find "$DOC" -type f ! -name copyright ! -path "$DOC/README.md" -size +4k -exec gzip -9n {} +
gzip -9n "$DOC/changelog" 2>/dev/null || true

# Man pages, generated from the schema table.
install -d -m 0755 "$PKG/usr/share/man/man8" "$PKG/usr/share/man/man5"
node dist/scripts/man-pages.js "$STAGE/man"
install -m 0644 "$STAGE/man/tdc-milter.8" "$PKG/usr/share/man/man8/tdc-milter.8"
install -m 0644 "$STAGE/man/milter.conf.5" "$PKG/usr/share/man/man5/milter.conf.5"
gzip -9n "$PKG/usr/share/man/man8/tdc-milter.8" "$PKG/usr/share/man/man5/milter.conf.5"

# Lintian overrides (each justified in the README, "Install the Debian package").
install -d -m 0755 "$PKG/usr/share/lintian/overrides"
install -m 0644 packaging/lintian-overrides "$PKG/usr/share/lintian/overrides/tdc-milter"

# Control area.
install -d -m 0755 "$PKG/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$PKG/DEBIAN/$s"; done
install -m 0644 packaging/debian/conffiles "$PKG/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$SIZE/" packaging/debian/control > "$PKG/DEBIAN/control"
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$PKG/DEBIAN/md5sums"
chmod 0644 "$PKG/DEBIAN/control" "$PKG/DEBIAN/md5sums"

mkdir -p "$(dirname "$OUT")"
# xz -1: 26 MB in about 10 s; the default -6 saves 3 MB for a minute more on 2 cores; --root-owner-group: every file root:root.
dpkg-deb --root-owner-group -Zxz -z1 --build "$PKG" "$OUT" >/dev/null
echo "build-package: $OUT ($(du -h "$OUT" | cut -f1), installed $((SIZE / 1024)) MiB)"
