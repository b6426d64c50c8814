/* common/metrics.c - counters and gauges rendered as Prometheus text format 0.0.4. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_GAUGE_FN };

struct metric {
	struct metric *next; /* registration order */
	enum metric_type type;
	uint64_t value; /* __atomic_* only; gauges store int64_t bits */
	metric_read_fn fn;
	void *ctx;
	char *name;
	char *help;
	char *labels; /* NULL when the metric has none */
};

struct metrics {
	struct metric *head;
	struct metric *tail;
};

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

static void metric_free(struct metric *x)
{
	if (!x)
		return;
	free(x->name);
	free(x->help);
	free(x->labels);
	free(x);
}

void metrics_free(struct metrics *m)
{
	struct metric *x, *next;

	if (!m)
		return;
	for (x = m->head; x; x = next) {
		next = x->next;
		metric_free(x);
	}
	free(m);
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool name_valid(const char *s)
{
	const char *p;

	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (p = s; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			return false;
	}
	return true;
}

static struct metric *metric_register(struct metrics *m, enum metric_type type, const char *name,
				      const char *help, const char *labels, metric_read_fn fn,
				      void *ctx)
{
	struct metric *x, *it;
	bool counter = type == METRIC_COUNTER;

	if (!m || !name_valid(name) || (type == METRIC_GAUGE_FN && !fn) ||
	    (labels && strchr(labels, '\n'))) {
		errno = EINVAL;
		return NULL;
	}
	if (labels && !*labels)
		labels = NULL;
	for (it = m->head; it; it = it->next) {
		if (strcmp(it->name, name))
			continue;
		/* One name is one family: one type, and each label set once. */
		if ((it->type == METRIC_COUNTER) != counter) {
			errno = EINVAL;
			return NULL;
		}
		if ((!labels && !it->labels) ||
		    (labels && it->labels && !strcmp(labels, it->labels))) {
			errno = EEXIST;
			return NULL;
		}
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->type = type;
	x->fn = fn;
	x->ctx = ctx;
	x->name = strdup(name);
	x->help = strdup(help ? help : "");
	x->labels = labels ? strdup(labels) : NULL;
	if (!x->name || !x->help || (labels && !x->labels)) {
		metric_free(x);
		errno = ENOMEM;
		return NULL;
	}
	if (m->tail)
		m->tail->next = x;
	else
		m->head = x;
	m->tail = x;
	return x;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       const char *labels)
{
	return metric_register(m, METRIC_COUNTER, name, help, labels, NULL, NULL);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     const char *labels)
{
	return metric_register(m, METRIC_GAUGE, name, help, labels, NULL, NULL);
}

struct metric *metrics_gauge_fn(struct metrics *m, const char *name, const char *help,
				const char *labels, metric_read_fn fn, void *ctx)
{
	return metric_register(m, METRIC_GAUGE_FN, name, help, labels, fn, ctx);
}

void metric_add(struct metric *x, uint64_t n)
{
	if (x)
		__atomic_fetch_add(&x->value, n, __ATOMIC_RELAXED);
}

void metric_inc(struct metric *x)
{
	metric_add(x, 1);
}

void metric_set(struct metric *x, int64_t v)
{
	if (x)
		__atomic_store_n(&x->value, (uint64_t)v, __ATOMIC_RELAXED);
}

int64_t metric_get(const struct metric *x)
{
	if (!x)
		return 0;
	if (x->type == METRIC_GAUGE_FN) {
		double v = x->fn(x->ctx);

		/* Converting NaN or an out-of-range double is undefined behaviour. */
		if (isnan(v))
			return 0;
		if (v >= 9223372036854775807.0)
			return INT64_MAX;
		if (v <= -9223372036854775808.0)
			return INT64_MIN;
		return (int64_t)v;
	}
	return (int64_t)__atomic_load_n(&x->value, __ATOMIC_RELAXED);
}

char *metrics_escape(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	if (!cap)
		return out;
	for (; in && *in; in++) {
		const char *rep = NULL;
		char one[2] = { *in, '\0' };
		size_t n;

		if (*in == '\\')
			rep = "\\\\";
		else if (*in == '"')
			rep = "\\\"";
		else if (*in == '\n')
			rep = "\\n";
		else
			rep = one;
		n = strlen(rep);
		if (o + n >= cap)
			break; /* truncate whole escapes only */
		memcpy(out + o, rep, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

/* HELP text escapes backslash and newline (exposition format 0.0.4). */
static void put_help(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_sample(FILE *f, const struct metric *x)
{
	fputs(x->name, f);
	if (x->labels)
		fprintf(f, "{%s}", x->labels);
	if (x->type == METRIC_COUNTER) {
		fprintf(f, " %" PRIu64 "\n", __atomic_load_n(&x->value, __ATOMIC_RELAXED));
	} else if (x->type == METRIC_GAUGE) {
		fprintf(f, " %" PRId64 "\n", (int64_t)__atomic_load_n(&x->value, __ATOMIC_RELAXED));
	} else {
		double v = x->fn(x->ctx);

		if (isnan(v))
			fputs(" NaN\n", f);
		else if (isinf(v))
			fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
		else if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v)
			fprintf(f, " %" PRId64 "\n", (int64_t)v);
		else
			fprintf(f, " %.17g\n", v);
	}
}

char *metrics_render(struct metrics *m, size_t *len)
{
	const struct metric *x, *y, *prev;
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	if (!m) {
		errno = EINVAL;
		return NULL;
	}
	f = open_memstream(&text, &size);
	if (!f)
		return NULL;
	for (x = m->head; x; x = x->next) {
		bool seen = false;

		/* A family's samples must be contiguous: print all of them at its first
		 * registration. Registries are small, so the quadratic walk is fine. */
		for (prev = m->head; prev != x; prev = prev->next) {
			if (!strcmp(prev->name, x->name)) {
				seen = true;
				break;
			}
		}
		if (seen)
			continue;
		fprintf(f, "# HELP %s ", x->name);
		put_help(f, x->help);
		fprintf(f, "\n# TYPE %s %s\n", x->name,
			x->type == METRIC_COUNTER ? "counter" : "gauge");
		for (y = x; y; y = y->next) {
			if (!strcmp(y->name, x->name))
				put_sample(f, y);
		}
	}
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	if (len)
		*len = size;
	return text;
}
