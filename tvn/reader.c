/* tvn/reader.c - pcap captures merged by timestamp.
 *
 * libpcap opens and validates every file. Classic pcap files (not pcapng) are then read
 * through a read-only mapping: walking 16-byte record headers in place costs a few
 * instructions, where pcap_next_ex() costs two locked fread() copies per packet, more
 * than a third of the reading thread's time (see docs/bench-tvn.md). pcapng files and
 * anything that cannot be mapped go through pcap_next_ex(). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "reader.h"
#include "vxlan.h"

/* How many leading packets decide whether a file holds VxLAN datagrams. */
#define READER_PROBE 32
#define READER_BUF (4u << 20)
#define READER_MAX_CAPLEN 262144 /* libpcap's bound on a record (MAXIMUM_SNAPLEN) */
#define READER_FRAME_MAX 65535	 /* the largest frame tvn delivers */
#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du

struct rfile {
	pcap_t *p;
	char *iobuf; /* the FILE's buffer: outlives it, freed after pcap_close() */
	const char *path;
	bool vxlan;
	bool have; /* hdr/data hold the next packet */
	bool eof;
	/* mapped classic pcap (map != NULL): p is NULL, records are read in place */
	const uint8_t *map;
	size_t map_len, off;
	bool swapped, nsec;
	/* the current record */
	const u_char *data;
	uint32_t caplen, len;
	uint64_t ts_ns;
	struct dedup_src src;
};

struct reader {
	struct rfile *files;
	size_t n;
};

/* *iobuf (may be NULL on return) must be freed by the caller after pcap_close(). */
static pcap_t *open_file(const char *path, char **iobuf)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	FILE *f;
	pcap_t *p;

	*iobuf = NULL;
	f = fopen(path, "rb");
	if (!f) {
		int err = errno;

		log_err("failed to open %s: %s", path, strerror(errno));
		errno = err;
		return NULL;
	}
	/* Big reads: with the default 4 KiB stdio buffer, read(2) calls cost more than the
	 * dedup. glibc ignores the size when setvbuf() gets no buffer, so give it one. */
	*iobuf = malloc(READER_BUF);
	if (*iobuf)
		setvbuf(f, *iobuf, _IOFBF, READER_BUF);
	p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		log_err("failed to open %s: %s", path, errbuf);
		fclose(f);
		free(*iobuf);
		*iobuf = NULL;
		errno = EINVAL;
		return NULL;
	}
	if (pcap_datalink(p) != DLT_EN10MB) {
		log_err("failed to read %s: link type %s is not Ethernet", path,
			pcap_datalink_val_to_name(pcap_datalink(p)) ?: "?");
		pcap_close(p);
		free(*iobuf);
		*iobuf = NULL;
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	return p;
}

/* UDP to 4789, or UDP on another port whose payload is a valid VxLAN header followed by
 * a frame that parses (captures taken on a --listen port other than the default). */
static bool looks_vxlan(const struct pkt_info *info)
{
	struct pkt_info inner;
	const uint8_t *f;
	size_t flen;
	uint32_t vni;

	if (info->tuple.proto != IPPROTO_UDP)
		return false;
	if (info->tuple.dport == VXLAN_PORT)
		return true;
	return vxlan_decode(info->payload, info->payload_len, 1, &vni, &f, &flen) == 0 &&
	       pkt_parse(f, flen, &inner) >= 0;
}

static bool probe_vxlan(pcap_t *p)
{
	struct pcap_pkthdr *h;
	const u_char *d;
	struct pkt_info info;
	int i;

	for (i = 0; i < READER_PROBE && pcap_next_ex(p, &h, &d) == 1; i++)
		if (pkt_parse(d, h->caplen, &info) == 0 && looks_vxlan(&info))
			return true;
	return false;
}

static uint32_t rd32(const uint8_t *p, bool swapped)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return swapped ? __builtin_bswap32(v) : v;
}

/* Maps path when it is a classic pcap file. Returns 0, or -errno / -ENOTSUP (pcapng):
 * the caller then reads it with libpcap. */
