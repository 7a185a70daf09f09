/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/ca: certd's CA in a scratch state directory, with the configuration of
 * config_new_default and the [ca] fields changed per test.
 *  - local signer: the root made at first start (files, modes, extensions, key, name), kept
 *    at restart, a crash while writing it completed, broken or mismatched files refused with
 *    nothing touched, a configured CA checked; the CRL written at start and at revocation;
 *  - ca_issue: a console's CSR signed as the profile says (verified with X509_verify_cert),
 *    and every refusal with errno, code and a word of the message;
 *  - ca_record (batches, duplicate serials), ca_revoke, ca_get, ca_each;
 *  - exec signer: real /bin/sh helpers (and examples/openssl-signer): success with the
 *    helper's chain, not ready, failure, garbage, another key, a private key, too much output,
 *    timeout (the helper's whole process group killed), a helper that never reads its input,
 *    what it inherits (descriptors, environment);
 *  - ca_sign on a real worker pool and event loop: many signings at once, each recorded before
 *    it is handed out, done called exactly once, also when the pool stops with signings in
 *    flight; the exec queue's bound and one helper at a time.
 * Certificates, CSRs and CRLs are made and checked with OpenSSL directly. Waits are
 * event-driven (the loop runs until the callbacks came; orphans are waited for as their
 * subreaper); the one timed bound is the generous upper limit of the helper timeout test.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "cadb/cadb.h"
#include "config.h"
#include "csr/csr.h"
#include "log/log.h"
#include "testutil.h"
#include "util/parse.h"
#include "worker.h"

#define HOSTNAME "bmc.example.com"
#define DAY      ((int64_t)86400)

/* ---- helpers (plain libc and OpenSSL, never the code under test) ---- */

static void file_put(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void script_put(const char *path, const char *body)
{
    file_put(path, body, strlen(body), 0755);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static char *hex_sha256(const void *p, size_t len)
{
    unsigned char md[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(p, len, md, &n, EVP_sha256(), NULL), 1);
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    for (unsigned i = 0; i < n; i++) {
        (void)snprintf(s + 2 * i, 3, "%02x", md[i]);
    }
    return s;
}

/* Every name, mode and content digest under dir (recursively), for "nothing was touched". */
static void dir_digest_into(const char *dir, FILE *out)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            char *p = tu_strf("%s/%s", dir, name);
            struct stat st;
            assert_int_equal(lstat(p, &st), 0);
            if (S_ISDIR(st.st_mode)) {
                fprintf(out, "%s/ %o\n", p, (unsigned)(st.st_mode & 07777));
                dir_digest_into(p, out);
            } else {
                size_t len = 0;
                char *data = tu_file_get(p, &len);
                char *h = hex_sha256(data, len);
                fprintf(out, "%s %o %s\n", p, (unsigned)(st.st_mode & 07777), h);
                free(h);
                free(data);
            }
            free(p);
        }
        free(names[i]);
    }
    free(names);
}

static char *dir_digest(const char *dir)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    assert_non_null(f);
    dir_digest_into(dir, f);
    assert_int_equal(fclose(f), 0);
    return s;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void assert_err(int r, const struct certd_err *err, int want_r, enum certd_errc want_code,
                       const char *word, const char *what)
{
    if (r != want_r || err->code != want_code) {
        fail_msg("%s: r=%d (want %d) code=%s (want %s) msg=%s", what, r, want_r,
                 err_code_name(err->code), err_code_name(want_code), err->msg);
    }
    if (!strstr(err->msg, word)) {
        fail_msg("%s: \"%s\" not in \"%s\"", what, word, err->msg);
    }
}

/* ---- CSRs, certificates and CRLs made and read with OpenSSL ---- */

struct rdn {
    int nid;
    const char *value;
};

struct req_ext {
    int nid;
    const char *value; /* OpenSSL configuration syntax: "critical,CA:TRUE" */
};

static X509_REQ *req_make(EVP_PKEY *key, const struct rdn *rdns, size_t n_rdns,
                          const struct req_ext *exts, size_t n_exts)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    for (size_t i = 0; i < n_rdns; i++) {
        assert_int_equal(X509_NAME_add_entry_by_NID(name, rdns[i].nid, MBSTRING_UTF8,
                                                    (const unsigned char *)rdns[i].value, -1, -1,
                                                    0),
                         1);
    }
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (n_exts > 0) {
        STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
        assert_non_null(sk);
        for (size_t i = 0; i < n_exts; i++) {
            X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, NULL, exts[i].nid, exts[i].value);
            assert_non_null(e);
            assert_true(sk_X509_EXTENSION_push(sk, e) > 0);
        }
        assert_int_equal(X509_REQ_add_extensions(req, sk), 1);
        sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    }
    /* Ed25519 signs without a separate digest. */
    const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    assert_true(X509_REQ_sign(req, key, md) > 0);
    return req;
}

static char *bio_take(BIO *bio, size_t *ret_len)
{
    BUF_MEM *bm = NULL;
    assert_int_equal(BIO_get_mem_ptr(bio, &bm), 1);
    char *s = malloc(bm->length + 1);
    assert_non_null(s);
    memcpy(s, bm->data, bm->length);
    s[bm->length] = '\0';
    if (ret_len) {
        *ret_len = bm->length;
    }
    BIO_free(bio);
    return s;
}

static char *req_pem(X509_REQ *req, size_t *ret_len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    return bio_take(bio, ret_len);
}

static char *csr_pem(EVP_PKEY *key, const struct rdn *rdns, size_t n_rdns,
                     const struct req_ext *exts, size_t n_exts, size_t *ret_len)
{
    X509_REQ *req = req_make(key, rdns, n_rdns, exts, n_exts);
    char *s = req_pem(req, ret_len);
    X509_REQ_free(req);
    return s;
}

/* A console's CSR: CN, O, OU and a streetAddress, a SAN with a DNS name and an IP address. */
static const struct rdn console_rdns[] = {
    { NID_organizationName, "Example" },
    { NID_organizationalUnitName, "Consoles" },
    { NID_streetAddress, "1 Main Street" },
    { NID_commonName, "hmc.example.com" },
};
static const struct req_ext console_exts[] = {
    { NID_subject_alt_name, "DNS:hmc.example.com,IP:192.0.2.10" },
};

static char *console_csr(EVP_PKEY *key, size_t *ret_len)
{
    return csr_pem(key, console_rdns, ELEMENTSOF(console_rdns), console_exts,
                   ELEMENTSOF(console_exts), ret_len);
}

static char *cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    return bio_take(bio, NULL);
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    return bio_take(bio, NULL);
}

/* Every certificate of a PEM text (at least one). */
static STACK_OF(X509) *pem_certs(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    assert_non_null(bio);
    STACK_OF(X509) *sk = sk_X509_new_null();
    assert_non_null(sk);
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        assert_true(sk_X509_push(sk, x) > 0);
    }
    BIO_free(bio);
    assert_true(sk_X509_num(sk) > 0);
    return sk;
}

static X509 *pem_cert(const char *pem, size_t len)
{
    STACK_OF(X509) *sk = pem_certs(pem, len);
    X509 *x = sk_X509_shift(sk);
    sk_X509_pop_free(sk, X509_free);
    return x;
}

/*
 * X509_verify_cert of cert against the certificates of anchors_pem as the only trust anchors,
 * for TLS clients (or servers), strict, with crl when given. 1 or 0 (*ret_error: why).
 */
static int verify(X509 *cert, const char *anchors_pem, size_t anchors_len, X509_CRL *crl,
                  int purpose, int *ret_error)
{
    STACK_OF(X509) *anchors = pem_certs(anchors_pem, anchors_len);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    for (int i = 0; i < sk_X509_num(anchors); i++) {
        assert_int_equal(X509_STORE_add_cert(store, sk_X509_value(anchors, i)), 1);
    }
    if (crl) {
        assert_int_equal(X509_STORE_add_crl(store, crl), 1);
    }
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, purpose), 1);
    unsigned long flags = X509_V_FLAG_X509_STRICT | (crl ? X509_V_FLAG_CRL_CHECK : 0);
    assert_int_equal(X509_VERIFY_PARAM_set_flags(param, flags), 1);
    int r = X509_verify_cert(ctx);
    *ret_error = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(anchors, X509_free);
    return r;
}

static void assert_subject(X509 *cert, const struct rdn *want, size_t n)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    assert_int_equal(X509_NAME_entry_count(name), (int)n);
    for (size_t i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, (int)i);
        assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), want[i].nid);
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
        assert_int_equal(ASN1_STRING_length(s), (int)strlen(want[i].value));
        assert_memory_equal(ASN1_STRING_get0_data(s), want[i].value, strlen(want[i].value));
    }
}

/* The cert's serial as the log spells it: upper-case hex without leading zeros. */
static char *serial_hex(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    assert_non_null(bn);
    char *h = BN_bn2hex(bn);
    assert_non_null(h);
    char *s = strdup(h[0] == '0' && h[1] ? h + strspn(h, "0") : h);
    assert_non_null(s);
    OPENSSL_free(h);
    BN_free(bn);
    return s;
}

static X509_CRL *crl_der(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_ptr_equal(p, der + len);
    return crl;
}

static uint64_t crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    uint64_t v = 0;
    assert_int_equal(ASN1_INTEGER_get_uint64(&v, n), 1);
    ASN1_INTEGER_free(n);
    return v;
}

/* The reason code of serial (hex) in crl; -1 when it is listed without one; -2 when absent. */
static int crl_reason_of(X509_CRL *crl, const char *serial)
{
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, serial) > 0);
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(ai);
    BN_free(bn);
    X509_REVOKED *rev = NULL;
    int found = X509_CRL_get0_by_serial(crl, &rev, ai);
    ASN1_INTEGER_free(ai);
    if (found != 1) {
        return -2;
    }
    ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    if (!e) {
        return -1;
    }
    long reason = ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    return (int)reason;
}

/* A CA certificate made with OpenSSL (a host CA for the exec signer, or a configured CA). */
static X509 *ca_cert_make(EVP_PKEY *key, const char *cn, const char *bc, const char *ku)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    time_t now = time(NULL);
    assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, &now));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct req_ext exts[] = {
        { NID_basic_constraints, bc },
        { NID_key_usage, ku },
        { NID_subject_key_identifier, "hash" },
    };
    for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
        if (!exts[i].value) {
            continue;
        }
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

/* A client certificate for key signed by ca/ca_key, made with OpenSSL. */
static X509 *leaf_make(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 77), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"hmc.example.com", -1, -1,
                                                0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
    time_t now = time(NULL);
    assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, &now));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    X509_EXTENSION *e =
        X509V3_EXT_nconf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:FALSE");
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    return x;
}

