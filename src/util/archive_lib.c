/* The libarchive loader (archive_lib.h). */
#include "util/archive_lib.h"
#include "util/util.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

struct archive_lib archive_lib;

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static void *lib;
static int lib_users;

int archive_lib_acquire(struct clbsd_err *err)
{
	int r = 0;
	pthread_mutex_lock(&lib_mu);
	if (!lib) {
		void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
		if (!h)
			r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					     "cannot load libarchive (%s); install libarchive13",
					     dlerror());
#define X(f)                                                                                       \
	if (r == 0 && !(archive_lib.f = (__typeof__(f) *)dlsym(h, #f)))                            \
		r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,                                \
				     "libarchive lacks %s; install libarchive13 3.4 or later",     \
				     #f);
		ARCHIVE_LIB_FUNCS
#undef X
		if (r < 0 && h)
			dlclose(h);
		if (r == 0)
			lib = h;
	}
	if (r == 0)
		lib_users++;
	pthread_mutex_unlock(&lib_mu);
	return r;
}

void archive_lib_release(void)
{
	pthread_mutex_lock(&lib_mu);
	if (--lib_users == 0) {
		dlclose(lib);
		lib = NULL;
	}
	pthread_mutex_unlock(&lib_mu);
}

int archive_lib_err(struct archive *a, enum clbsd_err_kind kind, const char *what,
		    struct clbsd_err *err)
{
	int e = AL(archive_errno)(a);
	const char *s = AL(archive_error_string)(a);
	if (e == ENOSPC || e == EDQUOT)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, e,
					"%s: the disk is full (%s); free space under the "
					"daemon's root and try again",
					what, strerror(e));
	return clbsd_err_setmsg(err, kind, e > 0 ? e : EIO, "%s: %s", what, s ? s : "failed");
}

int archive_lib_put_file_data(struct archive *a, int fd, int64_t size, const char *path,
			      const char *what, struct clbsd_err *err)
{
	char b[65536];
	int64_t left = size;
	while (left > 0) {
		size_t want = left < (int64_t)sizeof(b) ? (size_t)left : sizeof(b);
		ssize_t n = read(fd, b, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", path);
		if (n == 0)
			return 0;
		if (AL(archive_write_data)(a, b, (size_t)n) != n)
			return archive_lib_err(a, CLBSD_E_INTERNAL, what, err);
		left -= n;
	}
	return 0;
}
