/* tests/unit/dedup_harness.h - what the dedup suites (tests/unit/test_tvn_dedup*.c) share.
 *
 * Fixtures: every connection is synthesized here the way an agent does it (pkt_segment,
 * seq = ISN + 1 + offset, SYN/SYN-ACK/ACK, data as alternating request/response
 * messages, FINs), once per node copy with that copy's MTU, then the copies are merged
 * by timestamp and fed to the engine. The sink re-parses every emitted frame, checks its
 * checksums, and reassembles each direction by sequence number, counting how often each
 * byte, SYN and FIN was delivered: the tests assert "every byte exactly once, equal to
 * the original" plus the counters.
 *
 * A test reads as its scenario: run_setup() names the connection and what differs from
 * the default engine and node copies, run_gen*() makes the copies, the test loses or adds
 * frames, run_feed() (or run_both() for the copies as made) feeds them by time; then what
 * must have come out. Defined in dedup_harness.c; the assertions are Check's, so these
 * run inside a test. */
#ifndef ECV_TESTS_DEDUP_HARNESS_H
#define ECV_TESTS_DEDUP_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../tvn/dedup.h"
#include "meta.h"
#include "pkt.h"
#include "tuple.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define MAX_CONNS 4

/* --- frame lists ---------------------------------------------------------- */

struct fr {
	uint8_t *b;
	size_t len;
	uint64_t ts;
	int src;
	int dir;
};

struct frl {
	struct fr *v;
	size_t n, cap;
};

void frl_add(struct frl *l, const uint8_t *b, size_t len, uint64_t ts, int src, int dir);
void frl_free(struct frl *l);
void frl_remove(struct frl *l, size_t i);

/* Moves every frame of src into dst, keeping dst sorted by time (then by source). */
void frl_merge(struct frl *dst, struct frl *src);

/* --- connections and their synthesized copies ------------------------------ */

struct conn {
	struct ecv_tuple t[2]; /* [0] client -> server, [1] server -> client */
	uint32_t isn[2];
	uint8_t *data[2];
	size_t len[2];
};

void conn_init4(struct conn *c, const char *cli, uint16_t cport, const char *srv, uint16_t sport,
		size_t c2s, size_t s2c, uint32_t seed);

/* How one node's copy of a connection is made. */
struct copy_opts {
	int src;	  /* index of the dedup_src it comes from */
	unsigned mtu;	  /* inner IP MTU: sets the segmentation */
	uint64_t t0;	  /* time of the first frame */
	uint64_t step;	  /* time between frames */
	bool handshake;	  /* SYN, SYN-ACK, ACK */
	bool fins;	  /* FIN from both sides, last ACK */
	size_t msg;	  /* bytes per application message (alternating directions) */
	size_t from[2];	  /* mid-stream: first offset per direction (0 = from the start) */
	uint8_t mac_last; /* distinguishes the node's MACs */
	uint8_t ttl;	  /* 0 = as built (64) */
	uint16_t vlan;	  /* 802.1Q tag on every frame, 0 = none */
	bool rst;	  /* end with a RST from the server instead of FINs */
	/* As the agent synthesizes: MSS and window scale 14 on SYN and SYN-ACK, and a bare
	 * ACK from the reading side after each message. */
	bool agent;
};

struct gen_ctx {
	struct frl *out;
	uint64_t *ts;
	uint64_t step;
	int src, dir;
	uint8_t ttl;
};

void set_ttl(uint8_t *b, size_t len, uint8_t ttl);
void gen_seg(struct gen_ctx *g, const struct conn *c, const struct copy_opts *o, int dir,
	     uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *p, size_t n,
	     uint16_t *ip_id);

/* Appends one node's copy of c to out. */
void gen_copy(struct frl *out, const struct conn *c, const struct copy_opts *o);

/* --- the sink: what the tools would receive ------------------------------- */

struct sink {
	const struct conn *c[MAX_CONNS];
	unsigned nconns;
	uint8_t *got[MAX_CONNS][2];
	uint8_t *cnt[MAX_CONNS][2];
	unsigned syn[MAX_CONNS][2], fin[MAX_CONNS][2];
	size_t frames, bad_csum, other, out_of_range, rst, vlan_mismatch, fin_early;
	uint16_t want_vlan;
	size_t from_src[4];
	struct dedup_src srcs[4];
	/* end() reports */
	struct dedup_flow_info ended[8];
	unsigned nended;
	struct frl *log; /* when set, every emitted frame in order, with its timestamp */
};

void sink_add(struct sink *s, const struct conn *c);
void sink_reset(struct sink *s);
void sink_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts,
	       const struct dedup_src *src);
void sink_end(void *ctx, const struct dedup_flow_info *f);

/* Every byte of connection i delivered exactly once and equal to the original; SYN and
 * FIN once per direction when expect_ctl. */
void sink_assert_exact(const struct sink *s, unsigned i, bool expect_ctl);

/* --- engine harness ------------------------------------------------------- */

struct dedup_cfg default_cfg(enum dedup_mode mode);
void sink_init_srcs(struct sink *s);

