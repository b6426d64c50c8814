/* common/vxlan.c - RFC 7348 header codec and outer source port choice. */
#include <errno.h>
#include <string.h>

#include "vxlan.h"

#define VXLAN_FLAG_I 0x08

int vxlan_encode(uint8_t hdr[VXLAN_HDR_LEN], uint32_t vni)
{
	if (vni > VXLAN_VNI_MAX)
		return -EINVAL;
	memset(hdr, 0, VXLAN_HDR_LEN);
	hdr[0] = VXLAN_FLAG_I;
	hdr[4] = vni >> 16;
	hdr[5] = (vni >> 8) & 0xff;
	hdr[6] = vni & 0xff;
	return 0;
}

int vxlan_decode(const uint8_t *buf, size_t len, int strict, uint32_t *vni, const uint8_t **inner,
		 size_t *inner_len)
{
	if (!buf || len < VXLAN_HDR_LEN)
		return -VXLAN_E_SHORT;
	if (!(buf[0] & VXLAN_FLAG_I))
		return -VXLAN_E_FLAGS;
	if (strict && ((buf[0] & ~VXLAN_FLAG_I) || buf[1] || buf[2] || buf[3] || buf[7]))
		return -VXLAN_E_RESERVED;
	if (vni)
		*vni = (uint32_t)buf[4] << 16 | (uint32_t)buf[5] << 8 | buf[6];
	if (inner)
		*inner = buf + VXLAN_HDR_LEN;
	if (inner_len)
		*inner_len = len - VXLAN_HDR_LEN;
	return 0;
}

uint16_t vxlan_src_port(uint64_t flow_hash)
{
	/* Fold every hash bit in, then map onto the dynamic range 49152..65535 (RFC 7348 §5
	 * recommends it so that underlay ECMP spreads flows). */
	uint32_t h = (uint32_t)(flow_hash ^ (flow_hash >> 32));

	h ^= h >> 16;
	return (uint16_t)(49152 + (h & 0x3fff));
}

const char *vxlan_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "ok";
	case VXLAN_E_SHORT:
		return "short";
	case VXLAN_E_FLAGS:
		return "flags";
	case VXLAN_E_RESERVED:
		return "reserved";
	default:
		return "unknown";
	}
}
