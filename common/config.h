/* common/config.h - `--config FILE`: a JSON file holding the equivalent of command-line flags.
 * Owns: reading and validating the file, turning it into argv entries.
 * Does not own: the meaning of any option; the program's getopt_long loop still parses
 * every value, so a value in the file gets exactly the same checks as on the command line.
 *
 * File format: one JSON object whose keys are long option names without dashes.
 *	{ "listen": "0.0.0.0:4789", "threads": 2, "out": ["pcap:/var/lib/tvn/a.pcap"],
 *	  "allow": ["10.0.0.0/8"], "verbose": true }
 *   - option without argument: true = flag present, false = flag absent;
 *   - option with an argument: a string or a number (numbers are written back in decimal);
 *     an array of those repeats the flag once per element, in order;
 *   - option with an optional argument: a string/number (--name=value) or true/false;
 *   - anything else (null, nested objects, arrays of arrays, unknown keys, "config"
 *     itself, duplicate keys) is an error naming the file and the key.
 *
 * Precedence: the file's entries are placed BEFORE the command-line arguments, so for a
 * single-valued option the command line wins (getopt loops keep the last value), and a
 * repeatable option (--tvn, --lib, --out, --allow, ...) gets the file's values first,
 * then the command line's.
 *
 * Intended use in main.c (the only caller), before the getopt_long loop:
 *
 *	char err[512], **av = NULL;
 *	int ac;
 *
 *	if (config_merge(argc, argv, longopts, &ac, &av, err, sizeof(err))) {
 *		fprintf(stderr, "tvn: %s\n", err);
 *		return 2;
 *	}
 *	while ((c = getopt_long(ac, av, shortopts, longopts, NULL)) != -1) {
 *		...
 *		case OPT_CONFIG:	// already merged by config_merge(); nothing to do
 *			break;
 *	}
 *	...
 *	config_argv_free(av);	// at exit: optarg pointers kept in the cfg point into av
 */
#ifndef ECV_CONFIG_H
#define ECV_CONFIG_H

#include <getopt.h>
#include <stddef.h>

/* Reads the JSON file at path and builds the argv entries it stands for ("--name" or
 * "--name=value" tokens, no argv[0]), validating every key against longopts (the
 * NULL-terminated array given to getopt_long). On success returns 0 and sets *argc and
 * *argv (a NULL-terminated array the caller frees with config_argv_free()). On failure
 * returns -errno (-ENOENT/-EACCES/... when the file cannot be read, -EINVAL for invalid
 * JSON or content), leaves *argv NULL and writes one line to err, e.g.
 *	"FILE: No such file or directory"
 *	"FILE:3:14: invalid JSON: string or '}' expected near ','"
 *	"FILE: unknown key 'x'"
 *	"FILE: key 'x': expected a string"
 */
int config_to_argv(const char *path, const struct option *longopts, int *argc, char ***argv,
		   char *err, size_t errlen);

/* Finds "--config FILE" or "--config=FILE" in argv (written in full; scanning stops at
 * "--") and returns in *out_argv a new NULL-terminated argv: argv[0], the file's entries,
 * then argv[1..argc-1] unchanged (--config included, so the program's getopt loop must
 * accept and ignore it). Without --config *out_argv is a plain copy. Every string is
 * owned by *out_argv; free it with config_argv_free(). Returns 0, or -errno with a one-line
 * message in err (an unreadable or invalid file, --config without a value, --config given
 * twice). */
int config_merge(int argc, char *const *argv, const struct option *longopts, int *out_argc,
		 char ***out_argv, char *err, size_t errlen);

/* Frees an argv built by config_to_argv() or config_merge(). NULL-safe. */
void config_argv_free(char **argv);

#endif