/* Frame f of a list, parsed (every frame the fixtures make parses). */
void fr_parse(const struct fr *f, struct pkt_info *in);

/* Feeds frames [from, to) of l in order, without expiry. */
void feed_range(struct dedup *d, struct sink *s, const struct frl *l, size_t from, size_t to);

/* Feeds frames in order; with expire, calls dedup_expire(ts) before each, as the tvn
 * loop does. */
void feed(struct dedup *d, struct sink *s, const struct frl *l, bool expire);
size_t count_src(const struct frl *l, int src);

/* Keeps the first n frames of l: the node's agent stopped there. */
void frl_truncate(struct frl *l, size_t n);

/* What differs in one test's set-up from default_cfg(), copy_a(), copy_b() and the IPv4
 * addresses 10.0.0.1 -> 10.0.0.2 (zero fields, or no setup at all, keep those). */
struct setup {
	enum dedup_mode mode;
	const char *cli, *srv; /* other addresses */
	/* cfg: skew_ns, window_ns, max_flows, max_flows_per_source */
	uint64_t skew, window, max_flows, per_source;
	unsigned mtu_a, mtu_b;
	size_t msg;	/* both copies' message size */
	int64_t b_late; /* b.t0 - a.t0 */
	bool log;	/* keep every emitted frame in out */
	bool agent;	/* both copies as the agent synthesizes (copy_opts.agent) */
};

/* A fresh engine, its sink and the connection c, and the node copies a and b of it that
 * a test sends (after adjusting them). */
struct run {
	struct dedup_cfg cfg;
	struct copy_opts a, b;
	struct sink s;
	struct dedup *d;
	struct dedup_stats st;
	struct conn c;
	struct conn cb;	   /* c as copy B's agent saw it, when run_flip_b() made it differ */
	struct frl la, lb; /* copies of c being prepared (frames lost, added) before run_merge() */
	struct frl all;	   /* what is fed, merged by time */
	struct frl out;	   /* with setup.log: every emitted frame in order */
};

/* A fresh engine and sink for the connection cli:cport -> srv:443 with c2s and s2c bytes
 * of seed's pattern (no cport: none, the test makes its own), set up as su says. */
void run_setup(struct run *r, uint16_t cport, size_t c2s, size_t s2c, uint32_t seed,
	       const struct setup *su);

/* n more connections 10.0.0.1:cport+i -> 10.0.0.2:443, len bytes each way of seed+i's
 * pattern, that the sink follows too. */
void run_conns(struct run *r, struct conn *c, unsigned n, uint16_t cport, size_t len,
	       uint32_t seed);

/* Copy B's agent read byte `at` of the client's data differently (past the end: the same
 * bytes). */
void run_flip_b(struct run *r, size_t at);
void run_gen_a(struct run *r);
void run_gen_b(struct run *r);
void run_gen(struct run *r);

/* Copy o of connection c, merged by time into what is fed. */
void run_copy(struct run *r, const struct conn *c, const struct copy_opts *o);

/* Both copies of connection c, merged into what is fed. */
void run_copies(struct run *r, const struct conn *c);
void run_finish(struct run *r);

/* Moves the prepared copies (A's, then B's) into what is fed, merged by time. */
void run_merge(struct run *r);

/* Feeds the prepared copies and everything merged before them, in time order, and takes
 * the stats. */
void run_feed(struct run *r, bool expire);

/* Copies a and b of the connection, merged by time and fed (expiring as tvn does). */
void run_both(struct run *r);
void run_flush(struct run *r);
uint64_t run_last_ts(const struct run *r);

/* What a connection held back for skew after its last frame (FINs waiting for the other
 * copy's) goes out; takes the stats. */
void run_expire_past_skew(struct run *r);
void run_end(struct run *r);

/* run_end() for a run that also followed the n connections of run_conns(). */
void run_end_conns(struct run *r, struct conn *c, unsigned n);

/* The connection ends at `at`: still in the table 1 ns before, ended 1 ns after. */
void assert_ends_at(struct run *r, uint64_t at);

/* The connection left the table by expiry. */
void assert_expired(struct run *r);
void assert_fins_once(const struct sink *s);

/* Announces the connection at the start of a copy: the agent's start record. */
void meta_start(struct meta_flow *m, const struct ecv_tuple *t);

/* Copy A's agent restarted: it announces the flow again as mid-stream and counts offsets
 * from its restart, `at` bytes into each direction. c2 is the connection as it sees it
 * (ISNs `at` lower), a2 its copy (the caller sets when it starts). */
void restarted_copy(const struct run *r, size_t at, struct conn *c2, struct copy_opts *a2);

/* Index of the first frame of l at or after ts. */
size_t frl_first_at(const struct frl *l, uint64_t ts);

/* A single copy, where nothing is a duplicate: the run delivered exactly what it was fed
 * (every frame, and every byte, SYN and FIN of the connection as often as the input had
 * it), as a sink fed the input itself counts it. */
void run_assert_as_input(const struct run *r);

#endif
