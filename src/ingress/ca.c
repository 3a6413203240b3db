/*
 * The local CA for `:ingress (:tls (:ca auto))`: an EC P-256 CA made once per
 * host, and a leaf certificate per routed name. Browsers and curl verify the
 * leaves once the CA certificate (ca.pem) is trusted; docs/ingress.md says
 * how. Keys are written 0600 and never leave the CA directory.
 *
 * A leaf is reused while it was signed by this CA, names exactly its name
 * and has more than INGRESS_CA_RENEW_DAYS left, so a re-render does not
 * reissue anything and nginx is not reloaded for nothing.
 */
#include "ingress/ingress.h"
#include "util/util.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CA_DAYS (10 * 365)

static void x509_freep(X509 **x)
{
	X509_free(*x);
}
static void pkey_freep(EVP_PKEY **k)
{
	EVP_PKEY_free(*k);
}
#define autox509 __attribute__((cleanup(x509_freep)))
#define autopkey __attribute__((cleanup(pkey_freep)))

/* The OpenSSL error queue as text, for the message. */
static int ssl_fail(struct clbsd_err *err, const char *what)
{
	char msg[256] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s%s%s", what, *msg ? ": " : "", msg);
}

static int write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key,
		     struct clbsd_err *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int ok = cert ? PEM_write_bio_X509(bio, cert)
		      : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	if (!ok) {
		BIO_free(bio);
		return ssl_fail(err, "encode PEM");
	}
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	int r = fs_write_atomic(path, data, (size_t)len, mode, err);
	BIO_free(bio);
	return r;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	return x;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	return k;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct clbsd_err *err)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext || !X509_add_ext(x, ext, -1)) {
		X509_EXTENSION_free(ext);
		return ssl_fail(err, "add certificate extension");
	}
	X509_EXTENSION_free(ext);
	return 0;
}

/* A certificate with a random 128-bit serial, valid from an hour ago for days. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, const char *org, long days)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	BIGNUM *bn = BN_new();
	BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1,
					   -1, 0);
	/* CN is at most 64 characters; longer names live in the SAN only. */
	if (cn && strlen(cn) <= 64)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					   -1, 0);
	return x;
}

static int ca_paths_load(const char *ca_dir, X509 **cert, EVP_PKEY **key, struct clbsd_err *err)
{
	autofree char *cp = xasprintf("%s/ca.pem", ca_dir);
	autofree char *kp = xasprintf("%s/ca.key", ca_dir);
	X509 *c = read_cert(cp);
	EVP_PKEY *k = read_key(kp);
	if (!c || !k || X509_check_private_key(c, k) != 1) {
		X509_free(c);
		EVP_PKEY_free(k);
		ERR_clear_error();
		return clbsd_err_setmsg(
			err, CLBSD_E_INTERNAL, EIO,
			"local CA in %s: ca.pem and ca.key are unreadable or do not "
			"match; move the directory away to make a new CA (and trust "
			"the new ca.pem)",
			ca_dir);
	}
	*cert = c;
	*key = k;
	return 0;
}

int ingress_ca_ensure(const char *ca_dir, struct clbsd_err *err)
{
	autofree char *cp = xasprintf("%s/ca.pem", ca_dir);
	autofree char *kp = xasprintf("%s/ca.key", ca_dir);
	if (fs_exists(cp) || fs_exists(kp)) {
		autox509 X509 *c = NULL;
		autopkey EVP_PKEY *k = NULL;
		return ca_paths_load(ca_dir, &c, &k, err);
	}
	if (fs_mkdir_p(ca_dir, 0700, err) < 0)
		return clbsd_err_prefix(err, "local CA");
	autopkey EVP_PKEY *key = EVP_EC_gen("P-256");
	if (!key)
		return ssl_fail(err, "local CA: generate key");
	char host[64] = "";
	gethostname(host, sizeof(host) - 1);
	autofree char *cn = xasprintf("clbsd local CA %.40s", host);
	autox509 X509 *x = new_cert(key, cn, "clbsd", CA_DAYS);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err) < 0 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err) < 0 ||
	    add_ext(x, x, NID_subject_key_identifier, "hash", err) < 0)
		return clbsd_err_prefix(err, "local CA");
	if (!X509_sign(x, key, EVP_sha256()))
		return ssl_fail(err, "local CA: sign");
	/* The key first: a ca.pem without its key would be refused above. */
	if (write_pem(kp, 0600, NULL, key, err) < 0 || write_pem(cp, 0644, x, NULL, err) < 0)
		return clbsd_err_prefix(err, "local CA");
	return 0;
}

