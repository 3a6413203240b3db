/*
 * libFuzzer target: the ingress validators and renderer. The input is lines:
 * domain, path, backend address, max body, certificate path, listen address.
 * Whatever a validator accepts must hold no character the nginx grammar
 * reads as syntax, and a rendered configuration must have balanced braces.
 */
#include "fuzz.h"
#include "ingress/ingress.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void no_syntax(const char *s)
{
	if (strpbrk(s, " \t\r\n;{}#$\"'\\"))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	char *f[6] = {"web.home.lan", "/", "10.88.0.2", "1M", "/etc/ssl/a.pem", "0.0.0.0:80"};
	char *save = NULL;
	size_t i = 0;
	for (char *l = strtok_r(text, "\n", &save); l && i < 6; l = strtok_r(NULL, "\n", &save))
		f[i++] = l;
	char why[256];
	int64_t body = 0;
	bool ok_d = ingress_domain_check(f[0], why, sizeof(why));
	bool ok_p = ingress_path_check(f[1], why, sizeof(why));
	bool ok_a = ingress_address_check(f[2], why, sizeof(why));
	bool ok_b = ingress_max_body_check(f[3], &body, why, sizeof(why));
	bool ok_c = ingress_file_path_check(f[4], why, sizeof(why));
	bool ok_l = ingress_listen_check(f[5], why, sizeof(why));
	if (ok_d)
		no_syntax(f[0]);
	if (ok_p)
		no_syntax(f[1]);
	if (ok_a)
		no_syntax(f[2]);
	if (ok_c)
		no_syntax(f[4]);
	if (ok_l)
		no_syntax(f[5]);
	const char *doms[] = {f[0]}, *listens[] = {f[5]}, *tls[] = {"127.0.0.1:443"};
	struct ingress_settings s = {"/var/lib/clbsd/ingress", listens, 1, tls, 1, "home.lan",
				     INGRESS_TLS_NONE,	       NULL};
	struct ingress_route r = {"web",	   doms, 1,   f[1], f[2], 8080, INGRESS_UP, true,
				  ok_b ? body : 0, f[4], f[4]};
	char *out = NULL;
	struct clbsd_err err;
	if (ingress_render(&s, &r, 1, &out, &err) == 0) {
		long depth = 0;
		for (const char *p = out; *p; p++) {
			depth += *p == '{';
			depth -= *p == '}';
			if (depth < 0)
				abort();
		}
		if (depth != 0 || !ok_d || !ok_p || !ok_a || !ok_c || !ok_l)
			abort();
		free(out);
	}
	free(text);
	return 0;
}
