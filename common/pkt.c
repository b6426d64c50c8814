/* common/pkt.c - Ethernet/IPv4/IPv6/TCP/UDP synthesis and bounds-checked parsing.
 * Multi-byte fields are read and written byte by byte in network order, so nothing here
 * depends on the alignment of the caller's buffer. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pkt.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define PKT_TTL 64
#define PKT_MAX_VLAN_TAGS 2
#define PKT_MAX_IP6_EXT 8 /* bounds the extension header walk */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/* csum_add() adds buf to a 32-bit one's-complement accumulator of big-endian 16-bit words
 * (as the headers store them); an odd length pads with zero. It sums native 32-bit words
 * in a 64-bit accumulator and byte-swaps once at the end (csum_finish()): a ones'-complement
 * sum does not depend on byte order (RFC 1071 §2(B)), and this is the agent's hottest loop
 * (every payload byte of every frame). Every call starts at an even offset of the
 * checksummed data, so only the last call of a chain may have an odd length. */
static uint32_t csum_finish(uint32_t sum, uint64_t acc)
{
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return sum + ntohs((uint16_t)acc); /* native word order -> network order value */
}

/* The last 0..15 bytes of a sum, copied to dst too when dst is not NULL. */
static uint64_t csum_tail(uint64_t acc, uint8_t *dst, const uint8_t *buf, size_t len)
{
	uint8_t t[16] = { 0 };
	uint32_t w[4];

	memcpy(t, buf, len);
	if (dst)
		memcpy(dst, t, len);
	memcpy(w, t, sizeof(w)); /* zero padding: an odd last byte is the high half */
	return acc + w[0] + w[1] + w[2] + w[3];
}

static uint32_t csum_add(uint32_t sum, const uint8_t *buf, size_t len)
{
	uint64_t acc = 0;

	for (; len >= 16; buf += 16, len -= 16) {
		uint32_t v[4];

		memcpy(v, buf, sizeof(v)); /* no alignment assumed */
		acc += (uint64_t)v[0] + v[1] + v[2] + v[3];
	}
	return csum_finish(sum, csum_tail(acc, NULL, buf, len));
}

/* csum_add() of src while copying it to dst: the payload is read once, not twice. */
static uint32_t csum_copy(uint32_t sum, uint8_t *dst, const uint8_t *src, size_t len)
{
	uint64_t acc = 0;

	for (; len >= 16; src += 16, dst += 16, len -= 16) {
		uint32_t v[4];

		memcpy(v, src, sizeof(v));
		memcpy(dst, v, sizeof(v));
		acc += (uint64_t)v[0] + v[1] + v[2] + v[3];
	}
	return csum_finish(sum, csum_tail(acc, dst, src, len));
}

/* Final ones'-complement, as a host-order value to be written with wr16(). */
static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t pkt_csum(const void *buf, size_t len)
{
	uint16_t c = csum_fold(csum_add(0, buf, len));
	uint8_t be[2];
	uint16_t out;

	wr16(be, c);
	memcpy(&out, be, sizeof(out));
	return out;
}

/* Sum of the TCP/UDP pseudo-header (RFC 793 / RFC 8200 §8.1). */
static uint32_t pseudo_sum(bool v4, const uint8_t *src, const uint8_t *dst, uint8_t proto,
			   uint32_t l4_len)
{
	uint8_t tail[8] = { 0 };
	uint32_t sum;

	if (v4) {
		sum = csum_add(0, src + 12, 4);
		sum = csum_add(sum, dst + 12, 4);
		sum += proto;
		sum += l4_len;
		return sum;
	}
	sum = csum_add(0, src, 16);
	sum = csum_add(sum, dst, 16);
	wr32(tail, l4_len);
	tail[7] = proto;
	return csum_add(sum, tail, sizeof(tail));
}

static bool tuple_valid(const struct ecv_tuple *t)
{
	bool v4 = tuple_addr_is_v4(t->saddr);

	if (v4 != tuple_addr_is_v4(t->daddr))
		return false;
	if (t->family != (v4 ? AF_INET : AF_INET6))
		return false;
	return t->proto == IPPROTO_TCP || t->proto == IPPROTO_UDP;
}

