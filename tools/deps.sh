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
# Suricata 7 (the tests' stateful analyser) comes from bookworm-backports, which the
# host's sources need not list: it is installed through a private apt state directory
# (its own sources list, package lists and cache), leaving the host's apt untouched.
SURICATA_MIN=7
suricata_ok() {
	local v
	v=$(dpkg-query -W -f='${Status} ${Version}' suricata 2>/dev/null) || return 1
	[[ $v == "install ok installed "* ]] || return 1
	v=${v##* }
	v=${v#*:}
	[ "${v%%.*}" -ge "$SURICATA_MIN" ]
}
need_suricata=0
suricata_ok || need_suricata=1
if [ ${#missing[@]} -eq 0 ] && [ $need_suricata -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages and suricata >= $SURICATA_MIN present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}${need_suricata:+ suricata>=$SURICATA_MIN}; run 'sudo make deps'" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
LOCK=(-o DPkg::Lock::Timeout=600)
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt-get "${LOCK[@]}" update -qq
	# tshark asks whether non-root users may capture; answer no without a prompt.
	echo 'wireshark-common wireshark-common/install-setuid boolean false' |
		debconf-set-selections
	apt-get "${LOCK[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $need_suricata -eq 1 ]; then
	echo "deps: installing suricata from bookworm-backports (private apt state)"
	state=/var/lib/ecv/apt-backports
	mirror=${ECV_DEBIAN_MIRROR:-$(grep -rhoE 'https?://[^ ]*/debian/?( |$)' \
		/etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null | head -1 | tr -d ' ' || true)}
	mirror=${mirror:-http://deb.debian.org/debian}
	mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/parts"
	cat >"$state/sources.list" <<-EOF
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm main
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm-updates main
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm-backports main
	EOF
	APT=(-o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts="$state/parts"
		-o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" "${LOCK[@]}")
	apt-get "${APT[@]}" update -qq
	apt-get "${APT[@]}" install -y -qq --no-install-recommends -t bookworm-backports suricata
	# The package starts a system service; the tests run their own instances only.
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		systemctl disable --now suricata >/dev/null 2>&1 || true
	fi
	suricata_ok || { echo "deps: suricata >= $SURICATA_MIN did not install" >&2; exit 1; }
fi
