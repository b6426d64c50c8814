/* tests/integration/lib/static_tls_client.c - a TLS client linked with OpenSSL
 * statically, for the agent's --bin test (symbols in the binary's own table, no
 * libssl.so mapped). Speaks tls_peer.py's protocol: sends 8-byte big-endian length +
 * the payload of FILE in one SSL_write, reads the 32-byte SHA-256 answer, and records
 * both to PREFIX.c2s / PREFIX.s2c. With STATIC_CLIENT_WAIT=PATH in the environment it
 * first waits (up to 60 s) for PATH to exist, so a test can let discovery find it.
 * Usage: static_tls_client HOST PORT FILE PREFIX */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd;

	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int save(const char *prefix, const char *ext, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s.%s", prefix, ext);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n)
		return -1;
	return fclose(f);
}

int main(int argc, char **argv)
{
	unsigned char answer[32], *msg;
	size_t got = 0;
	long n;
	FILE *f;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: %s HOST PORT FILE PREFIX\n", argv[0]);
		return 2;
	}
	for (int i = 0; getenv("STATIC_CLIENT_WAIT") && i < 600; i++) {
		if (!access(getenv("STATIC_CLIENT_WAIT"), F_OK))
			break;
		usleep(100000);
	}
	f = fopen(argv[3], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		return 1;
	msg = malloc(8 + n);
	if (!msg || fread(msg + 8, 1, n, f) != (size_t)n)
		return 1;
	fclose(f);
	for (int i = 0; i < 8; i++)
		msg[i] = (uint64_t)n >> (56 - 8 * i);
	fd = dial(argv[1], argv[2]);
	ctx = SSL_CTX_new(TLS_client_method());
	if (fd < 0 || !ctx)
		return 1;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, msg, 8 + n) != 8 + n)
		return 1;
	while (got < sizeof(answer)) {
		int r = SSL_read(ssl, answer + got, sizeof(answer) - got);

		if (r <= 0)
			return 1;
		got += r;
	}
	if (save(argv[4], "c2s", msg, 8 + n) || save(argv[4], "s2c", answer, got))
		return 1;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
