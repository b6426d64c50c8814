/* agent/conn.c - connection table and frame synthesis for the agent. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "hash.h"
#include "isn.h"
#include "meta.h"
#include "netinfo.h"

enum conn_role { ROLE_UNKNOWN = 0, ROLE_CLIENT, ROLE_SERVER };

/* An event kept until its connection's tuple is known. */
struct pending {
	struct pending *next;
	size_t size;
	struct ecv_event ev; /* header + ev.len bytes of data, allocated to size */
};

struct conn {
	struct conn *next; /* hash chain */
	uint32_t tgid;
	uint64_t ssl;
	uint64_t last_ns;
	bool has_tuple;
	bool started; /* start record (and handshake) sent */
	bool from_start;
	bool saw_start;	   /* an ECV_EV_START event, not just the flag */
	bool closing;	   /* ECV_EV_CLOSE seen at close_ns; ends after the grace period */
	bool server_spoke; /* a server -> client segment went out after the handshake */
	uint64_t close_ns;
	uint64_t close_ts;	    /* the close event's kernel timestamp */
	enum conn_role kernel_role; /* from ECV_F_ROLE_* flags, if any */
	enum conn_role role;	    /* decided when started */
	/* Indexed by enum ecv_dir: [ECV_DIR_WRITE] local -> remote, [ECV_DIR_READ]
	 * remote -> local. */
	struct ecv_tuple tuple[2];
	struct pkt_l2 l2[2];
	uint32_t isn[2];
	uint64_t next_off[2]; /* next expected offset */
	uint64_t bytes[2];
	uint16_t ip_id[2];
	uint64_t hole_bytes;
	char comm[16];
	struct pending *backlog, **backlog_tail;
	unsigned n_backlog;
};

struct conn_table {
	struct conn_cfg cfg;
	char node[64];
	struct conn **buckets;
	size_t n_buckets; /* power of two */
	struct conn_stats st;
	unsigned n_closing;    /* entries with closing set */
	uint64_t idle_scan_ns; /* last full scan for idle entries */
	/* Scratch for metadata frames: one at a time, never re-entered. */
	uint8_t meta_buf[PKT_ETH_LEN + PKT_VLAN_LEN + META_MAX_JSON];
};

/* What an emit round needs to pass through pkt_segment(). */
struct emit_ctx {
	struct conn_table *ct;
	const struct ecv_tuple *flow;
};

static size_t conn_hash(uint32_t tgid, uint64_t ssl)
{
	uint64_t h = ssl ^ ((uint64_t)tgid << 32) ^ tgid;

	/* SSL pointers share their low bits (allocator alignment): mix before masking. */
	return (size_t)hash_mix64(h);
}

struct conn_table *conn_table_new(const struct conn_cfg *cfg)
{
	struct conn_table *ct;

	if (!cfg || !cfg->emit) {
		errno = EINVAL;
		return NULL;
	}
	ct = calloc(1, sizeof(*ct));
	if (!ct)
		return NULL;
	ct->cfg = *cfg;
	if (!ct->cfg.mtu)
		ct->cfg.mtu = CONN_MTU_DEFAULT;
	if (!ct->cfg.idle_ns)
		ct->cfg.idle_ns = CONN_IDLE_DEFAULT_NS;
	if (!ct->cfg.backlog_max)
		ct->cfg.backlog_max = CONN_BACKLOG_DEFAULT;
	if (pkt_mss(ct->cfg.mtu, AF_INET6) == 0) {
		free(ct);
		errno = EINVAL;
		return NULL;
	}
	snprintf(ct->node, sizeof(ct->node), "%s", cfg->node ? cfg->node : "");
	ct->cfg.node = ct->node;
	ct->n_buckets = 1024;
	ct->buckets = calloc(ct->n_buckets, sizeof(*ct->buckets));
	if (!ct->buckets) {
		free(ct);
		return NULL;
	}
	return ct;
}

static void conn_drop_backlog(struct conn *c)
{
	struct pending *p = c->backlog, *next;

	for (; p; p = next) {
		next = p->next;
		free(p);
	}
	c->backlog = NULL;
	c->backlog_tail = &c->backlog;
	c->n_backlog = 0;
}

void conn_table_free(struct conn_table *ct)
{
	if (!ct)
		return;
	for (size_t i = 0; i < ct->n_buckets; i++) {
		struct conn *c = ct->buckets[i], *next;

		for (; c; c = next) {
			next = c->next;
			conn_drop_backlog(c);
			free(c);
		}
	}
	free(ct->buckets);
	free(ct);
}

