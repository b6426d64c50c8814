/* tests/unit/test_agent_conn.c - the agent's connection table, fed hand-made ecv_event
 * sequences (from start, mid-stream, gap, truncated, IPv6, backlog, close, expiry); the
 * frames it emits are parsed back with pkt_parse()/meta_decode() and checked field by
 * field against DESIGN §2/§3. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../agent/conn.h"
#include "check_run.h"
#include "isn.h"
#include "meta.h"
#include "pkt.h"

#define MAX_FRAMES 256
#define MSS4 1410 /* pkt_mss(1450, AF_INET) */

struct frame {
	uint8_t buf[2048 + META_MAX_JSON];
	size_t len;
	struct ecv_tuple flow;
	int kind; /* 0 = TCP, PKT_META */
	struct pkt_info info;
	struct meta_flow meta;
};

static struct frame frames[MAX_FRAMES];
static unsigned n_frames;
static int listen_port; /* port the fake listens() reports as listening, 0 = none */

/* The table each test drives, and the default connection's tuples and ISNs its frames are
 * checked against: a Check fixture (fx_setup/fx_close), made afresh for every test; file
 * scope because Check's fixture functions take no argument. */
static struct {
	struct conn_table *ct;
	struct ecv_tuple c2s, s2c;
	uint32_t ic, is;
} fx;

static int capture(void *ctx, const struct ecv_tuple *flow, const uint8_t *frame, size_t len)
{
	struct frame *f;
	int rc;

	(void)ctx;
	ck_assert_uint_lt(n_frames, MAX_FRAMES);
	f = &frames[n_frames++];
	ck_assert_uint_le(len, sizeof(f->buf));
	memcpy(f->buf, frame, len);
	f->len = len;
	f->flow = *flow;
	rc = pkt_parse(f->buf, len, &f->info);
	ck_assert_int_ge(rc, 0);
	f->kind = rc;
	if (rc == PKT_META) {
		const char *why = NULL;

		ck_assert_msg(meta_decode((const char *)f->info.payload, f->info.payload_len,
					  &f->meta, &why) == 0,
			      "metadata does not decode: %s", why ? why : "?");
	} else {
		ck_assert_msg(pkt_checksums_ok(f->buf, &f->info), "bad checksum in frame %u",
			      n_frames - 1);
	}
	return 0;
}

static bool fake_listens(void *ctx, uint32_t tgid, int family, uint16_t port)
{
	(void)ctx;
	(void)tgid;
	(void)family;
	return listen_port && port == listen_port;
}

/* A fresh table holding at most backlog_max events of a connection whose tuple is not
 * known yet, nothing captured, nothing listening. */
static void fx_open(unsigned backlog_max)
{
	struct conn_cfg cfg = {
		.mtu = 1450,
		.idle_ns = 10ull * 1000000000ull,
		.backlog_max = backlog_max,
		.node = "node-a",
		.emit = capture,
		.lookup = { .listens = fake_listens },
	};

	n_frames = 0;
	listen_port = 0;
	fx.ct = conn_table_new(&cfg);
	ck_assert_ptr_nonnull(fx.ct);
}

static void fx_close(void)
{
	conn_table_free(fx.ct);
	fx.ct = NULL;
}

/* One event in a heap buffer: header plus len bytes of a deterministic pattern. */
static struct ecv_event *mk(uint16_t type, uint8_t dir, uint64_t offset, uint32_t len,
			    uint32_t flags)
{
	struct ecv_event *ev = calloc(1, sizeof(*ev));
	uint8_t l4[4] = { 10, 77, 0, 1 }, r4[4] = { 10, 77, 0, 2 };

	ck_assert_ptr_nonnull(ev);
	ev->type = type;
	ev->dir = dir;
	ev->offset = offset;
	ev->len = len;
	ev->call_len = len;
	ev->flags = flags;
	ev->tgid = 4242;
	ev->pid = 4242;
	ev->ssl = 0x7f0000001000ull;
	strcpy(ev->comm, "curl");
	if (flags & ECV_F_TUPLE) {
		ev->family = AF_INET;
		tuple_addr_from_v4(ev->laddr, l4);
		tuple_addr_from_v4(ev->raddr, r4);
		ev->lport = 40000;
		ev->rport = 443;
	}
	for (uint32_t i = 0; i < len; i++)
		ev->data[i] = (uint8_t)((offset + i) * 7 + dir);
	return ev;
}

/* Hands ev to the table at agent time now; an event without a kernel timestamp gets
 * now, so events are in kernel order unless a test says otherwise. */
static void feed(struct ecv_event *ev, uint64_t now)
{
	if (!ev->ts_ns)
		ev->ts_ns = now;
	ck_assert_int_eq(conn_handle(fx.ct, ev, ECV_EVENT_HDR_LEN + ev->len, now), 0);
	free(ev);
}

/* The fixture: a table without backlog, and the client -> server and server -> client
 * tuples of the default events with the ISNs the agent derives for them. */
