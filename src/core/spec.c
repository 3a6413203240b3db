/*
 * The container spec's life cycle and the values both of its readers (the
 * form, the API's JSON) parse the same way: signals, restart policies and
 * zfs compression names.
 */
#include "core/spec.h"
#include "core/spec_keys.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ctr_volume_release(struct ctr_volume *v)
{
	free(v->source);
	free(v->path);
	free(v->compression);
}

void ctr_hook_release(struct ctr_hook *h)
{
	strv_free(h->cmd.argv);
	free(h->path);
}

void ctr_publish_release(struct ctr_publish *p)
{
	free(p->ip);
}

void ctr_spec_free(struct ctr_spec *ct)
{
	if (!ct)
		return;
	free(ct->name);
	free(ct->image);
	strv_free(ct->command);
	conf_kvs_free(ct->env, ct->nenv);
	free(ct->workdir);
	free(ct->user);
	free(ct->hostname);
	for (size_t i = 0; i < ct->nvolumes; i++)
		ctr_volume_release(&ct->volumes[i]);
	free(ct->volumes);
	strv_free(ct->depends_on);
	free(ct->depends_pos);
	strv_free(ct->health.cmd);
	free(ct->health.http_path);
	for (size_t i = 0; i < ct->nhooks; i++)
		ctr_hook_release(&ct->hooks[i]);
	free(ct->hooks);
	strv_free(ct->domains);
	free(ct->path);
	strv_free(ct->networks);
	free(ct->ip);
	strv_free(ct->aliases);
	strv_free(ct->dns);
	for (size_t i = 0; i < ct->npublish; i++)
		ctr_publish_release(&ct->publish[i]);
	free(ct->publish);
	free(ct->storage_compression);
	ctr_backup_release(&ct->backup);
	free(ct->tls_cert);
	free(ct->tls_key);
	strv_free(ct->integrity_exclude);
	strv_free(ct->integrity_include);
	strv_free(ct->integrity_on_drift.argv);
	strv_free(ct->entrypoint);
	conf_kvs_free(ct->labels, ct->nlabels);
	strv_free(ct->cap_add);
	strv_free(ct->cap_drop);
	conf_kvs_free(ct->sysctls, ct->nsysctls);
	for (size_t i = 0; i < ct->ndevices; i++)
		ctr_device_release(&ct->devices[i]);
	free(ct->devices);
	free(ct);
}

/* ---- signals ---- */

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"HUP", SIGHUP},       {"INT", SIGINT},	  {"QUIT", SIGQUIT},   {"ILL", SIGILL},
	{"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
	{"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
	{"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
	{"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
	{"TTOU", SIGTTOU},     {"URG", SIGURG},	  {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
	{"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
	{"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int ctr_signal_parse(const char *s, int *out)
{
	if (!s || !*s)
		return -EINVAL;
	long long n;
	if (s[0] >= '0' && s[0] <= '9') {
		if (parse_int(s, 1, 64, &n) < 0)
			return -EINVAL;
		*out = (int)n;
		return 0;
	}
	const char *p = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++) {
		if (strcasecmp(p, signals[i].name) == 0) {
			*out = signals[i].sig;
			return 0;
		}
	}
	if (strncasecmp(p, "RTMIN+", 6) == 0 && parse_int(p + 6, 0, SIGRTMAX - SIGRTMIN, &n) == 0) {
		*out = SIGRTMIN + (int)n;
		return 0;
	}
	return -EINVAL;
}

const char *ctr_signal_name(int sig, char buf[16])
{
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++) {
		if (signals[i].sig == sig) {
			snprintf(buf, 16, "SIG%s", signals[i].name);
			return buf;
		}
	}
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, 16, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, 16, "%d", sig);
	return buf;
}

/* ---- restart policies ---- */

const char *ctr_restart_name(enum ctr_restart r)
{
	return r == CTR_RESTART_ALWAYS	     ? "always"
	       : r == CTR_RESTART_ON_FAILURE ? "on-failure"
					     : "no";
}

int ctr_restart_parse(const char *s, enum ctr_restart *r, int *max)
{
	*max = 0;
	if (!s || !*s || strcmp(s, "no") == 0) {
		*r = CTR_RESTART_NO;
		return 0;
	}
	if (strcmp(s, "always") == 0) {
		*r = CTR_RESTART_ALWAYS;
		return 0;
	}
	if (strncmp(s, "on-failure", 10) == 0) {
		long long n;
		if (s[10] == '\0') {
			*r = CTR_RESTART_ON_FAILURE;
			return 0;
		}
		if (s[10] == ':' && parse_int(s + 11, 0, 1000000, &n) == 0) {
			*r = CTR_RESTART_ON_FAILURE;
			*max = (int)n;
			return 0;
		}
	}
	return -EINVAL;
}

bool ctr_compression_ok(const char *s)
{
	static const char *const plain[] = {"on",   "off", "lz4",  "zstd", "zstd-fast",
					    "gzip", "zle", "lzjb", NULL};
	for (size_t i = 0; plain[i]; i++)
		if (strcmp(s, plain[i]) == 0)
			return true;
	long long lv;
	if (strncmp(s, "gzip-", 5) == 0)
		return parse_int(s + 5, 1, 9, &lv) == 0 && s[5] != '+' && s[5] != '-';
	if (strncmp(s, "zstd-", 5) == 0)
		return parse_int(s + 5, 1, 19, &lv) == 0 && s[5] != '+' && s[5] != '-';
	return false;
}

/* ---- checks across keys ---- */

int ctr_spec_check(const struct ctr_spec *s, struct clbsd_err *err)
{
	if (s->auto_remove && s->restart != CTR_RESTART_NO)
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"auto-remove (--rm) and a restart policy cannot be combined");
	const char *need = s->npublish					   ? "publishing ports"
			   : s->ip && *s->ip				   ? "\"ip\""
			   : s->aliases && s->aliases[0] && *s->aliases[0] ? "aliases"
									   : NULL;
	if (need && s->netmode_given && (s->netmode == CTR_NET_HOST || s->netmode == CTR_NET_NONE))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s needs a network, but the container's network is %s",
					need, s->netmode == CTR_NET_HOST ? "host" : "none");
	if (s->netmode_given && s->netmode == CTR_NET_HOST &&
	    ctr_sysctls_need_netns(s->sysctls, s->nsysctls))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"net.* sysctls need the container's own network namespace, "
					"but its network is host");
	return 0;
}

const char *ctr_integrity_both(const struct ctr_spec *s)
{
	for (size_t i = 0; s->integrity_exclude && s->integrity_exclude[i]; i++)
		for (size_t j = 0; s->integrity_include && s->integrity_include[j]; j++)
			if (strcmp(s->integrity_exclude[i], s->integrity_include[j]) == 0)
				return s->integrity_exclude[i];
	return NULL;
}
