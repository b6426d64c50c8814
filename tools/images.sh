#!/usr/bin/env bash
# tools/images.sh - builds the two container images (make images).
#   deploy/docker/agent.Dockerfile -> $IMAGE_PREFIX/ecv-agent:$IMAGE_TAG
#   deploy/docker/tvn.Dockerfile   -> $IMAGE_PREFIX/tvn:$IMAGE_TAG
# On a machine without a usable engine it installs Debian's podman (as root), with the
# default ulimits some hosts need (/etc/containers/containers.conf, written only when
# absent). When the base image debian:bookworm-slim is neither present nor pullable (no
# registry reachable) it builds it with debootstrap from the host's own Debian mirror and
# imports it; the rootfs tarball is cached in $ECV_IMAGE_CACHE for the next runs.
# Environment: CONTAINER_ENGINE (docker or podman; default: the first one that works,
# else podman installed), IMAGE_PREFIX (default ghcr.io/ecv, as in deploy/k8s),
# IMAGE_TAG (default latest), ECV_IMAGE_CACHE (default /var/cache/ecv-images),
# ECV_NO_INSTALL=1 (never install packages: fail instead).
# Exits non-zero, saying why, when no container engine is usable.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_PREFIX=${IMAGE_PREFIX:-ghcr.io/ecv}
IMAGE_TAG=${IMAGE_TAG:-latest}
CACHE=${ECV_IMAGE_CACHE:-/var/cache/ecv-images}
BASE=debian:bookworm-slim
CONTAINERS_CONF=/etc/containers/containers.conf

say() { echo "images: $*" >&2; }

# A client binary is not enough: docker needs its daemon, podman a working runtime.
engine_works() {
	command -v "$1" >/dev/null 2>&1 && "$1" info >/dev/null 2>&1
}

apt_install() { # packages...
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
		--no-install-recommends "$@" >/dev/null ||
		{
			apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				-o DPkg::Lock::Timeout=600 --no-install-recommends "$@" >/dev/null
		}
}

# podman's default ulimits (nofile 1048576) exceed what some hosts allow a container
# (the runtime then refuses to start it). Written only when there is no configuration
# at all; an existing file is the administrator's and is left as it is.
podman_conf() {
	[ -e "$CONTAINERS_CONF" ] && return 0
	mkdir -p "${CONTAINERS_CONF%/*}"
	local t
	t=$(mktemp "$CONTAINERS_CONF.XXXXXX")
	cat >"$t" <<-'EOF'
		# Written by ECV's tools/images.sh: podman's default ulimits (nofile 1048576)
		# are refused on hosts whose fs.nr_open or hard limits are lower.
		[containers]
		default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
	EOF
	# crun refuses hybrid cgroup hierarchies (v1 controllers next to a v2 mount); runc
	# runs there.
	if ! cgroup_v2_only; then
		printf '\n# cgroup v1/hybrid host: crun refuses it, runc does not.\n[engine]\nruntime = "runc"\n' >>"$t"
	fi
	chmod 0644 "$t"
	# ln fails if another process wrote the file meanwhile: keep theirs.
	ln "$t" "$CONTAINERS_CONF" 2>/dev/null && say "wrote $CONTAINERS_CONF (default_ulimits)"
	rm -f "$t"
}

