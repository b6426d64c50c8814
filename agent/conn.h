/* agent/conn.h - the agent's connection table: from BPF events to TCP frames.
 * Owns: one entry per (tgid, SSL pointer) with its 5-tuple, role, ISN and next offset
 * per direction, seen-from-start flag and process metadata; the frames synthesized for
 * it (synthetic handshake, data segments, FIN exchange, 0x88B5 metadata records); the
 * bounded backlog of events that arrive before the connection's tuple is known.
 * Does not own: event transport (probe.h), frame delivery (the emit callback, normally
 * ship.h), clocks (callers pass monotonic nanoseconds). Pure apart from the optional
 * lookups in conn_cfg. Not thread-safe. */
#ifndef AGENT_CONN_H
#define AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ecv_event.h"
#include "pkt.h"
#include "procinfo.h"
#include "tuple.h"

#define CONN_MTU_DEFAULT 1450
#define CONN_BACKLOG_DEFAULT 64 /* events per connection without tuple */
/* An SSL_free seen on one CPU may overtake the last SSL_write of the same connection
 * seen on another (the perf buffer orders events per CPU only): a closed connection
 * keeps taking data this long before its FINs go out. */
#define CONN_CLOSE_GRACE_NS (250ull * 1000000ull)
/* Window scale of the synthesized handshake. The frames of one direction reach the
 * tools from the writer's node, its acknowledgements from the reader's node, which may
 * lag by the tvn's skew (seconds) or be missing (one node instrumented): every segment
 * advertises 65535 << 14, about 1 GiB, so that no byte in flight is out of window for a
 * stateful analyser. */
#define CONN_WSCALE 14
#define CONN_IDLE_DEFAULT_NS (300ull * 1000000000ull) /* --flow-timeout default: 5 min */

/* Receives every synthesized frame. flow is the connection's tuple in one of its two
 * directions (callers needing a canonical form use tuple_dir()); frame is only valid
 * during the call. A non-zero return is counted as an emit error. */
typedef int (*conn_emit_fn)(void *ctx, const struct ecv_tuple *flow, const uint8_t *frame,
			    size_t len);

/* Optional lookups; NULL members select the fallbacks noted. */
struct conn_lookup {
	/* Process metadata of tgid (NULL or non-zero return: only the event's comm). */
	int (*proc)(void *ctx, uint32_t tgid, struct procinfo *out);
	/* Library mapped by tgid that the probe hooked, for the metadata "lib" field. */
	void (*lib)(void *ctx, uint32_t tgid, char *out, size_t cap);
	/* True if a socket listens on port in tgid's network namespace (role fallback
	 * when the kernel saw no open; NULL: the lower port is the server). */
	bool (*listens)(void *ctx, uint32_t tgid, int family, uint16_t port);
	/* Ethernet addresses for local -> remote frames (NULL: netinfo_fallback_mac()). */
	void (*l2)(void *ctx, const uint8_t laddr[16], const uint8_t raddr[16], uint64_t now_ns,
		   struct pkt_l2 *l2);
	void *ctx;
};

struct conn_cfg {
	unsigned mtu;	      /* inner IP MTU; 0 = CONN_MTU_DEFAULT */
	uint64_t idle_ns;     /* idle timeout; 0 = CONN_IDLE_DEFAULT_NS */
	unsigned backlog_max; /* 0 = CONN_BACKLOG_DEFAULT */
	const char *node;     /* metadata "node" */
	conn_emit_fn emit;
	void *emit_ctx;
	/* Optional: where to build flow's next frame (at least need bytes, valid until
	 * emit returns), so emit need not copy it; NULL or a NULL return: conn's own
	 * buffer. Called with emit_ctx. */
	uint8_t *(*frame_buf)(void *ctx, const struct ecv_tuple *flow, size_t need);
	struct conn_lookup lookup;
};

struct conn_stats {
	uint64_t events;	  /* events accepted */
	uint64_t invalid;	  /* events rejected as malformed */
	uint64_t bytes[2];	  /* plaintext bytes by ecv_dir (write, read) */
	uint64_t truncated;	  /* data events flagged ECV_F_TRUNCATED */
	uint64_t gaps;		  /* holes left in a stream (offset beyond the next one) */
	uint64_t gap_bytes;	  /* bytes of sequence space in those holes */
	uint64_t backlog_dropped; /* events dropped: no tuple and the backlog was full,
				   * or the connection ended before its tuple was known */
	uint64_t flows_started;	  /* start records sent */
	uint64_t flows_ended;	  /* end records sent */
	uint64_t flows_active;	  /* entries now in the table */
	uint64_t frames;	  /* frames handed to emit */
	uint64_t emit_errors;	  /* non-zero returns of emit or of frame building */
};

struct conn_table;

/* Returns a table or NULL with errno set (EINVAL: no emit callback or an MTU too small
 * for one byte of IPv6 payload). */
struct conn_table *conn_table_new(const struct conn_cfg *cfg);
/* Frees every entry without emitting anything (NULL-safe); call conn_close_all()
 * first for an orderly end. */
void conn_table_free(struct conn_table *ct);

/* Consumes one event of size bytes (as delivered by probe_poll()); now_ns is the
 * monotonic time used for idle expiry. Frames go out through cfg->emit before it
 * returns, except the end of a closed connection, which conn_expire() sends once
 * CONN_CLOSE_GRACE_NS have passed. Returns 0, or -EINVAL for a malformed event
 * (counted, nothing emitted). */
int conn_handle(struct conn_table *ct, const struct ecv_event *ev, size_t size, uint64_t now_ns);
/* Ends connections (FINs + end record) closed more than CONN_CLOSE_GRACE_NS ago or idle
 * for longer than the timeout. Call it after every poll round. Returns how many ended. */
unsigned conn_expire(struct conn_table *ct, uint64_t now_ns);
/* Ends every connection (FINs + end records), e.g. at shutdown. */
void conn_close_all(struct conn_table *ct, uint64_t now_ns);
/* Counters so far; valid until the table is freed. */
const struct conn_stats *conn_stats(const struct conn_table *ct);

#endif
