/* common/pkt.h - Ethernet/IPv4/IPv6/TCP frame synthesis and bounds-checked parsing.
 * Owns: header layouts, checksums, MSS segmentation, the typed parse errors.
 * Does not own: payload buffers (the caller's), sockets, clocks. Pure. */
#ifndef ECV_PKT_H
#define ECV_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tuple.h"

#define PKT_ETH_LEN 14
#define PKT_VLAN_LEN 4
#define PKT_IP4_LEN 20
#define PKT_IP6_LEN 40
#define PKT_TCP_LEN 20
#define PKT_TCP_SYN_OPT_LEN 8 /* MSS (4), NOP, window scale (3) */
#define PKT_WSCALE_MAX 14     /* RFC 7323 §2.3 */
#define PKT_UDP_LEN 8
/* Largest frame pkt_build() writes: Ethernet + 802.1Q + IPv6 + TCP + 64 KiB payload. */
#define PKT_MAX_FRAME (PKT_ETH_LEN + PKT_VLAN_LEN + PKT_IP6_LEN + PKT_TCP_LEN + 65535)

#define ETH_P_ECV_META 0x88B5 /* flow metadata frames (IEEE local experimental) */

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10

/* Layer 2 of a synthesized frame. vlan == 0: untagged; otherwise an 802.1Q tag with
 * that VLAN id (1..4094) is inserted. */
struct pkt_l2 {
	uint8_t src[6];
	uint8_t dst[6];
	uint16_t vlan;
};

/* TCP header fields of a synthesized segment. */
struct pkt_tcp {
	uint32_t seq;
	uint32_t ack;
	uint16_t window; /* 0 means the default, 65535 */
	uint8_t flags;	 /* PKT_TCP_* */
	/* SYN options: mss non-zero adds an MSS option and a window-scale option of shift
	 * wscale (0..PKT_WSCALE_MAX), PKT_TCP_SYN_OPT_LEN bytes after the header. */
	uint8_t wscale;
	uint16_t mss;
};

/* Builds one Ethernet frame (IPv4 with DF, TTL 64, id ip_id and header checksum; or
 * IPv6, hop limit 64) carrying a TCP segment (or UDP datagram when t->proto is UDP; tcp
 * is then ignored) with valid checksums. Returns the frame length, or -ENOSPC when cap
 * is too small, -EINVAL for a bad tuple, a window scale over PKT_WSCALE_MAX or a payload
 * over 65535 - headers. */
int pkt_build(uint8_t *buf, size_t cap, const struct pkt_l2 *l2, const struct ecv_tuple *t,
	      const struct pkt_tcp *tcp, uint16_t ip_id, const void *payload, size_t len);

/* TCP maximum segment size for an inner IP MTU: mtu - IP header - 20. 0 if the MTU is
 * too small to carry a byte (IPv4 < 41, IPv6 < 61). */
size_t pkt_mss(unsigned mtu, int family);

/* Called once per frame by pkt_segment(); a non-zero return stops segmentation and is
 * returned by pkt_segment(). The frame is only valid during the call. */
typedef int (*pkt_emit_fn)(void *ctx, const uint8_t *frame, size_t len);

/* Where pkt_segment_to() builds the next frame: a buffer of at least need bytes that
 * stays valid until emit returns, or NULL for pkt's own buffer. Lets a sender build
 * frames in its send queue instead of copying each one there. */
typedef uint8_t *(*pkt_buf_fn)(void *ctx, size_t need);

/* Splits payload into MSS-sized TCP segments for mtu, the first at tcp->seq, each next
 * one at seq + bytes before it, all with tcp->ack, tcp->window and tcp->flags (PSH and
 * FIN are set on the last segment only, when tcp->flags has them; SYN options on the
 * first only). *ip_id is used and incremented per
 * frame. len == 0 emits one segment without payload. Returns 0, -EINVAL (mtu too small or not
 * TCP), -ENOMEM, or the first non-zero value of emit. */
int pkt_segment(const struct pkt_l2 *l2, const struct ecv_tuple *t, const struct pkt_tcp *tcp,
		uint16_t *ip_id, unsigned mtu, const void *payload, size_t len, pkt_emit_fn emit,
		void *ctx);
