# ecv-agent image: eBPF capture of TLS plaintext, one per node.
# It cannot run as an unprivileged user: loading BPF programs and reading other
# processes' /proc entries need uid 0 with CAP_SYS_ADMIN (uprobes, and bpf(2)/perf events
# with it, see docs/deploy.md), CAP_SYS_PTRACE and CAP_SYS_RESOURCE (plus hostPID and the
# host's /sys/kernel/btf). The runtime grants exactly those, e.g.
#   podman run --pid=host --cap-drop=ALL --cap-add=SYS_ADMIN --cap-add=SYS_PTRACE \
#     --cap-add=SYS_RESOURCE --read-only -v /proc:/host/proc:ro \
#     -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/kernel/tracing:/sys/kernel/tracing:ro \
#     ghcr.io/ecv/ecv-agent:latest --tvn collector:4789
# (tests/deploy/test_daemonset.sh runs it as deploy/k8s/agent-daemonset.yaml says).
# Build from the repository root:  make images   (or)
#   docker build -f deploy/docker/agent.Dockerfile -t ghcr.io/ecv/ecv-agent:latest .

# --- build stage: the whole tree, built and installed into /out ---------------
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	make gcc libc6-dev clang llvm pkg-config bpftool \
	libbpf-dev libelf-dev zlib1g-dev libpcap-dev libjansson-dev libssl-dev \
	libmicrohttpd-dev libcapstone-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The BPF objects are CO-RE: built against the build host's BTF
# (/sys/kernel/btf/vmlinux), they relocate at load time on any kernel with BTF.
RUN make -j"$(nproc)" BUILD=/src/build-image \
 && make BUILD=/src/build-image install DESTDIR=/out PREFIX=/usr/local

# --- runtime stage: only the shared libraries ecv-agent links -----------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	libbpf1 libelf1 zlib1g libjansson4 libssl3 libmicrohttpd12 libcapstone4 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/bin/ecv-agent /usr/local/bin/
# Deliberately root (see above): the capabilities come from the runtime, not the image.
USER 0:0
EXPOSE 9435/tcp
ENTRYPOINT ["/usr/local/bin/ecv-agent"]
CMD ["--help"]
