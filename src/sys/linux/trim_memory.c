/* Giving memory back on Linux: glibc's malloc_trim, /proc/self/smaps, madvise. See sys.h. */
#include "sys/sys.h"

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Unmap the pages of our own binary that setup touched. The shim is static,
 * and starting a container runs code (spec parsing, the runtime, libseccomp's
 * tables) that the loop never runs again, but the kernel maps file pages 64K
 * around every fault, so nearly all of the ~800K of text stays counted in our
 * RSS. Only read-only mappings without private (anonymous) pages are dropped:
 * their content is the file's, so the page cache keeps it and whatever the
 * loop needs faults back in. Best effort.
 */
static void trim_text(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	/*
	 * As smaps' path column is read below: up to the first blank. Our exe
	 * is the daemon's sealed memfd, "/memfd:clbsd-shim (deleted)".
	 */
	exe[strcspn(exe, " ")] = '\0';
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	char line[PATH_MAX + 128];
	unsigned long start = 0, end = 0;
	bool ours = false;
	while (fgets(line, sizeof(line), f)) {
		char perms[8], path[PATH_MAX];
		unsigned long a, b;
		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %4095s", &a, &b, perms, path) >= 3 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			start = a;
			end = b;
			ours = strcmp(path, exe) == 0 && perms[1] == '-';
			continue;
		}
		unsigned long anon;
		if (ours && sscanf(line, "Anonymous: %lu kB", &anon) == 1) {
			if (anon == 0)
				madvise((void *)start, end - start, MADV_DONTNEED);
			ours = false;
		}
	}
	fclose(f);
}

void sys_trim_memory(void)
{
	malloc_trim(0);
	trim_text();
}
