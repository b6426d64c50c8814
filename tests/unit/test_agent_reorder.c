/* tests/unit/test_agent_reorder.c - events of one poll round come out in kernel time
 * order (ties in arrival order), byte for byte, aligned, and the buffer is reusable. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/reorder.h"
#include "check_run.h"

struct seen {
	uint64_t ts[16];
	uint32_t pid[16];
	uint8_t first[16];
	size_t size[16];
	unsigned n;
};

static void collect(void *ctx, const struct ecv_event *ev, size_t size)
{
	struct seen *s = ctx;

	ck_assert_uint_eq((uintptr_t)ev % 8, 0);
	ck_assert_uint_lt(s->n, 16);
	s->ts[s->n] = ev->ts_ns;
	s->pid[s->n] = ev->pid;
	s->first[s->n] = ev->len ? ev->data[ev->len - 1] : 0;
	s->size[s->n] = size;
	s->n++;
}

static void add(struct reorder *r, uint64_t ts, uint32_t pid, uint32_t len)
{
	static struct ecv_event ev;

	memset(&ev, 0, ECV_EVENT_HDR_LEN);
	ev.ts_ns = ts;
	ev.pid = pid;
	ev.len = len;
	memset(ev.data, (int)pid, len);
	/* the perf sample may be longer than header + len (padding) */
	ck_assert_int_eq(reorder_add(r, &ev, ECV_EVENT_HDR_LEN + len + 4), 0);
}

START_TEST(sorted_by_timestamp_ties_stable)
{
	struct reorder *r = reorder_new();
	struct seen s = { 0 };

	ck_assert_ptr_nonnull(r);
	/* CPU1's ring read first: its close (ts 40) before CPU0's writes */
	add(r, 40, 1, 0);
	add(r, 10, 2, 5);
	add(r, 30, 3, ECV_CHUNK_SIZE);
	add(r, 10, 4, 7);
	ck_assert_uint_eq(reorder_drain(r, collect, &s), 4);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_uint_eq(s.pid[0], 2);
	ck_assert_uint_eq(s.pid[1], 4);
	ck_assert_uint_eq(s.pid[2], 3);
	ck_assert_uint_eq(s.pid[3], 1);
	ck_assert_uint_eq(s.first[0], 2);
	ck_assert_uint_eq(s.first[2], 3); /* the last byte of a full chunk survived */
	ck_assert_uint_eq(s.size[0], ECV_EVENT_HDR_LEN + 5);
	ck_assert_uint_eq(s.size[2], ECV_EVENT_HDR_LEN + ECV_CHUNK_SIZE);

	/* emptied, and usable for the next round */
	s.n = 0;
	ck_assert_uint_eq(reorder_drain(r, collect, &s), 0);
	add(r, 5, 9, 1);
	ck_assert_uint_eq(reorder_drain(r, collect, &s), 1);
	ck_assert_uint_eq(s.pid[0], 9);
	reorder_free(r);
	reorder_free(NULL);
}
END_TEST

/* perf samples sit 4 bytes off an 8-byte boundary in the ring: reorder_add() takes them
 * from there and hands out an aligned, identical copy. */
START_TEST(unaligned_sample_copied_intact)
{
	struct reorder *r = reorder_new();
	struct ecv_event ev;
	struct seen s = { 0 };
	uint8_t *raw = malloc(sizeof(ev) + 8);

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(raw);
	memset(&ev, 0, sizeof(ev));
	ev.ts_ns = 77;
	ev.pid = 4242;
	ev.len = 333;
	memset(ev.data, 0x5a, ev.len);
	ev.data[ev.len - 1] = 0xc3;
	memcpy(raw + 4, &ev, ECV_EVENT_HDR_LEN + ev.len);
	ck_assert_int_eq(reorder_add(r, raw + 4, ECV_EVENT_HDR_LEN + ev.len), 0);
	ck_assert_uint_eq(reorder_drain(r, collect, &s), 1);
	ck_assert_uint_eq(s.ts[0], 77);
	ck_assert_uint_eq(s.pid[0], 4242);
	ck_assert_uint_eq(s.first[0], 0xc3);
	ck_assert_uint_eq(s.size[0], ECV_EVENT_HDR_LEN + 333);
	free(raw);
	reorder_free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_reorder");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, sorted_by_timestamp_ties_stable);
	tcase_add_test(tc, unaligned_sample_copied_intact);
	suite_add_tcase(s, tc);
	return check_run(s);
}