/* ---- the CA under test ---- */

struct fx {
    char *dir; /* the state directory */
    struct config *cfg;
    struct ca *ca;
    struct event_base *base; /* for ca_sign */
    struct worker_pool *pool;
};

static void fx_init(struct fx *f, const char *tag)
{
    *f = (struct fx){ 0 };
    f->dir = scratch_dir(tag);
    assert_int_equal(config_new_default(f->dir, &f->cfg), 0);
}

static char *fx_path(const struct fx *f, const char *rel)
{
    return tu_strf("%s/%s", f->dir, rel);
}

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = value ? strdup(value) : NULL;
    assert_true(!value || *field);
}

static void fx_set_exec(struct fx *f, const char *const *argv, size_t argc, unsigned timeout)
{
    struct config_ca *c = &f->cfg->ca;
    for (size_t i = 0; i < c->exec_argc; i++) {
        free(c->exec_argv[i]);
    }
    free(c->exec_argv);
    c->exec_argv = calloc(argc + 1, sizeof(char *));
    assert_non_null(c->exec_argv);
    for (size_t i = 0; i < argc; i++) {
        c->exec_argv[i] = strdup(argv[i]);
        assert_non_null(c->exec_argv[i]);
    }
    c->exec_argc = argc;
    c->exec_timeout = timeout;
    c->signer = CONFIG_SIGNER_EXEC;
}

static void fx_with_loop(struct fx *f)
{
    if (!f->base) {
        f->base = event_base_new();
        assert_non_null(f->base);
    }
    assert_null(f->pool);
    assert_int_equal(worker_pool_new(f->base, 2, &f->pool), 0);
}

/* ca_new and ca_start; the CA is kept (also after a failed start) until fx_stop. */
static int fx_start(struct fx *f, struct certd_err *err)
{
    assert_null(f->ca);
    assert_int_equal(ca_new(f->cfg, NULL, NULL, HOSTNAME, f->pool, &f->ca), 0);
    return ca_start(f->ca, 0, err);
}

static void fx_start_ok(struct fx *f)
{
    struct certd_err err = { 0 };
    int r = fx_start(f, &err);
    if (r != 0) {
        fail_msg("ca_start: r=%d code=%s msg=%s", r, err_code_name(err.code), err.msg);
    }
}

static void fx_stop(struct fx *f)
{
    f->pool = worker_pool_free(f->pool);
    f->ca = ca_free(f->ca);
}

static void fx_done(struct fx *f)
{
    fx_stop(f);
    if (f->base) {
        event_base_free(f->base);
    }
    f->cfg = config_free(f->cfg);
    scratch_rm(f->dir);
    *f = (struct fx){ 0 };
}

static struct ca_issued *issue_ok(struct fx *f, const char *csr, size_t len)
{
    struct certd_err err = { 0 };
    struct ca_issued *is = NULL;
    int r = ca_issue(f->ca, span_make(csr, len), "admin", &is, &err);
    if (r != 0) {
        fail_msg("ca_issue: r=%d code=%s msg=%s", r, err_code_name(err.code), err.msg);
    }
    assert_non_null(is);
    return is;
}

/* ca_issue of a console CSR for a fresh P-256 key. */
static struct ca_issued *issue_fresh(struct fx *f)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    size_t len = 0;
    char *csr = console_csr(k, &len);
    struct ca_issued *is = issue_ok(f, csr, len);
    free(csr);
    EVP_PKEY_free(k);
    return is;
}

static void record_ok(struct fx *f, struct ca_issued *is)
{
    struct certd_err err = { 0 };
    bool dup = true;
    struct ca_issued *v[] = { is };
    assert_int_equal(ca_record(f->ca, v, 1, &dup, &err), 0);
    assert_false(dup);
}

static int count_one(const struct cadb_cert *c, void *arg)
{
    (void)c;
    (*(size_t *)arg)++;
    return 0;
}

static size_t log_count(struct fx *f, enum cadb_filter filter)
{
    size_t n = 0;
    assert_int_equal(ca_each(f->ca, filter, count_one, &n), 0);
    return n;
}

/* ---- local signer: start ---- */

static void test_local_first_start(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-first");
    char *cadir = fx_path(&f, "ca"), *pem_path = fx_path(&f, "ca/ca.pem");
    char *key_path = fx_path(&f, "ca/ca-key.pem"), *db_path = fx_path(&f, "ca.db");
    char *crl_path = fx_path(&f, "ca/crl.der");
    assert_false(exists(cadir));
    fx_start_ok(&f);
    assert_int_equal(ca_signer(f.ca), CONFIG_SIGNER_LOCAL);

    assert_int_equal(file_mode(cadir), 0700);
    assert_int_equal(file_mode(pem_path), 0644);
    assert_int_equal(file_mode(key_path), 0600);
    /* Nothing uses the log yet: it is not opened (SQLite not even loaded), and the first CRL
     * is made when first asked for. */
    assert_false(exists(db_path));
    assert_false(exists(crl_path));
    struct ca_public *first = ca_public(f.ca);
    assert_non_null(first);
    assert_null(first->crl_der);
    ca_public_unref(first);
    struct certd_err ferr = { 0 };
    assert_int_equal(ca_refresh_crl(f.ca, &ferr), 0);
    assert_int_equal(file_mode(db_path), 0600);
    assert_int_equal(file_mode(crl_path), 0644);

    /* The root: self-signed, CA:TRUE pathlen 0 (critical), keyCertSign + cRLSign, P-384. */
    size_t pem_len = 0, key_len = 0;
    char *pem = tu_file_get(pem_path, &pem_len), *key = tu_file_get(key_path, &key_len);
    X509 *root = pem_cert(pem, pem_len);
    BIO *kb = BIO_new_mem_buf(key, (int)key_len);
    EVP_PKEY *root_key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    BIO_free(kb);
    assert_non_null(root_key);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(root), root_key), 1);
    char group[32] = "";
    assert_int_equal(EVP_PKEY_get_group_name(root_key, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "secp384r1");
    assert_int_equal(X509_verify(root, root_key), 1);
    assert_int_equal(X509_check_ca(root), 1);
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(root, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    const struct rdn want_subject[] = { { NID_commonName, "certd CA " HOSTNAME } };
    assert_subject(root, want_subject, ELEMENTSOF(want_subject));
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(root), X509_get_issuer_name(root)), 0);

    /* The public side: the root as handed out, its subject and the CRL. */
    struct ca_public *pub = ca_public(f.ca);
    assert_non_null(pub);
    assert_int_equal(pub->ca_pem_len, pem_len);
    assert_memory_equal(pub->ca_pem, pem, pem_len);
    assert_non_null(strstr(pub->subject, "CN=certd CA " HOSTNAME));
    time_t na = 0;
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(root), &tm), 1);
    na = timegm(&tm);
    assert_int_equal(pub->not_after, (int64_t)na);
    size_t crl_len = 0;
    char *crl_file = tu_file_get(crl_path, &crl_len);
    assert_non_null(pub->crl_der);
    assert_int_equal(pub->crl_der_len, crl_len);
    assert_memory_equal(pub->crl_der, crl_file, crl_len);
    X509_CRL *crl = crl_der(pub->crl_der, pub->crl_der_len);
    assert_int_equal(X509_CRL_verify(crl, root_key), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(root)), 0);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
    assert_int_equal(crl_number(crl), pub->crl_number);
    assert_true(pub->crl_number >= 1);
    assert_true(pub->crl_next_update > pub->crl_this_update);
    assert_true(pub->crl_next_update - pub->crl_this_update <= 7 * DAY);
    BIO *cb = BIO_new_mem_buf(pub->crl_pem, (int)pub->crl_pem_len);
    X509_CRL *crl2 = PEM_read_bio_X509_CRL(cb, NULL, NULL, NULL);
    BIO_free(cb);
    assert_non_null(crl2);
    assert_int_equal(X509_CRL_cmp(crl, crl2), 0);
    X509_CRL_free(crl2);
    X509_CRL_free(crl);
    uint64_t first_crl = pub->crl_number;
    ca_public_unref(pub);
    assert_int_equal(log_count(&f, CADB_ALL), 0);

    /* Restart: the same root and key, byte for byte; the CRL file still says what the log
     * says and has most of its life left, so it is served again (no new number). */
    fx_stop(&f);
    fx_start_ok(&f);
    size_t pem2_len = 0, key2_len = 0;
    char *pem2 = tu_file_get(pem_path, &pem2_len), *key2 = tu_file_get(key_path, &key2_len);
    assert_int_equal(pem2_len, pem_len);
    assert_memory_equal(pem2, pem, pem_len);
    assert_int_equal(key2_len, key_len);
    assert_memory_equal(key2, key, key_len);
    pub = ca_public(f.ca);
    assert_memory_equal(pub->ca_pem, pem, pem_len);
    assert_int_equal(pub->crl_number, first_crl);
    ca_public_unref(pub);

    /* A revocation cut short (its marker left behind): the next start makes a new CRL from
     * the log and clears the marker. */
    fx_stop(&f);
    char *pending = fx_path(&f, "ca/crl.der.pending");
    FILE *mf = fopen(pending, "w");
    assert_non_null(mf);
    assert_int_equal(fclose(mf), 0);
    fx_start_ok(&f);
    pub = ca_public(f.ca);
    assert_true(pub->crl_number > first_crl);
    ca_public_unref(pub);
    assert_int_equal(access(pending, F_OK), -1);
    free(pending);

    free(pem2);
    free(key2);
    free(crl_file);
    EVP_PKEY_free(root_key);
    X509_free(root);
    free(pem);
    free(key);
    free(cadir);
    free(pem_path);
    free(key_path);
    free(db_path);
    free(crl_path);
    fx_done(&f);
}

/* [ca] common_name, and a host name too long for a CN (cut at 64 characters). */
static void test_local_root_names(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-cn");
    set_str(&f.cfg->ca.common_name, "Example Console CA");
    fx_start_ok(&f);
    struct ca_public *pub = ca_public(f.ca);
    assert_string_equal(pub->subject, "CN=Example Console CA");
    ca_public_unref(pub);
    fx_done(&f);

    fx_init(&f, "ca-longhost");
    const char *host = "a23456789.b23456789.c23456789.d23456789.e23456789.f23456789.example";
    assert_int_equal(ca_new(f.cfg, NULL, NULL, host, NULL, &f.ca), 0);
    struct certd_err err = { 0 };
    assert_int_equal(ca_start(f.ca, 0, &err), 0);
    pub = ca_public(f.ca);
    char *want = tu_strf("CN=certd CA %.55s", host);
    assert_string_equal(pub->subject, want);
    assert_int_equal(strlen(pub->subject) - 3, 64);
    free(want);
    ca_public_unref(pub);
    fx_done(&f);
}

