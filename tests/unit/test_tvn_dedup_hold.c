/* tests/unit/test_tvn_dedup_hold.c - Check suite for tvn/dedup_hold.c, the hold: data
 * past a hole waiting for the other copy (filled, in both copies, released after skew,
 * a filler that runs into it), FINs held for confirmation and the last ACKs held with
 * them, and the output reading as one clean TCP conversation to tshark. Fixtures:
 * dedup_harness.h. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "dedup_harness.h"
#include "isn.h"

static void assert_clean_conversation(const struct run *r);
static void assert_suricata_clean(const struct frl *out, bool gaps);

START_TEST(test_gaps_filled_by_other_copy)
{
	struct run r;
	size_t i, n0, lost = 0;

	run_setup(&r, 40004, 40000, 60000, 5, &(struct setup){ .mtu_a = 1040, .b_late = 1 * SEC });
	run_gen(&r);
	/* Copy A loses its SYN, frames 10..14, every 7th later frame and its last FIN. */
	n0 = r.la.n;
	for (i = n0; i-- > 0;) {
		if (i == 0 || (i >= 10 && i < 15) || (i > 20 && i % 7 == 0) || i == n0 - 2) {
			lost += r.la.v[i].len > 70;
			frl_remove(&r.la, i);
		}
	}
	ck_assert_uint_gt(lost, 5);
	run_feed(&r, true);
	/* B's server FIN has no confirmation from A (A lost it): out after skew. */
	ck_assert_uint_eq(r.s.fin[0][1], 0);
	run_expire_past_skew(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_gt(r.s.from_src[1], lost);
	ck_assert_uint_eq(r.st.holes_abandoned, 0);
	run_end(&r);
}
END_TEST

/* A single copy lost the server's only data segment: the client's last ACK (of the
 * server's FIN, past that hole) waits for the held FIN and goes out after it, whole,
 * instead of being cut below the hole and dropped as a duplicate ACK. ACKs stay below a
 * hole only while a copy may still fill it (test_acks_stay_below_hole_past_hold_bound);
 * once the server's FIN goes out its direction has ended and nothing will: the hole is
 * given up, as a capture that lost the segment reads. Suricata counts that gap
 * (tcp.reassembly_gap) and no stream event; cut below the hole, the FIN would stay
 * unacknowledged and the close incomplete. */
START_TEST(test_last_ack_past_hole_kept)
{
	struct pkt_info fin, last;
	struct run r;
	size_t i;

	run_setup(&r, 40042, 6000, 10, 61, &(struct setup){ .log = true });
	run_gen_a(&r);
	for (i = 0; i < r.la.n && !(r.la.v[i].dir == 1 && r.la.v[i].len > 60); i++)
		;
	ck_assert_uint_lt(i, r.la.n);
	frl_remove(&r.la, i);
	run_feed(&r, true);
	run_flush(&r);
	run_assert_as_input(&r);
	/* The server's FIN, then the client's ACK of it with its ack as sent. */
	ck_assert_uint_eq(r.out.n, r.all.n);
	fr_parse(&r.out.v[r.out.n - 2], &fin);
	fr_parse(&r.out.v[r.out.n - 1], &last);
	ck_assert(tuple_equal(&fin.tuple, &r.c.t[1]));
	ck_assert(fin.tcp_flags & PKT_TCP_FIN);
	ck_assert(tuple_equal(&last.tuple, &r.c.t[0]));
	ck_assert_uint_eq(last.tcp_flags, PKT_TCP_ACK);
	ck_assert_uint_eq(last.ack, fin.seq + 1);
	assert_suricata_clean(&r.out, true);
	run_end(&r);
}
END_TEST

/* Offset of the first payload byte of frame i of copy l in direction dir of c. */
static size_t frame_offset(const struct frl *l, size_t i, const struct conn *c, int *dir, size_t *n)
{
	struct pkt_info in;

	fr_parse(&l->v[i], &in);
	*dir = tuple_equal(&in.tuple, &c->t[0]) ? 0 : 1;
	*n = in.payload_len;
	return in.seq - c->isn[*dir] - 1;
}

/* Bytes [from, to) of direction dir delivered exactly `times` times each. */
static void assert_delivered(const struct sink *s, int dir, size_t from, size_t to, unsigned times)
{
	size_t j;

	for (j = from; j < to; j++)
		if (s->cnt[0][dir][j] != times)
			ck_abort_msg("dir %d byte %zu delivered %u times, not %u", dir, j,
				     s->cnt[0][dir][j], times);
}

