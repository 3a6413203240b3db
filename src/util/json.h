/*
 * Small jansson helpers shared by the daemon, the shim and the CLI.
 */
#ifndef CLBSD_JSON_H
#define CLBSD_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A JSON array of strings from a NULL-terminated vector (NULL -> []). */
json_t *json_strv(char *const *v);
/*
 * A NULL-terminated vector from a JSON array of strings; NULL when j is not
 * an array or holds a non-string (then *bad is set when bad is not NULL).
 */
char **json_to_strv(const json_t *j);
/* The string member or NULL. */
const char *json_str(const json_t *obj, const char *key);
/* The integer member or def. */
int64_t json_int(const json_t *obj, const char *key, int64_t def);
bool json_bool(const json_t *obj, const char *key, bool def);
/* An RFC 3339 time string, or JSON null for ns == 0. */
json_t *json_time(int64_t ns);
/* Parse an RFC 3339 member (0 when absent or null). */
int64_t json_time_get(const json_t *obj, const char *key);
/* Compact one-line dump (caller frees). */
char *json_line(const json_t *j);

#endif
