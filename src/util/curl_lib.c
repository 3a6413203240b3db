/* The libcurl loader (curl_lib.h). */
#include "util/curl_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

struct curl_lib curl_lib;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *missing; /* why libcurl cannot be used, or NULL */

static void load(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		h = dlopen("libcurl-gnutls.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		missing = "cannot load libcurl; install libcurl4";
		return;
	}
#define X(f)                                                                                       \
	if (!missing && !(curl_lib.f = (__typeof__(f) *)dlsym(h, #f)))                             \
		missing = "libcurl lacks " #f "; install libcurl4 7.85 or later";
	CURL_LIB_FUNCS
#undef X
	if (!missing && CL(curl_global_init)(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		missing = "libcurl failed to start";
	/* On failure h stays open: the pointers already found point into it. */
}

int curl_lib_load(struct clbsd_err *err)
{
	pthread_once(&once, load);
	if (missing)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP, "%s", missing);
	return 0;
}
