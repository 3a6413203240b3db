/*
 * The forge: layer 0 of every image, built offline from Debian's
 * busybox-static. One static binary plus a symlink per applet gives a small
 * but complete userland (sh, ls, ps, wget, httpd, ...), and the few files a
 * program expects to find in /etc.
 */
#include "image.h"
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(const char *root, const char *rel, const char *text, mode_t mode,
	       struct clbsd_err *err)
{
	autofree char *p = xasprintf("%s/%s", root, rel);
	return fs_write_atomic(p, text, strlen(text), mode, err);
}

/* Host resolvers minus loopback ones, which mean nothing inside a container. */
static char *resolv_conf(void)
{
	struct buf b = BUF_INIT;
	autofree char *host = NULL;
	struct clbsd_err err;
	if (fs_read_file("/etc/resolv.conf", &host, NULL, &err) == 0) {
		char *save = NULL;
		for (char *line = strtok_r(host, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "nameserver", 10) == 0) {
				const char *addr = line + 10;
				while (*addr == ' ' || *addr == '\t')
					addr++;
				if (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0)
					continue;
			}
			if (strncmp(line, "nameserver", 10) == 0 ||
			    strncmp(line, "search", 6) == 0 || strncmp(line, "options", 7) == 0)
				buf_addf(&b, "%s\n", line);
		}
	}
	if (b.len == 0)
		buf_adds(&b, "# no non-loopback resolver on the host\n");
	return buf_detach(&b, NULL);
}

int image_stage_forge(const char *staging, const char *busybox, struct image_config *cfg,
		      struct clbsd_err *err)
{
	struct stat st;
	if (stat(busybox, &st) < 0 || !S_ISREG(st.st_mode))
		return clbsd_err_setmsg(
			err, CLBSD_E_UNAVAIL, ENOENT,
			"busybox-static not found at %s: install the busybox-static "
			"package (scripts/deps.sh does)",
			busybox);
	autofree char *root = xasprintf("%s/rootfs", staging);
	static const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {
		{"", 0755},	   {"bin", 0755},      {"sbin", 0755},	   {"usr", 0755},
		{"usr/bin", 0755}, {"usr/sbin", 0755}, {"etc", 0755},	   {"proc", 0555},
		{"sys", 0555},	   {"dev", 0755},      {"tmp", 01777},	   {"root", 0700},
		{"home", 0755},	   {"var", 0755},      {"var/tmp", 01777}, {"var/log", 0755},
		{"run", 0755},	   {"mnt", 0755},      {"srv", 0755},	   {"opt", 0755},
	};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		autofree char *p = xasprintf("%s/%s", root, dirs[i].path);
		if (mkdir(p, dirs[i].mode) < 0 && errno != EEXIST)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdir %s", p);
		chmod(p, dirs[i].mode);
	}
	autofree char *bb = xasprintf("%s/bin/busybox", root);
	if (sys_copy_tree(busybox, bb, err) < 0)
		return clbsd_err_prefix(err, "forge");
	chmod(bb, 0755);

	autofree char *bbpath = xstrdup(busybox);
	char *argv[] = {bbpath, "--list-full", NULL};
	autofree char *list = NULL;
	if (proc_run(argv, &list, err) < 0)
		return clbsd_err_prefix(err, "forge: list busybox applets");
	char *save = NULL;
	for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!*line || strstr(line, "..") || strcmp(line, "bin/busybox") == 0)
			continue;
		autofree char *link = xasprintf("%s/%s", root, line);
		char *slash = strrchr(link, '/');
		*slash = '\0';
		struct clbsd_err e2;
		if (fs_mkdir_p(link, 0755, &e2) < 0)
			continue;
		*slash = '/';
		if (symlink("/bin/busybox", link) < 0 && errno != EEXIST)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "symlink %s", link);
	}

	autofree char *resolv = resolv_conf();
	if (put(root, "etc/passwd",
		"root:x:0:0:root:/root:/bin/sh\n"
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
		"www-data:x:33:33:www-data:/var/www:/bin/false\n"
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		0644, err) < 0 ||
	    put(root, "etc/group",
		"root:x:0:\ndaemon:x:1:\ntty:x:5:\nwww-data:x:33:\nnogroup:x:65534:\n", 0644,
		err) < 0 ||
	    put(root, "etc/shadow", "root:*:19000:0:99999:7:::\n", 0600, err) < 0 ||
	    put(root, "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n", 0644,
		err) < 0 ||
	    put(root, "etc/hostname", "forge\n", 0644, err) < 0 ||
	    put(root, "etc/resolv.conf", resolv, 0644, err) < 0 ||
	    put(root, "etc/os-release",
		"NAME=\"clbsd forge\"\nID=forge\nPRETTY_NAME=\"clbsd forge (busybox)\"\n", 0644,
		err) < 0)
		return clbsd_err_prefix(err, "forge");

	struct image_config c = {0};
	c.entrypoint = xcalloc(1, sizeof(char *));
	c.cmd = xcalloc(2, sizeof(char *));
	c.cmd[0] = xstrdup("/bin/sh");
	c.env = xcalloc(2, sizeof(char *));
	c.env[0] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	c.workdir = xstrdup("/");
	c.user = xstrdup("");
	*cfg = c;
	return 0;
}
