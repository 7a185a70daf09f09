/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's CA (ca.h). The struct ca is written at start-up only; afterwards its CA key and
 * certificate are read-only (shared by every worker), the public snapshot is swapped under a
 * mutex, the log is touched by serial-lane jobs only, and the signing queues belong to the
 * loop thread.
 */
#include "ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "csr/csr.h"
#include "issue/issue.h"
#include "keys/keys.h"
#include "keys/uri.h"
#include "log/log.h"
#include "store/store.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/secret.h"
#include "worker.h"
#include "x509/bundle.h"
#include "x509/inspect.h"

/* The environment a helper runs with: nothing of ours leaks into it. */
static char exec_env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
static char exec_env_locale[] = "LC_ALL=C";
static char *const exec_env[] = { exec_env_path, exec_env_locale, NULL };

/* A CA certificate file and its key are small; a bound keeps a wrong path from eating memory. */
#define CA_FILE_MAX (256u * 1024u)
/* Attempts at a signing whose random serial was already in the log. */
#define CA_SERIAL_RETRIES 3u

struct sign_job;

struct ca {
    /* copied from the configuration */
    enum config_signer signer;
    char **exec_argv;
    size_t exec_argc;
    unsigned exec_timeout;
    char *cert_path, *key_path, *db_path, *crl_path;
    bool is_cert_given, is_key_given;
    bool is_root_forbidden;
    struct key_spec new_key;
    char common_name[65];
    unsigned root_days, crl_days;
    int keep_nids[CONFIG_ATTR_MAX];
    size_t n_keep_nids;
    struct issue_profile profile;

    OSSL_LIB_CTX *libctx;
    const char *propq;
    struct worker_pool *workers;

    char *key_uri; /* [ca] key as a URI (a TPM handle); NULL: key_path */

    /* after ca_start: read-only */
    X509 *cert;
    EVP_PKEY *key;
    bool is_key_held; /* its provider holds it (a TPM): signing runs on the serial lane */

    /* serial lane only */
    struct cadb *db;

    pthread_mutex_t lock;
    bool is_lock_ready;
    struct ca_public *pub; /* under lock */

    /* loop thread only */
    struct sign_job *commit_first, *commit_last; /* signed, waiting for their record */
    bool is_committing;
    struct sign_job *wait_first, *wait_last; /* waiting for their turn to be signed */
    size_t n_waiting;
    unsigned n_signing; /* signing jobs on the worker pool */
};

/* ---- public snapshots ---- */

struct ca_public *ca_public_ref(struct ca_public *p)
{
    if (p) {
        atomic_fetch_add_explicit(&p->refs_, 1, memory_order_relaxed);
    }
    return p;
}

struct ca_public *ca_public_unref(struct ca_public *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs_, 1, memory_order_acq_rel) == 1) {
        free(p->ca_pem);
        free(p->subject);
        free(p->crl_der);
        free(p->crl_pem);
        free(p);
    }
    return NULL;
}

static struct ca_public *public_new(void)
{
    struct ca_public *p = calloc(1, sizeof(*p));
    if (p) {
        atomic_init(&p->refs_, 1);
    }
    return p;
}

/* Fill the certificate part of p from certs (the first is the CA's own certificate). */
static int public_set_certs(struct ca_public *p, const STACK_OF(X509) *certs)
{
    X509 *first = sk_X509_value(certs, 0);
    int r = certs_to_pem(certs, &p->ca_pem, &p->ca_pem_len);
    if (r < 0) {
        return r;
    }
    r = name_to_rfc4514(X509_get_subject_name(first), &p->subject);
    if (r < 0) {
        return r;
    }
    return asn1_time_to_unix(X509_get0_notAfter(first), &p->not_after);
}

struct ca_public *ca_public(struct ca *ca)
{
    struct ca_public *p;
    if (!ca || ca->signer == CONFIG_SIGNER_OFF) {
        return NULL;
    }
    (void)pthread_mutex_lock(&ca->lock);
    p = ca_public_ref(ca->pub);
    (void)pthread_mutex_unlock(&ca->lock);
    return p;
}

static void public_publish(struct ca *ca, struct ca_public *p)
{
    struct ca_public *old;
    (void)pthread_mutex_lock(&ca->lock);
    old = ca->pub;
    ca->pub = p;
    (void)pthread_mutex_unlock(&ca->lock);
    (void)ca_public_unref(old);
}

/* ---- life cycle ---- */

static int copy_str(char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int ca_new(const struct config *cfg, OSSL_LIB_CTX *libctx, const char *propq, const char *hostname,
           struct worker_pool *workers, struct ca **ret)
{
    assert_return(cfg && hostname && ret, -EINVAL);
    const struct config_ca *c = &cfg->ca;
    _cleanup_(cleanup_ca) struct ca *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        return -ENOMEM;
    }
    if (pthread_mutex_init(&ca->lock, NULL) != 0) {
        return -ENOMEM;
    }
    ca->is_lock_ready = true;
    ca->signer = c->signer;
    ca->exec_timeout = c->exec_timeout;
    ca->is_cert_given = c->is_cert_given;
    ca->is_key_given = c->is_key_given;
    ca->new_key = c->new_key;
    ca->root_days = c->root_days;
    ca->crl_days = c->crl_days;
    ca->libctx = libctx;
    ca->propq = propq;
    ca->workers = workers;
    if (copy_str(&ca->cert_path, c->cert) < 0 || copy_str(&ca->key_path, c->key) < 0 ||
        copy_str(&ca->db_path, c->db) < 0 || copy_str(&ca->crl_path, c->crl) < 0 ||
        (c->key_uri && copy_str(&ca->key_uri, c->key_uri) < 0)) {
        return -ENOMEM;
    }
    if (c->exec_argc > 0) {
        ca->exec_argv = calloc(c->exec_argc + 1, sizeof(char *));
        if (!ca->exec_argv) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < c->exec_argc; i++) {
            if (copy_str(&ca->exec_argv[i], c->exec_argv[i]) < 0) {
                return -ENOMEM;
            }
            ca->exec_argc = i + 1;
        }
    }
    if (c->common_name) {
        (void)snprintf(ca->common_name, sizeof(ca->common_name), "%s", c->common_name);
    } else {
        /* A CN is at most 64 characters (util/limits.h); a long host name is cut. */
        (void)snprintf(ca->common_name, sizeof(ca->common_name), "certd CA %.55s", hostname);
    }
    for (int a = 0; a < CONFIG_ATTR_MAX; a++) {
        if (c->subject_attrs & (1u << a)) {
            ca->keep_nids[ca->n_keep_nids++] = config_attr_nid((enum config_attr)a);
        }
    }
    ca->profile = (struct issue_profile){
        .days = c->days,
        .key_usage = 0, /* digitalSignature, + keyEncipherment for RSA */
        .eku = CERT_EKU_CLIENT_AUTH | (c->server_auth ? CERT_EKU_SERVER_AUTH : 0u),
        .is_ca = false,
        .path_len = -1,
        .copy_sans = true,
        .allowed_sans = c->allowed_sans,
        .keys = { .allow_ed25519 = c->allow_ed25519 },
        .require_cn = true,
        .filter_subject = true,
        .refuse_excess_requests = true,
        .is_csr_verified = true,   /* ca_issue's csr_parse verified it */
        .is_key_not_needed = true, /* handed out as PEM, logged from its fields */
        .keep_subject_nids = ca->keep_nids,
        .n_keep_subject_nids = ca->n_keep_nids,
    };
    *ret = TAKE_PTR(ca);
    return 0;
}

