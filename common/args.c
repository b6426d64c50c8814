/* common/args.c - strict parsing of command-line values. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "tuple.h"

int args_split_hostport(const char *s, char *host, size_t host_cap, uint16_t *port,
			uint16_t defport)
{
	const char *h, *end, *colon;
	size_t hlen;
	uint64_t p;

	if (!s || !host || !host_cap || !port)
		return -EINVAL;
	if (*s == '[') {
		h = s + 1;
		end = strchr(h, ']');
		if (!end)
			return -EINVAL;
		hlen = end - h;
		if (end[1] == '\0')
			colon = NULL;
		else if (end[1] == ':')
			colon = end + 1;
		else
			return -EINVAL;
		/* Brackets only make sense around an IPv6 literal. */
		if (!memchr(h, ':', hlen))
			return -EINVAL;
	} else {
		h = s;
		colon = strchr(s, ':');
		/* Two colons without brackets: a bare IPv6 address, no port. */
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= host_cap)
		return -EINVAL;
	if (colon) {
		if (args_parse_u64(colon + 1, 0, 65535, &p))
			return -EINVAL;
		*port = (uint16_t)p;
	} else {
		*port = defport;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return 0;
}

int args_resolve(const char *s, uint16_t defport, struct sockaddr_storage *out, socklen_t *out_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	char host[256];
	uint16_t port;
	int err;

	if (!out || !out_len)
		return -EINVAL;
	err = args_split_hostport(s, host, sizeof(host), &port, defport);
	if (err)
		return err;
	if (*s == '[') /* a bracketed host must be an IPv6 literal */
		hints.ai_flags = AI_NUMERICHOST;
	err = getaddrinfo(host, NULL, &hints, &res);
	if (err) {
		if (*s == '[')
			return -EINVAL;
		return -EHOSTUNREACH;
	}
	if (res->ai_addrlen > sizeof(*out) ||
	    (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
		freeaddrinfo(res);
		return -EHOSTUNREACH;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*out_len = res->ai_addrlen;
	if (res->ai_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)out)->sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

int args_parse_cidr(const char *s, struct args_cidr *out)
{
	char addr[TUPLE_ADDR_STRLEN];
	const char *slash;
	uint8_t family;
	uint64_t prefix;
	size_t alen;
	int i;

	if (!s || !out)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (tuple_addr_parse(addr, out->addr, &family))
		return -EINVAL;
	if (slash) {
		if (args_parse_u64(slash + 1, 0, family == AF_INET ? 32 : 128, &prefix))
			return -EINVAL;
		/* Reject "/0x10": a prefix length is decimal. */
		if (!isdigit((unsigned char)slash[1]) || (slash[1] == '0' && slash[2]))
			return -EINVAL;
	} else {
		prefix = family == AF_INET ? 32 : 128;
	}
	out->prefix = (uint8_t)(prefix + (family == AF_INET ? 96 : 0));
	/* Host bits are cleared so that matching is a plain prefix compare. */
	for (i = 0; i < 16; i++) {
		int keep = (int)out->prefix - i * 8;

		if (keep <= 0)
			out->addr[i] = 0;
		else if (keep < 8)
			out->addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
	return 0;
}

bool args_cidr_match(const struct args_cidr *c, const uint8_t addr[16])
{
	int full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->addr, addr, full))
		return false;
	if (!rest)
		return true;
	return ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int args_from_sockaddr(const struct sockaddr *sa, uint8_t addr[16], uint16_t *port)
{
	if (!sa)
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		tuple_addr_from_v4(addr, (const uint8_t *)&in->sin_addr);
		if (port)
			*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(addr, &in6->sin6_addr, 16);
		if (port)
			*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EINVAL;
}

/* Parses the leading number of s (decimal, or hex after 0x); *end gets the rest. */
static int parse_number(const char *s, uint64_t *out, const char **end)
{
	unsigned long long v;
	char *e;
	int base = 10;

	/* strtoull accepts spaces, signs and wraps negatives: refuse them up front. */
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -EINVAL;
		base = 16;
	}
	errno = 0;
	v = strtoull(s, &e, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || e == s)
		return -EINVAL;
	*out = v;
	*end = e;
	return 0;
}

static int check_range(uint64_t v, uint64_t min, uint64_t max, uint64_t *out)
{
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int scale(uint64_t v, uint64_t mul, uint64_t *out)
{
	if (v && mul > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

/* A suffix a number may carry and what it multiplies the number by; lists end with a
 * NULL suffix. */
struct unit {
	const char *suffix;
	uint64_t mul;
};

static const struct unit no_units[] = { { "", 1 }, { NULL, 0 } };
static const struct unit size_units[] = {
	{ "", 1 },	     { "k", 1ull << 10 }, { "K", 1ull << 10 }, { "m", 1ull << 20 },
	{ "M", 1ull << 20 }, { "g", 1ull << 30 }, { "G", 1ull << 30 }, { NULL, 0 },
};
/* In milliseconds; a bare number is seconds. */
static const struct unit duration_units[] = {
	{ "ms", 1 },	    { "s", 1000 },	  { "", 1000 },
	{ "m", 60 * 1000 }, { "h", 3600 * 1000 }, { NULL, 0 },
};

/* The whole of s: a number, then exactly one of the units' suffixes; the scaled value
 * must lie in [min, max]. */
static int parse_with_unit(const char *s, const struct unit *units, uint64_t min, uint64_t max,
			   uint64_t *out)
{
	const struct unit *u;
	const char *end;
	uint64_t v;
	int err;

	err = parse_number(s, &v, &end);
	if (err)
		return err;
	for (u = units; u->suffix; u++)
		if (!strcmp(end, u->suffix))
			break;
	if (!u->suffix)
		return -EINVAL;
	err = scale(v, u->mul, &v);
	if (err)
		return err;
	return check_range(v, min, max, out);
}

int args_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return parse_with_unit(s, no_units, min, max, out);
}

int args_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return parse_with_unit(s, size_units, min, max, out);
}

int args_parse_duration_ms(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return parse_with_unit(s, duration_units, min, max, out);
}