static void fx_setup(void)
{
	uint8_t c[16], s[16], c4[4] = { 10, 77, 0, 1 }, s4[4] = { 10, 77, 0, 2 };

	fx_open(0);
	tuple_addr_from_v4(c, c4);
	tuple_addr_from_v4(s, s4);
	tuple_init(&fx.c2s, c, 40000, s, 443, IPPROTO_TCP);
	tuple_reverse(&fx.s2c, &fx.c2s);
	fx.ic = isn_compute(&fx.c2s);
	fx.is = isn_compute(&fx.s2c);
}

static void check_payload(const struct frame *f, uint8_t dir, uint64_t offset, size_t len)
{
	ck_assert_uint_eq(f->info.payload_len, len);
	for (size_t i = 0; i < len; i++)
		ck_assert_uint_eq(f->info.payload[i], (uint8_t)((offset + i) * 7 + dir));
}

static void check_tcp(const struct frame *f, const struct ecv_tuple *t, uint32_t seq, uint32_t ack,
		      uint8_t flags)
{
	ck_assert_int_eq(f->kind, 0);
	ck_assert_msg(tuple_equal(&f->info.tuple, t), "wrong tuple");
	ck_assert_uint_eq(f->info.seq, seq);
	ck_assert_uint_eq(f->info.ack, ack);
	ck_assert_uint_eq(f->info.tcp_flags, flags);
}

/* A SYN or SYN-ACK carries the MSS of the MTU and window scale CONN_WSCALE; every
 * synthesized frame advertises the largest window. */
static void check_syn_opts(const struct frame *f, unsigned mss)
{
	ck_assert_uint_eq(f->info.tcp_opts, PKT_OPT_MSS | PKT_OPT_WSCALE);
	ck_assert_uint_eq(f->info.mss, mss);
	ck_assert_uint_eq(f->info.wscale, CONN_WSCALE);
	ck_assert_uint_eq(f->info.window, 65535);
}

static const struct conn_stats *stats(void)
{
	return conn_stats(fx.ct);
}

/* The table's flow counters: flows started, ended and still active. */
static void check_flows(uint64_t started, uint64_t ended, uint64_t active)
{
	ck_assert_uint_eq(stats()->flows_started, started);
	ck_assert_uint_eq(stats()->flows_ended, ended);
	ck_assert_uint_eq(stats()->flows_active, active);
}

/* The flags of an event on a connection the agent saw from its handshake, as client. */
#define FS_CLIENT (ECV_F_TUPLE | ECV_F_FROM_START | ECV_F_ROLE_CLIENT)

/* A data event of len bytes at offset in direction dir, read at agent time now. */
static void feed_data(uint8_t dir, uint64_t offset, uint32_t len, uint32_t flags, uint64_t now)
{
	feed(mk(ECV_EV_DATA, dir, offset, len, flags), now);
}

static void feed_close(uint64_t now)
{
	feed(mk(ECV_EV_CLOSE, 0, 0, 0, 0), now);
}

/* The connection closed at closed_at ends (FINs, end record) once the grace has passed. */
static void expire_closed(uint64_t closed_at)
{
	ck_assert_uint_eq(conn_expire(fx.ct, closed_at + CONN_CLOSE_GRACE_NS), 1);
}

