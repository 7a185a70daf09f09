/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manager: the endpoints of the embedded default configuration (https: server, ldap: client,
 * truststore: authority) in a scratch state directory. Start-up and bootstrap (self-signed,
 * files kept aside), installs of every kind and their refusals (checked as errno, code and a
 * word of the message, with every file of the state directory compared byte for byte before
 * and after), pending CSR keys (pairing, limit, restart, more files than kept), deletes,
 * Renew/Rekey CSRs, reload, and CSRs from two threads while a change publishes and a reader
 * holds and reads snapshots. Re-enrolment (issue #6): pins of the current and pending keys,
 * self-signed renewal for the same key, the switch to a pending key, and a bootstrap that keeps
 * the key of a self-signed certificate refused only for its dates. Whether an endpoint changed is
 * told by its snapshot pointer, which every change replaces; pending keys by their files.
 * Certificates are checked and made with OpenSSL directly, independent of the code under test.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "manager.h"
#include "store/store-internal.h"
#include "store/store.h"
#include "testutil.h"
#include "util/limits.h"

#define HOSTNAME "bmc.example.com"

/* ---- helpers (plain libc and OpenSSL, never the code under test) ---- */

static void file_put(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void file_put_str(const char *path, const char *s)
{
    file_put(path, s, strlen(s), 0600);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Names in dir that start with prefix. */
static size_t dir_count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The one name in dir that starts with prefix (malloc'd full path); fails unless exactly one. */
static char *dir_find_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    char *found = NULL;
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            assert_null(found);
            found = tu_strf("%s/%s", dir, de->d_name);
        }
    }
    closedir(d);
    assert_non_null(found);
    return found;
}

static char *str_cat(const char *a, const char *b)
{
    return tu_strf("%s%s", a, b);
}

static char *fixture_str(const char *name)
{
    size_t len;
    return (char *)fixture_read(name, &len);
}

static char *fixture_cat(const char *a, const char *b)
{
    char *x = fixture_str(a), *y = fixture_str(b);
    char *r = str_cat(x, y);
    free(x);
    free(y);
    return r;
}

static char *bio_take(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    assert_true(n > 0);
    char *s = strndup(p, (size_t)n);
    assert_non_null(s);
    BIO_free(b);
    return s;
}

static char *pem_of_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    return bio_take(b);
}

static X509 *cert_of_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    assert_non_null(b);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static X509 *cert_of_file(const char *path)
{
    char *pem = tu_file_get(path, NULL);
    assert_non_null(pem);
    X509 *x = cert_of_pem(pem);
    free(pem);
    return x;
}

/* The private key in a file (the first one, wherever it is among certificates). */
static EVP_PKEY *key_of_file(const char *path)
{
    char *pem = tu_file_get(path, NULL);
    assert_non_null(pem);
    const char *begin = strstr(pem, "-----BEGIN PRIVATE KEY-----");
    assert_non_null(begin);
    BIO *b = BIO_new_mem_buf(begin, -1);
    assert_non_null(b);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(k);
    return k;
}

static X509_REQ *csr_of_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    assert_non_null(b);
    X509_REQ *x = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    /* Proof of possession: the request is signed by the key it carries. */
    assert_int_equal(X509_REQ_verify(x, X509_REQ_get0_pubkey(x)), 1);
    return x;
}

/*
 * A certificate for pub (public key is enough), signed by issuer/issuer_key (NULL: self-signed
 * with pub, which must then be a private key). Validity from now + nb_days to now + na_days.
 * Subject OU=manager, the default KeyUsage, no AuthorityKeyIdentifier, SHA-384.
 */
static X509 *cert_make(EVP_PKEY *pub, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       bool is_ca, const char *eku, const char *san, long nb_days, long na_days)
{
    return tu_cert_make(&(const struct tu_cert_spec){ .key = pub,
                                                      .cn = cn,
                                                      .ou = "manager",
                                                      .issuer = issuer,
                                                      .issuer_key = issuer_key,
                                                      .is_ca = is_ca,
                                                      .eku = eku,
                                                      .san = san,
                                                      .md = EVP_sha384(),
                                                      .nb_days = nb_days,
                                                      .na_days = na_days });
}

/*
 * The CA that signs what the tests' CSRs ask for. Its own P-384 key, not testutil's fixture
 * keys: those include an RSA key, and RSA key generation is slow under valgrind.
 */
static X509 *test_ca;
static EVP_PKEY *test_ca_key;

/* A certificate from the test CA for the key of csr_pem, as PEM. */
static char *cert_for_csr(const char *csr_pem, const char *cn)
{
    X509_REQ *req = csr_of_pem(csr_pem);
    X509 *x = cert_make(X509_REQ_get0_pubkey(req), cn, test_ca, test_ca_key, false,
                        "serverAuth,clientAuth", "DNS:csr.example.com", -1, 90);
    char *pem = pem_of_cert(x);
    X509_free(x);
    X509_REQ_free(req);
    return pem;
}

static int group_setup(void **state)
{
    (void)state;
    test_ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!test_ca_key) {
        return -1;
    }
    test_ca = cert_make(test_ca_key, "manager test CA", NULL, NULL, true, NULL, NULL, -1, 3650);
    (void)umask(022);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(test_ca);
    test_ca = NULL;
    EVP_PKEY_free(test_ca_key);
    test_ca_key = NULL;
    return 0;
}

/* ---- the manager under test ---- */

struct ctx {
    char *root;  /* scratch directory */
    char *state; /* root/state: the state directory */
    struct config *cfg;
    struct manager *m;
};

static void ctx_init(struct ctx *c, const char *tag)
{
    *c = (struct ctx){ .root = scratch_dir(tag) };
    c->state = tu_strf("%s/state", c->root);
    assert_int_equal(config_new_default(c->state, &c->cfg), 0);
}

static struct config_endpoint *ctx_cfg_ep(struct ctx *c, const char *name)
{
    size_t i = 0;
    while (i < c->cfg->n_endpoints && strcmp(c->cfg->endpoints[i].name, name) != 0) {
        i++;
    }
    assert_true(i < c->cfg->n_endpoints);
    return &c->cfg->endpoints[i];
}

static void ctx_start(struct ctx *c)
{
    struct certd_err err = { 0 };
    assert_int_equal(manager_new(c->cfg, NULL, NULL, HOSTNAME, &c->m), 0);
    int r = manager_start(c->m, &err);
    if (r < 0) {
        fail_msg("manager_start: %d %s", r, err.msg);
    }
}

static void ctx_restart(struct ctx *c)
{
    c->m = manager_free(c->m);
    ctx_start(c);
}

static void ctx_done(struct ctx *c)
{
    c->m = manager_free(c->m);
    c->cfg = config_free(c->cfg);
    free(c->state);
    scratch_rm(c->root);
}

static struct endpoint *ep_get(struct ctx *c, const char *name)
{
    struct endpoint *ep = manager_endpoint(c->m, name);
    assert_non_null(ep);
    return ep;
}

static char *ep_file(struct ctx *c, const char *name, const char *file)
{
    return tu_strf("%s/%s/%s", c->state, name, file);
}

/* A reference to the current snapshot of endpoint name; the caller drops it. */
static struct ep_snapshot *snap(struct ctx *c, const char *name)
{
    return endpoint_snapshot(ep_get(c, name));
}

/*
 * Whether name still publishes before (a reference the caller holds): every change publishes a
 * new snapshot (manager.h), so the same pointer means no change since.
 */
static bool is_unchanged(struct ctx *c, const char *name, const struct ep_snapshot *before)
{
    struct ep_snapshot *s = snap(c, name);
    bool same = s == before;
    ep_snapshot_unref(s);
    return same;
}

/* Pending key files ("<seq>.key") of endpoint name: a pending key is kept exactly as its file. */
static size_t n_pending(struct ctx *c, const char *name)
{
    char *dir = ep_file(c, name, "pending");
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".key") == 0) {
            n++;
        }
    }
    closedir(d);
    free(dir);
    return n;
}

static size_t n_certs(struct ctx *c, const char *name)
{
    struct ep_snapshot *s = endpoint_snapshot(ep_get(c, name));
    size_t n = s->n;
    ep_snapshot_unref(s);
    return n;
}

static int install(struct ctx *c, const char *name, const char *data, const char *replace_id,
                   struct manager_change *ch, struct certd_err *err)
{
    return manager_install(c->m, ep_get(c, name), span_from_str(data), replace_id, ch, err);
}

static void install_ok(struct ctx *c, const char *name, const char *data, const char *replace_id,
                       struct manager_change *ret)
{
    struct manager_change ch = { .id = "" };
    struct certd_err err = { 0 };
    int r = install(c, name, data, replace_id, &ch, &err);
    if (r < 0) {
        fail_msg("install into %s: %d %s: %s", name, r, err_code_name(err.code), err.msg);
    }
    if (ret) {
        *ret = ch;
    }
}

static char *csr_ok(struct ctx *c, const char *name, const struct key_spec *spec)
{
    const struct csr_request req = { .common_name = "csr.example.com" };
    struct certd_err err = { 0 };
    char *pem = NULL;
    int r = manager_generate_csr(c->m, ep_get(c, name), spec, &req, &pem, &err);
    if (r < 0) {
        fail_msg("generate_csr: %d %s", r, err.msg);
    }
    assert_non_null(pem);
    return pem;
}

static const struct key_spec spec_p256 = { .alg = KEY_ALG_EC, .bits = 256, .curve = "P-256" };
static const struct key_spec spec_p384 = { .alg = KEY_ALG_EC, .bits = 384, .curve = "P-384" };

static void assert_err(int r, const struct certd_err *err, int want_r, enum certd_errc want_code,
                       const char *word)
{
    if (r != want_r || err->code != want_code || !strstr(err->msg, word)) {
        fail_msg("got %d %s \"%s\", want %d %s with \"%s\"", r, err_code_name(err->code), err->msg,
                 want_r, err_code_name(want_code), word);
    }
}

/* Every regular file and link under a directory, with its content, to compare byte for byte. */
#define TREE_MAX 128
struct tree {
    size_t n;
    char *path[TREE_MAX];
    char *data[TREE_MAX];
    size_t len[TREE_MAX];
    mode_t mode[TREE_MAX];
};
static struct tree *tree_cur;

static int tree_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    struct tree *t = tree_cur;
    if (flag == FTW_D || flag == FTW_DP) {
        return 0;
    }
    assert_true(t->n < TREE_MAX);
    t->path[t->n] = strdup(path);
    t->mode[t->n] = st->st_mode;
    if (flag == FTW_SL) {
        char buf[4096];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);
        assert_true(n >= 0);
        t->data[t->n] = strndup(buf, (size_t)n);
        t->len[t->n] = (size_t)n;
    } else {
        t->data[t->n] = tu_file_get(path, &t->len[t->n]);
    }
    t->n++;
    return 0;
}

static void tree_take(const char *dir, struct tree *t)
{
    *t = (struct tree){ .n = 0 };
    tree_cur = t;
    assert_int_equal(nftw(dir, tree_add, 16, FTW_PHYS), 0);
    tree_cur = NULL;
}

static void tree_assert_same(const struct tree *a, const struct tree *b)
{
    for (size_t i = 0; i < a->n; i++) {
        bool found = false;
        for (size_t j = 0; j < b->n && !found; j++) {
            if (strcmp(a->path[i], b->path[j]) == 0) {
                found = true;
                if (a->len[i] != b->len[j] || memcmp(a->data[i], b->data[j], a->len[i]) != 0) {
                    fail_msg("%s changed", a->path[i]);
                }
                assert_int_equal(a->mode[i], b->mode[j]);
            }
        }
        if (!found) {
            fail_msg("%s is gone", a->path[i]);
        }
    }
    if (a->n != b->n) {
        fail_msg("%zu files before, %zu after", a->n, b->n);
    }
}

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->path[i]);
        free(t->data[i]);
    }
    t->n = 0;
}

/* The SAN of x as "DNS:a,IP:b" sorted by nothing: in certificate order. */
static bool cert_has_dns(X509 *x, const char *name)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(name) &&
            memcmp(ASN1_STRING_get0_data(g->d.dNSName), name, strlen(name)) == 0) {
            found = true;
        }
    }
    GENERAL_NAMES_free(gens);
    return found;
}

static bool cert_has_ip(X509 *x, const unsigned char *ip, int len)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == len &&
            memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, (size_t)len) == 0) {
            found = true;
        }
    }
    GENERAL_NAMES_free(gens);
    return found;
}

static void cert_assert_cn(X509 *x, const char *cn)
{
    char buf[256];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, cn);
}

/* x is a self-signed certificate for the host name: what bootstrap and a server delete make. */
static void assert_selfsigned_for_host(X509 *x)
{
    /* Issued by itself (names, key identifiers) and its signature verifies with its own key. */
    assert_int_equal(X509_self_signed(x, 1), 1);
    cert_assert_cn(x, HOSTNAME);
}

/* The public key of a CSR (PEM) equals key's. */
static bool csr_is_for(const char *csr_pem, const EVP_PKEY *key)
{
    X509_REQ *req = csr_of_pem(csr_pem);
    bool is_for = EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) == 1;
    X509_REQ_free(req);
    return is_for;
}

/* The key endpoint name uses now is the key of csr_pem (a pending key was paired). */
static void assert_key_of_csr(struct ctx *c, const char *name, const char *csr_pem)
{
    struct ep_snapshot *s = snap(c, name);
    assert_int_equal(s->n, 1);
    assert_true(csr_is_for(csr_pem, s->key));
    ep_snapshot_unref(s);
}

