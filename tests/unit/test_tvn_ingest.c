/* tests/unit/test_tvn_ingest.c - what tvn accepts and rejects per datagram (and, for the
 * --rx ring path, per outer IP/UDP header), and how an --out spec is read. Frames are
 * built with common/pkt (pkt_build), datagrams by hand, bad outer headers by editing a
 * valid pkt_build() frame and fixing its checksums so that one defect remains. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../tvn/afpacket.h"
#include "../../tvn/egress.h"
#include "../../tvn/ingest.h"
#include "check_run.h"
#include "meta.h"
#include "pkt.h"
#include "vxlan.h"

static const uint8_t src2[16] = { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 2 };
static const uint8_t src3[16] = { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 3 };

/* VxLAN(vni) + a TCP frame with 5 bytes of payload; returns the datagram length. */
static size_t datagram(uint8_t *buf, size_t cap, uint32_t vni)
{
	struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, 0, 1 }, .dst = { 2, 0, 0, 0, 0, 2 } };
	struct pkt_tcp tcp = { .seq = 1000, .ack = 1, .flags = PKT_TCP_ACK };
	uint8_t a[16], b[16], fam;
	struct ecv_tuple t;
	int n;

	tuple_addr_parse("10.0.0.1", a, &fam);
	tuple_addr_parse("10.0.0.2", b, &fam);
	tuple_init(&t, a, 40000, b, 443, IPPROTO_TCP);
	ck_assert_int_eq(vxlan_encode(buf, vni), 0);
	n = pkt_build(buf + VXLAN_HDR_LEN, cap - VXLAN_HDR_LEN, &l2, &t, &tcp, 1, "hello", 5);
	ck_assert_int_gt(n, 0);
	return VXLAN_HDR_LEN + (size_t)n;
}

static int reason_of(int ret)
{
	ck_assert_int_lt(ret, 0);
	return -ret - 1;
}

START_TEST(accepts_and_names_source)
{
	static struct ingest_pkt p;
	struct ingest_cfg cfg = { 0 };
	uint8_t buf[2048];
	size_t n = datagram(buf, sizeof(buf), 42);

	ck_assert_int_eq(ingest_datagram(&cfg, buf, n, src2, &p), INGEST_FRAME);
	ck_assert_uint_eq(p.src.vni, 42);
	ck_assert_mem_eq(p.src.addr, src2, 16);
	ck_assert_uint_eq(p.info.payload_len, 5);
	ck_assert_mem_eq(p.info.payload, "hello", 5);
	ck_assert_ptr_eq(p.frame, buf + VXLAN_HDR_LEN);
}
END_TEST

START_TEST(allow_and_vni_lists)
{
	static struct ingest_pkt p;
	struct args_cidr allow;
	uint32_t vnis[] = { 7, 42 };
	struct ingest_cfg cfg = { .allow = &allow, .n_allow = 1, .vnis = vnis, .n_vnis = 2 };
	uint8_t buf[2048];
	size_t n = datagram(buf, sizeof(buf), 42);

	ck_assert_int_eq(args_parse_cidr("127.0.0.2/32", &allow), 0);
	ck_assert_int_eq(ingest_datagram(&cfg, buf, n, src2, &p), INGEST_FRAME);
	ck_assert_int_eq(reason_of(ingest_datagram(&cfg, buf, n, src3, &p)), INGEST_R_SOURCE);
	ck_assert_str_eq(ingest_reason_name(INGEST_R_SOURCE), "source");
	n = datagram(buf, sizeof(buf), 8);
	ck_assert_int_eq(reason_of(ingest_datagram(&cfg, buf, n, src2, &p)), INGEST_R_VNI);
	ck_assert_str_eq(ingest_reason_name(INGEST_R_VNI), "vni");
}
END_TEST

