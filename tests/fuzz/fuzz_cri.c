/*
 * libFuzzer target: the CLI's decoder of the daemon's CRI log stream
 * (format.c compiled in directly, as it belongs to the CLI binary).
 */
#include "fuzz.h"
#include "../../src/cli/format.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logw w;
	struct buf out = BUF_INIT, errb = BUF_INIT;
	logw_init(&w, size & 1);
	/* Feed in two pieces so lines split across reads are exercised. */
	size_t half = size / 2;
	logw_feed(&w, (const char *)data, half, &out, &errb);
	logw_feed(&w, (const char *)data + half, size - half, &out, &errb);
	logw_finish(&w, &out, &errb);
	logw_release(&w);
	buf_release(&out);
	buf_release(&errb);
	return 0;
}
