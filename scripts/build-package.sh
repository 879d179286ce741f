#!/usr/bin/env bash
# `npm run package`: builds dist/tdc-milter_<version>_amd64.deb with dpkg-deb from the compiled tree
# (dist/, after `npm run build`). /usr/bin/tdc-milter is a single executable: this machine's Node.js
# (>= 20) with the bundled daemon injected, so the package needs no network and no Debian nodejs at
# install time. Maintainer scripts and control files: packaging/.
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
for tool in dpkg-deb gzip strip xz; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-package: $tool not found (Debian packages dpkg, gzip, binutils)" >&2; exit 1; }
done

OUT=$ROOT/dist/tdc-milter_${VERSION}_amd64.deb
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/tdc-milter-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/root
echo "build-package: staging tdc-milter $VERSION in $PKG"

# The runtime: one file, /usr/bin/tdc-milter, a Node.js single executable application (SEA). esbuild
# bundles the compiled daemon (dist/lib/main.js) with its production dependencies into one CommonJS
# script; node turns it into a blob with its V8 code cache; postject injects the blob into a copy of
# this machine's node, stripped of its debug info (98 MB -> 86 MB). README, "Install the Debian
# package", has the measurements against a private runtime under /usr/lib/tdc-milter.
SEA=$STAGE/sea
mkdir -p "$SEA"
"$ROOT/node_modules/.bin/esbuild" dist/lib/main.js --bundle --platform=node --target=node20 --legal-comments=none \
  --log-level=warning --outfile="$SEA/tdc-milter.js"
printf '{ "main": "%s", "output": "%s", "disableExperimentalSEAWarning": true, "useCodeCache": true }\n' \
  "$SEA/tdc-milter.js" "$SEA/tdc-milter.blob" > "$SEA/sea-config.json"
"$NODE" --experimental-sea-config "$SEA/sea-config.json" >/dev/null 2>&1
SEA_FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2
grep -aq "$SEA_FUSE" "$NODE" || { echo "build-package: $NODE has no SEA fuse (a Node build without single executable support)" >&2; exit 1; }
install -m 0755 "$NODE" "$SEA/tdc-milter"
strip --strip-unneeded "$SEA/tdc-milter"
"$ROOT/node_modules/.bin/postject" "$SEA/tdc-milter" NODE_SEA_BLOB "$SEA/tdc-milter.blob" --sentinel-fuse "$SEA_FUSE" 2>&1 |
  grep -v -e "string offset for section name" -e "Injection done" -e "Start injection" || true
"$SEA/tdc-milter" check-config --config milter.conf.example >/dev/null ||
  { echo "build-package: the single executable does not run check-config on milter.conf.example" >&2; exit 1; }

# Licenses: of node (upstream's LICENSE covers what it bundles) and of each npm package in the bundle.
# Where Debian/NodeSource packages and nodejs.org's tarballs put it.
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$NODE")")")
NODE_LICENSE=
for f in "$NODE_PREFIX/share/doc/nodejs/LICENSE" "$NODE_PREFIX/LICENSE" "$NODE_PREFIX/share/doc/node/LICENSE"; do
  if [ -r "$f" ]; then NODE_LICENSE=$f; break; fi
done
[ -n "$NODE_LICENSE" ] || { echo "build-package: Node.js LICENSE not found under $NODE_PREFIX" >&2; exit 1; }
BUNDLED=$(npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  node -p "const p = require('$dir/package.json'); p.name + ' ' + p.version + ' (' + (p.license || 'see its package') + ')'"
done | sort -u)

install -d -m 0755 "$PKG/usr/bin"
install -m 0755 "$SEA/tdc-milter" "$PKG/usr/bin/tdc-milter"

# /etc/tdc-milter/milter.conf: the documented example with journaling off until the admin sets it up.
install -d -m 0755 "$PKG/etc/tdc-milter"
# Journaling off and no sample intake address in force: [tdc] enabled = no with an empty
# intake_address, and the example's own policies, groups and machines commented out, so that turning
# journaling on never sends a copy to an address from the example.
awk '
  BEGIN {
    print "# Installed by the tdc-milter Debian package. Journaling is off: set intake_address in [tdc],"
    print "# then enabled = yes, and check with tdc-milter check-config. The example policies, group and"
    print "# machine below are commented out; see milter.conf(5) for every key."
    print "#"
  }
  /^\[/ { sec = $0 }
  sec == "[tdc]" && /^enabled = yes / { print "enabled = no                          # off until intake_address is set (then: yes)"; next }
  sec == "[tdc]" && /^intake_address = / { print "intake_address =                      # yours, from the SETD portal (Mail flow configuration)"; next }
  sec != "" && sec !~ /^\[(milter|tdc|direction|policy DEFAULT)\]$/ && $0 != "" { print "#" $0; next }
  { print }
' milter.conf.example > "$PKG/etc/tdc-milter/milter.conf"
grep -q '^enabled = no ' "$PKG/etc/tdc-milter/milter.conf" && ! grep -q '^intake_address = .*@' "$PKG/etc/tdc-milter/milter.conf" ||
  { echo "build-package: milter.conf.example has no [tdc] enabled = yes / intake_address lines to turn off" >&2; exit 1; }
"$NODE" dist/lib/main.js check-config --config "$PKG/etc/tdc-milter/milter.conf" >/dev/null ||
  { echo "build-package: the packaged milter.conf does not pass check-config" >&2; exit 1; }
chmod 0644 "$PKG/etc/tdc-milter/milter.conf"

# The units: the service and the socket it requires (systemd holds the milter socket across restarts).
install -d -m 0755 "$PKG/lib/systemd/system"
install -m 0644 examples/tdc-milter.service examples/tdc-milter.socket "$PKG/lib/systemd/system/"

# Documentation: files over 4 KiB gzip -9n'd (Debian policy 12.3).
DOC=$PKG/usr/share/doc/tdc-milter
install -d -m 0755 "$DOC/examples"
install -m 0644 README.md "$DOC/README.md"
install -m 0644 "$NODE_LICENSE" "$DOC/LICENSE.node"
install -m 0644 CHANGELOG.md "$DOC/CHANGELOG.md"
install -m 0644 milter.conf.example "$DOC/examples/milter.conf.example"
# Every file of examples/: the units, Postfix and Sendmail lines, logrotate, Prometheus alerts, Grafana dashboard.
for f in examples/*; do install -m 0644 "$f" "$DOC/examples/"; done
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
  echo "Files: usr/bin/tdc-milter"
  echo "Copyright: 2026 the tdc-milter authors; Node.js contributors; the authors of the npm packages below"
  echo "License: MIT-and-Node.js"
  echo " tdc-milter (MIT, below) is bundled into a copy of the Node.js runtime, with these npm"
  echo " packages (name, version, license), each under its own license:"
  echo "$BUNDLED" | sed 's/^/   /'
  echo " ."
  echo " The Node.js license, which covers the components Node.js itself bundles,"
  echo " is in /usr/share/doc/tdc-milter/LICENSE.node.gz."
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