struct ca *ca_free(struct ca *ca)
{
    if (!ca) {
        return NULL;
    }
    /* The pool is stopped: no job is left, so the queues are empty. */
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    ca->db = cadb_close(ca->db);
    (void)ca_public_unref(ca->pub);
    for (size_t i = 0; i < ca->exec_argc; i++) {
        free(ca->exec_argv[i]);
    }
    free(ca->exec_argv);
    free(ca->cert_path);
    free(ca->key_path);
    free(ca->key_uri);
    free(ca->db_path);
    free(ca->crl_path);
    if (ca->is_lock_ready) {
        (void)pthread_mutex_destroy(&ca->lock);
    }
    free(ca);
    return NULL;
}

enum config_signer ca_signer(const struct ca *ca)
{
    return ca ? ca->signer : CONFIG_SIGNER_OFF;
}

/* ---- start-up: the CA's certificate and key ---- */

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0 || errno != ENOENT;
}

/* The directory of one of the CA's paths (absolute, checked by config.c): NULL on no memory. */
static char *dir_of(const char *path)
{
    char *dir = NULL;
    const char *name = NULL;
    return path_split_name(path, &dir, &name) < 0 ? NULL : dir;
}

/* A new root: key, self-signed certificate, both written as one set. */
static int root_make(struct ca *ca, struct certd_err *err)
{
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    _cleanup_(cleanup_secret) struct secret *key_pem = NULL;
    _cleanup_free_ char *cert_pem = NULL;
    _cleanup_free_ char *dir = NULL;
    size_t cert_len = 0;
    int r;

    dir = dir_of(ca->cert_path);
    if (!dir) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = store_mkdir_p(dir, STORE_MODE_DIR);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot make the CA directory %s: %s", dir,
                       strerror(-r));
    }
    r = key_generate(ca->libctx, ca->propq, &ca->new_key, &key, err);
    if (r < 0) {
        return r;
    }
    const struct ca_root_request req = {
        .common_name = ca->common_name,
        .days = ca->root_days,
        .now = (int64_t)time(NULL),
    };
    r = issue_ca_root(ca->libctx, ca->propq, key, &req, &cert, err);
    if (r < 0) {
        return r;
    }
    r = key_private_to_pem(ca->libctx, ca->propq, key, &key_pem);
    if (r >= 0) {
        r = cert_to_pem(cert, &cert_pem, &cert_len);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the new CA: %s", strerror(-r));
    }
    const struct store_file files[] = {
        { ca->key_path, span_make(key_pem->p, key_pem->len), STORE_MODE_SECRET },
        { ca->cert_path, span_make(cert_pem, cert_len), STORE_MODE_PUBLIC },
    };
    r = store_write_set(files, ELEMENTSOF(files), err);
    if (r < 0) {
        return r;
    }
    log_notice("ca: made a new root CA '%s' (%s), valid for %u days, in %s", ca->common_name,
               OBJ_nid2sn(EVP_PKEY_get_base_id(key)), ca->root_days, ca->cert_path);
    ca->cert = TAKE_PTR(cert);
    ca->key = TAKE_PTR(key);
    return 0;
}

/* Load a certificate file: its first certificate, and all of them for the chain. */
static int certs_load(struct ca *ca, const char *path, bool nofollow, STACK_OF(X509) **ret,
                      struct certd_err *err)
{
    _cleanup_(store_buf_done) struct store_buf buf = { 0 };
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    struct certd_err e = { 0 };
    int r = store_read_file_err(path, CA_FILE_MAX, nofollow, &buf, err);
    if (r < 0) {
        return r;
    }
    r = bundle_parse(ca->libctx, ca->propq, span_make(buf.p, buf.len), CA_FILE_MAX, &b, &e);
    if (r < 0) {
        return err_set(err, r, e.code, "%s: %s", path, e.msg);
    }
    if (b->key) {
        /* A combined file: the key is read separately (and never kept twice). */
        EVP_PKEY_free(b->key);
        b->key = NULL;
    }
    *ret = b->certs;
    b->certs = NULL;
    return 0;
}

static int key_load(struct ca *ca, const char *path, bool nofollow, EVP_PKEY **ret,
                    struct certd_err *err)
{
    _cleanup_(store_buf_done) struct store_buf buf = { 0 };
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    struct certd_err e = { 0 };
    if (ca->key_uri) {
        return uri_load_key(ca->libctx, ca->propq, ca->key_uri, ret, err);
    }
    int r = store_read_file_err(path, CA_FILE_MAX, nofollow, &buf, err);
    if (r < 0) {
        return r;
    }
    if (path == ca->cert_path || strcmp(path, ca->cert_path) == 0) {
        r = bundle_parse(ca->libctx, ca->propq, span_make(buf.p, buf.len), CA_FILE_MAX, &b, &e);
        if (r >= 0 && !b->key) {
            r = err_set(&e, -EINVAL, CERTD_E_KEY_MISSING, "no private key in the file");
        }
        if (r >= 0) {
            *ret = TAKE_PTR(b->key);
        }
    } else {
        r = key_parse_pem(ca->libctx, ca->propq, span_make(buf.p, buf.len), ret, &e);
    }
    if (r < 0) {
        return err_set(err, r, e.code, "%s: %s", path, e.msg);
    }
    return 0;
}

/*
 * The key that signs: the CA's own, or, when its provider holds it (ca->key is then its public
 * half), the key loaded from its file or URI -- on the serial thread, where every use of such a
 * key runs. The caller frees it.
 */
static int ca_signing_key(struct ca *ca, EVP_PKEY **ret, struct certd_err *err)
{
    if (!ca->is_key_held) {
        if (EVP_PKEY_up_ref(ca->key) != 1) {
            return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the CA key");
        }
        *ret = ca->key;
        return 0;
    }
    int r = key_load(ca, ca->key_path, !ca->is_key_given, ret, err);
    if (r >= 0 && !key_public_eq(*ret, ca->key)) {
        EVP_PKEY_free(*ret);
        *ret = NULL;
        r = err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                    "the CA key changed since certd started: restart certd");
    }
    return r;
}

/* The certificate must be able to do the CA's work: sign certificates and CRLs. */
static int cert_check_ca(X509 *cert, const char *path, struct certd_err *err)
{
    uint32_t ku = X509_get_key_usage(cert);
    /* 1 is CA:TRUE; OpenSSL's other yeses (v1 roots, keyCertSign alone) issue_crl refuses. */
    if (X509_check_ca(cert) != 1) {
        return err_set(err, -EINVAL, CERTD_E_NOT_CA,
                       "%s is not a CA certificate (basicConstraints CA:TRUE)", path);
    }
    if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) &&
        (!(ku & KU_KEY_CERT_SIGN) || !(ku & KU_CRL_SIGN))) {
        return err_set(err, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
                       "%s: the CA certificate's keyUsage must allow keyCertSign and cRLSign",
                       path);
    }
    return 0;
}