/* Client bytes [off, off + n) never delivered, every other byte of both directions once. */
static void assert_hole_only(const struct run *r, size_t off, size_t n)
{
	assert_delivered(&r->s, 0, 0, off, 1);
	assert_delivered(&r->s, 0, off, off + n, 0);
	assert_delivered(&r->s, 0, off + n, r->c.len[0], 1);
	assert_delivered(&r->s, 1, 0, r->c.len[1], 1);
}

/* Both copies lost the same segment (identical segmentation, B 50 ms late): A's data
 * past the hole waits for B only until B's data runs past the hole too, then goes out,
 * long before skew; the hole stays a hole and everything else arrives once. */
START_TEST(test_hole_in_both_copies)
{
	size_t off, n, k = 20;
	struct run r;
	int dir;

	run_setup(&r, 40043, 30000, 1000, 62,
		  &(struct setup){ .mtu_a = 1040, .mtu_b = 1040, .b_late = 50 * MS });
	run_gen(&r);
	off = frame_offset(&r.la, k, &r.c, &dir, &n);
	ck_assert_int_eq(dir, 0);
	ck_assert_uint_eq(n, 1000);
	frl_remove(&r.la, k);
	frl_remove(&r.lb, k);
	run_feed(&r, true);
	/* Before any expiry past skew: out once B passed the hole. */
	ck_assert_uint_lt(run_last_ts(&r), r.a.t0 + r.cfg.skew_ns);
	assert_hole_only(&r, off, n);
	run_flush(&r);
	assert_fins_once(&r.s);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	run_end(&r);
}
END_TEST

/* B (1500-byte segments, 100 ms late: A brings every byte it has first) fills a hole
 * in A (1000-byte segments): A loses its client data segment at an offset that is `at`
 * modulo 3000 (0: B's filler starts with the hole; 2000: 500 bytes before it), and B's
 * agent read the byte at that offset + flip differently. Fed and flushed. */
static void filler_conflict_run(struct run *r, uint16_t cport, uint32_t seed, size_t at, long flip)
{
	size_t off = 0, n = 0, k;
	int dir = 1;

	run_setup(r, cport, 30000, 1000, seed,
		  &(struct setup){ .mtu_a = 1040, .mtu_b = 1540, .b_late = 100 * MS });
	run_gen_a(r);
	for (k = 5; k < r->la.n; k++) {
		off = frame_offset(&r->la, k, &r->c, &dir, &n);
		if (dir == 0 && n == 1000 && off % 3000 == at && off + 3000 < r->c.len[0])
			break;
	}
	ck_assert_uint_lt(k, r->la.n);
	run_flip_b(r, (size_t)((long)off + flip));
	run_gen_b(r);
	frl_remove(&r->la, k);
	run_feed(r, true);
	run_flush(r);
}

/* Copy A lost a segment and its data past the hole is held; copy B, segmented
 * differently, fills the hole with a segment that runs into A's held data and disagrees
 * with it there. A brought those bytes first, so A's bytes go out (DESIGN §4: the first
 * copy wins) and the conflict is counted, the hole's bytes come from B, all once. */
START_TEST(test_hole_fill_conflict_first_copy_wins)
{
	uint64_t in_bytes = 0;
	struct run r;
	size_t k;

	/* The filler starts with the hole; the flip is in A's held segment after it. */
	filler_conflict_run(&r, 40047, 66, 0, 1000 + 100);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.overlap_conflicts, 1);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	/* Every payload byte that came in either went out once or is counted a duplicate,
	 * and every frame either went out (whole or in pieces) or is counted dropped. */
	for (k = 0; k < r.all.n; k++) {
		struct pkt_info in;

		fr_parse(&r.all.v[k], &in);
		in_bytes += in.payload_len;
	}
	ck_assert_uint_eq(in_bytes, r.st.dup_bytes + r.c.len[0] + r.c.len[1]);
	ck_assert_uint_ge(r.st.emitted_packets + r.st.dropped_packets, r.all.n);
	run_end(&r);
}
END_TEST

/* Copy A lost a segment; copy B, segmented differently, fills the hole with a segment
 * that starts 500 bytes before it, in bytes A already delivered, and disagrees with A
 * there. Those covered bytes are checked against what went out: a conflict, counted
 * once, A's bytes kept; the hole's bytes come from B; every byte once. */
