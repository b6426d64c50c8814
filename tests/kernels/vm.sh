#!/usr/bin/env bash
# tests/kernels/vm.sh - runs one command inside one of Debian's kernels under qemu and
# returns its exit status.
#   vm.sh [-t SECONDS] [-m MiB] [-c CPUS] [-C DIR] [-e NAME=VALUE]... KERNEL -- COMMAND...
#   KERNEL: 5.10, 6.1, 6.12 (fetched by fetch.sh, cached), or "host": this machine's own
#   kernel, COMMAND run directly (same timeout, same working directory).
# The guest's root is the host's /, shared read-only over virtio-9p under a tmpfs
# overlay: every path of the host (this work tree, its build) is there, and writes go
# to the guest's memory and vanish with it. COMMAND (run by bash) starts in DIR
# (default: the current directory) as root, with the guest's own network stack
# (loopback only), its own /proc /sys /dev /run /tmp, bpffs, tracefs, debugfs, cgroup2,
# and its modules at /lib/modules/$(uname -r). Its stdout and stderr are this script's.
# Environment passed in: BUILD, ONLY, KEEP, every ECV* variable, and each -e.
# Exit status: COMMAND's; 124 when it ran out of time (default 900 s, -t); 125 when the
# guest could not be started or set up (the console log is shown).
# The guest's stdout/stderr/exit status travel over virtio-serial ports, its kernel
# console over ttyS0 (shown when the guest fails).
# qemu runs with TCG (-accel tcg: this host's /dev/kvm cannot boot stock kernels),
# 2 vCPUs and 2 GiB by default; ECV_VM_VERBOSE=1 shows the guest's console.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

usage() {
	echo "usage: $0 [-t SECONDS] [-m MiB] [-c CPUS] [-C DIR] [-e NAME=VALUE]... KERNEL -- COMMAND..." >&2
	echo "  KERNEL: host $KERNELS_QEMU" >&2
	exit 2
}
timeout_s=${ECV_VM_TIMEOUT:-900}
mem=${ECV_VM_MEM:-2048}
cpus=${ECV_VM_CPUS:-2}
wd=$PWD
envs=()
while getopts 't:m:c:C:e:h' o; do
	case "$o" in
	t) timeout_s=$OPTARG ;;
	m) mem=$OPTARG ;;
	c) cpus=$OPTARG ;;
	C) wd=$(cd "$OPTARG" && pwd) || exit 2 ;;
	e) [[ "$OPTARG" == [A-Za-z_]*=* ]] || usage; envs+=("$OPTARG") ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] && [ "$2" = -- ] || usage
kernel=$1
shift 2

for v in BUILD ONLY KEEP $(compgen -v ECV); do
	[ -n "${!v+x}" ] && envs+=("$v=${!v}")
done

if [ "$kernel" = host ]; then
	cd "$wd" && exec timeout -k 10 "$timeout_s" env "${envs[@]}" bash -c '"$@"' vm "$@"
fi
kernel_suites "$kernel" >/dev/null || usage

fail() { echo "vm: $*" >&2; exit 125; }
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not installed (qemu-system-x86)"
command -v cpio >/dev/null || fail "cpio not installed"
dir=$("$here/fetch.sh" "$kernel") || fail "cannot fetch kernel $kernel"
"$here/initramfs.sh" "$dir" || fail "cannot build the initramfs of $kernel"
release=$(cat "$dir/release")
# The ELF kernel boots through its PVH entry, without decompressing itself under
# emulation; ECV_VM_BZIMAGE=1 boots the vmlinuz instead.
image=$dir/vmlinux
[ -s "$image" ] && [ "${ECV_VM_BZIMAGE:-0}" = 0 ] || image=$dir/root/boot/vmlinuz-$release

tmp=$(mktemp -d /tmp/ecv-vm.XXXXXX)
qpid=
cleanup() {
	[ -z "$qpid" ] || kill -KILL "$qpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The run's own files, in a second cpio archive the kernel unpacks over the first.
mkdir -p "$tmp/run/ecv-vm"
{
	printf 'ECV_VM_DIR=%q\n' "$wd"
	printf 'ECV_VM_MODULES=%q\n' "$dir/root/lib/modules/$release"
} >"$tmp/run/ecv-vm/conf"
{
	echo 'set -u'
	for e in "${envs[@]}"; do printf 'export %q\n' "$e"; done
	printf 'cd %q || exit 125\n' "$wd"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$tmp/run/ecv-vm/cmd"
(cd "$tmp/run" && find ecv-vm | cpio -o -H newc -R 0:0 --quiet) >"$tmp/run.cpio"
cat "$dir/initramfs.cpio" "$tmp/run.cpio" >"$tmp/initrd"

# chardev_of FD: qemu's path for our FD. A regular file is passed as the same open file
# (-add-fd of a duplicate: qemu takes no standard stream), so that qemu's writes and this
# script's share its offset; anything else (a pipe, a terminal) is reopened through /proc.
fdsets=()
chardev_of() {
	local dup
	if [ -f "/proc/self/fd/$1" ] && [ ! -t "$1" ]; then
		exec {dup}>&"$1"
		fdsets+=(-add-fd "fd=$dup,set=$1")
		CHARDEV="/dev/fdset/$1"
	else
		CHARDEV="/proc/self/fd/$1"
	fi
}
chardev_of 1
out_path=$CHARDEV
chardev_of 2
err_path=$CHARDEV

console=$tmp/console.log
: >"$console"
timeout -k 5 "$timeout_s" qemu-system-x86_64 -nodefaults -no-user-config -display none \
	-machine pc -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem" -no-reboot \
	-kernel "$image" -initrd "$tmp/initrd" \
	-append "console=ttyS0 loglevel=4 panic=-1 random.trust_cpu=on rdinit=/init" \
	-fsdev local,id=hostroot,path=/,readonly=on,security_model=none,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-device virtio-rng-pci \
	-chardev file,id=con,path="$console" -serial chardev:con \
	-device virtio-serial-pci \
	"${fdsets[@]}" \
	-chardev file,id=out,path="$out_path",append=on \
	-device virtserialport,chardev=out,name=out \
	-chardev file,id=err,path="$err_path",append=on \
	-device virtserialport,chardev=err,name=err \
	-chardev file,id=status,path="$tmp/status" \
	-device virtserialport,chardev=status,name=status &
qpid=$!
if [ "${ECV_VM_VERBOSE:-0}" != 0 ]; then
	tail -f --pid=$qpid "$console" >&2 &
fi
wait $qpid
qrc=$?
qpid=
line=$(cat "$tmp/status" "$console" 2>/dev/null | grep -a -m1 '^ECV-VM-EXIT: ' | tr -d '\r')
rc=${line#ECV-VM-EXIT: }
rc=${rc%% *}
case "$rc" in
'' | *[!0-9]*)
	[ "${ECV_VM_VERBOSE:-0}" != 0 ] || tail -n 40 "$console" | tr -d '\r' >&2
	[ "$qrc" = 124 ] && { echo "vm: $kernel: timed out after $timeout_s s" >&2; exit 124; }
	fail "$kernel: the guest did not run the command (qemu exit $qrc${line:+, $line})"
	;;
esac
[ "${ECV_VM_QUIET:-0}" != 0 ] ||
	echo "vm: $kernel ($release): exit $rc, $(grep -a -m1 -o 'up after [0-9.]* s' "$console"), ${line#*after }" >&2
exit "$rc"
