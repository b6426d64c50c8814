#!/usr/bin/env bash
# tests/integration/lib/go_bpo.sh DIR VERSION - unpacks Debian's golang-VERSION-go and
# -src from bookworm-backports into DIR (a private apt state; the host's apt sources are
# not changed) and prints the path of its go binary. Reuses DIR when already unpacked.
# Exits non-zero, saying why, when the archive cannot be reached.
set -euo pipefail
dir=$1 ver=$2
go=$dir/root/usr/lib/go-$ver/bin/go
if [ -x "$go" ]; then
	echo "$go"
	exit 0
fi
mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/root"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$dir/sources.list"
opts=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache"
	-o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600)
apt-get "${opts[@]}" update -qq >&2
(cd "$dir" && apt-get "${opts[@]}" download "golang-$ver-go" "golang-$ver-src" >&2)
for d in "$dir"/golang-"$ver"-*.deb; do dpkg -x "$d" "$dir/root"; done
rm -f "$dir"/golang-"$ver"-*.deb
[ -x "$go" ] || { echo "go_bpo: no $go after unpacking" >&2; exit 1; }
echo "$go"
