/*
 * `clbsd forge --from-host`: an image made of binaries of the host and the
 * shared libraries they link, so a program like nginx runs in a native
 * container without a registry or a network. The ingress's routing
 * container is built this way.
 *
 * Dependencies come from the ELF files themselves: PT_INTERP names the
 * dynamic loader, DT_NEEDED the libraries, resolved against DT_RUNPATH /
 * DT_RPATH and the multiarch directories the Debian loader searches. No
 * ldd (which runs the loader on the binary) and no ld.so.cache. Every path
 * is recreated in the rootfs as it is on the host, symlinks included
 * (/lib -> usr/lib on a merged-/usr system), so the binary finds its loader
 * and the loader finds the libraries at the same names.
 */
#include "image.h"
#include "sys/sys.h"
#include "util/util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const lib_dirs[] = {
	"/lib/x86_64-linux-gnu",
	"/usr/lib/x86_64-linux-gnu",
	"/lib64",
	"/usr/lib64",
	"/lib",
	"/usr/lib",
};

/* What one ELF file asks for. */
struct elf_deps {
	char *interp;	     /* PT_INTERP, or NULL */
	struct strv needed;  /* DT_NEEDED names */
	struct strv runpath; /* DT_RUNPATH or DT_RPATH directories */
};

static void elf_deps_release(struct elf_deps *d)
{
	free(d->interp);
	strv_release(&d->needed);
	strv_release(&d->runpath);
}

/* A file offset for a virtual address, through the PT_LOAD segments. */
static bool vaddr_to_off(const Elf64_Phdr *ph, size_t n, uint64_t va, uint64_t *off)
{
	for (size_t i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr &&
		    va < ph[i].p_vaddr + ph[i].p_filesz) {
			*off = va - ph[i].p_vaddr + ph[i].p_offset;
			return true;
		}
	return false;
}

static int elf_read_deps(const char *path, struct elf_deps *d, struct clbsd_err *err)
{
	*d = (struct elf_deps){NULL, STRV_INIT, STRV_INIT};
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_NOTFOUND, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOEXEC, "%s: not an ELF file", path);
	size_t size = (size_t)st.st_size;
	unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mmap %s", path);
	int r = 0;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > size || eh->e_phnum > (size - eh->e_phoff) / sizeof(Elf64_Phdr)) {
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOEXEC,
				     "%s: not a 64-bit little-endian ELF file (only those can be "
				     "staged from the host)",
				     path);
		goto out;
	}
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(m + eh->e_phoff);
	size_t nph = eh->e_phnum;
	const Elf64_Dyn *dyn = NULL;
	size_t ndyn = 0;
	for (size_t i = 0; i < nph; i++) {
		if (ph[i].p_offset > size || ph[i].p_filesz > size - ph[i].p_offset)
			continue;
		if (ph[i].p_type == PT_INTERP && ph[i].p_filesz > 1)
			d->interp = xstrndup((const char *)m + ph[i].p_offset, ph[i].p_filesz - 1);
		if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const Elf64_Dyn *)(m + ph[i].p_offset);
			ndyn = ph[i].p_filesz / sizeof(Elf64_Dyn);
		}
	}
	uint64_t strtab_va = 0, strsz = 0, stroff = 0;
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag == DT_STRTAB)
			strtab_va = dyn[i].d_un.d_ptr;
		else if (dyn[i].d_tag == DT_STRSZ)
			strsz = dyn[i].d_un.d_val;
	}
	if (ndyn && (!vaddr_to_off(ph, nph, strtab_va, &stroff) || stroff > size ||
		     strsz > size - stroff)) {
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOEXEC, "%s: bad dynamic string table",
				     path);
		goto out;
	}
	const char *strtab = (const char *)m + stroff;
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		int64_t tag = dyn[i].d_tag;
		if (tag != DT_NEEDED && tag != DT_RUNPATH && tag != DT_RPATH)
			continue;
		uint64_t o = dyn[i].d_un.d_val;
		if (o >= strsz || !memchr(strtab + o, '\0', strsz - o)) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOEXEC,
					     "%s: bad dynamic string", path);
			goto out;
		}
		const char *s = strtab + o;
		if (tag == DT_NEEDED) {
			strv_push(&d->needed, s);
			continue;
		}
		/* Colon-separated; $ORIGIN-relative entries are not followed. */
		autofree char *copy = xstrdup(s);
		char *save = NULL;
		for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
			if (p[0] == '/')
				strv_push(&d->runpath, p);
	}
