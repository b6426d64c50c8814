#!/usr/bin/env bash
# tools/deps.sh - installs the Debian packages ECV's build and tests need (make deps).
# Idempotent: installs only what is missing, running apt-get update first only then.
set -euo pipefail
PKGS=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libpcap-dev libjansson-dev libssl-dev libmicrohttpd-dev check libcapstone-dev
	libclang-rt-14-dev
	# tests and demo
	tshark iproute2 nginx curl openssl python3 python3-yaml wrk gnutls-bin
	libnss3-tools default-jdk-headless golang-go
	procps psmisc
	# benchmarks
	hyperfine
	# kernel matrix (tests/kernels/: Debian's kernels under qemu)
	qemu-system-x86 busybox-static cpio kmod xz-utils zstd file
)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run 'sudo make deps'" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# tshark asks whether non-root users may capture; answer no without a prompt.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
apt-get install -y -qq --no-install-recommends "${missing[@]}"