/* A crash between the renames of the root's files: the next start completes the set. */
static void test_local_start_completes_crashed_write(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-crash");
    fx_start_ok(&f);
    fx_stop(&f);
    char *pem_path = fx_path(&f, "ca/ca.pem");
    size_t pem_len = 0;
    char *pem = tu_file_get(pem_path, &pem_len);

    /* As store_write_set leaves it after its commit: the key renamed, the certificate not. */
    char *tmp = fx_path(&f, "ca/.tmpset-0123456789abcdef-1");
    assert_int_equal(rename(pem_path, tmp), 0);
    const char *fields[] = { "certd-store-journal-2",
                             "2",
                             ".tmpset-0123456789abcdef-0",
                             "ca-key.pem",
                             ".tmpset-0123456789abcdef-1",
                             "ca.pem",
                             "end" };
    char *jp = fx_path(&f, "ca/.journal-0123456789abcdef");
    char *journal = NULL;
    size_t jlen = 0;
    FILE *jf = open_memstream(&journal, &jlen);
    assert_non_null(jf);
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        assert_int_equal(fwrite(fields[i], strlen(fields[i]) + 1, 1, jf), 1);
    }
    assert_int_equal(fclose(jf), 0);
    file_put(jp, journal, jlen, 0600);

    fx_start_ok(&f);
    size_t now_len = 0;
    char *now = tu_file_get(pem_path, &now_len);
    assert_non_null(now);
    assert_int_equal(now_len, pem_len);
    assert_memory_equal(now, pem, pem_len);
    assert_false(exists(jp));
    assert_false(exists(tmp));

    free(now);
    free(journal);
    free(jp);
    free(tmp);
    free(pem);
    free(pem_path);
    fx_done(&f);
}

/* Broken or mismatched files stop the start, name the file and are left as they are. */
static void test_local_start_refusals(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-refuse");
    fx_start_ok(&f);
    fx_stop(&f);
    char *pem_path = fx_path(&f, "ca/ca.pem"), *key_path = fx_path(&f, "ca/ca-key.pem");
    size_t pem_len = 0, key_len = 0;
    char *pem = tu_file_get(pem_path, &pem_len), *key = tu_file_get(key_path, &key_len);
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(other);
    char *other_pem = key_pem(other);
    X509 *root = pem_cert(pem, pem_len);
    X509 *leaf = leaf_make(other, root, other);
    X509_free(root);
    char *leaf_pem = cert_pem(leaf);

    const struct {
        const char *name;
        const char *pem; /* NULL: removed */
        mode_t pem_mode;
        const char *key;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "corrupt certificate", "-----BEGIN CERTIFICATE-----\nnot base64\n", 0644, key, -EBADMSG,
          CERTD_E_PEM_TRUNCATED, "ca/ca.pem" },
        { "garbage certificate", "garbage", 0644, key, -EBADMSG, CERTD_E_INPUT_GARBAGE,
          "ca/ca.pem" },
        { "empty certificate", "", 0644, key, -EINVAL, CERTD_E_INPUT_EMPTY, "ca/ca.pem" },
        { "key of another CA", pem, 0644, other_pem, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
          "ca/ca-key.pem" },
        { "corrupt key", pem, 0644,
          "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", -EBADMSG,
          CERTD_E_KEY_BAD, "ca/ca-key.pem" },
        { "certificate missing", NULL, 0, key, -ENOENT, CERTD_E_NOT_FOUND, "ca/ca.pem" },
        { "key missing", pem, 0644, NULL, -ENOENT, CERTD_E_NOT_FOUND, "ca/ca-key.pem" },
        { "not a CA", leaf_pem, 0644, other_pem, -EINVAL, CERTD_E_NOT_CA, "ca/ca.pem" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        (void)unlink(pem_path);
        (void)unlink(key_path);
        if (cases[i].pem) {
            file_put(pem_path, cases[i].pem, strlen(cases[i].pem), cases[i].pem_mode);
        }
        if (cases[i].key) {
            file_put(key_path, cases[i].key, strlen(cases[i].key), 0600);
        }
        char *before = dir_digest(f.dir);
        struct certd_err err = { 0 };
        int r = fx_start(&f, &err);
        if (r != cases[i].r || err.code != cases[i].code || !strstr(err.msg, cases[i].word)) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        /* No root made in place of a broken one, no CRL, no log opened. */
        assert_null(ca_public(f.ca));
        fx_stop(&f);
        char *after = dir_digest(f.dir);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }

    /* The original pair starts again. */
    file_put(pem_path, pem, pem_len, 0644);
    file_put(key_path, key, key_len, 0600);
    fx_start_ok(&f);

    free(leaf_pem);
    X509_free(leaf);
    free(other_pem);
    EVP_PKEY_free(other);
    free(pem);
    free(key);
    free(pem_path);
    free(key_path);
    fx_done(&f);
}

/* A configured CA ([ca] cert and key given) elsewhere: used as it is, checked as a CA. */
static void test_local_configured_ca(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-configured");
    char *own = scratch_dir("ca-configured-files");
    char *cert_path = tu_strf("%s/ca.pem", own), *key_path = tu_strf("%s/ca.key", own);
    char *combined_path = tu_strf("%s/combined.pem", own);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(key);
    char *kpem = key_pem(key);

    const struct {
        const char *name;
        const char *bc, *ku;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "leaf", "critical,CA:FALSE", "critical,digitalSignature", -EINVAL, CERTD_E_NOT_CA,
          "is not a CA" },
        { "no basicConstraints", NULL, "critical,keyCertSign,cRLSign", -EINVAL, CERTD_E_NOT_CA,
          "is not a CA" },
        { "CA without cRLSign", "critical,CA:TRUE", "critical,keyCertSign", -EINVAL,
          CERTD_E_CA_NO_KEYCERTSIGN, "cRLSign" },
        { "CA", "critical,CA:TRUE", "critical,keyCertSign,cRLSign", 0, CERTD_E_OK, "" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        X509 *x = ca_cert_make(key, "Configured CA", cases[i].bc, cases[i].ku);
        char *xpem = cert_pem(x);
        file_put(cert_path, xpem, strlen(xpem), 0644);
        file_put(key_path, kpem, strlen(kpem), 0600);
        set_str(&f.cfg->ca.cert, cert_path);
        set_str(&f.cfg->ca.key, key_path);
        f.cfg->ca.is_cert_given = f.cfg->ca.is_key_given = true;
        char *before = dir_digest(own);
        struct certd_err err = { 0 };
        int r = fx_start(&f, &err);
        if (r != cases[i].r || err.code != cases[i].code || !strstr(err.msg, cases[i].word)) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        char *after = dir_digest(own);
        assert_string_equal(before, after);
        if (r < 0) {
            if (!strstr(err.msg, cert_path)) {
                fail_msg("%s: %s", cases[i].name, err.msg);
            }
        } else {
            /* Signs under the configured CA; the CRL in STATE_DIR/ca. */
            struct ca_issued *is = issue_fresh(&f);
            X509 *leaf = pem_cert(is->cert_pem, is->cert_pem_len);
            int verr = 0;
            assert_int_equal(verify(leaf, xpem, strlen(xpem), NULL, X509_PURPOSE_SSL_CLIENT, &verr),
                             1);
            struct ca_public *pub = ca_public(f.ca);
            assert_string_equal(pub->ca_pem, xpem);
            char *crl_path = fx_path(&f, "ca/crl.der");
            assert_false(exists(crl_path)); /* made when first asked for */
            struct certd_err cerr = { 0 };
            assert_int_equal(ca_refresh_crl(f.ca, &cerr), 0);
            assert_true(exists(crl_path));
            free(crl_path);
            ca_public_unref(pub);
            X509_free(leaf);
            ca_issued_free(is);
        }
        fx_stop(&f);
        free(before);
        free(after);
        free(xpem);
        X509_free(x);
    }

    /* Certificate and key in one file. */
    X509 *x = ca_cert_make(key, "Configured CA", "critical,CA:TRUE", NULL);
    char *xpem = cert_pem(x);
    char *both = tu_strf("%s%s", xpem, kpem);
    file_put(combined_path, both, strlen(both), 0600);
    set_str(&f.cfg->ca.cert, combined_path);
    set_str(&f.cfg->ca.key, combined_path);
    fx_start_ok(&f);
    struct ca_public *pub = ca_public(f.ca);
    assert_string_equal(pub->ca_pem, xpem);
    assert_null(strstr(pub->ca_pem, "PRIVATE"));
    ca_public_unref(pub);

    free(both);
    free(xpem);
    X509_free(x);
    free(kpem);
    EVP_PKEY_free(key);
    free(cert_path);
    free(key_path);
    free(combined_path);
    scratch_rm(own);
    fx_done(&f);
}

/* ---- ca_issue with the local signer ---- */