/* Set an endpoint's names (the configuration owns them). */
static void cfg_set_names(struct config_endpoint *ce, const char *a, const char *b)
{
    ce->names = calloc(2, sizeof(char *));
    assert_non_null(ce->names);
    ce->names[0] = strdup(a);
    ce->names[1] = strdup(b);
    ce->n_names = 2;
}

/* A server snapshot must hold what the files hold, and the files must hold a matching pair. */
static void assert_https_files_match(struct ctx *c)
{
    char *cert_path = ep_file(c, "https", "cert.pem"), *key_path = ep_file(c, "https", "key.pem");
    X509 *x = cert_of_file(cert_path);
    EVP_PKEY *k = key_of_file(key_path);
    struct ep_snapshot *s = endpoint_snapshot(ep_get(c, "https"));

    assert_int_equal(s->n, 1);
    assert_int_equal(X509_check_private_key(x, k), 1);
    assert_int_equal(X509_cmp(x, s->entries[0].cert), 0);
    assert_int_equal(EVP_PKEY_eq(k, s->key), 1);
    assert_int_equal(file_mode(key_path), 0600);
    assert_int_equal(file_mode(cert_path), 0644);
    /* What Redfish shows is the certificate, never the key. */
    assert_null(strstr(s->entries[0].pem, "PRIVATE KEY"));
    assert_non_null(strstr(s->entries[0].pem, "BEGIN CERTIFICATE"));
    ep_snapshot_unref(s);
    EVP_PKEY_free(k);
    X509_free(x);
    free(cert_path);
    free(key_path);
}

/* ---- start-up and bootstrap ---- */

static void test_start_bootstraps_server(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, "mgr-boot");
    cfg_set_names(ctx_cfg_ep(&c, "https"), "bmc.local", "192.0.2.7");
    ctx_start(&c);

    assert_int_equal(manager_n_endpoints(c.m), 3);
    assert_null(manager_endpoint(c.m, "nope"));
    assert_int_equal(endpoint_type(ep_get(&c, "https")), ENDPOINT_SERVER);
    assert_int_equal(endpoint_type(ep_get(&c, "ldap")), ENDPOINT_CLIENT);
    assert_int_equal(endpoint_type(ep_get(&c, "truststore")), ENDPOINT_AUTHORITY);
    assert_string_equal(endpoint_name(manager_endpoint_at(c.m, 0)), "https");

    struct ep_snapshot *s = endpoint_snapshot(ep_get(&c, "https"));
    assert_int_equal(s->n, 1);
    assert_selfsigned_for_host(s->entries[0].cert);
    assert_string_equal(s->entries[0].id, MANAGER_SINGLE_ID);
    assert_non_null(ep_snapshot_find(s, "1"));
    assert_null(ep_snapshot_find(s, "2"));
    X509 *x = s->entries[0].cert;
    cert_assert_cn(x, HOSTNAME);
    assert_true(cert_has_dns(x, HOSTNAME));
    assert_true(cert_has_dns(x, "bmc.local"));
    const unsigned char ip[4] = { 192, 0, 2, 7 };
    assert_true(cert_has_ip(x, ip, 4));
    /* Self-signed: its own key verifies it; EC P-256, the default new_key. */
    assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
    assert_true(EVP_PKEY_is_a(s->key, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(s->key), 256);
    assert_int_equal(X509_get_extended_key_usage(x) & XKU_SSL_SERVER, XKU_SSL_SERVER);
    assert_string_equal(s->entries[0].info->subject.common_name, HOSTNAME);
    ep_snapshot_unref(s);
    assert_https_files_match(&c);

    /* Nothing was there before: nothing kept aside. */
    char *dir = ep_file(&c, "https", "");
    assert_int_equal(dir_count_prefix(dir, "cert.pem.corrupt-"), 0);
    free(dir);

    /* Client and authority endpoints may be empty; they are. */
    assert_int_equal(n_certs(&c, "ldap"), 0);
    assert_int_equal(n_certs(&c, "truststore"), 0);
    s = endpoint_snapshot(ep_get(&c, "ldap"));
    assert_null(s->key);
    assert_non_null(s->chain);
    assert_int_equal(sk_X509_num(s->chain), 0);
    ep_snapshot_unref(s);
    char *ldap_cert = ep_file(&c, "ldap", "cert.pem");
    assert_false(file_exists(ldap_cert));
    free(ldap_cert);
    char *pending = ep_file(&c, "https", "pending");
    assert_int_equal(file_mode(pending), 0700);
    free(pending);
    ctx_done(&c);
}

static void test_restart_loads_same(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, "mgr-restart");
    ctx_start(&c);
    char *cert_path = ep_file(&c, "https", "cert.pem"), *key_path = ep_file(&c, "https", "key.pem");
    size_t cert_len, key_len;
    char *cert = tu_file_get(cert_path, &cert_len), *key = tu_file_get(key_path, &key_len);
    struct ep_snapshot *before = endpoint_snapshot(ep_get(&c, "https"));

    ctx_restart(&c);
    struct ep_snapshot *after = endpoint_snapshot(ep_get(&c, "https"));
    assert_int_equal(X509_cmp(before->entries[0].cert, after->entries[0].cert), 0);
    assert_int_equal(EVP_PKEY_eq(before->key, after->key), 1);
    /* Loaded, not made again: both files are byte for byte what they were, nothing aside. */
    char *dir = ep_file(&c, "https", "");
    assert_int_equal(dir_count_prefix(dir, "cert.pem.corrupt-"), 0);
    free(dir);
    size_t len;
    char *now = tu_file_get(cert_path, &len);
    assert_int_equal(len, cert_len);
    assert_memory_equal(now, cert, len);
    free(now);
    now = tu_file_get(key_path, &len);
    assert_int_equal(len, key_len);
    assert_memory_equal(now, key, len);
    free(now);
    ep_snapshot_unref(before);
    ep_snapshot_unref(after);
    free(cert);
    free(key);
    free(cert_path);
    free(key_path);
    ctx_done(&c);
}

/* What is wrong with the files at start; every case must end in a new self-signed pair. */
enum spoil {
    SPOIL_GARBAGE_CERT,
    SPOIL_MISMATCHED_KEY,
    SPOIL_MISSING_KEY,
    SPOIL_EXPIRED_REJECT,
    SPOIL_CERT_IS_DIR,
    SPOIL_COMBINED_GARBAGE,
    SPOIL_COMBINED_NO_KEY,
};

/* The combined https file (cert == key) holds a matching pair, 0600, and the snapshot has it. */
static void assert_https_combined_match(struct ctx *c)
{
    char *path = ep_file(c, "https", "cert.pem");
    X509 *x = cert_of_file(path);
    EVP_PKEY *k = key_of_file(path);
    struct ep_snapshot *s = endpoint_snapshot(ep_get(c, "https"));

    assert_int_equal(s->n, 1);
    assert_int_equal(X509_check_private_key(x, k), 1);
    assert_int_equal(X509_cmp(x, s->entries[0].cert), 0);
    assert_int_equal(EVP_PKEY_eq(k, s->key), 1);
    assert_int_equal(file_mode(path), 0600);
    assert_null(strstr(s->entries[0].pem, "PRIVATE KEY"));
    ep_snapshot_unref(s);
    EVP_PKEY_free(k);
    X509_free(x);
    free(path);
}

static void test_bootstrap_keeps_bad_files_aside(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum spoil spoil;
        bool is_key_aside; /* a separate key file existed and must be kept aside too */
        bool is_combined;  /* cert == key: one file */
    } cases[] = {
        { "garbage certificate", SPOIL_GARBAGE_CERT, true, false },
        { "mismatched key", SPOIL_MISMATCHED_KEY, true, false },
        { "missing key", SPOIL_MISSING_KEY, false, false },
        { "expired certificate, policy reject", SPOIL_EXPIRED_REJECT, true, false },
        { "unreadable certificate (a directory)", SPOIL_CERT_IS_DIR, true, false },
        { "corrupt combined file", SPOIL_COMBINED_GARBAGE, false, true },
        { "combined file without its key", SPOIL_COMBINED_NO_KEY, false, true },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct ctx c;
        print_message("case: %s\n", cases[i].name);
        ctx_init(&c, "mgr-aside");
        if (cases[i].spoil == SPOIL_EXPIRED_REJECT) {
            ctx_cfg_ep(&c, "https")->expired = VALIDITY_REJECT;
        }
        if (cases[i].is_combined) {
            struct config_endpoint *ce = ctx_cfg_ep(&c, "https");
            free(ce->key);
            ce->key = strdup(ce->cert);
        }
        ctx_start(&c);
        char *dir = ep_file(&c, "https", "");
        char *cert_path = ep_file(&c, "https", "cert.pem");
        char *key_path = ep_file(&c, "https", "key.pem");
        char *marker = NULL;
        struct ep_snapshot *old = endpoint_snapshot(ep_get(&c, "https"));
        char *cert_bytes = NULL, *key_bytes = NULL;
        if (cases[i].is_combined) {
            assert_https_combined_match(&c);
            assert_false(file_exists(key_path));
        }

        switch (cases[i].spoil) {
        case SPOIL_GARBAGE_CERT:
        case SPOIL_COMBINED_GARBAGE:
            cert_bytes = strdup("-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
            break;
        case SPOIL_MISMATCHED_KEY:
            key_bytes = fixture_str("other.key");
            break;
        case SPOIL_MISSING_KEY:
            assert_int_equal(unlink(key_path), 0);
            break;
        case SPOIL_EXPIRED_REJECT: {
            char *both = fixture_str("expired.pem");
            char *k = strstr(both, "-----BEGIN PRIVATE KEY-----");
            assert_non_null(k);
            key_bytes = strdup(k);
            *k = '\0';
            cert_bytes = both;
            break;
        }
        case SPOIL_CERT_IS_DIR:
            /* Unreadable as a certificate, whoever runs the test (root reads any file). */
            assert_int_equal(unlink(cert_path), 0);
            assert_int_equal(mkdir(cert_path, 0700), 0);
            marker = tu_strf("%s/marker", cert_path);
            file_put_str(marker, "kept\n");
            break;
        case SPOIL_COMBINED_NO_KEY:
            /* A valid certificate alone: a combined file must hold its key too. */
            cert_bytes = fixture_str("server-ec.pem");
            break;
        }
        if (cert_bytes) {
            file_put_str(cert_path, cert_bytes);
        }
        if (key_bytes) {
            file_put_str(key_path, key_bytes);
        }
        bool is_dir = cases[i].spoil == SPOIL_CERT_IS_DIR;
        char *cert_before = is_dir ? NULL : tu_file_get(cert_path, NULL);
        char *key_before = tu_file_get(key_path, NULL);

        ctx_restart(&c);
        struct ep_snapshot *now = endpoint_snapshot(ep_get(&c, "https"));
        assert_selfsigned_for_host(now->entries[0].cert);
        assert_int_not_equal(X509_cmp(old->entries[0].cert, now->entries[0].cert), 0);
        assert_int_equal(EVP_PKEY_eq(old->key, now->key), 0);
        if (cases[i].is_combined) {
            assert_https_combined_match(&c);
        } else {
            assert_https_files_match(&c);
        }

        /* Kept aside byte for byte (a directory with what it held), never deleted. */
        char *aside = dir_find_prefix(dir, "cert.pem.corrupt-");
        if (is_dir) {
            struct stat st;
            assert_int_equal(lstat(aside, &st), 0);
            assert_true(S_ISDIR(st.st_mode));
            char *kept_marker = tu_strf("%s/marker", aside);
            char *kept = tu_file_get(kept_marker, NULL);
            assert_string_equal(kept, "kept\n");
            free(kept);
            free(kept_marker);
        } else {
            char *kept = tu_file_get(aside, NULL);
            assert_string_equal(kept, cert_before);
            free(kept);
        }
        /* "<file>.corrupt-yyyymmddThhmmssZ" */
        const char *stamp = strstr(aside, ".corrupt-") + strlen(".corrupt-");
        assert_int_equal(strlen(stamp), 16);
        assert_int_equal(stamp[8], 'T');
        assert_int_equal(stamp[15], 'Z');
        free(aside);
        if (cases[i].is_key_aside) {
            aside = dir_find_prefix(dir, "key.pem.corrupt-");
            char *kept = tu_file_get(aside, NULL);
            assert_string_equal(kept, key_before);
            free(kept);
            free(aside);
        } else {
            assert_int_equal(dir_count_prefix(dir, "key.pem.corrupt-"), 0);
        }
        if (cases[i].is_combined) {
            /* One file: nothing else was made beside it. */
            assert_false(file_exists(key_path));
        }
        ep_snapshot_unref(now);
        ep_snapshot_unref(old);
        free(marker);
        free(cert_bytes);
        free(key_bytes);
        free(cert_before);
        free(key_before);
        free(cert_path);
        free(key_path);
        free(dir);
        ctx_done(&c);
    }
}

static void test_start_refuses_unsafe_state_dir(void **state)
{
    (void)state;
    struct ctx c;
    struct certd_err err = { 0 };
    ctx_init(&c, "mgr-unsafe");
    assert_int_equal(mkdir(c.state, 0700), 0);
    /* chmod, not the umask: group- and world-writable; root is refused as well. */
    assert_int_equal(chmod(c.state, 0777), 0);
    assert_int_equal(manager_new(c.cfg, NULL, NULL, HOSTNAME, &c.m), 0);
    assert_err(manager_start(c.m, &err), &err, -EPERM, CERTD_E_STORAGE, "not safe");
    ctx_done(&c);
}

/* ---- installs ---- */