const struct conn_stats *conn_stats(const struct conn_table *ct)
{
	return &ct->st;
}

/* Doubles the bucket array when entries outnumber buckets; a failed allocation only
 * leaves chains longer. */
static void conn_grow(struct conn_table *ct)
{
	size_t n = ct->n_buckets * 2;
	struct conn **b;

	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < ct->n_buckets; i++) {
		struct conn *c = ct->buckets[i], *next;

		for (; c; c = next) {
			size_t k = conn_hash(c->tgid, c->ssl) & (n - 1);

			next = c->next;
			c->next = b[k];
			b[k] = c;
		}
	}
	free(ct->buckets);
	ct->buckets = b;
	ct->n_buckets = n;
}

static struct conn **conn_slot(struct conn_table *ct, uint32_t tgid, uint64_t ssl)
{
	struct conn **pc = &ct->buckets[conn_hash(tgid, ssl) & (ct->n_buckets - 1)];

	while (*pc && ((*pc)->tgid != tgid || (*pc)->ssl != ssl))
		pc = &(*pc)->next;
	return pc;
}

static struct conn *conn_create(struct conn_table *ct, uint32_t tgid, uint64_t ssl)
{
	struct conn *c, **pc;

	if (ct->st.flows_active >= ct->n_buckets)
		conn_grow(ct);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tgid = tgid;
	c->ssl = ssl;
	c->backlog_tail = &c->backlog;
	pc = &ct->buckets[conn_hash(tgid, ssl) & (ct->n_buckets - 1)];
	c->next = *pc;
	*pc = c;
	ct->st.flows_active++;
	return c;
}

/* Unlinks and frees the entry at *pc. */
static void conn_remove(struct conn_table *ct, struct conn **pc)
{
	struct conn *c = *pc;

	*pc = c->next;
	ct->n_closing -= c->closing;
	ct->st.backlog_dropped += c->n_backlog;
	conn_drop_backlog(c);
	free(c);
	ct->st.flows_active--;
}

static int emit_frame(void *ctx, const uint8_t *frame, size_t len)
{
	struct emit_ctx *e = ctx;

	e->ct->st.frames++;
	if (e->ct->cfg.emit(e->ct->cfg.emit_ctx, e->flow, frame, len))
		e->ct->st.emit_errors++;
	return 0; /* one refused frame must not stop the rest of the segment train */
}

static uint8_t *frame_buf(void *ctx, size_t need)
{
	struct emit_ctx *e = ctx;

	if (!e->ct->cfg.frame_buf)
		return NULL;
	return e->ct->cfg.frame_buf(e->ct->cfg.emit_ctx, e->flow, need);
}

/* Sends TCP segments in direction dir: payload split to the MSS, or one bare segment
 * when len is 0. Every segment advertises the largest window (65535 << CONN_WSCALE once
 * the handshake negotiated the scale): see CONN_WSCALE. */
static void conn_send_tcp(struct conn_table *ct, struct conn *c, int dir, const struct pkt_tcp *tcp,
			  const void *data, size_t len)
{
	struct emit_ctx e = { .ct = ct, .flow = &c->tuple[dir] };

	if (pkt_segment_to(&c->l2[dir], &c->tuple[dir], tcp, &c->ip_id[dir], ct->cfg.mtu, data, len,
			   frame_buf, emit_frame, &e))
		ct->st.emit_errors++;
}

static void conn_send(struct conn_table *ct, struct conn *c, int dir, uint8_t flags, uint32_t seq,
		      uint32_t ack, const void *data, size_t len)
{
	struct pkt_tcp tcp = { .seq = seq, .ack = ack, .flags = flags };

	conn_send_tcp(ct, c, dir, &tcp, data, len);
}

/* A SYN or SYN-ACK: MSS of the configured MTU and window scale CONN_WSCALE. */
static void conn_send_syn(struct conn_table *ct, struct conn *c, int dir, uint8_t flags,
			  uint32_t seq, uint32_t ack)
{
	struct pkt_tcp tcp = { .seq = seq,
			       .ack = ack,
			       .flags = flags,
			       .mss = (uint16_t)pkt_mss(ct->cfg.mtu, c->tuple[dir].family),
			       .wscale = CONN_WSCALE };

	conn_send_tcp(ct, c, dir, &tcp, NULL, 0);
}

