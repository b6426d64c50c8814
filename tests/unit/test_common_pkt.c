/* tests/unit/test_common_pkt.c - frame synthesis, segmentation and parsing.
 * Checksums are verified with an independent naive one's-complement sum written here,
 * not with pkt_csum(). Malformed frames are hand-written byte arrays (a minimal valid
 * IPv4/TCP frame, copied and then broken one field at a time). */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check_run.h"
#include "pkt.h"

static const struct pkt_l2 l2 = {
	.src = { 0x02, 0, 0, 0, 0, 0x01 },
	.dst = { 0x02, 0, 0, 0, 0, 0x02 },
};

static void mk_tuple(struct ecv_tuple *t, const char *s, uint16_t sp, const char *d, uint16_t dp,
		     uint8_t proto)
{
	uint8_t sa[16], da[16];

	ck_assert_int_eq(tuple_addr_parse(s, sa, NULL), 0);
	ck_assert_int_eq(tuple_addr_parse(d, da, NULL), 0);
	ck_assert_int_eq(tuple_init(t, sa, sp, da, dp, proto), 0);
}

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Naive RFC 1071 sum: add 16-bit big-endian words into a wide accumulator, fold once
 * at the end. A correct checksum makes the sum over the data (checksum included) 0xffff. */
static uint64_t naive_add(uint64_t sum, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		sum += (i % 2 == 0) ? (uint64_t)p[i] << 8 : p[i];
	return sum;
}

static unsigned naive_fold(uint64_t sum)
{
	while (sum > 0xffff)
		sum = (sum & 0xffff) + (sum >> 16);
	return (unsigned)sum;
}

/* Sum of pseudo-header + L4 segment of an IPv4 frame whose IP header starts at ip. */
static unsigned l4_sum_v4(const uint8_t *ip)
{
	unsigned ihl = (ip[0] & 15) * 4, tot = be16(ip + 2);
	uint8_t ph[12];

	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = ip[9];
	ph[10] = (tot - ihl) >> 8;
	ph[11] = (tot - ihl) & 0xff;
	return naive_fold(naive_add(naive_add(0, ph, 12), ip + ihl, tot - ihl));
}

static unsigned l4_sum_v6(const uint8_t *ip)
{
	unsigned plen = be16(ip + 4);
	uint8_t ph[40] = { 0 };

	memcpy(ph, ip + 8, 32);
	ph[34] = plen >> 8;
	ph[35] = plen & 0xff;
	ph[39] = ip[6];
	return naive_fold(naive_add(naive_add(0, ph, 40), ip + 40, plen));
}

START_TEST(test_build_v4_tcp)
{
	struct pkt_tcp tcp = { .seq = 0x11223344,
			       .ack = 0x55667788,
			       .flags = PKT_TCP_PSH | PKT_TCP_ACK };
	uint8_t buf[256], *ip = buf + 14, *th = buf + 34;
	struct ecv_tuple t;
	int n;

	mk_tuple(&t, "10.0.0.1", 40000, "10.0.0.2", 443, IPPROTO_TCP);
	n = pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 0x1234, "hello", 5);
	ck_assert_int_eq(n, 14 + 20 + 20 + 5);
	ck_assert_mem_eq(buf, l2.dst, 6);
	ck_assert_mem_eq(buf + 6, l2.src, 6);
	ck_assert_uint_eq(be16(buf + 12), 0x0800);
	ck_assert_uint_eq(ip[0], 0x45);
	ck_assert_uint_eq(be16(ip + 2), 45);
	ck_assert_uint_eq(be16(ip + 4), 0x1234);
	ck_assert_uint_eq(be16(ip + 6), 0x4000); /* DF, no fragment offset */
	ck_assert_uint_eq(ip[8], 64);
	ck_assert_uint_eq(ip[9], 6);
	ck_assert_mem_eq(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	ck_assert_uint_eq(naive_fold(naive_add(0, ip, 20)), 0xffff);
	ck_assert_uint_eq(be16(th), 40000);
	ck_assert_uint_eq(be16(th + 2), 443);
	ck_assert_uint_eq(be32(th + 4), 0x11223344);
	ck_assert_uint_eq(be32(th + 8), 0x55667788);
	ck_assert_uint_eq(th[12], 0x50);
	ck_assert_uint_eq(th[13], PKT_TCP_PSH | PKT_TCP_ACK);
	ck_assert_uint_eq(be16(th + 14), 65535); /* window 0 means the default */
	ck_assert_uint_eq(be16(th + 18), 0);
	ck_assert_mem_eq(th + 20, "hello", 5);
	ck_assert_uint_eq(l4_sum_v4(ip), 0xffff);
	/* Break one payload byte: the independent sum notices, and so does the library. */
	th[20] ^= 1;
	ck_assert_uint_ne(l4_sum_v4(ip), 0xffff);
}
END_TEST