static void test_install_replaces(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-install");
    ctx_start(&c);
    struct ep_snapshot *s0 = snap(&c, "https");

    /* EC with its chain, the key first: it replaces the self-signed one, with its own key. */
    char *ec = fixture_str("server-key-first.pem");
    install_ok(&c, "https", ec, NULL, &ch);
    assert_string_equal(ch.id, "1");
    assert_int_equal(ch.warning[0], '\0');
    assert_false(is_unchanged(&c, "https", s0));
    assert_https_files_match(&c);
    struct ep_snapshot *s = endpoint_snapshot(ep_get(&c, "https"));
    struct ep_snapshot *s1 = ep_snapshot_ref(s);
    assert_int_equal(sk_X509_num(s->chain), 1);
    X509 *srv = fixture_cert("server-ec.pem");
    EVP_PKEY *srv_key = fixture_key("server-ec.key");
    assert_int_equal(X509_cmp(s->entries[0].cert, srv), 0);
    assert_int_not_equal(X509_cmp(s->entries[0].cert, s0->entries[0].cert), 0);
    assert_int_equal(EVP_PKEY_eq(s->key, srv_key), 1);
    X509_free(srv);
    EVP_PKEY_free(srv_key);
    ep_snapshot_unref(s0);
    assert_string_equal(s->entries[0].info->subject.common_name, "server.example.com");
    ep_snapshot_unref(s);
    /* The chain is in the certificate file, after the leaf. */
    char *cert_path = ep_file(&c, "https", "cert.pem");
    char *cert = tu_file_get(cert_path, NULL);
    char *second = strstr(strstr(cert, "-----END CERTIFICATE-----"), "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    X509 *inter = cert_of_pem(second);
    X509 *want = fixture_cert("int-ca.pem");
    assert_int_equal(X509_cmp(inter, want), 0);
    assert_null(strstr(cert, "PRIVATE KEY"));
    X509_free(inter);
    X509_free(want);
    free(cert);

    /* RSA, the certificate then a traditional "RSA PRIVATE KEY": replaces certificate 1. */
    char *rsa = fixture_cat("server-rsa.pem", "server-rsa.key");
    install_ok(&c, "https", rsa, "1", &ch);
    assert_false(is_unchanged(&c, "https", s1));
    assert_https_files_match(&c);
    s = endpoint_snapshot(ep_get(&c, "https"));
    assert_true(EVP_PKEY_is_a(s->key, "RSA"));
    assert_int_equal(sk_X509_num(s->chain), 0);
    assert_int_not_equal(X509_cmp(s->entries[0].cert, s1->entries[0].cert), 0);
    ep_snapshot_unref(s);
    ep_snapshot_unref(s1);
    /* Written as PKCS#8 whatever the upload used. */
    char *key_path = ep_file(&c, "https", "key.pem");
    char *key = tu_file_get(key_path, NULL);
    assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
    free(key);

    /* A restart serves what was installed. */
    ctx_restart(&c);
    assert_https_files_match(&c);
    s = endpoint_snapshot(ep_get(&c, "https"));
    assert_true(EVP_PKEY_is_a(s->key, "RSA"));
    ep_snapshot_unref(s);

    free(key_path);
    free(cert_path);
    free(ec);
    free(rsa);
    ctx_done(&c);
}

static void test_install_expired_warns(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-warn");
    ctx_start(&c);
    char *pem = fixture_str("expired.pem");
    install_ok(&c, "https", pem, NULL, &ch);
    assert_non_null(strstr(ch.warning, "expired"));
    free(pem);
    ctx_done(&c);
}

static void test_install_combined_file(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-combined");
    struct config_endpoint *ce = ctx_cfg_ep(&c, "ldap");
    free(ce->key);
    ce->key = strdup(ce->cert);
    ctx_start(&c);
    assert_int_equal(n_certs(&c, "ldap"), 0);

    char *pem = fixture_cat("client-ec384.pem", "client-ec384.key");
    install_ok(&c, "ldap", pem, NULL, &ch);
    assert_int_equal(n_certs(&c, "ldap"), 1);
    char *path = ep_file(&c, "ldap", "cert.pem");
    char *file = tu_file_get(path, NULL);
    /* The chain, then the key, in one file that holds a key: 0600. */
    char *cert_at = strstr(file, "-----BEGIN CERTIFICATE-----");
    char *key_at = strstr(file, "-----BEGIN PRIVATE KEY-----");
    assert_non_null(cert_at);
    assert_non_null(key_at);
    assert_true(cert_at < key_at);
    assert_int_equal(file_mode(path), 0600);
    X509 *x = cert_of_file(path);
    EVP_PKEY *k = key_of_file(path);
    assert_int_equal(X509_check_private_key(x, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);

    ctx_restart(&c);
    assert_int_equal(n_certs(&c, "ldap"), 1);
    bool changed = true;
    struct certd_err err = { 0 };
    assert_int_equal(manager_reload(c.m, ep_get(&c, "ldap"), &changed, &err), 0);
    assert_false(changed);
    free(file);
    free(path);
    free(pem);
    ctx_done(&c);
}

/* Cert and key in two directories: no journal spans them; a failure puts the key back. */
static void test_install_two_directories(void **state)
{
    (void)state;
    struct ctx c;
    struct certd_err err = { 0 };
    struct manager_change ch;
    ctx_init(&c, "mgr-twodirs");
    struct config_endpoint *ce = ctx_cfg_ep(&c, "https");
    free(ce->cert);
    free(ce->key);
    ce->cert = tu_strf("%s/certs/https.pem", c.root);
    ce->key = tu_strf("%s/private/https.key", c.root);
    ce->is_cert_given = ce->is_key_given = true;
    ctx_start(&c);
    assert_int_equal(file_mode(ce->key), 0600);
    assert_int_equal(file_mode(ce->cert), 0644);
    X509 *x = cert_of_file(ce->cert);
    EVP_PKEY *k = key_of_file(ce->key);
    assert_int_equal(X509_check_private_key(x, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);

    char *pem = fixture_str("server-ec-bundle.pem");
    install_ok(&c, "https", pem, NULL, &ch);
    x = cert_of_file(ce->cert);
    k = key_of_file(ce->key);
    assert_int_equal(X509_check_private_key(x, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);

    /* The certificate cannot be written (a directory stands in its place): the key is put back. */
    size_t key_len, len;
    char *key_before = tu_file_get(ce->key, &key_len);
    assert_int_equal(unlink(ce->cert), 0);
    assert_int_equal(mkdir(ce->cert, 0700), 0);
    char *rsa = fixture_cat("server-rsa.pem", "server-rsa.key");
    struct ep_snapshot *before = snap(&c, "https");
    int r = install(&c, "https", rsa, NULL, &ch, &err);
    assert_err(r, &err, -EISDIR, CERTD_E_STORAGE, "https.pem");
    char *key_after = tu_file_get(ce->key, &len);
    assert_int_equal(len, key_len);
    assert_memory_equal(key_after, key_before, len);
    assert_int_equal(file_mode(ce->key), 0600);
    assert_true(is_unchanged(&c, "https", before));
    ep_snapshot_unref(before);
    free(key_before);
    free(key_after);
    free(rsa);
    free(pem);
    ctx_done(&c);
}

/* ---- pending keys ---- */

static void test_install_pairs_pending_key(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-pair");
    ctx_start(&c);

    char *csr = csr_ok(&c, "https", &spec_p256);
    assert_int_equal(n_pending(&c, "https"), 1);
    char *pending = ep_file(&c, "https", "pending/1.key");
    assert_true(file_exists(pending));
    assert_int_equal(file_mode(pending), 0600);
    /* The pending key file holds the CSR's key. */
    EVP_PKEY *pk = key_of_file(pending);
    assert_true(csr_is_for(csr, pk));

    /* The answer to the CSR, without a key: paired with the pending key, which is consumed. */
    char *cert = cert_for_csr(csr, "csr.example.com");
    install_ok(&c, "https", cert, NULL, &ch);
    assert_int_equal(n_pending(&c, "https"), 0);
    assert_false(file_exists(pending));
    assert_https_files_match(&c);
    struct ep_snapshot *s = endpoint_snapshot(ep_get(&c, "https"));
    assert_int_equal(EVP_PKEY_eq(s->key, pk), 1);

    /* Consumed: the same certificate again has no pending key to go with it any more... */
    struct certd_err err = { 0 };
    char *other_csr = csr_ok(&c, "https", &spec_p256);
    char *other_pending = ep_file(&c, "https", "pending/2.key");
    assert_true(file_exists(other_pending));
    /* ...except the current key, which it is for: a Renew's answer pairs with it. */
    install_ok(&c, "https", cert, NULL, &ch);
    assert_false(is_unchanged(&c, "https", s));
    assert_key_of_csr(&c, "https", csr);
    assert_https_files_match(&c);
    /* The other CSR's key was not taken: it still waits. */
    assert_int_equal(n_pending(&c, "https"), 1);
    assert_true(file_exists(other_pending));
    ep_snapshot_unref(s);

    /* DER, for the second CSR's key. */
    char *cert2 = cert_for_csr(other_csr, "der.example.com");
    X509 *x2 = cert_of_pem(cert2);
    unsigned char *der = NULL;
    int der_len = i2d_X509(x2, &der);
    assert_true(der_len > 0);
    assert_int_equal(
        manager_install(c.m, ep_get(&c, "https"), span_make(der, (size_t)der_len), NULL, &ch, &err),
        0);
    assert_key_of_csr(&c, "https", other_csr);
    assert_int_equal(n_pending(&c, "https"), 0);
    assert_false(file_exists(other_pending));
    assert_https_files_match(&c);
    OPENSSL_free(der);
    X509_free(x2);
    free(cert2);
    free(other_csr);
    free(other_pending);
    EVP_PKEY_free(pk);
    free(cert);
    free(csr);
    free(pending);
    ctx_done(&c);
}

static void test_pending_limit_drops_oldest(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    char *csrs[MANAGER_PENDING_MAX + 1];
    ctx_init(&c, "mgr-limit");
    ctx_start(&c);

    for (size_t i = 0; i < ELEMENTSOF(csrs); i++) {
        csrs[i] = csr_ok(&c, "https", &spec_p256);
        assert_int_equal(n_pending(&c, "https"),
                         i + 1 < MANAGER_PENDING_MAX ? i + 1 : MANAGER_PENDING_MAX);
    }
    char *dir = ep_file(&c, "https", "pending");
    assert_int_equal(dir_count_prefix(dir, ""), MANAGER_PENDING_MAX + 2); /* with . and .. */
    char *first = ep_file(&c, "https", "pending/1.key");
    assert_false(file_exists(first));
    for (unsigned i = 2; i <= MANAGER_PENDING_MAX + 1; i++) {
        char *p = tu_strf("%s/%u.key", dir, i);
        assert_true(file_exists(p));
        free(p);
    }

    /* The oldest is gone: its certificate finds no key. */
    char *cert0 = cert_for_csr(csrs[0], "first.example.com");
    struct ep_snapshot *before = snap(&c, "https");
    assert_err(install(&c, "https", cert0, NULL, &ch, &err), &err, -EINVAL, CERTD_E_KEY_MISSING,
               "key");
    assert_true(is_unchanged(&c, "https", before));
    ep_snapshot_unref(before);
    /* The second is kept. */
    char *cert1 = cert_for_csr(csrs[1], "second.example.com");
    install_ok(&c, "https", cert1, NULL, &ch);
    assert_key_of_csr(&c, "https", csrs[1]);
    assert_int_equal(n_pending(&c, "https"), MANAGER_PENDING_MAX - 1);
    char *second = ep_file(&c, "https", "pending/2.key");
    assert_false(file_exists(second));

    free(second);
    free(cert0);
    free(cert1);
    free(first);
    free(dir);
    for (size_t i = 0; i < ELEMENTSOF(csrs); i++) {
        free(csrs[i]);
    }
    ctx_done(&c);
}

static void test_pending_survive_restart(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-survive");
    ctx_start(&c);
    char *a = csr_ok(&c, "https", &spec_p256);
    char *b = csr_ok(&c, "ldap", &spec_p384);
    char *d = csr_ok(&c, "https", &spec_p256);

    ctx_restart(&c);
    assert_int_equal(n_pending(&c, "https"), 2);
    assert_int_equal(n_pending(&c, "ldap"), 1);
    /* Numbering goes on after the highest: the next CSR does not overwrite a kept key. */
    char *e = csr_ok(&c, "https", &spec_p256);
    char *third = ep_file(&c, "https", "pending/3.key");
    assert_true(file_exists(third));
    assert_int_equal(n_pending(&c, "https"), 3);

    /* The keys were loaded: answers without a key pair with them. */
    char *cert = cert_for_csr(a, "a.example.com");
    install_ok(&c, "https", cert, NULL, &ch);
    assert_key_of_csr(&c, "https", a);
    assert_int_equal(n_pending(&c, "https"), 2);
    assert_https_files_match(&c);
    free(cert);
    cert = cert_for_csr(b, "b.example.com");
    install_ok(&c, "ldap", cert, NULL, &ch);
    assert_key_of_csr(&c, "ldap", b);
    assert_int_equal(n_pending(&c, "ldap"), 0);
    free(cert);

    /* A pending key file that was damaged is dropped at start, the others kept. */
    char *second = ep_file(&c, "https", "pending/2.key");
    file_put_str(second, "garbage");
    ctx_restart(&c);
    assert_int_equal(n_pending(&c, "https"), 1);
    assert_false(file_exists(second));
    assert_true(file_exists(third));
    cert = cert_for_csr(e, "e.example.com");
    install_ok(&c, "https", cert, NULL, &ch);
    assert_key_of_csr(&c, "https", e);
    assert_int_equal(n_pending(&c, "https"), 0);
    free(cert);

    free(second);
    free(third);
    free(a);
    free(b);
    free(d);
    free(e);
    ctx_done(&c);
}

/*
 * More pending key files on disk than are kept (a crash between writing a new one and dropping
 * the oldest, or files copied in): a start keeps the newest MANAGER_PENDING_MAX by number,
 * whatever the directory's order, and removes the older files.
 */
static void test_pending_load_keeps_newest(void **state)
{
    (void)state;
    enum { N = MANAGER_PENDING_MAX };
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    char *https_csrs[N], *ldap_csrs[N];
    ctx_init(&c, "mgr-newest");
    ctx_start(&c);
    for (size_t i = 0; i < N; i++) {
        https_csrs[i] = csr_ok(&c, "https", &spec_p256);
        ldap_csrs[i] = csr_ok(&c, "ldap", &spec_p256);
    }
    c.m = manager_free(c.m);

    /* https keeps 1..N; ldap's keys join them as N+1..2N, interleaved: https i -> 2i-1, ldap i ->
     * 2i. */
    for (size_t i = N; i > 0; i--) {
        char *from = ep_file(&c, "https", "pending");
        char *old_name = tu_strf("%s/%zu.key", from, i);
        char *new_name = tu_strf("%s/%zu.key", from, 2 * i - 1);
        assert_int_equal(rename(old_name, new_name), 0);
        char *ldap_dir = ep_file(&c, "ldap", "pending");
        char *ldap_name = tu_strf("%s/%zu.key", ldap_dir, i);
        char *to = tu_strf("%s/%zu.key", from, 2 * i);
        assert_int_equal(rename(ldap_name, to), 0);
        free(from);
        free(old_name);
        free(new_name);
        free(ldap_dir);
        free(ldap_name);
        free(to);
    }
    assert_int_equal(n_pending(&c, "https"), 2 * N);

    ctx_start(&c);
    /* The newest N numbers stay (N+1..2N), the older files are gone. */
    assert_int_equal(n_pending(&c, "https"), N);
    char *dir = ep_file(&c, "https", "pending");
    for (size_t k = 1; k <= 2 * N; k++) {
        char *p = tu_strf("%s/%zu.key", dir, k);
        if (file_exists(p) != (k > N)) {
            fail_msg("pending key %zu: %s", k, k > N ? "removed" : "kept");
        }
        free(p);
    }
    /* The numbering goes on after the highest. */
    char *next_csr = csr_ok(&c, "https", &spec_p256);
    char *next = tu_strf("%s/%d.key", dir, 2 * N + 1);
    assert_true(file_exists(next));
    free(next);
    /* That dropped the oldest kept one, N+1: now N+2..2N+1. */
    assert_int_equal(n_pending(&c, "https"), N);

    /* The kept keys load and pair: number k is https CSR (k+1)/2 when odd, ldap CSR k/2 else. */
    for (size_t k = N + 2; k <= 2 * N; k++) {
        const char *csr = k % 2 ? https_csrs[(k + 1) / 2 - 1] : ldap_csrs[k / 2 - 1];
        char *cert = cert_for_csr(csr, "newest.example.com");
        install_ok(&c, "https", cert, NULL, &ch);
        assert_key_of_csr(&c, "https", csr);
        free(cert);
    }
    /* A dropped one finds no key. */
    char *cert = cert_for_csr(https_csrs[0], "oldest.example.com");
    assert_err(install(&c, "https", cert, NULL, &ch, &err), &err, -EINVAL, CERTD_E_KEY_MISSING,
               "key");
    free(cert);
    assert_int_equal(n_pending(&c, "https"), 1);

    free(next_csr);
    free(dir);
    for (size_t i = 0; i < N; i++) {
        free(https_csrs[i]);
        free(ldap_csrs[i]);
    }
    ctx_done(&c);
}

static void test_generate_csr_refusals(void **state)
{
    (void)state;
    struct ctx c;
    struct certd_err err = { 0 };
    char *pem = NULL;
    const struct csr_request req = { .common_name = "x.example.com" };
    const struct csr_request bad = { .common_name = "x.example.com", .country = "USA" };
    const struct key_spec ed = { .alg = KEY_ALG_ED25519, .bits = 256, .curve = "" };
    ctx_init(&c, "mgr-csrbad");
    ctx_start(&c);

    assert_err(manager_generate_csr(c.m, ep_get(&c, "truststore"), &spec_p256, &req, &pem, &err),
               &err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS, "CA certificates");
    err_clear(&err);
    assert_err(manager_generate_csr(c.m, ep_get(&c, "https"), &ed, &req, &pem, &err), &err,
               -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "Ed25519");
    err_clear(&err);
    assert_err(manager_generate_csr(c.m, ep_get(&c, "https"), &spec_p256, &bad, &pem, &err), &err,
               -EINVAL, CERTD_E_FIELD_INVALID, "Country");
    assert_null(pem);
    /* No refused CSR leaves a pending key. */
    assert_int_equal(n_pending(&c, "https"), 0);
    char *dir = ep_file(&c, "https", "pending");
    assert_int_equal(dir_count_prefix(dir, ""), 2);
    free(dir);
    ctx_done(&c);
}

/* ---- refusals leave everything as it was ---- */

struct bad_upload {
    const char *name;
    const char *endpoint;
    const char *fixture, *fixture2; /* the upload: one fixture or two concatenated */
    const char *data;               /* or literal data */
    const char *replace_id;
    int r;
    enum certd_errc code;
    const char *word;
};

static void test_bad_uploads_change_nothing(void **state)
{
    (void)state;
    static const struct bad_upload cases[] = {
        { "garbage", "https", NULL, NULL, "this is no certificate\n", NULL, -EBADMSG,
          CERTD_E_INPUT_GARBAGE, "PEM" },
        { "empty", "https", NULL, NULL, " \n", NULL, -EINVAL, CERTD_E_INPUT_EMPTY, "empty" },
        { "truncated PEM", "https", NULL, NULL, "-----BEGIN CERTIFICATE-----\nMIIB\n", NULL,
          -EBADMSG, CERTD_E_PEM_TRUNCATED, "END" },
        { "key mismatch", "https", "server-mismatch.pem", NULL, NULL, NULL, -EKEYREJECTED,
          CERTD_E_KEY_MISMATCH, "match" },
        { "no key and no pending key", "https", "server-rsa.pem", NULL, NULL, NULL, -EINVAL,
          CERTD_E_KEY_MISSING, "key" },
        { "expired, policy reject", "https", "expired.pem", NULL, NULL, NULL, -EKEYEXPIRED,
          CERTD_E_CERT_EXPIRED, "expired" },
        { "encrypted key", "https", "server-enc-bundle.pem", NULL, NULL, NULL, -EKEYREJECTED,
          CERTD_E_KEY_ENCRYPTED, "encrypted" },
        { "weak key", "https", "rsa1024.pem", "rsa1024.key", NULL, NULL, -EKEYREJECTED,
          CERTD_E_KEY_WEAK, "1024" },
        { "reversed chain", "https", "server-chain-reversed.pem", NULL, NULL, NULL, -EINVAL,
          CERTD_E_CHAIN_ORDER, "first" },
        { "CA certificate into a server", "https", "ca-with-key.pem", NULL, NULL, NULL, -EINVAL,
          CERTD_E_KEY_USAGE_MISMATCH, "digitalSignature" },
        { "server-only certificate into a client", "ldap", "server-ec-bundle.pem", NULL, NULL, NULL,
          -EINVAL, CERTD_E_EKU_MISMATCH, "clientAuth" },
        { "replace an unknown id", "https", "server-ec-bundle.pem", NULL, NULL, "2", -ENOENT,
          CERTD_E_NOT_FOUND, "no certificate" },
        { "replace on an empty client", "ldap", "client-ec384.pem", "client-ec384.key", NULL, "1",
          -ENOENT, CERTD_E_NOT_FOUND, "no certificate" },
        { "leaf into an authority", "truststore", "server-ec.pem", NULL, NULL, NULL, -EINVAL,
          CERTD_E_NOT_CA, "CA" },
        { "key into an authority", "truststore", "ca-with-key.pem", NULL, NULL, NULL, -EPERM,
          CERTD_E_KEY_NOT_ALLOWED, "key" },
        { "duplicate into an authority", "truststore", "root-ca.pem", NULL, NULL, NULL, -EEXIST,
          CERTD_E_DUPLICATE, "already" },
        { "authority limit", "truststore", "ca-eleven.pem", NULL, NULL, NULL, -E2BIG,
          CERTD_E_LIMIT_REACHED, "10" },
        { "replace an unknown authority id", "truststore", "ca-noku.pem", NULL, NULL,
          "0000000000000000000000000000000000000000000000000000000000000000", -ENOENT,
          CERTD_E_NOT_FOUND, "no certificate" },
        { "CA without keyCertSign", "truststore", "ca-nokeycertsign.pem", NULL, NULL, NULL, -EINVAL,
          CERTD_E_CA_NO_KEYCERTSIGN, "keyCertSign" },
    };
    struct ctx c;
    struct tree before, after;
    ctx_init(&c, "mgr-bad");
    ctx_cfg_ep(&c, "https")->expired = VALIDITY_REJECT;
    ctx_start(&c);
    char *root = fixture_str("root-ca.pem");
    install_ok(&c, "truststore", root, NULL, NULL);
    free(root);
    /* Something installed on https and a pending key on ldap, so that more can go wrong. */
    char *srv = fixture_str("server-ec-bundle.pem");
    install_ok(&c, "https", srv, NULL, NULL);
    free(srv);
    char *csr = csr_ok(&c, "ldap", &spec_p256);
    free(csr);

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const struct bad_upload *t = &cases[i];
        struct certd_err err = { 0 };
        struct manager_change ch = { .id = "sentinel", .warning = "sentinel" };
        char *data;
        print_message("case: %s\n", t->name);

        if (t->fixture2) {
            data = fixture_cat(t->fixture, t->fixture2);
        } else if (t->fixture) {
            data = fixture_str(t->fixture);
        } else {
            data = strdup(t->data);
        }
        static const char *const names[] = { "https", "ldap", "truststore" };
        struct ep_snapshot *snaps[ELEMENTSOF(names)];
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
            snaps[k] = snap(&c, names[k]);
        }
        size_t pend = n_pending(&c, "ldap");
        tree_take(c.state, &before);

        int r = install(&c, t->endpoint, data, t->replace_id, &ch, &err);
        assert_err(r, &err, t->r, t->code, t->word);
        /* Never the upload, never a key in the message. */
        assert_null(strstr(err.msg, "-----"));
        /* *ret is not written on failure. */
        assert_string_equal(ch.id, "sentinel");
        assert_string_equal(ch.warning, "sentinel");

        tree_take(c.state, &after);
        tree_assert_same(&before, &after);
        tree_free(&before);
        tree_free(&after);
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
            assert_true(is_unchanged(&c, names[k], snaps[k]));
            ep_snapshot_unref(snaps[k]);
        }
        assert_int_equal(n_pending(&c, "ldap"), pend);
        free(data);
    }
    ctx_done(&c);
}

/* ---- authority ---- */

/* The lowercase SHA-256 of x's DER: an authority id, as OpenSSL computes it. */
static void id_of(X509 *x, char hex[static 65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &md_len), 1);
    assert_int_equal(md_len, 32);
    for (unsigned j = 0; j < md_len; j++) {
        (void)snprintf(hex + 2 * j, 3, "%02x", md[j]);
    }
}