out:
	munmap(m, size);
	if (r < 0)
		elf_deps_release(d);
	return r;
}

static bool strv_has(const struct strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static char *find_lib(const char *name, const struct strv *runpath)
{
	if (strchr(name, '/'))
		return access(name, R_OK) == 0 ? xstrdup(name) : NULL;
	for (size_t i = 0; i < runpath->n; i++) {
		char *p = xasprintf("%s/%s", runpath->v[i], name);
		if (access(p, R_OK) == 0)
			return p;
		free(p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(lib_dirs); i++) {
		char *p = xasprintf("%s/%s", lib_dirs[i], name);
		if (access(p, R_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

int image_host_deps(const char *bin, struct strv *files, struct clbsd_err *err)
{
	struct strv out = STRV_INIT, seen = STRV_INIT;
	strv_push(&out, bin);
	int r = 0;
	/* Breadth first over out: every file added is scanned in turn. */
	for (size_t i = 0; i < out.n && r == 0; i++) {
		struct elf_deps d;
		r = elf_read_deps(out.v[i], &d, err);
		if (r < 0)
			break;
		if (d.interp && !strv_has(&out, d.interp)) {
			if (access(d.interp, R_OK) < 0)
				r = clbsd_err_set(err, CLBSD_E_NOTFOUND, errno, "%s: its loader %s",
						  out.v[i], d.interp);
			else
				strv_push(&out, d.interp);
		}
		for (size_t j = 0; j < d.needed.n && r == 0; j++) {
			if (strv_has(&seen, d.needed.v[j]))
				continue;
			strv_push(&seen, d.needed.v[j]);
			char *p = find_lib(d.needed.v[j], &d.runpath);
			if (!p) {
				r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
						     "%s needs %s, which is in none of the library "
						     "directories",
						     out.v[i], d.needed.v[j]);
				break;
			}
			if (strv_has(&out, p))
				free(p);
			else
				strv_push_owned(&out, p);
		}
		elf_deps_release(&d);
	}
	strv_release(&seen);
	if (r < 0) {
		strv_release(&out);
		return r;
	}
	*files = out;
	return 0;
}

/*
 * Recreate host path `path` under root: directories as directories,
 * symlinks as the same symlinks (then their targets, in turn), the file
 * itself copied with its mode.
 */
static int copy_path(const char *root, const char *path, int depth, struct clbsd_err *err)
{
	if (depth > 40)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ELOOP, "%s: too many symlinks", path);
	autofree char *copy = xstrdup(path);
	struct buf cur = BUF_INIT;
	char *save = NULL;
	int r = 0;
	for (char *c = strtok_r(copy, "/", &save); c && r == 0; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			/* Everything before is a real directory: lexical is right. */
			char *slash = cur.data ? strrchr(cur.data, '/') : NULL;
			if (slash)
				cur.len = (size_t)(slash - cur.data), *slash = '\0';
			continue;
		}
		buf_addf(&cur, "/%s", c);
		struct stat st;
		if (lstat(cur.data, &st) < 0) {
			r = clbsd_err_set(err, CLBSD_E_NOTFOUND, errno, "stage %s", cur.data);
			break;
		}
		autofree char *dst = xasprintf("%s%s", root, cur.data);
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlink(cur.data, target, sizeof(target) - 1);
			if (n < 0) {
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "readlink %s",
						  cur.data);
				break;
			}
			target[n] = '\0';
			if (symlink(target, dst) < 0 && errno != EEXIST) {
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "symlink %s", dst);
				break;
			}
			/* Continue at the target, with the rest of the path. */
			const char *rest = save && *save ? save : "";
			char *dir = xstrdup(cur.data);
			*strrchr(dir, '/') = '\0';
			autofree char *next = target[0] == '/' ? xasprintf("%s%s%s", target,
									   *rest ? "/" : "", rest)
							       : xasprintf("%s/%s%s%s", dir, target,
									   *rest ? "/" : "", rest);
			free(dir);
			r = copy_path(root, next, depth + 1, err);
			buf_release(&cur);
			return r;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdir(dst, st.st_mode & 07777) < 0 && errno != EEXIST)
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdir %s", dst);
			continue;
		}
		if (!fs_exists(dst) && sys_copy_tree(cur.data, dst, err) < 0)
			r = clbsd_err_prefix(err, "stage %s", cur.data);
	}
	buf_release(&cur);
	return r;
}