START_TEST(from_start_client)
{
	unsigned k = 0;

	feed(mk(ECV_EV_START, 0, 0, 0, 0), 1);
	ck_assert_uint_eq(n_frames, 0); /* nothing until the tuple is known */
	feed(mk(ECV_EV_SOCK, 0, 0, 0, ECV_F_TUPLE | ECV_F_ROLE_CLIENT), 2);
	feed_data(ECV_DIR_WRITE, 0, 3000, ECV_F_TUPLE | ECV_F_FROM_START, 3);
	feed_data(ECV_DIR_READ, 0, 100, ECV_F_TUPLE | ECV_F_FROM_START, 4);
	feed_close(5);
	/* the FINs wait for events of the connection still in other CPUs' buffers */
	ck_assert_uint_eq(n_frames, 1 + 3 + 5);
	ck_assert_uint_eq(conn_expire(fx.ct, 5 + CONN_CLOSE_GRACE_NS - 1), 0);
	ck_assert_uint_eq(n_frames, 1 + 3 + 5);
	expire_closed(5);

	/* start record, SYN, SYN-ACK, ACK, 3 + 1 data segments, the client's ACK of what it
	 * read, 3 FIN frames, end record */
	ck_assert_uint_eq(n_frames, 1 + 3 + 5 + 3 + 1);
	ck_assert_int_eq(frames[k].kind, PKT_META);
	ck_assert_int_eq(frames[k].meta.event, META_START);
	ck_assert(frames[k].meta.from_start);
	ck_assert_str_eq(frames[k].meta.role, "client");
	ck_assert_str_eq(frames[k].meta.node, "node-a");
	ck_assert_str_eq(frames[k].meta.comm, "curl");
	ck_assert_int_eq(frames[k].meta.pid, 4242);
	ck_assert(tuple_equal(&frames[k].meta.tuple, &fx.c2s));
	ck_assert_uint_eq(frames[k].meta.isn[0], fx.ic);
	ck_assert_uint_eq(frames[k].meta.isn[1], fx.is);
	k++;
	check_tcp(&frames[k], &fx.c2s, fx.ic, 0, PKT_TCP_SYN);
	check_syn_opts(&frames[k++], MSS4);
	check_tcp(&frames[k], &fx.s2c, fx.is, fx.ic + 1, PKT_TCP_SYN | PKT_TCP_ACK);
	check_syn_opts(&frames[k++], MSS4);
	check_tcp(&frames[k++], &fx.c2s, fx.ic + 1, fx.is + 1, PKT_TCP_ACK);
	/* 3000 bytes at MSS 1410: 1410 + 1410 + 180, PSH on the last one only */
	check_tcp(&frames[k], &fx.c2s, fx.ic + 1, fx.is + 1, PKT_TCP_ACK);
	check_payload(&frames[k++], ECV_DIR_WRITE, 0, MSS4);
	check_tcp(&frames[k], &fx.c2s, fx.ic + 1 + MSS4, fx.is + 1, PKT_TCP_ACK);
	check_payload(&frames[k++], ECV_DIR_WRITE, MSS4, MSS4);
	check_tcp(&frames[k], &fx.c2s, fx.ic + 1 + 2 * MSS4, fx.is + 1, PKT_TCP_ACK | PKT_TCP_PSH);
	check_payload(&frames[k++], ECV_DIR_WRITE, 2 * MSS4, 3000 - 2 * MSS4);
	/* the response acknowledges the whole request */
	check_tcp(&frames[k], &fx.s2c, fx.is + 1, fx.ic + 1 + 3000, PKT_TCP_ACK | PKT_TCP_PSH);
	check_payload(&frames[k++], ECV_DIR_READ, 0, 100);
	/* the client read it: a bare ACK, as its TCP stack would send */
	check_tcp(&frames[k], &fx.c2s, fx.ic + 1 + 3000, fx.is + 1 + 100, PKT_TCP_ACK);
	ck_assert_uint_eq(frames[k++].info.payload_len, 0);
	/* client FIN, server FIN, client ACK */
	check_tcp(&frames[k++], &fx.c2s, fx.ic + 1 + 3000, fx.is + 1 + 100,
		  PKT_TCP_FIN | PKT_TCP_ACK);
	check_tcp(&frames[k++], &fx.s2c, fx.is + 1 + 100, fx.ic + 1 + 3001,
		  PKT_TCP_FIN | PKT_TCP_ACK);
	check_tcp(&frames[k++], &fx.c2s, fx.ic + 1 + 3001, fx.is + 1 + 101, PKT_TCP_ACK);
	ck_assert_int_eq(frames[k].kind, PKT_META);
	ck_assert_int_eq(frames[k].meta.event, META_END);
	ck_assert_uint_eq(frames[k].meta.bytes[0], 3000);
	ck_assert_uint_eq(frames[k].meta.bytes[1], 100);
	ck_assert_uint_eq(frames[k].meta.lost, 0);

	check_flows(1, 1, 0);
	ck_assert_uint_eq(stats()->bytes[ECV_DIR_WRITE], 3000);
	ck_assert_uint_eq(stats()->bytes[ECV_DIR_READ], 100);
	ck_assert_uint_eq(stats()->events, 5);
	ck_assert_uint_eq(stats()->frames, n_frames);
	ck_assert_uint_eq(stats()->gaps, 0);
}
END_TEST

/* A client that writes 48 KiB before anything from the server (an upload): once it wrote
 * 32 KiB the client's node sends the server's ACK of them, so that an analyser learns
 * the server's scaled window before the client passes the 65 535 bytes its SYN-ACK
 * allowed; once, and never when the server spoke first. */
START_TEST(client_upload_gets_the_server_window)
{
	unsigned i, acks = 0, at = 0;

	for (i = 0; i < 3; i++)
		feed_data(ECV_DIR_WRITE, i * 16384, 16384, FS_CLIENT, 1 + i);
	for (i = 0; i < n_frames; i++) {
		if (frames[i].kind == PKT_META || !tuple_equal(&frames[i].info.tuple, &fx.s2c) ||
		    (frames[i].info.tcp_flags & PKT_TCP_SYN))
			continue;
		acks++;
		at = i;
	}
	ck_assert_uint_eq(acks, 1);
	check_tcp(&frames[at], &fx.s2c, fx.is + 1, fx.ic + 1 + 32768, PKT_TCP_ACK);
	ck_assert_uint_eq(frames[at - 1].info.seq + frames[at - 1].info.payload_len,
			  fx.ic + 1 + 32768);
	/* the server's own first segment went out before: no such ACK */
	fx_close();
	fx_open(0);
	feed_data(ECV_DIR_READ, 0, 100, FS_CLIENT, 1);
	for (i = 0; i < 3; i++)
		feed_data(ECV_DIR_WRITE, i * 16384, 16384, FS_CLIENT, 2 + i);
	for (i = 0, acks = 0; i < n_frames; i++)
		acks += frames[i].kind != PKT_META && tuple_equal(&frames[i].info.tuple, &fx.s2c) &&
			!frames[i].info.payload_len && !(frames[i].info.tcp_flags & PKT_TCP_SYN);
	ck_assert_uint_eq(acks, 0);
}
END_TEST

