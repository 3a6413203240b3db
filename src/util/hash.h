/*
 * Content digests (OpenSSL libcrypto) and fast checksums (libxxhash).
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

/*
 * XXH3 128-bit, fed piece by piece, as 32 lowercase hex characters and a
 * NUL: a checksum against damage at ~10 GB/s, not a defence against
 * tampering (whoever can change the data can change the sum beside it).
 */
struct xxh3_stream;
struct xxh3_stream *hash_xxh3_begin(void);
void hash_xxh3_add(struct xxh3_stream *h, const void *data, size_t len);
void hash_xxh3_end(struct xxh3_stream *h, char out[33]);

#endif
