/* Request decoding shared by the handlers (req_decode.h). */
#include "req_decode.h"
#include "util/util.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

char *api_query_value(const char *query, const char *key)
{
	if (!query)
		return NULL;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(query, &kv) < 0)
		return NULL;
	const char *v = evhttp_find_header(&kv, key);
	char *r = v ? xstrdup(v) : NULL;
	evhttp_clear_headers(&kv);
	return r;
}

bool api_flag_value(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

int api_seconds_value(const char *v, int def, int *out)
{
	long long secs = def;
	if (v && parse_int(v, 0, 86400, &secs) < 0)
		return -1;
	*out = (int)secs;
	return 0;
}

json_t *api_body_decode(const char *text, size_t n, char *why, size_t whylen)
{
	if (n == 0)
		return json_object();
	/* Up to the first NUL, as the daemon always read bodies. */
	autofree char *s = xstrndup(text, n);
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (!j)
		snprintf(why, whylen, "request body is not JSON: %d:%d: %s", je.line, je.column,
			 je.text);
	return j;
}