START_TEST(malformed_reasons)
{
	static struct ingest_pkt p;
	struct ingest_cfg cfg = { 0 };
	uint8_t buf[2048];
	size_t n = datagram(buf, sizeof(buf), 1);
	int r;

	r = reason_of(ingest_datagram(&cfg, buf, 7, src2, &p));
	ck_assert_str_eq(ingest_reason_name(r), "short");
	buf[0] = 0;
	r = reason_of(ingest_datagram(&cfg, buf, n, src2, &p));
	ck_assert_str_eq(ingest_reason_name(r), "flags");
	buf[0] = 0x08;
	r = reason_of(ingest_datagram(&cfg, buf, VXLAN_HDR_LEN + 10, src2, &p));
	ck_assert_str_eq(ingest_reason_name(r), "eth_short");
	/* IPv4 total length larger than what arrived. */
	r = reason_of(ingest_datagram(&cfg, buf, n - 3, src2, &p));
	ck_assert_str_eq(ingest_reason_name(r), "ip_len");
	/* Metadata frame with JSON that does not parse. */
	buf[VXLAN_HDR_LEN + 12] = 0x88;
	buf[VXLAN_HDR_LEN + 13] = 0xb5;
	memcpy(buf + VXLAN_HDR_LEN + 14, "{\"v\":1,", 7);
	r = reason_of(ingest_datagram(&cfg, buf, VXLAN_HDR_LEN + 21, src2, &p));
	ck_assert_str_eq(ingest_reason_name(r), "meta");
	for (r = 0; r < INGEST_N_REASONS; r++)
		ck_assert_str_ne(ingest_reason_name(r), "unknown");
}
END_TEST

START_TEST(meta_frames)
{
	static struct ingest_pkt p;
	static struct meta_flow m;
	struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, 0, 1 } };
	struct ingest_cfg cfg = { 0 };
	uint8_t buf[8192], fam;
	int n;

	tuple_addr_parse("10.0.0.1", m.tuple.saddr, &fam);
	tuple_addr_parse("10.0.0.2", m.tuple.daddr, &fam);
	tuple_init(&m.tuple, m.tuple.saddr, 1, m.tuple.daddr, 2, IPPROTO_TCP);
	strcpy(m.node, "node-a");
	vxlan_encode(buf, 1);
	n = meta_build_frame(buf + VXLAN_HDR_LEN, sizeof(buf) - VXLAN_HDR_LEN, &l2, &m);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(ingest_datagram(&cfg, buf, VXLAN_HDR_LEN + (size_t)n, src2, &p),
			 INGEST_META);
	ck_assert_str_eq(p.meta.node, "node-a");
}
END_TEST

