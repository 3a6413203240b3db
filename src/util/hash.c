#include "hash.h"

#include <openssl/evp.h>
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
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	/* Only fails when libcrypto is broken; there is no sensible fallback. */
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		abort();
	to_hex(md, out);
}

struct hash_stream *hash_sha256_begin(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	return (struct hash_stream *)ctx;
}

void hash_stream_add(struct hash_stream *h, const void *data, size_t len)
{
	if (!EVP_DigestUpdate((EVP_MD_CTX *)h, data, len))
		abort();
}

void hash_stream_end(struct hash_stream *h, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_DigestFinal_ex((EVP_MD_CTX *)h, md, &n) || n != 32)
		abort();
	EVP_MD_CTX_free((EVP_MD_CTX *)h);
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
