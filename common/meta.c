/* common/meta.c - flow metadata JSON (jansson) and its 0x88B5 frame. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "meta.h"

#define META_VERSION 1

/* The string members, with the messages decode gives when one is wrong. */
struct meta_str_field {
	const char *key;
	size_t off;
	size_t cap;
	const char *bad;
	const char *too_long;
};

#define FIELD_CAP(k) sizeof(((struct meta_flow *)0)->k)
/* Expands to the initializer list of one entry (braces stay outside for clang-format). */
#define STR_FIELD(k) #k, offsetof(struct meta_flow, k), FIELD_CAP(k), "bad " #k, #k " too long"

static const struct meta_str_field str_fields[] = {
	{ STR_FIELD(node) },   { STR_FIELD(role) },	 { STR_FIELD(comm) }, { STR_FIELD(exe) },
	{ STR_FIELD(cgroup) }, { STR_FIELD(container) }, { STR_FIELD(lib) },
};

static int set_new(json_t *obj, const char *key, json_t *v)
{
	/* json_object_set_new() takes the reference even on failure. */
	return v && json_object_set_new(obj, key, v) == 0 ? 0 : -ENOMEM;
}

static json_t *pair_u64(uint64_t a, uint64_t b)
{
	if (a > INT64_MAX || b > INT64_MAX)
		return NULL;
	return json_pack("[II]", (json_int_t)a, (json_int_t)b);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or code
 * points past U+10FFFF), 0 when invalid; *cut is set when s ends inside a sequence that was
 * valid so far (a name the kernel truncated in the middle of a character). */
static size_t utf8_seq(const unsigned char *s, bool *cut)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	*cut = false;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	for (i = 1; i < n; i++) {
		if (!s[i]) {
			*cut = true;
			return 0;
		}
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80, hi = 0xbf;
	}
	return n;
}

/* Copies the NUL-terminated in to out (as large as in) as valid UTF-8: a character cut
 * at the end is dropped, any other invalid byte becomes '?'. Process names and paths are
 * bytes, not text, and losing the whole flow record over one byte is worse. Returns the
 * length of out. */
