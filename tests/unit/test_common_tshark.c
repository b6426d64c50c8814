/* tests/unit/test_common_tshark.c - the real-peer proof that our frames are valid TCP.
 * Synthesizes a whole conversation with pkt_build()/pkt_segment() (SYN, SYN-ACK, ACK,
 * data both ways cut into MSS segments, FIN/ACK from each side, last ACK) for IPv4 and
 * IPv6 with the DESIGN §3 ISNs, writes it with libpcap, and has tshark (Wireshark's
 * dissectors, not our parser) read it back:
 *   - follow,tcp,raw returns each direction's bytes exactly;
 *   - with checksum validation on, no frame has a bad checksum or a TCP analysis flag;
 *   - a deliberately corrupted copy is flagged, so that check can fail.
 * Skips (exit 77 via the test) only when tshark is not installed. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "isn.h"
#include "pkt.h"

#define MTU 1450
#define C2S_LEN 5000
#define S2C_LEN 7001

struct conv {
	pcap_dumper_t *dumper;
	long usec;
	int frames;
	int corrupt_frame; /* flip a payload byte of this frame (1-based), 0 = none */
};

static int dump_frame(void *ctx, const uint8_t *frame, size_t len)
{
	struct conv *cv = ctx;
	struct pcap_pkthdr h = { 0 };
	uint8_t copy[2048];

	ck_assert_uint_le(len, sizeof(copy));
	memcpy(copy, frame, len);
	cv->frames++;
	if (cv->frames == cv->corrupt_frame)
		copy[len - 1] ^= 0x01;
	cv->usec += 1000;
	h.ts.tv_sec = 1700000000 + cv->usec / 1000000;
	h.ts.tv_usec = cv->usec % 1000000;
	h.caplen = h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)cv->dumper, &h, copy);
	return 0;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Writes the conversation client -> server to path; returns the number of frames. */
static int write_conversation(const char *path, const char *cli, const char *srv,
			      const uint8_t *c2s, const uint8_t *s2c, int corrupt_frame)
{
	struct pkt_l2 l2c = { .src = { 2, 0, 0, 0, 0, 1 }, .dst = { 2, 0, 0, 0, 0, 2 } };
	struct pkt_l2 l2s = { .src = { 2, 0, 0, 0, 0, 2 }, .dst = { 2, 0, 0, 0, 0, 1 } };
	struct conv cv = { .corrupt_frame = corrupt_frame };
	struct ecv_tuple c, s;
	uint8_t ca[16], sa[16];
	uint32_t ic, is;
	uint16_t idc = 1, ids = 1;
	pcap_t *p;

	ck_assert_int_eq(tuple_addr_parse(cli, ca, NULL), 0);
	ck_assert_int_eq(tuple_addr_parse(srv, sa, NULL), 0);
	ck_assert_int_eq(tuple_init(&c, ca, 40000, sa, 443, IPPROTO_TCP), 0);
	tuple_reverse(&s, &c);
	ic = isn_compute(&c);
	is = isn_compute(&s);

	p = pcap_open_dead(DLT_EN10MB, 65535);
	ck_assert_ptr_nonnull(p);
	cv.dumper = pcap_dump_open(p, path);
	ck_assert_msg(cv.dumper != NULL, "pcap_dump_open: %s", pcap_geterr(p));

#define SEG(l2, t, id, s_, a_, f_, data, len)                                                      \
	do {                                                                                       \
		struct pkt_tcp tcp_ = { .seq = (s_), .ack = (a_), .flags = (f_) };                 \
		ck_assert_int_eq(pkt_segment(&(l2), &(t), &tcp_, &(id), MTU, (data), (len),        \
					     dump_frame, &cv),                                     \
				 0);                                                               \
	} while (0)

	SEG(l2c, c, idc, ic, 0, PKT_TCP_SYN, NULL, 0);
	SEG(l2s, s, ids, is, ic + 1, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	SEG(l2c, c, idc, ic + 1, is + 1, PKT_TCP_ACK, NULL, 0);
	SEG(l2c, c, idc, ic + 1, is + 1, PKT_TCP_PSH | PKT_TCP_ACK, c2s, C2S_LEN);
	SEG(l2s, s, ids, is + 1, ic + 1 + C2S_LEN, PKT_TCP_PSH | PKT_TCP_ACK, s2c, S2C_LEN);
	SEG(l2c, c, idc, ic + 1 + C2S_LEN, is + 1 + S2C_LEN, PKT_TCP_ACK, NULL, 0);
	SEG(l2c, c, idc, ic + 1 + C2S_LEN, is + 1 + S2C_LEN, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	SEG(l2s, s, ids, is + 1 + S2C_LEN, ic + 2 + C2S_LEN, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	SEG(l2c, c, idc, ic + 2 + C2S_LEN, is + 2 + S2C_LEN, PKT_TCP_ACK, NULL, 0);
#undef SEG
	pcap_dump_close(cv.dumper);
	pcap_close(p);
	return cv.frames;
}

static bool have_tshark(void)
{
	return system("command -v tshark >/dev/null 2>&1") == 0;
}

/* Runs cmd; returns its stdout (malloc'd) and sets *status to the exit code. */
static char *run(const char *cmd, int *status)
{
	char *out = NULL;
	size_t cap = 0, len = 0;
	char chunk[4096];
	size_t n;
	FILE *p;
	int st;

	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
		memcpy(out + len, chunk, n);
		len += n;
	}
	if (!out)
		out = calloc(1, 1);
	out[len] = '\0';
	st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Appends the hex digits of line to buf. */
static void append_hex(const char *line, uint8_t *buf, size_t cap, size_t *len)
{
	while (line[0] && line[1] && unhex(line[0]) >= 0 && unhex(line[1]) >= 0) {
		ck_assert_uint_lt(*len, cap);
		buf[(*len)++] = (uint8_t)(unhex(line[0]) << 4 | unhex(line[1]));
		line += 2;
	}
}

/* "follow,tcp,raw" prints each chunk as one hex line, node 1 (server) lines indented
 * with a tab, between the "Node 1:" header and the closing "=====" line. */
static void check_follow(const char *path, const uint8_t *c2s, const uint8_t *s2c)
{
	static uint8_t got_c[C2S_LEN + 64], got_s[S2C_LEN + 64];
	size_t lc = 0, ls = 0;
	char cmd[512], *out, *line, *save = NULL;
	bool body = false;
	int st;

	snprintf(cmd, sizeof(cmd), "tshark -n -r %s -q -z follow,tcp,raw,0 2>/dev/null", path);
	out = run(cmd, &st);
	ck_assert_msg(st == 0, "tshark exited %d", st);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "Node 1:", 7)) {
			body = true;
			continue;
		}
		if (!body)
			continue;
		if (!strncmp(line, "=====", 5))
			break;
		if (line[0] == '\t')
			append_hex(line + 1, got_s, sizeof(got_s), &ls);
		else
			append_hex(line, got_c, sizeof(got_c), &lc);
	}
	free(out);
	ck_assert_uint_eq(lc, C2S_LEN);
	ck_assert_uint_eq(ls, S2C_LEN);
	ck_assert(memcmp(got_c, c2s, C2S_LEN) == 0);
	ck_assert(memcmp(got_s, s2c, S2C_LEN) == 0);
}