static int local_start(struct ca *ca, struct certd_err *err)
{
    _cleanup_(cleanup_x509_stack) x509_stack *certs = NULL;
    bool have_cert, have_key;
    int r;

    if (!ca->is_cert_given && !ca->is_key_given) {
        /* Our own directory, written as a set (root_make): a crash between its renames is
         * completed before the files are looked at, not taken for a half-missing CA. */
        _cleanup_free_ char *dir = dir_of(ca->cert_path);
        if (!dir) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        r = store_recover(dir);
        if (r < 0 && r != -ENOENT) {
            return err_set(err, r, CERTD_E_STORAGE, "cannot recover the CA directory %s: %s", dir,
                           strerror(-r));
        }
    }
    have_cert = file_exists(ca->cert_path);
    have_key = ca->key_uri || file_exists(ca->key_path);
    if (!have_cert && !have_key && !ca->is_cert_given && !ca->is_key_given) {
        if (ca->is_root_forbidden) {
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND,
                           "no CA in %s: run certd once first (it makes the root)", ca->cert_path);
        }
        r = root_make(ca, err);
        if (r < 0) {
            return r;
        }
        certs = sk_X509_new_null();
        if (!certs || !sk_X509_push(certs, ca->cert) || !X509_up_ref(ca->cert)) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    } else {
        /* Never replaced silently: a CA that clients trust must not change under them. */
        r = certs_load(ca, ca->cert_path, !ca->is_cert_given, &certs, err);
        if (r < 0) {
            return r;
        }
        r = key_load(ca, ca->key_path, !ca->is_key_given, &ca->key, err);
        if (r < 0) {
            return r;
        }
        ca->cert = sk_X509_value(certs, 0);
        if (!X509_up_ref(ca->cert)) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (!key_public_eq(X509_get0_pubkey(ca->cert), ca->key)) {
            return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                           "%s is not the key of the CA certificate %s",
                           ca->key_uri ? ca->key_uri : ca->key_path, ca->cert_path);
        }
    }
    ca->is_key_held = key_is_held(ca->key);
    if (ca->is_key_held) {
        /*
         * Kept as its public half: loaded, a TPM key holds one of the TPM's three object slots
         * for as long as certd runs. ca_signing_key loads it for each batch of signatures.
         */
        EVP_PKEY *pub = NULL;
        r = key_public_dup(ca->libctx, ca->propq, ca->key, &pub);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "cannot copy the CA's public key");
        }
        EVP_PKEY_free(ca->key);
        ca->key = pub;
    }
    r = cert_check_ca(ca->cert, ca->cert_path, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_ca_public) struct ca_public *p = public_new();
    if (!p || public_set_certs(p, certs) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (p->not_after < (int64_t)time(NULL)) {
        log_warning("ca: the CA certificate %s has expired: signing requests will fail",
                    ca->cert_path);
    }
    public_publish(ca, TAKE_PTR(p));
    return 0;
}

static int exec_start(struct ca *ca, struct certd_err *err)
{
    _cleanup_(cleanup_x509_stack) x509_stack *certs = NULL;
    _cleanup_(cleanup_ca_public) struct ca_public *p = public_new();
    if (!p) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (ca->is_cert_given) {
        int r = certs_load(ca, ca->cert_path, false, &certs, err);
        if (r < 0) {
            return r;
        }
        if (public_set_certs(p, certs) < 0) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    public_publish(ca, TAKE_PTR(p));
    return 0;
}

static int crl_at_start(struct ca *ca, struct certd_err *err);

int ca_start(struct ca *ca, unsigned flags, struct certd_err *err)
{
    int r;
    assert_return(ca, -EINVAL);
    ca->is_root_forbidden = flags & CA_START_NO_ROOT;
    switch (ca->signer) {
    case CONFIG_SIGNER_OFF:
        return 0;
    case CONFIG_SIGNER_LOCAL:
        r = local_start(ca, err);
        break;
    case CONFIG_SIGNER_EXEC:
        r = exec_start(ca, err);
        break;
    default:
        return err_set(err, -EINVAL, CERTD_E_INTERNAL, "unknown signer");
    }
    if (r < 0) {
        return r;
    }
    if (ca->signer == CONFIG_SIGNER_LOCAL) {
        /* The CRL lives in STATE_DIR/ca also when the CA's own files are elsewhere. */
        _cleanup_free_ char *dir = dir_of(ca->crl_path);
        if (!dir) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        r = store_mkdir_p(dir, STORE_MODE_DIR);
        if (r < 0) {
            return err_set(err, r, CERTD_E_STORAGE, "cannot make the CA directory %s: %s", dir,
                           strerror(-r));
        }
        r = crl_at_start(ca, err);
    }
    return r;
}

/*
 * The issuance log, opened (and libsqlite3 loaded, util/dlib.h) by its first user: a certd
 * whose CA nobody uses never maps SQLite. Serial lane (or start-up, or certctl).
 */
static int ca_db(struct ca *ca, struct certd_err *err)
{
    return ca->db ? 0 : cadb_open(ca->db_path, &ca->db, err);
}

/*
 * STATE_DIR/ca/crl.der.pending exists (durably) from before a revocation is written to the
 * log until the CRL that lists it is on disk: a start that finds it makes a new CRL from the
 * log; one that does not may serve the CRL file without opening the log.
 */
static char *pending_path(const struct ca *ca)
{
    char *p = NULL;
    return asprintf(&p, "%s.pending", ca->crl_path) < 0 ? NULL : p;
}

static int pending_mark(const struct ca *ca, struct certd_err *err)
{
    _cleanup_free_ char *path = pending_path(ca);
    if (!path) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return store_write_atomic(path, span_make("", 0), STORE_MODE_SECRET, err);
}

static void pending_clear(const struct ca *ca)
{
    _cleanup_free_ char *path = pending_path(ca);
    if (path && unlink(path) < 0 && errno != ENOENT) {
        log_warning("ca: cannot remove %s: %s", path, strerror(errno));
    }
}

/* ---- the CRL ---- */

struct crl_collect {
    struct crl_entry *v;
    ASN1_INTEGER **serials;
    size_t n, cap;
};

static int crl_collect_one(const struct cadb_cert *c, void *arg)
{
    struct crl_collect *cc = arg;
    if (cc->n == cc->cap) {
        size_t cap = cc->cap ? cc->cap * 2 : 64;
        struct crl_entry *v = reallocarray(cc->v, cap, sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        cc->v = v;
        ASN1_INTEGER **s = reallocarray(cc->serials, cap, sizeof(*s));
        if (!s) {
            return -ENOMEM;
        }
        cc->serials = s;
        cc->cap = cap;
    }
    BIGNUM *bn = NULL;
    if (!BN_hex2bn(&bn, c->serial)) {
        return -ENOMEM;
    }
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    if (!ai) {
        return -ENOMEM;
    }
    cc->serials[cc->n] = ai;
    cc->v[cc->n] =
        (struct crl_entry){ .serial = ai, .revoked_at = c->revoked_at, .reason = c->reason };
    cc->n++;
    return 0;
}

static void crl_collect_done(struct crl_collect *cc)
{
    for (size_t i = 0; i < cc->n; i++) {
        ASN1_INTEGER_free(cc->serials[i]);
    }
    free(cc->serials);
    free(cc->v);
}

/* Publish crl (its DER der) with the CA's certificates as the new public snapshot. */
static int crl_publish(struct ca *ca, X509_CRL *crl, const unsigned char *der, size_t len,
                       struct certd_err *err)
{
    _cleanup_(cleanup_ca_public) struct ca_public *old = ca_public(ca);
    _cleanup_(cleanup_ca_public) struct ca_public *p = public_new();
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    _cleanup_(cleanup_ASN1_INTEGER) ASN1_INTEGER *num =
        X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    BUF_MEM *bm = NULL;
    uint64_t number = 0;

    if (!old || !p || !bio || !(p->ca_pem = strndup(old->ca_pem, old->ca_pem_len)) ||
        !(p->subject = strdup(old->subject)) || !(p->crl_der = malloc(len)) ||
        PEM_write_bio_X509_CRL(bio, crl) != 1 || BIO_get_mem_ptr(bio, &bm) != 1 ||
        !(p->crl_pem = strndup(bm->data, bm->length))) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    p->ca_pem_len = old->ca_pem_len;
    p->not_after = old->not_after;
    memcpy(p->crl_der, der, len);
    p->crl_der_len = len;
    p->crl_pem_len = bm->length;
    if (num && ASN1_INTEGER_get_uint64(&number, num) == 1) {
        p->crl_number = number;
    }
    if (asn1_time_to_unix(X509_CRL_get0_lastUpdate(crl), &p->crl_this_update) < 0) {
        p->crl_this_update = 0;
    }
    if (asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl), &p->crl_next_update) < 0) {
        p->crl_next_update = 0;
    }
    public_publish(ca, TAKE_PTR(p));
    return 0;
}

