/* common/cli.h - how the ecv tools end their command-line parsing: --help, and bad usage
 * (usage on stderr and exit 2, the convention of DESIGN §2 and README "Running it").
 * Owns: where the usage text goes, the "invalid value" message and the exit statuses.
 * Does not own: the options, the usage text (the caller's usage function), value parsing
 * (args.h) or getopt's own messages. Callers return what these return from main(). */
#ifndef ECV_CLI_H
#define ECV_CLI_H

#include <stdio.h>

/* Exit status of a program given a bad flag, value or argument list. */
#define CLI_EXIT_USAGE 2

/* Writes the program's usage text to f. */
typedef void (*cli_usage_fn)(FILE *f);

/* Bad usage getopt cannot see (a missing option, a wrong argument count): prints the
 * usage to stderr and returns CLI_EXIT_USAGE. */
int cli_usage_error(cli_usage_fn usage);

/* An option value that does not parse: prints "<prog>: invalid value '<value>'" and the
 * usage to stderr and returns CLI_EXIT_USAGE. */
int cli_invalid_value(const char *prog, const char *value, cli_usage_fn usage);

/* For getopt_long's 'h' and its '?'/':' (an option it refused, having said why): 'h'
 * prints the usage to stdout and returns 0 (--help succeeds); anything else is
 * cli_usage_error(). */
int cli_help_or_usage_error(int opt, cli_usage_fn usage);

#endif
