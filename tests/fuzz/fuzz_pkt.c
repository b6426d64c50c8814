/* tests/fuzz/fuzz_pkt.c - libFuzzer harness for the untrusted-input path of the TVN:
 * a UDP payload is VxLAN-decoded and its inner frame parsed, exactly as ingest does,
 * and the raw input is also parsed as a bare Ethernet frame (pcap input). Whatever
 * pkt_parse() accepts must describe bytes inside the buffer. */
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
	ret = vxlan_decode(copy, size, 0, &vni, &inner, &inner_len);
	if (ret == 0) {
		CHECK(vni <= VXLAN_VNI_MAX);
		CHECK(inner == copy + VXLAN_HDR_LEN && inner_len == size - VXLAN_HDR_LEN);
		parse_frame(inner, inner_len);
	} else {
		CHECK(strcmp(vxlan_strerror(ret), "unknown") != 0);
	}
	free(copy);
	return 0;
}