static void test_issue_console_csr(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-issue");
    fx_start_ok(&f);
    struct ca_public *pub = ca_public(f.ca);

    const struct {
        const char *name;
        EVP_PKEY *key;
        int ku;
    } keys[] = {
        { "P-256", fixture_keys.p256, KU_DIGITAL_SIGNATURE },
        { "P-384", fixture_keys.p384, KU_DIGITAL_SIGNATURE },
        { "RSA-2048", fixture_keys.rsa, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT },
    };
    for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
        size_t len = 0;
        char *csr = console_csr(keys[i].key, &len);
        time_t before = time(NULL);
        struct ca_issued *is = issue_ok(&f, csr, len);
        X509 *cert = pem_cert(is->cert_pem, is->cert_pem_len);
        assert_int_equal(strlen(is->cert_pem), is->cert_pem_len);

        int verr = 0;
        if (verify(cert, pub->ca_pem, pub->ca_pem_len, NULL, X509_PURPOSE_SSL_CLIENT, &verr) != 1) {
            fail_msg("%s: %s", keys[i].name, X509_verify_cert_error_string(verr));
        }
        /* clientAuth only: no TLS server may take it for itself. */
        assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
        assert_int_equal(
            verify(cert, pub->ca_pem, pub->ca_pem_len, NULL, X509_PURPOSE_SSL_SERVER, &verr), 0);
        assert_int_equal(X509_get_key_usage(cert), keys[i].ku);
        assert_int_equal(X509_check_ca(cert), 0);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), keys[i].key), 1);
        /* The subject: OU kept, streetAddress dropped, the CSR's order. */
        const struct rdn want[] = {
            { NID_organizationName, "Example" },
            { NID_organizationalUnitName, "Consoles" },
            { NID_commonName, "hmc.example.com" },
        };
        assert_subject(cert, want, ELEMENTSOF(want));
        assert_int_equal(X509_check_host(cert, "hmc.example.com", 0, 0, NULL), 1);
        assert_int_equal(X509_check_ip_asc(cert, "192.0.2.10", 0), 1);
        /* 365 days from now. */
        struct tm tm;
        assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm), 1);
        int64_t nb = (int64_t)timegm(&tm);
        assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm), 1);
        int64_t na = (int64_t)timegm(&tm);
        assert_true(nb >= (int64_t)before && nb <= (int64_t)time(NULL));
        assert_int_equal(na - nb, 365 * DAY);

        /* The record, ready for the log; the CA certificate handed out with it. */
        char *serial = serial_hex(cert);
        assert_string_equal(is->rec.serial, serial);
        assert_string_equal(is->rec.subject, "CN=hmc.example.com,OU=Consoles,O=Example");
        assert_string_equal(is->rec.sans, "DNS:hmc.example.com, IP:192.0.2.10");
        assert_string_equal(is->rec.requester, "admin");
        assert_ptr_equal(is->rec.pem, is->cert_pem);
        assert_int_equal(is->rec.not_before, nb);
        assert_int_equal(is->rec.not_after, na);
        assert_int_equal(is->rec.status, CADB_VALID);
        assert_non_null(is->pub);
        assert_string_equal(is->pub->ca_pem, pub->ca_pem);
        /* Nothing is in the log until ca_record. */
        struct cadb_cert *got = NULL;
        assert_int_equal(ca_get(f.ca, serial, &got), -ENOENT);
        free(serial);
        X509_free(cert);
        ca_issued_free(is);
        free(csr);
    }

    /* [ca] server_auth adds serverAuth. */
    ca_public_unref(pub);
    fx_stop(&f);
    f.cfg->ca.server_auth = true;
    fx_start_ok(&f);
    pub = ca_public(f.ca);
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    struct ca_issued *is = issue_ok(&f, csr, len);
    X509 *cert = pem_cert(is->cert_pem, is->cert_pem_len);
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT | XKU_SSL_SERVER);
    int verr = 0;
    assert_int_equal(
        verify(cert, pub->ca_pem, pub->ca_pem_len, NULL, X509_PURPOSE_SSL_SERVER, &verr), 1);
    X509_free(cert);
    ca_issued_free(is);
    free(csr);
    ca_public_unref(pub);
    fx_done(&f);
}

/* [ca] subject, san and allow_ed25519 change what is accepted. */
static void test_issue_config_variants(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-variants");
    f.cfg->ca.subject_attrs = 1u << CONFIG_ATTR_O; /* OU not kept */
    f.cfg->ca.allowed_sans |= 1u << SAN_EMAIL;
    f.cfg->ca.allow_ed25519 = true;
    fx_start_ok(&f);

    const struct req_ext email[] = { { NID_subject_alt_name, "email:ops@example.com" } };
    size_t len = 0;
    char *csr = csr_pem(fixture_keys.ed25519, console_rdns, ELEMENTSOF(console_rdns), email,
                        ELEMENTSOF(email), &len);
    struct ca_issued *is = issue_ok(&f, csr, len);
    X509 *cert = pem_cert(is->cert_pem, is->cert_pem_len);
    const struct rdn want[] = {
        { NID_organizationName, "Example" },
        { NID_commonName, "hmc.example.com" },
    };
    assert_subject(cert, want, ELEMENTSOF(want));
    assert_int_equal(X509_check_email(cert, "ops@example.com", 0, 0), 1);
    assert_int_equal(EVP_PKEY_get_id(X509_get0_pubkey(cert)), EVP_PKEY_ED25519);
    assert_string_equal(is->rec.sans, "email:ops@example.com");
    X509_free(cert);
    ca_issued_free(is);
    free(csr);
    fx_done(&f);
}

/* The bad signature of a CSR: its last byte (in the ECDSA signature's s) flipped. */
static char *csr_bad_signature(EVP_PKEY *key, size_t *ret_len)
{
    X509_REQ *req = req_make(key, console_rdns, ELEMENTSOF(console_rdns), NULL, 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    der[n - 1] ^= 0x01;
    const unsigned char *p = der;
    X509_REQ *bad = d2i_X509_REQ(NULL, &p, n);
    assert_non_null(bad);
    char *s = req_pem(bad, ret_len);
    X509_REQ_free(bad);
    X509_REQ_free(req);
    OPENSSL_free(der);
    return s;
}

static void test_issue_rejections(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-reject");
    fx_start_ok(&f);
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(rsa1024);
    EVP_PKEY *k = fixture_keys.p256;

    const struct rdn no_cn[] = { { NID_organizationName, "Example" } };
    const struct req_ext ca_true[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    const struct req_ext kcs[] = { { NID_key_usage, "critical,digitalSignature,keyCertSign" } };
    const struct req_ext code[] = { { NID_ext_key_usage, "clientAuth,codeSigning" } };
    const struct req_ext server[] = { { NID_ext_key_usage, "clientAuth,serverAuth" } };
    const struct req_ext email[] = { { NID_subject_alt_name, "DNS:a.example,email:x@y.example" } };
    size_t good_len = 0;
    char *good = console_csr(k, &good_len);

    /* Exactly CA_CSR_MAX bytes (a CSR and blank lines) is taken; one more is not. */
    char *at_max = calloc(1, CA_CSR_MAX + 2);
    assert_non_null(at_max);
    memcpy(at_max, good, good_len);
    memset(at_max + good_len, '\n', CA_CSR_MAX + 1 - good_len);
    struct ca_issued *is = issue_ok(&f, at_max, CA_CSR_MAX);
    ca_issued_free(is);

    struct {
        const char *name;
        char *csr;
        size_t len;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "no CN", NULL, 0, -EINVAL, CERTD_E_FIELD_MISSING, "CN" },
        { "RSA-1024", NULL, 0, -EKEYREJECTED, CERTD_E_KEY_WEAK, "1024" },
        { "CA:TRUE", NULL, 0, -EPERM, CERTD_E_POLICY_FORBIDS, "CA:TRUE" },
        { "keyCertSign", NULL, 0, -EPERM, CERTD_E_POLICY_FORBIDS, "keyCertSign" },
        { "codeSigning", NULL, 0, -EPERM, CERTD_E_POLICY_FORBIDS, "codeSigning" },
        { "serverAuth", NULL, 0, -EPERM, CERTD_E_POLICY_FORBIDS, "serverAuth" },
        { "email SAN", NULL, 0, -EPERM, CERTD_E_POLICY_FORBIDS, "email" },
        { "Ed25519", NULL, 0, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "Ed25519" },
        { "over 16 KiB", at_max, CA_CSR_MAX + 1, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "16384" },
        { "two CSRs", NULL, 0, -E2BIG, CERTD_E_TOO_MANY_VALUES, "more than one" },
        { "trailing junk", NULL, 0, -EBADMSG, CERTD_E_TRAILING_DATA, "after the CSR" },
        { "bad signature", NULL, 0, -EBADMSG, CERTD_E_CSR_SIGNATURE, "signature" },
        { "empty", strdup(""), 0, -EINVAL, CERTD_E_INPUT_EMPTY, "" },
        { "a certificate", NULL, 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL, "" },
    };
    cases[0].csr = csr_pem(k, no_cn, ELEMENTSOF(no_cn), console_exts, 1, &cases[0].len);
    cases[1].csr = console_csr(rsa1024, &cases[1].len);
    cases[2].csr = csr_pem(k, console_rdns, 4, ca_true, 1, &cases[2].len);
    cases[3].csr = csr_pem(k, console_rdns, 4, kcs, 1, &cases[3].len);
    cases[4].csr = csr_pem(k, console_rdns, 4, code, 1, &cases[4].len);
    cases[5].csr = csr_pem(k, console_rdns, 4, server, 1, &cases[5].len);
    cases[6].csr = csr_pem(k, console_rdns, 4, email, 1, &cases[6].len);
    cases[7].csr = console_csr(fixture_keys.ed25519, &cases[7].len);
    cases[9].csr = tu_strf("%s%s", good, good);
    cases[9].len = 2 * good_len;
    cases[10].csr = tu_strf("%sjunk\n", good);
    cases[10].len = good_len + 5;
    cases[11].csr = csr_bad_signature(k, &cases[11].len);
    X509 *root = fixture_cert("root-ca.pem");
    cases[13].csr = cert_pem(root);
    cases[13].len = strlen(cases[13].csr);
    X509_free(root);

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        static char dummy;
        struct ca_issued *const sentinel = (struct ca_issued *)(void *)&dummy;
        struct ca_issued *out = sentinel;
        int r = ca_issue(f.ca, span_make(cases[i].csr, cases[i].len), "admin", &out, &err);
        assert_err(r, &err, cases[i].r, cases[i].code, cases[i].word, cases[i].name);
        assert_ptr_equal(out, sentinel);
    }
    /* The key policy allows Ed25519 when told to. */
    fx_stop(&f);
    f.cfg->ca.allow_ed25519 = true;
    fx_start_ok(&f);
    is = issue_ok(&f, cases[7].csr, cases[7].len);
    ca_issued_free(is);
    assert_int_equal(log_count(&f, CADB_ALL), 0);

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        if (cases[i].csr != at_max) {
            free(cases[i].csr);
        }
    }
    free(at_max);
    free(good);
    EVP_PKEY_free(rsa1024);
    fx_done(&f);
}

/* signer = off: no CA, no log, every call says so. */
static void test_signer_off(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-off");
    f.cfg->ca.signer = CONFIG_SIGNER_OFF;
    fx_start_ok(&f);
    assert_int_equal(ca_signer(f.ca), CONFIG_SIGNER_OFF);
    assert_null(ca_public(f.ca));
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    struct certd_err err = { 0 };
    struct ca_issued *is = NULL;
    int r = ca_issue(f.ca, span_make(csr, len), "admin", &is, &err);
    assert_err(r, &err, -ENODEV, CERTD_E_UNAVAILABLE, "off", "signer off");
    assert_null(is);
    size_t n = 0;
    assert_int_equal(ca_each(f.ca, CADB_ALL, count_one, &n), -ENODEV);
    err = (struct certd_err){ 0 };
    assert_int_equal(ca_refresh_crl(f.ca, &err), -EOPNOTSUPP);
    err = (struct certd_err){ 0 };
    assert_true(ca_revoke(f.ca, "AB", CADB_REASON_KEY_COMPROMISE, &err) < 0);
    /* Nothing was made in the state directory. */
    char *cadir = fx_path(&f, "ca"), *db = fx_path(&f, "ca.db");
    assert_false(exists(cadir));
    assert_false(exists(db));
    free(cadir);
    free(db);
    free(csr);
    fx_done(&f);
}

