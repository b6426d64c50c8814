/* common/vxlan.h - VxLAN header codec (RFC 7348).
 * Owns: the 8-byte header layout, its validation, the outer source port choice.
 * Does not own: sockets or the outer IP/UDP headers of live traffic. Pure. */
#ifndef ECV_VXLAN_H
#define ECV_VXLAN_H

#include <stddef.h>
#include <stdint.h>

#define VXLAN_HDR_LEN 8
#define VXLAN_PORT 4789
#define VXLAN_VNI_MAX 0xffffffu /* 24 bits */

enum vxlan_err {
	VXLAN_E_SHORT = 1,    /* fewer than 8 bytes */
	VXLAN_E_FLAGS = 2,    /* I flag not set */
	VXLAN_E_RESERVED = 3, /* reserved bits set (flags other than I, or reserved fields) */
};

/* Writes the 8-byte header for vni into hdr. Returns 0, or -EINVAL
 * when vni exceeds 24 bits. */
int vxlan_encode(uint8_t hdr[VXLAN_HDR_LEN], uint32_t vni);
/* Validates buf as VxLAN header + inner frame. On success returns 0, sets *vni and
 * points *inner and *inner_len at the inner Ethernet frame (inside buf). On failure returns
 * -VXLAN_E_*. Reserved bits: RFC 7348 says ignore on receipt; strict != 0 rejects them. */
int vxlan_decode(const uint8_t *buf, size_t len, int strict, uint32_t *vni, const uint8_t **inner,
		 size_t *inner_len);
/* Outer UDP source port for an inner flow hash (RFC 7348 §5): in 49152..65535. */
uint16_t vxlan_src_port(uint64_t flow_hash);
/* Short reason label for a -VXLAN_E_* code ("short", "flags", "reserved"). */
const char *vxlan_strerror(int err);

#endif
