#!/usr/bin/env bash
# tests/kernels/initramfs.sh - builds the initramfs that boots a fetched kernel onto the
# host's root file system (tests/kernels/init is its /init).
#   initramfs.sh DIR      DIR: a kernel's cache directory, as printed by fetch.sh
# Writes DIR/initramfs.cpio (uncompressed newc: nothing to decompress under TCG) holding
# a static busybox, /init, and the modules the guest needs before it has a root file
# system: virtio_pci, virtio_console, 9pnet_virtio, 9p, overlay, virtio-rng and all that modules.dep
# says they need, decompressed (.ko.xz, .ko.zst) and listed in load order in
# /modules/order. Rebuilt only when missing or older than init or this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] && [ -s "$1/release" ] || { echo "usage: $0 KERNEL_CACHE_DIR" >&2; exit 2; }
dir=$1
out=$dir/initramfs.cpio
if [ -s "$out" ] && [ "$out" -nt "$here/init" ] && [ "$out" -nt "$0" ]; then
	exit 0
fi
busybox=$(command -v busybox) || { echo "initramfs: busybox not installed (busybox-static)" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
	{ echo "initramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }
release=$(cat "$dir/release")
mods=$dir/root/lib/modules/$release
[ -s "$mods/modules.dep" ] || { echo "initramfs: no $mods/modules.dep" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,modules}
cp "$busybox" "$work/bin/busybox"
cp "$here/init" "$work/init"
chmod 755 "$work/init"

# order NAME: NAME's dependencies (modules.dep lists them deepest last), then NAME;
# each path once. Built-in modules (not in modules.dep) need nothing.
declare -A seen=()
order=()
add() {
	local path=$1 line deps i
	[ -n "${seen[$path]:-}" ] && return
	seen[$path]=1
	line=$(grep -m1 "^$path:" "$mods/modules.dep") || return 0
	read -ra deps <<<"${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add "${deps[$i]}"; done
	order+=("$path")
}
for name in virtio_pci virtio_console 9pnet_virtio 9p overlay virtio-rng; do
	path=$(grep -m1 -E "/$name\.ko(\.xz|\.zst|\.gz)?:" "$mods/modules.dep" | cut -d: -f1) || true
	if [ -z "$path" ]; then
		grep -qE "/$name\.ko" "$mods/modules.builtin" ||
			{ echo "initramfs: $release has no module $name" >&2; exit 1; }
		continue
	fi
	add "$path"
done
for path in "${order[@]}"; do
	base=$(basename "$path")
	name=${base%%.ko*}
	case "$base" in
	*.ko.xz) xz -dc "$mods/$path" >"$work/modules/$name.ko" ;;
	*.ko.zst) zstd -qdc "$mods/$path" >"$work/modules/$name.ko" ;;
	*.ko.gz) gzip -dc "$mods/$path" >"$work/modules/$name.ko" ;;
	*) cp "$mods/$path" "$work/modules/$name.ko" ;;
	esac
	echo "$name" >>"$work/modules/order"
done
(cd "$work" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(wc -l <"$work/modules/order") modules: $(tr '\n' ' ' <"$work/modules/order"))" >&2
