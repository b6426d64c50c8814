#!/usr/bin/env bash
# tests/kernels/extract-vmlinux.sh - writes the ELF kernel inside a compressed bzImage
# (vmlinuz) to stdout, the way the kernel's scripts/extract-vmlinux does: find each
# compression's magic bytes, decompress from there, keep the first result that is ELF.
#   extract-vmlinux.sh VMLINUZ > vmlinux
# Booting the ELF (its PVH entry) under qemu skips the in-guest decompression.
set -uo pipefail
[ $# -eq 1 ] && [ -r "$1" ] || { echo "usage: $0 VMLINUZ" >&2; exit 2; }
img=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# try MAGIC(perl regex) COMMAND...: decompress from each offset of MAGIC with COMMAND.
try() {
	local magic=$1 off
	shift
	for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1); do
		tail -c +$((off + 1)) "$img" | "$@" >"$out" 2>/dev/null
		if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			cat "$out"
			exit 0
		fi
	done
}
command -v zstd >/dev/null && try '\x28\xb5\x2f\xfd' zstd -dc
command -v xz >/dev/null && try '\xfd7zXZ\x00' xz -dc
try '\x1f\x8b\x08' gzip -dc
command -v lz4 >/dev/null && try '\x02\x21\x4c\x18' lz4 -dc
command -v bzip2 >/dev/null && try 'BZh' bzip2 -dc
command -v xz >/dev/null && try '\x5d\x00\x00\x00' xz --format=lzma -dc
echo "extract-vmlinux: no ELF kernel found in $img" >&2
exit 1
