/* tests/unit/test_tvn_ingest.c - what tvn accepts and rejects per datagram, and how an
 * --out spec is read. Frames are built with common/pkt (pkt_build), datagrams by hand. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* What the callback of ingest_poll() saw, in order. */
struct seen {
	size_t n;
	size_t len[16];
	uint8_t data[16][1024];
	uint8_t addr[16];
	bool truncated;
};

static void record_dgram(void *ctx, const uint8_t *buf, size_t len, const uint8_t src_addr[16],
			 bool truncated, uint64_t ts_ns)
{
	struct seen *s = ctx;

	(void)ts_ns;
	ck_assert_uint_lt(s->n, 16);
	s->len[s->n] = len;
	memcpy(s->data[s->n], buf, len < sizeof(s->data[0]) ? len : sizeof(s->data[0]));
	memcpy(s->addr, src_addr, 16);
	s->truncated |= truncated;
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
	suite_add_tcase(s, tc);
	return check_run(s);
}