/*
 * The CRL file, when it is ours (signed by the CA key for the CA's name) and not older than
 * the one published: 1 and published, 0 when it is not usable (missing, foreign, older), or
 * -ENOMEM. With revoked (the log's revoked serials), the CRL must list exactly those, and it
 * must have at least half its lifetime left: what certd takes at start instead of a new one.
 */
static int crl_load(struct ca *ca, const struct crl_collect *revoked, bool need_fresh)
{
    _cleanup_(store_buf_done) struct store_buf buf = { 0 };
    _cleanup_(cleanup_X509_CRL) X509_CRL *crl = NULL;
    _cleanup_(cleanup_ca_public) struct ca_public *cur = ca_public(ca);
    int64_t next = 0, now = (int64_t)time(NULL);

    if (store_read_file(ca->crl_path, CA_CRL_FILE_MAX, true, &buf.p, &buf.len) < 0) {
        return 0;
    }
    const unsigned char *q = buf.p;
    crl = d2i_X509_CRL(NULL, &q, (long)buf.len);
    if (!crl || q != buf.p + buf.len ||
        X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca->cert)) != 0 ||
        X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)) != 1 ||
        asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl), &next) < 0) {
        (void)ossl_drain_errors("ca: CRL file");
        return 0;
    }
    if (need_fresh && next - now < (int64_t)ca->crl_days * 86400 / 2) {
        return 0;
    }
    if (revoked) {
        STACK_OF(X509_REVOKED) *entries = X509_CRL_get_REVOKED(crl);
        if ((size_t)sk_X509_REVOKED_num(entries) != revoked->n) {
            return 0;
        }
        for (size_t i = 0; i < revoked->n; i++) {
            X509_REVOKED *e = NULL;
            if (X509_CRL_get0_by_serial(crl, &e, revoked->serials[i]) != 1) {
                return 0;
            }
        }
    }
    _cleanup_(cleanup_ASN1_INTEGER) ASN1_INTEGER *num =
        X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t number = 0;
    if (!num || ASN1_INTEGER_get_uint64(&number, num) != 1 ||
        (cur && cur->crl_der && number <= cur->crl_number)) {
        return 0;
    }
    struct certd_err e = { 0 };
    return crl_publish(ca, crl, buf.p, buf.len, &e) < 0 ? -ENOMEM : 1;
}

/*
 * At start: no CRL yet when there is no file (nothing was ever revoked: the first one is made
 * when first asked for); the CRL file when it is ours, has half its lifetime left and no
 * revocation is pending (the log is not even opened); else the log decides: the file when it
 * lists exactly the log's revoked certificates, or a new CRL.
 */
static int crl_at_start(struct ca *ca, struct certd_err *err)
{
    _cleanup_(crl_collect_done) struct crl_collect cc = { 0 };
    _cleanup_free_ char *pending = pending_path(ca);
    if (!pending) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    bool is_pending = file_exists(pending);
    if (!is_pending && !file_exists(ca->crl_path)) {
        return 0; /* the first CRL is made when it is first asked for (ca_refresh_crl) */
    }
    int r = is_pending ? 0 : crl_load(ca, NULL, true);
    if (r == 1) {
        return 0;
    }
    if (r >= 0) {
        r = ca_db(ca, err);
        if (r < 0) {
            return r;
        }
        r = cadb_each(ca->db, CADB_ONLY_REVOKED, crl_collect_one, &cc);
    }
    if (r >= 0 && !is_pending) {
        r = crl_load(ca, &cc, true);
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r == 1) {
        return 0;
    }
    r = ca_refresh_crl(ca, err);
    if (r >= 0 && is_pending) {
        pending_clear(ca);
    }
    return r;
}

int ca_reload_crl(struct ca *ca)
{
    assert_return(ca, -EINVAL);
    if (ca->signer != CONFIG_SIGNER_LOCAL) {
        return 0;
    }
    return crl_load(ca, NULL, false);
}