void ingress_ca_leaf_paths(const char *ca_dir, const char *name, char **cert, char **key)
{
	bool wild = name[0] == '*';
	const char *rest = wild ? name + 1 : name;
	*cert = xasprintf("%s/leaves/%s%s.pem", ca_dir, wild ? "_wildcard" : "", rest);
	*key = xasprintf("%s/leaves/%s%s.key", ca_dir, wild ? "_wildcard" : "", rest);
}

/* The leaf names exactly `name` in its SAN (and nothing else). */
static bool san_is(X509 *x, const char *name)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (!gens)
		return false;
	bool ok = sk_GENERAL_NAME_num(gens) == 1;
	if (ok) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
		ok = g->type == GEN_DNS &&
		     (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(name) &&
		     memcmp(ASN1_STRING_get0_data(g->d.dNSName), name, strlen(name)) == 0;
	}
	GENERAL_NAMES_free(gens);
	return ok;
}

static bool leaf_usable(const char *cert_path, const char *key_path, X509 *ca, EVP_PKEY *ca_key,
			const char *name)
{
	autox509 X509 *x = read_cert(cert_path);
	autopkey EVP_PKEY *k = read_key(key_path);
	if (!x || !k)
		return false;
	bool ok = X509_check_private_key(x, k) == 1 && X509_verify(x, ca_key) == 1 &&
		  X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) == 0 &&
		  san_is(x, name);
	/* Valid now, and for more than the renewal margin. */
	time_t later = time(NULL) + (time_t)INGRESS_CA_RENEW_DAYS * 86400;
	ok = ok && X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
	     X509_cmp_time(X509_get0_notAfter(x), &later) > 0;
	ERR_clear_error();
	return ok;
}

int ingress_ca_leaf(const char *ca_dir, const char *name, bool *issued, struct clbsd_err *err)
{
	char why[256];
	if (!ingress_domain_check(name, why, sizeof(why)))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "local CA: %s", why);
	int r = ingress_ca_ensure(ca_dir, err);
	if (r < 0)
		return r;
	autox509 X509 *ca = NULL;
	autopkey EVP_PKEY *ca_key = NULL;
	r = ca_paths_load(ca_dir, &ca, &ca_key, err);
	if (r < 0)
		return r;
	autofree char *cert_path = NULL, *key_path = NULL;
	ingress_ca_leaf_paths(ca_dir, name, &cert_path, &key_path);
	if (leaf_usable(cert_path, key_path, ca, ca_key, name)) {
		if (issued)
			*issued = false;
		return 0;
	}
	autofree char *leaves = xasprintf("%s/leaves", ca_dir);
	if (fs_mkdir_p(leaves, 0700, err) < 0)
		return clbsd_err_prefix(err, "local CA");
	autopkey EVP_PKEY *key = EVP_EC_gen("P-256");
	if (!key)
		return ssl_fail(err, "local CA: generate key");
	autox509 X509 *x = new_cert(key, name, NULL, INGRESS_CA_LEAF_DAYS);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	autofree char *san = xasprintf("DNS:%s", name);
	if (add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE", err) < 0 ||
	    add_ext(x, ca, NID_key_usage, "critical,digitalSignature", err) < 0 ||
	    add_ext(x, ca, NID_ext_key_usage, "serverAuth", err) < 0 ||
	    add_ext(x, ca, NID_subject_alt_name, san, err) < 0 ||
	    add_ext(x, ca, NID_subject_key_identifier, "hash", err) < 0 ||
	    add_ext(x, ca, NID_authority_key_identifier, "keyid:always", err) < 0)
		return clbsd_err_prefix(err, "local CA: leaf for %s", name);
	if (!X509_sign(x, ca_key, EVP_sha256()))
		return ssl_fail(err, "local CA: sign leaf");
	if (write_pem(key_path, 0600, NULL, key, err) < 0 ||
	    write_pem(cert_path, 0644, x, NULL, err) < 0)
		return clbsd_err_prefix(err, "local CA: leaf for %s", name);
	if (issued)
		*issued = true;
	return 0;
}

int ingress_ca_ensure_routes(const struct ingress_settings *s, const struct ingress_route *routes,
			     size_t n, struct clbsd_err *err)
{
	if (s->tls_mode != INGRESS_TLS_AUTO || s->n_tls_listen == 0)
		return 0;
	if (!s->ca_dir)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "local CA: no CA directory");
	int issued = 0;
	for (size_t i = 0; i < n; i++) {
		if (routes[i].tls_cert)
			continue;
		for (size_t j = 0; j < routes[i].n_domains; j++) {
			bool now = false;
			if (ingress_ca_leaf(s->ca_dir, routes[i].domains[j], &now, err) < 0)
				return clbsd_err_prefix(err, "container %s", routes[i].service);
			issued += now;
		}
	}
	return issued;
}