int pkt_build(uint8_t *buf, size_t cap, const struct pkt_l2 *l2, const struct ecv_tuple *t,
	      const struct pkt_tcp *tcp, uint16_t ip_id, const void *payload, size_t len)
{
	static const struct pkt_l2 zero_l2;
	bool v4, is_tcp;
	size_t l2_len, l3_len, l4_hdr, total;
	uint8_t *ip, *l4;
	uint32_t sum;
	uint16_t c;

	if (!buf || !t || !tuple_valid(t) || (len && !payload))
		return -EINVAL;
	if (!l2)
		l2 = &zero_l2;
	if (l2->vlan > 4094)
		return -EINVAL;
	v4 = t->family == AF_INET;
	is_tcp = t->proto == IPPROTO_TCP;
	if (is_tcp && (!tcp || tcp->wscale > PKT_WSCALE_MAX))
		return -EINVAL;
	l2_len = PKT_ETH_LEN + (l2->vlan ? PKT_VLAN_LEN : 0);
	l3_len = v4 ? PKT_IP4_LEN : PKT_IP6_LEN;
	l4_hdr = is_tcp ? PKT_TCP_LEN + (tcp->mss ? PKT_TCP_SYN_OPT_LEN : 0) : PKT_UDP_LEN;
	/* IPv4 total length and the IPv6 payload length are both 16-bit fields. */
	if (len > 65535 - l4_hdr - (v4 ? l3_len : 0))
		return -EINVAL;
	total = l2_len + l3_len + l4_hdr + len;
	if (cap < total)
		return -ENOSPC;

	memcpy(buf, l2->dst, 6);
	memcpy(buf + 6, l2->src, 6);
	if (l2->vlan) {
		wr16(buf + 12, ETH_P_8021Q);
		wr16(buf + 14, l2->vlan); /* PCP 0, DEI 0 */
	}
	wr16(buf + l2_len - 2, v4 ? ETH_P_IPV4 : ETH_P_IPV6);

	ip = buf + l2_len;
	if (v4) {
		ip[0] = 0x45;
		ip[1] = 0;
		wr16(ip + 2, (uint16_t)(l3_len + l4_hdr + len));
		wr16(ip + 4, ip_id);
		wr16(ip + 6, IP_DF);
		ip[8] = PKT_TTL;
		ip[9] = t->proto;
		wr16(ip + 10, 0);
		memcpy(ip + 12, t->saddr + 12, 4);
		memcpy(ip + 16, t->daddr + 12, 4);
		wr16(ip + 10, csum_fold(csum_add(0, ip, PKT_IP4_LEN)));
	} else {
		wr32(ip, 0x60000000u);
		wr16(ip + 4, (uint16_t)(l4_hdr + len));
		ip[6] = t->proto;
		ip[7] = PKT_TTL;
		memcpy(ip + 8, t->saddr, 16);
		memcpy(ip + 24, t->daddr, 16);
	}

	l4 = ip + l3_len;
	wr16(l4, t->sport);
	wr16(l4 + 2, t->dport);
	if (is_tcp) {
		wr32(l4 + 4, tcp->seq);
		wr32(l4 + 8, tcp->ack);
		l4[12] = (uint8_t)((l4_hdr / 4) << 4);
		l4[13] = tcp->flags;
		wr16(l4 + 14, tcp->window ? tcp->window : 65535);
		wr16(l4 + 16, 0);
		wr16(l4 + 18, 0);
		if (tcp->mss) {
			l4[20] = 2; /* MSS, RFC 9293 §3.2 */
			l4[21] = 4;
			wr16(l4 + 22, tcp->mss);
			l4[24] = 1; /* NOP: the window scale option is 3 bytes */
			l4[25] = 3; /* window scale, RFC 7323 §2.2 */
			l4[26] = 3;
			l4[27] = tcp->wscale;
		}
	} else {
		wr16(l4 + 4, (uint16_t)(l4_hdr + len));
		wr16(l4 + 6, 0);
	}
	sum = pseudo_sum(v4, t->saddr, t->daddr, t->proto, (uint32_t)(l4_hdr + len));
	sum = csum_add(sum, l4, l4_hdr); /* 28, 20 or 8 bytes: the payload starts even */
	if (len)
		sum = csum_copy(sum, l4 + l4_hdr, payload, len);
	c = csum_fold(sum);
	if (!is_tcp && c == 0)
		c = 0xffff; /* RFC 768: a computed zero is sent as all ones */
	wr16(l4 + (is_tcp ? 16 : 6), c);
	return (int)total;
}

