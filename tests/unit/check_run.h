/* tests/unit/check_run.h - how every Check suite runs and reports, in one place. */
#ifndef ECV_TESTS_CHECK_RUN_H
#define ECV_TESTS_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* Runs suite s, frees the runner and returns main()'s exit status: EXIT_FAILURE if any
 * test failed. */
static inline int check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