START_TEST(out_specs)
{
	struct egress_out_cfg o;
	const char *why;

	ck_assert_int_eq(
		egress_parse_spec("pcap:/tmp/x.pcap,snaplen=96,origin=vlan,size=10m,time=1m", &o,
				  &why),
		0);
	ck_assert_int_eq(o.type, EGRESS_PCAP);
	ck_assert_str_eq(o.target, "/tmp/x.pcap");
	ck_assert_uint_eq(o.snaplen, 96);
	ck_assert(o.origin_vlan);
	ck_assert_uint_eq(o.rotate_bytes, 10u << 20);
	ck_assert_uint_eq(o.rotate_ms, 60000);
	ck_assert_str_eq(o.name, "pcap:/tmp/x.pcap");
	/* filter= last takes the rest, commas included. */
	ck_assert_int_eq(egress_parse_spec("vxlan:10.0.0.9:4790,vni=42,filter=tcp port 443, or udp",
					   &o, &why),
			 0);
	ck_assert_int_eq(o.type, EGRESS_VXLAN);
	ck_assert_str_eq(o.target, "10.0.0.9:4790");
	ck_assert_uint_eq(o.vni, 42);
	ck_assert_str_eq(o.filter, "tcp port 443, or udp");
	/* A quoted filter may be followed by more options. */
	ck_assert_int_eq(egress_parse_spec("iface:eth9,filter=\"tcp, udp\",snaplen=64", &o, &why),
			 0);
	ck_assert_str_eq(o.filter, "tcp, udp");
	ck_assert_uint_eq(o.snaplen, 64);
	ck_assert_int_eq(egress_parse_spec("pcap:-,queue=2m", &o, &why), 0);
	ck_assert_uint_eq(o.queue_bytes, 2u << 20);
	ck_assert_int_eq(egress_parse_spec("pcap:-,queue=1k", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("file:x", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("pcap:", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("pcap:x,vni=3", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("pcap:x,snaplen=abc", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("vxlan:h,vni=16777216", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("pcap:x,origin=mpls", &o, &why), -EINVAL);
	ck_assert_int_eq(egress_parse_spec("pcap:x,filter=\"open", &o, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(origin_vlan_ids)
{
	struct dedup_src s = {
		.addr = { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 0, [14] = 3, [15] = 7 }
	};

	ck_assert_uint_eq(egress_origin_vlan_id(&s), 775);
	s.addr[14] = 0, s.addr[15] = 0;
	ck_assert_uint_eq(egress_origin_vlan_id(&s), 4094);
	s.addr[15] = 2;
	ck_assert_uint_eq(egress_origin_vlan_id(&s), 2);
}
END_TEST

/* --- afp_outer(): the outer Ethernet / IPv4 or IPv6 / UDP headers of a ring frame --- */

/* An outer frame: Ethernet (802.1Q tag vlan, 0: none) / IPv4 or IPv6 / UDP 40000 -> 4789
 * carrying the VxLAN datagram datagram() builds (VNI 42), from 127.0.0.2 (v6:
 * 2001:db8::1), all checksums valid. Returns the frame length; *dlen gets the datagram's
 * length. */
static size_t outer_frame(uint8_t *buf, size_t cap, bool v6, uint16_t vlan, size_t *dlen)
{
	struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, 0, 3 },
			     .dst = { 2, 0, 0, 0, 0, 4 },
			     .vlan = vlan };
	struct pkt_tcp unused = { 0 };
	uint8_t dg[2048], a[16], b[16], fam;
	struct ecv_tuple t;
	int n;

	*dlen = datagram(dg, sizeof(dg), 42);
	tuple_addr_parse(v6 ? "2001:db8::1" : "127.0.0.2", a, &fam);
	tuple_addr_parse(v6 ? "2001:db8::2" : "127.0.0.1", b, &fam);
	tuple_init(&t, a, 40000, b, VXLAN_PORT, IPPROTO_UDP);
	n = pkt_build(buf, cap, &l2, &t, &unused, 1, dg, *dlen);
	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Recomputes the IPv4 header checksum after a test edited the header. */
static void ip4_fix(uint8_t *ip)
{
	uint16_t c;

	wr16(ip + 10, 0);
	c = pkt_csum(ip, (ip[0] & 0xfu) * 4u);
	memcpy(ip + 10, &c, sizeof(c));
}

/* Recomputes the UDP checksum of the datagram at udp (length from its header) over the
 * pseudo-header of the IPv4 or IPv6 header at ip. */
static void udp_fix(const uint8_t *ip, uint8_t *udp)
{
	static uint8_t tmp[40 + 65536];
	size_t ulen = rd16(udp + 4), h;
	uint16_t c;

	wr16(udp + 6, 0);
	memset(tmp, 0, 40);
	if ((ip[0] >> 4) == 4) {
		memcpy(tmp, ip + 12, 8);
		tmp[9] = IPPROTO_UDP;
		wr16(tmp + 10, (uint16_t)ulen);
		h = 12;
	} else {
		memcpy(tmp, ip + 8, 32);
		wr16(tmp + 34, (uint16_t)ulen);
		tmp[39] = IPPROTO_UDP;
		h = 40;
	}
	memcpy(tmp + h, udp, ulen);
	c = pkt_csum(tmp, h + ulen);
	if (c == 0)
		c = 0xffff; /* RFC 768: a computed zero is sent as all ones */
	memcpy(udp + 6, &c, sizeof(c));
}

/* afp_outer() on frame[0..len) with csum_ok. On success checks that the payload is the
 * dlen bytes at frame + pay_off and the source is src. Returns afp_outer()'s result. */
static int outer_ok(const uint8_t *frame, size_t len, bool csum_ok, size_t pay_off, size_t dlen,
		    const uint8_t src[16])
{
	const uint8_t *payload = NULL;
	size_t plen = 0;
	uint8_t got[16];
	int ret;

	memset(got, 0xaa, sizeof(got));
	ret = afp_outer(frame, len, csum_ok, &payload, &plen, got);
	ck_assert(ret == 0 || ret == -1);
	if (ret == 0) {
		ck_assert_ptr_eq(payload, frame + pay_off);
		ck_assert_uint_eq(plen, dlen);
		ck_assert_mem_eq(got, src, 16);
	}
	return ret;
}

#define V4_PAY (PKT_ETH_LEN + PKT_IP4_LEN + PKT_UDP_LEN)
#define V6_PAY (PKT_ETH_LEN + PKT_IP6_LEN + PKT_UDP_LEN)

START_TEST(outer_v4_valid)
{
	static uint8_t f[4096];
	static struct ingest_pkt p;
	struct ingest_cfg cfg = { 0 };
	const uint8_t *payload;
	uint8_t *udp = f + PKT_ETH_LEN + PKT_IP4_LEN, src[16];
	size_t dlen, plen, n = outer_frame(f, sizeof(f), false, 0, &dlen);

	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), 0);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), 0);
	/* What the ring path does next: the payload is the VxLAN datagram tvn validates. */
	ck_assert_int_eq(afp_outer(f, n, false, &payload, &plen, src), 0);
	ck_assert_int_eq(ingest_datagram(&cfg, payload, plen, src, &p), INGEST_FRAME);
	ck_assert_mem_eq(p.src.addr, src2, 16);
	ck_assert_uint_eq(p.src.vni, 42);
	ck_assert_mem_eq(p.info.payload, "hello", 5);
	/* Ethernet pads short frames: bytes past the IP total length are not payload. */
	memset(f + n, 0, 6);
	ck_assert_int_eq(outer_ok(f, n + 6, false, V4_PAY, dlen, src2), 0);
	/* A zero UDP checksum means "none" over IPv4 (RFC 768). */
	wr16(udp + 6, 0);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), 0);
	/* With an 802.1Q tag. */
	n = outer_frame(f, sizeof(f), false, 100, &dlen);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY + PKT_VLAN_LEN, dlen, src2), 0);
}
END_TEST

