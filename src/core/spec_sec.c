/*
 * The values of the keys that widen or narrow what a container may do:
 * capability names (:cap-add, :cap-drop), namespaced sysctls (:sysctls)
 * and devices (:devices). Both readers (the form, the API's JSON) parse
 * them here, so a value refused by one is refused by the other with the
 * same words.
 *
 * Capability numbers are Linux's (include/uapi/linux/capability.h); they
 * are data here, not a platform header, so the core stays portable. The
 * default set is Docker's, which the Linux runtime has always used.
 */
#include "core/spec.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const cap_names[] = {
	"chown",
	"dac_override",
	"dac_read_search",
	"fowner",
	"fsetid",
	"kill",
	"setgid",
	"setuid",
	"setpcap",
	"linux_immutable",
	"net_bind_service",
	"net_broadcast",
	"net_admin",
	"net_raw",
	"ipc_lock",
	"ipc_owner",
	"sys_module",
	"sys_rawio",
	"sys_chroot",
	"sys_ptrace",
	"sys_pacct",
	"sys_admin",
	"sys_boot",
	"sys_nice",
	"sys_resource",
	"sys_time",
	"sys_tty_config",
	"mknod",
	"lease",
	"audit_write",
	"audit_control",
	"setfcap",
	"mac_override",
	"mac_admin",
	"syslog",
	"wake_alarm",
	"block_suspend",
	"audit_read",
	"perfmon",
	"bpf",
	"checkpoint_restore",
};

/* Docker's default set (and the Linux runtime's since its first release). */
static const char *const cap_default[] = {
	"chown",   "dac_override", "fsetid",	       "fowner",
	"mknod",   "net_raw",	   "setgid",	       "setuid",
	"setfcap", "setpcap",	   "net_bind_service", "sys_chroot",
	"kill",	   "audit_write",
};

int ctr_cap_parse(const char *s, char **out)
{
	if (!s)
		return -EINVAL;
	const char *p = strncasecmp(s, "CAP_", 4) == 0 ? s + 4 : s;
	if (strcasecmp(p, "all") == 0) {
		*out = xstrdup("all");
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(p, cap_names[i]) == 0) {
			*out = xstrdup(cap_names[i]);
			return 0;
		}
	return -EINVAL;
}

int ctr_cap_number(const char *canon)
{
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcmp(canon, cap_names[i]) == 0)
			return (int)i;
	return -1;
}

static bool has(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static uint64_t mask_of(char *const *v)
{
	uint64_t m = 0;
	for (size_t i = 0; v && v[i]; i++) {
		int n = ctr_cap_number(v[i]);
		if (n >= 0)
			m |= 1ULL << n;
	}
	return m;
}

uint64_t ctr_caps_default(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < ARRAY_SIZE(cap_default); i++)
		m |= 1ULL << ctr_cap_number(cap_default[i]);
	return m;
}

uint64_t ctr_caps_all(void)
{
	return (1ULL << ARRAY_SIZE(cap_names)) - 1;
}

/* Docker's rules (moby's TweakCapabilities), so a compose file means the same here. */
uint64_t ctr_caps_mask(char *const *add, char *const *drop)
{
	if (has(add, "all"))
		return ctr_caps_all() & ~mask_of(drop);
	if (has(drop, "all"))
		return mask_of(add);
	return (ctr_caps_default() & ~mask_of(drop)) | mask_of(add);
}

/* ---- sysctls ---- */

/* runc's list of the ipc namespace's sysctls (validate/validator.go). */
static const char *const ipc_sysctls[] = {
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
};

bool ctr_sysctl_ok(const char *key, const char *value, char *why, size_t n)
{
	size_t len = strlen(key);
	bool chars = len > 0 && len < 256;
	for (const char *p = key; chars && *p; p++)
		chars = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' ||
			*p == '_' || *p == '-';
	if (!chars || key[0] == '.' || key[len - 1] == '.' || strstr(key, "..")) {
		snprintf(why, n,
			 "\"%.80s\" is not a sysctl name: lowercase words joined by dots, like "
			 "\"net.ipv4.ip_forward\"",
			 key);
		return false;
	}
	bool ns = strncmp(key, "net.", 4) == 0 || strncmp(key, "fs.mqueue.", 10) == 0 ||
		  strcmp(key, "kernel.domainname") == 0;
	for (size_t i = 0; !ns && i < ARRAY_SIZE(ipc_sysctls); i++)
		ns = strcmp(key, ipc_sysctls[i]) == 0;
	if (!ns) {
		snprintf(why, n,
			 "\"%.80s\" is not namespaced: a container may set only net.* (in its own "
			 "network namespace), kernel.shm*, kernel.msg*, kernel.sem, "
			 "kernel.domainname and fs.mqueue.*, as Docker allows; set host-wide "
			 "sysctls on the host",
			 key);
		return false;
	}
	size_t vl = strlen(value);
	bool vok = vl > 0 && vl < 4096;
	for (const char *p = value; vok && *p; p++)
		vok = (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (!vok) {
		snprintf(why, n,
			 "sysctl %s: the value must be 1-4095 printable characters on one line",
			 key);
		return false;
	}
	return true;
}

bool ctr_sysctls_need_netns(const struct conf_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i].key, "net.", 4) == 0)
			return true;
	return false;
}