int ca_refresh_crl(struct ca *ca, struct certd_err *err)
{
    _cleanup_(crl_collect_done) struct crl_collect cc = { 0 };
    _cleanup_(cleanup_X509_CRL) X509_CRL *crl = NULL;
    unsigned char *der = NULL;
    uint64_t number = 0;
    int64_t now = (int64_t)time(NULL);
    int r, len;

    assert_return(ca, -EINVAL);
    if (ca->signer != CONFIG_SIGNER_LOCAL) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_UNAVAILABLE, "only a local CA makes CRLs");
    }
    r = ca_db(ca, err);
    if (r < 0) {
        return r;
    }
    r = cadb_each(ca->db, CADB_ONLY_REVOKED, crl_collect_one, &cc);
    if (r < 0) {
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_STORAGE,
                       "cannot read the revoked certificates from %s: %s", ca->db_path,
                       strerror(-r));
    }
    r = cadb_next_crl_number(ca->db, &number);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot take a CRL number in %s: %s", ca->db_path,
                       strerror(-r));
    }
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    r = ca_signing_key(ca, &key, err);
    if (r < 0) {
        return r;
    }
    r = issue_crl(ca->libctx, ca->propq, ca->cert, key, cc.v, cc.n, number, now,
                  (int64_t)ca->crl_days * 86400, &crl, err);
    if (r < 0) {
        return r;
    }
    len = i2d_X509_CRL(crl, &der);
    if (len <= 0) {
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot encode the CRL");
    }
    r = store_write_atomic(ca->crl_path, span_make(der, (size_t)len), STORE_MODE_PUBLIC, err);
    if (r >= 0) {
        r = crl_publish(ca, crl, der, (size_t)len, err);
    }
    OPENSSL_free(der);
    if (r < 0) {
        return r;
    }
    log_info("ca: CRL number %llu with %zu revoked certificate(s)", (unsigned long long)number,
             cc.n);
    return 0;
}

int ca_revoke(struct ca *ca, const char *serial, int reason, struct certd_err *err)
{
    assert_return(ca && serial, -EINVAL);
    if (ca->signer != CONFIG_SIGNER_LOCAL) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS,
                       "certificates are revoked by the CA that signed them; this certd does "
                       "not sign (signer = %s)",
                       config_signer_name(ca->signer));
    }
    int r = ca_db(ca, err);
    if (r >= 0) {
        r = pending_mark(ca, err);
    }
    if (r < 0) {
        return r;
    }
    r = cadb_revoke(ca->db, serial, reason, (int64_t)time(NULL), err);
    if (r < 0) {
        pending_clear(ca); /* nothing changed */
        return r;
    }
    log_notice("ca: revoked serial %s (%s)", serial, cadb_reason_name(reason));
    r = ca_refresh_crl(ca, err);
    if (r >= 0) {
        pending_clear(ca);
    }
    return r;
}

int ca_each(struct ca *ca, enum cadb_filter filter, cadb_each_fn fn, void *arg)
{
    assert_return(ca && fn, -EINVAL);
    if (ca->signer == CONFIG_SIGNER_OFF) {
        return -ENODEV;
    }
    int r = ca_db(ca, NULL);
    return r < 0 ? r : cadb_each(ca->db, filter, fn, arg);
}

int ca_get(struct ca *ca, const char *serial, struct cadb_cert **ret)
{
    assert_return(ca && serial && ret, -EINVAL);
    if (ca->signer == CONFIG_SIGNER_OFF) {
        return -ENODEV;
    }
    int r = ca_db(ca, NULL);
    return r < 0 ? r : cadb_get(ca->db, serial, ret);
}

/* ---- issuing ---- */

void ca_issued_free(struct ca_issued *i)
{
    if (!i) {
        return;
    }
    free(i->cert_pem);
    (void)ca_public_unref(i->pub);
    free(i->rec.subject);
    free(i->rec.sans);
    free(i->rec.requester);
    free(i);
}

/* "DNS:a, IP:192.0.2.1, email:x@y, URI:u" of the certificate's subjectAltName; "" without. */
static int sans_text(X509 *cert, char **ret)
{
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;

    if (!bio) {
        return -ENOMEM;
    }
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char ip[INET6_ADDRSTRLEN] = "";
        const char *sep = i > 0 ? ", " : "";
        switch (g->type) {
        case GEN_DNS:
        case GEN_EMAIL:
        case GEN_URI: {
            const ASN1_IA5STRING *s = g->d.ia5;
            const char *kind = g->type == GEN_DNS ? "DNS" : g->type == GEN_EMAIL ? "email" : "URI";
            (void)BIO_printf(bio, "%s%s:%.*s", sep, kind, ASN1_STRING_length(s),
                             (const char *)ASN1_STRING_get0_data(s));
            break;
        }
        case GEN_IPADD: {
            const ASN1_OCTET_STRING *s = g->d.ip;
            int n = ASN1_STRING_length(s);
            (void)inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof(ip));
            (void)BIO_printf(bio, "%sIP:%s", sep, ip);
            break;
        }
        default:
            (void)BIO_printf(bio, "%sother", sep);
            break;
        }
    }
    (void)BIO_get_mem_ptr(bio, &bm);
    *ret = strndup(bm && bm->data ? bm->data : "", bm ? bm->length : 0);
    return *ret ? 0 : -ENOMEM;
}

/* The log record of cert (pem borrowed into rec.pem). */
static int record_fill(struct ca_issued *is, X509 *cert, const char *requester)
{
    struct cadb_cert *rec = &is->rec;
    int r = cadb_serial_hex(X509_get0_serialNumber(cert), rec->serial);
    if (r >= 0) {
        r = name_to_rfc4514(X509_get_subject_name(cert), &rec->subject);
    }
    if (r >= 0) {
        r = sans_text(cert, &rec->sans);
    }
    if (r >= 0) {
        r = asn1_time_to_unix(X509_get0_notBefore(cert), &rec->not_before);
    }
    if (r >= 0) {
        r = asn1_time_to_unix(X509_get0_notAfter(cert), &rec->not_after);
    }
    if (r >= 0) {
        rec->requester = strdup(requester ? requester : "");
        r = rec->requester ? 0 : -ENOMEM;
    }
    rec->issued_at = (int64_t)time(NULL);
    rec->pem = is->cert_pem;
    rec->status = CADB_VALID;
    return r;
}

static int issue_local(struct ca *ca, EVP_PKEY *key, X509_REQ *req, const char *requester,
                       struct ca_issued **ret, struct certd_err *err)
{
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    struct ca_issued *is;
    int r = issue_from_csr(ca->libctx, ca->propq, req, ca->cert, key, &ca->profile,
                           (int64_t)time(NULL), &cert, err);
    if (r < 0) {
        return r;
    }
    is = calloc(1, sizeof(*is));
    if (!is) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = cert_to_pem(cert, &is->cert_pem, &is->cert_pem_len);
    if (r >= 0) {
        r = record_fill(is, cert, requester);
    }
    if (r < 0) {
        ca_issued_free(is);
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                       "cannot encode the new certificate: %s", strerror(-r));
    }
    is->pub = ca_public(ca);
    *ret = is;
    return 0;
}

/* ---- the exec signer: one helper, CSR on stdin, PEM on stdout, a deadline ---- */

struct exec_out {
    char out[CA_EXEC_OUT_MAX + 1];
    size_t out_len;
    char err[CA_EXEC_ERR_MAX + 1];
    size_t err_len;
    bool is_out_truncated;
    bool is_timed_out;
    int status; /* waitpid status */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what fd has into buf (at most cap bytes kept; the rest is read and dropped). 0 at EOF. */
static ssize_t drain(int fd, char *buf, size_t *len, size_t cap, bool *truncated)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n > 0) {
        size_t keep = cap - *len < (size_t)n ? cap - *len : (size_t)n;
        memcpy(buf + *len, tmp, keep);
        *len += keep;
        if (keep < (size_t)n && truncated) {
            *truncated = true;
        }
    }
    return n;
}

