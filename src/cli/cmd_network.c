/*
 * `clbsd network ls|inspect|create|rm` and `clbsd doctor NAME`
 * (docs/network.md).
 */
#include "cli.h"
#include "util/json.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int net_ls(int argc, char **argv)
{
	int r = cli_opts_noargs(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	struct clbsd_err err;
	json_t *list = NULL;
	if (cli_call("GET", "/v1/networks", NULL, &list, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(list);
		json_decref(list);
		return 0;
	}
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
	json_decref(list);
	return 0;
}

static int net_inspect(int argc, char **argv)
{
	int r = cli_opts_json(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	if (optind >= argc)
		return cli_usage("missing NETWORK");
	json_t *arr = json_array();
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct clbsd_err err;
		json_t *n = NULL;
		autofree char *path = xasprintf("/v1/networks/%s", argv[i]);
		if (!valid_name(argv[i])) {
			fprintf(stderr, "clbsd: no network named %s\n", argv[i]);
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

static int net_create(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},	   {"json", no_argument, NULL, 'j'},
		{"subnet", required_argument, NULL, 's'},  {"internal", no_argument, NULL, 'i'},
		{"subnet6", required_argument, NULL, '6'}, {NULL, 0, NULL, 0},
	};
	const char *subnet = NULL, *subnet6 = NULL;
	bool internal = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 'j':
			cli.json = true;
			break;
		case 's':
			subnet = optarg;
			break;
		case 'i':
			internal = true;
			break;
		case '6':
			subnet6 = optarg;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage("missing NAME");
	if (optind + 1 < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	const char *name = argv[optind];
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

static int net_rm(int argc, char **argv)
{
	int r = cli_opts_json(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	if (optind >= argc)
		return cli_usage("missing NETWORK");
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct clbsd_err err;
		autofree char *path = xasprintf("/v1/networks/%s", argv[i]);
		if (!valid_name(argv[i])) {
			fprintf(stderr, "clbsd: no network named %s\n", argv[i]);
			rc = 1;
		} else if (cli_call("DELETE", path, NULL, NULL, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = 1;
		} else {
			printf("%s\n", argv[i]);
		}
	}
	return rc;
}

int cmd_network(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{"ls", "network ls", net_ls},
		{"list", "network ls", net_ls},
		{"inspect", "network inspect", net_inspect},
		{"create", "network create", net_create},
		{"rm", "network rm", net_rm},
		{"remove", "network rm", net_rm},
	};
	return cli_dispatch(argc, argv, subs, ARRAY_SIZE(subs), "ls, inspect, create or rm");
}

int cmd_doctor(int argc, char **argv)
{
	int r = cli_opts_json(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	if (optind >= argc)
		return cli_usage("missing CONTAINER");
	if (optind + 1 < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	const char *name = argv[optind];
	if (!valid_name(name))
		return cli_usage("invalid container name \"%s\"", name);
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
