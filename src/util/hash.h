/*
 * Content digests (OpenSSL libcrypto).
 */
#ifndef CLBSD_HASH_H
#define CLBSD_HASH_H

#include <stddef.h>

/* SHA-256 of data as 64 lowercase hex characters and a NUL. */
void hash_sha256_hex(const void *data, size_t len, char out[65]);

#endif