/*
 * Run the helper (blocking, a worker): its own process group, no inherited descriptors but the
 * three pipes, our signal mask and SIGPIPE disposition undone, a clean environment; killed
 * (the whole group) at the deadline. 0 with *out filled (also after a timeout: is_timed_out),
 * or -errno when it could not be started.
 */
static int exec_run(struct ca *ca, struct span input, struct exec_out *out)
{
    int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, def;
    pid_t pid = 0;
    int r;

    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 ||
        pipe2(err_pipe, O_CLOEXEC) < 0) {
        r = -errno;
        goto out_close;
    }
    (void)posix_spawn_file_actions_init(&fa);
    (void)posix_spawnattr_init(&attr);
    (void)sigemptyset(&none);
    (void)sigemptyset(&def);
    (void)sigaddset(&def, SIGPIPE);
    (void)sigaddset(&def, SIGCHLD);
    (void)posix_spawnattr_setsigmask(&attr, &none);
    (void)posix_spawnattr_setsigdefault(&attr, &def);
    (void)posix_spawnattr_setpgroup(&attr, 0);
    (void)posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                              POSIX_SPAWN_SETPGROUP);
    (void)posix_spawn_file_actions_adddup2(&fa, in_pipe[0], STDIN_FILENO);
    (void)posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
    (void)posix_spawn_file_actions_adddup2(&fa, err_pipe[1], STDERR_FILENO);
    (void)posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    r = -posix_spawn(&pid, ca->exec_argv[0], &fa, &attr, ca->exec_argv, exec_env);
    (void)posix_spawn_file_actions_destroy(&fa);
    (void)posix_spawnattr_destroy(&attr);
    if (r < 0) {
        goto out_close;
    }
    (void)close(in_pipe[0]);
    (void)close(out_pipe[1]);
    (void)close(err_pipe[1]);
    in_pipe[0] = out_pipe[1] = err_pipe[1] = -1;

    /* The CSR is at most 16 KiB: a pipe takes it whole, whether or not the helper reads it. */
    (void)fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    if (write(in_pipe[1], input.p, input.len) != (ssize_t)input.len) {
        log_debug("ca: the signing helper did not take the whole CSR");
    }
    (void)close(in_pipe[1]);
    in_pipe[1] = -1;

    int pidfd = (int)pidfd_open(pid, 0);
    int64_t deadline = now_ms() + (int64_t)ca->exec_timeout * 1000;
    bool out_open = true, err_open = true, exited = false;
    while (!exited) {
        struct pollfd p[3];
        nfds_t n = 0;
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            out->is_timed_out = true;
            break;
        }
        if (out_open) {
            p[n++] = (struct pollfd){ .fd = out_pipe[0], .events = POLLIN };
        }
        if (err_open) {
            p[n++] = (struct pollfd){ .fd = err_pipe[0], .events = POLLIN };
        }
        if (pidfd >= 0 && !out_open && !err_open) {
            p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
        }
        if (n == 0) {
            /* No pidfd (old kernel, valgrind): the pipes are closed, so look now and then. */
            int st;
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) {
                out->status = st;
                exited = true;
                break;
            }
            struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
            (void)nanosleep(&ts, NULL);
            continue;
        }
        if (poll(p, n, left) < 0 && errno != EINTR) {
            break;
        }
        for (nfds_t i = 0; i < n; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            if (p[i].fd == out_pipe[0] && drain(out_pipe[0], out->out, &out->out_len,
                                                CA_EXEC_OUT_MAX, &out->is_out_truncated) <= 0) {
                out_open = false;
            } else if (p[i].fd == err_pipe[0] &&
                       drain(err_pipe[0], out->err, &out->err_len, CA_EXEC_ERR_MAX, NULL) <= 0) {
                err_open = false;
            } else if (p[i].fd == pidfd) {
                int st;
                if (waitpid(pid, &st, 0) == pid) {
                    out->status = st;
                }
                exited = true;
            }
        }
    }
    if (!exited) {
        /* Timed out (or poll failed): the whole group goes, then we reap. */
        (void)kill(-pid, SIGKILL);
        int st;
        if (waitpid(pid, &st, 0) == pid) {
            out->status = st;
        }
    } else {
        /* Anything the helper left running in its group has no business outliving it. */
        (void)kill(-pid, SIGKILL);
    }
    if (pidfd >= 0) {
        (void)close(pidfd);
    }
    out->out[out->out_len] = '\0';
    out->err[out->err_len] = '\0';
    r = 0;
out_close:
    for (int i = 0; i < 2; i++) {
        if (in_pipe[i] >= 0) {
            (void)close(in_pipe[i]);
        }
        if (out_pipe[i] >= 0) {
            (void)close(out_pipe[i]);
        }
        if (err_pipe[i] >= 0) {
            (void)close(err_pipe[i]);
        }
    }
    return r;
}

