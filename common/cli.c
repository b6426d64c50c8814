/* common/cli.c - --help and bad-usage endings shared by the ecv tools. */
#include "cli.h"

int cli_usage_error(cli_usage_fn usage)
{
	usage(stderr);
	return CLI_EXIT_USAGE;
}

int cli_invalid_value(const char *prog, const char *value, cli_usage_fn usage)
{
	fprintf(stderr, "%s: invalid value '%s'\n", prog, value);
	return cli_usage_error(usage);
}

int cli_help_or_usage_error(int opt, cli_usage_fn usage)
{
	if (opt != 'h')
		return cli_usage_error(usage);
	usage(stdout);
	return 0;
}