static int map_classic(struct rfile *f, const char *path)
{
	struct stat st;
	uint32_t magic;
	void *m;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 24) {
		err = -ENOTSUP;
		goto cleanup;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto cleanup;
	}
	magic = rd32(m, false);
	if (magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS) {
		f->swapped = false;
	} else if (magic == __builtin_bswap32(PCAP_MAGIC_US) ||
		   magic == __builtin_bswap32(PCAP_MAGIC_NS)) {
		f->swapped = true;
	} else {
		munmap(m, (size_t)st.st_size);
		err = -ENOTSUP;
		goto cleanup;
	}
	f->nsec = rd32(m, f->swapped) == PCAP_MAGIC_NS;
	madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
	f->map = m;
	f->map_len = (size_t)st.st_size;
	f->off = 24;
cleanup:
	close(fd);
	return err;
}

struct reader *reader_new(const char *const *paths, size_t n)
{
	struct reader *r;
	size_t i;
	int err = 0;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->files = calloc(n ? n : 1, sizeof(*r->files));
	if (!r->files) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		struct rfile *f = &r->files[i];
		pcap_t *probe;

		f->path = paths[i];
		probe = open_file(paths[i], &f->iobuf);
		if (!probe) {
			err = -errno;
			goto cleanup;
		}
		f->vxlan = probe_vxlan(probe);
		pcap_close(probe);
		free(f->iobuf);
		f->iobuf = NULL;
		r->n = i + 1;
		/* Read it again from the start: probing consumed packets. */
		if (map_classic(f, paths[i])) {
			f->p = open_file(paths[i], &f->iobuf);
			if (!f->p) {
				err = -errno;
				goto cleanup;
			}
		}
		/* Inner-frame files: the file is the source (addr ::i+1, VNI 0). */
		f->src.addr[15] = (uint8_t)(i + 1);
		f->src.addr[14] = (uint8_t)((i + 1) >> 8);
		log_info("reading %s (%s)", paths[i],
			 f->vxlan ? "VxLAN datagrams" : "inner frames");
	}
	return r;
cleanup:
	reader_free(r);
	errno = -err;
	return NULL;
}

void reader_free(struct reader *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++) {
		if (r->files[i].p)
			pcap_close(r->files[i].p);
		free(r->files[i].iobuf);
		if (r->files[i].map)
			munmap((void *)r->files[i].map, r->files[i].map_len);
	}
	free(r->files);
	free(r);
}

static void stop_file(struct rfile *f, const char *why)
{
	if (why)
		log_warn("failed to read %s: %s (stopping this file)", f->path, why);
	f->have = false;
	f->eof = true;
}

/* The next record of a mapped file, with the bounds libpcap itself checks. */
static void advance_mapped(struct rfile *f)
{
	const uint8_t *h = f->map + f->off;
	size_t left = f->map_len - f->off;
	uint32_t frac;

	if (left < 16) {
		stop_file(f, left ? "truncated record header at the end of the file" : NULL);
		return;
	}
	f->caplen = rd32(h + 8, f->swapped);
	f->len = rd32(h + 12, f->swapped);
	if (f->caplen > READER_MAX_CAPLEN) {
		stop_file(f, "record larger than the largest snapshot length");
		return;
	}
	if (f->caplen > left - 16) {
		stop_file(f, "truncated record at the end of the file");
		return;
	}
	frac = rd32(h + 4, f->swapped);
	f->ts_ns = (uint64_t)rd32(h, f->swapped) * 1000000000ull +
		   (uint64_t)frac * (f->nsec ? 1 : 1000);
	f->data = h + 16;
	f->off += 16 + (size_t)f->caplen;
	f->have = true;
}

