/* tvn/shard.c - dedup workers fed through SPSC rings. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"
#include "shard.h"

enum srec_kind { SREC_FRAME = 0, SREC_META, SREC_TICK, SREC_FLUSH };

/* A ring record; the frame bytes or a struct meta_flow follow. */
struct srec {
	uint64_t ts_ns;
	uint32_t kind;
	uint32_t len;
	struct dedup_src src;
	struct pkt_info info;
};

struct shard {
	struct shard_set *set;
	unsigned idx;
	struct dedup *dedup;
	struct ring *ring;
	pthread_t thread;
	bool started;
	uint64_t last_expire_ns;
	/* published counters */
	pthread_mutex_t lock;
	struct dedup_stats snap;
	/* flush handshake */
	_Atomic uint64_t flush_req, flush_done;
	/* foreach request, served by the worker between batches */
	_Atomic int req_pending;
	int (*req_fn)(void *ctx, const struct dedup_flow_info *f);
	void *req_ctx;
	int req_ret;
	pthread_cond_t req_cond;
};

struct shard_set {
	struct shard_cfg cfg;
	struct egress *eg;
	dedup_end_fn end;
	void *end_ctx;
	struct shard *shards;
	unsigned n;
	_Atomic bool stop;
	uint64_t inline_count;
	pthread_mutex_t req_lock; /* one foreach at a time */
};

unsigned shard_producers(const struct shard_cfg *cfg)
{
	return cfg->n_threads ? cfg->n_threads : 1;
}

static void shard_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts_ns,
		       const struct dedup_src *src)
{
	struct shard *sh = ctx;

	egress_push(sh->set->eg, sh->idx, frame, len, ts_ns, src);
}

static void shard_end(void *ctx, const struct dedup_flow_info *flow)
{
	struct shard *sh = ctx;

	if (sh->set->end)
		sh->set->end(sh->set->end_ctx, flow);
}

static void publish(struct shard *sh)
{
	pthread_mutex_lock(&sh->lock);
	dedup_get_stats(sh->dedup, &sh->snap);
	pthread_mutex_unlock(&sh->lock);
}

static void serve_request(struct shard *sh)
{
	if (!atomic_load_explicit(&sh->req_pending, memory_order_acquire))
		return;
	pthread_mutex_lock(&sh->lock);
	/* The requester may have given up (timeout) while we were busy. */
	if (atomic_load(&sh->req_pending))
		sh->req_ret = dedup_foreach(sh->dedup, sh->req_fn, sh->req_ctx);
	atomic_store(&sh->req_pending, 0);
	pthread_cond_broadcast(&sh->req_cond);
	pthread_mutex_unlock(&sh->lock);
}

static void expire(struct shard *sh, uint64_t now_ns)
{
	/* Expiry walks the table: once a second of (capture or wall) time is enough. */
	if (now_ns - sh->last_expire_ns < 1000000000ull && now_ns >= sh->last_expire_ns)
		return;
	sh->last_expire_ns = now_ns;
	dedup_expire(sh->dedup, now_ns);
}

static void process(struct shard *sh, struct srec *r)
{
	uint8_t *data = (uint8_t *)(r + 1);

	switch (r->kind) {
	case SREC_FRAME:
		/* info was parsed in the ingest thread; point it at our copy. */
		r->info.payload = data + r->info.payload_off;
		dedup_input(sh->dedup, data, r->len, &r->info, &r->src, r->ts_ns);
		break;
	case SREC_META:
		dedup_meta(sh->dedup, (const struct meta_flow *)data, &r->src, r->ts_ns);
		break;
	case SREC_TICK:
		expire(sh, r->ts_ns);
		break;
	case SREC_FLUSH:
		dedup_flush(sh->dedup);
		publish(sh);
		atomic_fetch_add(&sh->flush_done, 1);
		break;
	}
}

static void *shard_thread(void *arg)
{
	struct shard *sh = arg;
	unsigned got, quiet = 0;
	size_t len;
	void *data;

	for (;;) {
		bool stopping = atomic_load(&sh->set->stop);

		got = 0;
		while (got < 1024 && (data = ring_peek(sh->ring, &len))) {
			process(sh, data);
			ring_release(sh->ring);
			got++;
		}
		if (got) {
			publish(sh);
			serve_request(sh);
			quiet = 0;
			continue;
		}
		serve_request(sh);
		if (stopping)
			break;
		usleep(quiet < 10 ? 200 : 1000);
		quiet++;
	}
	publish(sh);
	return NULL;
}

