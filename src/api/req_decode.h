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

/*
 * A field selection (fields=name,state,config.limits): which members of an
 * object a reply keeps. Each field is a member name, or MEMBER.SUB for one
 * member of an object member; names are [a-z0-9_]+, at most
 * API_FIELDS_MAX of them. A field the object does not have is left out, as
 * an optional member is. The strings point into buf.
 */
#define API_FIELDS_MAX 32
struct api_fields {
	size_t n;
	const char *key[API_FIELDS_MAX];
	const char *sub[API_FIELDS_MAX]; /* NULL: the whole member */
	char *buf;
};

/*
 * Decode the value of a fields= parameter into out. -1 with why set (the
 * field at fault, what a field may be) when it is not a selection; out is
 * then untouched. On success the caller releases out.
 */
int api_fields_decode(const char *v, struct api_fields *out, char *why, size_t whylen);
void api_fields_release(struct api_fields *f);

/* Whether the selection wants the member key (whole or a part of it). */
bool api_fields_want(const struct api_fields *f, const char *key);

/*
 * A new object holding the members of obj the selection names (sharing
 * their values with obj). Members named MEMBER.SUB of one object member
 * are gathered into one object; a whole member wins over parts of it. A
 * part of a member that is null is that null member.
 */
json_t *api_fields_pick(json_t *obj, const struct api_fields *f);

#endif