/* Direction index carrying client -> server bytes. */
static int c2s_dir(const struct conn *c)
{
	return c->role == ROLE_SERVER ? ECV_DIR_READ : ECV_DIR_WRITE;
}

static void conn_send_meta(struct conn_table *ct, struct conn *c, enum meta_event event)
{
	const struct conn_lookup *lk = &ct->cfg.lookup;
	int cs = c2s_dir(c), sc = !cs;
	struct emit_ctx e = { .ct = ct, .flow = &c->tuple[ECV_DIR_WRITE] };
	struct meta_flow m;
	struct procinfo pi;
	int len;

	memset(&m, 0, sizeof(m));
	m.event = event;
	m.tuple = c->tuple[cs];
	m.isn[0] = c->isn[cs];
	m.isn[1] = c->isn[sc];
	m.bytes[0] = c->bytes[cs];
	m.bytes[1] = c->bytes[sc];
	m.lost = c->hole_bytes;
	m.pid = c->tgid;
	m.from_start = c->from_start;
	snprintf(m.node, sizeof(m.node), "%s", ct->node);
	snprintf(m.role, sizeof(m.role), "%s", c->role == ROLE_CLIENT ? "client" : "server");
	snprintf(m.comm, sizeof(m.comm), "%s", c->comm);
	/* Looked up at each record rather than kept per connection: two lookups per flow
	 * and no 900 bytes of strings in every entry. The end record of a process that
	 * exited keeps only what the events said. */
	if (lk->proc && lk->proc(lk->ctx, c->tgid, &pi) == 0) {
		if (pi.comm[0])
			snprintf(m.comm, sizeof(m.comm), "%s", pi.comm);
		snprintf(m.exe, sizeof(m.exe), "%s", pi.exe);
		snprintf(m.cgroup, sizeof(m.cgroup), "%s", pi.cgroup);
		snprintf(m.container, sizeof(m.container), "%s", pi.container);
	}
	if (lk->lib)
		lk->lib(lk->ctx, c->tgid, m.lib, sizeof(m.lib));

	len = meta_build_frame(ct->meta_buf, sizeof(ct->meta_buf), &c->l2[ECV_DIR_WRITE], &m);
	if (len < 0) {
		ct->st.emit_errors++;
		return;
	}
	emit_frame(&e, ct->meta_buf, (size_t)len);
	if (event == META_START)
		ct->st.flows_started++;
	else
		ct->st.flows_ended++;
}

static enum conn_role conn_decide_role(struct conn_table *ct, const struct conn *c)
{
	const struct conn_lookup *lk = &ct->cfg.lookup;
	const struct ecv_tuple *out = &c->tuple[ECV_DIR_WRITE];

	if (c->kernel_role != ROLE_UNKNOWN)
		return c->kernel_role;
	if (lk->listens) {
		if (lk->listens(lk->ctx, c->tgid, out->family, out->sport))
			return ROLE_SERVER;
		if (lk->listens(lk->ctx, c->tgid, out->family, out->dport))
			return ROLE_CLIENT;
	}
	/* Servers listen on well-known or registered ports below the ephemeral range. */
	return out->sport < out->dport ? ROLE_SERVER : ROLE_CLIENT;
}

/* Sequence number of the next byte of direction dir. */
static uint32_t conn_next_seq(const struct conn *c, int dir)
{
	return c->isn[dir] + 1 + (uint32_t)c->next_off[dir];
}

/* Where a mid-stream connection begins in direction dir: the offset of its first data
 * event there (backlog first, then ev, the event that starts it), else 0 (the probes
 * count each direction from 0 when they first see a connection). */
static uint64_t conn_mid_base(const struct conn *c, const struct ecv_event *ev, int dir)
{
	const struct pending *p;

	for (p = c->backlog; p; p = p->next)
		if (p->ev.dir == dir)
			return p->ev.offset;
	return ev->type == ECV_EV_DATA && ev->dir == dir ? ev->offset : 0;
}

/* First sight of a connection with a known tuple (ev: the event that makes it known):
 * role, Ethernet addresses, the start record and SYN / SYN-ACK / ACK. A connection first
 * seen mid-stream gets a handshake too, just before the first byte seen in each
 * direction (its metadata still says from_start false): a stateful analyser with its
 * default configuration ignores a TCP session that has none. */