struct shard_set *shard_set_new(const struct shard_cfg *cfg, struct egress *eg, dedup_end_fn end,
				void *end_ctx)
{
	struct shard_set *s;
	unsigned i;
	int err = 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->eg = eg;
	s->end = end;
	s->end_ctx = end_ctx;
	s->n = shard_producers(cfg);
	pthread_mutex_init(&s->req_lock, NULL);
	s->shards = calloc(s->n, sizeof(*s->shards));
	if (!s->shards) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < s->n; i++) {
		struct shard *sh = &s->shards[i];
		struct dedup_cfg dc = cfg->dedup;

		sh->set = s;
		sh->idx = i;
		pthread_mutex_init(&sh->lock, NULL);
		pthread_cond_init(&sh->req_cond, NULL);
		/* The table bound is for the whole process: split it between shards. */
		dc.max_flows = cfg->dedup.max_flows / s->n ? cfg->dedup.max_flows / s->n : 1;
		sh->dedup = dedup_new(&dc, shard_emit, shard_end, sh);
		if (!sh->dedup) {
			err = -errno;
			log_err("failed to create dedup engine: %s", strerror(errno));
			goto cleanup;
		}
		if (cfg->n_threads) {
			sh->ring = ring_new(cfg->ring_bytes);
			if (!sh->ring) {
				err = -ENOMEM;
				goto cleanup;
			}
		}
	}
	for (i = 0; cfg->n_threads && i < s->n; i++) {
		err = -pthread_create(&s->shards[i].thread, NULL, shard_thread, &s->shards[i]);
		if (err) {
			log_err("failed to start shard thread: %s", strerror(-err));
			goto cleanup;
		}
		s->shards[i].started = true;
	}
	return s;
cleanup:
	shard_set_free(s);
	errno = -err;
	return NULL;
}

void shard_set_free(struct shard_set *s)
{
	unsigned i;

	if (!s)
		return;
	atomic_store(&s->stop, true);
	for (i = 0; s->shards && i < s->n; i++) {
		struct shard *sh = &s->shards[i];

		if (sh->started)
			pthread_join(sh->thread, NULL);
		dedup_free(sh->dedup);
		ring_free(sh->ring);
		pthread_mutex_destroy(&sh->lock);
		pthread_cond_destroy(&sh->req_cond);
	}
	pthread_mutex_destroy(&s->req_lock);
	free(s->shards);
	free(s);
}

static struct srec *reserve(struct shard_set *s, struct shard *sh, size_t extra)
{
	struct srec *r;

	while (!(r = ring_reserve(sh->ring, sizeof(*r) + extra))) {
		if (!s->cfg.block || extra + sizeof(*r) > ring_max_record(sh->ring))
			return NULL;
		usleep(50);
	}
	return r;
}

static void inline_housekeeping(struct shard_set *s)
{
	/* Inline mode has no worker loop: publish and serve /flows every few packets. */
	if ((++s->inline_count & 1023) == 0) {
		publish(&s->shards[0]);
		serve_request(&s->shards[0]);
	}
}

int shard_submit(struct shard_set *s, const struct ingest_pkt *p, uint64_t ts_ns)
{
	const struct ecv_tuple *t = p->kind == INGEST_META ? &p->meta.tuple : &p->info.tuple;
	struct shard *sh = &s->shards[s->n == 1 ? 0 : tuple_hash(t) % s->n];
	struct srec *r;

	if (!s->cfg.n_threads) {
		if (p->kind == INGEST_META)
			dedup_meta(sh->dedup, &p->meta, &p->src, ts_ns);
		else
			dedup_input(sh->dedup, p->frame, p->len, &p->info, &p->src, ts_ns);
		inline_housekeeping(s);
		return 0;
	}
	if (p->kind == INGEST_META) {
		r = reserve(s, sh, sizeof(p->meta));
		if (!r)
			return -ENOBUFS;
		r->kind = SREC_META;
		r->len = sizeof(p->meta);
		memcpy(r + 1, &p->meta, sizeof(p->meta));
	} else {
		r = reserve(s, sh, p->len);
		if (!r)
			return -ENOBUFS;
		r->kind = SREC_FRAME;
		r->len = (uint32_t)p->len;
		r->info = p->info;
		memcpy(r + 1, p->frame, p->len);
	}
	r->ts_ns = ts_ns;
	r->src = p->src;
	ring_commit(sh->ring);
	return 0;
}

