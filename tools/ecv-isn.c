/* tools/ecv-isn.c - prints the DESIGN §3 direction bit and ISN of one TCP direction, so
 * operators and other implementations can check their numbers against ours. */
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "isn.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: ecv-isn SRC SPORT DST DPORT\n"
		   "Prints the canonical direction bit and the hash-derived ISN of the TCP\n"
		   "direction SRC:SPORT -> DST:DPORT as 'dir=<0|1> isn=0x<8 hex digits>'.\n"
		   "SRC and DST are numeric IPv4 or IPv6 addresses of the same family;\n"
		   "ports are decimal 0..65535.\n");
}

static int parse_port(const char *what, const char *s, uint16_t *out)
{
	uint64_t v;

	/* Decimal only: "0x1bb" is a typo more often than an intent here. */
	if (strspn(s, "0123456789") != strlen(s) || args_parse_u64(s, 0, 65535, &v)) {
		log_err("invalid %s '%s': expected a decimal port 0..65535", what, s);
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t saddr[16], daddr[16], sfam, dfam;
	uint16_t sport, dport;
	struct ecv_tuple t;
	int c;

	log_set_ident("ecv-isn");
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
		default:
			return cli_help_or_usage_error(c, usage);
		}
	}
	if (argc - optind != 4) {
		log_err("expected 4 arguments (SRC SPORT DST DPORT), got %d", argc - optind);
		return cli_usage_error(usage);
	}
	argv += optind;
	if (tuple_addr_parse(argv[0], saddr, &sfam)) {
		log_err("invalid SRC '%s': expected a numeric IPv4 or IPv6 address", argv[0]);
		return CLI_EXIT_USAGE;
	}
	if (parse_port("SPORT", argv[1], &sport))
		return CLI_EXIT_USAGE;
	if (tuple_addr_parse(argv[2], daddr, &dfam)) {
		log_err("invalid DST '%s': expected a numeric IPv4 or IPv6 address", argv[2]);
		return CLI_EXIT_USAGE;
	}
	if (parse_port("DPORT", argv[3], &dport))
		return CLI_EXIT_USAGE;
	if (sfam != dfam) {
		log_err("invalid DST '%s': SRC and DST must be the same address family", argv[2]);
		return CLI_EXIT_USAGE;
	}
	tuple_init(&t, saddr, sport, daddr, dport, IPPROTO_TCP);
	printf("dir=%d isn=0x%08x\n", isn_dir(&t), isn_compute(&t));
	return 0;
}