/* The server's node sees the same connection from the other side: same ISNs, same
 * handshake and FIN sequence numbers, data in the opposite ecv_dir. */
START_TEST(server_side_same_sequence_space)
{
	struct ecv_event *ev;

	ev = mk(ECV_EV_DATA, ECV_DIR_READ, 0, 500,
		ECV_F_TUPLE | ECV_F_FROM_START | ECV_F_ROLE_SERVER);
	/* local is the server here */
	memcpy(ev->laddr, fx.c2s.daddr, 16);
	memcpy(ev->raddr, fx.c2s.saddr, 16);
	ev->lport = 443;
	ev->rport = 40000;
	feed(ev, 1);
	ck_assert_uint_eq(n_frames, 1 + 3 + 1 + 1);
	ck_assert_str_eq(frames[0].meta.role, "server");
	ck_assert(tuple_equal(&frames[0].meta.tuple, &fx.c2s)); /* src is the client */
	check_tcp(&frames[1], &fx.c2s, fx.ic, 0, PKT_TCP_SYN);
	check_tcp(&frames[2], &fx.s2c, fx.is, fx.ic + 1, PKT_TCP_SYN | PKT_TCP_ACK);
	check_tcp(&frames[3], &fx.c2s, fx.ic + 1, fx.is + 1, PKT_TCP_ACK);
	check_tcp(&frames[4], &fx.c2s, fx.ic + 1, fx.is + 1, PKT_TCP_ACK | PKT_TCP_PSH);
	check_payload(&frames[4], ECV_DIR_READ, 0, 500);
	/* the server read the request: it acknowledges it */
	check_tcp(&frames[5], &fx.s2c, fx.is + 1, fx.ic + 501, PKT_TCP_ACK);
	conn_close_all(fx.ct, 2);
	ck_assert_uint_eq(n_frames, 6 + 4);
	check_tcp(&frames[6], &fx.c2s, fx.ic + 501, fx.is + 1, PKT_TCP_FIN | PKT_TCP_ACK);
	check_tcp(&frames[7], &fx.s2c, fx.is + 1, fx.ic + 502, PKT_TCP_FIN | PKT_TCP_ACK);
	check_tcp(&frames[8], &fx.c2s, fx.ic + 502, fx.is + 2, PKT_TCP_ACK);
	ck_assert_uint_eq(stats()->flows_active, 0);
}
END_TEST

/* A connection open before the agent: still announced as mid-stream, but what reaches the
 * tools starts with a handshake placed just before the first byte seen in each
 * direction, so that analysers with default settings (no mid-stream pick-up) follow it. */
START_TEST(mid_stream_gets_a_handshake)
{
	feed_data(ECV_DIR_WRITE, 5000, 10, ECV_F_TUPLE | ECV_F_ROLE_CLIENT, 1);
	ck_assert_uint_eq(n_frames, 1 + 3 + 1);
	ck_assert_int_eq(frames[0].kind, PKT_META);
	ck_assert(!frames[0].meta.from_start);
	check_tcp(&frames[1], &fx.c2s, fx.ic + 5000, 0, PKT_TCP_SYN);
	check_syn_opts(&frames[1], MSS4);
	check_tcp(&frames[2], &fx.s2c, fx.is, fx.ic + 1 + 5000, PKT_TCP_SYN | PKT_TCP_ACK);
	check_tcp(&frames[3], &fx.c2s, fx.ic + 1 + 5000, fx.is + 1, PKT_TCP_ACK);
	check_tcp(&frames[4], &fx.c2s, fx.ic + 1 + 5000, fx.is + 1, PKT_TCP_ACK | PKT_TCP_PSH);
	check_payload(&frames[4], ECV_DIR_WRITE, 5000, 10);
	/* the first offset of a mid-stream connection is where it starts, not a hole */
	ck_assert_uint_eq(stats()->gaps, 0);
	ck_assert_uint_eq(frames[0].meta.lost, 0);
	/* the other direction starts at 0, right after its SYN-ACK */
	feed_data(ECV_DIR_READ, 0, 7, ECV_F_TUPLE, 2);
	check_tcp(&frames[5], &fx.s2c, fx.is + 1, fx.ic + 1 + 5010, PKT_TCP_ACK | PKT_TCP_PSH);
	ck_assert_uint_eq(stats()->gaps, 0);
}
END_TEST

