/*
 * The local CA: made once, leaves signed by it for exactly their name,
 * reused while valid, reissued when they no longer fit, keys 0600.
 */
#include "ingress/ingress.h"
#include "test.h"
#include "util/util.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static X509 *load(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

TEST(ca_made_once)
{
	struct clbsd_err err;
	CHECK_INT(ingress_ca_ensure(dir, &err), 0);
	autofree char *cp = xasprintf("%s/ca.pem", dir);
	autofree char *kp = xasprintf("%s/ca.key", dir);
	CHECK_INT(mode_of(kp), 0600);
	autofree char *first = NULL, *second = NULL;
	CHECK_INT(fs_read_file(cp, &first, NULL, &err), 0);
	CHECK_INT(ingress_ca_ensure(dir, &err), 0);
	CHECK_INT(fs_read_file(cp, &second, NULL, &err), 0);
	CHECK_STR(first, second);
	X509 *ca = load(cp);
	CHECK(ca != NULL);
	CHECK_INT(X509_check_ca(ca), 1);
	X509_free(ca);
}

TEST(leaf_signed_for_its_name)
{
	struct clbsd_err err;
	bool issued = false;
	CHECK_INT(ingress_ca_leaf(dir, "web.home.lan", &issued, &err), 0);
	CHECK(issued);
	autofree char *cert = NULL, *key = NULL;
	ingress_ca_leaf_paths(dir, "web.home.lan", &cert, &key);
	CHECK_INT(mode_of(key), 0600);
	autofree char *cp = xasprintf("%s/ca.pem", dir);
	X509 *ca = load(cp), *leaf = load(cert);
	CHECK(ca && leaf);
	EVP_PKEY *pub = X509_get0_pubkey(ca);
	CHECK_INT(X509_verify(leaf, pub), 1);
	CHECK_INT(X509_check_host(leaf, "web.home.lan", 0, 0, NULL), 1);
	CHECK(X509_check_host(leaf, "other.home.lan", 0, 0, NULL) != 1);
	CHECK_INT(X509_check_ca(leaf), 0);
	/* A chain check as a client does it. */
	X509_STORE *store = X509_STORE_new();
	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), "web.home.lan", 0);
	int ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(ca);
	X509_free(leaf);
	CHECK_INT(ok, 1);
}

TEST(leaf_reused_then_reissued)
{
	struct clbsd_err err;
	bool issued = true;
	autofree char *cert = NULL, *key = NULL, *before = NULL, *after = NULL;
	ingress_ca_leaf_paths(dir, "web.home.lan", &cert, &key);
	CHECK_INT(fs_read_file(cert, &before, NULL, &err), 0);
	CHECK_INT(ingress_ca_leaf(dir, "web.home.lan", &issued, &err), 0);
	CHECK(!issued);
	CHECK_INT(fs_read_file(cert, &after, NULL, &err), 0);
	CHECK_STR(before, after);
	/* A leaf for another name in its place is replaced. */
	autofree char *ocert = NULL, *okey = NULL;
	CHECK_INT(ingress_ca_leaf(dir, "api.home.lan", &issued, &err), 0);
	ingress_ca_leaf_paths(dir, "api.home.lan", &ocert, &okey);
	autofree char *otext = NULL, *ktext = NULL;
	CHECK_INT(fs_read_file(ocert, &otext, NULL, &err), 0);
	CHECK_INT(fs_read_file(okey, &ktext, NULL, &err), 0);
	CHECK_INT(fs_write_atomic(cert, otext, strlen(otext), 0644, &err), 0);
	CHECK_INT(fs_write_atomic(key, ktext, strlen(ktext), 0600, &err), 0);
	CHECK_INT(ingress_ca_leaf(dir, "web.home.lan", &issued, &err), 0);
	CHECK(issued);
	/* So is a damaged one. */
	CHECK_INT(fs_write_atomic(cert, "junk\n", 5, 0644, &err), 0);
	CHECK_INT(ingress_ca_leaf(dir, "web.home.lan", &issued, &err), 0);
	CHECK(issued);
}

TEST(wildcard_and_refusals)
{
	struct clbsd_err err;
	bool issued;
	CHECK_INT(ingress_ca_leaf(dir, "*.apps.home.lan", &issued, &err), 0);
	autofree char *cert = NULL, *key = NULL;
	ingress_ca_leaf_paths(dir, "*.apps.home.lan", &cert, &key);
	CHECK(strstr(cert, "/leaves/_wildcard.apps.home.lan.pem") != NULL);
	X509 *leaf = load(cert);
	CHECK(leaf != NULL);
	CHECK_INT(X509_check_host(leaf, "x.apps.home.lan", 0, 0, NULL), 1);
	X509_free(leaf);
	CHECK(ingress_ca_leaf(dir, "a;b", &issued, &err) < 0);
	CHECK(ingress_ca_leaf(dir, "../../etc", &issued, &err) < 0);
}

TEST(ensure_routes)
{
	struct clbsd_err err;
	static const char *const l[] = {"127.0.0.1:80"}, *const t[] = {"127.0.0.1:443"};
	static const char *const d1[] = {"one.home.lan", "two.home.lan"}, *const d2[] = {"own.lan"};
	struct ingress_settings s = {"/tmp", l, 1, t, 1, NULL, INGRESS_TLS_AUTO, dir};
	struct ingress_route r[] = {
		{"one", d1, 2, NULL, "10.0.0.2", 80, INGRESS_UP, false, 0, NULL, NULL},
		{"own", d2, 1, NULL, "10.0.0.3", 80, INGRESS_UP, false, 0, "/x.pem", "/x.key"},
	};
	CHECK_INT(ingress_ca_ensure_routes(&s, r, 2, &err), 2);
	CHECK_INT(ingress_ca_ensure_routes(&s, r, 2, &err), 0);
	autofree char *c = NULL, *k = NULL;
	ingress_ca_leaf_paths(dir, "own.lan", &c, &k);
	CHECK(!fs_exists(c));
	/* A CA whose key was lost is an error that says what to do. */
	autofree char *kp = xasprintf("%s/ca.key", dir);
	unlink(kp);
	CHECK(ingress_ca_leaf(dir, "one.home.lan", NULL, &err) < 0);
	CHECK(strstr(err.msg, "move the directory away") != NULL);
}

int main(void)
{
	test_prog = "ingress.ca";
	snprintf(dir, sizeof(dir), "/tmp/clbsd-ca-test.%d", (int)getpid());
	RUN(ca_made_once);
	RUN(leaf_signed_for_its_name);
	RUN(leaf_reused_then_reissued);
	RUN(wildcard_and_refusals);
	RUN(ensure_routes);
	struct clbsd_err err;
	fs_rm_rf(dir, &err);
	return test_failed_cases ? 1 : 0;
}