cgroup_v2_only() { [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; }

install_podman() {
	if [ "$(id -u)" -ne 0 ] || [ "${ECV_NO_INSTALL:-0}" = 1 ]; then
		return 1
	fi
	say "no usable container engine: installing Debian's podman"
	# crun (podman's preferred runtime), conmon, the CNI plugins for bridge networks.
	local runtime=crun
	cgroup_v2_only || runtime=runc
	apt_install podman "$runtime" conmon containernetworking-plugins uidmap catatonit ||
		return 1
	podman_conf
	engine_works podman
}

engine=${CONTAINER_ENGINE:-}
if [ -n "$engine" ]; then
	if ! engine_works "$engine" && ! { [ "$engine" = podman ] && install_podman; }; then
		say "CONTAINER_ENGINE=$engine is not usable ('$engine info' fails)"
		exit 1
	fi
else
	for e in podman docker; do
		if engine_works "$e"; then
			engine=$e
			break
		fi
	done
	[ -n "$engine" ] || { install_podman && engine=podman; } || true
fi
if [ -z "$engine" ]; then
	{
		echo "images: no container engine is running, so no image was built."
		for e in docker podman; do
			if command -v "$e" >/dev/null 2>&1; then
				echo "  $e: installed, but '$e info' fails (is the daemon/service running?)"
			else
				echo "  $e: not installed"
			fi
		done
		echo "  Run this as root to install podman, start an engine (e.g. 'systemctl start"
		echo "  docker') or set CONTAINER_ENGINE, then run 'make images' again."
	} >&2
	exit 1
fi
[ "$engine" = podman ] && podman_conf

# The host's Debian mirror: the first bookworm (not -security) source of /etc/apt.
host_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" {
			for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /=/ && $i !~ /\]$/) break
			if ($(i + 1) == "bookworm") { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: paragraphs of "Key: value" lines.
		awk 'BEGIN { RS = ""; FS = "\n" } {
			uri = ""; ok = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { split($i, a, " "); uri = a[2] }
				if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
			}
			if (ok && uri != "") { print uri; exit }
		}' "$f"
	done
}

# debian:bookworm-slim: the local one, else the registry's, else debootstrap.
ensure_base() {
	local tarball=$CACHE/debian-bookworm-minbase.tar mirror dir
	if "$engine" image inspect "$BASE" >/dev/null 2>&1; then
		return 0
	fi
	if timeout 60 "$engine" pull -q "docker.io/library/$BASE" >/dev/null 2>&1; then
		say "pulled $BASE from the registry"
		return 0
	fi
	if [ ! -s "$tarball" ]; then
		say "$BASE not pullable (no registry reachable): building it with debootstrap"
		command -v debootstrap >/dev/null 2>&1 || {
			[ "$(id -u)" -eq 0 ] && [ "${ECV_NO_INSTALL:-0}" != 1 ] && apt_install debootstrap
		} || {
			say "debootstrap is needed to build $BASE locally (apt-get install debootstrap)"
			return 1
		}
		mirror=$(host_mirror | head -n 1)
		mirror=${mirror:-http://deb.debian.org/debian}
		mkdir -p "$CACHE"
		dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
		say "debootstrap --variant=minbase bookworm $dir $mirror"
		if ! debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
			tail -n 5 "$dir.log" >&2
			rm -rf "$dir" "$dir.log"
			say "debootstrap failed"
			return 1
		fi
		# What the registry's slim image also leaves out: package caches and lists.
		rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
			"$dir"/var/log/*.log "$dir"/debootstrap
		tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$dir" "$dir.log"
	fi
	say "importing $tarball as $BASE"
	"$engine" import --change 'CMD ["bash"]' "$tarball" "$BASE" >/dev/null
}
ensure_base || exit 1

build() { # dockerfile image
	local net=()
	# podman builds in a network of its own unless told otherwise; the build only needs
	# the host's Debian mirror.
	[ "$engine" = podman ] && net=(--network=host)
	say "$engine build ${net[*]} -f $1 -t $2 ."
	# BuildKit (docker) and buildah (podman) both read <Dockerfile>.dockerignore.
	DOCKER_BUILDKIT=1 "$engine" build "${net[@]}" -f "$1" -t "$2" .
}

build deploy/docker/agent.Dockerfile "$IMAGE_PREFIX/ecv-agent:$IMAGE_TAG"
build deploy/docker/tvn.Dockerfile "$IMAGE_PREFIX/tvn:$IMAGE_TAG"
say "built $IMAGE_PREFIX/ecv-agent:$IMAGE_TAG and $IMAGE_PREFIX/tvn:$IMAGE_TAG"
