#!/usr/bin/env bash
# tools/images.sh - builds the two container images (make images).
#   deploy/docker/agent.Dockerfile -> $IMAGE_PREFIX/ecv-agent:$IMAGE_TAG
#   deploy/docker/tvn.Dockerfile   -> $IMAGE_PREFIX/tvn:$IMAGE_TAG
# Environment: CONTAINER_ENGINE (docker or podman; default: the first one whose daemon
# answers), IMAGE_PREFIX (default ghcr.io/ecv, as in deploy/k8s), IMAGE_TAG (default latest).
# Exits non-zero, saying why, when no container engine is usable.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_PREFIX=${IMAGE_PREFIX:-ghcr.io/ecv}
IMAGE_TAG=${IMAGE_TAG:-latest}

# A client binary is not enough: docker needs its daemon, podman a working runtime.
engine_works() {
	command -v "$1" >/dev/null 2>&1 && "$1" info >/dev/null 2>&1
}

engine=${CONTAINER_ENGINE:-}
if [ -n "$engine" ]; then
	if ! engine_works "$engine"; then
		echo "images: CONTAINER_ENGINE=$engine is not usable ('$engine info' fails)" >&2
		exit 1
	fi
else
	for e in docker podman; do
		if engine_works "$e"; then
			engine=$e
			break
		fi
	done
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
		echo "  Start one (e.g. 'systemctl start docker') or set CONTAINER_ENGINE, then run"
		echo "  'make images' again. The Dockerfiles are deploy/docker/*.Dockerfile; build"
		echo "  them from the repository root with '<engine> build -f <file> .'."
	} >&2
	exit 1
fi

build() { # dockerfile image
	echo "images: $engine build -f $1 -t $2 ."
	# BuildKit (docker) and buildah (podman) both read <Dockerfile>.dockerignore.
	DOCKER_BUILDKIT=1 "$engine" build -f "$1" -t "$2" .
}

build deploy/docker/agent.Dockerfile "$IMAGE_PREFIX/ecv-agent:$IMAGE_TAG"
build deploy/docker/tvn.Dockerfile "$IMAGE_PREFIX/tvn:$IMAGE_TAG"
echo "images: built $IMAGE_PREFIX/ecv-agent:$IMAGE_TAG and $IMAGE_PREFIX/tvn:$IMAGE_TAG"
