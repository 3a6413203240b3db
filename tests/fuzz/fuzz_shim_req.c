/*
 * libFuzzer target: the shim's request line parser, which reads whatever a
 * client sends to a shim socket. req.c is compiled in directly: it belongs
 * to the shim binary, not to the library.
 */
#include "fuzz.h"
#include "../../src/shim/req.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	struct shim_req q;
	struct clbsd_err err;
	if (shim_req_parse(line, &q, &err) == 0)
		shim_req_release(&q);
	free(line);
	return 0;
}