/* ---- the log: ca_record, ca_get, ca_each, ca_revoke ---- */

static void test_record_batches_and_duplicates(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-record");
    fx_start_ok(&f);
    struct certd_err err = { 0 };

    /* A batch of four, in one call. */
    struct ca_issued *v[4];
    bool dup[4];
    for (size_t i = 0; i < ELEMENTSOF(v); i++) {
        v[i] = issue_fresh(&f);
        dup[i] = true;
    }
    assert_int_equal(ca_record(f.ca, v, ELEMENTSOF(v), dup, &err), 0);
    for (size_t i = 0; i < ELEMENTSOF(v); i++) {
        assert_false(dup[i]);
        struct cadb_cert *got = NULL;
        assert_int_equal(ca_get(f.ca, v[i]->rec.serial, &got), 0);
        assert_string_equal(got->pem, v[i]->cert_pem);
        assert_string_equal(got->subject, v[i]->rec.subject);
        assert_string_equal(got->sans, "DNS:hmc.example.com, IP:192.0.2.10");
        assert_string_equal(got->requester, "admin");
        assert_int_equal(got->status, CADB_VALID);
        cadb_cert_free(got);
    }
    assert_int_equal(log_count(&f, CADB_ALL), 4);

    /* A batch of three whose middle one has a serial already in the log: the others go in. */
    struct ca_issued *w[3];
    for (size_t i = 0; i < ELEMENTSOF(w); i++) {
        w[i] = issue_fresh(&f);
    }
    memcpy(w[1]->rec.serial, v[2]->rec.serial, sizeof(w[1]->rec.serial));
    bool wdup[3] = { true, false, true };
    err = (struct certd_err){ 0 };
    assert_int_equal(ca_record(f.ca, w, ELEMENTSOF(w), wdup, &err), -EEXIST);
    assert_false(wdup[0]);
    assert_true(wdup[1]);
    assert_false(wdup[2]);
    assert_int_equal(log_count(&f, CADB_ALL), 6);
    struct cadb_cert *got = NULL;
    assert_int_equal(ca_get(f.ca, w[0]->rec.serial, &got), 0);
    cadb_cert_free(got);
    assert_int_equal(ca_get(f.ca, w[2]->rec.serial, &got), 0);
    cadb_cert_free(got);
    /* The record in the log is still the first certificate with that serial. */
    assert_int_equal(ca_get(f.ca, v[2]->rec.serial, &got), 0);
    assert_string_equal(got->pem, v[2]->cert_pem);
    cadb_cert_free(got);

    /* Two of one batch with the same new serial: the first goes in. */
    struct ca_issued *x[2] = { issue_fresh(&f), issue_fresh(&f) };
    memcpy(x[1]->rec.serial, x[0]->rec.serial, sizeof(x[1]->rec.serial));
    bool xdup[2] = { true, false };
    assert_int_equal(ca_record(f.ca, x, 2, xdup, &err), -EEXIST);
    assert_false(xdup[0]);
    assert_true(xdup[1]);
    assert_int_equal(ca_get(f.ca, x[0]->rec.serial, &got), 0);
    assert_string_equal(got->pem, x[0]->cert_pem);
    cadb_cert_free(got);
    assert_int_equal(log_count(&f, CADB_ALL), 7);

    /* The log survives a restart. */
    fx_stop(&f);
    fx_start_ok(&f);
    assert_int_equal(log_count(&f, CADB_ALL), 7);

    for (size_t i = 0; i < ELEMENTSOF(v); i++) {
        ca_issued_free(v[i]);
    }
    for (size_t i = 0; i < ELEMENTSOF(w); i++) {
        ca_issued_free(w[i]);
    }
    ca_issued_free(x[0]);
    ca_issued_free(x[1]);
    fx_done(&f);
}

static void test_revoke_and_crl(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-revoke");
    fx_start_ok(&f);
    struct ca_issued *a = issue_fresh(&f), *b = issue_fresh(&f);
    record_ok(&f, a);
    record_ok(&f, b);
    struct ca_public *pub0 = ca_public(f.ca);
    X509 *root = pem_cert(pub0->ca_pem, pub0->ca_pem_len);

    struct certd_err err = { 0 };
    assert_int_equal(ca_revoke(f.ca, a->rec.serial, CADB_REASON_KEY_COMPROMISE, &err), 0);
    struct ca_public *pub1 = ca_public(f.ca);
    assert_ptr_not_equal(pub1, pub0);
    assert_true(pub1->crl_number > pub0->crl_number);
    assert_string_equal(pub1->ca_pem, pub0->ca_pem);
    /* The new CRL: signed by the root, lists a with its reason, not b; on disk as published. */
    X509_CRL *crl = crl_der(pub1->crl_der, pub1->crl_der_len);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(root)), 1);
    assert_int_equal(crl_number(crl), pub1->crl_number);
    assert_int_equal(crl_reason_of(crl, a->rec.serial), CADB_REASON_KEY_COMPROMISE);
    assert_int_equal(crl_reason_of(crl, b->rec.serial), -2);
    char *crl_path = fx_path(&f, "ca/crl.der");
    size_t flen = 0;
    char *file = tu_file_get(crl_path, &flen);
    assert_int_equal(flen, pub1->crl_der_len);
    assert_memory_equal(file, pub1->crl_der, flen);
    free(file);
    /* A relying party checking the CRL refuses a and takes b. */
    X509 *ca_cert = pem_cert(a->cert_pem, a->cert_pem_len);
    X509 *cb = pem_cert(b->cert_pem, b->cert_pem_len);
    int verr = 0;
    assert_int_equal(
        verify(ca_cert, pub1->ca_pem, pub1->ca_pem_len, crl, X509_PURPOSE_SSL_CLIENT, &verr), 0);
    assert_int_equal(verr, X509_V_ERR_CERT_REVOKED);
    assert_int_equal(
        verify(cb, pub1->ca_pem, pub1->ca_pem_len, crl, X509_PURPOSE_SSL_CLIENT, &verr), 1);
    X509_free(ca_cert);
    X509_free(cb);
    X509_CRL_free(crl);

    /* The log says so. */
    struct cadb_cert *got = NULL;
    assert_int_equal(ca_get(f.ca, a->rec.serial, &got), 0);
    assert_int_equal(got->status, CADB_REVOKED);
    assert_int_equal(got->reason, CADB_REASON_KEY_COMPROMISE);
    assert_true(got->revoked_at > 0);
    cadb_cert_free(got);
    assert_int_equal(ca_get(f.ca, b->rec.serial, &got), 0);
    assert_int_equal(got->status, CADB_VALID);
    cadb_cert_free(got);
    assert_int_equal(log_count(&f, CADB_ALL), 2);
    assert_int_equal(log_count(&f, CADB_ONLY_REVOKED), 1);

    /* Refusals change neither the log nor the CRL. */
    struct {
        const char *name;
        const char *serial;
        int reason;
        int r;
        enum certd_errc code;
        const char *word;
        const char *field;
    } cases[] = {
        { "unknown serial", "ABCDEF0123", CADB_REASON_SUPERSEDED, -ENOENT, CERTD_E_NOT_FOUND,
          "ABCDEF0123", "" },
        { "revoked twice", a->rec.serial, CADB_REASON_SUPERSEDED, -EALREADY, CERTD_E_DUPLICATE,
          "already", "" },
        { "not a serial", "xyz", CADB_REASON_SUPERSEDED, -EINVAL, CERTD_E_FIELD_INVALID,
          "serial number", "SerialNumber" },
        { "bad reason", b->rec.serial, 7, -EINVAL, CERTD_E_FIELD_INVALID, "reason",
          "RevocationReason" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        err = (struct certd_err){ 0 };
        int r = ca_revoke(f.ca, cases[i].serial, cases[i].reason, &err);
        assert_err(r, &err, cases[i].r, cases[i].code, cases[i].word, cases[i].name);
        assert_string_equal(err.field, cases[i].field);
        struct ca_public *p = ca_public(f.ca);
        assert_ptr_equal(p, pub1);
        ca_public_unref(p);
    }
    assert_int_equal(log_count(&f, CADB_ONLY_REVOKED), 1);

    /* Refreshed without a change: a newer number, the same entries. */
    assert_int_equal(ca_refresh_crl(f.ca, &err), 0);
    struct ca_public *pub2 = ca_public(f.ca);
    assert_true(pub2->crl_number > pub1->crl_number);
    crl = crl_der(pub2->crl_der, pub2->crl_der_len);
    assert_int_equal(crl_reason_of(crl, a->rec.serial), CADB_REASON_KEY_COMPROMISE);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    X509_CRL_free(crl);

    /* A restart keeps the revocation in its CRL. */
    ca_public_unref(pub2);
    fx_stop(&f);
    fx_start_ok(&f);
    pub2 = ca_public(f.ca);
    crl = crl_der(pub2->crl_der, pub2->crl_der_len);
    assert_int_equal(crl_reason_of(crl, a->rec.serial), CADB_REASON_KEY_COMPROMISE);
    X509_CRL_free(crl);

    ca_public_unref(pub2);
    ca_public_unref(pub1);
    ca_public_unref(pub0);
    X509_free(root);
    free(crl_path);
    ca_issued_free(a);
    ca_issued_free(b);
    fx_done(&f);
}

/* ---- the exec signer ---- */

/* A host CA (P-256) in its own scratch directory, for helpers to sign with. */
struct host_ca {
    char *dir;
    char *cert_path, *key_path;
    X509 *cert;
    EVP_PKEY *key;
    char *pem;
};

static void host_ca_init(struct host_ca *h)
{
    h->dir = scratch_dir("ca-host");
    h->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(h->key);
    h->cert = ca_cert_make(h->key, "Host CA", "critical,CA:TRUE", "critical,keyCertSign,cRLSign");
    h->pem = cert_pem(h->cert);
    h->cert_path = tu_strf("%s/ca.pem", h->dir);
    h->key_path = tu_strf("%s/ca-key.pem", h->dir);
    file_put(h->cert_path, h->pem, strlen(h->pem), 0644);
    char *k = key_pem(h->key);
    file_put(h->key_path, k, strlen(k), 0600);
    free(k);
}

