/* tests/unit/test_agent_verifier.c - the one-line verdict of a refused BPF program, read
 * from the verifier's statistics log (probe_verifier_verdict). Fixtures are the logs the
 * kernels wrote for this project's programs: 6.1 giving up on a too-large program, 5.10
 * refusing an instruction it does not know, and a program that verified. */
#include <check.h>
#include <string.h>

#include "../../agent/probe.h"
#include "check_run.h"

/* Real logs and the verdict each must give. */
static const struct {
	const char *log, *msg;
	unsigned long insns;
} cases[] = {
	{ "BPF program is too large. Processed 1000001 insn\n"
	  "verification time 13139190 usec\n"
	  "stack depth 184\n"
	  "processed 1000001 insns (limit 1000000) max_states_per_insn 23 total_states 27811 "
	  "peak_states 1467 mark_read 50\n",
	  "BPF program is too large. Processed 1000001 insn", 1000001 },
	{ "BPF_STX uses reserved fields\n"
	  "verification time 2771 usec\n"
	  "stack depth 0\n"
	  "processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 "
	  "mark_read 0\n",
	  "BPF_STX uses reserved fields", 0 },
	{ "verification time 28571 usec\n"
	  "stack depth 304\n"
	  "processed 28834 insns (limit 1000000) max_states_per_insn 11 total_states 947 "
	  "peak_states 96 mark_read 0\n",
	  "", 28834 },
};

START_TEST(real_logs)
{
	char msg[256];
	unsigned long n;

	probe_verifier_verdict(cases[_i].log, msg, sizeof(msg), &n);
	ck_assert_str_eq(msg, cases[_i].msg);
	ck_assert_uint_eq(n, cases[_i].insns);
}
END_TEST

/* The last message wins, a long one is cut to the buffer, no newline at the end. */
START_TEST(last_line_cut)
{
	const char *log = "R1 type=ctx expected=fp\n"
			  "invalid access to map value, value_size=8 off=16 size=8";
	char msg[16];
	unsigned long n = 3;

	probe_verifier_verdict(log, msg, sizeof(msg), &n);
	ck_assert_str_eq(msg, "invalid access ");
	ck_assert_uint_eq(n, 0);
	probe_verifier_verdict("", msg, sizeof(msg), &n);
	ck_assert_str_eq(msg, "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_verifier");
	TCase *tc = tcase_create("verdict");

	tcase_add_loop_test(tc, real_logs, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, last_line_cut);
	suite_add_tcase(s, tc);
	return check_run(s);
}