static void conn_start(struct conn_table *ct, struct conn *c, const struct ecv_event *ev,
		       uint64_t now_ns)
{
	const struct conn_lookup *lk = &ct->cfg.lookup;
	const struct ecv_tuple *out = &c->tuple[ECV_DIR_WRITE];
	int cs, sc;

	c->role = conn_decide_role(ct, c);
	if (lk->l2)
		lk->l2(lk->ctx, out->saddr, out->daddr, now_ns, &c->l2[ECV_DIR_WRITE]);
	else
		netinfo_l2(NULL, out->saddr, out->daddr, now_ns, &c->l2[ECV_DIR_WRITE]);
	memcpy(c->l2[ECV_DIR_READ].src, c->l2[ECV_DIR_WRITE].dst, 6);
	memcpy(c->l2[ECV_DIR_READ].dst, c->l2[ECV_DIR_WRITE].src, 6);
	c->l2[ECV_DIR_READ].vlan = c->l2[ECV_DIR_WRITE].vlan;
	c->started = true;
	conn_send_meta(ct, c, META_START);
	cs = c2s_dir(c);
	sc = !cs;
	if (!c->from_start) {
		c->next_off[cs] = conn_mid_base(c, ev, cs);
		c->next_off[sc] = conn_mid_base(c, ev, sc);
	}
	conn_send_syn(ct, c, cs, PKT_TCP_SYN, conn_next_seq(c, cs) - 1, 0);
	conn_send_syn(ct, c, sc, PKT_TCP_SYN | PKT_TCP_ACK, conn_next_seq(c, sc) - 1,
		      conn_next_seq(c, cs));
	conn_send(ct, c, cs, PKT_TCP_ACK, conn_next_seq(c, cs), conn_next_seq(c, sc), NULL, 0);
}

/* FIN/ACK from the client, FIN/ACK from the server, the client's last ACK, then the end
 * record. Both nodes emit the same sequence numbers, whichever side closed first. */
static void conn_finish(struct conn_table *ct, struct conn *c)
{
	int cs, sc;
	uint32_t cseq, sseq;

	if (!c->started)
		return;
	cs = c2s_dir(c);
	sc = !cs;
	cseq = conn_next_seq(c, cs);
	sseq = conn_next_seq(c, sc);
	conn_send(ct, c, cs, PKT_TCP_FIN | PKT_TCP_ACK, cseq, sseq, NULL, 0);
	conn_send(ct, c, sc, PKT_TCP_FIN | PKT_TCP_ACK, sseq, cseq + 1, NULL, 0);
	conn_send(ct, c, cs, PKT_TCP_ACK, cseq + 1, sseq + 1, NULL, 0);
	conn_send_meta(ct, c, META_END);
}

/* Client bytes after which, if the server has said nothing yet, the client's node speaks
 * for it (see conn_data()): well within the 65 535 bytes a SYN-ACK's window allows. */
#define CONN_OPEN_WINDOW (32u << 10)

static void conn_data(struct conn_table *ct, struct conn *c, const struct ecv_event *ev)
{
	int d = ev->dir, peer = !ev->dir, cs = c2s_dir(c);
	uint32_t seq;
	uint64_t end;

	if (ev->offset > c->next_off[d]) {
		/* Lost samples or a truncated call: leave the hole in sequence space so the
		 * TVN can fill it from the other node's copy; never shift later data. */
		ct->st.gaps++;
		ct->st.gap_bytes += ev->offset - c->next_off[d];
		c->hole_bytes += ev->offset - c->next_off[d];
	}
	seq = c->isn[d] + 1 + (uint32_t)ev->offset;
	if (ev->len)
		conn_send(ct, c, d, PKT_TCP_PSH | PKT_TCP_ACK, seq, conn_next_seq(c, peer),
			  ev->data, ev->len);
	end = ev->offset + ev->len;
	if (end > c->next_off[d])
		c->next_off[d] = end;
	c->bytes[d] += ev->len;
	/* The reading side acknowledges what the application read, as its TCP stack would
	 * have: without it a stateful analyser sees a download that nobody acknowledges,
	 * and the tvn's output has no ACK for bytes that only this node's copy brings. */
	if (d == ECV_DIR_READ && ev->len) {
		conn_send(ct, c, ECV_DIR_WRITE, PKT_TCP_ACK, conn_next_seq(c, ECV_DIR_WRITE),
			  conn_next_seq(c, ECV_DIR_READ), NULL, 0);
		c->server_spoke |= ECV_DIR_WRITE != cs;
	}
	c->server_spoke |= d != cs && ev->len;
	/* A SYN-ACK's window is never scaled (RFC 7323 §2.2): until the server's first
	 * segment after it, an analyser holds the client to 65 535 bytes and discards the
	 * rest as out of window. The server's node acknowledges each read, but its copy
	 * trails the client's (a ring buffer wakes the agent per batch), and a client that
	 * uploads reads nothing from the server for a while. So once the client wrote
	 * CONN_OPEN_WINDOW bytes with nothing from the server, the client's node sends the
	 * server's ACK of them, as the server's TCP did for the client to send more. */
	if (d == cs && !c->server_spoke && c->bytes[cs] >= CONN_OPEN_WINDOW) {
		conn_send(ct, c, !cs, PKT_TCP_ACK, conn_next_seq(c, !cs), conn_next_seq(c, cs),
			  NULL, 0);
		c->server_spoke = true;
	}
}

