/* agent/reorder.c - per-round sort of BPF events by kernel timestamp. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reorder.h"

/* The arena is kept between rounds: its size follows the largest round seen. */
struct reorder_ref {
	uint64_t ts;
	size_t seq; /* arrival order: qsort is not stable */
	size_t off; /* in the arena */
	size_t size;
};

struct reorder {
	uint8_t *arena;
	size_t used, cap;
	struct reorder_ref *refs;
	size_t n, n_cap;
};

struct reorder *reorder_new(void)
{
	return calloc(1, sizeof(struct reorder));
}

void reorder_free(struct reorder *r)
{
	if (!r)
		return;
	free(r->arena);
	free(r->refs);
	free(r);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int reorder_add(struct reorder *r, const void *sample, size_t size)
{
	const char *ev = sample;
	size_t keep, aligned;
	__u64 ts;
	__u32 len;

	/* Fields read with memcpy: the sample may sit unaligned in the perf ring. */
	memcpy(&ts, ev + offsetof(struct ecv_event, ts_ns), sizeof(ts));
	memcpy(&len, ev + offsetof(struct ecv_event, len), sizeof(len));
	keep = ECV_EVENT_HDR_LEN + (len < ECV_CHUNK_SIZE ? len : ECV_CHUNK_SIZE);

	if (keep > size)
		keep = size; /* conn_handle() rejects it; the size it saw is kept */
	aligned = (keep + 7) & ~(size_t)7;
	if (grow((void **)&r->arena, &r->cap, r->used + aligned, 1) ||
	    grow((void **)&r->refs, &r->n_cap, r->n + 1, sizeof(*r->refs)))
		return -ENOMEM;
	memcpy(r->arena + r->used, ev, keep);
	r->refs[r->n] = (struct reorder_ref){ .ts = ts, .seq = r->n, .off = r->used, .size = keep };
	r->n++;
	r->used += aligned;
	return 0;
}

static int ref_cmp(const void *a, const void *b)
{
	const struct reorder_ref *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t reorder_drain(struct reorder *r, reorder_fn fn, void *ctx)
{
	size_t n = r->n;

	if (!n)
		return 0; /* refs may not be allocated yet: qsort() must not be given NULL */
	qsort(r->refs, r->n, sizeof(*r->refs), ref_cmp);
	for (size_t i = 0; i < r->n; i++)
		fn(ctx, (const struct ecv_event *)(r->arena + r->refs[i].off), r->refs[i].size);
	r->n = 0;
	r->used = 0;
	return n;
}