START_TEST(outer_v6_valid)
{
	static uint8_t f[4096];
	uint8_t *ip = f + PKT_ETH_LEN, *udp = ip + PKT_IP6_LEN, a[16], fam;
	size_t dlen, n = outer_frame(f, sizeof(f), true, 0, &dlen);

	tuple_addr_parse("2001:db8::1", a, &fam);
	ck_assert_int_eq(outer_ok(f, n, false, V6_PAY, dlen, a), 0);
	ck_assert_int_eq(outer_ok(f, n, true, V6_PAY, dlen, a), 0);
	memset(f + n, 0, 6);
	ck_assert_int_eq(outer_ok(f, n + 6, false, V6_PAY, dlen, a), 0);
	/* A bad checksum is as bad over IPv6. */
	udp[PKT_UDP_LEN + 20] ^= 0x40;
	ck_assert_int_eq(outer_ok(f, n, false, V6_PAY, dlen, a), -1);
	ck_assert_int_eq(outer_ok(f, n, true, V6_PAY, dlen, a), 0);
	udp_fix(ip, udp);
	ck_assert_int_eq(outer_ok(f, n, false, V6_PAY, dlen, a), 0);
	/* Payload length beyond the frame, or too short for the UDP header. */
	wr16(ip + 4, (uint16_t)(n - PKT_ETH_LEN - PKT_IP6_LEN + 1));
	ck_assert_int_eq(outer_ok(f, n, true, V6_PAY, dlen, a), -1);
	wr16(ip + 4, PKT_UDP_LEN - 1);
	ck_assert_int_eq(outer_ok(f, n, true, V6_PAY, dlen, a), -1);
	wr16(ip + 4, (uint16_t)(n - PKT_ETH_LEN - PKT_IP6_LEN));
	/* A fragment header (44) or another transport is not a UDP datagram. */
	ip[6] = 44;
	ck_assert_int_eq(outer_ok(f, n, true, V6_PAY, dlen, a), -1);
	ip[6] = IPPROTO_TCP;
	ck_assert_int_eq(outer_ok(f, n, true, V6_PAY, dlen, a), -1);
}
END_TEST