/* The helper's stderr, made fit for a message: its first line, printable ASCII only. */
static void stderr_line(const char *in, char *buf, size_t size)
{
    size_t n = 0;
    for (; *in && *in != '\n' && n + 1 < size && n < 200; in++) {
        unsigned char c = (unsigned char)*in;
        buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    buf[n] = '\0';
}

static int issue_exec(struct ca *ca, struct span csr, X509_REQ *req, const char *requester,
                      struct ca_issued **ret, struct certd_err *err)
{
    _cleanup_free_ struct exec_out *out = calloc(1, sizeof(*out));
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    struct certd_err e = { 0 };
    char line[256];
    const char *prog = ca->exec_argv[0];
    int r;

    if (!out) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = exec_run(ca, csr, out);
    if (r < 0) {
        return err_set(err, -EPROTO, CERTD_E_SIGNER_FAILED, "cannot run the signing helper %s: %s",
                       prog, strerror(-r));
    }
    stderr_line(out->err, line, sizeof(line));
    if (out->is_timed_out) {
        return err_set(err, -EPROTO, CERTD_E_SIGNER_FAILED,
                       "the signing helper %s did not answer within %u s", prog, ca->exec_timeout);
    }
    if (WIFEXITED(out->status) && WEXITSTATUS(out->status) == CA_EXEC_NOT_READY) {
        return err_set(err, -EAGAIN, CERTD_E_UNAVAILABLE,
                       "the signing CA is not ready; ask again later%s%s", line[0] ? ": " : "",
                       line);
    }
    if (!WIFEXITED(out->status) || WEXITSTATUS(out->status) != 0) {
        char how[48];
        if (WIFSIGNALED(out->status)) {
            (void)snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(out->status));
        } else {
            (void)snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(out->status));
        }
        return err_set(err, -EPROTO, CERTD_E_SIGNER_FAILED, "the signing helper %s %s%s%s", prog,
                       how, line[0] ? ": " : "", line);
    }
    if (out->is_out_truncated) {
        return err_set(err, -EPROTO, CERTD_E_SIGNER_FAILED,
                       "the signing helper %s printed more than %u bytes", prog, CA_EXEC_OUT_MAX);
    }
    r = bundle_parse(ca->libctx, ca->propq, span_make(out->out, out->out_len), CA_EXEC_OUT_MAX, &b,
                     &e);
    if (r >= 0 && b->key) {
        r = err_set(&e, -EINVAL, CERTD_E_MULTIPLE_KEYS, "it printed a private key");
    }
    if (r < 0) {
        return err_set(err, -EPROTO, CERTD_E_SIGNER_FAILED,
                       "the signing helper %s printed no usable certificate: %s", prog, e.msg);
    }
    X509 *cert = bundle_cert(b, 0);
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *csr_key = X509_REQ_get_pubkey(req);
    if (!csr_key || !key_public_eq(X509_get0_pubkey(cert), csr_key)) {
        return err_set(err, -EPROTO, CERTD_E_SIGNER_FAILED,
                       "the signing helper %s answered with a certificate for another key than "
                       "the CSR's",
                       prog);
    }
    struct ca_issued *is = calloc(1, sizeof(*is));
    if (!is) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = cert_to_pem(cert, &is->cert_pem, &is->cert_pem_len);
    if (r >= 0) {
        r = record_fill(is, cert, requester);
    }
    if (r >= 0 && bundle_n_certs(b) > 1) {
        /* The helper's chain (the host CA's certificates) goes out with this certificate. */
        _cleanup_(cleanup_x509_stack) x509_stack *chain = sk_X509_new_null();
        struct ca_public *p = public_new();
        for (size_t i = 1; r >= 0 && chain && i < bundle_n_certs(b); i++) {
            X509 *c = bundle_cert(b, i);
            if (!sk_X509_push(chain, c) || !X509_up_ref(c)) {
                r = -ENOMEM;
            }
        }
        if (!chain || !p || (r >= 0 && (r = public_set_certs(p, chain)) < 0)) {
            r = r < 0 ? r : -ENOMEM;
        }
        is->pub = p;
    } else if (r >= 0) {
        is->pub = ca_public(ca);
    }
    if (r < 0) {
        ca_issued_free(is);
        return err_set(err, r, CERTD_E_NO_MEMORY, "cannot keep the new certificate: %s",
                       strerror(-r));
    }
    *ret = is;
    return 0;
}

/* ca_issue with the signing key (local signer) opened by the caller; NULL for the others. */
static int issue_with(struct ca *ca, EVP_PKEY *key, struct span csr, const char *requester,
                      struct ca_issued **ret, struct certd_err *err)
{
    _cleanup_(cleanup_X509_REQ) X509_REQ *req = NULL;
    int r;

    if (ca->signer == CONFIG_SIGNER_OFF) {
        return err_set(err, -ENODEV, CERTD_E_UNAVAILABLE,
                       "this certd has no CA ([ca] signer = off)");
    }
    if (csr.len > CA_CSR_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "the CSR is larger than %u bytes",
                       CA_CSR_MAX);
    }
    /* The CSR is checked here whoever signs: a helper gets only what certd would sign. */
    r = csr_parse(ca->libctx, ca->propq, csr.p, csr.len, CA_CSR_MAX, &req, err);
    if (r < 0) {
        return r;
    }
    if (ca->signer == CONFIG_SIGNER_LOCAL) {
        return issue_local(ca, key, req, requester, ret, err);
    }
    /* The same policy as the local CA's: the helper only sees what certd would sign. */
    r = issue_check_csr(ca->libctx, ca->propq, req, &ca->profile, err);
    if (r < 0) {
        return r;
    }
    return issue_exec(ca, csr, req, requester, ret, err);
}

int ca_issue(struct ca *ca, struct span csr, const char *requester, struct ca_issued **ret,
             struct certd_err *err)
{
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    assert_return(ca && ret, -EINVAL);

    if (ca->signer == CONFIG_SIGNER_LOCAL) {
        int r = ca_signing_key(ca, &key, err);
        if (r < 0) {
            return r;
        }
    }
    return issue_with(ca, key, csr, requester, ret, err);
}

int ca_record(struct ca *ca, struct ca_issued *const *v, size_t n, bool *dup, struct certd_err *err)
{
    const struct cadb_cert *recs[CA_COMMIT_BATCH_MAX] = { 0 };
    bool any_dup = false;
    int r;

    assert_return(ca && v && dup && n <= CA_COMMIT_BATCH_MAX, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        recs[i] = &v[i]->rec;
        dup[i] = false;
    }
    r = ca_db(ca, err);
    if (r < 0) {
        return r;
    }
    r = cadb_add(ca->db, recs, n, err);
    if (r != -EEXIST) {
        return r;
    }
    /* A random serial met one in the log (or two in the batch): keep the others. */
    for (size_t i = 0; i < n; i++) {
        struct certd_err e = { 0 };
        r = cadb_add(ca->db, &recs[i], 1, &e);
        if (r == -EEXIST) {
            dup[i] = any_dup = true;
        } else if (r < 0) {
            if (err) {
                *err = e;
            }
            return r;
        }
    }
    return any_dup ? -EEXIST : 0;
}

/* ---- ca_sign: the asynchronous path ---- */

struct sign_job {
    struct ca *ca;
    struct sign_job *next;
    char *csr;
    size_t csr_len;
    char *requester;
    ca_sign_done_fn done;
    void *arg;
    unsigned attempts;
    /* the signing's outcome */
    int r;
    struct certd_err err;
    struct ca_issued *issued;
};

static void sign_job_free(struct sign_job *j)
{
    ca_issued_free(j->issued);
    free(j->csr);
    free(j->requester);
    free(j);
}

static void sign_finish(struct sign_job *j)
{
    struct ca_sign_result res = { .r = j->r, .err = j->err };
    if (j->r == 0) {
        res.cert_pem = j->issued->cert_pem;
        res.cert_pem_len = j->issued->cert_pem_len;
        res.pub = j->issued->pub;
        res.serial = j->issued->rec.serial;
    }
    j->done(&res, j->arg);
    sign_job_free(j);
}

static void commit_kick(struct ca *ca);
static int sign_submit(struct sign_job *j);
static void sign_kick(struct ca *ca);

struct commit_job {
    struct ca *ca;
    struct sign_job *jobs[CA_COMMIT_BATCH_MAX];
    bool dup[CA_COMMIT_BATCH_MAX];
    size_t n;
    int r;
    struct certd_err err;
};

static void commit_run(void *arg)
{
    struct commit_job *c = arg;
    struct ca_issued *v[CA_COMMIT_BATCH_MAX];
    for (size_t i = 0; i < c->n; i++) {
        v[i] = c->jobs[i]->issued;
    }
    c->r = ca_record(c->ca, v, c->n, c->dup, &c->err);
}