START_TEST(gap_is_left_visible)
{
	feed_data(ECV_DIR_WRITE, 0, 100, FS_CLIENT, 1);
	/* 200 bytes lost (perf buffer overrun): the next event keeps its own offset */
	feed_data(ECV_DIR_WRITE, 300, 100, ECV_F_TUPLE | ECV_F_FROM_START, 2);
	ck_assert_uint_eq(n_frames, 1 + 3 + 2);
	check_tcp(&frames[4], &fx.c2s, fx.ic + 1, fx.is + 1, PKT_TCP_ACK | PKT_TCP_PSH);
	check_tcp(&frames[5], &fx.c2s, fx.ic + 1 + 300, fx.is + 1, PKT_TCP_ACK | PKT_TCP_PSH);
	check_payload(&frames[5], ECV_DIR_WRITE, 300, 100);
	ck_assert_uint_eq(stats()->gaps, 1);
	ck_assert_uint_eq(stats()->gap_bytes, 200);
	conn_close_all(fx.ct, 3);
	/* the FIN comes after the highest byte, and the end record reports the hole */
	check_tcp(&frames[6], &fx.c2s, fx.ic + 1 + 400, fx.is + 1, PKT_TCP_FIN | PKT_TCP_ACK);
	ck_assert_int_eq(frames[9].kind, PKT_META);
	ck_assert_uint_eq(frames[9].meta.lost, 200);
	ck_assert_uint_eq(frames[9].meta.bytes[0], 200);
}
END_TEST

START_TEST(truncated_call_counted_and_not_shifted)
{
	struct ecv_event *ev;

	ev = mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 16384, FS_CLIENT | ECV_F_TRUNCATED);
	ev->call_len = 5 << 20;
	feed(ev, 1);
	/* the kernel's counter moved by the whole call: the next write is at 5 MiB */
	feed_data(ECV_DIR_WRITE, 5 << 20, 10, ECV_F_TUPLE | ECV_F_FROM_START, 2);
	ck_assert_uint_eq(stats()->truncated, 1);
	ck_assert_uint_eq(stats()->gaps, 1);
	ck_assert_uint_eq(stats()->gap_bytes, (5 << 20) - 16384);
	check_tcp(&frames[n_frames - 1], &fx.c2s, fx.ic + 1 + (5 << 20), fx.is + 1,
		  PKT_TCP_ACK | PKT_TCP_PSH);
}
END_TEST

START_TEST(ipv6_frames)
{
	struct ecv_event *ev;
	struct ecv_tuple out, in;

	ev = mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 2000, ECV_F_TUPLE | ECV_F_ROLE_CLIENT);
	ev->family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", ev->laddr);
	inet_pton(AF_INET6, "2001:db8::2", ev->raddr);
	ev->lport = 55555;
	tuple_init(&out, ev->laddr, 55555, ev->raddr, 443, IPPROTO_TCP);
	tuple_reverse(&in, &out);
	ck_assert_uint_eq(isn_compute(&out), 0x2cde54ecu); /* DESIGN §3 vector */
	feed(ev, 1);
	/* start record, handshake (IPv6 MSS at MTU 1450 is 1390), then 1390 + 610 */
	ck_assert_uint_eq(n_frames, 1 + 3 + 2);
	ck_assert_uint_eq(frames[1].info.tuple.family, AF_INET6);
	check_tcp(&frames[1], &out, 0x2cde54ecu, 0, PKT_TCP_SYN);
	check_syn_opts(&frames[1], 1390);
	check_syn_opts(&frames[2], 1390);
	check_tcp(&frames[4], &out, 0x2cde54ecu + 1, isn_compute(&in) + 1, PKT_TCP_ACK);
	ck_assert_uint_eq(frames[4].info.payload_len, 1390);
	ck_assert_uint_eq(frames[5].info.seq, 0x2cde54ecu + 1 + 1390);
	check_payload(&frames[5], ECV_DIR_WRITE, 1390, 610);
}
END_TEST

START_TEST(backlog_until_tuple_then_bounded)
{
	fx_close();
	fx_open(2); /* holds 2 events before the tuple is known */
	feed(mk(ECV_EV_START, 0, 0, 0, 0), 1);
	feed_data(ECV_DIR_WRITE, 0, 10, ECV_F_FROM_START, 2);
	feed_data(ECV_DIR_WRITE, 10, 10, ECV_F_FROM_START, 3);
	feed_data(ECV_DIR_WRITE, 20, 10, ECV_F_FROM_START, 4); /* over bound */
	ck_assert_uint_eq(n_frames, 0);
	ck_assert_uint_eq(stats()->backlog_dropped, 1);
	feed_data(ECV_DIR_WRITE, 30, 10, FS_CLIENT, 5);
	/* start, handshake, the two kept events in order, then the hole, then the new one */
	ck_assert_uint_eq(n_frames, 1 + 3 + 3);
	check_payload(&frames[4], ECV_DIR_WRITE, 0, 10);
	ck_assert_uint_eq(frames[4].info.seq, fx.ic + 1);
	check_payload(&frames[5], ECV_DIR_WRITE, 10, 10);
	check_payload(&frames[6], ECV_DIR_WRITE, 30, 10);
	ck_assert_uint_eq(frames[6].info.seq, fx.ic + 1 + 30);
	ck_assert_uint_eq(stats()->gap_bytes, 10);
}
END_TEST

