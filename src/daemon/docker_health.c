/*
 * The image's HEALTHCHECK of a docker container, run by dockerd: its
 * health_status events are hints (docker_ctr.c inspects the container
 * after each), and State.Health of the inspect is the truth this file
 * hands to the health machinery (health_probe.c's health_external), so
 * the status shows in ps and inspect, gates the ingress and dependants,
 * and fires container.health events and :on (:health ...) hooks.
 *
 * clbsd's own :health wins: a container that declares one is created with
 * dockerd's Healthcheck turned off (docker_ctr_config), and a status from
 * dockerd never replaces a check of clbsd's.
 */
#include "daemon.h"
#include "util/json.h"
#include "util/util.h"

#include <string.h>

void docker_health_apply(struct container *c, json_t *ins)
{
	json_t *h = json_object_get(json_object_get(ins, "State"), "Health");
	const char *status = json_str(h, "Status");
	if (!status || !*status || strcmp(status, "none") == 0)
		return;
	json_t *log = json_object_get(h, "Log");
	json_t *last = json_array_size(log) ? json_array_get(log, json_array_size(log) - 1) : NULL;
	const char *out = json_str(last, "Output");
	health_external(c->d, c->name, status, (int)json_int(last, "ExitCode", 0), out ? out : "",
			out ? strlen(out) : 0);
}
