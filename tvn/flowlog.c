/* tvn/flowlog.c - one JSON line per finished flow. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowlog.h"
#include "log.h"

struct flowlog {
	FILE *f;
	pthread_mutex_t lock;
	bool err_logged; /* one error line, not one per flow */
	char path[256];
};

/* Logs the first write error; later lines keep being tried (the disk may free up). */
static void check_write(struct flowlog *fl, int ret)
{
	int err = errno ? errno : EIO;

	if (ret == 0 && !ferror(fl->f))
		return;
	clearerr(fl->f);
	if (!fl->err_logged)
		log_err("failed to write flow log %s: %s (lines are lost)", fl->path,
			strerror(err));
	fl->err_logged = true;
}

struct flowlog *flowlog_new(const char *path)
{
	struct flowlog *fl = calloc(1, sizeof(*fl));

	if (!fl)
		return NULL;
	fl->f = fopen(path, "a");
	if (!fl->f) {
		int err = errno;

		log_err("failed to open flow log %s: %s", path, strerror(errno));
		free(fl);
		errno = err;
		return NULL;
	}
	snprintf(fl->path, sizeof(fl->path), "%s", path);
	pthread_mutex_init(&fl->lock, NULL);
	return fl;
}

void flowlog_free(struct flowlog *fl)
{
	if (!fl)
		return;
	if (fclose(fl->f) && !fl->err_logged)
		log_err("failed to write flow log %s: %s", fl->path, strerror(errno));
	pthread_mutex_destroy(&fl->lock);
	free(fl);
}

static json_t *source_json(const struct dedup_src *s)
{
	static const uint8_t zero[14];
	char a[TUPLE_ADDR_STRLEN];
	json_t *o = json_pack("{s:s, s:I}", "addr", tuple_addr_str(s->addr, a), "vni",
			      (json_int_t)s->vni);

	/* Offline inner-frame captures: the source is the file (--read order, from 1). */
	if (o && !s->vni && !memcmp(s->addr, zero, sizeof(zero)))
		json_object_set_new(o, "file", json_integer((s->addr[14] << 8) | s->addr[15]));
	return o;
}

static json_t *meta_json(const struct meta_flow *m)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:[I,I], s:I}", "event",
			      m->event == META_END ? "end" : "start", "role", m->role, "from_start",
			      m->from_start, "pid", (json_int_t)m->pid, "bytes",
			      (json_int_t)m->bytes[0], (json_int_t)m->bytes[1], "lost",
			      (json_int_t)m->lost);

	/* Only what the agent told us: empty strings are absent, not "". */
	if (o && m->node[0])
		json_object_set_new(o, "node", json_string(m->node));
	if (o && m->comm[0])
		json_object_set_new(o, "comm", json_string(m->comm));
	if (o && m->exe[0])
		json_object_set_new(o, "exe", json_string(m->exe));
	if (o && m->cgroup[0])
		json_object_set_new(o, "cgroup", json_string(m->cgroup));
	if (o && m->container[0])
		json_object_set_new(o, "container", json_string(m->container));
	if (o && m->lib[0])
		json_object_set_new(o, "lib", json_string(m->lib));
	return o;
}

/* {"client": {...}, "server": {...}}: the ends the metadata named, each once. */
static json_t *ends_json(const struct dedup_end ends[2])
{
	static const char *const role[2] = { "client", "server" };
	json_t *o = json_object(), *e;
	int i;

	for (i = 0; o && i < 2; i++) {
		if (!ends[i].pid && !ends[i].comm[0] && !ends[i].container[0])
			continue;
		e = json_pack("{s:I}", "pid", (json_int_t)ends[i].pid);
		if (e && ends[i].comm[0])
			json_object_set_new(e, "comm", json_string(ends[i].comm));
		if (e && ends[i].container[0])
			json_object_set_new(e, "container", json_string(ends[i].container));
		json_object_set_new(o, role[i], e);
	}
	return o;
}

json_t *flowlog_flow_json(const struct dedup_flow_info *f)
{
	char s[TUPLE_ADDR_STRLEN], d[TUPLE_ADDR_STRLEN];
	json_t *o, *srcs;
	unsigned i;

	srcs = json_array();
	if (!srcs)
		return NULL;
	for (i = 0; i < f->n_sources && i < DEDUP_MAX_SOURCES; i++)
		json_array_append_new(srcs, source_json(&f->sources[i]));
	o = json_pack("{s:s, s:i, s:s, s:i, s:i, s:[I,I], s:I, s:I, s:o, s:I, s:I, s:I, s:I, "
		      "s:I, s:I, s:I, s:b}",
		      "src", tuple_addr_str(f->tuple.saddr, s), "sport", f->tuple.sport, "dst",
		      tuple_addr_str(f->tuple.daddr, d), "dport", f->tuple.dport, "proto",
		      f->tuple.proto, "isn", (json_int_t)f->isn[0], (json_int_t)f->isn[1],
		      "first_ns", (json_int_t)f->first_ns, "last_ns", (json_int_t)f->last_ns,
		      "sources", srcs, "pkts_in", (json_int_t)f->pkts_in, "bytes_in",
		      (json_int_t)f->bytes_in, "pkts_out", (json_int_t)f->pkts_out, "bytes_out",
		      (json_int_t)f->bytes_out, "pkts_dropped", (json_int_t)f->pkts_dropped,
		      "bytes_dropped", (json_int_t)f->bytes_dropped, "overlap_conflicts",
		      (json_int_t)f->overlap_conflicts, "mid_stream", f->mid_stream);
	if (!o)
		return NULL;
	if (f->kept_source >= 0 && (unsigned)f->kept_source < f->n_sources)
		json_object_set_new(o, "kept", source_json(&f->sources[f->kept_source]));
	else
		json_object_set_new(o, "kept", json_null());
	if (f->have_meta) {
		json_object_set_new(o, "meta", meta_json(&f->meta));
		json_object_set_new(o, "ends", ends_json(f->ends));
	}
	return o;
}

void flowlog_end(void *ctx, const struct dedup_flow_info *f)
{
	struct flowlog *fl = ctx;
	json_t *o = flowlog_flow_json(f);
	char *line;

	if (!o)
		return;
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!line)
		return;
	pthread_mutex_lock(&fl->lock);
	/* Flushed per line: readers tail the log, and a crash must not eat the last flows. */
	errno = 0;
	fputs(line, fl->f);
	fputc('\n', fl->f);
	check_write(fl, fflush(fl->f));
	pthread_mutex_unlock(&fl->lock);
	free(line);
}