static void host_ca_done(struct host_ca *h)
{
    X509_free(h->cert);
    EVP_PKEY_free(h->key);
    free(h->pem);
    free(h->cert_path);
    free(h->key_path);
    scratch_rm(h->dir);
}

static char *signer_path(void)
{
    const char *root = getenv("CERTD_SOURCE_ROOT");
    assert_non_null(root);
    return tu_strf("%s/examples/openssl-signer", root);
}

static void test_exec_signs_with_helper(void **state)
{
    (void)state;
    struct fx f;
    struct host_ca h;
    fx_init(&f, "ca-exec");
    host_ca_init(&h);
    char *helper = signer_path();
    const char *argv[] = { helper, h.cert_path, h.key_path, "30" };
    fx_set_exec(&f, argv, ELEMENTSOF(argv), 30);
    fx_start_ok(&f);
    assert_int_equal(ca_signer(f.ca), CONFIG_SIGNER_EXEC);
    /* No [ca] cert: no CA certificate of our own, no CRL, no files of a local CA. */
    struct ca_public *pub = ca_public(f.ca);
    assert_non_null(pub);
    assert_null(pub->ca_pem);
    assert_null(pub->crl_der);
    char *cadir = fx_path(&f, "ca");
    assert_false(exists(cadir));
    free(cadir);

    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    struct ca_issued *is = issue_ok(&f, csr, len);
    X509 *cert = pem_cert(is->cert_pem, is->cert_pem_len);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fixture_keys.p256), 1);
    /* The helper's chain goes out with the certificate. */
    assert_non_null(is->pub);
    assert_string_equal(is->pub->ca_pem, h.pem);
    assert_non_null(strstr(is->pub->subject, "CN=Host CA"));
    int verr = 0;
    assert_int_equal(verify(cert, h.pem, strlen(h.pem), NULL, X509_PURPOSE_SSL_CLIENT, &verr), 1);
    /* Only the leaf went into the certificate PEM and the record. */
    assert_null(strstr(is->cert_pem + 1, "-----BEGIN"));
    char *serial = serial_hex(cert);
    assert_string_equal(is->rec.serial, serial);
    assert_string_equal(is->rec.sans, "DNS:hmc.example.com, IP:192.0.2.10");
    record_ok(&f, is);
    struct cadb_cert *got = NULL;
    assert_int_equal(ca_get(f.ca, serial, &got), 0);
    assert_string_equal(got->pem, is->cert_pem);
    cadb_cert_free(got);
    /* Revocation is the host CA's business. */
    struct certd_err err = { 0 };
    int r = ca_revoke(f.ca, serial, CADB_REASON_KEY_COMPROMISE, &err);
    assert_err(r, &err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS, "exec", "exec revoke");
    free(serial);
    X509_free(cert);
    ca_issued_free(is);
    ca_public_unref(pub);

    /* With [ca] cert given, that certificate goes out when the helper prints only the leaf. */
    fx_stop(&f);
    char *leaf_only = tu_strf("%s/leaf-only", h.dir);
    char *body =
        tu_strf("#!/bin/sh\nset -e\n%s \"$@\" | sed -n '1,/-----END CERTIFICATE-----/p'\n", helper);
    script_put(leaf_only, body);
    const char *argv2[] = { leaf_only, h.cert_path, h.key_path };
    fx_set_exec(&f, argv2, ELEMENTSOF(argv2), 30);
    set_str(&f.cfg->ca.cert, h.cert_path);
    f.cfg->ca.is_cert_given = true;
    fx_start_ok(&f);
    pub = ca_public(f.ca);
    assert_string_equal(pub->ca_pem, h.pem);
    is = issue_ok(&f, csr, len);
    assert_ptr_equal(is->pub, pub);
    ca_issued_free(is);
    ca_public_unref(pub);

    free(body);
    free(leaf_only);
    free(csr);
    free(helper);
    host_ca_done(&h);
    fx_done(&f);
}

/* The CSR is checked before any helper runs: a helper gets only what certd would sign. */
static void test_exec_checks_csr_first(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-exec-check");
    char *helper = fx_path(&f, "helper"), *ran = fx_path(&f, "ran");
    script_put(helper, "#!/bin/sh\ntouch \"$1\"\nexit 3\n");
    const char *argv[] = { helper, ran };
    fx_set_exec(&f, argv, ELEMENTSOF(argv), 30);
    fx_start_ok(&f);
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(rsa1024);

    struct {
        const char *name;
        char *csr;
        size_t len;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "RSA-1024", NULL, 0, -EKEYREJECTED, CERTD_E_KEY_WEAK, "1024" },
        { "bad signature", NULL, 0, -EBADMSG, CERTD_E_CSR_SIGNATURE, "signature" },
        { "Ed25519", NULL, 0, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "Ed25519" },
    };
    cases[0].csr = console_csr(rsa1024, &cases[0].len);
    cases[1].csr = csr_bad_signature(fixture_keys.p256, &cases[1].len);
    cases[2].csr = console_csr(fixture_keys.ed25519, &cases[2].len);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        struct ca_issued *is = NULL;
        int r = ca_issue(f.ca, span_make(cases[i].csr, cases[i].len), "admin", &is, &err);
        assert_err(r, &err, cases[i].r, cases[i].code, cases[i].word, cases[i].name);
        assert_null(is);
        assert_false(exists(ran));
        free(cases[i].csr);
    }
    EVP_PKEY_free(rsa1024);
    free(helper);
    free(ran);
    fx_done(&f);
}

/* Reap the orphans of a helper's process group (we are their subreaper); each must have been
 * killed by SIGKILL. Then nothing of the group is left. */
static void reap_group_killed(pid_t pgid)
{
    int st = 0;
    pid_t w;
    while ((w = waitpid(-pgid, &st, 0)) > 0) {
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            fail_msg("process %d of the helper's group ended with status %#x, not by SIGKILL",
                     (int)w, (unsigned)st);
        }
    }
    assert_int_equal(errno, ECHILD);
    assert_int_equal(kill(-pgid, 0), -1);
    assert_int_equal(errno, ESRCH);
}

static pid_t pid_from_file(const char *path)
{
    char *s = tu_file_get(path, NULL);
    assert_non_null(s);
    s[strcspn(s, "\n")] = '\0';
    uint64_t v = 0;
    assert_int_equal(parse_u64(s, 2, INT32_MAX, &v), 0);
    free(s);
    return (pid_t)v;
}

static void test_exec_failures(void **state)
{
    (void)state;
    struct fx f;
    struct host_ca h;
    fx_init(&f, "ca-exec-fail");
    host_ca_init(&h);
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    /* A correct answer made ahead, for helpers that only print a file. */
    X509 *leaf = leaf_make(fixture_keys.p256, h.cert, h.key);
    char *leaf_pem = cert_pem(leaf);
    char *answer = tu_strf("%s%s", leaf_pem, h.pem);
    char *answer_path = tu_strf("%s/answer.pem", h.dir);
    file_put(answer_path, answer, strlen(answer), 0644);
    char *with_key = tu_strf("%s%s", answer, "");
    {
        char *k = key_pem(fixture_keys.p256);
        free(with_key);
        with_key = tu_strf("%s%s", answer, k);
        free(k);
    }
    char *with_key_path = tu_strf("%s/with-key.pem", h.dir);
    file_put(with_key_path, with_key, strlen(with_key), 0644);
    /* Exactly CA_EXEC_OUT_MAX bytes of output (the answer, then blank lines), and one more. */
    char *padded = malloc(CA_EXEC_OUT_MAX + 1);
    assert_non_null(padded);
    memcpy(padded, answer, strlen(answer));
    memset(padded + strlen(answer), '\n', CA_EXEC_OUT_MAX + 1 - strlen(answer));
    char *at_max_path = tu_strf("%s/at-max.pem", h.dir), *over_path = tu_strf("%s/over.pem", h.dir);
    file_put(at_max_path, padded, CA_EXEC_OUT_MAX, 0644);
    file_put(over_path, padded, CA_EXEC_OUT_MAX + 1, 0644);

    const struct {
        const char *name;
        const char *body; /* $1: the helper's scratch file */
        const char *arg;
        int r;
        enum certd_errc code;
        const char *word;
        const char *not_word;
    } cases[] = {
        { "not ready", "cat >/dev/null\necho 'the host CA is busy' >&2\nexit 75\n", "", -EAGAIN,
          CERTD_E_UNAVAILABLE, "not ready; ask again later: the host CA is busy", NULL },
        { "fails", "cat >/dev/null\nprintf 'boom: no \\033 way\\nsecond line\\n' >&2\nexit 3\n", "",
          -EPROTO, CERTD_E_SIGNER_FAILED, "exited with status 3: boom: no ? way", "second line" },
        { "killed", "kill -9 $$\n", "", -EPROTO, CERTD_E_SIGNER_FAILED, "killed by signal 9",
          NULL },
        { "garbage", "cat >/dev/null\necho 'hello, I am not a certificate'\n", "", -EPROTO,
          CERTD_E_SIGNER_FAILED, "no usable certificate", NULL },
        { "nothing", "cat >/dev/null\n", "", -EPROTO, CERTD_E_SIGNER_FAILED,
          "no usable certificate", NULL },
        { "another key", "cat >/dev/null\ncat \"$1\"\n", h.cert_path, -EPROTO,
          CERTD_E_SIGNER_FAILED, "another key", NULL },
        { "a private key", "cat >/dev/null\ncat \"$1\"\n", with_key_path, -EPROTO,
          CERTD_E_SIGNER_FAILED, "private key", "BEGIN" },
        { "too much", "cat >/dev/null\ncat \"$1\"\n", over_path, -EPROTO, CERTD_E_SIGNER_FAILED,
          "more than 65536 bytes", NULL },
        { "much", "cat >/dev/null\ncat \"$1\"\n", at_max_path, 0, CERTD_E_OK, "", NULL },
        { "never reads its input", "cat \"$1\"\n", answer_path, 0, CERTD_E_OK, "", NULL },
        { "much garbage", "head -c 1000000 /dev/zero | tr '\\0' A\n", "", -EPROTO,
          CERTD_E_SIGNER_FAILED, "more than 65536 bytes", NULL },
    };
    char *helper = fx_path(&f, "helper");
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char *body = tu_strf("#!/bin/sh\n%s", cases[i].body);
        script_put(helper, body);
        const char *argv[] = { helper, cases[i].arg };
        fx_set_exec(&f, argv, ELEMENTSOF(argv), 30);
        fx_start_ok(&f);
        struct certd_err err = { 0 };
        struct ca_issued *is = NULL;
        int r = ca_issue(f.ca, span_make(csr, len), "admin", &is, &err);
        assert_err(r, &err, cases[i].r, cases[i].code, cases[i].word, cases[i].name);
        if (cases[i].not_word && strstr(err.msg, cases[i].not_word)) {
            fail_msg("%s: \"%s\" in \"%s\"", cases[i].name, cases[i].not_word, err.msg);
        }
        if (r == 0) {
            assert_string_equal(is->cert_pem, leaf_pem);
            assert_string_equal(is->pub->ca_pem, h.pem);
            ca_issued_free(is);
        } else {
            assert_null(is);
        }
        fx_stop(&f);
        free(body);
    }

    /* A helper that cannot be started. */
    char *missing = fx_path(&f, "no-such-helper");
    const char *argv[] = { missing };
    fx_set_exec(&f, argv, 1, 30);
    fx_start_ok(&f);
    struct certd_err err = { 0 };
    struct ca_issued *is = NULL;
    int r = ca_issue(f.ca, span_make(csr, len), "admin", &is, &err);
    /* Valgrind runs posix_spawn as fork and exec, so the exec's failure comes back as the
     * child's status 127 rather than as posix_spawn's error. */
    const char *preload = getenv("LD_PRELOAD");
    bool is_valgrind = preload && strstr(preload, "vgpreload");
    assert_err(r, &err, -EPROTO, CERTD_E_SIGNER_FAILED,
               is_valgrind ? "exited with status 127" : "cannot run the signing helper",
               "missing helper");
    assert_non_null(strstr(err.msg, missing));

    free(missing);
    free(helper);
    free(padded);
    free(at_max_path);
    free(over_path);
    free(with_key_path);
    free(with_key);
    free(answer_path);
    free(answer);
    free(leaf_pem);
    X509_free(leaf);
    free(csr);
    host_ca_done(&h);
    fx_done(&f);
}