static int conn_set_tuple(struct conn *c, const struct ecv_event *ev)
{
	uint8_t fam = ev->family;

	if (fam != AF_INET && fam != AF_INET6)
		return -EINVAL;
	if (tuple_init(&c->tuple[ECV_DIR_WRITE], ev->laddr, ev->lport, ev->raddr, ev->rport,
		       IPPROTO_TCP))
		return -EINVAL;
	if (c->tuple[ECV_DIR_WRITE].family != fam)
		return -EINVAL;
	tuple_reverse(&c->tuple[ECV_DIR_READ], &c->tuple[ECV_DIR_WRITE]);
	c->isn[ECV_DIR_WRITE] = isn_compute(&c->tuple[ECV_DIR_WRITE]);
	c->isn[ECV_DIR_READ] = isn_compute(&c->tuple[ECV_DIR_READ]);
	c->ip_id[ECV_DIR_WRITE] = (uint16_t)c->isn[ECV_DIR_WRITE];
	c->ip_id[ECV_DIR_READ] = (uint16_t)c->isn[ECV_DIR_READ];
	c->has_tuple = true;
	return 0;
}

static bool event_valid(const struct ecv_event *ev, size_t size)
{
	if (!ev || size < ECV_EVENT_HDR_LEN)
		return false;
	if (ev->type < ECV_EV_DATA || ev->type > ECV_EV_SOCK || ev->dir > ECV_DIR_READ)
		return false;
	if (ev->type == ECV_EV_DATA &&
	    (ev->len > ECV_CHUNK_SIZE || ECV_EVENT_HDR_LEN + ev->len > size))
		return false;
	return true;
}

static bool tuple_matches(const struct conn *c, const struct ecv_event *ev)
{
	struct ecv_tuple t;

	if (tuple_init(&t, ev->laddr, ev->lport, ev->raddr, ev->rport, IPPROTO_TCP))
		return false;
	return tuple_equal(&t, &c->tuple[ECV_DIR_WRITE]);
}

/* Keeps a copy of a data event until the tuple is known. */
static void conn_defer(struct conn_table *ct, struct conn *c, const struct ecv_event *ev)
{
	size_t size = ECV_EVENT_HDR_LEN + ev->len;
	struct pending *p;

	if (c->n_backlog >= ct->cfg.backlog_max) {
		ct->st.backlog_dropped++;
		return;
	}
	p = malloc(offsetof(struct pending, ev) + size);
	if (!p) {
		ct->st.backlog_dropped++;
		return;
	}
	p->next = NULL;
	p->size = size;
	memcpy(&p->ev, ev, size);
	*c->backlog_tail = p;
	c->backlog_tail = &p->next;
	c->n_backlog++;
}

static void conn_replay(struct conn_table *ct, struct conn *c)
{
	struct pending *p = c->backlog, *next;

	c->backlog = NULL;
	c->backlog_tail = &c->backlog;
	c->n_backlog = 0;
	for (; p; p = next) {
		next = p->next;
		conn_data(ct, c, &p->ev);
		free(p);
	}
}

/* True if ev belongs to a new connection on the SSL pointer of entry c: allocators hand a
 * freed SSL's memory to the next SSL_new at once, often within the close grace period,
 * and an SSL_free may be lost. A different tuple says so, and so does a handshake that
 * began after the close (kernel timestamps: events of one connection can be read after
 * its close when they sat in another CPU's buffer) or on an entry that carried data. */
static bool conn_reused(const struct conn *c, const struct ecv_event *ev, bool has_tuple)
{
	if (c->has_tuple && has_tuple && !tuple_matches(c, ev))
		return true;
	if (ev->type != ECV_EV_START)
		return false;
	if (c->closing)
		return ev->ts_ns > c->close_ts;
	return c->next_off[0] || c->next_off[1];
}