size_t pkt_mss(unsigned mtu, int family)
{
	unsigned hdr = (family == AF_INET ? PKT_IP4_LEN : PKT_IP6_LEN) + PKT_TCP_LEN;

	return mtu > hdr ? mtu - hdr : 0;
}

int pkt_segment(const struct pkt_l2 *l2, const struct ecv_tuple *t, const struct pkt_tcp *tcp,
		uint16_t *ip_id, unsigned mtu, const void *payload, size_t len, pkt_emit_fn emit,
		void *ctx)
{
	return pkt_segment_to(l2, t, tcp, ip_id, mtu, payload, len, NULL, emit, ctx);
}

int pkt_segment_to(const struct pkt_l2 *l2, const struct ecv_tuple *t, const struct pkt_tcp *tcp,
		   uint16_t *ip_id, unsigned mtu, const void *payload, size_t len, pkt_buf_fn buf,
		   pkt_emit_fn emit, void *ctx)
{
	const uint8_t *p = payload;
	uint8_t stack_buf[4096];
	uint8_t *frame = stack_buf;
	size_t mss, max_payload, cap, off = 0;
	struct pkt_tcp seg;
	int err = 0, n;

	if (!t || !tcp || !ip_id || !emit || !tuple_valid(t) || t->proto != IPPROTO_TCP)
		return -EINVAL;
	mss = pkt_mss(mtu, t->family);
	if (!mss)
		return -EINVAL;
	/* The IP length fields cap a segment whatever the MTU says. */
	max_payload = 65535 - PKT_TCP_LEN - (t->family == AF_INET ? PKT_IP4_LEN : 0);
	if (mss > max_payload)
		mss = max_payload;
	cap = PKT_ETH_LEN + PKT_VLAN_LEN + PKT_IP6_LEN + PKT_TCP_LEN + PKT_TCP_SYN_OPT_LEN +
	      (len < mss ? len : mss);
	if (cap > sizeof(stack_buf)) {
		frame = malloc(cap);
		if (!frame)
			return -ENOMEM;
	}

	seg = *tcp;
	do {
		size_t n_bytes = len - off < mss ? len - off : mss;
		bool last = off + n_bytes >= len;
		uint8_t *out = buf ? buf(ctx, cap) : NULL;

		seg.seq = tcp->seq + (uint32_t)off;
		/* PSH and FIN belong to the end of the data, not to every piece of it. */
		seg.flags = last ? tcp->flags : tcp->flags & ~(PKT_TCP_PSH | PKT_TCP_FIN);
		if (off)
			seg.mss = 0; /* options belong to the SYN */
		n = pkt_build(out ? out : frame, cap, l2, t, &seg, *ip_id, p ? p + off : NULL,
			      n_bytes);
		if (n < 0) {
			err = n;
			goto cleanup;
		}
		(*ip_id)++;
		err = emit(ctx, out ? out : frame, (size_t)n);
		if (err)
			goto cleanup;
		off += n_bytes;
	} while (off < len);

cleanup:
	if (frame != stack_buf)
		free(frame);
	return err;
}

/* Reads the MSS and window-scale options of a SYN from opt[0..n) (the bytes between the
 * fixed TCP header and the payload) into info; malformed options end the walk. */