START_TEST(test_partial_overlap_conflict)
{
	struct run r;

	/* The filler starts 500 bytes early; the flip is 200 bytes before the hole. */
	filler_conflict_run(&r, 40049, 68, 2000, -200);
	sink_assert_exact(&r.s, 0, true);
	assert_delivered(&r.s, 0, 0, r.c.len[0], 1);
	ck_assert_uint_eq(r.st.overlap_conflicts, 1);
	ck_assert_uint_eq(r.s.ended[0].overlap_conflicts, 1);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	run_end(&r);
}
END_TEST

/* Copy B stops after the handshake (its agent died) and copy A has a hole: A's data past
 * the hole is held for skew, then dedup_expire() delivers it, once. */
START_TEST(test_hole_released_after_skew)
{
	size_t off, n, k = 10;
	uint64_t held_at;
	struct run r;
	int dir;

	run_setup(&r, 40044, 20000, 1000, 63, &(struct setup){ .mtu_a = 1040 });
	run_gen(&r);
	frl_truncate(&r.lb, 3);
	off = frame_offset(&r.la, k, &r.c, &dir, &n);
	ck_assert_int_eq(dir, 0);
	held_at = r.la.v[k + 1].ts;
	frl_remove(&r.la, k);
	run_feed(&r, true);
	assert_delivered(&r.s, 0, 0, off, 1);
	assert_delivered(&r.s, 0, off, r.c.len[0], 0);
	dedup_expire(r.d, held_at + r.cfg.skew_ns - 1);
	assert_delivered(&r.s, 0, off + n, r.c.len[0], 0);
	dedup_expire(r.d, held_at + r.cfg.skew_ns + 1);
	assert_hole_only(&r, off, n);
	run_flush(&r);
	assert_fins_once(&r.s);
	ck_assert_uint_eq(r.st.rx_packets, r.all.n);
	ck_assert_uint_eq(r.st.emitted_packets + r.st.dropped_packets, r.all.n);
	run_end(&r);
}
END_TEST

/* Copy A's agent is stopped (SIGTERM) mid-transfer: it closes its view of the flow as
 * it closes every connection (FIN/ACK each way at its current offsets, then the
 * client's last ACK) while B's copy goes on. Those FINs must not reach the tools before
 * the end of the data (a tool stops reading there), nor take the sequence byte the data
 * needs, and the last ACK of that close must not go out either: its sequence number
 * counts the client's FIN (tshark: "previous segment not captured", then every later
 * client ACK a keep-alive). */
START_TEST(test_agent_shutdown_fins_held)
{
	struct run r;
	uint32_t end[2] = { 0, 0 };
	size_t i;

	run_setup(&r, 40034, 20000, 30000, 54,
		  &(struct setup){ .mtu_a = 1040, .b_late = 50 * MS, .log = true });
	run_gen(&r);
	frl_truncate(&r.la, 14);
	for (i = 0; i < r.la.n; i++) {
		struct pkt_info in;

		fr_parse(&r.la.v[i], &in);
		if (in.payload_len)
			end[r.la.v[i].dir] = in.seq + in.payload_len;
	}
	ck_assert_uint_ne(end[0], 0);
	ck_assert_uint_ne(end[1], 0);
	/* The shutdown FINs, as the agent sends them, after A's last frame. */
	{
		struct copy_opts o = r.a;
		struct gen_ctx g = { .out = &r.la, .ts = &o.t0, .step = 1000, .src = 0 };
		uint16_t ip_id = 900;

		o.t0 = r.la.v[r.la.n - 1].ts + 1000;
		gen_seg(&g, &r.c, &o, 0, end[0], end[1], PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0,
			&ip_id);
		gen_seg(&g, &r.c, &o, 1, end[1], end[0] + 1, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0,
			&ip_id);
		gen_seg(&g, &r.c, &o, 0, end[0] + 1, end[1] + 1, PKT_TCP_ACK, NULL, 0, &ip_id);
	}
	run_feed(&r, true);
	/* B's real FINs are the only ones; they wait for a confirmation that cannot come
	 * (A is gone) and go out after skew. */
	ck_assert_uint_eq(r.s.fin[0][0] + r.s.fin[0][1], 0);
	run_expire_past_skew(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	assert_clean_conversation(&r);
	run_end(&r);
}
END_TEST

/* Feeds frames the way the tvn's live loop does: dedup_expire() every tick of frame
 * time (not before every frame), and on until `until` after the last frame. */
static void feed_live(struct dedup *d, struct sink *s, const struct frl *l, uint64_t tick,
		      uint64_t until)
{
	uint64_t now = l->n ? l->v[0].ts : 0;
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct pkt_info in;

		while (now + tick <= l->v[i].ts) {
			now += tick;
			dedup_expire(d, now);
		}
		ck_assert_int_eq(pkt_parse(l->v[i].b, l->v[i].len, &in), 0);
		dedup_input(d, l->v[i].b, l->v[i].len, &in, &s->srcs[l->v[i].src], l->v[i].ts);
	}
	while (now < until) {
		now += tick;
		dedup_expire(d, now);
	}
}

