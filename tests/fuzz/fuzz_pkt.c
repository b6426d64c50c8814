/* tests/fuzz/fuzz_pkt.c - libFuzzer harness for the untrusted-input path of the TVN:
 * a UDP payload is VxLAN-decoded and its inner frame parsed, exactly as ingest does,
 * and the raw input is also parsed as a bare Ethernet frame (pcap input). Whatever
 * pkt_parse() accepts must describe bytes inside the buffer. pkt_parse() has a fast path
 * for untagged Ethernet/IPv4/TCP: the same frame with an 802.1Q tag of id 0 inserted
 * takes the general walk, and both must say the same (offsets 4 bytes apart). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "pkt.h"
#include "vxlan.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_pkt: %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void parse_frame(const uint8_t *buf, size_t len)
{
	struct pkt_info pi;
	struct meta_flow m;
	volatile uint8_t sink = 0;
	uint32_t i;
	int ret;

	ret = pkt_parse(buf, len, &pi);
	if (ret < 0) {
		CHECK(ret > -PKT_E_MAX);
		CHECK(strcmp(pkt_strerror(ret), "unknown") != 0);
		return;
	}
	CHECK(pi.payload == buf + pi.payload_off);
	CHECK((size_t)pi.payload_off + pi.payload_len <= len);
	if (ret == PKT_META) {
		CHECK((size_t)pi.payload_off + pi.payload_len == len);
		meta_decode((const char *)pi.payload, pi.payload_len, &m, NULL);
		return;
	}
	CHECK(ret == 0);
	CHECK(pi.l3_off >= PKT_ETH_LEN && pi.l3_off < pi.l4_off);
	CHECK(pi.l4_off < pi.payload_off);
	CHECK((size_t)pi.l3_off + pi.ip_len <= len);
	CHECK((size_t)pi.payload_off + pi.payload_len <= (size_t)pi.l3_off + pi.ip_len);
	/* Touch every payload byte so ASan sees any out-of-bounds claim. */
	for (i = 0; i < pi.payload_len; i++)
		sink ^= pi.payload[i];
	(void)sink;
	pkt_checksums_ok(buf, &pi);
}

/* buf parsed as is vs. with a VLAN tag (id 0) after the MAC addresses. */
static void parse_tagged_same(const uint8_t *buf, size_t len)
{
	struct pkt_info a, b;
	uint8_t *t;
	int ra, rb;

	/* Only IPv4 frames: the fast path's domain (an already tagged frame would get
	 * a second tag, which changes what vlan says). */
	if (len < 14 || buf[12] != 0x08 || buf[13] != 0x00)
		return;
	t = malloc(len + 4);
	if (!t)
		return;
	memcpy(t, buf, 12);
	memcpy(t + 12, "\x81\x00\x00\x00", 4);
	memcpy(t + 16, buf + 12, len - 12);
	ra = pkt_parse(buf, len, &a);
	rb = pkt_parse(t, len + 4, &b);
	CHECK(ra == rb);
	if (ra == 0) {
		CHECK(a.ethertype == b.ethertype && b.vlan == 0 && a.vlan == 0);
		CHECK(a.l3_off + 4 == b.l3_off && a.l4_off + 4 == b.l4_off);
		CHECK(a.payload_off + 4 == b.payload_off && a.payload_len == b.payload_len);
		CHECK(a.payload - buf + 4 == b.payload - t);
		CHECK(a.ttl == b.ttl && a.tcp_flags == b.tcp_flags && a.window == b.window);
		CHECK(a.ip_id == b.ip_id && a.ip_len == b.ip_len && a.seq == b.seq &&
		      a.ack == b.ack);
		CHECK(!memcmp(&a.tuple, &b.tuple, sizeof(a.tuple)));
	}
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *inner;
	size_t inner_len;
	uint32_t vni;
	uint8_t *copy;
	int ret;

	/* An exact-size heap copy: any read past the end is an ASan report. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	parse_frame(copy, size);
	parse_tagged_same(copy, size);
	ret = vxlan_decode(copy, size, 0, &vni, &inner, &inner_len);
	if (ret == 0) {
		CHECK(vni <= VXLAN_VNI_MAX);
		CHECK(inner == copy + VXLAN_HDR_LEN && inner_len == size - VXLAN_HDR_LEN);
		parse_frame(inner, inner_len);
		parse_tagged_same(inner, inner_len);
	} else {
		CHECK(strcmp(vxlan_strerror(ret), "unknown") != 0);
	}
	free(copy);
	return 0;
}
