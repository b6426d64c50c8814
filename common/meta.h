/* common/meta.h - flow metadata messages (DESIGN §2 "Flow metadata").
 * Owns: the JSON schema (jansson), its validation, and the 0x88B5 frame that carries it.
 * Does not own: where the values come from (the agent) or what is done with them (tvn).
 * Pure. */
#ifndef ECV_META_H
#define ECV_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkt.h"
#include "tuple.h"

/* Longest JSON document accepted or produced. */
#define META_MAX_JSON 4096

enum meta_event { META_START = 0, META_END = 1 };

/* One flow metadata message. tuple is client -> server when role is known ("src" is
 * the client), otherwise as the agent saw it. Strings are NUL-terminated; empty means
 * absent. isn[0]/bytes[0] are for src -> dst, [1] for dst -> src. */
struct meta_flow {
	enum meta_event event;
	struct ecv_tuple tuple;
	uint32_t isn[2];
	uint64_t bytes[2];
	uint64_t lost;
	int64_t pid;
	bool from_start;
	char node[64];
	char role[16]; /* "client", "server" or "" */
	char comm[16];
	char exe[256];
	char cgroup[256];
	char container[80];
	char lib[256];
};

/* Encodes m as one compact JSON object {"v":1,"type":"flow",...} into buf (NUL
 * terminated). Returns the length without the NUL, or -ENOSPC / -EINVAL. */
int meta_encode(const struct meta_flow *m, char *buf, size_t cap);
/* Decodes and validates one JSON object. Returns 0, or -EINVAL with a reason ("too
 * long", "not json", "missing src", "bad version", ...) in *why (static string) when
 * why is not NULL. Unknown keys are ignored; over-long strings are rejected. */
int meta_decode(const char *json, size_t len, struct meta_flow *m, const char **why);
/* Builds a full metadata frame: Ethernet (l2, EtherType 0x88B5) + the encoded JSON.
 * Returns the frame length or -ENOSPC / -EINVAL. */
int meta_build_frame(uint8_t *buf, size_t cap, const struct pkt_l2 *l2, const struct meta_flow *m);

#endif