static size_t utf8_sanitize(const char *in, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, n;
	bool cut;

	while (s[i]) {
		n = utf8_seq(s + i, &cut);
		if (cut)
			break;
		if (!n) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return o;
}

int meta_encode(const struct meta_flow *m, char *buf, size_t cap)
{
	char s[TUPLE_ADDR_STRLEN], d[TUPLE_ADDR_STRLEN];
	char clean[sizeof(m->exe)]; /* the largest string field (checked below) */
	json_t *o = NULL, *x;
	size_t i, n, len;
	int err;

	_Static_assert(sizeof(m->cgroup) <= sizeof(clean) && sizeof(m->lib) <= sizeof(clean) &&
			       sizeof(m->node) <= sizeof(clean) &&
			       sizeof(m->container) <= sizeof(clean),
		       "clean[] must hold every string field");
	if (!m || !buf || (m->event != META_START && m->event != META_END) ||
	    m->bytes[0] > INT64_MAX || m->bytes[1] > INT64_MAX || m->lost > INT64_MAX)
		return -EINVAL;
	if (tuple_addr_is_v4(m->tuple.saddr) != tuple_addr_is_v4(m->tuple.daddr))
		return -EINVAL;
	o = json_pack("{sisssssssssisi}", "v", META_VERSION, "type", "flow", "event",
		      m->event == META_START ? "start" : "end", "src",
		      tuple_addr_str(m->tuple.saddr, s), "dst", tuple_addr_str(m->tuple.daddr, d),
		      "sport", (int)m->tuple.sport, "dport", (int)m->tuple.dport);
	if (!o)
		return -ENOMEM;
	err = set_new(o, "isn", pair_u64(m->isn[0], m->isn[1]));
	err = err ?: set_new(o, "bytes", pair_u64(m->bytes[0], m->bytes[1]));
	err = err ?: set_new(o, "lost", json_integer((json_int_t)m->lost));
	err = err ?: set_new(o, "pid", json_integer(m->pid));
	err = err ?: set_new(o, "from_start", json_boolean(m->from_start));
	for (i = 0; !err && i < sizeof(str_fields) / sizeof(str_fields[0]); i++) {
		const struct meta_str_field *f = &str_fields[i];
		const char *v = (const char *)m + f->off;

		if (!memchr(v, '\0', f->cap)) {
			err = -EINVAL;
			break;
		}
		if (!*v) /* empty means absent */
			continue;
		len = utf8_sanitize(v, clean);
		x = json_stringn_nocheck(clean, len);
		err = x ? set_new(o, f->key, x) : -ENOMEM;
	}
	if (err)
		goto cleanup;
	n = json_dumpb(o, buf, cap, JSON_COMPACT);
	if (n == 0) {
		err = -EINVAL; /* invalid UTF-8 in a string member */
		goto cleanup;
	}
	if (n >= cap || n > META_MAX_JSON) {
		err = -ENOSPC;
		goto cleanup;
	}
	buf[n] = '\0';
	err = (int)n;
cleanup:
	json_decref(o);
	return err;
}

/* Reads an integer member in [min, max]; a missing member is -ENOENT. */
static int get_int(const json_t *o, const char *key, json_int_t min, json_int_t max,
		   json_int_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return -ENOENT;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -EINVAL;
	*out = json_integer_value(v);
	return 0;
}

static int get_pair(const json_t *o, const char *key, json_int_t max, json_int_t out[2])
{
	json_t *v = json_object_get(o, key);
	size_t i;

	if (!v)
		return -ENOENT;
	if (!json_is_array(v) || json_array_size(v) != 2)
		return -EINVAL;
	for (i = 0; i < 2; i++) {
		json_t *x = json_array_get(v, i);

		if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > max)
			return -EINVAL;
		out[i] = json_integer_value(x);
	}
	return 0;
}

static int get_addr(const json_t *o, const char *key, uint8_t out[16], uint8_t *family)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return -ENOENT;
	if (!json_is_string(v) || tuple_addr_parse(json_string_value(v), out, family))
		return -EINVAL;
	return 0;
}

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EINVAL;
}