static const char problems_filter[] =
	"-o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE "
	"-Y 'tcp.checksum.status==0 || ip.checksum.status==0 || tcp.analysis.flags'";

/* Frames tshark flags; *frames gets how many it read in total. */
static char *problems(const char *path, int *frames)
{
	char cmd[512], *out;
	int st, n = 0;
	char *p;

	snprintf(cmd, sizeof(cmd), "tshark -n -r %s -T fields -e frame.number 2>/dev/null", path);
	out = run(cmd, &st);
	ck_assert_int_eq(st, 0);
	for (p = out; *p; p++)
		n += *p == '\n';
	free(out);
	*frames = n;
	snprintf(cmd, sizeof(cmd), "tshark -n -r %s %s 2>/dev/null", path, problems_filter);
	out = run(cmd, &st);
	ck_assert_int_eq(st, 0);
	return out;
}

static void conversation(const char *cli, const char *srv)
{
	static uint8_t c2s[C2S_LEN], s2c[S2C_LEN];
	char path[] = "/tmp/ecvc-tshark-XXXXXX.pcap";
	size_t mss = pkt_mss(MTU, strchr(cli, ':') ? AF_INET6 : AF_INET);
	int fd, frames, read_frames, expect;
	char *out;

	fd = mkstemps(path, 5);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fill(c2s, sizeof(c2s), 1);
	fill(s2c, sizeof(s2c), 2);

	frames = write_conversation(path, cli, srv, c2s, s2c, 0);
	/* 3 handshake + ceil(5000/mss) + ceil(7001/mss) + ACK + 2 FIN + last ACK. */
	expect = 3 + (int)((C2S_LEN + mss - 1) / mss) + (int)((S2C_LEN + mss - 1) / mss) + 4;
	ck_assert_int_eq(frames, expect);
	check_follow(path, c2s, s2c);
	out = problems(path, &read_frames);
	ck_assert_int_eq(read_frames, frames);
	ck_assert_msg(out[0] == '\0', "tshark flagged frames:\n%s", out);
	free(out);

	/* The same conversation with one data byte flipped in frame 5 must be caught. */
	write_conversation(path, cli, srv, c2s, s2c, 5);
	out = problems(path, &read_frames);
	ck_assert_int_eq(read_frames, frames);
	ck_assert_msg(out[0] != '\0', "corrupted checksum not flagged");
	free(out);
	unlink(path);
}

START_TEST(test_ipv4)
{
	conversation("10.0.0.1", "10.0.0.2");
}
END_TEST

START_TEST(test_ipv6)
{
	conversation("2001:db8::1", "2001:db8::2");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tshark");
	TCase *tc = tcase_create("tshark");

	if (!have_tshark()) {
		printf("skip: tshark is not installed (apt-get install tshark)\n");
		return 77;
	}
	tcase_set_timeout(tc, 180); /* tshark start-up is slow on small CI machines */
	tcase_add_test(tc, test_ipv4);
	tcase_add_test(tc, test_ipv6);
	suite_add_tcase(s, tc);
	return check_run(s);
}