/* What a TCP analyser relies on, frame by frame in output order: no frame acknowledges
 * sequence space of the other direction that was not emitted before it, nor any past a
 * hole there (tshark: "ACKed unseen segment"; Suricata then discards the hole's filler
 * as data before what was acknowledged), sequence numbers never go back within a
 * direction (tshark: retransmission / out of order), timestamps never go back within
 * the flow. */
static void assert_tcp_order(const struct frl *out, const struct conn *c)
{
	uint32_t next[2] = { 0, 0 }, last_seq[2] = { 0, 0 };
	bool seen[2] = { false, false };
	uint64_t last_ts = 0;
	size_t i;

	for (i = 0; i < out->n; i++) {
		struct pkt_info in;
		uint32_t end;
		int dir;

		ck_assert_int_eq(pkt_parse(out->v[i].b, out->v[i].len, &in), 0);
		ck_assert(tuple_equal(&in.tuple, &c->t[0]) || tuple_equal(&in.tuple, &c->t[1]));
		dir = tuple_equal(&in.tuple, &c->t[0]) ? 0 : 1;
		end = in.seq + !!(in.tcp_flags & PKT_TCP_SYN) + (uint32_t)in.payload_len +
		      !!(in.tcp_flags & PKT_TCP_FIN);
		if (seen[dir])
			ck_assert_msg((int32_t)(in.seq - last_seq[dir]) >= 0,
				      "frame %zu (dir %d): seq %u after seq %u", i, dir, in.seq,
				      last_seq[dir]);
		last_seq[dir] = in.seq;
		/* next: the end of the gap-free prefix (frames go out in order here). */
		if (!seen[dir] ||
		    ((int32_t)(in.seq - next[dir]) <= 0 && (int32_t)(end - next[dir]) > 0))
			next[dir] = end;
		seen[dir] = true;
		if (in.tcp_flags & PKT_TCP_ACK)
			ck_assert_msg(
				seen[!dir] && (int32_t)(in.ack - next[!dir]) <= 0,
				"frame %zu (dir %d, flags 0x%x): ack %u beyond the %u emitted "
				"in the other direction",
				i, dir, in.tcp_flags, in.ack, next[!dir]);
		ck_assert_msg(out->v[i].ts >= last_ts, "frame %zu: time %llu before %llu", i,
			      (unsigned long long)out->v[i].ts, (unsigned long long)last_ts);
		last_ts = out->v[i].ts;
	}
	ck_assert(seen[0] && seen[1]);
}

/* Writes the frames to a nanosecond pcap at path (a mkstemp() template). */
static void write_pcap(const struct frl *out, char *path)
{
	pcap_dumper_t *dumper;
	pcap_t *p;
	size_t i;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	p = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
	ck_assert_ptr_nonnull(p);
	dumper = pcap_dump_open(p, path);
	ck_assert_ptr_nonnull(dumper);
	for (i = 0; i < out->n; i++) {
		struct pcap_pkthdr h = { 0 };

		h.ts.tv_sec = (time_t)(out->v[i].ts / SEC);
		h.ts.tv_usec = (suseconds_t)(out->v[i].ts % SEC); /* ns: nano precision */
		h.caplen = h.len = (bpf_u_int32)out->v[i].len;
		pcap_dump((u_char *)dumper, &h, out->v[i].b);
	}
	pcap_dump_close(dumper);
	pcap_close(p);
}

/* Has tshark (Wireshark's TCP analysis, not our parser) read the frames with checksum
 * validation on: any bad checksum or TCP analysis flag (ACKed unseen segment,
 * retransmission, out of order, duplicate ACK, ...) is printed and fails the test.
 * Skips only when tshark is not installed. */