/* IPv4 options move the UDP header; the datagram is found after them. */
START_TEST(outer_v4_options)
{
	static uint8_t f[4096], g[4096];
	uint8_t *ip = g + PKT_ETH_LEN;
	size_t dlen, n = outer_frame(f, sizeof(f), false, 0, &dlen);

	memcpy(g, f, PKT_ETH_LEN + PKT_IP4_LEN);
	memcpy(ip + PKT_IP4_LEN, "\x01\x01\x01\x00\x01\x01\x01\x00", 8); /* NOPs, EOL */
	memcpy(ip + PKT_IP4_LEN + 8, f + PKT_ETH_LEN + PKT_IP4_LEN, n - PKT_ETH_LEN - PKT_IP4_LEN);
	ip[0] = 0x47;
	wr16(ip + 2, (uint16_t)(n - PKT_ETH_LEN + 8));
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(g, n + 8, false, V4_PAY + 8, dlen, src2), 0);
	/* The largest IHL (60 bytes) is fine when the packet holds it. */
	memmove(ip + 60, ip + PKT_IP4_LEN + 8, n - PKT_ETH_LEN - PKT_IP4_LEN);
	memset(ip + PKT_IP4_LEN, 1, 40);
	ip[0] = 0x4f;
	wr16(ip + 2, (uint16_t)(n - PKT_ETH_LEN + 40));
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(g, n + 40, false, V4_PAY + 40, dlen, src2), 0);
}
END_TEST

START_TEST(outer_v4_bad_lengths)
{
	static uint8_t f[4096];
	uint8_t *ip = f + PKT_ETH_LEN, *udp = ip + PKT_IP4_LEN;
	size_t dlen, n = outer_frame(f, sizeof(f), false, 0, &dlen), cut;
	int v;

	/* Not IPv4 (the EtherType says so). */
	for (v = 0; v < 16; v++) {
		if (v == 4)
			continue;
		ip[0] = (uint8_t)(v << 4 | 5);
		ip4_fix(ip);
		ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	}
	/* IHL below 5, or beyond the total length. */
	ip[0] = 0x44;
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	ip[0] = 0x4f;
	wr16(ip + 2, 40);
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	ip[0] = 0x45;
	/* Total length beyond what arrived, or too short for the UDP header. */
	wr16(ip + 2, (uint16_t)(n - PKT_ETH_LEN + 1));
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	wr16(ip + 2, PKT_IP4_LEN + 7);
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	wr16(ip + 2, (uint16_t)(n - PKT_ETH_LEN));
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), 0);
	/* A header checksum that does not add up, whatever the kernel said of the UDP one. */
	ip[8]--;
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), -1);
	ip[8]++;
	/* Every cut of the frame, in a buffer of exactly that size (ASan sees a read past
	 * it): its length fields now lie. */
	for (cut = 0; cut < n; cut++) {
		uint8_t *c = malloc(cut ? cut : 1);

		ck_assert_ptr_nonnull(c);
		memcpy(c, f, cut);
		ck_assert_int_eq(outer_ok(c, cut, true, V4_PAY, dlen, src2), -1);
		ck_assert_int_eq(outer_ok(c, cut, false, V4_PAY, dlen, src2), -1);
		free(c);
	}
	/* UDP length beyond the IP payload or below the UDP header (checksum 0: none). */
	wr16(udp + 6, 0);
	wr16(udp + 4, (uint16_t)(dlen + PKT_UDP_LEN + 1));
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), -1);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	wr16(udp + 4, PKT_UDP_LEN - 1);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	/* Not UDP; not IP. */
	wr16(udp + 4, (uint16_t)(dlen + PKT_UDP_LEN));
	ip[9] = IPPROTO_TCP;
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	ip[9] = IPPROTO_UDP;
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), 0);
	wr16(f + 12, 0x0806);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
}
END_TEST

