/* agent/reorder.h - puts the events of one poll round back in kernel time order.
 * A perf event array has one ring per CPU: a connection whose thread moved between
 * CPUs has its events in several rings, and the rings are read one after the other, so
 * an SSL_free can be read before the SSL_write that preceded it, or a later chunk before
 * an earlier one. Events of a round are kept here and handed on sorted by their kernel
 * timestamp (ties keep their arrival order).
 * Owns: copies of the round's events. Does not own: what they mean (conn.h). Pure; not
 * thread-safe. */
#ifndef AGENT_REORDER_H
#define AGENT_REORDER_H

#include <stddef.h>

#include "ecv_event.h"

struct reorder;

typedef void (*reorder_fn)(void *ctx, const struct ecv_event *ev, size_t size);

/* Returns an empty buffer, or NULL with errno set. */
struct reorder *reorder_new(void);
void reorder_free(struct reorder *r); /* NULL-safe */

/* Keeps a copy of the event at sample (size bytes, at least ECV_EVENT_HDR_LEN; any
 * alignment, such as a perf ring's; only the header and len data bytes, bounded by size,
 * are kept). Returns 0 or -ENOMEM (the caller then hands the event on unsorted). */
int reorder_add(struct reorder *r, const void *sample, size_t size);
/* Calls fn for every kept event in timestamp order, then empties the buffer. The event
 * pointers are 8-byte aligned and valid during the call only. Returns how many. */
size_t reorder_drain(struct reorder *r, reorder_fn fn, void *ctx);

#endif