/* A helper that does not answer in time is killed with its whole process group. */
static void test_exec_timeout_kills_group(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-exec-timeout");
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    char *helper = fx_path(&f, "helper"), *self = fx_path(&f, "self"),
         *child = fx_path(&f, "child");
    script_put(helper, "#!/bin/sh\necho $$ > \"$1\"\nsleep 30 &\necho $! > \"$2\"\nwait\n");
    const char *argv[] = { helper, self, child };
    fx_set_exec(&f, argv, ELEMENTSOF(argv), 1);
    fx_start_ok(&f);
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);

    struct certd_err err = { 0 };
    struct ca_issued *is = NULL;
    int64_t t0 = mono_ms();
    int r = ca_issue(f.ca, span_make(csr, len), "admin", &is, &err);
    int64_t elapsed = mono_ms() - t0;
    assert_err(r, &err, -EPROTO, CERTD_E_SIGNER_FAILED, "did not answer within 1 s", "timeout");
    assert_null(is);
    /* The deadline, not the 30 s of the helper (a generous bound for slow machines). */
    assert_true(elapsed >= 1000);
    assert_true(elapsed < 15000);
    pid_t pgid = pid_from_file(self), sleeper = pid_from_file(child);
    assert_int_equal(kill(pgid, 0), -1);
    reap_group_killed(pgid);
    assert_int_equal(kill(sleeper, 0), -1);
    assert_int_equal(errno, ESRCH);

    /* A helper that answers but leaves a process behind in its group: that one is killed. */
    fx_stop(&f);
    struct host_ca h;
    host_ca_init(&h);
    char *signer = signer_path();
    char *body =
        tu_strf("#!/bin/sh\necho $$ > \"$1\"\nsleep 30 >/dev/null 2>&1 &\necho $! > \"$2\"\n"
                "exec %s \"$3\" \"$4\"\n",
                signer);
    script_put(helper, body);
    const char *argv2[] = { helper, self, child, h.cert_path, h.key_path };
    fx_set_exec(&f, argv2, ELEMENTSOF(argv2), 30);
    fx_start_ok(&f);
    is = issue_ok(&f, csr, len);
    ca_issued_free(is);
    pgid = pid_from_file(self);
    reap_group_killed(pgid);

    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
    free(body);
    free(signer);
    host_ca_done(&h);
    free(csr);
    free(helper);
    free(self);
    free(child);
    fx_done(&f);
}

/* What a helper gets: stdin, stdout, stderr and nothing else of ours; a clean environment. */
static void test_exec_inherits_nothing(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-exec-fds");
    char *helper = fx_path(&f, "helper"), *fds = fx_path(&f, "fds"), *env = fx_path(&f, "env");
    char *input = fx_path(&f, "input");
    script_put(helper, "#!/bin/sh\ncat > \"$3\"\nls /proc/self/fd > \"$1\"\nenv > \"$2\"\n"
                       "exit 3\n");
    const char *argv[] = { helper, fds, env, input };
    fx_set_exec(&f, argv, ELEMENTSOF(argv), 30);
    fx_start_ok(&f);
    /* Descriptors of ours that an exec would pass on: not close-on-exec. */
    int leak1 = open("/dev/null", O_RDONLY);
    int leak2 = dup(STDERR_FILENO);
    assert_true(leak1 >= 0 && leak2 >= 0);
    assert_int_equal(setenv("CERTD_TEST_SECRET", "do-not-pass", 1), 0);
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);

    struct certd_err err = { 0 };
    struct ca_issued *is = NULL;
    int r = ca_issue(f.ca, span_make(csr, len), "admin", &is, &err);
    assert_err(r, &err, -EPROTO, CERTD_E_SIGNER_FAILED, "status 3", "fds");
    /* ls's own: 0, 1 (the file), 2 and the directory it reads. */
    char *got = tu_file_get(fds, NULL);
    assert_non_null(got);
    assert_string_equal(got, "0\n1\n2\n3\n");
    free(got);
    got = tu_file_get(env, NULL);
    assert_non_null(got);
    assert_null(strstr(got, "CERTD_TEST_SECRET"));
    assert_non_null(strstr(got, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"));
    assert_non_null(strstr(got, "LC_ALL=C"));
    free(got);
    /* The CSR, exactly as given, on stdin. */
    size_t in_len = 0;
    got = tu_file_get(input, &in_len);
    assert_int_equal(in_len, len);
    assert_memory_equal(got, csr, len);
    free(got);

    assert_int_equal(unsetenv("CERTD_TEST_SECRET"), 0);
    (void)close(leak1);
    (void)close(leak2);
    free(csr);
    free(helper);
    free(fds);
    free(env);
    free(input);
    fx_done(&f);
}

/* ---- ca_sign on the worker pool ---- */

struct sign_call {
    struct sign_batch *batch;
    int n_done;
    int r;
    struct certd_err err;
    char serial[CADB_SERIAL_MAX];
    char *cert_pem;
    char *ca_pem;
    int was_recorded; /* cadb_has_serial through another handle, in the callback */
};

struct sign_batch {
    struct cadb *db; /* a handle of our own on the log */
    int n_finished;
};

static void sign_cb(const struct ca_sign_result *res, void *arg)
{
    struct sign_call *c = arg;
    c->n_done++;
    c->batch->n_finished++;
    c->r = res->r;
    c->err = res->err;
    if (res->r == 0) {
        assert_non_null(res->serial);
        assert_true(strlen(res->serial) < sizeof(c->serial));
        memcpy(c->serial, res->serial, strlen(res->serial) + 1);
        c->cert_pem = strndup(res->cert_pem, res->cert_pem_len);
        assert_non_null(res->pub);
        c->ca_pem = res->pub->ca_pem ? strdup(res->pub->ca_pem) : NULL;
        c->was_recorded = c->batch->db ? cadb_has_serial(c->batch->db, res->serial) : -1;
    }
}

static void run_until(struct fx *f, const struct sign_batch *b, int n)
{
    while (b->n_finished < n) {
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
}

#define N_SIGN 32

static void test_sign_many_at_once(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-sign");
    fx_with_loop(&f);
    fx_start_ok(&f);
    struct ca_public *pub = ca_public(f.ca);
    struct sign_batch b = { 0 };
    struct certd_err err = { 0 };
    assert_int_equal(cadb_open(f.cfg->ca.db, &b.db, &err), 0);

    EVP_PKEY *keys[N_SIGN];
    char *csrs[N_SIGN];
    size_t lens[N_SIGN];
    struct sign_call calls[N_SIGN];
    for (size_t i = 0; i < N_SIGN; i++) {
        keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(keys[i]);
        csrs[i] = console_csr(keys[i], &lens[i]);
        calls[i] = (struct sign_call){ .batch = &b };
    }
    for (size_t i = 0; i < N_SIGN; i++) {
        assert_int_equal(ca_sign(f.ca, span_make(csrs[i], lens[i]), "admin", sign_cb, &calls[i]),
                         0);
        /* The CSR was copied. */
        memset(csrs[i], 'X', lens[i]);
    }
    run_until(&f, &b, N_SIGN);
    for (size_t i = 0; i < N_SIGN; i++) {
        struct sign_call *c = &calls[i];
        if (c->r != 0) {
            fail_msg("signing %zu: r=%d %s", i, c->r, c->err.msg);
        }
        /* Recorded durably before it was handed out. */
        assert_int_equal(c->was_recorded, 1);
        X509 *cert = pem_cert(c->cert_pem, strlen(c->cert_pem));
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), keys[i]), 1);
        char *serial = serial_hex(cert);
        assert_string_equal(serial, c->serial);
        assert_string_equal(c->ca_pem, pub->ca_pem);
        int verr = 0;
        assert_int_equal(
            verify(cert, pub->ca_pem, pub->ca_pem_len, NULL, X509_PURPOSE_SSL_CLIENT, &verr), 1);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(calls[j].serial, c->serial);
        }
        struct cadb_cert *got = NULL;
        assert_int_equal(ca_get(f.ca, c->serial, &got), 0);
        assert_string_equal(got->pem, c->cert_pem);
        assert_string_equal(got->requester, "admin");
        cadb_cert_free(got);
        free(serial);
        X509_free(cert);
    }
    assert_int_equal(log_count(&f, CADB_ALL), N_SIGN);

    /* Bad CSRs come back with their error, and nothing is recorded. */
    struct sign_call bad = { .batch = &b };
    assert_int_equal(ca_sign(f.ca, span_make("garbage", 7), "admin", sign_cb, &bad), 0);
    run_until(&f, &b, N_SIGN + 1);
    assert_int_equal(bad.r, -EBADMSG);
    assert_int_equal(bad.err.code, CERTD_E_INPUT_GARBAGE);
    assert_int_equal(log_count(&f, CADB_ALL), N_SIGN);

    /* Every done came once, also after the pool is gone. */
    fx_stop(&f);
    for (size_t i = 0; i < N_SIGN; i++) {
        assert_int_equal(calls[i].n_done, 1);
        free(calls[i].cert_pem);
        free(calls[i].ca_pem);
        free(csrs[i]);
        EVP_PKEY_free(keys[i]);
    }
    assert_int_equal(bad.n_done, 1);
    b.db = cadb_close(b.db);
    ca_public_unref(pub);
    fx_done(&f);
}

