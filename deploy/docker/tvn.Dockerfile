# tvn image: the VxLAN receiver / deduplicator. Runs as an unprivileged user (65532)
# with no capability: its ports (4789/udp, 8080/tcp) are above 1024.
# Build from the repository root:  make images   (or)
#   docker build -f deploy/docker/tvn.Dockerfile -t ghcr.io/ecv/tvn:latest .

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
# `make` builds the agent too (same build stage as agent.Dockerfile, so the engine's
# cache shares it); its BPF part reads the build host's /sys/kernel/btf/vmlinux.
RUN make -j"$(nproc)" BUILD=/src/build-image \
 && make BUILD=/src/build-image install DESTDIR=/out PREFIX=/usr/local

# --- runtime stage: only the shared libraries tvn and ecv-isn link -----------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	libpcap0.8 libjansson4 libssl3 libmicrohttpd12 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/tvn
COPY --from=build /out/usr/local/bin/tvn /out/usr/local/bin/ecv-isn /usr/local/bin/
USER 65532:65532
WORKDIR /var/lib/tvn
VOLUME ["/var/lib/tvn"]
EXPOSE 4789/udp 8080/tcp
ENTRYPOINT ["/usr/local/bin/tvn"]
# HTTP on loopback by default: publish it (--http 0.0.0.0:8080) only together with
# --http-token-file, as the Kubernetes manifest does.
CMD ["--listen", "0.0.0.0:4789", "--out", "pcap:/var/lib/tvn/ecv.pcap,size=256M,time=1h"]