static void assert_tshark_clean(const struct frl *out)
{
	char path[] = "/tmp/ecvr-dedup-XXXXXX", cmd[512], line[512], flagged[4096] = "";
	size_t nflagged = 0;
	FILE *fp;
	int status;

	if (system("command -v tshark >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skip: tshark not installed, TCP analysis check not run\n");
		return;
	}
	write_pcap(out, path);
	snprintf(cmd, sizeof(cmd),
		 "tshark -n -r %s -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE "
		 "-Y 'tcp.checksum.status==0 || ip.checksum.status==0 || tcp.analysis.flags' "
		 "2>/dev/null",
		 path);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (strlen(flagged) + strlen(line) < sizeof(flagged))
			strcat(flagged, line);
		nflagged++;
	}
	status = pclose(fp);
	unlink(path);
	ck_assert_msg(status == 0, "tshark failed (status %d): %s", status, flagged);
	ck_assert_msg(nflagged == 0, "tshark flags %zu of %zu frames:\n%s", nflagged, out->n,
		      flagged);
}

/* Has Suricata (default configuration, stream events counted) read the frames: every
 * stream.* counter must stay 0 (each counts a packet its TCP engine found out of window,
 * badly acknowledged, before what was acknowledged, ...; such packets are not
 * reassembled), and tcp.reassembly_gap too unless gaps (the output has a hole no copy
 * filled). Skips only when Suricata is not installed. */
static void assert_suricata_clean(const struct frl *out, bool gaps)
{
	char path[] = "/tmp/ecvr-dedup-XXXXXX", dir[] = "/tmp/ecvr-suri-XXXXXX", cmd[1024];
	char line[512], bad[4096] = "";
	FILE *fp;
	int status;

	if (system("command -v suricata >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skip: suricata not installed, stream engine check not run\n");
		return;
	}
	write_pcap(out, path);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "suricata -r %s -k none -S /dev/null -l %s --set stats.stream-events=true "
		 ">/dev/null 2>&1 && python3 -c '\n"
		 "import json, sys\n"
		 "st = [json.loads(l) for l in open(sys.argv[1])]\n"
		 "st = [e[\"stats\"] for e in st if e.get(\"event_type\") == \"stats\"][-1]\n"
		 "c = {\"stream.\" + k: v for k, v in st.get(\"stream\", {}).items()}\n"
		 "c[\"tcp.reassembly_gap\"] = st[\"tcp\"].get(\"reassembly_gap\", 0) * %d\n"
		 "[print(k, v) for k, v in sorted(c.items()) if v]\n"
		 "' %s/eve.json; rc=$?; rm -rf %s; exit $rc",
		 path, dir, gaps ? 0 : 1, dir, dir);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	while (fgets(line, sizeof(line), fp))
		if (strlen(bad) + strlen(line) < sizeof(bad))
			strcat(bad, line);
	status = pclose(fp);
	unlink(path);
	ck_assert_msg(status == 0, "suricata failed (status %d): %s", status, bad);
	ck_assert_msg(!bad[0], "Suricata's stream engine objects:\n%s", bad);
}

/* Removes every nth data frame (a frame with payload) of a copy: lost perf samples. */
static void lose_data(struct frl *l, size_t nth)
{
	size_t i, k = 0;

	for (i = l->n; nth && i-- > 0;) {
		struct pkt_info in;

		ck_assert_int_eq(pkt_parse(l->v[i].b, l->v[i].len, &in), 0);
		if (in.payload_len && ++k % nth == 0)
			frl_remove(l, i);
	}
}

/* The run's output, frame by frame, reads as one clean TCP conversation: to our parser
 * and to tshark. */
static void assert_clean_conversation(const struct run *r)
{
	assert_tcp_order(&r->out, &r->c);
	assert_tshark_clean(&r->out);
	assert_suricata_clean(&r->out, false);
}

/* Two node copies of one conversation as the agents synthesize it (SYN, SYN-ACK with
 * window scale, ACK, data both ways each acknowledged by the reader, FIN/ACK from each
 * side, last ACK), differently segmented, the second
 * `late` behind the first (late 0: one node's copy only), the first missing every
 * lose_a-th data frame (0: none) that the second brings. live: dedup_expire() every
 * 100 ms, for 10 s after the last frame; else offline: all frames, then dedup_flush().
 * The output must be every byte once and read as a clean conversation. */