static void test_authority_add_delete_replace(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    ctx_init(&c, "mgr-auth");
    ctx_cfg_ep(&c, "truststore")->max = 3;
    ctx_start(&c);
    char *dir = ep_file(&c, "truststore", "");

    char *bundle = fixture_str("ca-bundle.pem");
    install_ok(&c, "truststore", bundle, NULL, &ch);
    assert_int_equal(strlen(ch.id), 64);
    struct ep_snapshot *s = endpoint_snapshot(ep_get(&c, "truststore"));
    assert_int_equal(s->n, 3);
    /* The id reported is the first certificate's of the upload. */
    X509 *first = cert_of_pem(bundle);
    const struct cert_entry *first_e = ep_snapshot_find(s, ch.id);
    assert_non_null(first_e);
    assert_int_equal(X509_cmp(first_e->cert, first), 0);
    X509_free(first);
    char ids[3][MANAGER_ID_MAX];
    for (size_t i = 0; i < s->n; i++) {
        /* Sorted by id; each id the SHA-256 of the certificate, as OpenSSL computes it. */
        if (i > 0) {
            assert_true(strcmp(s->entries[i - 1].id, s->entries[i].id) < 0);
        }
        char hex[65];
        id_of(s->entries[i].cert, hex);
        assert_string_equal(s->entries[i].id, hex);
        char *file = tu_strf("%s%s.pem", dir, hex);
        assert_true(file_exists(file));
        assert_int_equal(file_mode(file), 0644);
        free(file);
        assert_null(strstr(s->entries[i].pem, "PRIVATE"));
        (void)snprintf(ids[i], sizeof(ids[i]), "%s", s->entries[i].id);
        assert_ptr_equal(ep_snapshot_find(s, ids[i]), &s->entries[i]);
    }
    /* Full (max 3), yet a replace fits: the replaced one goes in the same change. */
    struct ep_snapshot *old = s;
    char *noku = fixture_str("ca-noku.pem");
    install_ok(&c, "truststore", noku, ids[1], &ch);
    s = endpoint_snapshot(ep_get(&c, "truststore"));
    assert_int_equal(s->n, 3);
    assert_null(ep_snapshot_find(s, ids[1]));
    assert_non_null(ep_snapshot_find(s, ch.id));
    assert_true(strcmp(s->entries[0].id, s->entries[1].id) < 0);
    assert_true(strcmp(s->entries[1].id, s->entries[2].id) < 0);
    /* Those that stay are shared with the snapshot before, not inspected again. */
    for (size_t i = 0; i < 3; i += 2) {
        const struct cert_entry *kept = ep_snapshot_find(s, ids[i]);
        assert_non_null(kept);
        assert_ptr_equal(kept->info, old->entries[i].info);
        assert_ptr_equal(kept->pem, old->entries[i].pem);
    }
    /* The old snapshot is whole while held, and its entries outlive it where shared. */
    assert_non_null(ep_snapshot_find(old, ids[1]));
    ep_snapshot_unref(old);
    assert_non_null(strstr(ep_snapshot_find(s, ids[0])->pem, "BEGIN CERTIFICATE"));
    char *gone = tu_strf("%s%s.pem", dir, ids[1]);
    assert_false(file_exists(gone));
    free(gone);

    /* Full: a plain add is refused. */
    char *root = fixture_str("root-ca.pem");
    char *eleven = fixture_str("ca-eleven.pem");
    X509 *one = cert_of_pem(eleven);
    char *one_pem = pem_of_cert(one);
    X509_free(one);
    assert_err(install(&c, "truststore", one_pem, NULL, &ch, &err), &err, -E2BIG,
               CERTD_E_LIMIT_REACHED, "3");

    /* Delete, then the add fits. The other two stay shared. */
    struct manager_change del;
    assert_int_equal(manager_delete(c.m, ep_get(&c, "truststore"), ids[0], &del, &err), 0);
    assert_string_equal(del.id, ids[0]);
    assert_int_equal(n_certs(&c, "truststore"), 2);
    old = s;
    s = endpoint_snapshot(ep_get(&c, "truststore"));
    assert_null(ep_snapshot_find(s, ids[0]));
    assert_ptr_equal(ep_snapshot_find(s, ids[2])->info, ep_snapshot_find(old, ids[2])->info);
    ep_snapshot_unref(old);
    ep_snapshot_unref(s);
    gone = tu_strf("%s%s.pem", dir, ids[0]);
    assert_false(file_exists(gone));
    free(gone);
    install_ok(&c, "truststore", one_pem, NULL, &ch);
    assert_int_equal(n_certs(&c, "truststore"), 3);

    err_clear(&err);
    assert_err(manager_delete(c.m, ep_get(&c, "truststore"), ids[0], &del, &err), &err, -ENOENT,
               CERTD_E_NOT_FOUND, "no certificate");
    err_clear(&err);
    assert_err(manager_delete(c.m, ep_get(&c, "truststore"), "../../etc/passwd", &del, &err), &err,
               -ENOENT, CERTD_E_NOT_FOUND, "no certificate");

    /* The directory is what a restart loads. */
    s = endpoint_snapshot(ep_get(&c, "truststore"));
    ctx_restart(&c);
    struct ep_snapshot *s2 = endpoint_snapshot(ep_get(&c, "truststore"));
    assert_int_equal(s2->n, s->n);
    for (size_t i = 0; i < s->n; i++) {
        assert_string_equal(s->entries[i].id, s2->entries[i].id);
    }
    ep_snapshot_unref(s);
    ep_snapshot_unref(s2);

    free(one_pem);
    free(eleven);
    free(root);
    free(noku);
    free(bundle);
    free(dir);
    ctx_done(&c);
}

