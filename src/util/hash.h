/*
 * Content digests (OpenSSL libcrypto).
 */
#ifndef CLBSD_HASH_H
#define CLBSD_HASH_H

#include <stddef.h>

/* SHA-256 of data as 64 lowercase hex characters and a NUL. */
void hash_sha256_hex(const void *data, size_t len, char out[65]);

/* The same, fed piece by piece: begin, add..., end (which frees it). */
struct hash_stream;
struct hash_stream *hash_sha256_begin(void);
void hash_stream_add(struct hash_stream *h, const void *data, size_t len);
void hash_stream_end(struct hash_stream *h, char out[65]);

#endif
