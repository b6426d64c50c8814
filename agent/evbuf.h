/* agent/evbuf.h - the event transport from the BPF programs to the agent.
 * Owns: the perf event array's per-CPU rings (wake-up mark, draining, lost-record
 * reports) and the checks every record passes before it is handed on.
 * Does not own: the BPF object (probe.c) or what events mean (conn.h). */
#ifndef AGENT_EVBUF_H
#define AGENT_EVBUF_H

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
/* Waits up to timeout_ms for records, then drains every ring. Returns the number of
 * records handled or -errno. */
int evbuf_poll(struct evbuf *e, int timeout_ms);
void evbuf_free(struct evbuf *e);

#endif
