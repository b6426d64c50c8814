/* tests/fuzz/fuzz_ingest.c - libFuzzer harness for tvn's per-datagram path: the exact
 * functions tvn runs on every received datagram (with --rx ring first afp_outer on the
 * captured frame's outer Ethernet/IP/UDP headers, then ingest_datagram: --allow, VxLAN
 * header, --vni, pkt_parse, meta_decode), then the accepted frame into a dedup engine so
 * the parser's output is also exercised by its consumer.
 * Input: byte 0 selects options (bit 0 strict VxLAN, bit 1 VNI allowlist, bit 2 source,
 * bit 3 the rest is a ring frame for afp_outer rather than a UDP payload, bit 4 the
 * kernel vouched for its UDP checksum, bit 5 the harness fixes its IPv4 header
 * checksum), the rest is the UDP payload or the frame.
 * Seeds in tests/fuzz/corpus/ingest/: option byte 0, a VxLAN header (VNI 1), then each
 * tests/fuzz/corpus/pkt/ frame (or an Ethernet 0x88B5 header + each meta/ seed). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tvn/afpacket.h"
#include "../../tvn/dedup.h"
#include "../../tvn/ingest.h"
#include "pkt.h"

static void emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts_ns,
		 const struct dedup_src *src)
{
	volatile uint8_t sink = 0;
	size_t i;

	(void)ctx, (void)ts_ns, (void)src;
	/* Touch every emitted byte: ASan catches a frame that points outside memory. */
	for (i = 0; i < len; i++)
		sink ^= frame[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dedup *d;
	static uint64_t ts = 1;
	static const uint32_t vnis[] = { 1, 42 };
	struct ingest_cfg cfg = { 0 };
	static struct ingest_pkt pkt;
	uint8_t src[16] = { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 2 };
	const uint8_t *dgram;
	uint8_t *frame = NULL;
	size_t len;
	int ret;

	if (!d) {
		struct dedup_cfg dc = { .mode = DEDUP_BYTES,
					.max_flows = 1024,
					.flow_timeout_ns = 1000000000ull,
					.skew_ns = 2000000000ull,
					.window_ns = 1000000ull };

		d = dedup_new(&dc, emit, NULL, NULL);
		if (!d)
			return 0;
	}
	if (size < 1)
		return 0;
	cfg.strict_vxlan = data[0] & 1;
	if (data[0] & 2) {
		cfg.vnis = vnis;
		cfg.n_vnis = 2;
	}
	src[15] = (uint8_t)(2 + ((data[0] >> 2) & 1)); /* two agents */
	dgram = data + 1;
	len = size - 1;
	if (data[0] & 8) {
		/* A copy of exactly the frame's size (ASan sees a read past it), with the
		 * IPv4 header checksum of an untagged frame made valid when bit 5 says so:
		 * the fuzzer then gets past it to the UDP and VxLAN checks. */
		frame = malloc(len ? len : 1);
		if (!frame)
			return 0;
		memcpy(frame, dgram, len);
		if ((data[0] & 32) && len >= 34 && frame[12] == 0x08 && frame[13] == 0 &&
		    (frame[14] >> 4) == 4 && len >= 14 + (frame[14] & 0xfu) * 4u) {
			uint16_t c;

			frame[24] = frame[25] = 0;
			c = pkt_csum(frame + 14, (frame[14] & 0xfu) * 4u);
			memcpy(frame + 24, &c, sizeof(c));
		}
		if (afp_outer(frame, len, data[0] & 16, &dgram, &len, src) < 0)
			goto out;
		if (dgram < frame || len > size - 1 || dgram + len > frame + size - 1)
			__builtin_trap(); /* the payload must lie inside the frame */
	}
	ret = ingest_datagram(&cfg, dgram, len, src, &pkt);
	if (ret == INGEST_FRAME)
		dedup_input(d, pkt.frame, pkt.len, &pkt.info, &pkt.src, ts);
	else if (ret == INGEST_META)
		dedup_meta(d, &pkt.meta, &pkt.src, ts);
	else if (-ret - 1 >= INGEST_N_REASONS || !ingest_reason_name(-ret - 1)[0])
		__builtin_trap(); /* every rejection has a named reason */
	ts += 1000;
	if ((ts & 0xfffff) == 0)
		dedup_expire(d, ts);
out:
	free(frame);
	return 0;
}