static void tcp_syn_opts(const uint8_t *opt, size_t n, struct pkt_info *info)
{
	size_t i = 0;

	while (i < n) {
		uint8_t kind = opt[i], olen;

		if (kind == 0) /* end of option list */
			return;
		if (kind == 1) { /* NOP */
			i++;
			continue;
		}
		if (n - i < 2)
			return;
		olen = opt[i + 1];
		if (olen < 2 || olen > n - i)
			return;
		if (kind == 2 && olen == 4) {
			info->mss = rd16(opt + i + 2);
			info->tcp_opts |= PKT_OPT_MSS;
		} else if (kind == 3 && olen == 3) {
			info->wscale = opt[i + 2];
			info->tcp_opts |= PKT_OPT_WSCALE;
		}
		i += olen;
	}
}

/* Walks the IPv6 extension headers, the first of type *next at buf[*off], stopping at an
 * upper-layer protocol (left in *next, its header at buf[*off]). end is the end of the
 * IPv6 payload. */
static int ip6_skip_ext(const uint8_t *buf, size_t end, size_t *off, uint8_t *next)
{
	int i;

	for (i = 0;; i++) {
		size_t hlen;

		switch (*next) {
		case 0:	 /* hop-by-hop options */
		case 43: /* routing */
		case 60: /* destination options */
			if (i == PKT_MAX_IP6_EXT || end - *off < 8)
				return -PKT_E_IP6_EXT;
			hlen = ((size_t)buf[*off + 1] + 1) * 8;
			break;
		case 51: /* authentication header: length in 4-byte units minus 2 */
			if (i == PKT_MAX_IP6_EXT || end - *off < 8)
				return -PKT_E_IP6_EXT;
			hlen = ((size_t)buf[*off + 1] + 2) * 4;
			break;
		case 44: /* fragment */
			return -PKT_E_IP_FRAGMENT;
		default:
			return 0;
		}
		if (end - *off < hlen)
			return -PKT_E_IP6_EXT;
		*next = buf[*off];
		*off += hlen;
	}
}

/* The frame nearly every VxLAN datagram carries: untagged Ethernet, IPv4 without options,
 * not a fragment, TCP. Fills info exactly as the general walk below would and returns
 * true; false (info untouched) for anything else or anything out of bounds, which the
 * general walk then parses and names. Half the instructions of the walk: one test per
 * header instead of a branch per field, the mapped addresses written in place. */
static bool parse_eth_ip4_tcp(const uint8_t *buf, size_t len, struct pkt_info *info)
{
	const uint8_t *ip = buf + PKT_ETH_LEN, *tcp = ip + PKT_IP4_LEN;
	size_t tot, doff;

	if (len < PKT_ETH_LEN + PKT_IP4_LEN + PKT_TCP_LEN || rd16(buf + 12) != ETH_P_IPV4 ||
	    ip[0] != 0x45 || ip[9] != IPPROTO_TCP || (rd16(ip + 6) & (IP_MF | IP_OFFMASK)))
		return false;
	tot = rd16(ip + 2);
	doff = (size_t)(tcp[12] >> 4) * 4;
	if (tot > len - PKT_ETH_LEN || tot < PKT_IP4_LEN + PKT_TCP_LEN || doff < PKT_TCP_LEN ||
	    doff > tot - PKT_IP4_LEN)
		return false;
	memset(info, 0, sizeof(*info));
	info->ethertype = ETH_P_IPV4;
	info->l3_off = PKT_ETH_LEN;
	info->ip_id = rd16(ip + 4);
	info->ttl = ip[8];
	info->tuple.saddr[10] = info->tuple.daddr[10] = 0xff;
	info->tuple.saddr[11] = info->tuple.daddr[11] = 0xff;
	memcpy(info->tuple.saddr + 12, ip + 12, 4);
	memcpy(info->tuple.daddr + 12, ip + 16, 4);
	info->tuple.family = AF_INET;
	info->tuple.proto = IPPROTO_TCP;
	info->ip_len = (uint32_t)tot;
	info->l4_off = PKT_ETH_LEN + PKT_IP4_LEN;
	info->seq = rd32(tcp + 4);
	info->ack = rd32(tcp + 8);
	info->tcp_flags = tcp[13];
	info->window = rd16(tcp + 14);
	info->payload_off = (uint16_t)(PKT_ETH_LEN + PKT_IP4_LEN + doff);
	if ((tcp[13] & PKT_TCP_SYN) && doff > PKT_TCP_LEN)
		tcp_syn_opts(tcp + PKT_TCP_LEN, doff - PKT_TCP_LEN, info);
	info->tuple.sport = rd16(tcp);
	info->tuple.dport = rd16(tcp + 2);
	info->payload = buf + info->payload_off;
	info->payload_len = (uint32_t)(PKT_ETH_LEN + tot - info->payload_off);
	return true;
}