/* ---- ReplaceAll ---- */

/* The "<id>.pem" files of an authority directory. */
static size_t n_cert_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        n += len == 68 && strcmp(de->d_name + 64, ".pem") == 0;
    }
    closedir(d);
    return n;
}

static int replace_all(struct ctx *c, const char *name, const char *data, struct manager_change *ch,
                       struct certd_err *err)
{
    return manager_replace_all(c->m, ep_get(c, name), span_from_str(data), ch, err);
}

static void test_replace_all(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    ctx_init(&c, "mgr-replace-all");
    ctx_cfg_ep(&c, "truststore")->max = 3;
    ctx_start(&c);
    char *dir = ep_file(&c, "truststore", "");
    char *bundle = fixture_str("ca-bundle.pem");
    install_ok(&c, "truststore", bundle, NULL, &ch);
    struct ep_snapshot *s0 = snap(&c, "truststore");
    assert_int_equal(s0->n, 3);

    /* {root, root 2, root 3} -> {intermediate, root}: root stays, the others go. */
    X509 *inter = fixture_cert("int-ca.pem"), *root = fixture_cert("root-ca.pem");
    char id_inter[65], id_root[65];
    id_of(inter, id_inter);
    id_of(root, id_root);
    char *upload = fixture_cat("int-ca.pem", "root-ca.pem");
    memset(&ch, 'x', sizeof(ch));
    assert_int_equal(replace_all(&c, "truststore", upload, &ch, &err), 0);
    assert_false(err_is_set(&err));
    assert_string_equal(ch.id, id_inter); /* the upload's first */
    assert_string_equal(ch.replaced_id, "");
    assert_false(ch.is_delete);
    assert_string_equal(ch.warning, "");

    struct ep_snapshot *s = snap(&c, "truststore");
    assert_true(s != s0);
    assert_int_equal(s->n, 2);
    assert_true(strcmp(s->entries[0].id, s->entries[1].id) < 0);
    const struct cert_entry *e_inter = ep_snapshot_find(s, id_inter);
    const struct cert_entry *e_root = ep_snapshot_find(s, id_root);
    assert_non_null(e_inter);
    assert_non_null(e_root);
    assert_int_equal(X509_cmp(e_inter->cert, inter), 0);
    assert_string_equal(e_inter->info->subject.common_name, "certd test intermediate");
    /* The one that stays is shared with the snapshot before, not inspected again. */
    assert_ptr_equal(e_root->info, ep_snapshot_find(s0, id_root)->info);
    /* Files: exactly the new set, each holding its certificate; the others are gone. */
    assert_int_equal(n_cert_files(dir), 2);
    for (size_t i = 0; i < s0->n; i++) {
        char *file = tu_strf("%s%s.pem", dir, s0->entries[i].id);
        assert_int_equal(file_exists(file), strcmp(s0->entries[i].id, id_root) == 0);
        free(file);
    }
    char *inter_file = tu_strf("%s%s.pem", dir, id_inter);
    X509 *on_disk = cert_of_file(inter_file);
    assert_int_equal(X509_cmp(on_disk, inter), 0);
    assert_int_equal(file_mode(inter_file), 0644);
    X509_free(on_disk);
    free(inter_file);
    assert_int_equal(dir_count_prefix(dir, ".tmp"), 0);
    assert_int_equal(dir_count_prefix(dir, ".journal"), 0);
    ep_snapshot_unref(s0);

    /* A restart loads what was written. */
    ctx_restart(&c);
    struct ep_snapshot *s2 = snap(&c, "truststore");
    assert_int_equal(s2->n, 2);
    for (size_t i = 0; i < s->n; i++) {
        assert_string_equal(s->entries[i].id, s2->entries[i].id);
    }
    ep_snapshot_unref(s2);
    ep_snapshot_unref(s);

    /* Up to the limit exactly: three certificates fit max 3 whatever was there. */
    char *three = fixture_str("ca-bundle.pem");
    assert_int_equal(replace_all(&c, "truststore", three, &ch, &err), 0);
    assert_int_equal(n_certs(&c, "truststore"), 3);
    assert_int_equal(n_cert_files(dir), 3);

    free(three);
    free(upload);
    X509_free(inter);
    X509_free(root);
    free(bundle);
    free(dir);
    ctx_done(&c);
}

/*
 * A ReplaceAll that crashed past its commit point (before the links were rebuilt): the next
 * start settles the directory and rebuilds its CApath links, so that OpenSSL clients reading it
 * find the new set, not links to files that are gone.
 */
static void test_start_rebuilds_authority_links(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-auth-links");
    ctx_start(&c);
    char *dir = ep_file(&c, "truststore", "");
    char *bundle = fixture_str("ca-bundle.pem");
    install_ok(&c, "truststore", bundle, NULL, &ch);
    X509 *inter = fixture_cert("int-ca.pem");
    char id_inter[65];
    id_of(inter, id_inter);

    /* The daemon is down when it crashes: the child is the only writer. */
    c.m = manager_free(c.m);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        STACK_OF(X509) *sk = sk_X509_new_null();
        store_test_crash_at = STORE_CRASH_AFTER_COMMIT;
        int r = sk && sk_X509_push(sk, inter) > 0
                    ? authority_dir_replace_ex(NULL, NULL, dir, sk, 0, NULL, NULL)
                    : -ENOMEM;
        _exit(r < 0 ? 2 : 3); /* reached only when the crash point was not */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    ctx_start(&c);
    assert_int_equal(n_certs(&c, "truststore"), 1);
    assert_int_equal(n_cert_files(dir), 1);
    /* One link, named as OpenSSL looks it up, to the one certificate: no stale link is left. */
    int ok = 0;
    unsigned long h = X509_NAME_hash_ex(X509_get_subject_name(inter), NULL, NULL, &ok);
    assert_int_equal(ok, 1);
    char *link = tu_strf("%s%08lx.0", dir, h);
    char target[128] = { 0 };
    assert_true(readlink(link, target, sizeof(target) - 1) > 0);
    char *want = tu_strf("%s.pem", id_inter);
    assert_string_equal(target, want);
    /* The certificate file and its link, nothing else (no journal, no temporary). */
    assert_int_equal(dir_count_prefix(dir, ""), 2 + 2); /* with "." and ".." */

    free(want);
    free(link);
    X509_free(inter);
    free(bundle);
    free(dir);
    ctx_done(&c);
}

/* Every refusal changes nothing: not the snapshot, not a byte of the state directory. */
static void test_replace_all_refusals(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-replace-all-no");
    ctx_cfg_ep(&c, "truststore")->max = 3;
    ctx_start(&c);
    char *bundle = fixture_str("ca-bundle.pem");
    install_ok(&c, "truststore", bundle, NULL, &ch);

    char *leaf_last = fixture_cat("root-ca.pem", "server-ec.pem");
    char *noksign_last = fixture_cat("int-ca.pem", "ca-nokeycertsign.pem");
    char *eleven = fixture_str("ca-eleven.pem");
    char *twice = fixture_cat("int-ca.pem", "int-ca.pem");
    char *with_key = fixture_str("ca-with-key.pem");
    const struct {
        const char *data;
        int want_r;
        enum certd_errc want_code;
        const char *word;
    } cases[] = {
        { leaf_last, -EINVAL, CERTD_E_NOT_CA, "CA" },
        { noksign_last, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN, "keyCertSign" },
        { eleven, -E2BIG, CERTD_E_LIMIT_REACHED, "at most 3" },
        { twice, -EEXIST, CERTD_E_DUPLICATE, "twice" },
        { with_key, -EPERM, CERTD_E_KEY_NOT_ALLOWED, "private key" },
        { "", -EINVAL, CERTD_E_INPUT_EMPTY, "empty" },
        { "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", -EBADMSG,
          CERTD_E_CERT_BAD, "malformed" },
    };
    struct tree before, after;
    tree_take(c.state, &before);
    struct ep_snapshot *s0 = snap(&c, "truststore");
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        struct manager_change out;
        memset(&out, 'x', sizeof(out));
        int r = replace_all(&c, "truststore", cases[i].data, &out, &err);
        assert_err(r, &err, cases[i].want_r, cases[i].want_code, cases[i].word);
        assert_int_equal(out.id[0], 'x'); /* *ret untouched */
        assert_true(is_unchanged(&c, "truststore", s0));
        tree_take(c.state, &after);
        tree_assert_same(&before, &after);
        tree_free(&after);
    }

    /* Server and client endpoints hold one certificate with its key: not theirs. */
    char *server = fixture_str("server-ec-bundle.pem");
    const char *single[] = { "https", "ldap" };
    for (size_t i = 0; i < ELEMENTSOF(single); i++) {
        struct certd_err err = { 0 };
        struct ep_snapshot *b = snap(&c, single[i]);
        assert_err(replace_all(&c, single[i], server, &ch, &err), &err, -EOPNOTSUPP,
                   CERTD_E_POLICY_FORBIDS, "authority");
        assert_true(is_unchanged(&c, single[i], b));
        ep_snapshot_unref(b);
    }
    tree_take(c.state, &after);
    tree_assert_same(&before, &after);
    tree_free(&after);
    tree_free(&before);
    ep_snapshot_unref(s0);

    free(server);
    free(leaf_last);
    free(noksign_last);
    free(eleven);
    free(twice);
    free(with_key);
    free(bundle);
    ctx_done(&c);
}

