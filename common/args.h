/* common/args.h - strict parsing of command-line values shared by both programs.
 * Owns: HOST[:PORT], ADDR:PORT and CIDR syntax, strict integer and size parsing.
 * Does not own: sockets. Only args_resolve() touches the resolver. */
#ifndef ECV_ARGS_H
#define ECV_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct args_cidr {
	uint8_t addr[16]; /* 16-byte form of tuple.h (IPv4-mapped) */
	uint8_t prefix;	  /* 0..128, in the 16-byte space (IPv4 /24 is stored as 120) */
};

/* Splits "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" into host (NUL-terminated, no
 * brackets) and port (defport when absent). Returns 0 or -EINVAL. */
int args_split_hostport(const char *s, char *host, size_t host_cap, uint16_t *port,
			uint16_t defport);
/* args_split_hostport() then getaddrinfo() (numeric or name). Returns 0, -EINVAL for bad
 * syntax, or -EHOSTUNREACH when the name does not resolve. */
int args_resolve(const char *s, uint16_t defport, struct sockaddr_storage *out, socklen_t *out_len);
/* Parses "ADDR/PREFIX" or a bare address (host prefix). Returns 0 or -EINVAL. */
int args_parse_cidr(const char *s, struct args_cidr *out);
bool args_cidr_match(const struct args_cidr *c, const uint8_t addr[16]);
/* Converts a sockaddr (AF_INET/AF_INET6) to the 16-byte form; returns 0 or -EINVAL. */
int args_from_sockaddr(const struct sockaddr *sa, uint8_t addr[16], uint16_t *port);

/* Strict unsigned parsing: the whole string, base 10 (0x for 16), within [min, max].
 * Returns 0 or -EINVAL / -ERANGE. */
int args_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Like args_parse_u64 with an optional suffix k/K (1024), m/M, g/G for sizes. */
int args_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Durations: a number with suffix ms, s (default), m, h; result in milliseconds. */
int args_parse_duration_ms(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