/* pkt_segment() building each frame where buf(ctx, need) says (NULL buf or return: in
 * pkt's own buffer); emit then gets that buffer. */
int pkt_segment_to(const struct pkt_l2 *l2, const struct ecv_tuple *t, const struct pkt_tcp *tcp,
		   uint16_t *ip_id, unsigned mtu, const void *payload, size_t len, pkt_buf_fn buf,
		   pkt_emit_fn emit, void *ctx);

/* Parse errors; pkt_parse() returns their negatives. pkt_strerror() gives the metric
 * label ("eth_short", ...). */
enum pkt_err {
	PKT_E_ETH_SHORT = 1, /* fewer than 14 bytes */
	PKT_E_VLAN_SHORT,    /* 802.1Q/802.1ad tag cut off */
	PKT_E_ETHERTYPE,     /* not IPv4, IPv6 or ECV metadata */
	PKT_E_IP_SHORT,	     /* IP header cut off */
	PKT_E_IP_VERSION,    /* version field disagrees with the EtherType */
	PKT_E_IP_IHL,	     /* IPv4 IHL < 5 or beyond the buffer */
	PKT_E_IP_LEN,	     /* total/payload length below the header or beyond the buffer */
	PKT_E_IP_FRAGMENT,   /* IPv4 fragment (MF or offset) or IPv6 fragment header */
	PKT_E_IP6_EXT,	     /* IPv6 extension header chain malformed or cut off */
	PKT_E_L4_PROTO,	     /* neither TCP nor UDP */
	PKT_E_TCP_SHORT,     /* TCP header cut off */
	PKT_E_TCP_DOFF,	     /* data offset < 5 or beyond the IP payload */
	PKT_E_UDP_SHORT,     /* UDP header cut off */
	PKT_E_UDP_LEN,	     /* UDP length field below 8 or beyond the IP payload */
	PKT_E_MAX
};

/* What pkt_parse() found. Offsets are from the start of the frame; pointers point into
 * the caller's buffer. Trailing bytes after the IP packet (Ethernet padding) are not
 * part of payload_len. */
struct pkt_info {
	uint16_t ethertype; /* after any VLAN tags */
	uint16_t vlan;	    /* id of the outermost 802.1Q tag, 0 if none */
	uint8_t ttl;	    /* TTL or hop limit */
	uint8_t tcp_flags;
	uint8_t tcp_opts; /* PKT_OPT_* found in a SYN's options */
	uint8_t wscale;	  /* window-scale shift, if PKT_OPT_WSCALE */
	uint16_t mss;	  /* if PKT_OPT_MSS */
	uint16_t window;
	uint16_t ip_id;
	uint16_t l3_off;
	uint16_t l4_off;
	uint16_t payload_off;
	uint32_t payload_len;
	uint32_t ip_len; /* IP header + payload, as the IP header says */
	uint32_t seq;
	uint32_t ack;
	struct ecv_tuple tuple; /* proto is TCP or UDP */
	const uint8_t *payload;
};

/* pkt_info.tcp_opts */
#define PKT_OPT_MSS 0x01
#define PKT_OPT_WSCALE 0x02

/* Return value of pkt_parse() for a frame of EtherType ETH_P_ECV_META: payload and
 * payload_len then hold the bytes after the Ethernet/VLAN headers. */
#define PKT_META 1

/* Parses Ethernet (up to two VLAN tags) / IPv4 (options) or IPv6 (extension headers) /
 * TCP (options; the MSS and window-scale options of a SYN are read into info) or UDP. Never reads
 * outside buf[0..len). Returns 0, PKT_META, or -PKT_E_*. */
int pkt_parse(const uint8_t *buf, size_t len, struct pkt_info *info);
const char *pkt_strerror(int err);

/* Internet checksum (RFC 1071) of buf folded into 16 bits, in network order as stored. */
uint16_t pkt_csum(const void *buf, size_t len);
/* True if the IPv4 header checksum (when IPv4) and the TCP/UDP checksum of a frame
 * pkt_parse() accepted are valid. */
bool pkt_checksums_ok(const uint8_t *frame, const struct pkt_info *info);

#endif
