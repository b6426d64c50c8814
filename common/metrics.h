/* common/metrics.h - a small registry of counters and gauges rendered as Prometheus text.
 * Owns: metric storage (lock-free atomic updates) and the text exposition format.
 * Does not own: HTTP (httpd.h). Registration is not thread-safe (do it at start-up);
 * updates and rendering are. */
#ifndef ECV_METRICS_H
#define ECV_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;
struct metric;

/* Gauge whose value is read at render time. */
typedef double (*metric_read_fn)(void *ctx);

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m); /* NULL-safe */

/* Registers a counter (monotonic, name should end in _total) or a gauge. labels is
 * either NULL or a Prometheus label list without braces, e.g. "out=\"pcap0\"" (label
 * values are escaped by the caller with metrics_escape()). Metrics sharing a name share
 * one HELP/TYPE header. Returns the metric (owned by m) or NULL with errno set. */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     const char *labels);
struct metric *metrics_gauge_fn(struct metrics *m, const char *name, const char *help,
				const char *labels, metric_read_fn fn, void *ctx);

void metric_add(struct metric *x, uint64_t n); /* NULL-safe, atomic */
void metric_inc(struct metric *x);	       /* NULL-safe, atomic */
void metric_set(struct metric *x, int64_t v);  /* NULL-safe, atomic; gauges */
int64_t metric_get(const struct metric *x);

/* Renders every metric in registration order as Prometheus text format 0.0.4.
 * Returns a malloc'd NUL-terminated string (caller frees) and its length in *len, or
 * NULL with errno set. */
char *metrics_render(struct metrics *m, size_t *len);
/* Escapes a label value (backslash, double quote, newline) into out. Returns out. */
char *metrics_escape(const char *in, char *out, size_t cap);

#endif
