/*
 * `clbsd network ls|inspect|create|rm` and `clbsd doctor NAME`
 * (docs/network.md).
 */
#include "cli.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

int show_networks(const struct cli_args *a, const json_t *list)
{
	static const char *const hdr[] = {"NAME",     "BRIDGE",	    "SUBNET", "GATEWAY",
					  "INTERNAL", "CONTAINERS", "SOURCE"};
	struct table t;
	table_init(&t, ARRAY_SIZE(hdr), hdr);
	size_t i;
	json_t *n;
	json_array_foreach(list, i, n)
	{
		char count[32];
		snprintf(count, sizeof(count), "%zu",
			 json_array_size(json_object_get(n, "containers")));
		const char *row[] = {json_str(n, "name"),
				     json_str(n, "bridge"),
				     json_str(n, "subnet"),
				     json_str(n, "gateway"),
				     json_bool(n, "internal", false) ? "yes" : "no",
				     count,
				     json_str(n, "source")};
		table_add(&t, row);
	}
	autofree char *s = table_render(&t);
	fputs(s, stdout);
	table_release(&t);
	return 0;
}

int cmd_network_inspect(const struct cli_args *a)
{
	json_t *arr = json_array();
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		const char *name = a->argv[i];
		struct clbsd_err err;
		json_t *n = NULL;
		autofree char *path = xasprintf("/v1/networks/%s", name);
		if (!valid_name(name)) {
			fprintf(stderr, "clbsd: no network named %s\n", name);
			rc = 1;
		} else if (cli_call("GET", path, NULL, &n, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = 1;
		} else {
			json_array_append_new(arr, n);
		}
	}
	cli_print_json(arr);
	json_decref(arr);
	return rc;
}

int cmd_network_create(const struct cli_args *a)
{
	const char *subnet = cli_get(a, "subnet"), *subnet6 = cli_get(a, "subnet6");
	bool internal = cli_has(a, "internal");
	const char *name = a->argv[0];
	if (!valid_name(name))
		return cli_usage("invalid network name \"%s\": expected a DNS label", name);
	if (!subnet)
		return cli_usage("missing --subnet CIDR (like 10.89.0.0/24)");
	json_t *body =
		json_pack("{s:s,s:s,s:b}", "name", name, "subnet", subnet, "internal", internal);
	if (subnet6)
		json_object_set_new(body, "subnet6", json_string(subnet6));
	return cli_send("POST", "/v1/networks", body, name, NULL);
}

int cmd_network_rm(const struct cli_args *a)
{
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		const char *name = a->argv[i];
		struct clbsd_err err;
		autofree char *path = xasprintf("/v1/networks/%s", name);
		if (!valid_name(name)) {
			fprintf(stderr, "clbsd: no network named %s\n", name);
			rc = 1;
		} else if (cli_call("DELETE", path, NULL, NULL, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = 1;
		} else {
			printf("%s\n", name);
		}
	}
	return rc;
}

int cmd_doctor(const struct cli_args *a)
{
	const char *name = a->argv[0];
	autofree char *path = xasprintf("/v1/containers/%s/doctor", name);
	struct clbsd_err err;
	json_t *out = NULL;
	if (cli_call("GET", path, NULL, &out, &err) < 0)
		return cli_fail(&err);
	int bad = (int)json_int(out, "problems", 0);
	if (cli.json) {
		cli_print_json(out);
	} else {
		size_t i;
		json_t *l;
		json_array_foreach(json_object_get(out, "checks"), i, l)
			printf("%s\n", json_string_value(l));
		if (bad)
			printf("%d problem%s found\n", bad, bad == 1 ? "" : "s");
	}
	json_decref(out);
	return bad ? 1 : 0;
}
