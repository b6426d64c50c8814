#!/usr/bin/env bash
# tests/kernels/fetch.sh - fetches one of Debian's own kernels (image and modules) into
# the kernel cache, without touching the host's apt configuration.
#   fetch.sh KERNEL      KERNEL: 5.10 (bullseye), 6.1 (bookworm), 6.12 (bookworm-backports)
# Prints the kernel's cache directory on stdout:
#   DIR/release   the kernel release (uname -r), e.g. 6.1.0-37-amd64
#   DIR/root/     the package unpacked with dpkg -x (boot/vmlinuz-*, lib/modules/*),
#                 with modules.dep made by depmod -b
#   DIR/vmlinux   the ELF kernel extracted from the vmlinuz (PVH entry), if it could be
# Cache: ${ECV_KERNEL_CACHE:-/var/cache/ecv/kernels}, outside any work tree so that repeated
# runs (and CI on the same machine) reuse it; a kernel already there is not fetched again
# (ECV_KERNEL_REFRESH=1 resolves the suite's newest kernel again). The apt state (package
# lists, downloads) is private to the cache: the host's sources and lists stay as they are.
# The mirror is the host's (the first Debian URI in /etc/apt/sources.list*).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 KERNEL (one of: $KERNELS_QEMU)" >&2; exit 2; }
kernel=$1
suites=$(kernel_suites "$kernel") || {
	echo "fetch: unknown kernel '$kernel' (one of: $KERNELS_QEMU)" >&2
	exit 2
}
target=$(kernel_target "$kernel")
for t in apt-get dpkg depmod flock; do
	command -v "$t" >/dev/null || { echo "fetch: $t not installed" >&2; exit 1; }
done

cache=$(kernel_cache)
dir=$cache/$kernel
mkdir -p "$cache"
exec {lock}>"$cache/.$kernel.lock"
flock -w 900 "$lock" || { echo "fetch: $cache/.$kernel.lock held for 900 s" >&2; exit 1; }

if [ -s "$dir/release" ] && [ -d "$dir/root" ] && [ "${ECV_KERNEL_REFRESH:-0}" = 0 ]; then
	echo "$dir"
	exit 0
fi

# host_uri SUFFIX: the host's Debian mirror URI ending in /SUFFIX (debian or
# debian-security), from one-line or deb822 sources; Debian's own when none is found.
host_uri() {
	local u
	u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v '^[[:space:]]*#' | grep -oE "https?://[^ ]+/$1/?( |$)" | head -1 | tr -d ' ')
	echo "${u:-http://deb.debian.org/$1}"
}
mirror=$(host_uri debian)
security=$(host_uri debian-security)

apt_dir=$cache/apt/$kernel
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" \
	"$apt_dir/prefs"
: >"$apt_dir/status"
{
	for s in $suites; do
		case "$s" in
		*-security) echo "deb $security $s main" ;;
		*) echo "deb $mirror $s main" ;;
		esac
	done
} >"$apt_dir/sources.list"
apt_opts=(-o Dir::Etc::SourceList="$apt_dir/sources.list"
	-o Dir::Etc::SourceParts="$apt_dir/parts"
	-o Dir::Etc::PreferencesParts="$apt_dir/prefs"
	-o Dir::State::Lists="$apt_dir/lists"
	-o Dir::State::Status="$apt_dir/status"
	-o Dir::Cache="$apt_dir/cache"
	${target:+-o APT::Default-Release="$target"}
	-o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600 -o Debug::NoLocking=1 -q)

echo "fetch: $kernel: package lists of $suites from $mirror" >&2
apt-get "${apt_opts[@]}" update >&2 || { echo "fetch: apt-get update failed" >&2; exit 1; }
# linux-image-amd64 depends on the suite's newest linux-image-<release>; newest first.
pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)\( .*\)\?$/\1/p' | sort -V | tail -1)
[ -n "$pkg" ] || { echo "fetch: no linux-image-amd64 dependency in $suites" >&2; exit 1; }
release=${pkg#linux-image-}
echo "fetch: $kernel: $pkg" >&2

work=$(mktemp -d "$cache/.$kernel.XXXXXX")
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download "$pkg" >&2) ||
	{ echo "fetch: apt-get download $pkg failed" >&2; exit 1; }
dpkg -x "$work"/"$pkg"_*.deb "$work/root"
[ -f "$work/root/boot/vmlinuz-$release" ] ||
	{ echo "fetch: $pkg holds no boot/vmlinuz-$release" >&2; exit 1; }
depmod -b "$work/root" "$release"
"$here/extract-vmlinux.sh" "$work/root/boot/vmlinuz-$release" >"$work/vmlinux" 2>/dev/null ||
	rm -f "$work/vmlinux"
echo "$release" >"$work/release"
rm -f "$work"/*.deb
rm -rf "$dir.old"
[ ! -e "$dir" ] || mv "$dir" "$dir.old"
mv "$work" "$dir"
trap - EXIT
rm -rf "$dir.old"
echo "fetch: $kernel: $release in $dir" >&2
echo "$dir"