START_TEST(close_before_tuple_drops_backlog)
{
	feed_data(ECV_DIR_WRITE, 0, 10, 0, 1);
	feed_close(2);
	expire_closed(2);
	ck_assert_uint_eq(n_frames, 0);
	ck_assert_uint_eq(stats()->backlog_dropped, 1);
	ck_assert_uint_eq(stats()->flows_active, 0);
}
END_TEST

START_TEST(role_from_listening_port)
{
	/* no kernel role; the local port 40000 is listening: we are the server, even
	 * though the lower-port rule would say otherwise */
	listen_port = 40000;
	feed_data(ECV_DIR_WRITE, 0, 1, ECV_F_TUPLE, 1);
	ck_assert_str_eq(frames[0].meta.role, "server");
	ck_assert(tuple_equal(&frames[0].meta.tuple, &fx.s2c));

	/* nothing listens: the lower port (443) is the server */
	fx_close();
	fx_open(0);
	feed_data(ECV_DIR_WRITE, 0, 1, ECV_F_TUPLE, 1);
	ck_assert_str_eq(frames[0].meta.role, "client");
	ck_assert(tuple_equal(&frames[0].meta.tuple, &fx.c2s));
}
END_TEST

START_TEST(idle_expiry_ends_flow)
{
	const uint64_t s = 1000000000ull;

	feed_data(ECV_DIR_WRITE, 0, 10, ECV_F_TUPLE | ECV_F_ROLE_CLIENT, 1 * s);
	ck_assert_uint_eq(conn_expire(fx.ct, 5 * s), 0);
	ck_assert_uint_eq(stats()->flows_active, 1);
	ck_assert_uint_eq(conn_expire(fx.ct, 12 * s), 1);
	ck_assert_uint_eq(stats()->flows_active, 0);
	ck_assert_uint_eq(n_frames, 1 + 3 + 1 + 3 + 1);
	ck_assert_uint_eq(frames[5].info.tcp_flags, PKT_TCP_FIN | PKT_TCP_ACK);
	ck_assert_int_eq(frames[8].meta.event, META_END);
}
END_TEST

START_TEST(reused_ssl_pointer_starts_new_flow)
{
	struct ecv_event *ev;

	feed_data(ECV_DIR_WRITE, 0, 10, ECV_F_TUPLE | ECV_F_ROLE_CLIENT, 1);
	ev = mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 10, ECV_F_TUPLE | ECV_F_ROLE_CLIENT);
	ev->lport = 40001;
	feed(ev, 2);
	check_flows(2, 1, 1);
}
END_TEST

/* SSL_write on one CPU, SSL_free on another: the close can be read first. The late data
 * still goes out before the FINs, in the same flow, with no second handshake. */
START_TEST(data_after_close_within_grace)
{
	feed_data(ECV_DIR_WRITE, 0, 10, FS_CLIENT, 1);
	feed_close(2);
	feed_data(ECV_DIR_WRITE, 10, 20, ECV_F_TUPLE | ECV_F_FROM_START, 3);
	expire_closed(2);
	ck_assert_uint_eq(stats()->flows_started, 1);
	ck_assert_uint_eq(n_frames, 1 + 3 + 2 + 3 + 1);
	check_tcp(&frames[5], &fx.c2s, fx.ic + 1 + 10, fx.is + 1, PKT_TCP_ACK | PKT_TCP_PSH);
	check_payload(&frames[5], ECV_DIR_WRITE, 10, 20);
	check_tcp(&frames[6], &fx.c2s, fx.ic + 1 + 30, fx.is + 1, PKT_TCP_FIN | PKT_TCP_ACK);
	ck_assert_uint_eq(frames[9].meta.bytes[0], 30);
	ck_assert_uint_eq(stats()->flows_active, 0);
}
END_TEST

/* The close read before every other event of its connection (they sat in another CPU's
 * buffer): the connection is still captured whole and then closed. */
START_TEST(close_read_before_the_data)
{
	struct ecv_event *ev[4];

	/* kernel order: START, write, read, CLOSE; read in the order CLOSE first */
	ev[0] = mk(ECV_EV_CLOSE, 0, 0, 0, 0);
	ev[0]->ts_ns = 400;
	ev[1] = mk(ECV_EV_START, 0, 0, 0, 0);
	ev[1]->ts_ns = 100;
	ev[2] = mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 10, FS_CLIENT);
	ev[2]->ts_ns = 200;
	ev[3] = mk(ECV_EV_DATA, ECV_DIR_READ, 0, 5, ECV_F_TUPLE | ECV_F_FROM_START);
	ev[3]->ts_ns = 300;
	for (int i = 0; i < 4; i++)
		feed(ev[i], 1000 + i);
	ck_assert_uint_eq(n_frames, 1 + 3 + 2 + 1); /* the read is acknowledged */
	expire_closed(1000);
	ck_assert_uint_eq(n_frames, 1 + 3 + 2 + 1 + 3 + 1);
	ck_assert_uint_eq(stats()->flows_started, 1);
	ck_assert_uint_eq(stats()->flows_ended, 1);
	check_tcp(&frames[7], &fx.c2s, fx.ic + 1 + 10, fx.is + 1 + 5, PKT_TCP_FIN | PKT_TCP_ACK);
	ck_assert_uint_eq(stats()->flows_active, 0);
}
END_TEST

