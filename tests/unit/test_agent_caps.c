/* tests/unit/test_agent_caps.c - the capability sets the agent keeps and how they are
 * named in its log. Dropping itself is tested on a running agent
 * (tests/integration/test_agent_caps.sh, which reads /proc/PID/status). */
#include <check.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/caps.h"
#include "check_run.h"

START_TEST(needed_sets)
{
	char names[256];

	ck_assert_str_eq(caps_names(caps_needed(0), names, sizeof(names)), "cap_sys_ptrace");
	ck_assert_str_eq(caps_names(caps_needed(1), names, sizeof(names)),
			 "cap_dac_read_search,cap_sys_ptrace,cap_sys_admin,cap_perfmon,cap_bpf");
	/* never kept: what only start-up needs */
	ck_assert(!(caps_needed(1) & CAPS_BIT(CAP_SYS_RESOURCE)));
	ck_assert(!(caps_needed(1) & CAPS_BIT(CAP_NET_ADMIN)));
	ck_assert(!(caps_needed(1) & CAPS_BIT(CAP_SETPCAP)));
}
END_TEST

START_TEST(names_bounded)
{
	char small[12];

	ck_assert_str_eq(caps_names(0, small, sizeof(small)), "none");
	ck_assert_str_eq(caps_names(CAPS_BIT(40), small, sizeof(small)), "cap_40");
	/* a list that does not fit stops at a whole name */
	ck_assert_str_eq(caps_names(CAPS_BIT(CAP_CHOWN) | CAPS_BIT(CAP_KILL), small, sizeof(small)),
			 "cap_chown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_caps");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, needed_sets);
	tcase_add_test(tc, names_bounded);
	suite_add_tcase(s, tc);
	return check_run(s);
}
