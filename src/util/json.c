#include "json.h"
#include "util.h"

#include <stdlib.h>

json_t *json_strv(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char **json_to_strv(const json_t *j)
{
	if (!json_is_array(j))
		return NULL;
	size_t n = json_array_size(j);
	char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(j, i);
		if (!json_is_string(e)) {
			strv_free(v);
			return NULL;
		}
		v[i] = xstrdup(json_string_value(e));
	}
	return v;
}

const char *json_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t json_int(const json_t *obj, const char *key, int64_t def)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool json_bool(const json_t *obj, const char *key, bool def)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *json_time(int64_t ns)
{
	if (ns <= 0)
		return json_null();
	char buf[48];
	time_fmt_rfc3339(ns, buf, sizeof(buf));
	return json_string(buf);
}

int64_t json_time_get(const json_t *obj, const char *key)
{
	const char *s = json_str(obj, key);
	int64_t ns = 0;
	if (s && time_parse_rfc3339(s, &ns) == 0)
		return ns;
	return 0;
}

char *json_line(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		abort();
	return s;
}