/* ---- labels ---- */

/* A label key: Docker's reverse-DNS convention, printable, no '=' (so "k=v" splits). */
static bool label_key_ok(const char *k, char *why, size_t n)
{
	size_t len = strlen(k);
	bool ok = len > 0 && len <= 255;
	for (const char *p = k; ok && *p; p++)
		ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f && *p != '=';
	if (!ok)
		snprintf(why, n,
			 "invalid label name \"%.80s\": 1-255 printable characters without spaces "
			 "or '=', like \"com.example.role\"",
			 k);
	return ok;
}

static bool label_value_ok(const char *key, const char *v, char *why, size_t n)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t') {
			snprintf(why, n, "label %s: the value has a control character", key);
			return false;
		}
	if (strlen(v) > 4096) {
		snprintf(why, n, "label %s: the value is longer than 4096 bytes", key);
		return false;
	}
	return true;
}

bool ctr_label_ok(const char *key, const char *value, char *why, size_t n)
{
	return label_key_ok(key, why, n) && label_value_ok(key, value, why, n);
}

/* ---- devices ---- */

static bool perms_ok(const char *s)
{
	if (!*s || strlen(s) > 3)
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("rwm", *p) || strchr(p + 1, *p))
			return false;
	return true;
}

static bool dev_path_ok(const char *p)
{
	return fs_path_is_clean_abs(p) && strncmp(p, "/dev/", 5) == 0 && p[5] &&
	       strncmp(p, "/dev/pts/", 9) != 0 && strcmp(p, "/dev/pts") != 0 &&
	       strncmp(p, "/dev/shm", 8) != 0 && strncmp(p, "/dev/mqueue", 11) != 0;
}

void ctr_device_release(struct ctr_device *d)
{
	free(d->host);
	free(d->path);
}

int ctr_device_parse(const char *s, struct ctr_device *out, char *why, size_t n)
{
	char *parts[4] = {0};
	size_t np = 0;
	autofree char *copy = xstrdup(s);
	for (char *p = copy, *c; np < 4; p = c + 1) {
		parts[np++] = p;
		if (!(c = strchr(p, ':')))
			break;
		*c = '\0';
	}
	const char *host = parts[0], *path = NULL, *perms = "rwm";
	if (np == 2 && perms_ok(parts[1]))
		perms = parts[1];
	else if (np >= 2)
		path = parts[1];
	if (np == 3)
		perms = parts[2];
	if (np > 3 || !*host) {
		snprintf(why, n, "device \"%.120s\": expected HOST[:CONTAINER][:PERMS]", s);
		return -EINVAL;
	}
	if (!path)
		path = host;
	if (!dev_path_ok(host) || !dev_path_ok(path)) {
		snprintf(why, n,
			 "device \"%.120s\": both paths must be clean absolute paths below /dev "
			 "(not /dev/pts, /dev/shm or /dev/mqueue, which the runtime mounts)",
			 s);
		return -EINVAL;
	}
	if (!perms_ok(perms)) {
		snprintf(why, n,
			 "device \"%.120s\": permissions \"%s\" must be letters of \"rwm\" (read, "
			 "write, mknod), each at most once",
			 s, perms);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->host = xstrdup(host);
	out->path = xstrdup(path);
	size_t k = 0;
	for (const char *c = "rwm"; *c; c++)
		if (strchr(perms, *c))
			out->perms[k++] = *c;
	out->perms[k] = '\0';
	return 0;
}

char *ctr_device_str(const struct ctr_device *d)
{
	return xasprintf("%s:%s:%s", d->host, d->path, d->perms);
}