START_TEST(outer_v4_fragments)
{
	static uint8_t f[4096];
	uint8_t *ip = f + PKT_ETH_LEN;
	size_t dlen, n = outer_frame(f, sizeof(f), false, 0, &dlen);

	/* The first fragment (MF, offset 0) looks whole but is not the datagram. */
	wr16(ip + 6, 0x2000);
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	/* A later fragment, the last one or not. */
	wr16(ip + 6, 0x0001);
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	wr16(ip + 6, 0x2100);
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), -1);
	/* Neither DF nor MF: a whole datagram. */
	wr16(ip + 6, 0);
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), 0);
}
END_TEST

/* csum_ok: the kernel vouched for the UDP checksum (or it was never computed: sent
 * locally, offloaded); otherwise afp_outer() verifies it. */
START_TEST(outer_v4_checksum)
{
	static uint8_t f[4096];
	uint8_t *ip = f + PKT_ETH_LEN, *udp = ip + PKT_IP4_LEN;
	size_t dlen, n = outer_frame(f, sizeof(f), false, 0, &dlen);

	/* A payload byte changed in transit. */
	udp[PKT_UDP_LEN + 20] ^= 0x01;
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), -1);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src2), 0);
	udp_fix(ip, udp);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src2), 0);
	/* The pseudo-header counts: another source address breaks the checksum. */
	ip[15] = 3;
	ip4_fix(ip);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src3), -1);
	ck_assert_int_eq(outer_ok(f, n, true, V4_PAY, dlen, src3), 0);
	udp_fix(ip, udp);
	ck_assert_int_eq(outer_ok(f, n, false, V4_PAY, dlen, src3), 0);
	/* A UDP length short of the IP payload: the kernel trims the datagram to it, a
	 * receiver may also refuse it; either way nothing past the UDP length is payload
	 * (outer_ok() checks the length when it is accepted). */
	wr16(udp + 4, (uint16_t)(dlen + PKT_UDP_LEN - 1));
	udp_fix(ip, udp);
	(void)outer_ok(f, n, false, V4_PAY, dlen - 1, src3);
	(void)outer_ok(f, n, true, V4_PAY, dlen - 1, src3);
}
END_TEST

/* What the callback of ingest_poll() saw, in order. */
struct seen {
	size_t n;
	size_t len[16];
	uint8_t data[16][1024];
	uint8_t addr[16];
	bool truncated;
};

static void record_dgram(void *ctx, const uint8_t *buf, size_t len, const uint8_t src_addr[16],
			 int reason, uint64_t ts_ns)
{
	struct seen *s = ctx;

	(void)ts_ns;
	ck_assert_uint_lt(s->n, 16);
	s->len[s->n] = len;
	memcpy(s->data[s->n], buf, len < sizeof(s->data[0]) ? len : sizeof(s->data[0]));
	memcpy(s->addr, src_addr, 16);
	s->truncated |= reason == INGEST_R_TRUNCATED;
	s->n++;
}