static void conversation_case(uint64_t late, uint64_t skew, unsigned mtu_a, unsigned mtu_b,
			      bool live, uint16_t cport, size_t lose_a)
{
	struct run r;

	run_setup(&r, cport, 12000, 40000, cport,
		  &(struct setup){ .skew = skew,
				   .mtu_a = mtu_a,
				   .mtu_b = mtu_b,
				   .msg = 2500,
				   .b_late = (int64_t)late,
				   .log = true,
				   .agent = true });
	run_gen_a(&r);
	lose_data(&r.la, lose_a);
	if (late)
		run_gen_b(&r);
	run_merge(&r);
	if (live) {
		feed_live(r.d, &r.s, &r.all, 100 * MS, run_last_ts(&r) + skew + 5 * SEC);
	} else {
		feed(r.d, &r.s, &r.all, false);
		dedup_flush(r.d);
	}
	run_finish(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.flows_total, 1);
	ck_assert_uint_eq(r.st.flows_active, 0); /* the flow ended (expiry or flush) */
	assert_clean_conversation(&r);
	run_end(&r);
}

/* The copies interleave (5 us apart): each FIN of the first copy is held until the
 * second's confirms it; the last ACK must not overtake the FIN it acknowledges. */
START_TEST(test_conversation_clean_interleaved)
{
	conversation_case(5000, 2 * SEC, 1000, 1450, true, 41001, 0);
	conversation_case(5000, 2 * SEC, 1450, 1000, true, 41002, 0);
}
END_TEST

/* Second copy 1.5 s late (default skew 2 s), and 3 s late with skew 4 s: the first
 * copy's FINs and last ACK wait for it. */
START_TEST(test_conversation_clean_late_copy)
{
	conversation_case(1500 * MS, 2 * SEC, 1000, 1450, true, 41003, 0);
	conversation_case(1500 * MS, 2 * SEC, 1450, 1000, true, 41004, 0);
	conversation_case(3 * SEC, 4 * SEC, 1000, 1450, true, 41005, 0);
}
END_TEST

/* One node's copy only, a young flow: dedup_expire() delivers the held FINs after skew,
 * in order, not earlier in time than what the flow already emitted, then the last ACK. */
START_TEST(test_conversation_clean_fins_expired)
{
	conversation_case(0, 2 * SEC, 1000, 1000, true, 41006, 0);
	conversation_case(0, 2 * SEC, 1450, 1450, true, 41007, 0);
}
END_TEST

/* Offline (--read, then flush): whatever is still held goes out at the flush. */
START_TEST(test_conversation_clean_offline)
{
	conversation_case(5000, 2 * SEC, 1000, 1450, false, 41008, 0);
	conversation_case(1500 * MS, 2 * SEC, 1450, 1000, false, 41009, 0);
	conversation_case(0, 2 * SEC, 1000, 1000, false, 41010, 0);
}
END_TEST

/* The first copy loses data frames the second brings (interleaved, 50 ms and 1.5 s
 * later): what the first copy sends past such a hole waits for the filler instead of
 * reaching the tools ahead of it (analysers: "previous segment not captured", then the
 * filler as a retransmission). */
START_TEST(test_conversation_clean_holes_filled)
{
	conversation_case(5000, 2 * SEC, 1000, 1450, true, 41011, 5);
	conversation_case(50 * MS, 2 * SEC, 1450, 1000, true, 41012, 4);
	conversation_case(50 * MS, 2 * SEC, 1000, 1450, false, 41013, 3);
	conversation_case(1500 * MS, 2 * SEC, 1450, 1000, true, 41014, 7);
}
END_TEST

/* Copy A lost one of the server's first data segments and brings the 18 MiB after it
 * a second before copy B: the hold runs out of room (HOLD_DIR_MAX) and A's data past
 * the hole goes out. B may still fill the hole (and does), so the client's ACKs must
 * stay below it until then: acknowledged past it, the filler would read to Suricata as
 * data before what was acknowledged and be discarded (stream.est_pkt_before_last_ack);
 * below it, the filler is an out-of-order segment that closes the gap. */
