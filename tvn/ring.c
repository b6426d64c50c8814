/* tvn/ring.c - SPSC record ring: monotonic head/tail byte counters on separate cache
 * lines, each side caching the other's counter so the common case touches no shared line. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define RING_PAD 0xffffffffu /* header of the filler up to the end of the buffer */
#define RING_HDR 8

struct ring {
	/* producer side */
	_Alignas(64) _Atomic uint64_t head;
	uint64_t tail_cache;
	uint64_t pending; /* head after the reserved record */
	/* consumer side */
	_Alignas(64) _Atomic uint64_t tail;
	uint64_t head_cache;
	uint64_t next_tail; /* tail after the peeked record */
	_Alignas(64) size_t cap;
	size_t mask;
	uint8_t *buf;
};

static inline size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

struct ring *ring_new(size_t cap)
{
	struct ring *r;
	size_t c = 65536;

	while (c < cap)
		c <<= 1;
	r = aligned_alloc(64, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->buf = malloc(c);
	if (!r->buf) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->cap = c;
	r->mask = c - 1;
	return r;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

size_t ring_max_record(const struct ring *r)
{
	return r->cap / 4 - RING_HDR;
}

void *ring_reserve(struct ring *r, size_t len)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t need = align8(RING_HDR + len), pos = head & r->mask, skip = 0;
	uint32_t *hdr;

	if (len > ring_max_record(r))
		return NULL;
	if (pos + need > r->cap)
		skip = r->cap - pos; /* records never wrap: pad to the end */
	if (head + skip + need - r->tail_cache > r->cap) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head + skip + need - r->tail_cache > r->cap)
			return NULL;
	}
	if (skip) {
		hdr = (uint32_t *)(r->buf + pos);
		hdr[0] = RING_PAD;
		head += skip;
		pos = 0;
	}
	hdr = (uint32_t *)(r->buf + pos);
	hdr[0] = (uint32_t)len;
	r->pending = head + need;
	return r->buf + pos + RING_HDR;
}

void ring_commit(struct ring *r)
{
	atomic_store_explicit(&r->head, r->pending, memory_order_release);
}

void *ring_peek(struct ring *r, size_t *len)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t *hdr;

	for (;;) {
		if (tail == r->head_cache) {
			r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
			if (tail == r->head_cache)
				return NULL;
		}
		hdr = (uint32_t *)(r->buf + (tail & r->mask));
		if (hdr[0] != RING_PAD)
			break;
		tail += r->cap - (tail & r->mask);
		atomic_store_explicit(&r->tail, tail, memory_order_release);
	}
	*len = hdr[0];
	r->next_tail = tail + align8(RING_HDR + hdr[0]);
	return (uint8_t *)hdr + RING_HDR;
}

void ring_release(struct ring *r)
{
	atomic_store_explicit(&r->tail, r->next_tail, memory_order_release);
}

void ring_discard(struct ring *r)
{
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	atomic_store_explicit(&r->tail, r->head_cache, memory_order_release);
}

bool ring_empty(const struct ring *r)
{
	return atomic_load_explicit(&r->tail, memory_order_acquire) ==
	       atomic_load_explicit(&r->head, memory_order_acquire);
}
