/* libFuzzer target: image config.json as found in an imported directory. */
#include "fuzz.h"
#include "image/image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (!j)
		return 0;
	struct image_config cfg;
	struct clbsd_err err;
	if (image_config_from_json(j, &cfg, &err) == 0) {
		json_t *back = image_config_to_json(&cfg);
		json_decref(back);
		image_config_release(&cfg);
	}
	json_decref(j);
	return 0;
}