/* What each change reports: install, replace (ReplaceCertificate) and delete, per type. */
static void test_change_kinds(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    ctx_init(&c, "mgr-change-kinds");
    ctx_start(&c);

    const struct {
        const char *ep;
        const char *file_a, *key_a, *file_b, *key_b;
    } singles[] = {
        { "https", "server-ec-bundle.pem", NULL, "server-rsa.pem", "server-rsa.key" },
        { "ldap", "client-ec384.pem", "client-ec384.key", "client-ec384.pem", "client-ec384.key" },
    };
    for (size_t i = 0; i < ELEMENTSOF(singles); i++) {
        char *a = singles[i].key_a ? fixture_cat(singles[i].file_a, singles[i].key_a)
                                   : fixture_str(singles[i].file_a);
        char *b = fixture_cat(singles[i].file_b, singles[i].key_b);
        memset(&ch, 'x', sizeof(ch));
        install_ok(&c, singles[i].ep, a, NULL, &ch);
        assert_string_equal(ch.id, "1");
        assert_string_equal(ch.replaced_id, "");
        assert_false(ch.is_delete);
        memset(&ch, 'x', sizeof(ch));
        install_ok(&c, singles[i].ep, b, "1", &ch);
        assert_string_equal(ch.id, "1");
        assert_string_equal(ch.replaced_id, "1");
        assert_false(ch.is_delete);
        memset(&ch, 'x', sizeof(ch));
        assert_int_equal(manager_delete(c.m, ep_get(&c, singles[i].ep), "1", &ch, &err), 0);
        assert_string_equal(ch.id, "1");
        assert_string_equal(ch.replaced_id, "");
        assert_true(ch.is_delete);
        assert_string_equal(ch.warning, "");
        free(a);
        free(b);
    }

    /* authority: the replaced id is the old fingerprint, the id the new one's. */
    char *root = fixture_str("root-ca.pem"), *inter = fixture_str("int-ca.pem");
    X509 *xr = cert_of_pem(root), *xi = cert_of_pem(inter);
    char id_root[65], id_inter[65];
    id_of(xr, id_root);
    id_of(xi, id_inter);
    memset(&ch, 'x', sizeof(ch));
    install_ok(&c, "truststore", root, NULL, &ch);
    assert_string_equal(ch.id, id_root);
    assert_string_equal(ch.replaced_id, "");
    assert_false(ch.is_delete);
    memset(&ch, 'x', sizeof(ch));
    install_ok(&c, "truststore", inter, id_root, &ch);
    assert_string_equal(ch.id, id_inter);
    assert_string_equal(ch.replaced_id, id_root);
    assert_false(ch.is_delete);
    memset(&ch, 'x', sizeof(ch));
    assert_int_equal(manager_delete(c.m, ep_get(&c, "truststore"), id_inter, &ch, &err), 0);
    assert_string_equal(ch.id, id_inter);
    assert_string_equal(ch.replaced_id, "");
    assert_true(ch.is_delete);
    assert_int_equal(n_certs(&c, "truststore"), 0);

    X509_free(xr);
    X509_free(xi);
    free(root);
    free(inter);
    ctx_done(&c);
}

/* ---- deletes ---- */

static void test_client_delete_removes_files(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    ctx_init(&c, "mgr-cdel");
    ctx_start(&c);
    char *pem = fixture_cat("client-ec384.pem", "client-ec384.key");
    assert_int_equal(n_certs(&c, "ldap"), 0);
    install_ok(&c, "ldap", pem, NULL, &ch);
    assert_int_equal(n_certs(&c, "ldap"), 1);
    char *cert = ep_file(&c, "ldap", "cert.pem"), *key = ep_file(&c, "ldap", "key.pem");
    assert_true(file_exists(cert));
    assert_int_equal(file_mode(key), 0600);
    struct ep_snapshot *before = snap(&c, "ldap");

    assert_err(manager_delete(c.m, ep_get(&c, "ldap"), "2", &ch, &err), &err, -ENOENT,
               CERTD_E_NOT_FOUND, "no certificate");
    assert_true(is_unchanged(&c, "ldap", before));
    assert_int_equal(manager_delete(c.m, ep_get(&c, "ldap"), "1", &ch, &err), 0);
    assert_string_equal(ch.id, "1");
    assert_int_equal(n_certs(&c, "ldap"), 0);
    assert_false(is_unchanged(&c, "ldap", before));
    ep_snapshot_unref(before);
    assert_false(file_exists(cert));
    assert_false(file_exists(key));
    char *dir = ep_file(&c, "ldap", "");
    assert_int_equal(dir_count_prefix(dir, ".tmp"), 0);
    free(dir);
    err_clear(&err);
    assert_err(manager_delete(c.m, ep_get(&c, "ldap"), "1", &ch, &err), &err, -ENOENT,
               CERTD_E_NOT_FOUND, "no certificate");
    /* Empty across a restart too. */
    ctx_restart(&c);
    assert_int_equal(n_certs(&c, "ldap"), 0);
    free(cert);
    free(key);
    free(pem);
    ctx_done(&c);
}

static void test_server_delete_regenerates(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    ctx_init(&c, "mgr-sdel");
    ctx_start(&c);
    char *pem = fixture_str("server-ec-bundle.pem");
    install_ok(&c, "https", pem, NULL, &ch);
    struct ep_snapshot *old = endpoint_snapshot(ep_get(&c, "https"));

    assert_int_equal(manager_delete(c.m, ep_get(&c, "https"), "1", &ch, &err), 0);
    assert_string_equal(ch.id, "1");
    struct ep_snapshot *s = endpoint_snapshot(ep_get(&c, "https"));
    assert_int_equal(s->n, 1);
    assert_true(s != old);
    assert_selfsigned_for_host(s->entries[0].cert);
    assert_int_not_equal(X509_cmp(s->entries[0].cert, old->entries[0].cert), 0);
    assert_int_equal(EVP_PKEY_eq(s->key, old->key), 0);
    assert_https_files_match(&c);
    ep_snapshot_unref(s);
    ep_snapshot_unref(old);
    free(pem);
    ctx_done(&c);
}

/* ---- Renew and Rekey ---- */

static void assert_csr_like(const char *csr_pem, X509 *cert, EVP_PKEY *want_key, bool is_same)
{
    X509_REQ *req = csr_of_pem(csr_pem);
    /* The subject exactly: byte for byte (order and string types too). */
    unsigned char *d1 = NULL, *d2 = NULL;
    int l1 = i2d_X509_NAME(X509_REQ_get_subject_name(req), &d1);
    int l2 = i2d_X509_NAME(X509_get_subject_name(cert), &d2);
    assert_true(l1 > 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(d1, d2, (size_t)l1);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), want_key), is_same ? 1 : 0);
    /* The SAN asked for is the certificate's. */
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);
    int at = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    assert_true(at >= 0);
    GENERAL_NAMES *want = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAMES *got = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, at));
    assert_non_null(want);
    assert_non_null(got);
    /* Every name, as it is, in its order. */
    assert_int_equal(sk_GENERAL_NAME_num(got), sk_GENERAL_NAME_num(want));
    for (int i = 0; i < sk_GENERAL_NAME_num(want); i++) {
        assert_int_equal(
            GENERAL_NAME_cmp(sk_GENERAL_NAME_value(want, i), sk_GENERAL_NAME_value(got, i)), 0);
    }
    GENERAL_NAMES_free(want);
    GENERAL_NAMES_free(got);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
}

static void test_renew_and_rekey(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    struct certd_err err = { 0 };
    char *csr = NULL;
    ctx_init(&c, "mgr-renew");
    ctx_start(&c);
    /* A subject with every attribute and RFC 4514 specials; six kinds of SAN. */
    char *pem = fixture_str("server-ec-bundle.pem");
    install_ok(&c, "https", pem, NULL, &ch);
    struct ep_snapshot *s = endpoint_snapshot(ep_get(&c, "https"));

    assert_int_equal(manager_renew_csr(c.m, ep_get(&c, "https"), "1", "s3cret", &csr, &err), 0);
    assert_csr_like(csr, s->entries[0].cert, s->key, true);
    assert_null(strstr(csr, "s3cret"));
    X509_REQ *req = csr_of_pem(csr);
    assert_true(X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1) >= 0);
    X509_REQ_free(req);
    assert_int_equal(n_pending(&c, "https"), 0);
    free(csr);
    csr = NULL;

    /* Rekey without a spec: a new key of the same kind (EC P-256), kept pending. */
    assert_int_equal(manager_rekey_csr(c.m, ep_get(&c, "https"), "1", NULL, NULL, &csr, &err), 0);
    assert_csr_like(csr, s->entries[0].cert, s->key, false);
    req = csr_of_pem(csr);
    assert_true(EVP_PKEY_is_a(X509_REQ_get0_pubkey(req), "EC"));
    assert_int_equal(EVP_PKEY_get_bits(X509_REQ_get0_pubkey(req)), 256);
    X509_REQ_free(req);
    assert_int_equal(n_pending(&c, "https"), 1);
    char *rekey_csr = csr;
    csr = NULL;

    /* Rekey to the key asked for (P-384: RSA key generation is slow under valgrind). */
    assert_int_equal(manager_rekey_csr(c.m, ep_get(&c, "https"), "1", &spec_p384, NULL, &csr, &err),
                     0);
    assert_csr_like(csr, s->entries[0].cert, s->key, false);
    req = csr_of_pem(csr);
    assert_true(EVP_PKEY_is_a(X509_REQ_get0_pubkey(req), "EC"));
    assert_int_equal(EVP_PKEY_get_bits(X509_REQ_get0_pubkey(req)), 384);
    X509_REQ_free(req);
    assert_int_equal(n_pending(&c, "https"), 2);
    free(csr);
    csr = NULL;

    /* The answer to the first Rekey pairs with its key. */
    char *cert = cert_for_csr(rekey_csr, "rekeyed.example.com");
    install_ok(&c, "https", cert, "1", &ch);
    assert_key_of_csr(&c, "https", rekey_csr);
    assert_int_equal(n_pending(&c, "https"), 1);
    assert_https_files_match(&c);
    free(cert);

    /* Refusals. */
    err_clear(&err);
    assert_err(manager_renew_csr(c.m, ep_get(&c, "https"), "7", NULL, &csr, &err), &err, -ENOENT,
               CERTD_E_NOT_FOUND, "no certificate");
    err_clear(&err);
    assert_err(manager_renew_csr(c.m, ep_get(&c, "ldap"), "1", NULL, &csr, &err), &err, -ENOENT,
               CERTD_E_NOT_FOUND, "no certificate");
    err_clear(&err);
    assert_err(manager_rekey_csr(c.m, ep_get(&c, "truststore"), "1", NULL, NULL, &csr, &err), &err,
               -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS, "CA certificates");
    err_clear(&err);
    assert_err(manager_renew_csr(c.m, ep_get(&c, "truststore"), "1", NULL, &csr, &err), &err,
               -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS, "CA certificates");
    assert_null(csr);

    ep_snapshot_unref(s);
    free(rekey_csr);
    free(pem);
    ctx_done(&c);
}

/* ---- re-enrolment (issue #6) ---- */

/* The pin of key's public half, computed here: SHA-256 of its DER SubjectPublicKeyInfo. */
static struct pin pin_of(EVP_PKEY *key)
{
    struct pin p;
    unsigned char *der = NULL;
    unsigned int len = 0;
    int n = i2d_PUBKEY(key, &der);
    assert_true(n > 0);
    assert_int_equal(EVP_Digest(der, (size_t)n, p.sha256, &len, EVP_sha256(), NULL), 1);
    assert_int_equal(len, PIN_SHA256_LEN);
    OPENSSL_free(der);
    return p;
}

static struct pin pin_of_csr(const char *csr_pem)
{
    X509_REQ *req = csr_of_pem(csr_pem);
    struct pin p = pin_of(X509_REQ_get0_pubkey(req));
    X509_REQ_free(req);
    return p;
}

static void assert_pin_equal(const struct pin *a, const struct pin *b)
{
    assert_memory_equal(a->sha256, b->sha256, PIN_SHA256_LEN);
}

/*
 * x has a's subject exactly (byte for byte: order and string types) and a's subjectAltName,
 * every name in its order; x is self-signed (names, and its own key verifies it).
 */
static void assert_selfsigned_like(X509 *x, X509 *a)
{
    unsigned char *d1 = NULL, *d2 = NULL;
    int l1 = i2d_X509_NAME(X509_get_subject_name(x), &d1);
    int l2 = i2d_X509_NAME(X509_get_subject_name(a), &d2);
    assert_true(l1 > 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(d1, d2, (size_t)l1);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    assert_int_equal(X509_self_signed(x, 1), 1);
    GENERAL_NAMES *want = X509_get_ext_d2i(a, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAMES *got = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(sk_GENERAL_NAME_num(got), sk_GENERAL_NAME_num(want));
    for (int i = 0; i < sk_GENERAL_NAME_num(want); i++) {
        assert_int_equal(
            GENERAL_NAME_cmp(sk_GENERAL_NAME_value(want, i), sk_GENERAL_NAME_value(got, i)), 0);
    }
    GENERAL_NAMES_free(want);
    GENERAL_NAMES_free(got);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(a)), 0);
}

static void selfsign_ok(struct ctx *c, const char *name, const struct pin *pin)
{
    struct manager_change ch = { .id = "x" };
    struct certd_err err = { 0 };
    int r = manager_selfsign(c->m, ep_get(c, name), pin, &ch, &err);
    if (r < 0) {
        fail_msg("selfsign %s: %d %s: %s", name, r, err_code_name(err.code), err.msg);
    }
    assert_string_equal(ch.id, MANAGER_SINGLE_ID);
    assert_string_equal(ch.warning, "");
}

