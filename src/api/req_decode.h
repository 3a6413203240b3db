/*
 * Decoding of the parts of a request every handler shares: query
 * parameters, flags, a timeout in seconds, the JSON body. Pure (strings in,
 * values out; libevent's query parser, no request object), so the unit
 * tests link it (tests/unit/api/test_decode.c); server.c wraps each for an
 * evhttp request and answers 400 on failure.
 */
#ifndef CLBSD_API_REQ_DECODE_H
#define CLBSD_API_REQ_DECODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The value of key in a query string ("a=1&b=x%20y"; '+' is a space), the
 * first when it repeats; NULL when absent or when the query does not parse
 * (a part without '=' spoils the whole query, as libevent has it). Caller
 * frees.
 */
char *api_query_value(const char *query, const char *key);

/* A query flag's value: "1", "true" and "yes" are true; anything else (NULL too) false. */
bool api_flag_value(const char *v);

/*
 * A timeout parameter (t=SECS): v absent is def; else a whole number of
 * seconds between 0 and 86400. -1 when it is not.
 */
int api_seconds_value(const char *v, int def, int *out);

/*
 * A request body as JSON: an empty body is {}; text is read up to its first
 * NUL. NULL with why set ("request body is not JSON: LINE:COL: ...") when it
 * does not parse.
 */
json_t *api_body_decode(const char *text, size_t n, char *why, size_t whylen);

#endif