static void commit_done(void *arg, bool cancelled)
{
    struct commit_job *c = arg;
    struct ca *ca = c->ca;

    ca->is_committing = false;
    for (size_t i = 0; i < c->n; i++) {
        struct sign_job *j = c->jobs[i];
        if (cancelled) {
            j->r = err_set(&j->err, -ECANCELED, CERTD_E_UNAVAILABLE, "certd is stopping");
        } else if (c->r == -EEXIST && c->dup[i]) {
            /* Sign again: a new random serial. Nothing was handed out. */
            ca_issued_free(j->issued);
            j->issued = NULL;
            if (j->attempts < CA_SERIAL_RETRIES && sign_submit(j) == 0) {
                continue;
            }
            j->r = err_set(&j->err, -EIO, CERTD_E_INTERNAL, "no unused serial number found");
        } else if (c->r < 0 && c->r != -EEXIST) {
            j->r = c->r;
            j->err = c->err;
        }
        if (j->r < 0) {
            log_warning("ca: a signed certificate was not recorded, so it was not handed out: %s",
                        j->err.msg);
        } else {
            log_info("ca: issued serial %s to %s for %s", j->issued->rec.serial,
                     j->requester[0] ? j->requester : "(unknown)", j->issued->rec.subject);
        }
        sign_finish(j);
    }
    free(c);
    /* Also when cancelled: the signings queued behind this batch are owed their done (while
     * stopping, commit_kick's submit is refused and finishes them). */
    commit_kick(ca);
}

/* One transaction for everything signed since the last one began. */
static void commit_kick(struct ca *ca)
{
    if (ca->is_committing || !ca->commit_first) {
        return;
    }
    struct commit_job *c = calloc(1, sizeof(*c));
    if (!c) {
        return; /* the next signing to finish tries again */
    }
    c->ca = ca;
    while (ca->commit_first && c->n < CA_COMMIT_BATCH_MAX) {
        struct sign_job *j = ca->commit_first;
        ca->commit_first = j->next;
        j->next = NULL;
        c->jobs[c->n++] = j;
    }
    if (!ca->commit_first) {
        ca->commit_last = NULL;
    }
    ca->is_committing = true;
    if (worker_submit(ca->workers, WORKER_LANE_SERIAL, commit_run, commit_done, c) < 0) {
        /* Stopping, or the queue is full: these signings fail; nothing was handed out. */
        ca->is_committing = false;
        for (size_t i = 0; i < c->n; i++) {
            c->jobs[i]->r = err_set(&c->jobs[i]->err, -EAGAIN, CERTD_E_UNAVAILABLE,
                                    "certd is too busy to record the certificate");
            sign_finish(c->jobs[i]);
        }
        free(c);
    }
}

/* Sign a chain of jobs (linked by next): one worker job for all that waited together. */
static void sign_run(void *arg)
{
    struct sign_job *first = arg;
    struct ca *ca = first->ca;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    struct certd_err kerr = { 0 };
    int kr = 0;

    /* One key load for the whole batch: for a TPM key that is a TPM2_Load, not one per CSR. */
    if (ca->signer == CONFIG_SIGNER_LOCAL) {
        kr = ca_signing_key(ca, &key, &kerr);
    }
    for (struct sign_job *j = first; j; j = j->next) {
        if (kr < 0) {
            j->err = kerr;
            j->r = kr;
            continue;
        }
        j->r =
            issue_with(ca, key, span_make(j->csr, j->csr_len), j->requester, &j->issued, &j->err);
    }
}

static void sign_done(void *arg, bool cancelled)
{
    struct sign_job *j = arg;
    struct ca *ca = j->ca;

    ca->n_signing--;
    while (j) {
        struct sign_job *next = j->next;
        j->next = NULL;
        if (cancelled) {
            j->r = err_set(&j->err, -ECANCELED, CERTD_E_UNAVAILABLE, "certd is stopping");
        }
        if (j->r < 0) {
            sign_finish(j);
        } else {
            *(ca->commit_last ? &ca->commit_last->next : &ca->commit_first) = j;
            ca->commit_last = j;
        }
        j = next;
    }
    commit_kick(ca);
    /* Also when cancelled: the signings waiting for their turn are owed their done. */
    sign_kick(ca);
}

/* Queue a signing; it starts at once when none is running. */
static int sign_submit(struct sign_job *j)
{
    struct ca *ca = j->ca;
    size_t max = ca->signer == CONFIG_SIGNER_EXEC ? CA_EXEC_QUEUE_MAX : CA_SIGN_QUEUE_MAX;
    if (ca->n_waiting >= max) {
        return -EAGAIN;
    }
    j->attempts++;
    *(ca->wait_last ? &ca->wait_last->next : &ca->wait_first) = j;
    ca->wait_last = j;
    ca->n_waiting++;
    sign_kick(ca);
    return 0;
}

/*
 * Signing jobs on the parallel lane, each signing everything that waited meanwhile (up to
 * CA_SIGN_BATCH_MAX), so that a worker does not go back and forth through the loop for every
 * certificate. At most CA_SIGN_JOBS of them for the local CA: measured with 8 clients, two
 * sign about 15 % (P-256) to 20 % (RSA-2048) more certificates per second than one, since
 * OpenSSL 3.0's global locks let a second signing thread add little; more would only hold
 * workers that logins and key generation need. One for a helper, so that a slow host never
 * holds every worker.
 */
static void sign_kick(struct ca *ca)
{
    size_t max = ca->signer == CONFIG_SIGNER_EXEC ? 1 : CA_SIGN_BATCH_MAX;
    /* A helper signs one batch at a time; so does a TPM, on the serial thread (worker.h). */
    unsigned jobs = ca->signer == CONFIG_SIGNER_EXEC || ca->is_key_held ? 1u : CA_SIGN_JOBS;
    enum worker_lane lane = ca->is_key_held ? WORKER_LANE_SERIAL : WORKER_LANE_PARALLEL;
    while (ca->n_signing < jobs && ca->wait_first) {
        struct sign_job *head = ca->wait_first, *last = head;
        size_t n = 1;
        while (n < max && last->next) {
            last = last->next;
            n++;
        }
        ca->wait_first = last->next;
        if (!ca->wait_first) {
            ca->wait_last = NULL;
        }
        last->next = NULL;
        ca->n_waiting -= n;
        if (worker_submit(ca->workers, lane, sign_run, sign_done, head) == 0) {
            ca->n_signing++;
            continue;
        }
        while (head) {
            struct sign_job *next = head->next;
            head->next = NULL;
            head->r =
                err_set(&head->err, -EAGAIN, CERTD_E_UNAVAILABLE, "certd is too busy to sign");
            sign_finish(head);
            head = next;
        }
    }
}

int ca_sign(struct ca *ca, struct span csr, const char *requester, ca_sign_done_fn done, void *arg)
{
    assert_return(ca && done, -EINVAL);
    struct sign_job *j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->ca = ca;
    j->done = done;
    j->arg = arg;
    j->csr = malloc(csr.len + 1);
    j->requester = strdup(requester ? requester : "");
    if (!j->csr || !j->requester) {
        sign_job_free(j);
        return -ENOMEM;
    }
    memcpy(j->csr, csr.p, csr.len);
    j->csr[csr.len] = '\0';
    j->csr_len = csr.len;
    int r = sign_submit(j);
    if (r < 0) {
        sign_job_free(j);
    }
    return r;
}