static void test_selfsign_same_key(void **state)
{
    (void)state;
    struct ctx c;
    struct manager_change ch;
    ctx_init(&c, "mgr-selfsign");
    ctx_start(&c);

    /* The bootstrap certificate: its pin is its key's. */
    struct ep_snapshot *s0 = snap(&c, "https");
    struct pin p0 = pin_of(s0->key);
    assert_pin_equal(&s0->key_pin, &p0);
    char *key_path = ep_file(&c, "https", "key.pem");
    char *key_before = tu_file_get(key_path, NULL);

    selfsign_ok(&c, "https", NULL);
    struct ep_snapshot *s1 = snap(&c, "https");
    assert_true(s1 != s0);
    assert_selfsigned_like(s1->entries[0].cert, s0->entries[0].cert);
    assert_int_equal(EVP_PKEY_eq(s1->key, s0->key), 1);
    assert_pin_equal(&s1->key_pin, &p0);
    assert_int_equal(X509_get_extended_key_usage(s1->entries[0].cert) & XKU_SSL_SERVER,
                     XKU_SSL_SERVER);
    assert_https_files_match(&c);
    /* The key stays the key: its file holds it as before. */
    char *key_after = tu_file_get(key_path, NULL);
    assert_string_equal(key_after, key_before);
    free(key_after);

    /* A CA-signed certificate with a rich subject (RFC 4514 specials) and six kinds of SAN:
     * the self-signed one copies them exactly, for the same key, and keeps both usages. */
    char *pem = fixture_str("server-ec-bundle.pem");
    install_ok(&c, "https", pem, NULL, &ch);
    struct ep_snapshot *s2 = snap(&c, "https");
    selfsign_ok(&c, "https", NULL);
    struct ep_snapshot *s3 = snap(&c, "https");
    assert_selfsigned_like(s3->entries[0].cert, s2->entries[0].cert);
    assert_int_equal(EVP_PKEY_eq(s3->key, s2->key), 1);
    assert_pin_equal(&s3->key_pin, &s2->key_pin);
    assert_int_equal(sk_X509_num(s3->chain), 0);
    assert_https_files_match(&c);

    /* What it made survives a restart, as any change does. */
    ctx_restart(&c);
    struct ep_snapshot *s4 = snap(&c, "https");
    assert_int_equal(X509_cmp(s4->entries[0].cert, s3->entries[0].cert), 0);
    assert_pin_equal(&s4->key_pin, &s3->key_pin);

    ep_snapshot_unref(s0);
    ep_snapshot_unref(s1);
    ep_snapshot_unref(s2);
    ep_snapshot_unref(s3);
    ep_snapshot_unref(s4);
    free(pem);
    free(key_before);
    free(key_path);
    ctx_done(&c);
}

static void test_selfsign_switches_to_pending_key(void **state)
{
    (void)state;
    struct ctx c;
    struct certd_err err = { 0 };
    struct manager_change ch = { .id = "" };
    struct pin pins[MANAGER_PENDING_MAX + 1];
    struct pin next1, next2;
    char *csr1 = NULL, *csr2 = NULL;
    ctx_init(&c, "mgr-nextkey");
    ctx_start(&c);
    struct endpoint *ep = ep_get(&c, "https");
    assert_int_equal(endpoint_pending_pins(ep, pins, ELEMENTSOF(pins)), 0);

    /* Two next keys: each pin is the CSR's key's, listed newest first. */
    assert_int_equal(manager_prepare_next_key(c.m, ep, "1", NULL, NULL, &csr1, &next1, &err), 0);
    struct pin want = pin_of_csr(csr1);
    assert_pin_equal(&next1, &want);
    assert_int_equal(manager_prepare_next_key(c.m, ep, "1", &spec_p384, "pw", &csr2, &next2, &err),
                     0);
    want = pin_of_csr(csr2);
    assert_pin_equal(&next2, &want);
    assert_int_equal(endpoint_pending_pins(ep, pins, ELEMENTSOF(pins)), 2);
    assert_pin_equal(&pins[0], &next2);
    assert_pin_equal(&pins[1], &next1);
    assert_int_equal(endpoint_pending_pins(ep, pins, 1), 1);
    assert_pin_equal(&pins[0], &next2);
    assert_int_equal(n_pending(&c, "https"), 2);

    /* The pins survive a restart with their keys. */
    ctx_restart(&c);
    ep = ep_get(&c, "https");
    assert_int_equal(endpoint_pending_pins(ep, pins, ELEMENTSOF(pins)), 2);
    assert_pin_equal(&pins[0], &next2);
    assert_pin_equal(&pins[1], &next1);

    /* The switch: the older next key; it is used up, the other still waits. */
    struct ep_snapshot *before = snap(&c, "https");
    selfsign_ok(&c, "https", &next1);
    struct ep_snapshot *after = snap(&c, "https");
    assert_key_of_csr(&c, "https", csr1);
    assert_pin_equal(&after->key_pin, &next1);
    assert_selfsigned_like(after->entries[0].cert, before->entries[0].cert);
    assert_https_files_match(&c);
    assert_int_equal(n_pending(&c, "https"), 1);
    assert_int_equal(endpoint_pending_pins(ep, pins, ELEMENTSOF(pins)), 1);
    assert_pin_equal(&pins[0], &next2);

    /* Used up: the same pin again is refused, naming it, and nothing changes. */
    struct tree t0, t1;
    char pin_text[PIN_STR_MAX];
    pin_format(&next1, pin_text, sizeof(pin_text));
    tree_take(c.state, &t0);
    err_clear(&err);
    assert_err(manager_selfsign(c.m, ep, &next1, &ch, &err), &err, -ENOENT, CERTD_E_NOT_FOUND,
               "no pending key");
    assert_non_null(strstr(err.msg, pin_text));
    /* The current key is not a pending one either. */
    err_clear(&err);
    assert_err(manager_selfsign(c.m, ep, &after->key_pin, &ch, &err), &err, -ENOENT,
               CERTD_E_NOT_FOUND, "no pending key");
    tree_take(c.state, &t1);
    tree_assert_same(&t0, &t1);
    tree_free(&t0);
    tree_free(&t1);
    assert_true(is_unchanged(&c, "https", after));
    assert_string_equal(ch.id, "");

    /* An installed answer to the second CSR uses up its key the same way. */
    char *cert = cert_for_csr(csr2, "csr.example.com");
    install_ok(&c, "https", cert, NULL, &ch);
    assert_int_equal(endpoint_pending_pins(ep, pins, ELEMENTSOF(pins)), 0);
    assert_int_equal(n_pending(&c, "https"), 0);
    struct ep_snapshot *installed = snap(&c, "https");
    assert_pin_equal(&installed->key_pin, &next2);

    ep_snapshot_unref(installed);
    ep_snapshot_unref(before);
    ep_snapshot_unref(after);
    free(cert);
    free(csr1);
    free(csr2);
    ctx_done(&c);
}

static void test_selfsign_client_and_refusals(void **state)
{
    (void)state;
    struct ctx c;
    struct certd_err err = { 0 };
    struct manager_change ch = { .id = "" };
    struct pin pins[MANAGER_PENDING_MAX];
    ctx_init(&c, "mgr-selfsign-ldap");
    ctx_start(&c);
    struct ep_snapshot *empty = snap(&c, "ldap");
    struct tree t0, t1;
    tree_take(c.state, &t0);

    /* Refusals change nothing: an authority has no key; an empty client no current key. */
    assert_err(manager_selfsign(c.m, ep_get(&c, "truststore"), NULL, &ch, &err), &err, -EOPNOTSUPP,
               CERTD_E_POLICY_FORBIDS, "CA certificates");
    err_clear(&err);
    assert_err(manager_selfsign(c.m, ep_get(&c, "ldap"), NULL, &ch, &err), &err, -ENOENT,
               CERTD_E_KEY_MISSING, "no key");
    err_clear(&err);
    assert_int_equal(endpoint_pending_pins(ep_get(&c, "truststore"), pins, ELEMENTSOF(pins)), 0);
    tree_take(c.state, &t1);
    tree_assert_same(&t0, &t1);
    tree_free(&t0);
    tree_free(&t1);
    assert_true(is_unchanged(&c, "ldap", empty));
    assert_string_equal(ch.id, "");

    /* An empty client with a pending key: the bootstrap names, and a client certificate. */
    char *csr = csr_ok(&c, "ldap", &spec_p256);
    assert_int_equal(endpoint_pending_pins(ep_get(&c, "ldap"), pins, ELEMENTSOF(pins)), 1);
    struct pin want = pin_of_csr(csr);
    assert_pin_equal(&pins[0], &want);
    selfsign_ok(&c, "ldap", &pins[0]);
    struct ep_snapshot *s = snap(&c, "ldap");
    assert_int_equal(s->n, 1);
    X509 *x = s->entries[0].cert;
    assert_selfsigned_for_host(x);
    assert_true(cert_has_dns(x, HOSTNAME));
    assert_int_equal(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT, XKU_SSL_CLIENT);
    assert_int_equal(X509_get_extended_key_usage(x) & XKU_SSL_SERVER, 0);
    assert_key_of_csr(&c, "ldap", csr);
    assert_pin_equal(&s->key_pin, &want);
    assert_int_equal(n_pending(&c, "ldap"), 0);
    char *cert_path = ep_file(&c, "ldap", "cert.pem");
    X509 *on_disk = cert_of_file(cert_path);
    assert_int_equal(X509_cmp(on_disk, x), 0);

    X509_free(on_disk);
    free(cert_path);
    ep_snapshot_unref(s);
    ep_snapshot_unref(empty);
    free(csr);
    ctx_done(&c);
}

/* A self-signed certificate for key, CN = the host name, valid from now + nb to now + na days. */
static char *selfsigned_pem(EVP_PKEY *key, long nb_days, long na_days)
{
    X509 *x = cert_make(key, HOSTNAME, NULL, NULL, false, "serverAuth", "DNS:" HOSTNAME, nb_days,
                        na_days);
    char *pem = pem_of_cert(x);
    X509_free(x);
    return pem;
}

static void test_bootstrap_reissues_selfsigned_for_same_key(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        long nb_days, na_days;
        bool is_reject; /* the policy refuses the dates (else: accepted with a warning) */
        bool is_kept;   /* the key must stay */
    } cases[] = {
        { "expired, policy reject", -30, -1, true, true },
        { "not yet valid, policy reject", 10, 400, true, true },
        /* Accepted as it is: nothing is re-issued, the files stay byte for byte. */
        { "expired, policy accept", -30, -1, false, true },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct ctx c;
        print_message("case: %s\n", cases[i].name);
        ctx_init(&c, "mgr-reissue");
        if (cases[i].is_reject) {
            ctx_cfg_ep(&c, "https")->expired = VALIDITY_REJECT;
            ctx_cfg_ep(&c, "https")->not_yet_valid = VALIDITY_REJECT;
        }
        ctx_start(&c);
        char *dir = ep_file(&c, "https", "");
        char *cert_path = ep_file(&c, "https", "cert.pem");
        char *key_path = ep_file(&c, "https", "key.pem");
        EVP_PKEY *key = key_of_file(key_path);
        struct pin p0 = pin_of(key);
        char *bad = selfsigned_pem(key, cases[i].nb_days, cases[i].na_days);
        file_put(cert_path, bad, strlen(bad), 0644);
        X509 *bad_x = cert_of_pem(bad);

        ctx_restart(&c);
        struct ep_snapshot *s = snap(&c, "https");
        assert_int_equal(EVP_PKEY_eq(s->key, key), 1);
        assert_pin_equal(&s->key_pin, &p0);
        if (cases[i].is_reject) {
            /* A new certificate, valid now, for the same key; the old one kept aside. */
            assert_selfsigned_like(s->entries[0].cert, bad_x);
            assert_true(X509_cmp_current_time(X509_get0_notBefore(s->entries[0].cert)) < 0);
            assert_true(X509_cmp_current_time(X509_get0_notAfter(s->entries[0].cert)) > 0);
            assert_https_files_match(&c);
            char *aside = dir_find_prefix(dir, "cert.pem.corrupt-");
            char *kept = tu_file_get(aside, NULL);
            assert_string_equal(kept, bad);
            free(kept);
            free(aside);
            assert_int_equal(dir_count_prefix(dir, "key.pem.corrupt-"), 1);
        } else {
            assert_int_equal(X509_cmp(s->entries[0].cert, bad_x), 0);
            char *now = tu_file_get(cert_path, NULL);
            assert_string_equal(now, bad);
            free(now);
            assert_int_equal(dir_count_prefix(dir, "cert.pem.corrupt-"), 0);
        }
        ep_snapshot_unref(s);
        X509_free(bad_x);
        free(bad);
        EVP_PKEY_free(key);
        free(cert_path);
        free(key_path);
        free(dir);
        ctx_done(&c);
    }
}

/* An expired certificate that is not self-signed, or whose key is not there, gets a new key. */
static void test_bootstrap_new_key_unless_selfsigned(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, "mgr-reissue-ca");
    ctx_cfg_ep(&c, "https")->expired = VALIDITY_REJECT;
    ctx_start(&c);
    char *cert_path = ep_file(&c, "https", "cert.pem");
    char *key_path = ep_file(&c, "https", "key.pem");
    EVP_PKEY *key = key_of_file(key_path);

    /* The same key, but an expired certificate from a CA: certd cannot renew that one itself. */
    X509 *x = cert_make(key, HOSTNAME, test_ca, test_ca_key, false, "serverAuth", NULL, -30, -1);
    char *pem = pem_of_cert(x);
    file_put(cert_path, pem, strlen(pem), 0644);
    ctx_restart(&c);
    struct ep_snapshot *s = snap(&c, "https");
    assert_int_equal(EVP_PKEY_eq(s->key, key), 0);
    assert_selfsigned_for_host(s->entries[0].cert);
    assert_https_files_match(&c);

    ep_snapshot_unref(s);
    free(pem);
    X509_free(x);
    EVP_PKEY_free(key);
    free(cert_path);
    free(key_path);
    ctx_done(&c);
}

/* ---- reload ---- */

