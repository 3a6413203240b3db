/*
 * libnftables: the listing of clbsd's table and the scripts that change it.
 * Every script runs as one transaction, so the table is never seen half
 * changed. One lock serialises all of it: a context is not shared between
 * threads, and a script computed from a listing must run before anyone else
 * lists or changes the table.
 */
#include "net/linux/net_linux.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

static void ctxp(struct nft_ctx **c)
{
	if (*c)
		nft_ctx_free(*c);
}
#define autonft __attribute__((cleanup(ctxp)))

static struct nft_ctx *ctx_new(unsigned flags)
{
	struct nft_ctx *c = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!c)
		return NULL;
	nft_ctx_output_set_flags(c, flags);
	nft_ctx_buffer_output(c);
	nft_ctx_buffer_error(c);
	return c;
}

/* nft's first error line, for a message. */
static char *first_line(const char *s)
{
	if (!s || !*s)
		return xstrdup("no detail");
	size_t n = strcspn(s, "\n");
	return xstrndup(s, n);
}

static int list_locked(struct net_nft *out, struct clbsd_err *err)
{
	autonft struct nft_ctx *c = ctx_new(NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
	if (!c)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM, "nftables: no context");
	if (nft_run_cmd_from_buffer(c, "list table inet " NET_NFT_TABLE) != 0) {
		const char *e = nft_ctx_get_error_buffer(c);
		/* No table yet is an empty listing. */
		if (e && strstr(e, "No such file or directory"))
			return net_nft_parse(NULL, out, err);
		autofree char *line = first_line(e);
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO,
					"nftables: list table inet " NET_NFT_TABLE
					": %s (is nf_tables available in this kernel?)",
					line);
	}
	return net_nft_parse(nft_ctx_get_output_buffer(c), out, err);
}

static int run_locked(const char *script, struct clbsd_err *err)
{
	if (!script || !*script)
		return 0;
	autonft struct nft_ctx *c = ctx_new(0);
	if (!c)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM, "nftables: no context");
	if (nft_run_cmd_from_buffer(c, script) != 0) {
		autofree char *line = first_line(nft_ctx_get_error_buffer(c));
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO,
					"nftables: changing table inet " NET_NFT_TABLE
					" failed, nothing was changed: %s",
					line);
	}
	return 0;
}

int nftx_list(struct net_nft *out, struct clbsd_err *err)
{
	pthread_mutex_lock(&nft_lock);
	int r = list_locked(out, err);
	pthread_mutex_unlock(&nft_lock);
	return r;
}

int nftx_run(const char *script, struct clbsd_err *err)
{
	pthread_mutex_lock(&nft_lock);
	int r = run_locked(script, err);
	pthread_mutex_unlock(&nft_lock);
	return r;
}

int nftx_sync(const struct net_ruleset *want, const char *const *scope, struct net_report *rep,
	      struct clbsd_err *err)
{
	struct net_nft have;
	struct buf script = BUF_INIT;
	struct strv changes = STRV_INIT;
	pthread_mutex_lock(&nft_lock);
	int r = list_locked(&have, err);
	if (r == 0) {
		net_rules_diff(want, &have, scope, &script, &changes);
		net_nft_release(&have);
		r = run_locked(script.data, err);
	}
	pthread_mutex_unlock(&nft_lock);
	if (r == 0 && rep)
		for (size_t i = 0; i < changes.n; i++)
			strv_push(&rep->changes, changes.v[i]);
	buf_release(&script);
	strv_release(&changes);
	return r;
}