int pkt_parse(const uint8_t *buf, size_t len, struct pkt_info *info)
{
	size_t off, l3, ip_end, l4;
	uint16_t type;
	uint8_t proto;
	int tags = 0, err;

	if (buf && parse_eth_ip4_tcp(buf, len, info))
		return 0;
	memset(info, 0, sizeof(*info));
	if (!buf || len < PKT_ETH_LEN)
		return -PKT_E_ETH_SHORT;
	type = rd16(buf + 12);
	off = PKT_ETH_LEN;
	while ((type == ETH_P_8021Q || type == ETH_P_8021AD) && tags < PKT_MAX_VLAN_TAGS) {
		if (len - off < PKT_VLAN_LEN)
			return -PKT_E_VLAN_SHORT;
		if (!tags)
			info->vlan = rd16(buf + off) & 0x0fff;
		type = rd16(buf + off + 2);
		off += PKT_VLAN_LEN;
		tags++;
	}
	info->ethertype = type;
	info->l3_off = (uint16_t)off;

	if (type == ETH_P_ECV_META) {
		info->payload_off = (uint16_t)off;
		info->payload = buf + off;
		info->payload_len = (uint32_t)(len - off);
		return PKT_META;
	}

	l3 = off;
	if (type == ETH_P_IPV4) {
		size_t ihl, tot;
		uint16_t frag;

		if (len - l3 < PKT_IP4_LEN)
			return -PKT_E_IP_SHORT;
		if (buf[l3] >> 4 != 4)
			return -PKT_E_IP_VERSION;
		ihl = (size_t)(buf[l3] & 0x0f) * 4;
		if (ihl < PKT_IP4_LEN || ihl > len - l3)
			return -PKT_E_IP_IHL;
		tot = rd16(buf + l3 + 2);
		if (tot < ihl || tot > len - l3)
			return -PKT_E_IP_LEN;
		frag = rd16(buf + l3 + 6);
		if (frag & (IP_MF | IP_OFFMASK))
			return -PKT_E_IP_FRAGMENT;
		info->ip_id = rd16(buf + l3 + 4);
		info->ttl = buf[l3 + 8];
		proto = buf[l3 + 9];
		tuple_addr_from_v4(info->tuple.saddr, buf + l3 + 12);
		tuple_addr_from_v4(info->tuple.daddr, buf + l3 + 16);
		info->tuple.family = AF_INET;
		info->ip_len = (uint32_t)tot;
		ip_end = l3 + tot;
		l4 = l3 + ihl;
	} else if (type == ETH_P_IPV6) {
		size_t plen;

		if (len - l3 < PKT_IP6_LEN)
			return -PKT_E_IP_SHORT;
		if (buf[l3] >> 4 != 6)
			return -PKT_E_IP_VERSION;
		plen = rd16(buf + l3 + 4);
		if (plen > len - l3 - PKT_IP6_LEN)
			return -PKT_E_IP_LEN;
		proto = buf[l3 + 6];
		info->ttl = buf[l3 + 7];
		memcpy(info->tuple.saddr, buf + l3 + 8, 16);
		memcpy(info->tuple.daddr, buf + l3 + 24, 16);
		info->tuple.family = AF_INET6;
		info->ip_len = (uint32_t)(PKT_IP6_LEN + plen);
		ip_end = l3 + PKT_IP6_LEN + plen;
		l4 = l3 + PKT_IP6_LEN;
		err = ip6_skip_ext(buf, ip_end, &l4, &proto);
		if (err)
			return err;
	} else {
		return -PKT_E_ETHERTYPE;
	}
	/* Only a huge IPv6 extension chain gets here; pkt_info offsets are 16-bit. */
	if (l4 + 60 > 0xffff)
		return -PKT_E_IP6_EXT;
	info->l4_off = (uint16_t)l4;
	info->tuple.proto = proto;

	if (proto == IPPROTO_TCP) {
		size_t doff;

		if (ip_end - l4 < PKT_TCP_LEN)
			return -PKT_E_TCP_SHORT;
		doff = (size_t)(buf[l4 + 12] >> 4) * 4;
		if (doff < PKT_TCP_LEN || doff > ip_end - l4)
			return -PKT_E_TCP_DOFF;
		info->seq = rd32(buf + l4 + 4);
		info->ack = rd32(buf + l4 + 8);
		info->tcp_flags = buf[l4 + 13];
		info->window = rd16(buf + l4 + 14);
		info->payload_off = (uint16_t)(l4 + doff);
		if ((info->tcp_flags & PKT_TCP_SYN) && doff > PKT_TCP_LEN)
			tcp_syn_opts(buf + l4 + PKT_TCP_LEN, doff - PKT_TCP_LEN, info);
	} else if (proto == IPPROTO_UDP) {
		size_t ulen;

		if (ip_end - l4 < PKT_UDP_LEN)
			return -PKT_E_UDP_SHORT;
		ulen = rd16(buf + l4 + 4);
		if (ulen < PKT_UDP_LEN || ulen > ip_end - l4)
			return -PKT_E_UDP_LEN;
		ip_end = l4 + ulen; /* bytes past the UDP length are not payload */
		info->payload_off = (uint16_t)(l4 + PKT_UDP_LEN);
	} else {
		return -PKT_E_L4_PROTO;
	}
	info->tuple.sport = rd16(buf + l4);
	info->tuple.dport = rd16(buf + l4 + 2);
	info->payload = buf + info->payload_off;
	info->payload_len = (uint32_t)(ip_end - info->payload_off);
	return 0;
}