static void test_sign_signer_off(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-sign-off");
    f.cfg->ca.signer = CONFIG_SIGNER_OFF;
    fx_with_loop(&f);
    fx_start_ok(&f);
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    struct sign_batch b = { 0 };
    struct sign_call c = { .batch = &b };
    assert_int_equal(ca_sign(f.ca, span_make(csr, len), "admin", sign_cb, &c), 0);
    run_until(&f, &b, 1);
    assert_err(c.r, &c.err, -ENODEV, CERTD_E_UNAVAILABLE, "signer = off", "ca_sign off");
    fx_stop(&f);
    assert_int_equal(c.n_done, 1);
    free(csr);
    fx_done(&f);
}

/* A serial-lane job that holds the lane until the test opens its gate. */
struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool is_started, is_open, is_done;
};

static void gate_run(void *arg)
{
    struct gate *g = arg;
    (void)pthread_mutex_lock(&g->m);
    g->is_started = true;
    (void)pthread_cond_broadcast(&g->c);
    while (!g->is_open) {
        (void)pthread_cond_wait(&g->c, &g->m);
    }
    (void)pthread_mutex_unlock(&g->m);
}

static void gate_done(void *arg, bool cancelled)
{
    struct gate *g = arg;
    (void)cancelled;
    g->is_done = true;
}

/*
 * The pool stops while signings wait for their record: one batch queued on the serial lane
 * (behind a job that holds it), another signing waiting for that batch. Every done still comes,
 * once, with an error; nothing unrecorded is handed out.
 */
static void test_sign_stop_in_flight(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-sign-stop");
    fx_with_loop(&f);
    fx_start_ok(&f);
    struct gate g = { .is_started = false };
    assert_int_equal(pthread_mutex_init(&g.m, NULL), 0);
    assert_int_equal(pthread_cond_init(&g.c, NULL), 0);
    assert_int_equal(worker_submit(f.pool, WORKER_LANE_SERIAL, gate_run, gate_done, &g), 0);
    (void)pthread_mutex_lock(&g.m);
    while (!g.is_started) {
        (void)pthread_cond_wait(&g.c, &g.m);
    }
    (void)pthread_mutex_unlock(&g.m);

    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    struct sign_batch b = { 0 };
    struct sign_call c[2] = { { .batch = &b }, { .batch = &b } };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ca_sign(f.ca, span_make(csr, len), "admin", sign_cb, &c[i]), 0);
    }
    /*
     * One signing runs at a time: first the gate and the first signing (2 pending); once it is
     * signed, its batch queues behind the gate and the second signing runs (3); once that one is
     * signed too, it waits for the batch (2 again: the gate and the batch).
     */
    while (worker_pool_pending(f.pool) != 3) {
        assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
    }
    while (worker_pool_pending(f.pool) != 2) {
        assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
    }
    assert_int_equal(b.n_finished, 0);
    worker_pool_stop(f.pool);
    (void)pthread_mutex_lock(&g.m);
    g.is_open = true;
    (void)pthread_cond_broadcast(&g.c);
    (void)pthread_mutex_unlock(&g.m);
    while (worker_pool_pending(f.pool) > 0) {
        assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
    }
    assert_true(g.is_done);
    for (size_t i = 0; i < 2; i++) {
        if (c[i].n_done != 1 || c[i].r >= 0) {
            fail_msg("signing %zu: %d dones, r=%d", i, c[i].n_done, c[i].r);
        }
        assert_int_equal(c[i].err.code, CERTD_E_UNAVAILABLE);
    }
    fx_stop(&f);
    assert_int_equal(c[0].n_done, 1);
    assert_int_equal(c[1].n_done, 1);
    /* Nothing was recorded. */
    fx_start_ok(&f);
    assert_int_equal(log_count(&f, CADB_ALL), 0);

    (void)pthread_cond_destroy(&g.c);
    (void)pthread_mutex_destroy(&g.m);
    free(csr);
    fx_done(&f);
}

/* Signings that finish before their loop turn: the pool freed with them still owed. */
static void test_sign_free_with_pending(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "ca-sign-free");
    fx_with_loop(&f);
    fx_start_ok(&f);
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    struct sign_batch b = { 0 };
    struct sign_call c[8];
    for (size_t i = 0; i < ELEMENTSOF(c); i++) {
        c[i] = (struct sign_call){ .batch = &b };
        assert_int_equal(ca_sign(f.ca, span_make(csr, len), "admin", sign_cb, &c[i]), 0);
    }
    fx_stop(&f);
    for (size_t i = 0; i < ELEMENTSOF(c); i++) {
        assert_int_equal(c[i].n_done, 1);
        assert_true(c[i].r < 0);
        assert_int_equal(c[i].err.code, CERTD_E_UNAVAILABLE);
    }
    fx_start_ok(&f);
    assert_int_equal(log_count(&f, CADB_ALL), 0);
    free(csr);
    fx_done(&f);
}

/*
 * signer = exec through ca_sign: one helper at a time (a lock directory the helper takes), at
 * most CA_EXEC_QUEUE_MAX waiting (the loop does not turn while they are submitted, so the first
 * one is still "running" for the CA), every one signed and recorded, the helper's chain out.
 */
static void test_sign_exec_queue(void **state)
{
    (void)state;
    struct fx f;
    struct host_ca h;
    fx_init(&f, "ca-sign-exec");
    host_ca_init(&h);
    fx_with_loop(&f);
    char *signer = signer_path();
    char *helper = fx_path(&f, "helper"), *lock = fx_path(&f, "lock"),
         *overlap = fx_path(&f, "overlap");
    char *body = tu_strf("#!/bin/sh\nmkdir \"$1\" || echo overlap >> \"$2\"\n%s \"$3\" \"$4\"\n"
                         "rc=$?\nrmdir \"$1\"\nexit $rc\n",
                         signer);
    script_put(helper, body);
    const char *argv[] = { helper, lock, overlap, h.cert_path, h.key_path };
    fx_set_exec(&f, argv, ELEMENTSOF(argv), 60);
    fx_start_ok(&f);
    struct sign_batch b = { 0 };
    struct certd_err err = { 0 };
    assert_int_equal(cadb_open(f.cfg->ca.db, &b.db, &err), 0);

    enum { N = CA_EXEC_QUEUE_MAX + 1 };
    struct sign_call c[N + 1];
    size_t len = 0;
    char *csr = console_csr(fixture_keys.p256, &len);
    for (size_t i = 0; i < N; i++) {
        c[i] = (struct sign_call){ .batch = &b };
        assert_int_equal(ca_sign(f.ca, span_make(csr, len), "admin", sign_cb, &c[i]), 0);
    }
    c[N] = (struct sign_call){ .batch = &b };
    assert_int_equal(ca_sign(f.ca, span_make(csr, len), "admin", sign_cb, &c[N]), -EAGAIN);
    run_until(&f, &b, N);
    for (size_t i = 0; i < N; i++) {
        if (c[i].r != 0) {
            fail_msg("signing %zu: r=%d %s", i, c[i].r, c[i].err.msg);
        }
        assert_int_equal(c[i].was_recorded, 1);
        assert_string_equal(c[i].ca_pem, h.pem);
    }
    assert_false(exists(overlap));
    assert_int_equal(log_count(&f, CADB_ALL), N);

    /* Not ready: the helper's answer comes back through done. */
    fx_stop(&f);
    script_put(helper, "#!/bin/sh\nexit 75\n");
    fx_with_loop(&f);
    fx_start_ok(&f);
    struct sign_call nr = { .batch = &b };
    assert_int_equal(ca_sign(f.ca, span_make(csr, len), "admin", sign_cb, &nr), 0);
    run_until(&f, &b, N + 1);
    assert_err(nr.r, &nr.err, -EAGAIN, CERTD_E_UNAVAILABLE, "not ready", "not ready");

    fx_stop(&f);
    for (size_t i = 0; i <= N; i++) {
        assert_int_equal(c[i].n_done, i < N ? 1 : 0);
        free(c[i].cert_pem);
        free(c[i].ca_pem);
    }
    assert_int_equal(nr.n_done, 1);
    b.db = cadb_close(b.db);
    free(csr);
    free(body);
    free(helper);
    free(lock);
    free(overlap);
    free(signer);
    host_ca_done(&h);
    fx_done(&f);
}

static int group_setup(void **state)
{
    /* As certd (main.c): a helper that exits before reading its input must not kill us. */
    (void)signal(SIGPIPE, SIG_IGN);
    (void)umask(022);
    log_set_max_level(LOG_WARNING);
    return fixture_keys_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_first_start),
        cmocka_unit_test(test_local_root_names),
        cmocka_unit_test(test_local_start_completes_crashed_write),
        cmocka_unit_test(test_local_start_refusals),
        cmocka_unit_test(test_local_configured_ca),
        cmocka_unit_test(test_issue_console_csr),
        cmocka_unit_test(test_issue_config_variants),
        cmocka_unit_test(test_issue_rejections),
        cmocka_unit_test(test_signer_off),
        cmocka_unit_test(test_record_batches_and_duplicates),
        cmocka_unit_test(test_revoke_and_crl),
        cmocka_unit_test(test_exec_signs_with_helper),
        cmocka_unit_test(test_exec_checks_csr_first),
        cmocka_unit_test(test_exec_failures),
        cmocka_unit_test(test_exec_timeout_kills_group),
        cmocka_unit_test(test_exec_inherits_nothing),
        cmocka_unit_test(test_sign_many_at_once),
        cmocka_unit_test(test_sign_signer_off),
        cmocka_unit_test(test_sign_stop_in_flight),
        cmocka_unit_test(test_sign_free_with_pending),
        cmocka_unit_test(test_sign_exec_queue),
    };
    return cmocka_run_group_tests(tests, group_setup, fixture_keys_teardown);
}