static void advance(struct rfile *f)
{
	struct pcap_pkthdr *hdr;
	int ret;

	if (f->map) {
		advance_mapped(f);
		return;
	}
	ret = pcap_next_ex(f->p, &hdr, &f->data);
	if (ret != 1) {
		stop_file(f, ret == PCAP_ERROR ? pcap_geterr(f->p) : NULL);
		return;
	}
	f->have = true;
	f->caplen = hdr->caplen;
	f->len = hdr->len;
	/* A nanosecond-precision handle returns nanoseconds in tv_usec. */
	f->ts_ns = (uint64_t)hdr->ts.tv_sec * 1000000000ull + (uint64_t)hdr->ts.tv_usec;
}

/* The size of the first VxLAN datagram in a UDP payload: a capture taken where an agent
 * sends UDP GSO (a bridge, a veth, loopback) records a whole run of datagrams (equal
 * sizes, the last one shorter) as one packet, which the receiving socket would have
 * split. The first datagram is its VxLAN header and its inner frame up to the IP length;
 * a metadata frame (JSON text, no NUL byte) ends where the next VxLAN header (flags
 * 0x08, three zero bytes) begins. 0 when the payload does not parse as one datagram
 * (then it is handed on whole, as it came). */
static size_t first_dgram_len(const uint8_t *payload, size_t len)
{
	static const uint8_t vxlan_flags[4] = { 0x08, 0, 0, 0 };
	struct pkt_info inner;
	const uint8_t *frame, *next;
	size_t flen;
	uint32_t vni;
	int ret;

	if (vxlan_decode(payload, len, 0, &vni, &frame, &flen))
		return 0;
	ret = pkt_parse(frame, flen, &inner);
	if (ret == 0)
		return VXLAN_HDR_LEN + (size_t)inner.l3_off + inner.ip_len;
	if (ret != PKT_META)
		return 0;
	next = memmem(inner.payload, inner.payload_len, vxlan_flags, sizeof(vxlan_flags));
	return next ? (size_t)(next - payload) : 0;
}

static int deliver(struct rfile *f, reader_fn fn, void *ctx)
{
	bool trunc = f->caplen < f->len;
	struct pkt_info info;
	size_t seg, off;
	int ret;

	/* No Ethernet frame tvn can deliver exceeds 64 KiB (the IP length field); a larger
	 * record is dropped here and counted as malformed ("truncated": it cannot be taken
	 * whole), so no later stage has to size buffers for it. */
	if (f->caplen > READER_FRAME_MAX)
		return fn(ctx, f->data, 0, f->ts_ns, NULL, NULL, true);
	if (!f->vxlan)
		return fn(ctx, f->data, f->caplen, f->ts_ns, NULL, &f->src, trunc);
	ret = pkt_parse(f->data, f->caplen, &info);
	if (ret != 0 || info.tuple.proto != IPPROTO_UDP)
		return fn(ctx, f->data, 0, f->ts_ns, NULL, NULL, trunc);
	seg = first_dgram_len(info.payload, info.payload_len);
	if (!seg || seg >= info.payload_len)
		return fn(ctx, info.payload, info.payload_len, f->ts_ns, info.tuple.saddr, NULL,
			  trunc);
	/* A GSO run: split at the first datagram's size, as the receiving socket does. */
	for (off = 0; off < info.payload_len; off += seg) {
		bool last = info.payload_len - off <= seg;

		ret = fn(ctx, info.payload + off, last ? info.payload_len - off : seg, f->ts_ns,
			 info.tuple.saddr, NULL, trunc && last);
		if (ret)
			return ret;
	}
	return 0;
}

int reader_run(struct reader *r, reader_fn fn, void *ctx, volatile int *stop)
{
	size_t i, best;
	int ret;

	for (i = 0; i < r->n; i++)
		advance(&r->files[i]);
	while (!(stop && *stop)) {
		best = r->n;
		/* A linear scan: a handful of files, and ties keep command-line order. */
		for (i = 0; i < r->n; i++)
			if (r->files[i].have &&
			    (best == r->n || r->files[i].ts_ns < r->files[best].ts_ns))
				best = i;
		if (best == r->n)
			break;
		ret = deliver(&r->files[best], fn, ctx);
		if (ret)
			return ret;
		advance(&r->files[best]);
	}
	return 0;
}