/* A SYN with options: MSS and window scale after the fixed header (data offset 7), in the
 * checksum, and read back by pkt_parse(); a scale beyond RFC 7323's 14 is refused. */
START_TEST(test_build_syn_options)
{
	struct pkt_tcp tcp = { .seq = 7, .flags = PKT_TCP_SYN, .mss = 1410, .wscale = 14 };
	uint8_t buf[256], *th = buf + 34;
	struct ecv_tuple t;
	struct pkt_info pi;
	int n;

	mk_tuple(&t, "10.0.0.1", 40000, "10.0.0.2", 443, IPPROTO_TCP);
	n = pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 1, NULL, 0);
	ck_assert_int_eq(n, 14 + 20 + 28);
	ck_assert_uint_eq(be16(buf + 16), 48); /* IP total length */
	ck_assert_uint_eq(th[12], 0x70);
	ck_assert_mem_eq(th + 20, "\x02\x04\x05\x82\x01\x03\x03\x0e", 8);
	ck_assert_uint_eq(l4_sum_v4(buf + 14), 0xffff);
	ck_assert_int_eq(pkt_parse(buf, (size_t)n, &pi), 0);
	ck_assert_uint_eq(pi.tcp_opts, PKT_OPT_MSS | PKT_OPT_WSCALE);
	ck_assert_uint_eq(pi.mss, 1410);
	ck_assert_uint_eq(pi.wscale, 14);
	ck_assert_uint_eq(pi.payload_len, 0);
	ck_assert(pkt_checksums_ok(buf, &pi));
	/* the same through the general walk (IPv6) */
	mk_tuple(&t, "2001:db8::1", 40000, "2001:db8::2", 443, IPPROTO_TCP);
	n = pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 1, NULL, 0);
	ck_assert_int_eq(n, 14 + 40 + 28);
	ck_assert_int_eq(pkt_parse(buf, (size_t)n, &pi), 0);
	ck_assert_uint_eq(pi.tcp_opts, PKT_OPT_MSS | PKT_OPT_WSCALE);
	ck_assert_uint_eq(pi.mss, 1410);
	ck_assert_uint_eq(pi.wscale, 14);
	ck_assert(pkt_checksums_ok(buf, &pi));
	/* a malformed option (length 0) ends the walk: nothing read, the frame still parses */
	th = buf + 14 + 40;
	th[21] = 0;
	ck_assert_int_eq(pkt_parse(buf, (size_t)n, &pi), 0);
	ck_assert_uint_eq(pi.tcp_opts, 0);
	/* options of a segment without SYN are not read */
	tcp.flags = PKT_TCP_ACK;
	n = pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 1, NULL, 0);
	ck_assert_int_eq(pkt_parse(buf, (size_t)n, &pi), 0);
	ck_assert_uint_eq(pi.tcp_opts, 0);
	tcp.wscale = 15;
	ck_assert_int_eq(pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 1, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_build_v6_tcp_vlan)
{
	struct pkt_l2 tagged = l2;
	struct pkt_tcp tcp = { .seq = 1, .ack = 2, .window = 1000, .flags = PKT_TCP_SYN };
	uint8_t buf[256], *ip = buf + 18;
	struct ecv_tuple t;
	int n;

	tagged.vlan = 100;
	mk_tuple(&t, "2001:db8::1", 55555, "2001:db8::2", 443, IPPROTO_TCP);
	n = pkt_build(buf, sizeof(buf), &tagged, &t, &tcp, 7, "abc", 3);
	ck_assert_int_eq(n, 18 + 40 + 20 + 3);
	ck_assert_uint_eq(be16(buf + 12), 0x8100);
	ck_assert_uint_eq(be16(buf + 14), 100);
	ck_assert_uint_eq(be16(buf + 16), 0x86dd);
	ck_assert_uint_eq(be32(ip), 0x60000000);
	ck_assert_uint_eq(be16(ip + 4), 23);
	ck_assert_uint_eq(ip[6], 6);
	ck_assert_uint_eq(ip[7], 64);
	ck_assert_mem_eq(ip + 8, t.saddr, 16);
	ck_assert_mem_eq(ip + 24, t.daddr, 16);
	ck_assert_uint_eq(be16(ip + 40 + 14), 1000);
	ck_assert_uint_eq(ip[40 + 13], PKT_TCP_SYN);
	ck_assert_uint_eq(l4_sum_v6(ip), 0xffff);
}
END_TEST

