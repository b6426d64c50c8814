# tests/kernels/lib.sh - what the kernel-matrix scripts agree on: which kernels there
# are, the Debian suites each comes from, and where they are cached. Sourced, not run.
# shellcheck shell=bash disable=SC2034 # variables set here are read by the sourcing script

# The kernels booted under qemu; "host" is this machine's own kernel, run directly.
KERNELS_QEMU="5.10 6.1 6.12"

# kernel_suites KERNEL: the Debian suites whose linux-image-amd64 is that kernel.
kernel_suites() {
	case "$1" in
	5.10) echo "bullseye bullseye-security" ;;
	6.1) echo "bookworm bookworm-security" ;;
	6.12) echo "bookworm-backports" ;;
	*) return 1 ;;
	esac
}

# kernel_target KERNEL: the suite apt must prefer, if any (backports are never chosen
# by default; a point release and its -security updates compete on version alone).
kernel_target() {
	case "$1" in
	6.12) echo bookworm-backports ;;
	esac
}

# kernel_cache: where fetched kernels and their initramfs live.
kernel_cache() { echo "${ECV_KERNEL_CACHE:-/var/cache/ecv/kernels}"; }
