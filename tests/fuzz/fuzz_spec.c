/* libFuzzer target: the runtime spec parser (what the shim reads). */
#include "fuzz.h"
#include "runtime/runtime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct rt_spec spec;
	struct clbsd_err err;
	if (rt_spec_from_json(text, &spec, &err) == 0) {
		/* What parses must serialise and parse back. */
		char *again = rt_spec_to_json(&spec);
		struct rt_spec spec2;
		if (rt_spec_from_json(again, &spec2, &err) != 0)
			abort();
		rt_spec_release(&spec2);
		free(again);
		rt_spec_release(&spec);
	}
	free(text);
	return 0;
}
