/* tvn/afpacket.h - the ring receive path (--rx ring): an AF_PACKET TPACKET_V3 ring.
 * Owns: the packet socket on one interface, its memory-mapped ring of 128 KiB blocks, the
 * kernel filter that selects the VxLAN datagrams, the ring's drop count, and the check of
 * a captured frame's outer Ethernet/IP/UDP headers (afp_outer()).
 * Does not own: the UDP sockets that keep the ports bound, or what a datagram means
 * (tvn/ingest.c). The kernel's softirq copies each frame into the ring once; reading it
 * costs tvn no system call and no copy, and a UDP GSO/GRO run stays one frame with its
 * segment size (PACKET_VNET_HDR). */
#ifndef TVN_AFPACKET_H
#define TVN_AFPACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Block size of the ring: a frame (up to a 64 KiB GSO run) never spans blocks. Small
 * blocks because the kernel hands a block over when it is full or, for a trickle, after
 * a 1 ms timeout: with 1 MiB blocks a 32 MiB ring held only 32 ms of traffic at the
 * rates where that timeout retires blocks a third full, and dropped (1.8-3.6 k frames
 * of a 28 k-datagram burst that the socket path took without loss). */
#define AFP_BLOCK (128u << 10)

struct afp_cfg {
	const char *iface;  /* interface to capture on */
	const char *filter; /* libpcap expression selecting the datagrams to take */
	size_t ring_bytes;  /* rounded up to whole blocks, at least 4 */
};

/* One captured frame; pointers are valid only during the callback. */
struct afp_frame {
	const uint8_t *frame; /* from the Ethernet header */
	size_t len;	      /* bytes captured */
	bool truncated;	      /* the ring cut the frame short */
	bool csum_ok;	      /* the kernel or NIC vouches for the UDP checksum, or it
			       * was never computed (locally sent, checksum offload) */
	uint16_t gso_size;    /* > 0: a run of UDP datagrams of this payload size */
	uint64_t ts_ns;	      /* CLOCK_REALTIME of the kernel's receive */
};

typedef void (*afp_frame_fn)(void *ctx, const struct afp_frame *f);

struct afp;

/* Opens the packet socket, compiles and attaches the filter, maps the ring and binds to
 * cfg->iface. Returns NULL with errno set and a logged reason (EPERM: no CAP_NET_RAW;
 * ENODEV: no such interface; EPROTONOSUPPORT: link type or kernel feature missing). */
struct afp *afp_new(const struct afp_cfg *cfg);
void afp_free(struct afp *a); /* NULL-safe */
/* Waits up to timeout_ms for a filled block, then hands every frame of the filled blocks
 * (at most a few dozen blocks per call) to fn. Returns the number of frames, 0 on
 * timeout, or -errno. */
int afp_poll(struct afp *a, int timeout_ms, afp_frame_fn fn, void *ctx);
/* Frames the kernel could not put in the full ring, since afp_new(). Costs a system
 * call: call it once in a while. */
uint64_t afp_drops(struct afp *a);
/* Frames read so far (a datagram, or a GSO/GRO run of them). */
uint64_t afp_frames(const struct afp *a);

/* Whether this kernel hands a UDP GSO/GRO run to the ring as one frame with its segment
 * size (Linux >= 6.2); before that it drops such frames, so the receiving socket must
 * not ask for GRO. */
bool afp_carries_gso(void);

/* Checks the outer headers of a captured frame (Ethernet, optional VLAN tags, IPv4 with
 * header checksum or IPv6, UDP with its length and, unless csum_ok, its checksum): what
 * the kernel's IP/UDP receive would have checked before a socket saw the datagram.
 * On success returns 0 with the UDP payload and the outer source address (16-byte form,
 * IPv4 mapped as tuple.h does); -1 if the frame is not a well-formed, unfragmented
 * UDP datagram. Never reads outside frame[0..len). */
int afp_outer(const uint8_t *frame, size_t len, bool csum_ok, const uint8_t **payload, size_t *plen,
	      uint8_t src[16]);

#endif