static const char *const pkt_err_names[PKT_E_MAX] = {
	[0] = "ok",
	[PKT_E_ETH_SHORT] = "eth_short",
	[PKT_E_VLAN_SHORT] = "vlan_short",
	[PKT_E_ETHERTYPE] = "ethertype",
	[PKT_E_IP_SHORT] = "ip_short",
	[PKT_E_IP_VERSION] = "ip_version",
	[PKT_E_IP_IHL] = "ip_ihl",
	[PKT_E_IP_LEN] = "ip_len",
	[PKT_E_IP_FRAGMENT] = "ip_fragment",
	[PKT_E_IP6_EXT] = "ip6_ext",
	[PKT_E_L4_PROTO] = "l4_proto",
	[PKT_E_TCP_SHORT] = "tcp_short",
	[PKT_E_TCP_DOFF] = "tcp_doff",
	[PKT_E_UDP_SHORT] = "udp_short",
	[PKT_E_UDP_LEN] = "udp_len",
};

const char *pkt_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= PKT_E_MAX)
		return "unknown";
	return pkt_err_names[err];
}

bool pkt_checksums_ok(const uint8_t *frame, const struct pkt_info *info)
{
	const uint8_t *ip = frame + info->l3_off, *l4 = frame + info->l4_off;
	bool v4 = info->ethertype == ETH_P_IPV4;
	uint32_t l4_len, sum;

	if (info->ethertype != ETH_P_IPV4 && info->ethertype != ETH_P_IPV6)
		return true; /* metadata frames carry no checksum */
	if (v4 && csum_fold(csum_add(0, ip, info->l4_off - info->l3_off)) != 0)
		return false;
	l4_len = info->ip_len - (info->l4_off - info->l3_off);
	if (info->tuple.proto == IPPROTO_UDP) {
		if (v4 && rd16(l4 + 6) == 0)
			return true; /* IPv4 UDP checksum is optional */
		l4_len = rd16(l4 + 4);
	}
	sum = pseudo_sum(v4, info->tuple.saddr, info->tuple.daddr, info->tuple.proto, l4_len);
	return csum_fold(csum_add(sum, l4, l4_len)) == 0;
}
