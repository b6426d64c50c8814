/* tvn/reader.c - pcap captures merged by timestamp. */
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reader.h"
#include "vxlan.h"

/* How many leading packets decide whether a file holds VxLAN datagrams. */
#define READER_PROBE 32
#define READER_BUF (1u << 20)

struct rfile {
	pcap_t *p;
	const char *path;
	bool vxlan;
	bool have; /* hdr/data hold the next packet */
	bool eof;
	struct pcap_pkthdr *hdr;
	const u_char *data;
	uint64_t ts_ns;
	struct dedup_src src;
};

struct reader {
	struct rfile *files;
	size_t n;
};

static pcap_t *open_file(const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	FILE *f;
	pcap_t *p;

	f = fopen(path, "rb");
	if (!f) {
		int err = errno;

		log_err("failed to open %s: %s", path, strerror(errno));
		errno = err;
		return NULL;
	}
	/* Big reads: the default stdio buffer makes reading the capture the main cost. */
	setvbuf(f, NULL, _IOFBF, READER_BUF);
	p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		log_err("failed to open %s: %s", path, errbuf);
		fclose(f);
		errno = EINVAL;
		return NULL;
	}
	if (pcap_datalink(p) != DLT_EN10MB) {
		log_err("failed to read %s: link type %s is not Ethernet", path,
			pcap_datalink_val_to_name(pcap_datalink(p)) ?: "?");
		pcap_close(p);
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
		probe = open_file(paths[i]);
		if (!probe) {
			err = -errno;
			goto cleanup;
		}
		f->vxlan = probe_vxlan(probe);
		pcap_close(probe);
		/* Read it again from the start: probing consumed packets. */
		f->p = open_file(paths[i]);
		r->n = i + 1;
		if (!f->p) {
			err = -errno;
			goto cleanup;
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
	for (i = 0; i < r->n; i++)
		if (r->files[i].p)
			pcap_close(r->files[i].p);
	free(r->files);
	free(r);
}

static void advance(struct rfile *f)
{
	int ret = pcap_next_ex(f->p, &f->hdr, &f->data);

	if (ret != 1) {
		if (ret == PCAP_ERROR)
			log_warn("failed to read %s: %s (stopping this file)", f->path,
				 pcap_geterr(f->p));
		f->have = false;
		f->eof = true;
		return;
	}
	f->have = true;
	f->ts_ns = (uint64_t)f->hdr->ts.tv_sec * 1000000000ull + (uint64_t)f->hdr->ts.tv_usec;
}

static int deliver(struct rfile *f, reader_fn fn, void *ctx)
{
	bool trunc = f->hdr->caplen < f->hdr->len;
	struct pkt_info info;
	int ret;

	if (!f->vxlan)
		return fn(ctx, f->data, f->hdr->caplen, f->ts_ns, NULL, &f->src, trunc);
	ret = pkt_parse(f->data, f->hdr->caplen, &info);
	if (ret != 0 || info.tuple.proto != IPPROTO_UDP)
		return fn(ctx, f->data, 0, f->ts_ns, NULL, NULL, trunc);
	return fn(ctx, info.payload, info.payload_len, f->ts_ns, info.tuple.saddr, NULL, trunc);
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
