/* tests/unit/test_tvn_ring.c - the SPSC record ring under tvn's shard and egress queues:
 * records come out whole, in order, across the wrap of the buffer, a full ring refuses
 * instead of overwriting, and a producer/consumer thread pair loses nothing. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "../../tvn/ring.h"
#include "check_run.h"

START_TEST(order_and_wrap)
{
	struct ring *r = ring_new(65536);
	uint8_t buf[3000];
	uint32_t next_in = 0, next_out = 0;
	size_t len;
	int round;

	ck_assert_ptr_nonnull(r);
	/* Variable sizes push records across the end of the buffer many times. */
	for (round = 0; round < 2000; round++) {
		size_t n = 1 + (size_t)(round * 977) % sizeof(buf);
		uint8_t *p = ring_reserve(r, n);

		ck_assert_ptr_nonnull(p);
		memset(p, (int)(next_in & 0xff), n);
		memcpy(p, &next_in, n < 4 ? n : 4);
		ring_commit(r);
		next_in++;
		if (round % 3 == 2) {
			while ((p = ring_peek(r, &len))) {
				uint32_t id = 0;

				memcpy(&id, p, len < 4 ? len : 4);
				if (len >= 4)
					ck_assert_uint_eq(id, next_out);
				ck_assert_uint_eq(len, 1 + (size_t)(next_out * 977) % sizeof(buf));
				ck_assert_uint_eq(p[len - 1],
						  len <= 4 ? p[len - 1] : (next_out & 0xff));
				ring_release(r);
				next_out++;
			}
		}
	}
	while (ring_peek(r, &len)) {
		ring_release(r);
		next_out++;
	}
	ck_assert_uint_eq(next_out, next_in);
	ck_assert(ring_empty(r));
	ring_free(r);
}
END_TEST

START_TEST(full_refuses)
{
	struct ring *r = ring_new(65536);
	size_t n = 0, len;
	void *p;

	while ((p = ring_reserve(r, 1000))) {
		memset(p, 0xab, 1000);
		ring_commit(r);
		n++;
	}
	ck_assert_uint_gt(n, 50);
	ck_assert_uint_le(n, 65536 / 1000);
	/* Too big for any ring of this size. */
	ck_assert_ptr_null(ring_reserve(r, ring_max_record(r) + 1));
	p = ring_peek(r, &len);
	ck_assert_uint_eq(len, 1000);
	ring_release(r);
	ck_assert_ptr_nonnull(ring_reserve(r, 1000));
	ring_commit(r);
	ring_discard(r);
	ck_assert(ring_empty(r));
	ck_assert_ptr_null(ring_peek(r, &len));
	ring_free(r);
	ring_free(NULL);
}
END_TEST

struct xfer {
	struct ring *r;
	uint64_t count;
};

static void *producer(void *arg)
{
	struct xfer *x = arg;
	uint64_t i;

	for (i = 0; i < x->count;) {
		size_t n = 8 + i % 200;
		uint64_t *p = ring_reserve(x->r, n);

		if (!p) {
			sched_yield(); /* full: wait for the consumer to free space */
			continue;
		}
		p[0] = i;
		memset(p + 1, (int)(i & 0xff), n - 8);
		ring_commit(x->r);
		i++;
	}
	return NULL;
}

START_TEST(threads_lose_nothing)
{
	struct xfer x = { .r = ring_new(65536), .count = 300000 };
	uint64_t expect = 0;
	pthread_t t;
	size_t len;
	uint8_t *p;

	ck_assert_int_eq(pthread_create(&t, NULL, producer, &x), 0);
	while (expect < x.count) {
		p = ring_peek(x.r, &len);
		if (!p) {
			sched_yield();
			continue;
		}
		uint64_t id;

		memcpy(&id, p, 8);
		ck_assert_uint_eq(id, expect);
		ck_assert_uint_eq(len, 8 + expect % 200);
		if (len > 8)
			ck_assert_uint_eq(p[len - 1], expect & 0xff);
		ring_release(x.r);
		expect++;
	}
	pthread_join(t, NULL);
	ring_free(x.r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tvn_ring");
	TCase *tc = tcase_create("ring");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, order_and_wrap);
	tcase_add_test(tc, full_refuses);
	tcase_add_test(tc, threads_lose_nothing);
	suite_add_tcase(s, tc);
	return check_run(s);
}