int meta_decode(const char *json, size_t len, struct meta_flow *m, const char **why)
{
	uint8_t saddr[16], daddr[16], sfam, dfam;
	const char *reason = NULL;
	json_int_t v, pair[2];
	json_error_t jerr;
	json_t *o = NULL, *x;
	size_t i;
	int err;

	if (!json || !m)
		return fail(why, "no input");
	memset(m, 0, sizeof(*m));
	/* Ethernet padding may follow the document in a minimum-size frame. */
	while (len && json[len - 1] == '\0')
		len--;
	if (len > META_MAX_JSON)
		return fail(why, "too long");
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return fail(why, "not json");
	if (!json_is_object(o)) {
		reason = "not an object";
		goto cleanup;
	}
	if (get_int(o, "v", 0, INT32_MAX, &v) || v != META_VERSION) {
		reason = "bad version";
		goto cleanup;
	}
	x = json_object_get(o, "type");
	if (!json_is_string(x) || strcmp(json_string_value(x), "flow")) {
		reason = "bad type";
		goto cleanup;
	}
	x = json_object_get(o, "event");
	if (json_is_string(x) && !strcmp(json_string_value(x), "start")) {
		m->event = META_START;
	} else if (json_is_string(x) && !strcmp(json_string_value(x), "end")) {
		m->event = META_END;
	} else {
		reason = "bad event";
		goto cleanup;
	}

	err = get_addr(o, "src", saddr, &sfam);
	if (err) {
		reason = err == -ENOENT ? "missing src" : "bad src";
		goto cleanup;
	}
	err = get_addr(o, "dst", daddr, &dfam);
	if (err) {
		reason = err == -ENOENT ? "missing dst" : "bad dst";
		goto cleanup;
	}
	if (sfam != dfam) {
		reason = "src and dst families differ";
		goto cleanup;
	}
	err = get_int(o, "sport", 0, 65535, &v);
	if (err) {
		reason = err == -ENOENT ? "missing sport" : "bad sport";
		goto cleanup;
	}
	m->tuple.sport = (uint16_t)v;
	err = get_int(o, "dport", 0, 65535, &v);
	if (err) {
		reason = err == -ENOENT ? "missing dport" : "bad dport";
		goto cleanup;
	}
	m->tuple.dport = (uint16_t)v;
	tuple_init(&m->tuple, saddr, m->tuple.sport, daddr, m->tuple.dport, IPPROTO_TCP);

	/* The remaining members are optional but must be well-formed when present. */
	err = get_pair(o, "isn", UINT32_MAX, pair);
	if (err == -EINVAL) {
		reason = "bad isn";
		goto cleanup;
	}
	if (!err) {
		m->isn[0] = (uint32_t)pair[0];
		m->isn[1] = (uint32_t)pair[1];
	}
	err = get_pair(o, "bytes", INT64_MAX, pair);
	if (err == -EINVAL) {
		reason = "bad bytes";
		goto cleanup;
	}
	if (!err) {
		m->bytes[0] = (uint64_t)pair[0];
		m->bytes[1] = (uint64_t)pair[1];
	}
	err = get_int(o, "lost", 0, INT64_MAX, &v);
	if (err == -EINVAL) {
		reason = "bad lost";
		goto cleanup;
	}
	m->lost = err ? 0 : (uint64_t)v;
	err = get_int(o, "pid", INT64_MIN, INT64_MAX, &v);
	if (err == -EINVAL) {
		reason = "bad pid";
		goto cleanup;
	}
	m->pid = err ? 0 : v;
	x = json_object_get(o, "from_start");
	if (x && !json_is_boolean(x)) {
		reason = "bad from_start";
		goto cleanup;
	}
	m->from_start = json_is_true(x);
	for (i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]); i++) {
		const struct meta_str_field *f = &str_fields[i];
		char *dst = (char *)m + f->off;

		x = json_object_get(o, f->key);
		if (!x)
			continue;
		if (!json_is_string(x)) {
			reason = f->bad;
			goto cleanup;
		}
		if (json_string_length(x) >= f->cap) {
			reason = f->too_long;
			goto cleanup;
		}
		/* jansson rejects \u0000 by default, so the length is the C string's. */
		memcpy(dst, json_string_value(x), json_string_length(x) + 1);
	}
cleanup:
	json_decref(o);
	if (reason) {
		memset(m, 0, sizeof(*m));
		return fail(why, reason);
	}
	if (why)
		*why = NULL;
	return 0;
}

int meta_build_frame(uint8_t *buf, size_t cap, const struct pkt_l2 *l2, const struct meta_flow *m)
{
	static const struct pkt_l2 zero_l2;
	char json[META_MAX_JSON + 1];
	size_t hdr;
	int n;

	if (!buf || !m)
		return -EINVAL;
	if (!l2)
		l2 = &zero_l2;
	if (l2->vlan > 4094)
		return -EINVAL;
	n = meta_encode(m, json, sizeof(json));
	if (n < 0)
		return n;
	hdr = PKT_ETH_LEN + (l2->vlan ? PKT_VLAN_LEN : 0);
	if (cap < hdr + (size_t)n)
		return -ENOSPC;
	memcpy(buf, l2->dst, 6);
	memcpy(buf + 6, l2->src, 6);
	if (l2->vlan) {
		buf[12] = 0x81;
		buf[13] = 0x00;
		buf[14] = l2->vlan >> 8;
		buf[15] = l2->vlan & 0xff;
	}
	buf[hdr - 2] = ETH_P_ECV_META >> 8;
	buf[hdr - 1] = ETH_P_ECV_META & 0xff;
	memcpy(buf + hdr, json, (size_t)n);
	return (int)(hdr + (size_t)n);
}
