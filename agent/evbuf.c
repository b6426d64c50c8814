/* agent/evbuf.c - the event transport from the BPF programs to the agent (evbuf.h). */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "evbuf.h"
#include "log.h"

struct evbuf {
	struct perf_buffer *pb; /* one of pb and rb */
	struct ring_buffer *rb;
	const volatile __u64 *ring_lost; /* BPF counter (rb only) */
	uint64_t ring_lost_seen;
	size_t round_bytes, round_limit; /* bytes handed on this round, and the cap */
	struct evbuf_sink sink;
	int handled;
};

/* Hands the record on where it sits in the ring (no copy: the consumer reads a ring
 * buffer record in place and copies a perf sample once, to an aligned place, see
 * probe_event_fn); only its length fields are checked. */
static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct evbuf *e = ctx;
	__u32 len;

	(void)cpu;
	e->handled++;
	if (size < ECV_EVENT_HDR_LEN) {
		log_debug("dropping short event record (%u bytes)", size);
		return;
	}
	/* Perf samples are padded to 8 bytes, ring records to their size class: anything
	 * past the struct is padding. */
	if (size > sizeof(struct ecv_event))
		size = sizeof(struct ecv_event);
	memcpy(&len, (const char *)data + offsetof(struct ecv_event, len), sizeof(len));
	if (len > size - ECV_EVENT_HDR_LEN) {
		log_debug("dropping event record with len %u > %u", len,
			  (unsigned)(size - ECV_EVENT_HDR_LEN));
		return;
	}
	if (e->sink.on_event)
		e->sink.on_event(e->sink.ctx, data, size);
}

static void on_lost_sample(void *ctx, int cpu, __u64 count)
{
	struct evbuf *e = ctx;

	if (e->sink.on_lost)
		e->sink.on_lost(e->sink.ctx, cpu, count);
}

/* A perf ring record as the kernel writes it (perf_event_open(2), PERF_SAMPLE_RAW). */
struct perf_sample_raw {
	struct perf_event_header hdr;
	__u32 size;
	char data[];
};

struct perf_lost {
	struct perf_event_header hdr;
	__u64 id;
	__u64 lost;
};

static enum bpf_perf_event_ret on_record(void *ctx, int cpu, struct perf_event_header *h)
{
	if (h->type == PERF_RECORD_SAMPLE) {
		struct perf_sample_raw *s = (struct perf_sample_raw *)h;

		on_sample(ctx, cpu, s->data, s->size);
	} else if (h->type == PERF_RECORD_LOST) {
		struct perf_lost *l = (struct perf_lost *)h;

		on_lost_sample(ctx, cpu, l->lost);
	}
	return LIBBPF_PERF_EVENT_CONT;
}

/* perf_buffer__new() asks for a wakeup per sample: at 10^4..10^5 samples a second the
 * writer's CPU pays a wakeup each and the agent runs one round per sample. Here a ring
 * wakes the agent once a quarter of it is filled; evbuf_poll() then drains every ring
 * (perf_buffer__consume()), so what sits below the mark waits at most one poll timeout. */
struct evbuf *evbuf_perf_new(int map_fd, unsigned pages, const struct evbuf_sink *sink)
{
	struct perf_event_attr attr;
	struct evbuf *e = calloc(1, sizeof(*e));
	int err;

	if (!e)
		return NULL;
	e->sink = *sink;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_BPF_OUTPUT;
	attr.sample_type = PERF_SAMPLE_RAW;
	attr.sample_period = 1;
	attr.watermark = 1;
	attr.wakeup_watermark = (__u32)((uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE) / 4);
	e->pb = perf_buffer__new_raw(map_fd, pages, &attr, on_record, e, NULL);
	if (!e->pb) {
		err = errno;
		free(e);
		errno = err;
		return NULL;
	}
	return e;
}

/* Returned by the record callback to end a round (libbpf then stops, the record
 * consumed): a producer as fast as the agent would otherwise keep one round going, and
 * nothing would be shipped while the reorder buffer grows. */
#define ROUND_FULL (-ECANCELED)

static int on_ring_record(void *ctx, void *data, size_t size)
{
	struct evbuf *e = ctx;

	on_sample(ctx, -1, data, (__u32)size);
	e->round_bytes += size;
	return e->round_bytes >= e->round_limit ? ROUND_FULL : 0;
}

/* The BPF side wakes the consumer per batch (a data mark or a time since the last
 * wake-up, bpf/ecv.bpf.c), so one poll here drains many records. */
struct evbuf *evbuf_ring_new(int map_fd, size_t ring_bytes, const volatile __u64 *lost,
			     const struct evbuf_sink *sink)
{
	struct evbuf *e = calloc(1, sizeof(*e));
	int err;

	if (!e)
		return NULL;
	e->sink = *sink;
	e->ring_lost = lost;
	/* A quarter of the ring per round: about what the perf buffers of a small node
	 * hand over per round. */
	e->round_limit = ring_bytes / 4;
	e->ring_lost_seen = __atomic_load_n(lost, __ATOMIC_RELAXED);
	e->rb = ring_buffer__new(map_fd, on_ring_record, e, NULL);
	if (!e->rb) {
		err = errno;
		free(e);
		errno = err;
		return NULL;
	}
	return e;
}

static int ring_poll(struct evbuf *e, int timeout_ms)
{
	uint64_t lost;
	int err;

	e->round_bytes = 0;
	err = ring_buffer__poll(e->rb, timeout_ms);
	if (err < 0 && err != -EINTR && err != ROUND_FULL)
		return err;
	/* Records committed without a wake-up, when the timeout ended the wait. */
	if (err != ROUND_FULL) {
		err = ring_buffer__consume(e->rb);
		if (err < 0 && err != -EINTR && err != ROUND_FULL)
			return err;
	}
	lost = __atomic_load_n(e->ring_lost, __ATOMIC_RELAXED);
	if (lost != e->ring_lost_seen && e->sink.on_lost)
		e->sink.on_lost(e->sink.ctx, -1, lost - e->ring_lost_seen);
	e->ring_lost_seen = lost;
	return e->handled;
}

int evbuf_poll(struct evbuf *e, int timeout_ms)
{
	int err;

	e->handled = 0;
	if (e->rb)
		return ring_poll(e, timeout_ms);
	err = perf_buffer__poll(e->pb, timeout_ms);
	if (err < 0 && err != -EINTR)
		return err;
	/* Rings below their wakeup mark, and the rest of the ones that woke us. */
	err = perf_buffer__consume(e->pb);
	if (err < 0 && err != -EINTR)
		return err;
	return e->handled;
}

void evbuf_free(struct evbuf *e)
{
	if (!e)
		return;
	perf_buffer__free(e->pb);
	ring_buffer__free(e->rb);
	free(e);
}
