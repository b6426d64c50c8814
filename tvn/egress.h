/* tvn/egress.h - delivery of the deduplicated stream to the tools.
 * Owns: the outputs (--out pcap:/vxlan:/iface:), one thread and one queue per output
 * per producer, per-output filter/snaplen/origin tagging, pcap rotation, and the
 * bounded queues of live /capture readers.
 * Does not own: the frames (copied in at egress_push()), HTTP (http.h). A slow or
 * stalled output only fills its own queues: producers never wait for it (unless the
 * egress was made with block, for offline runs) and its drops are counted. */
#ifndef TVN_EGRESS_H
#define TVN_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dedup.h"
#include "metrics.h"

enum egress_type { EGRESS_PCAP = 0, EGRESS_VXLAN, EGRESS_IFACE };

#define EGRESS_FILTER_MAX 1024

struct egress_out_cfg {
	enum egress_type type;
	char target[256];		/* path ("-" = stdout), HOST[:PORT] or interface */
	char filter[EGRESS_FILTER_MAX]; /* libpcap expression, "" = everything */
	uint32_t snaplen;		/* bytes kept per frame, 0 = all */
	uint32_t vni;			/* vxlan: VNI of the re-encapsulated frames */
	bool origin_vlan;		/* tag frames with the 802.1Q id of their source */
	uint64_t rotate_bytes;		/* pcap: new file after this many bytes, 0 = never */
	uint64_t rotate_ms;		/* pcap: new file after this much capture time */
	uint64_t queue_bytes;		/* queue per producer, 0 = egress_cfg.ring_bytes */
	char name[128];			/* metric label: "pcap:out.pcap", ... */
};

/* Parses one --out value: pcap:PATH, vxlan:HOST[:PORT], iface:NAME, each followed by
 * ",key=value" options (filter=, snaplen=, origin=vlan, queue=, size=, time=, vni=). filter=
 * takes the rest of the string when it is the last option, or a quoted value
 * (filter="tcp and (port 1 or port 2)"). Returns 0, or -EINVAL with *why set. */
int egress_parse_spec(const char *spec, struct egress_out_cfg *out, const char **why);
/* Compiles out->filter (if any) and throws it away, so a typo is a usage error at parse
 * time. Returns 0, or -EINVAL with *why set (static) and libpcap's reason logged. */
int egress_check_filter(const struct egress_out_cfg *out, const char **why);

/* 802.1Q id that origin=vlan gives frames of src: the low 12 bits of the node's address
 * (0 and 4095 become 4094), so 10.0.3.7 -> 775 and file index 2 (offline) -> 2. */
uint16_t egress_origin_vlan_id(const struct dedup_src *src);

struct egress_cfg {
	const struct egress_out_cfg *outs;
	size_t n_outs;
	unsigned n_producers; /* threads calling egress_push(), each with its own index */
	size_t ring_bytes;    /* queue size per output per producer */
	bool block;	      /* offline: wait for queue space instead of dropping */
	struct metrics *metrics;
};

struct egress;

/* Opens every output (files, sockets, compiled filters) and starts its thread. Returns
 * NULL with errno set and a logged reason naming the output. */
struct egress *egress_new(const struct egress_cfg *cfg);
/* Flushes and closes every output after delivering what is queued, waiting at most
 * timeout_ms for an output that does not move. Returns 0, or -EBUSY when some output
 * thread is stuck (e.g. writing to a pipe nobody reads): its FILE may then be locked,
 * so the caller should leave with _exit() instead of exit(). */
int egress_stop(struct egress *eg, unsigned timeout_ms);
/* egress_stop(eg, 3000) if not done yet, then frees. When an output is stuck nothing is
 * freed: its thread may still touch eg and cfg->metrics, so the caller must not free the
 * metrics registry either and should leave with _exit(). NULL-safe. */
void egress_free(struct egress *eg);

/* Called by producer `producer` (0..n_producers-1) for every frame the dedup engine
 * emits. Copies the frame; never blocks unless cfg->block. */
void egress_push(struct egress *eg, unsigned producer, const uint8_t *frame, size_t len,
		 uint64_t ts_ns, const struct dedup_src *src);
/* Waits until every output consumed everything pushed so far, at most timeout_ms
 * (0 = no limit: offline end). Returns 0 or -ETIMEDOUT. */
int egress_drain(struct egress *eg, unsigned timeout_ms);

struct egress_out_stats {
	uint64_t packets, dropped;
	bool failed; /* some frame could not be written (write error, file not opened) */
};
void egress_get_stats(const struct egress *eg, size_t out, struct egress_out_stats *st);

/* --- live capture readers (/capture) --- */

struct egress_frame {
	const uint8_t *data;
	size_t len;
	uint64_t ts_ns;
	struct dedup_src src;
};

/* Attaches a reader that sees frames pushed from now on. Returns a slot >= 0 or -EBUSY. */
int egress_capture_attach(struct egress *eg);
/* The next queued frame for slot: 1 with f filled (valid until
 * egress_capture_release()), 0 when none is waiting. */
int egress_capture_next(struct egress *eg, int slot, struct egress_frame *f);
void egress_capture_release(struct egress *eg, int slot);
void egress_capture_detach(struct egress *eg, int slot);
/* Frames dropped for this reader because it was slow. */
uint64_t egress_capture_drops(const struct egress *eg, int slot);

#endif
