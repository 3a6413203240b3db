/*
 * zfs_stream_hdrtype: what the first record of a zfs send stream says it
 * is. An archive's zfs parts must be plain streams; a compound one (send
 * -R or -p) carries properties such as a mountpoint, and child datasets.
 * zfs_stream_incremental: whether it holds the changes since a snapshot
 * (a receive forces only those). The records are built here as zfs writes
 * them (DRR_BEGIN: drr_type 0, drr_payloadlen, drr_magic, drr_versioninfo,
 * drr_creation_time, drr_type, drr_flags, drr_toguid, drr_fromguid), in
 * both byte orders.
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

/* The record's first 56 bytes, with its guids. */
static void record56(unsigned char rec[56], uint64_t from, bool swap)
{
	uint64_t to = 0x1528d235fd78eacbULL;
	memset(rec, 0, 56);
	record(rec, 1, swap);
	if (swap) {
		to = __builtin_bswap64(to);
		from = __builtin_bswap64(from);
	}
	memcpy(rec + 40, &to, 8);
	memcpy(rec + 48, &from, 8);
}

TEST(increment_or_whole)
{
	unsigned char rec[56];
	for (int swap = 0; swap < 2; swap++) {
		record56(rec, 0x482d1bcee254dd17ULL, swap);
		CHECK(zfs_stream_incremental(rec, sizeof(rec)) == 1);
		record56(rec, 0, swap);
		CHECK(zfs_stream_incremental(rec, sizeof(rec)) == 0);
	}
	/* Too short to say, or no stream: never taken for an increment. */
	record56(rec, 7, false);
	CHECK(zfs_stream_incremental(rec, 55) == -1);
	rec[8] ^= 1;
	CHECK(zfs_stream_incremental(rec, sizeof(rec)) == -1);
}

TEST_MAIN_BEGIN("zfs_stream")
RUN(plain_stream_is_1);
RUN(compound_stream_is_2);
RUN(not_a_stream);
RUN(increment_or_whole);
TEST_MAIN_END