static void push_control(struct shard_set *s, struct shard *sh, uint32_t kind, uint64_t ts_ns)
{
	struct srec *r;

	/* Control records must not be lost: wait for space even in live mode. */
	while (!(r = ring_reserve(sh->ring, sizeof(*r))))
		usleep(100);
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->ts_ns = ts_ns;
	ring_commit(sh->ring);
	(void)s;
}

void shard_service(struct shard_set *s)
{
	if (s->cfg.n_threads)
		return;
	publish(&s->shards[0]);
	serve_request(&s->shards[0]);
}

void shard_tick(struct shard_set *s, uint64_t now_ns)
{
	unsigned i;

	if (!s->cfg.n_threads) {
		expire(&s->shards[0], now_ns);
		publish(&s->shards[0]);
		serve_request(&s->shards[0]);
		return;
	}
	for (i = 0; i < s->n; i++)
		push_control(s, &s->shards[i], SREC_TICK, now_ns);
}

void shard_flush(struct shard_set *s)
{
	unsigned i;

	if (!s->cfg.n_threads) {
		dedup_flush(s->shards[0].dedup);
		publish(&s->shards[0]);
		return;
	}
	for (i = 0; i < s->n; i++) {
		atomic_fetch_add(&s->shards[i].flush_req, 1);
		push_control(s, &s->shards[i], SREC_FLUSH, 0);
	}
	for (i = 0; i < s->n; i++)
		while (atomic_load(&s->shards[i].flush_done) < atomic_load(&s->shards[i].flush_req))
			usleep(200);
}

void shard_get_stats(struct shard_set *s, struct dedup_stats *sum)
{
	unsigned i;

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < s->n; i++) {
		struct shard *sh = &s->shards[i];
		struct dedup_stats st;

		pthread_mutex_lock(&sh->lock);
		st = sh->snap;
		pthread_mutex_unlock(&sh->lock);
		sum->rx_packets += st.rx_packets;
		sum->rx_bytes += st.rx_bytes;
		sum->emitted_packets += st.emitted_packets;
		sum->emitted_bytes += st.emitted_bytes;
		sum->dropped_packets += st.dropped_packets;
		sum->trimmed_packets += st.trimmed_packets;
		sum->dup_bytes += st.dup_bytes;
		sum->overlap_conflicts += st.overlap_conflicts;
		sum->table_full += st.table_full;
		sum->source_limited += st.source_limited;
		sum->meta_frames += st.meta_frames;
		sum->flows_active += st.flows_active;
		sum->flows_total += st.flows_total;
		sum->flows_expired += st.flows_expired;
	}
}

int shard_foreach_flow(struct shard_set *s, int (*fn)(void *ctx, const struct dedup_flow_info *f),
		       void *ctx)
{
	struct timespec deadline;
	unsigned i;
	int ret = 0;

	pthread_mutex_lock(&s->req_lock);
	for (i = 0; i < s->n && !ret; i++) {
		struct shard *sh = &s->shards[i];

		pthread_mutex_lock(&sh->lock);
		sh->req_fn = fn;
		sh->req_ctx = ctx;
		sh->req_ret = 0;
		atomic_store_explicit(&sh->req_pending, 1, memory_order_release);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 2;
		while (atomic_load(&sh->req_pending)) {
			/* serve_request() takes sh->lock, so waiting releases it. */
			if (pthread_cond_timedwait(&sh->req_cond, &sh->lock, &deadline) ==
			    ETIMEDOUT) {
				atomic_store(&sh->req_pending, 0);
				ret = -ETIMEDOUT;
				break;
			}
		}
		if (!ret)
			ret = sh->req_ret;
		pthread_mutex_unlock(&sh->lock);
	}
	pthread_mutex_unlock(&s->req_lock);
	return ret;
}