int conn_handle(struct conn_table *ct, const struct ecv_event *ev, size_t size, uint64_t now_ns)
{
	struct conn **pc, *c;
	bool has_tuple;

	if (!event_valid(ev, size)) {
		ct->st.invalid++;
		return -EINVAL;
	}
	ct->st.events++;
	if (ev->type == ECV_EV_DATA) {
		ct->st.bytes[ev->dir] += ev->len;
		if (ev->flags & ECV_F_TRUNCATED)
			ct->st.truncated++;
	}

	pc = conn_slot(ct, ev->tgid, ev->ssl);
	c = *pc;
	if (ev->type == ECV_EV_CLOSE) {
		/* Even for an SSL object not seen yet: its events may still sit in another
		 * CPU's buffer. An entry that never starts ends silently. */
		if (!c)
			c = conn_create(ct, ev->tgid, ev->ssl);
		if (c && !c->closing) {
			c->closing = true;
			c->close_ns = now_ns;
			c->close_ts = ev->ts_ns;
			c->last_ns = now_ns;
			ct->n_closing++;
		}
		return 0;
	}
	has_tuple = (ev->flags & ECV_F_TUPLE) && (ev->family == AF_INET || ev->family == AF_INET6);
	if (c && conn_reused(c, ev, has_tuple)) {
		conn_finish(ct, c);
		conn_remove(ct, pc);
		c = NULL;
	}
	if (!c) {
		c = conn_create(ct, ev->tgid, ev->ssl);
		if (!c) {
			ct->st.backlog_dropped += ev->type == ECV_EV_DATA;
			return 0;
		}
	}
	c->last_ns = now_ns;
	if (!c->comm[0] || ev->type == ECV_EV_DATA)
		memcpy(c->comm, ev->comm, sizeof(c->comm));
	c->comm[sizeof(c->comm) - 1] = '\0';
	if (!c->started) {
		if (ev->type == ECV_EV_START || (ev->flags & ECV_F_FROM_START))
			c->from_start = true;
		if (ev->flags & ECV_F_ROLE_CLIENT)
			c->kernel_role = ROLE_CLIENT;
		else if (ev->flags & ECV_F_ROLE_SERVER)
			c->kernel_role = ROLE_SERVER;
	}
	if (ev->type == ECV_EV_START)
		c->saw_start = true;
	if (!c->has_tuple && has_tuple)
		conn_set_tuple(c, ev);
	/* A flow starts at its handshake or at its first byte. A socket event alone
	 * announces nothing: the socket hook and the state tracepoint can report an SSL
	 * object after its SSL_free, and that must not open a second, empty flow. */
	if (c->has_tuple && !c->started && (c->saw_start || ev->type == ECV_EV_DATA)) {
		conn_start(ct, c, ev, now_ns);
		conn_replay(ct, c);
	}
	if (ev->type != ECV_EV_DATA)
		return 0;
	if (c->started)
		conn_data(ct, c, ev);
	else
		conn_defer(ct, c, ev);
	return 0;
}

unsigned conn_expire(struct conn_table *ct, uint64_t now_ns)
{
	unsigned n = 0;

	/* Closed entries are due within the grace period; idle ones are looked for once
	 * a second: a scan of the whole table per poll round only while something closes. */
	if (!ct->n_closing && now_ns - ct->idle_scan_ns < 1000000000ull)
		return 0;
	ct->idle_scan_ns = now_ns;
	for (size_t i = 0; i < ct->n_buckets; i++) {
		struct conn **pc = &ct->buckets[i];

		while (*pc) {
			struct conn *c = *pc;

			if ((c->closing && now_ns - c->close_ns >= CONN_CLOSE_GRACE_NS) ||
			    now_ns - c->last_ns > ct->cfg.idle_ns) {
				conn_finish(ct, *pc);
				conn_remove(ct, pc);
				n++;
			} else {
				pc = &(*pc)->next;
			}
		}
	}
	return n;
}

void conn_close_all(struct conn_table *ct, uint64_t now_ns)
{
	(void)now_ns;
	for (size_t i = 0; i < ct->n_buckets; i++) {
		while (ct->buckets[i]) {
			conn_finish(ct, ct->buckets[i]);
			conn_remove(ct, &ct->buckets[i]);
		}
	}
}
