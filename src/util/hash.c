#include "hash.h"

/*
 * SHA-256 through libcrypto's low-level SHA256_* functions, deprecated in
 * OpenSSL 3 in favour of EVP. EVP's first digest initialises the provider
 * machinery, which keeps ~2 MB more of libcrypto resident in the daemon
 * (measured: 1.4 -> 3.4 MB; SHA256_* 1.4 -> 1.6 MB), a fifth of its memory
 * target. Same assembly underneath (SHA-NI where the CPU has it).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <xxhash.h>
#include <stdlib.h>

static void to_hex(const unsigned char *md, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

void hash_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_CTX c;
	/* Only fails when libcrypto is broken; there is no sensible fallback. */
	if (!SHA256_Init(&c) || !SHA256_Update(&c, data, len) || !SHA256_Final(md, &c))
		abort();
	to_hex(md, out);
}

struct hash_stream *hash_sha256_begin(void)
{
	SHA256_CTX *c = malloc(sizeof(*c));
	if (!c || !SHA256_Init(c))
		abort();
	return (struct hash_stream *)c;
}

void hash_stream_add(struct hash_stream *h, const void *data, size_t len)
{
	if (!SHA256_Update((SHA256_CTX *)h, data, len))
		abort();
}

void hash_stream_end(struct hash_stream *h, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	if (!SHA256_Final(md, (SHA256_CTX *)h))
		abort();
	free(h);
	to_hex(md, out);
}

struct xxh3_stream *hash_xxh3_begin(void)
{
	XXH3_state_t *s = XXH3_createState();
	if (!s || XXH3_128bits_reset(s) != XXH_OK)
		abort();
	return (struct xxh3_stream *)s;
}

void hash_xxh3_add(struct xxh3_stream *h, const void *data, size_t len)
{
	if (XXH3_128bits_update((XXH3_state_t *)h, data, len) != XXH_OK)
		abort();
}

void hash_xxh3_end(struct xxh3_stream *h, char out[33])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest((XXH3_state_t *)h));
	XXH3_freeState((XXH3_state_t *)h);
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(c.digest); i++) {
		out[2 * i] = hx[c.digest[i] >> 4];
		out[2 * i + 1] = hx[c.digest[i] & 15];
	}
	out[32] = '\0';
}