START_TEST(test_build_udp)
{
	uint8_t buf[256];
	struct ecv_tuple t;
	int n;

	mk_tuple(&t, "192.0.2.1", 5353, "192.0.2.2", 53, IPPROTO_UDP);
	n = pkt_build(buf, sizeof(buf), &l2, &t, NULL, 9, "query", 5);
	ck_assert_int_eq(n, 14 + 20 + 8 + 5);
	ck_assert_uint_eq(buf[14 + 9], 17);
	ck_assert_uint_eq(be16(buf + 34 + 4), 13);
	ck_assert_uint_ne(be16(buf + 34 + 6), 0);
	ck_assert_uint_eq(l4_sum_v4(buf + 14), 0xffff);

	mk_tuple(&t, "2001:db8::1", 5353, "2001:db8::2", 53, IPPROTO_UDP);
	n = pkt_build(buf, sizeof(buf), NULL, &t, NULL, 0, "", 0);
	ck_assert_int_eq(n, 14 + 40 + 8);
	ck_assert_uint_eq(l4_sum_v6(buf + 14), 0xffff);
}
END_TEST

START_TEST(test_build_errors)
{
	static uint8_t big[70000], payload[65535];
	struct pkt_tcp tcp = { 0 };
	struct pkt_l2 bad_vlan = l2;
	uint8_t buf[128];
	struct ecv_tuple t, mixed;

	mk_tuple(&t, "10.0.0.1", 1, "10.0.0.2", 2, IPPROTO_TCP);
	ck_assert_int_eq(pkt_build(buf, 53, &l2, &t, &tcp, 0, NULL, 0), -ENOSPC);
	ck_assert_int_eq(pkt_build(buf, 54, &l2, &t, &tcp, 0, NULL, 0), 54);
	ck_assert_int_eq(pkt_build(buf, sizeof(buf), &l2, &t, NULL, 0, NULL, 0), -EINVAL);
	bad_vlan.vlan = 4095;
	ck_assert_int_eq(pkt_build(buf, sizeof(buf), &bad_vlan, &t, &tcp, 0, NULL, 0), -EINVAL);
	/* Largest IPv4 payload is 65535 - 20 - 20. */
	ck_assert_int_eq(pkt_build(big, sizeof(big), &l2, &t, &tcp, 0, payload, 65496), -EINVAL);
	ck_assert_int_eq(pkt_build(big, sizeof(big), &l2, &t, &tcp, 0, payload, 65495), 14 + 65535);
	mixed = t;
	mixed.family = AF_INET6; /* disagrees with the IPv4-mapped addresses */
	ck_assert_int_eq(pkt_build(buf, sizeof(buf), &l2, &mixed, &tcp, 0, NULL, 0), -EINVAL);
	mixed = t;
	mixed.proto = 1; /* ICMP */
	ck_assert_int_eq(pkt_build(buf, sizeof(buf), &l2, &mixed, &tcp, 0, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_mss)
{
	ck_assert_uint_eq(pkt_mss(1450, AF_INET), 1410);
	ck_assert_uint_eq(pkt_mss(1450, AF_INET6), 1390);
	ck_assert_uint_eq(pkt_mss(1500, AF_INET), 1460);
	ck_assert_uint_eq(pkt_mss(40, AF_INET), 0);
	ck_assert_uint_eq(pkt_mss(41, AF_INET), 1);
	ck_assert_uint_eq(pkt_mss(60, AF_INET6), 0);
	ck_assert_uint_eq(pkt_mss(61, AF_INET6), 1);
}
END_TEST

struct seg_log {
	int n;
	int fail_at; /* emit returns 42 on this call (1-based), 0 = never */
	uint32_t seq[16];
	uint8_t flags[16];
	uint16_t ip_id[16];
	uint32_t len[16];
	uint8_t data[8192];
	size_t data_len;
};

static int seg_emit(void *ctx, const uint8_t *frame, size_t len)
{
	struct seg_log *lg = ctx;
	struct pkt_info pi;

	ck_assert_int_eq(pkt_parse(frame, len, &pi), 0);
	ck_assert(pkt_checksums_ok(frame, &pi));
	ck_assert_int_lt(lg->n, 16);
	lg->seq[lg->n] = pi.seq;
	lg->flags[lg->n] = pi.tcp_flags;
	lg->ip_id[lg->n] = pi.ip_id;
	lg->len[lg->n] = pi.payload_len;
	memcpy(lg->data + lg->data_len, pi.payload, pi.payload_len);
	lg->data_len += pi.payload_len;
	lg->n++;
	return lg->n == lg->fail_at ? 42 : 0;
}

START_TEST(test_segment)
{
	struct pkt_tcp tcp = { .seq = 0xfffffc00, .ack = 77, .flags = PKT_TCP_PSH | PKT_TCP_ACK };
	static struct seg_log lg;
	uint8_t payload[3000];
	struct ecv_tuple t;
	uint16_t id = 65535;
	size_t i;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	mk_tuple(&t, "10.0.0.1", 40000, "10.0.0.2", 443, IPPROTO_TCP);
	memset(&lg, 0, sizeof(lg));
	ck_assert_int_eq(
		pkt_segment(&l2, &t, &tcp, &id, 1450, payload, sizeof(payload), seg_emit, &lg), 0);
	ck_assert_int_eq(lg.n, 3);
	ck_assert_uint_eq(lg.len[0], 1410);
	ck_assert_uint_eq(lg.len[1], 1410);
	ck_assert_uint_eq(lg.len[2], 180);
	ck_assert_uint_eq(lg.seq[0], 0xfffffc00);
	ck_assert_uint_eq(lg.seq[1], 0xfffffc00u + 1410); /* wraps past 2^32 */
	ck_assert_uint_eq(lg.seq[2], (uint32_t)(0xfffffc00u + 2820));
	ck_assert_uint_eq(lg.flags[0], PKT_TCP_ACK);
	ck_assert_uint_eq(lg.flags[1], PKT_TCP_ACK);
	ck_assert_uint_eq(lg.flags[2], PKT_TCP_PSH | PKT_TCP_ACK);
	ck_assert_uint_eq(lg.ip_id[0], 65535);
	ck_assert_uint_eq(lg.ip_id[1], 0);
	ck_assert_uint_eq(lg.ip_id[2], 1);
	ck_assert_uint_eq(id, 2);
	ck_assert_uint_eq(lg.data_len, sizeof(payload));
	ck_assert_mem_eq(lg.data, payload, sizeof(payload));

	/* IPv6 at the same MTU carries 20 bytes less per segment. */
	mk_tuple(&t, "2001:db8::1", 40000, "2001:db8::2", 443, IPPROTO_TCP);
	memset(&lg, 0, sizeof(lg));
	ck_assert_int_eq(pkt_segment(&l2, &t, &tcp, &id, 1450, payload, 2780, seg_emit, &lg), 0);
	ck_assert_int_eq(lg.n, 2);
	ck_assert_uint_eq(lg.len[0], 1390);
	ck_assert_uint_eq(lg.len[1], 1390);
	ck_assert_mem_eq(lg.data, payload, 2780);

	/* An empty payload is one bare segment (handshake and FIN). */
	tcp.flags = PKT_TCP_FIN | PKT_TCP_ACK;
	memset(&lg, 0, sizeof(lg));
	ck_assert_int_eq(pkt_segment(&l2, &t, &tcp, &id, 1450, NULL, 0, seg_emit, &lg), 0);
	ck_assert_int_eq(lg.n, 1);
	ck_assert_uint_eq(lg.len[0], 0);
	ck_assert_uint_eq(lg.flags[0], PKT_TCP_FIN | PKT_TCP_ACK);

	/* FIN, like PSH, only on the last piece. */
	memset(&lg, 0, sizeof(lg));
	ck_assert_int_eq(pkt_segment(&l2, &t, &tcp, &id, 1450, payload, 1391, seg_emit, &lg), 0);
	ck_assert_int_eq(lg.n, 2);
	ck_assert_uint_eq(lg.flags[0], PKT_TCP_ACK);
	ck_assert_uint_eq(lg.flags[1], PKT_TCP_FIN | PKT_TCP_ACK);

	/* The first non-zero emit return stops and is returned. */
	memset(&lg, 0, sizeof(lg));
	lg.fail_at = 2;
	ck_assert_int_eq(pkt_segment(&l2, &t, &tcp, &id, 100, payload, 1000, seg_emit, &lg), 42);
	ck_assert_int_eq(lg.n, 2);

	ck_assert_int_eq(pkt_segment(&l2, &t, &tcp, &id, 60, payload, 10, seg_emit, &lg), -EINVAL);
}
END_TEST

START_TEST(test_segment_jumbo)
{
	/* An MTU above the stack buffer makes pkt_segment allocate. */
	struct pkt_tcp tcp = { .seq = 1, .ack = 1, .flags = PKT_TCP_ACK };
	static uint8_t payload[8000];
	static struct seg_log lg;
	struct ecv_tuple t;
	uint16_t id = 0;

	memset(payload, 'j', sizeof(payload));
	mk_tuple(&t, "10.0.0.1", 1, "10.0.0.2", 2, IPPROTO_TCP);
	memset(&lg, 0, sizeof(lg));
	ck_assert_int_eq(pkt_segment(&l2, &t, &tcp, &id, 9000, payload, 8000, seg_emit, &lg), 0);
	ck_assert_int_eq(lg.n, 1);
	ck_assert_uint_eq(lg.len[0], 8000);
}
END_TEST

static void check_round_trip(const struct pkt_l2 *pl2, const struct ecv_tuple *t)
{
	struct pkt_tcp tcp = { .seq = 1000, .ack = 2000, .window = 512, .flags = PKT_TCP_ACK };
	uint8_t buf[512];
	struct pkt_info pi;
	int n;

	n = pkt_build(buf, sizeof(buf), pl2, t, &tcp, 99, "payload!", 8);
	ck_assert_int_gt(n, 0);
	/* Ethernet padding after the IP packet is not payload. */
	memset(buf + n, 0, 6);
	ck_assert_int_eq(pkt_parse(buf, (size_t)n + 6, &pi), 0);
	ck_assert(tuple_equal(&pi.tuple, t));
	ck_assert_uint_eq(pi.vlan, pl2->vlan);
	ck_assert_uint_eq(pi.seq, 1000);
	ck_assert_uint_eq(pi.ack, 2000);
	ck_assert_uint_eq(pi.window, 512);
	ck_assert_uint_eq(pi.tcp_flags, PKT_TCP_ACK);
	ck_assert_uint_eq(pi.ttl, 64);
	ck_assert_uint_eq(pi.payload_len, 8);
	ck_assert_uint_eq(pi.payload_off + 8, (unsigned)n);
	ck_assert_ptr_eq(pi.payload, buf + pi.payload_off);
	ck_assert_mem_eq(pi.payload, "payload!", 8);
	ck_assert(pkt_checksums_ok(buf, &pi));
	buf[pi.payload_off] ^= 0x20;
	ck_assert(!pkt_checksums_ok(buf, &pi));
}

START_TEST(test_round_trip)
{
	struct pkt_l2 tagged = l2;
	struct ecv_tuple t;

	mk_tuple(&t, "10.0.0.1", 40000, "10.0.0.2", 443, IPPROTO_TCP);
	check_round_trip(&l2, &t);
	tagged.vlan = 4094;
	check_round_trip(&tagged, &t);
	mk_tuple(&t, "2001:db8::1", 55555, "2001:db8::2", 443, IPPROTO_TCP);
	check_round_trip(&l2, &t);
	check_round_trip(&tagged, &t);
}
END_TEST

/* Minimal valid frame, written by hand: Ethernet, IPv4 (id 1, DF, TTL 64, TCP,
 * 10.0.0.1 -> 10.0.0.2, checksum 0x26c9), TCP 1234 -> 80, seq 1, ack 2, ACK, window
 * 65535, checksum 0 (parse does not check it), then 4 payload bytes "abcd". */
static const uint8_t v4_frame[] = {
	0x02, 0,    0,	 0,   0, 2, 0x02, 0, 0,	 0, 0,	  1,	0x08, 0x00, /* eth */
	0x45, 0,    0,	 44,  0, 1, 0x40, 0, 64, 6, 0x26, 0xc9, 10,   0,
	0,    1,    10,	 0,   0, 2, /* ip */
	0x04, 0xd2, 0,	 80,  0, 0, 0,	  1, 0,	 0, 0,	  2,	0x50, 0x10,
	0xff, 0xff, 0,	 0,   0, 0, /* tcp */
	'a',  'b',  'c', 'd',
};

START_TEST(test_parse_hand_frame)
{
	struct pkt_info pi;

	ck_assert_int_eq(pkt_parse(v4_frame, sizeof(v4_frame), &pi), 0);
	ck_assert_uint_eq(pi.ethertype, 0x0800);
	ck_assert_uint_eq(pi.l3_off, 14);
	ck_assert_uint_eq(pi.l4_off, 34);
	ck_assert_uint_eq(pi.payload_off, 54);
	ck_assert_uint_eq(pi.payload_len, 4);
	ck_assert_uint_eq(pi.ip_len, 44);
	ck_assert_uint_eq(pi.ip_id, 1);
	ck_assert_uint_eq(pi.tuple.sport, 1234);
	ck_assert_uint_eq(pi.tuple.dport, 80);
	ck_assert_uint_eq(pi.tuple.family, AF_INET);
	/* IP checksum written by hand above is right; the TCP one (0) is not. */
	ck_assert_uint_eq(naive_fold(naive_add(0, v4_frame + 14, 20)), 0xffff);
	ck_assert(!pkt_checksums_ok(v4_frame, &pi));
}
END_TEST

/* Each case: take v4_frame (or a prefix of it), patch bytes, expect one error. */
struct bad_case {
	const char *what;
	size_t len; /* 0 = whole frame */
	struct {
		int off;
		uint8_t val;
	} patch[4];
	int npatch;
	int err;
};

static const struct bad_case bad_cases[] = {
	{ "empty", 1, { { 0, 0 } }, 0, PKT_E_ETH_SHORT },
	{ "13 bytes", 13, { { 0, 0 } }, 0, PKT_E_ETH_SHORT },
	{ "vlan cut", 16, { { 12, 0x81 }, { 13, 0x00 } }, 2, PKT_E_VLAN_SHORT },
	{ "arp", 0, { { 12, 0x08 }, { 13, 0x06 } }, 2, PKT_E_ETHERTYPE },
	{ "ip cut", 33, { { 0, 0 } }, 0, PKT_E_IP_SHORT },
	{ "version 6 in 0x0800", 0, { { 14, 0x65 } }, 1, PKT_E_IP_VERSION },
	{ "ihl 4", 0, { { 14, 0x44 } }, 1, PKT_E_IP_IHL },
	{ "ihl 15 > buffer", 40, { { 14, 0x4f } }, 1, PKT_E_IP_IHL },
	{ "total length > buffer", 0, { { 16, 0 }, { 17, 45 } }, 2, PKT_E_IP_LEN },
	{ "total length < ihl", 0, { { 16, 0 }, { 17, 19 } }, 2, PKT_E_IP_LEN },
	{ "more fragments", 0, { { 20, 0x20 } }, 1, PKT_E_IP_FRAGMENT },
	{ "fragment offset", 0, { { 20, 0x40 }, { 21, 0x01 } }, 2, PKT_E_IP_FRAGMENT },
	{ "icmp", 0, { { 23, 1 } }, 1, PKT_E_L4_PROTO },
	{ "tcp cut", 0, { { 16, 0 }, { 17, 39 } }, 2, PKT_E_TCP_SHORT },
	{ "doff 4", 0, { { 46, 0x40 } }, 1, PKT_E_TCP_DOFF },
	{ "doff 7 > ip payload", 0, { { 46, 0x70 } }, 1, PKT_E_TCP_DOFF },
	{ "udp cut", 0, { { 23, 17 }, { 16, 0 }, { 17, 27 } }, 3, PKT_E_UDP_SHORT },
	{ "udp length 7", 0, { { 23, 17 }, { 38, 0 }, { 39, 7 } }, 3, PKT_E_UDP_LEN },
	{ "udp length > ip payload", 0, { { 23, 17 }, { 38, 0 }, { 39, 25 } }, 3, PKT_E_UDP_LEN },
};

START_TEST(test_parse_errors)
{
	const struct bad_case *c = &bad_cases[_i];
	uint8_t buf[sizeof(v4_frame)];
	struct pkt_info pi;
	size_t len = c->len ? c->len : sizeof(buf);
	int i, ret;

	memcpy(buf, v4_frame, sizeof(buf));
	for (i = 0; i < c->npatch; i++)
		buf[c->patch[i].off] = c->patch[i].val;
	if (c->len == 1)
		len = 0; /* "empty" */
	ret = pkt_parse(buf, len, &pi);
	ck_assert_msg(ret == -c->err, "%s: got %d (%s), want -%d (%s)", c->what, ret,
		      pkt_strerror(ret), c->err, pkt_strerror(c->err));
}
END_TEST

/* IPv6 header by hand: payload length plen, next header nh, 2001:db8::1 -> ::2. */
static size_t v6_frame(uint8_t *buf, uint8_t nh, unsigned plen)
{
	static const uint8_t hdr[] = {
		0x02, 0, 0,    0,    0,	   2,	 0x02, 0,    0, 0, 0, 1, 0x86, 0xdd, 0x60, 0, 0, 0,
		0,    0, 0,    64,   0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0,    0,    0,	   0, 0, 0,
		0,    1, 0x20, 0x01, 0x0d, 0xb8, 0,    0,    0, 0, 0, 0, 0,    0,    0,	   0, 0, 2,
	};

	memcpy(buf, hdr, sizeof(hdr));
	buf[18] = plen >> 8;
	buf[19] = plen & 0xff;
	buf[20] = nh;
	return sizeof(hdr);
}

START_TEST(test_parse_v6_errors)
{
	uint8_t buf[256] = { 0 };
	struct pkt_info pi;
	size_t n;

	n = v6_frame(buf, 6, 0);
	ck_assert_int_eq(pkt_parse(buf, n - 1, &pi), -PKT_E_IP_SHORT);
	buf[14] = 0x40;
	ck_assert_int_eq(pkt_parse(buf, n, &pi), -PKT_E_IP_VERSION);
	n = v6_frame(buf, 6, 21);
	ck_assert_int_eq(pkt_parse(buf, n + 20, &pi), -PKT_E_IP_LEN);
	n = v6_frame(buf, 6, 19);
	ck_assert_int_eq(pkt_parse(buf, n + 19, &pi), -PKT_E_TCP_SHORT);
	n = v6_frame(buf, 44, 8); /* fragment header */
	ck_assert_int_eq(pkt_parse(buf, n + 8, &pi), -PKT_E_IP_FRAGMENT);
	n = v6_frame(buf, 0, 4); /* hop-by-hop cut off */
	ck_assert_int_eq(pkt_parse(buf, n + 4, &pi), -PKT_E_IP6_EXT);
	n = v6_frame(buf, 60, 8); /* destination options claiming 16 bytes in 8 */
	buf[n] = 6;
	buf[n + 1] = 1;
	ck_assert_int_eq(pkt_parse(buf, n + 8, &pi), -PKT_E_IP6_EXT);
	n = v6_frame(buf, 59, 0); /* no next header */
	ck_assert_int_eq(pkt_parse(buf, n, &pi), -PKT_E_L4_PROTO);
	/* Eight chained hop-by-hop headers (the walk bound) then TCP parse... */
	n = v6_frame(buf, 0, 8 * 8 + 20);
	memset(buf + n, 0, 8 * 8 + 20);
	buf[n + 7 * 8] = 6;
	buf[n + 8 * 8 + 12] = 0x50;
	ck_assert_int_eq(pkt_parse(buf, n + 8 * 8 + 20, &pi), 0);
	ck_assert_uint_eq(pi.l4_off, n + 64);
	/* ...nine exceed it. */
	n = v6_frame(buf, 0, 9 * 8 + 20);
	memset(buf + n, 0, 9 * 8 + 20);
	ck_assert_int_eq(pkt_parse(buf, n + 9 * 8 + 20, &pi), -PKT_E_IP6_EXT);
}
END_TEST

START_TEST(test_parse_options_and_ext)
{
	struct pkt_tcp tcp = { .seq = 5, .ack = 6, .flags = PKT_TCP_ACK };
	uint8_t buf[512], out[512];
	struct ecv_tuple t;
	struct pkt_info pi;
	uint8_t *ip, *th;
	int n;

	/* IPv4 with 4 bytes of IP options (NOP x4) and 12 of TCP options (NOP x2 + timestamp),
	 * inserted by hand, lengths fixed and checksums recomputed with the naive sum. */
	mk_tuple(&t, "10.0.0.1", 1111, "10.0.0.2", 2222, IPPROTO_TCP);
	n = pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 3, "xyz", 3);
	ck_assert_int_eq(n, 57);
	memcpy(out, buf, 34);
	memset(out + 34, 1, 4);
	memcpy(out + 38, buf + 34, 20);
	memcpy(out + 58, "\x01\x01\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x02", 12);
	memcpy(out + 70, "xyz", 3);
	ip = out + 14;
	th = out + 38;
	ip[0] = 0x46;
	ip[3] = 24 + 32 + 3;
	ip[10] = ip[11] = 0;
	n = naive_fold(naive_add(0, ip, 24)) ^ 0xffff;
	ip[10] = n >> 8;
	ip[11] = n & 0xff;
	th[12] = 0x80;
	th[16] = th[17] = 0;
	n = l4_sum_v4(ip) ^ 0xffff;
	th[16] = n >> 8;
	th[17] = n & 0xff;
	ck_assert_int_eq(pkt_parse(out, 73, &pi), 0);
	ck_assert_uint_eq(pi.l4_off, 38);
	ck_assert_uint_eq(pi.payload_off, 70);
	ck_assert_uint_eq(pi.payload_len, 3);
	ck_assert_mem_eq(pi.payload, "xyz", 3);
	ck_assert(pkt_checksums_ok(out, &pi));

	/* IPv6 with an 8-byte hop-by-hop header (PadN) before TCP. */
	mk_tuple(&t, "2001:db8::1", 1111, "2001:db8::2", 2222, IPPROTO_TCP);
	n = pkt_build(buf, sizeof(buf), &l2, &t, &tcp, 0, "xyz", 3);
	memcpy(out, buf, 54);
	memcpy(out + 54, "\x06\x00\x01\x04\x00\x00\x00\x00", 8);
	memcpy(out + 62, buf + 54, 23);
	out[14 + 6] = 0; /* next header: hop-by-hop */
	out[14 + 5] = 8 + 23;
	ck_assert_int_eq(pkt_parse(out, 85, &pi), 0);
	ck_assert_uint_eq(pi.l4_off, 62);
	ck_assert_uint_eq(pi.tuple.proto, IPPROTO_TCP);
	ck_assert_uint_eq(pi.tuple.sport, 1111);
	ck_assert_mem_eq(pi.payload, "xyz", 3);
	/* Upper-layer length in the pseudo-header excludes the extension header. */
	ck_assert(pkt_checksums_ok(out, &pi));
}
END_TEST

START_TEST(test_parse_qinq_and_meta)
{
	uint8_t buf[128];
	struct pkt_info pi;

	/* 802.1ad outer tag 10, 802.1Q inner tag 20, then the hand-made IPv4 frame. */
	memcpy(buf, v4_frame, 12);
	memcpy(buf + 12, "\x88\xa8\x00\x0a\x81\x00\x00\x14", 8);
	memcpy(buf + 20, v4_frame + 12, sizeof(v4_frame) - 12);
	ck_assert_int_eq(pkt_parse(buf, sizeof(v4_frame) + 8, &pi), 0);
	ck_assert_uint_eq(pi.vlan, 10);
	ck_assert_uint_eq(pi.l3_off, 22);
	ck_assert_mem_eq(pi.payload, "abcd", 4);
	/* A third tag is not parsed. */
	memcpy(buf + 12, "\x81\x00\x00\x01\x81\x00\x00\x02\x81\x00", 10);
	ck_assert_int_eq(pkt_parse(buf, 40, &pi), -PKT_E_ETHERTYPE);

	memcpy(buf + 12, "\x88\xb5{}", 4);
	ck_assert_int_eq(pkt_parse(buf, 16, &pi), PKT_META);
	ck_assert_uint_eq(pi.ethertype, ETH_P_ECV_META);
	ck_assert_uint_eq(pi.payload_len, 2);
	ck_assert_mem_eq(pi.payload, "{}", 2);
}
END_TEST

START_TEST(test_csum_and_names)
{
	/* RFC 1071 §3 example: the sum of these words is 0xddf2, checksum 0x220d. */
	static const uint8_t rfc[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint16_t c = pkt_csum(rfc, sizeof(rfc));
	uint8_t *b = (uint8_t *)&c;

	ck_assert_uint_eq(b[0], 0x22);
	ck_assert_uint_eq(b[1], 0x0d);
	c = pkt_csum("\x01", 1); /* odd length pads with zero: ~0x0100 */
	ck_assert_uint_eq(b[0], 0xfe);
	ck_assert_uint_eq(b[1], 0xff);
	ck_assert_str_eq(pkt_strerror(-PKT_E_ETH_SHORT), "eth_short");
	ck_assert_str_eq(pkt_strerror(-PKT_E_TCP_DOFF), "tcp_doff");
	ck_assert_str_eq(pkt_strerror(-PKT_E_UDP_LEN), "udp_len");
	ck_assert_str_eq(pkt_strerror(-999), "unknown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pkt");
	TCase *b = tcase_create("build"), *p = tcase_create("parse");

	tcase_add_test(b, test_build_v4_tcp);
	tcase_add_test(b, test_build_syn_options);
	tcase_add_test(b, test_build_v6_tcp_vlan);
	tcase_add_test(b, test_build_udp);
	tcase_add_test(b, test_build_errors);
	tcase_add_test(b, test_mss);
	tcase_add_test(b, test_segment);
	tcase_add_test(b, test_segment_jumbo);
	tcase_add_test(p, test_round_trip);
	tcase_add_test(p, test_parse_hand_frame);
	tcase_add_loop_test(p, test_parse_errors, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(p, test_parse_v6_errors);
	tcase_add_test(p, test_parse_options_and_ext);
	tcase_add_test(p, test_parse_qinq_and_meta);
	tcase_add_test(p, test_csum_and_names);
	suite_add_tcase(s, b);
	suite_add_tcase(s, p);
	return check_run(s);
}