/* The allocator hands the freed SSL's address to the next connection at once: a new
 * handshake on a closing entry ends the old flow there and then. */
START_TEST(reuse_during_grace_ends_old_flow)
{
	struct ecv_event *ev;

	feed_data(ECV_DIR_WRITE, 0, 10, FS_CLIENT, 1);
	feed_close(2);
	feed(mk(ECV_EV_START, 0, 0, 0, 0), 3);
	ck_assert_uint_eq(stats()->flows_ended, 1);
	ev = mk(ECV_EV_SOCK, 0, 0, 0, ECV_F_TUPLE | ECV_F_ROLE_CLIENT);
	ev->lport = 40001;
	feed(ev, 4);
	ck_assert_uint_eq(stats()->flows_started, 2);
	ck_assert_uint_eq(stats()->flows_active, 1);
	/* the new connection was followed from its handshake: it opens with a SYN */
	ck_assert_int_eq(frames[n_frames - 4].kind, PKT_META);
	ck_assert(frames[n_frames - 4].meta.from_start);
	ck_assert_uint_eq(frames[n_frames - 3].info.tcp_flags, PKT_TCP_SYN);
	ck_assert_uint_eq(frames[n_frames - 3].info.tuple.sport, 40001);
}
END_TEST

/* wrk reuses one SSL object: SSL_shutdown (CLOSE, the entry stays), SSL_clear, SSL_set_fd
 * on the next socket, SSL_connect (a new START, offsets from 0 again), the new socket
 * (SOCK, new tuple). Every connection is its own flow: its own tuple, SYN, bytes from its
 * ISN + 1 and FINs, none of the old connection's offsets carried over. */
START_TEST(ssl_clear_reuse_one_flow_per_connection)
{
	uint64_t ts = 100;

	for (uint16_t k = 0; k < 3; k++) {
		struct ecv_event *ev[4];
		struct ecv_tuple c2s, s2c, prev, prev_r;
		uint32_t ic, is;
		unsigned f0 = n_frames;

		c2s = fx.c2s;
		c2s.sport = 40000 + k;
		tuple_reverse(&s2c, &c2s);
		ic = isn_compute(&c2s);
		is = isn_compute(&s2c);
		ev[0] = mk(ECV_EV_START, 0, 0, 0, ECV_F_FROM_START);
		ev[1] = mk(ECV_EV_SOCK, 0, 0, 0, FS_CLIENT);
		ev[2] = mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 10, FS_CLIENT);
		ev[3] = mk(ECV_EV_DATA, ECV_DIR_READ, 0, 20, FS_CLIENT);
		for (int i = 0; i < 4; i++) {
			ev[i]->lport = 40000 + k;
			ev[i]->ts_ns = ts++;
			feed(ev[i], ts);
		}
		ev[0] = mk(ECV_EV_CLOSE, 0, 0, 0, FS_CLIENT);
		ev[0]->lport = 40000 + k;
		ev[0]->ts_ns = ts++;
		feed(ev[0], ts);
		/* the previous connection ended at this START: its FINs and end record
		 * came first, with its own tuple, sequence numbers and byte counts */
		if (k > 0) {
			prev = c2s;
			prev.sport--;
			tuple_reverse(&prev_r, &prev);
			check_tcp(&frames[f0], &prev, isn_compute(&prev) + 1 + 10,
				  isn_compute(&prev_r) + 1 + 20, PKT_TCP_FIN | PKT_TCP_ACK);
			ck_assert_int_eq(frames[f0 + 3].meta.event, META_END);
			ck_assert_uint_eq(frames[f0 + 3].meta.tuple.sport, 40000 + k - 1);
			ck_assert_uint_eq(frames[f0 + 3].meta.bytes[0], 10);
			ck_assert_uint_eq(frames[f0 + 3].meta.bytes[1], 20);
			f0 += 4;
		}
		ck_assert_uint_eq(n_frames, f0 + 1 + 3 + 2 + 1);
		ck_assert_int_eq(frames[f0].meta.event, META_START);
		ck_assert(frames[f0].meta.from_start);
		ck_assert_uint_eq(frames[f0].meta.tuple.sport, 40000 + k);
		check_tcp(&frames[f0 + 1], &c2s, ic, 0, PKT_TCP_SYN);
		check_tcp(&frames[f0 + 4], &c2s, ic + 1, is + 1, PKT_TCP_PSH | PKT_TCP_ACK);
		check_payload(&frames[f0 + 4], ECV_DIR_WRITE, 0, 10);
		check_tcp(&frames[f0 + 5], &s2c, is + 1, ic + 1 + 10, PKT_TCP_PSH | PKT_TCP_ACK);
		check_payload(&frames[f0 + 5], ECV_DIR_READ, 0, 20);
		check_tcp(&frames[f0 + 6], &c2s, ic + 1 + 10, is + 1 + 20, PKT_TCP_ACK);
	}
	expire_closed(ts);
	check_flows(3, 3, 0);
	ck_assert_uint_eq(stats()->gaps, 0);
}
END_TEST

