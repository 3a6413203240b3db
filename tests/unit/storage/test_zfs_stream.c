/*
 * zfs_stream_hdrtype: what the first record of a zfs send stream says it
 * is. An archive's zfs parts must be plain streams; a compound one (send
 * -R or -p) carries properties such as a mountpoint, and child datasets.
 * The records are built here as zfs writes them (DRR_BEGIN: drr_type 0,
 * drr_payloadlen, drr_magic, drr_versioninfo), in both byte orders.
 */
#include "storage/storage.h"
#include "storage/internal.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static void record(unsigned char rec[24], uint64_t vi, bool swap)
{
	uint32_t type = 0, len = 0;
	uint64_t magic = 0x2F5bacbacULL;
	if (swap) {
		magic = __builtin_bswap64(magic);
		vi = __builtin_bswap64(vi);
	}
	memcpy(rec, &type, 4);
	memcpy(rec + 4, &len, 4);
	memcpy(rec + 8, &magic, 8);
	memcpy(rec + 16, &vi, 8);
}

TEST(plain_stream_is_1)
{
	unsigned char rec[24];
	record(rec, 1, false);
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == 1);
	record(rec, 1, true);
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == 1);
	/* Feature flags live above the two header-type bits. */
	record(rec, 1 | (4ULL << 2), false);
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == 1);
}

TEST(compound_stream_is_2)
{
	unsigned char rec[24];
	record(rec, 2, false);
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == 2);
	record(rec, 2, true);
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == 2);
}

TEST(not_a_stream)
{
	unsigned char rec[24];
	record(rec, 1, false);
	CHECK(zfs_stream_hdrtype(rec, 23) == -1);
	rec[8] ^= 1; /* the magic */
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == -1);
	record(rec, 1, false);
	rec[0] = 1; /* not DRR_BEGIN */
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == -1);
	memset(rec, 0, sizeof(rec));
	CHECK(zfs_stream_hdrtype(rec, sizeof(rec)) == -1);
}

TEST_MAIN_BEGIN("zfs_stream")
RUN(plain_stream_is_1);
RUN(compound_stream_is_2);
RUN(not_a_stream);
TEST_MAIN_END
