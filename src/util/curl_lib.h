/*
 * The libcurl loader: libcurl is loaded on first use (an image pull, a docker
 * endpoint), not linked. It and what it pulls in (OpenSSL or GnuTLS, nghttp2,
 * ssh, ldap, kerberos, ...) would take the idle daemon from about 9 MB to
 * 12 MB of memory, for something most hosts use now and then or never.
 *
 * Include this header, not <curl/curl.h>, and call through CL(f) after
 * curl_lib_load() succeeded: CL(curl_easy_setopt)(h, CURLOPT_URL, url).
 */
#ifndef CLBSD_UTIL_CURL_LIB_H
#define CLBSD_UTIL_CURL_LIB_H

#include <clbsd/error.h>

/* The calls go through pointers, so curl.h's type-checking macros must not wrap them. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#define CURL_LIB_FUNCS                                                                             \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_escape)                                                                        \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_init)                                                                          \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_recv)                                                                          \
	X(curl_easy_send)                                                                          \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_strerror)                                                                      \
	X(curl_free)                                                                               \
	X(curl_global_init)                                                                        \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)

struct curl_lib {
#define X(f) __typeof__(f) *f;
	CURL_LIB_FUNCS
#undef X
};
extern struct curl_lib curl_lib;
#define CL(f) (*curl_lib.f)

/*
 * Load libcurl and start it (once per process; thread-safe). Fails with
 * CLBSD_E_UNAVAIL saying what to install.
 */
int curl_lib_load(struct clbsd_err *err);

#endif
