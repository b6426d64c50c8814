/* agent/evbuf.h - the event transport from the BPF programs to the agent.
 * Owns: the BPF ring buffer (one shared ring; its wake-ups are batched by the BPF side)
 * and the perf event array's per-CPU rings (wake-up mark), their draining, lost-record
 * reports, and the checks every record passes before it is handed on.
 * Does not own: the BPF object (probe.c) or what events mean (conn.h). */
#ifndef AGENT_EVBUF_H
#define AGENT_EVBUF_H

#include <linux/types.h>
#include <stddef.h>

#include "probe.h"

struct evbuf;

/* Where records go: on_event gets each checked record, on_lost counts of lost ones. */
struct evbuf_sink {
	probe_event_fn on_event;
	probe_lost_fn on_lost;
	void *ctx;
};

/* Opens pages (a power of two) per CPU on the perf event array map_fd. Returns NULL
 * with errno set. */
struct evbuf *evbuf_perf_new(int map_fd, unsigned pages, const struct evbuf_sink *sink);
/* Opens the BPF ring buffer map_fd of ring_bytes. *lost is the BPF side's count of
 * records it could not reserve (ring full); its growth is reported through on_lost
 * (cpu -1). One evbuf_poll() hands on about a quarter of the ring at most, so the agent
 * ships between rounds however fast the producers are. Returns NULL with errno set. */
struct evbuf *evbuf_ring_new(int map_fd, size_t ring_bytes, const volatile __u64 *lost,
			     const struct evbuf_sink *sink);
/* Waits up to timeout_ms for records, then drains every ring (what sits below a
 * wake-up mark waits at most one timeout). Returns the number of
 * records handled or -errno. */
int evbuf_poll(struct evbuf *e, int timeout_ms);
void evbuf_free(struct evbuf *e);

#endif