START_TEST(test_acks_stay_below_hole_past_hold_bound)
{
	struct pkt_info in;
	struct run r;
	size_t i, k = 0;

	run_setup(&r, 41020, 3000, 18u << 20, 41020,
		  &(struct setup){ .skew = 5 * SEC,
				   .msg = 16384,
				   .b_late = 1 * SEC,
				   .log = true,
				   .agent = true });
	run_gen_a(&r);
	for (i = 0; i < r.la.n; i++) {
		fr_parse(&r.la.v[i], &in);
		if (r.la.v[i].dir == 1 && in.payload_len && ++k == 3)
			break;
	}
	ck_assert_uint_lt(i, r.la.n);
	frl_remove(&r.la, i);
	run_gen_b(&r);
	run_merge(&r);
	feed_live(r.d, &r.s, &r.all, 100 * MS, run_last_ts(&r) + 6 * SEC);
	run_finish(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.holes_abandoned, 0);
	assert_suricata_clean(&r.out, false);
	run_end(&r);
}
END_TEST

/* Half-close, one node's copy (a young flow: its FINs are held for skew): the server
 * goes on sending after the client's FIN, acknowledging it. While that FIN is held
 * those segments go out with their ack cut to what the client direction emitted
 * (checksum fixed); the FINs and the last ACK follow in order. */
START_TEST(test_conversation_clean_half_close)
{
	const struct copy_opts *o;
	struct gen_ctx g;
	uint16_t ip_id = 1;
	struct run r;
	uint32_t c1, s1;
	uint64_t ts;

	run_setup(&r, 41011, 3000, 8000, 11, &(struct setup){ .log = true });
	o = &r.a;
	ts = o->t0;
	g = (struct gen_ctx){ .out = &r.la, .ts = &ts, .step = o->step, .src = o->src };
	c1 = r.c.isn[0] + 1;
	s1 = r.c.isn[1] + 1;
	gen_seg(&g, &r.c, o, 0, r.c.isn[0], 0, PKT_TCP_SYN, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 1, r.c.isn[1], c1, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 0, c1, s1, PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 0, c1, s1, PKT_TCP_ACK | PKT_TCP_PSH, r.c.data[0], 3000, &ip_id);
	gen_seg(&g, &r.c, o, 1, s1, c1 + 3000, PKT_TCP_ACK | PKT_TCP_PSH, r.c.data[1], 5000,
		&ip_id);
	gen_seg(&g, &r.c, o, 0, c1 + 3000, s1 + 5000, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 1, s1 + 5000, c1 + 3001, PKT_TCP_ACK | PKT_TCP_PSH, r.c.data[1] + 5000,
		3000, &ip_id);
	gen_seg(&g, &r.c, o, 1, s1 + 8000, c1 + 3001, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 0, c1 + 3001, s1 + 8001, PKT_TCP_ACK, NULL, 0, &ip_id);
	run_merge(&r);
	feed_live(r.d, &r.s, &r.all, 100 * MS, run_last_ts(&r) + 5 * SEC);
	run_finish(&r);

	sink_assert_exact(&r.s, 0, true); /* includes: every checksum valid */
	/* Every frame went out once: the cut ones too, nothing was dropped. */
	ck_assert_uint_eq(r.st.emitted_packets, r.all.n);
	ck_assert_uint_eq(r.st.dropped_packets, 0);
	assert_clean_conversation(&r);
	run_end(&r);
}
END_TEST

static Suite *hold_suite(void)
{
	Suite *s = suite_create("tvn_dedup_hold");
	TCase *b = tcase_create("bytes"), *cv = tcase_create("conversation");

	tcase_add_test(b, test_gaps_filled_by_other_copy);
	tcase_add_test(b, test_last_ack_past_hole_kept);
	tcase_add_test(b, test_hole_in_both_copies);
	tcase_add_test(b, test_hole_released_after_skew);
	tcase_add_test(b, test_hole_fill_conflict_first_copy_wins);
	tcase_add_test(b, test_partial_overlap_conflict);
	tcase_add_test(b, test_agent_shutdown_fins_held);
	suite_add_tcase(s, b);
	/* Each case runs tshark a few times (about a second each, more under ASan). */
	tcase_set_timeout(cv, 120);
	tcase_add_test(cv, test_conversation_clean_interleaved);
	tcase_add_test(cv, test_conversation_clean_late_copy);
	tcase_add_test(cv, test_conversation_clean_fins_expired);
	tcase_add_test(cv, test_conversation_clean_offline);
	tcase_add_test(cv, test_conversation_clean_half_close);
	tcase_add_test(cv, test_conversation_clean_holes_filled);
	tcase_add_test(cv, test_acks_stay_below_hole_past_hold_bound);
	suite_add_tcase(s, cv);
	return s;
}

int main(void)
{
	return check_run(hold_suite());
}
