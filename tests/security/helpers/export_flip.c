/*
 * export_flip: from inside a container, keep changing the type of files the
 * host reads while it exports, snapshots or clones the container's files
 * (issue 14, item 6: a running container's files are hostile input).
 *
 *   export_flip SECONDS TARGET DIR...
 *
 * In each DIR it makes 200 pairs of a regular file fN and a FIFO pN, and 16
 * pairs of a directory dN (holding a file) and a symlink lN to TARGET (a
 * host directory the container cannot see), plus one pair of a directory
 * dr and a symlink lr to "/". Then, for SECONDS, it swaps the two names of
 * every pair with renameat2(RENAME_EXCHANGE), as fast as it can: a reader
 * that stats a name and then opens it by name (or opens a path through it)
 * sees a FIFO where it saw a regular file, or a symlink to the host where
 * it saw a directory. The pairs are shared among 3 processes, one more than
 * a small host has CPUs: the host's reader is then also taken off its CPU
 * now and then between its stat and its open, which widens the window far
 * beyond the few hundred nanoseconds between two system calls. A reader that trusted what it saw
 * hangs on the FIFO or archives the host's files; the host side of the test checks that.
 *
 *   export_flip --deep N DIR
 *
 * makes N directories, each in the one before, below DIR: a tree deeper
 * than a host-side walk that recurses once per level can take.
 *
 * It prints "ready" once every pair exists, then "flips=N" (of all its
 * processes) at the end.
 * Exit status: 0 after flipping for SECONDS, 1 when a pair could not be
 * made or swapped (nothing was tested), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFILES	200
#define NDIRS	16
#define WORKERS 3

struct pair {
	int dfd;
	char a[16], b[16];
};

static int make_pairs(const char *dir, const char *target, struct pair *p, size_t *n)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "export_flip: open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < NFILES; i++) {
		struct pair *q = &p[(*n)++];
		q->dfd = dfd;
		snprintf(q->a, sizeof(q->a), "f%d", i);
		snprintf(q->b, sizeof(q->b), "p%d", i);
		int fd = openat(dfd, q->a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dprintf(fd, "a file of the container, number %d\n", i) < 0 ||
		    mkfifoat(dfd, q->b, 0644) < 0) {
			fprintf(stderr, "export_flip: make %s/%s: %s\n", dir, q->a,
				strerror(errno));
			return -1;
		}
		close(fd);
	}
	for (int i = 0; i <= NDIRS; i++) {
		struct pair *q = &p[(*n)++];
		q->dfd = dfd;
		if (i < NDIRS) {
			snprintf(q->a, sizeof(q->a), "d%d", i);
			snprintf(q->b, sizeof(q->b), "l%d", i);
		} else {
			strcpy(q->a, "dr");
			strcpy(q->b, "lr");
		}
		char inner[48];
		snprintf(inner, sizeof(inner), "%s/inner", q->a);
		int fd = -1;
		if (mkdirat(dfd, q->a, 0755) < 0 ||
		    (fd = openat(dfd, inner, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
		    symlinkat(i < NDIRS ? target : "/", dfd, q->b) < 0) {
			fprintf(stderr, "export_flip: make %s/%s: %s\n", dir, q->a,
				strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int deep(int n, const char *dir)
{
	if (chdir(dir) < 0)
		return 1;
	for (int i = 0; i < n; i++)
		if (mkdir("d", 0755) < 0 || chdir("d") < 0) {
			fprintf(stderr, "export_flip: level %d: %s\n", i, strerror(errno));
			return 1;
		}
	printf("deep=%d\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--deep") == 0)
		return deep(atoi(argv[2]), argv[3]);
	if (argc < 4) {
		fprintf(stderr, "usage: export_flip SECONDS TARGET DIR... | --deep N DIR\n");
		return 2;
	}
	int secs = atoi(argv[1]);
	size_t max = (size_t)(argc - 3) * (NFILES + NDIRS + 1), n = 0;
	struct pair *p = calloc(max, sizeof(*p));
	if (!p)
		return 1;
	for (int i = 3; i < argc; i++)
		if (make_pairs(argv[i], argv[2], p, &n) < 0)
			return 1;
	printf("ready\n");
	fflush(stdout);
	int pipefd[2];
	if (pipe(pipefd) < 0)
		return 1;
	for (int w = 0; w < WORKERS; w++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid > 0)
			continue;
		struct timespec t0, now;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		unsigned long flips = 0;
		for (;;) {
			for (size_t i = (size_t)w; i < n; i += WORKERS) {
				if (renameat2(p[i].dfd, p[i].a, p[i].dfd, p[i].b, RENAME_EXCHANGE) <
				    0) {
					fprintf(stderr, "export_flip: swap %s and %s: %s\n", p[i].a,
						p[i].b, strerror(errno));
					_exit(1);
				}
				flips++;
			}
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - t0.tv_sec >= secs)
				break;
		}
		if (write(pipefd[1], &flips, sizeof(flips)) != sizeof(flips))
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	unsigned long flips = 0, f;
	while (read(pipefd[0], &f, sizeof(f)) == sizeof(f))
		flips += f;
	int rc = 0, status;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	if (rc)
		return 1;
	printf("flips=%lu\n", flips);
	return 0;
}