/* The socket hook may report an SSL object after its SSL_free: that alone must not open
 * a flow (no start record, no FINs later). */
START_TEST(socket_event_alone_opens_nothing)
{
	const uint64_t s = 1000000000ull;

	feed_data(ECV_DIR_WRITE, 0, 10, ECV_F_TUPLE | ECV_F_ROLE_CLIENT, 1);
	feed_close(2);
	expire_closed(2);
	n_frames = 0;
	feed(mk(ECV_EV_SOCK, 0, 0, 0, FS_CLIENT), 3 * s);
	ck_assert_uint_eq(n_frames, 0);
	ck_assert_uint_eq(conn_expire(fx.ct, 20 * s), 1); /* idle: dropped silently */
	feed(mk(ECV_EV_SOCK, 0, 0, 0, ECV_F_TUPLE), 21 * s);
	feed_close(22 * s);
	expire_closed(22 * s);
	ck_assert_uint_eq(n_frames, 0);
	ck_assert_uint_eq(stats()->flows_started, 1);
	ck_assert_uint_eq(stats()->flows_active, 0);
}
END_TEST

START_TEST(malformed_events_rejected)
{
	struct ecv_event *ev = mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 100, ECV_F_TUPLE);

	ck_assert_int_eq(conn_handle(fx.ct, ev, ECV_EVENT_HDR_LEN - 1, 1), -EINVAL);
	ck_assert_int_eq(conn_handle(fx.ct, ev, ECV_EVENT_HDR_LEN + 99, 1), -EINVAL);
	ev->len = ECV_CHUNK_SIZE + 1;
	ck_assert_int_eq(conn_handle(fx.ct, ev, sizeof(*ev), 1), -EINVAL);
	ev->len = 1;
	ev->dir = 2;
	ck_assert_int_eq(conn_handle(fx.ct, ev, sizeof(*ev), 1), -EINVAL);
	ev->dir = 0;
	ev->type = 99;
	ck_assert_int_eq(conn_handle(fx.ct, ev, sizeof(*ev), 1), -EINVAL);
	free(ev);
	ck_assert_uint_eq(stats()->invalid, 5);
	ck_assert_uint_eq(n_frames, 0);
}
END_TEST

START_TEST(many_connections_grow_table)
{
	for (unsigned i = 0; i < 5000; i++) {
		struct ecv_event *ev =
			mk(ECV_EV_DATA, ECV_DIR_WRITE, 0, 1, ECV_F_TUPLE | ECV_F_ROLE_CLIENT);

		ev->ssl += i * 64;
		ev->lport = 20000 + i;
		n_frames = 0;
		feed(ev, 1);
	}
	ck_assert_uint_eq(stats()->flows_active, 5000);
	n_frames = 0;
	for (unsigned i = 0; i < 5000; i += 1000) {
		struct ecv_event *ev = mk(ECV_EV_CLOSE, 0, 0, 0, 0);

		ev->ssl += i * 64;
		feed(ev, 2);
	}
	ck_assert_uint_eq(conn_expire(fx.ct, 2 + CONN_CLOSE_GRACE_NS), 5);
	ck_assert_uint_eq(stats()->flows_active, 4995);
	ck_assert_uint_eq(stats()->flows_ended, 5);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("agent_conn");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, fx_setup, fx_close);

	tcase_add_test(tc, from_start_client);
	tcase_add_test(tc, server_side_same_sequence_space);
	tcase_add_test(tc, client_upload_gets_the_server_window);
	tcase_add_test(tc, mid_stream_gets_a_handshake);
	tcase_add_test(tc, gap_is_left_visible);
	tcase_add_test(tc, truncated_call_counted_and_not_shifted);
	tcase_add_test(tc, ipv6_frames);
	tcase_add_test(tc, backlog_until_tuple_then_bounded);
	tcase_add_test(tc, close_before_tuple_drops_backlog);
	tcase_add_test(tc, role_from_listening_port);
	tcase_add_test(tc, idle_expiry_ends_flow);
	tcase_add_test(tc, reused_ssl_pointer_starts_new_flow);
	tcase_add_test(tc, data_after_close_within_grace);
	tcase_add_test(tc, reuse_during_grace_ends_old_flow);
	tcase_add_test(tc, ssl_clear_reuse_one_flow_per_connection);
	tcase_add_test(tc, close_read_before_the_data);
	tcase_add_test(tc, socket_event_alone_opens_nothing);
	tcase_add_test(tc, malformed_events_rejected);
	tcase_add_test(tc, many_connections_grow_table);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(conn_suite());
}