static void test_reload(void **state)
{
    (void)state;
    struct ctx c;
    struct certd_err err = { 0 };
    bool changed = true;
    ctx_init(&c, "mgr-reload");
    ctx_start(&c);
    struct endpoint *https = ep_get(&c, "https");
    char *cert_path = ep_file(&c, "https", "cert.pem"), *key_path = ep_file(&c, "https", "key.pem");
    char *dir = ep_file(&c, "https", "");

    /* Nothing changed. */
    struct ep_snapshot *g = snap(&c, "https");
    assert_int_equal(manager_reload(c.m, https, &changed, &err), 0);
    assert_false(changed);
    assert_true(is_unchanged(&c, "https", g));

    /* An admin copies another certificate and key into place. */
    char *rsa_cert = fixture_str("server-rsa.pem"), *rsa_key = fixture_str("server-rsa.key");
    file_put_str(cert_path, rsa_cert);
    file_put_str(key_path, rsa_key);
    assert_int_equal(manager_reload(c.m, https, &changed, &err), 0);
    assert_true(changed);
    assert_false(is_unchanged(&c, "https", g));
    ep_snapshot_unref(g);
    g = snap(&c, "https");
    struct ep_snapshot *s = endpoint_snapshot(https);
    X509 *want = fixture_cert("server-rsa.pem");
    assert_int_equal(X509_cmp(s->entries[0].cert, want), 0);
    X509_free(want);
    ep_snapshot_unref(s);

    /* The same again, and the same re-formatted: no change. */
    file_put_str(cert_path, rsa_cert);
    assert_int_equal(manager_reload(c.m, https, &changed, &err), 0);
    assert_false(changed);
    char *spaced = str_cat(rsa_cert, "\n\n");
    file_put_str(cert_path, spaced);
    assert_int_equal(manager_reload(c.m, https, &changed, &err), 0);
    assert_false(changed);
    assert_true(is_unchanged(&c, "https", g));
    /* The same pair after an install of certd's own (its inotify echo): no change either. */
    char *rsa_both = str_cat(rsa_cert, rsa_key);
    struct manager_change ch;
    install_ok(&c, "https", rsa_both, NULL, &ch);
    free(rsa_both);
    ep_snapshot_unref(g);
    g = snap(&c, "https");
    assert_int_equal(manager_reload(c.m, https, &changed, &err), 0);
    assert_false(changed);
    assert_true(is_unchanged(&c, "https", g));

    /* Garbage, or a certificate without its key yet: the old stays, nothing renamed. */
    file_put_str(cert_path, "garbage\n");
    changed = true;
    assert_err(manager_reload(c.m, https, &changed, &err), &err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
               "cert.pem");
    assert_true(changed); /* untouched on failure */
    assert_true(is_unchanged(&c, "https", g));
    char *ec = fixture_str("server-ec.pem");
    file_put_str(cert_path, ec);
    err_clear(&err);
    assert_err(manager_reload(c.m, https, &changed, &err), &err, -EKEYREJECTED,
               CERTD_E_KEY_MISMATCH, "match");
    assert_int_equal(unlink(cert_path), 0);
    err_clear(&err);
    assert_err(manager_reload(c.m, https, &changed, &err), &err, -ENOENT, CERTD_E_NOT_FOUND,
               "cert.pem");
    assert_true(is_unchanged(&c, "https", g));
    ep_snapshot_unref(g);
    assert_int_equal(dir_count_prefix(dir, "cert.pem.corrupt"), 0);
    assert_int_equal(dir_count_prefix(dir, "key.pem.corrupt"), 0);
    s = endpoint_snapshot(https);
    assert_true(EVP_PKEY_is_a(s->key, "RSA"));
    ep_snapshot_unref(s);

    /* A client emptied by hand is empty; filled by hand, it is filled. */
    struct endpoint *ldap = ep_get(&c, "ldap");
    char *lc = ep_file(&c, "ldap", "cert.pem"), *lk = ep_file(&c, "ldap", "key.pem");
    char *cli_cert = fixture_str("client-ec384.pem"), *cli_key = fixture_str("client-ec384.key");
    file_put_str(lc, cli_cert);
    file_put_str(lk, cli_key);
    err_clear(&err);
    assert_int_equal(manager_reload(c.m, ldap, &changed, &err), 0);
    assert_true(changed);
    assert_int_equal(n_certs(&c, "ldap"), 1);
    assert_int_equal(unlink(lc), 0);
    assert_int_equal(unlink(lk), 0);
    assert_int_equal(manager_reload(c.m, ldap, &changed, &err), 0);
    assert_true(changed);
    assert_int_equal(n_certs(&c, "ldap"), 0);
    assert_int_equal(manager_reload(c.m, ldap, &changed, &err), 0);
    assert_false(changed);

    /* An authority directory changed by another writer. */
    struct endpoint *ts = ep_get(&c, "truststore");
    assert_int_equal(manager_reload(c.m, ts, &changed, &err), 0);
    assert_false(changed);
    char *ca = fixture_str("ca-noku.pem");
    install_ok(&c, "truststore", ca, NULL, &ch);
    free(ca);
    struct ep_snapshot *before = snap(&c, "truststore");
    assert_int_equal(manager_reload(c.m, ts, &changed, &err), 0);
    assert_false(changed);
    assert_true(is_unchanged(&c, "truststore", before));
    STACK_OF(X509) *add = sk_X509_new_null();
    X509 *root = fixture_cert("root-ca.pem");
    assert_true(sk_X509_push(add, root) > 0);
    char *ts_dir = ep_file(&c, "truststore", "");
    assert_int_equal(authority_dir_add(ts_dir, add, NULL, &err), 0);
    sk_X509_pop_free(add, X509_free);
    assert_int_equal(manager_reload(c.m, ts, &changed, &err), 0);
    assert_true(changed);
    assert_int_equal(n_certs(&c, "truststore"), 2);
    /* The one that was there is shared with the snapshot before, the new one inspected. */
    s = snap(&c, "truststore");
    assert_non_null(ep_snapshot_find(s, before->entries[0].id));
    assert_ptr_equal(ep_snapshot_find(s, before->entries[0].id)->info, before->entries[0].info);
    ep_snapshot_unref(before);
    ep_snapshot_unref(s);
    assert_int_equal(manager_reload(c.m, ts, &changed, &err), 0);
    assert_false(changed);

    free(ts_dir);
    free(cli_cert);
    free(cli_key);
    free(lc);
    free(lk);
    free(ec);
    free(spaced);
    free(rsa_cert);
    free(rsa_key);
    free(dir);
    free(cert_path);
    free(key_path);
    ctx_done(&c);
}

/* ---- threads ---- */

#define CSR_THREADS     2
#define CSRS_PER_THREAD 2
/* Installs the change thread makes while the others run. */
#define CHANGES 4

struct thread_ctx {
    struct ctx *c;
    pthread_barrier_t *barrier; /* every thread starts together */
    atomic_bool *is_done;       /* the change thread has made all its changes */
};

struct csr_thread {
    struct thread_ctx *t;
    char *csr[CSRS_PER_THREAD];
    int r[CSRS_PER_THREAD];
};

static void *csr_thread_run(void *arg)
{
    struct csr_thread *t = arg;
    const struct csr_request req = { .common_name = "thread.example.com" };
    struct endpoint *ep = manager_endpoint(t->t->c->m, "https");

    (void)pthread_barrier_wait(t->t->barrier);
    for (size_t i = 0; i < CSRS_PER_THREAD; i++) {
        struct certd_err err = { 0 };
        t->r[i] = manager_generate_csr(t->t->c->m, ep, &spec_p256, &req, &t->csr[i], &err);
    }
    return NULL;
}

/* One change at a time (the serial lane): installs, each with its key, alternating two pairs. */
struct change_thread {
    struct thread_ctx *t;
    int r;
};

static void *change_thread_run(void *arg)
{
    struct change_thread *t = arg;
    char *pairs[2] = { fixture_str("server-ec-bundle.pem"),
                       fixture_cat("server-rsa.pem", "server-rsa.key") };
    struct endpoint *ep = manager_endpoint(t->t->c->m, "https");

    (void)pthread_barrier_wait(t->t->barrier);
    for (size_t i = 0; i < CHANGES && t->r == 0; i++) {
        struct manager_change ch;
        struct certd_err err = { 0 };
        t->r = manager_install(t->t->c->m, ep, span_from_str(pairs[i % 2]), NULL, &ch, &err);
    }
    atomic_store(t->t->is_done, true);
    free(pairs[0]);
    free(pairs[1]);
    return NULL;
}

/* A snapshot is whole: one certificate, its key matching it, its PEM complete. */
static bool snapshot_is_whole(const struct ep_snapshot *s)
{
    return s && s->n == 1 && s->key && X509_check_private_key(s->entries[0].cert, s->key) == 1 &&
           s->entries[0].pem_len == strlen(s->entries[0].pem) &&
           strstr(s->entries[0].pem, "-----END CERTIFICATE-----") != NULL;
}

/* Readers run alongside the changes: every snapshot they see is whole, so is the one they hold. */
struct reader_thread {
    struct thread_ctx *t;
    int r;
    bool was_replaced; /* the snapshot held from the start was no longer current at the end */
};

static void *reader_thread_run(void *arg)
{
    struct reader_thread *t = arg;
    struct endpoint *ep = manager_endpoint(t->t->c->m, "https");
    /* Taken before any change starts and held across all of them. */
    struct ep_snapshot *held = endpoint_snapshot(ep);

    (void)pthread_barrier_wait(t->t->barrier);
    while (!atomic_load(t->t->is_done)) {
        struct ep_snapshot *s = endpoint_snapshot(ep);
        if (!snapshot_is_whole(s)) {
            t->r = -EPROTO;
        }
        ep_snapshot_unref(s);
    }
    struct ep_snapshot *now = endpoint_snapshot(ep);
    t->was_replaced = now != held;
    if (!snapshot_is_whole(held) || !snapshot_is_whole(now)) {
        t->r = -EPROTO;
    }
    ep_snapshot_unref(now);
    ep_snapshot_unref(held);
    return NULL;
}

static void test_concurrent_csrs(void **state)
{
    (void)state;
    _Static_assert(CSR_THREADS * CSRS_PER_THREAD <= MANAGER_PENDING_MAX, "all must stay pending");
    struct ctx c;
    struct manager_change ch;
    pthread_barrier_t barrier;
    atomic_bool is_done = false;
    pthread_t tid[CSR_THREADS + 2];
    struct csr_thread t[CSR_THREADS];
    ctx_init(&c, "mgr-threads");
    ctx_start(&c);
    struct thread_ctx tc = { .c = &c, .barrier = &barrier, .is_done = &is_done };
    struct change_thread changer = { .t = &tc, .r = 0 };
    struct reader_thread reader = { .t = &tc, .r = 0 };

    assert_int_equal(pthread_barrier_init(&barrier, NULL, CSR_THREADS + 2), 0);
    for (size_t i = 0; i < CSR_THREADS; i++) {
        t[i] = (struct csr_thread){ .t = &tc };
        assert_int_equal(pthread_create(&tid[i], NULL, csr_thread_run, &t[i]), 0);
    }
    assert_int_equal(pthread_create(&tid[CSR_THREADS], NULL, change_thread_run, &changer), 0);
    assert_int_equal(pthread_create(&tid[CSR_THREADS + 1], NULL, reader_thread_run, &reader), 0);
    for (size_t i = 0; i < ELEMENTSOF(tid); i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    }
    assert_int_equal(pthread_barrier_destroy(&barrier), 0);
    assert_int_equal(changer.r, 0);
    assert_int_equal(reader.r, 0);
    /* The changes were published while the reader held its snapshot (which stayed whole). */
    assert_true(reader.was_replaced);
    /* The last install is what the files hold. */
    assert_https_files_match(&c);

    /* Every CSR's key was kept, each under its own number: each answer pairs. */
    assert_int_equal(n_pending(&c, "https"), CSR_THREADS * CSRS_PER_THREAD);
    char *dir = ep_file(&c, "https", "pending");
    assert_int_equal(dir_count_prefix(dir, ""), CSR_THREADS * CSRS_PER_THREAD + 2);
    free(dir);
    for (size_t i = 0; i < CSR_THREADS; i++) {
        for (size_t j = 0; j < CSRS_PER_THREAD; j++) {
            assert_int_equal(t[i].r[j], 0);
            char *cert = cert_for_csr(t[i].csr[j], "thread.example.com");
            install_ok(&c, "https", cert, NULL, &ch);
            assert_key_of_csr(&c, "https", t[i].csr[j]);
            free(cert);
            free(t[i].csr[j]);
        }
    }
    assert_int_equal(n_pending(&c, "https"), 0);
    ctx_done(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_bootstraps_server),
        cmocka_unit_test(test_restart_loads_same),
        cmocka_unit_test(test_bootstrap_keeps_bad_files_aside),
        cmocka_unit_test(test_start_refuses_unsafe_state_dir),
        cmocka_unit_test(test_install_replaces),
        cmocka_unit_test(test_install_expired_warns),
        cmocka_unit_test(test_install_combined_file),
        cmocka_unit_test(test_install_two_directories),
        cmocka_unit_test(test_install_pairs_pending_key),
        cmocka_unit_test(test_pending_limit_drops_oldest),
        cmocka_unit_test(test_pending_survive_restart),
        cmocka_unit_test(test_pending_load_keeps_newest),
        cmocka_unit_test(test_generate_csr_refusals),
        cmocka_unit_test(test_bad_uploads_change_nothing),
        cmocka_unit_test(test_authority_add_delete_replace),
        cmocka_unit_test(test_replace_all),
        cmocka_unit_test(test_start_rebuilds_authority_links),
        cmocka_unit_test(test_replace_all_refusals),
        cmocka_unit_test(test_change_kinds),
        cmocka_unit_test(test_client_delete_removes_files),
        cmocka_unit_test(test_server_delete_regenerates),
        cmocka_unit_test(test_renew_and_rekey),
        cmocka_unit_test(test_selfsign_same_key),
        cmocka_unit_test(test_selfsign_switches_to_pending_key),
        cmocka_unit_test(test_selfsign_client_and_refusals),
        cmocka_unit_test(test_bootstrap_reissues_selfsigned_for_same_key),
        cmocka_unit_test(test_bootstrap_new_key_unless_selfsigned),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_concurrent_csrs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