static bool gro_supported(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
	bool ok = fd >= 0 && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Byte i of datagram d: different in every datagram and at every offset. */
static uint8_t pattern(size_t d, size_t i)
{
	return (uint8_t)(d * 31 + i * 7 + i / 251);
}

/* A real UDP GSO run on loopback into a socket of the ingest module: 6 x 1000 + 333 bytes
 * in one sendmsg() with UDP_SEGMENT, then a 50-byte datagram. With UDP_GRO the kernel
 * delivers the run as one buffer, which ingest must split into its 7 datagrams. */
START_TEST(gro_run_is_split)
{
	static const size_t want[8] = { 1000, 1000, 1000, 1000, 1000, 1000, 333, 50 };
	static struct seen seen;
	static uint8_t run[6333];
	const char *listen[] = { "127.0.0.1:0" };
	struct ingest_sock_cfg cfg = { .listen = listen, .n_listen = 1 };
	struct sockaddr_in to = { .sin_family = AF_INET };
	char ctrl[CMSG_SPACE(sizeof(uint16_t))] = { 0 };
	struct iovec iov = { .iov_base = run, .iov_len = sizeof(run) };
	struct msghdr mh = { .msg_name = &to,
			     .msg_namelen = sizeof(to),
			     .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctrl,
			     .msg_controllen = sizeof(ctrl) };
	uint8_t small[50], lo[16] = { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1 };
	uint16_t seg = 1000;
	struct cmsghdr *c;
	struct ingest *in;
	size_t d, i;
	int fd, rounds, n, total = 0;

	in = ingest_new(&cfg);
	ck_assert_ptr_nonnull(in);
	to.sin_port = htons((uint16_t)ingest_port(in));
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < sizeof(run); i++)
		run[i] = pattern(i / 1000, i % 1000);
	for (i = 0; i < sizeof(small); i++)
		small[i] = pattern(7, i);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(c), &seg, sizeof(seg));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(sendmsg(fd, &mh, 0), (ssize_t)sizeof(run));
	ck_assert_int_eq(sendto(fd, small, sizeof(small), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)sizeof(small));
	/* Loopback queues both sends before sendto() returns; a few polls at most. */
	for (rounds = 0; rounds < 20 && total < 8; rounds++) {
		n = ingest_poll(in, 100, record_dgram, &seen);
		ck_assert_int_ge(n, 0);
		total += n;
	}
	ck_assert_int_eq(total, 8);
	ck_assert_uint_eq(seen.n, 8);
	for (d = 0; d < 8; d++) {
		ck_assert_uint_eq(seen.len[d], want[d]);
		for (i = 0; i < want[d]; i++)
			if (seen.data[d][i] != pattern(d, i))
				ck_abort_msg("datagram %zu byte %zu: %u, expected %u", d, i,
					     seen.data[d][i], pattern(d, i));
	}
	ck_assert_mem_eq(seen.addr, lo, 16);
	ck_assert(!seen.truncated);
	/* The GSO run came as one coalesced buffer, the small datagram as another: the
	 * split above is what was tested, not 8 separate receives. (A kernel without
	 * UDP_GRO, which refuses the option, delivers the 8 one by one.) */
	ck_assert_uint_eq(ingest_buffers(in), gro_supported() ? 2 : 8);
	close(fd);
	ingest_free(in);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tvn_ingest");
	TCase *tc = tcase_create("ingest");

	tcase_add_test(tc, accepts_and_names_source);
	tcase_add_test(tc, allow_and_vni_lists);
	tcase_add_test(tc, malformed_reasons);
	tcase_add_test(tc, meta_frames);
	tcase_add_test(tc, out_specs);
	tcase_add_test(tc, origin_vlan_ids);
	tcase_add_test(tc, gro_run_is_split);
	tcase_add_test(tc, outer_v4_valid);
	tcase_add_test(tc, outer_v6_valid);
	tcase_add_test(tc, outer_v4_options);
	tcase_add_test(tc, outer_v4_bad_lengths);
	tcase_add_test(tc, outer_v4_fragments);
	tcase_add_test(tc, outer_v4_checksum);
	suite_add_tcase(s, tc);
	return check_run(s);
}