static int put(const char *root, const char *rel, const char *text, mode_t mode,
	       struct clbsd_err *err)
{
	autofree char *p = xasprintf("%s/%s", root, rel);
	return fs_write_atomic(p, text, strlen(text), mode, err);
}

int image_stage_from_host(const char *staging, const char *const *bins, struct image_config *cfg,
			  struct clbsd_err *err)
{
	if (!bins || !bins[0])
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"forge --from-host: name at least one binary, like "
					"/usr/sbin/nginx");
	autofree char *root = xasprintf("%s/rootfs", staging);
	if (fs_mkdir_p(root, 0755, err) < 0)
		return clbsd_err_prefix(err, "forge --from-host");
	static const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {
		{"", 0755},	    {"etc", 0755},     {"proc", 0555}, {"sys", 0555},
		{"dev", 0755},	    {"tmp", 01777},    {"root", 0700}, {"var", 0755},
		{"var/tmp", 01777}, {"var/log", 0755}, {"run", 0755},
	};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		autofree char *p = xasprintf("%s/%s", root, dirs[i].path);
		if (mkdir(p, dirs[i].mode) < 0 && errno != EEXIST)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdir %s", p);
		chmod(p, dirs[i].mode);
	}
	for (size_t i = 0; bins[i]; i++) {
		if (bins[i][0] != '/' || !fs_path_is_clean_abs(bins[i]))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"forge --from-host: %s is not an absolute path",
						bins[i]);
		struct strv files = STRV_INIT;
		if (image_host_deps(bins[i], &files, err) < 0)
			return clbsd_err_prefix(err, "forge --from-host");
		int r = 0;
		for (size_t j = 0; j < files.n && r == 0; j++)
			r = copy_path(root, files.v[j], 0, err);
		strv_release(&files);
		if (r < 0)
			return clbsd_err_prefix(err, "forge --from-host");
	}
	/* What a daemon dropping privileges looks up; glibc reads files without nsswitch.conf. */
	if (put(root, "etc/passwd",
		"root:x:0:0:root:/root:/bin/false\n"
		"www-data:x:33:33:www-data:/var/www:/bin/false\n"
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		0644, err) < 0 ||
	    put(root, "etc/group", "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n", 0644, err) <
		    0 ||
	    put(root, "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n", 0644,
		err) < 0 ||
	    put(root, "etc/os-release",
		"NAME=\"clbsd host forge\"\nID=forge-host\nPRETTY_NAME=\"clbsd forge from host "
		"binaries\"\n",
		0644, err) < 0)
		return clbsd_err_prefix(err, "forge --from-host");

	struct image_config c = {0};
	c.entrypoint = xcalloc(2, sizeof(char *));
	c.entrypoint[0] = xstrdup(bins[0]);
	c.cmd = xcalloc(1, sizeof(char *));
	c.env = xcalloc(2, sizeof(char *));
	c.env[0] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	c.workdir = xstrdup("/");
	c.user = xstrdup("");
	*cfg = c;
	return 0;
}
