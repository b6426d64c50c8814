/* tvn/ring.h - single-producer single-consumer ring of variable-size records.
 * Owns: record framing in one preallocated buffer and the memory ordering between
 * exactly one producer thread and one consumer thread.
 * Does not own: what a record means. Nothing allocates after ring_new(). */
#ifndef TVN_RING_H
#define TVN_RING_H

#include <stdbool.h>
#include <stddef.h>

struct ring;

/* cap is rounded up to a power of two (at least 64 KiB). Returns NULL with errno set. */
struct ring *ring_new(size_t cap);
void ring_free(struct ring *r); /* NULL-safe */

/* Largest record ring_reserve() accepts. */
size_t ring_max_record(const struct ring *r);

/* Producer: space for a record of len bytes (8-byte aligned), or NULL when the ring is
 * full or len exceeds ring_max_record(). The record becomes visible at ring_commit(). */
void *ring_reserve(struct ring *r, size_t len);
void ring_commit(struct ring *r);

/* Consumer: the oldest record and its length, or NULL when empty. The record stays
 * valid until ring_release(). */
void *ring_peek(struct ring *r, size_t *len);
void ring_release(struct ring *r);
/* Consumer: discards everything committed so far (a new reader starts fresh). */
void ring_discard(struct ring *r);
/* Either side: true when no committed record is waiting. */
bool ring_empty(const struct ring *r);

#endif
