/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate endpoints (manager.h): what each endpoint holds, published as immutable
 * snapshots, and every change to it, validated by libcertd and written through store/.
 *
 * Invariants:
 *  - ep->current is never NULL, and a published snapshot is never written again: readers on any
 *    thread use it without a lock, holding a reference. An entry shared by several snapshots
 *    (authorities) is freed with the last of them.
 *  - m->lock guards ep->current and the pending lists (entries and next_seq), and is held only
 *    to copy or swap pointers and numbers: never during crypto or I/O.
 *  - A change builds everything it will publish (inspection, PEM) before it writes a byte, so
 *    the only failures after a write are the write's own, and those leave the old files.
 *  - A pending key is in its endpoint's list exactly while its file is meant to exist; whoever
 *    takes an entry out of the list (consumed, dropped as the oldest) removes the file.
 */
#include "manager.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "issue/issue.h"
#include "keys/uri.h"
#include "log/log.h"
#include "store/store.h"
#include "tss/tss.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/secret.h"
#include "x509/bundle.h"
#include "x509/validate.h"

/*
 * Directories: those holding a private key are ours alone; the state directory and authority
 * directories must stay readable for the services that use their certificates (nslcd reads a
 * CApath), and no file in them is secret (the users file and keys are 0600 themselves).
 */
#define MODE_DIR_PUBLIC 0755
/* A pending key file: PKCS#8 PEM of RSA-4096 is about 3.3 KiB. */
#define PENDING_FILE_MAX CERTD_INPUT_MAX_DEFAULT
/* ".corrupt-20240101T000000Z" clashes (two starts within a second): "-1" .. "-99". */
#define ASIDE_TRIES 100u

DEFINE_CLEANUP(DIR, closedir)

typedef STACK_OF(X509) x509_view;
/* A stack of borrowed certificates: frees the stack only. */
static inline void x509_view_free(x509_view *sk)
{
    sk_X509_free(sk);
}
DEFINE_CLEANUP(x509_view, x509_view_free)

struct pending_key {
    uint64_t seq;
    bool is_public; /* key is the public half of a held key; the key itself is in its file */
    EVP_PKEY *key;  /* owned by the list; for a key its provider holds (a TPM key) only the
                       public half, so that waiting keys take no TPM object slot: the key
                       itself is loaded from its file when a certificate for it comes */
    struct pin pin; /* of key, computed once when it joins the list: Redfish shows it from the
                       loop thread, which does no crypto */
};

struct endpoint {
    struct manager *m;
    const struct config_endpoint *cfg; /* borrowed from m->cfg */
    char *dir;                         /* STATE_DIR/NAME */
    char *pending_dir;                 /* STATE_DIR/NAME/pending (server/client), else NULL */
    bool is_combined;                  /* cert and key are one file */
    /* Guarded by m->lock. */
    struct ep_snapshot *current;
    struct pending_key pending[MANAGER_PENDING_MAX]; /* ascending seq: [0] is the oldest */
    size_t n_pending;
    uint64_t next_seq;
};

struct manager {
    const struct config *cfg;
    OSSL_LIB_CTX *libctx;
    char *propq;
    char *hostname;
    pthread_mutex_t lock;
    struct endpoint *endpoints;
    size_t n_endpoints;
    bool is_started;
};

static int64_t now_unix(void)
{
    return (int64_t)time(NULL);
}

static int oom(struct certd_err *err)
{
    return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
}

static void lock(struct manager *m)
{
    int r = pthread_mutex_lock(&m->lock);
    assert(r == 0);
    (void)r;
}

static void unlock(struct manager *m)
{
    int r = pthread_mutex_unlock(&m->lock);
    assert(r == 0);
    (void)r;
}

/* ---- snapshots ---- */

static void entry_done(struct cert_entry *e)
{
    /* acq_rel, as for snapshots: every holder's reads happen before the last one frees. */
    if (e->refs_ && atomic_fetch_sub_explicit(e->refs_, 1, memory_order_acq_rel) == 1) {
        X509_free(e->cert);
        (void)cert_info_free(e->info);
        free(e->pem);
        free(e->refs_);
    }
    *e = (struct cert_entry){ .cert = NULL };
}

/* Put e, an entry of a snapshot, into another one at dst: shared, not copied. */
static void entry_share(struct cert_entry *dst, const struct cert_entry *e)
{
    /* Relaxed: the caller holds a snapshot that holds e, so e cannot go away meanwhile. */
    (void)atomic_fetch_add_explicit(e->refs_, 1, memory_order_relaxed);
    *dst = *e;
}

static struct ep_snapshot *snapshot_destroy(struct ep_snapshot *s)
{
    if (!s) {
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        entry_done(&s->entries[i]);
    }
    free(s->entries);
    sk_X509_pop_free(s->chain, X509_free);
    EVP_PKEY_free(s->key);
    free(s);
    return NULL;
}

struct ep_snapshot *ep_snapshot_ref(struct ep_snapshot *s)
{
    if (s) {
        /* Relaxed: whoever hands out a reference holds one, so the object cannot go away. */
        (void)atomic_fetch_add_explicit(&s->refs_, 1, memory_order_relaxed);
    }
    return s;
}

struct ep_snapshot *ep_snapshot_unref(struct ep_snapshot *s)
{
    /* acq_rel: every other holder's reads happen before the last one frees. */
    if (s && atomic_fetch_sub_explicit(&s->refs_, 1, memory_order_acq_rel) == 1) {
        (void)snapshot_destroy(s);
    }
    return NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cert_entry *)a)->id, ((const struct cert_entry *)b)->id);
}

const struct cert_entry *ep_snapshot_find(const struct ep_snapshot *s, const char *id)
{
    struct cert_entry key = { .cert = NULL };

    /* An id longer than any is in no snapshot (and must not be cut into one that is). */
    if (!s || !id || s->n == 0 || strnlen(id, sizeof(key.id)) == sizeof(key.id)) {
        return NULL;
    }
    memcpy(key.id, id, strlen(id) + 1);
    /* Every snapshot is sorted by id: one entry, or an authority's. */
    return bsearch(&key, s->entries, s->n, sizeof(*s->entries), entry_cmp);
}

/* An empty snapshot with room for n entries; chain is always a stack, possibly empty. */
static struct ep_snapshot *snapshot_alloc(size_t n)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    atomic_init(&s->refs_, 1);
    s->chain = sk_X509_new_null();
    if (!s->chain) {
        return NULL;
    }
    if (n > 0) {
        s->entries = calloc(n, sizeof(*s->entries));
        if (!s->entries) {
            return NULL;
        }
    }
    return TAKE_PTR(s);
}

/*
 * Fill e for cert (a reference is taken): its inspection and pem_certs as PEM (the certificate
 * and its chain, or the certificate alone when pem_certs is NULL).
 */
static int entry_init(struct manager *m, struct cert_entry *e, const char *id, X509 *cert,
                      const STACK_OF(X509) *pem_certs, struct certd_err *err)
{
    _cleanup_(cleanup_cert_info) struct cert_info *info = NULL;
    _cleanup_free_ char *pem = NULL;
    size_t len = 0;
    int r;

    r = cert_inspect(m->libctx, m->propq, cert, &info, err);
    if (r < 0) {
        return r;
    }
    r = pem_certs ? certs_to_pem(pem_certs, &pem, &len) : cert_to_pem(cert, &pem, &len);
    if (r == -ENOMEM) {
        return oom(err);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the certificate as PEM");
    }
    _cleanup_free_ atomic_int *refs = malloc(sizeof(*refs));
    if (!refs) {
        return oom(err);
    }
    atomic_init(refs, 1);
    if (X509_up_ref(cert) != 1) {
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the certificate");
    }
    (void)snprintf(e->id, sizeof(e->id), "%s", id);
    e->cert = cert;
    e->info = TAKE_PTR(info);
    e->pem = TAKE_PTR(pem);
    e->pem_len = len;
    e->refs_ = TAKE_PTR(refs);
    return 0;
}

/* A server/client snapshot for certs (leaf first) and key (references are taken). */
/*
 * Whether ep's snapshots keep a held key itself (loaded in its provider): only the endpoint
 * certd serves TLS with signs with its key all the time. The others keep its public half, so
 * that their keys take none of the TPM's three object slots while nobody uses them.
 */
static bool endpoint_keeps_key(const struct endpoint *ep)
{
    return ep->cfg->type == ENDPOINT_SERVER && ep->cfg->reload.kind == CONFIG_RELOAD_SELF;
}

static int snapshot_new_single(struct manager *m, const struct endpoint *ep,
                               const STACK_OF(X509) *certs, EVP_PKEY *key, struct ep_snapshot **ret,
                               struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = snapshot_alloc(1);
    int r;

    assert(sk_X509_num(certs) > 0 && key);
    if (!s) {
        return oom(err);
    }
    r = entry_init(m, &s->entries[0], MANAGER_SINGLE_ID, sk_X509_value(certs, 0), certs, err);
    if (r < 0) {
        return r;
    }
    s->n = 1;
    for (int i = 1; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (X509_up_ref(c) != 1) {
            return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the certificate");
        }
        if (sk_X509_push(s->chain, c) <= 0) {
            X509_free(c);
            return oom(err);
        }
    }
    /* From the certificate, not the key: what a TLS client hashes, and no provider is asked. */
    r = pin_from_cert(m->libctx, m->propq, sk_X509_value(certs, 0), &s->key_pin);
    if (r < 0) {
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                       "cannot compute the pin of the certificate's key");
    }
    if (key_is_held(key) && !endpoint_keeps_key(ep)) {
        r = key_public_dup(m->libctx, m->propq, key, &s->key);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "cannot copy the public key");
        }
        s->is_key_public = true;
    } else {
        if (EVP_PKEY_up_ref(key) != 1) {
            return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the key");
        }
        s->key = key;
    }
    *ret = TAKE_PTR(s);
    return 0;
}

/*
 * An authority snapshot: the entries of keep (nullable) but skip (nullable), then certs[i]
 * under ids[i] (references taken), in that order: the caller sorts when it adds (keep and a
 * loaded directory are sorted already). An entry of reuse (nullable) with the same id is
 * shared rather than inspected again: an id is the certificate's fingerprint. A certificate
 * that cannot be shown is an error when is_strict (a change must not publish less than it
 * wrote), else left out with a log line (a directory loaded from disk).
 */
static int snapshot_new_authority(struct manager *m, const struct endpoint *ep,
                                  const struct ep_snapshot *keep, const struct cert_entry *skip,
                                  const STACK_OF(X509) *certs, char *const *ids,
                                  const struct ep_snapshot *reuse, bool is_strict,
                                  struct ep_snapshot **ret, struct certd_err *err)
{
    size_t n_keep = keep ? keep->n : 0, n_certs = certs ? (size_t)sk_X509_num(certs) : 0;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = snapshot_alloc(n_keep + n_certs);
    int r;

    if (!s) {
        return oom(err);
    }
    for (size_t i = 0; i < n_keep; i++) {
        if (&keep->entries[i] != skip) {
            entry_share(&s->entries[s->n++], &keep->entries[i]);
        }
    }
    for (size_t i = 0; i < n_certs; i++) {
        const struct cert_entry *have = ep_snapshot_find(reuse, ids[i]);
        struct certd_err e = { 0 };

        if (have) {
            entry_share(&s->entries[s->n++], have);
            continue;
        }
        r = entry_init(m, &s->entries[s->n], ids[i], sk_X509_value(certs, (int)i), NULL, &e);
        if (r == -ENOMEM || (r < 0 && is_strict)) {
            return err_set(err, r, e.code, "%s", e.msg);
        }
        if (r < 0) {
            log_warning("endpoint %s: certificate %s of %s is left out: %s", ep->cfg->name, ids[i],
                        ep->cfg->dir, e.msg);
            continue;
        }
        s->n++;
    }
    *ret = TAKE_PTR(s);
    return 0;
}

/* Publish s (ownership taken) as ep's current snapshot. */
static void publish(struct endpoint *ep, struct ep_snapshot *s)
{
    struct ep_snapshot *old;

    lock(ep->m);
    old = ep->current;
    ep->current = s;
    unlock(ep->m);
    (void)ep_snapshot_unref(old);
}

/* ---- paths and files ---- */

/* The directory of an absolute path in normal form, malloc'd ("/x" -> "/"). */
static char *path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        return strdup(".");
    }
    if (slash == path) {
        return strdup("/");
    }
    return strndup(path, (size_t)(slash - path));
}

static int dir_sync(const char *dir)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        return -errno;
    }
    return 0;
}

static int path_sync_dir(const char *path)
{
    _cleanup_free_ char *dir = path_dir(path);
    if (!dir) {
        return -ENOMEM;
    }
    return dir_sync(dir);
}

static char *pending_path(const struct endpoint *ep, uint64_t seq)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%" PRIu64 ".key", ep->pending_dir, seq) < 0) {
        return NULL;
    }
    return p;
}

/*
 * Our own state directory is not followed through symlinks; paths the admin configured may be
 * links (certbot's live/ directory is made of them).
 */
static bool cert_nofollow(const struct endpoint *ep)
{
    return !ep->cfg->is_cert_given;
}

static bool key_nofollow(const struct endpoint *ep)
{
    return !ep->cfg->is_key_given;
}

static void validate_policy_for(const struct endpoint *ep, struct validate_policy *pol)
{
    validate_policy_init(pol, now_unix());
    pol->expired = ep->cfg->expired;
    pol->not_yet_valid = ep->cfg->not_yet_valid;
    pol->keys.allow_ed25519 = ep->cfg->allow_ed25519;
    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        pol->max_certs = ep->cfg->max;
    }
}

/* Whether the TPM answers and has no NV index at uri (a handle: URI): nothing written yet. */
static bool nv_is_absent(const char *uri)
{
    _cleanup_(cleanup_tss) struct tss *t = NULL;
    uint32_t handle = 0;
    bool exists = true;
    if (uri_check(uri, NULL, NULL, &handle, NULL) < 0 || handle == 0 ||
        tss_open(NULL, &t, NULL) < 0 || tss_exists(t, handle, &exists, NULL) < 0) {
        return false;
    }
    return !exists;
}

/*
 * Read a server/client endpoint's certificates and key into a bundle, not validated: from its
 * files, or from the URIs of cert_uri / key_uri (a TPM handle, an NV index) through OSSL_STORE.
 * Returns 0 and *ret, 1 when there is nothing yet (no certificate file, and no key file unless
 * the key lives at key_uri), or -errno with err naming the file or URI and what is wrong.
 */
static int files_load(struct manager *m, struct endpoint *ep, struct bundle **ret,
                      struct certd_err *err)
{
    _cleanup_(store_buf_done) struct store_buf cert = { .p = NULL }, key = { .p = NULL };
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    const char *cert_path = ep->cfg->cert, *key_path = ep->cfg->key;
    struct certd_err e = { 0 }, ek = { 0 };
    int rc = 0, rk = 0;

    /* Into e and ek: both missing is no error, only an empty endpoint. */
    if (!ep->cfg->cert_uri) {
        rc = store_read_file_err(cert_path, CERTD_INPUT_MAX_HARD, cert_nofollow(ep), &cert, &e);
    }
    if (!ep->is_combined && !ep->cfg->key_uri) {
        rk = store_read_file_err(key_path, CERTD_INPUT_MAX_HARD, key_nofollow(ep), &key, &ek);
    }
    if (rc == -ENOENT && (ep->is_combined || ep->cfg->key_uri || rk == -ENOENT)) {
        return 1;
    }
    if (rc < 0) {
        return err_set(err, rc, e.code, "%s", e.msg);
    }
    if (rk < 0) {
        return err_set(err, rk, ek.code, "%s", ek.msg);
    }
    if (ep->cfg->cert_uri) {
        STACK_OF(X509) *certs = NULL;
        rc = uri_load_certs(m->libctx, m->propq, ep->cfg->cert_uri, &certs, &e);
        if (rc < 0 && err_code_class(e.code) == CERTD_CLASS_UNAVAILABLE &&
            nv_is_absent(ep->cfg->cert_uri)) {
            /* OpenSSL cannot tell "no such index" from "no TPM"; ESYS can. */
            if (ep->cfg->key_uri || rk == -ENOENT) {
                return 1;
            }
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "%s holds no certificate yet",
                           ep->cfg->cert_uri);
        }
        if (rc < 0) {
            return err_set(err, rc, e.code, "%s", e.msg);
        }
        b = calloc(1, sizeof(*b));
        if (!b) {
            sk_X509_pop_free(certs, X509_free);
            return oom(err);
        }
        b->certs = certs;
    } else {
        rc = bundle_parse(m->libctx, m->propq, span_make(cert.p, cert.len), CERTD_INPUT_MAX_HARD,
                          &b, &e);
        if (rc < 0) {
            return err_set(err, rc, e.code, "%s: %s", cert_path, e.msg);
        }
    }
    if (ep->cfg->key_uri || !ep->is_combined) {
        EVP_PKEY *k = NULL;
        if (ep->cfg->key_uri) {
            rk = uri_load_key(m->libctx, m->propq, ep->cfg->key_uri, &k, &e);
        } else {
            rk = key_parse_pem(m->libctx, m->propq, span_make(key.p, key.len), &k, &e);
        }
        if (rk < 0) {
            return ep->cfg->key_uri ? err_set(err, rk, e.code, "%s", e.msg)
                                    : err_set(err, rk, e.code, "%s: %s", key_path, e.msg);
        }
        /* The key file is the key; one the certificate file may also hold does not count. */
        EVP_PKEY_free(b->key);
        b->key = k;
    } else if (!b->key) {
        return err_set(err, -EINVAL, CERTD_E_KEY_MISSING, "%s holds no private key", cert_path);
    }
    *ret = TAKE_PTR(b);
    return 0;
}

/*
 * Restore path to old (or remove it when old is empty: it did not exist), after a failed set of
 * writes.
 */
static void file_restore(const char *path, const struct store_buf *old)
{
    struct certd_err e = { 0 };
    char buf[128];
    int r = 0;

    if (old->p) {
        r = store_write_atomic(path, span_make(old->p, old->len), STORE_MODE_SECRET, &e);
    } else if (unlink(path) < 0) {
        r = -errno;
    }
    if (r < 0) {
        log_err("cannot put %s back as it was: %s", path,
                err_is_set(&e) ? e.msg : store_errno_str(r, buf, sizeof(buf)));
    }
}

/* The record of a change into the TPM that a crash must not cut in half (tpm_write). */
static char *tpm_journal_path(const struct endpoint *ep)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", ep->dir, MANAGER_TPM_JOURNAL) < 0 ? NULL : p;
}

/*
 * What goes into an NV index for certs: the leaf as DER when it comes alone (what
 * `tpm2_nvwrite` users store), else the PEM chain; at most TSS_NV_DATA_MAX bytes.
 */
static int nv_data(const STACK_OF(X509) *certs, struct span pem, unsigned char **ret_der,
                   struct span *ret, struct certd_err *err)
{
    if (sk_X509_num(certs) == 1) {
        int len = i2d_X509(sk_X509_value(certs, 0), ret_der);
        if (len <= 0) {
            return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot encode the certificate");
        }
        *ret = span_make(*ret_der, (size_t)len);
    } else {
        *ret = pem;
    }
    if (ret->len > TSS_NV_DATA_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "the certificate chain takes %zu bytes; an NV index holds at most %u "
                       "(install the leaf alone, or keep the certificate in a file)",
                       ret->len, TSS_NV_DATA_MAX);
    }
    return 0;
}

/*
 * Put certs and key where an endpoint with a key_uri or cert_uri keeps them: the key persistent
 * at its handle when it is a new one (tss_key_persist), the certificates into their NV index
 * (tss_nv_write) or their file. A TPM change cannot be one atomic step with a file, so the new
 * state is first written to STATE_DIR/NAME/tpm-journal.pem (the chain, then the key's TSS2
 * blob when the key is new; 0600); the journal goes once everything is in place, and a start
 * that finds one does it all again (tpm_journal_replay). On failure before the TPM changed
 * nothing is changed; the key of a CSR stays among the pending keys either way.
 */
static int tpm_write(struct manager *m, struct endpoint *ep, const STACK_OF(X509) *certs,
                     struct span cert_pem, EVP_PKEY *key, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = endpoint_snapshot(ep);
    _cleanup_(cleanup_secret) struct secret *blob = NULL;
    _cleanup_(store_buf_done) struct store_buf journal = { .p = NULL };
    _cleanup_(ossl_bytes_free) unsigned char *der = NULL;
    _cleanup_(cleanup_tss) struct tss *t = NULL;
    _cleanup_free_ char *jpath = tpm_journal_path(ep);
    struct span nv = SPAN_EMPTY;
    uint32_t key_handle = 0, nv_handle = 0;
    int r;

    if (!jpath) {
        return oom(err);
    }
    bool is_new_key = ep->cfg->key_uri && cur && cur->key && !key_public_eq(cur->key, key);
    if (is_new_key) {
        if (uri_check(ep->cfg->key_uri, NULL, NULL, &key_handle, err) < 0 || key_handle == 0) {
            return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                           "the key of endpoint %s stays at %s: install a certificate for that "
                           "key (Renew), not for a new one",
                           ep->cfg->name, ep->cfg->key_uri);
        }
        if (!key_is_held(key)) {
            return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                           "endpoint %s keeps its key in the TPM at %s: a software key cannot "
                           "go there",
                           ep->cfg->name, ep->cfg->key_uri);
        }
    }
    /* The key goes to the TPM handle when it is new there, or to the key file (no key_uri). */
    if (is_new_key || !ep->cfg->key_uri) {
        r = key_private_to_pem(m->libctx, m->propq, key, &blob);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the key");
        }
    }
    if (ep->cfg->cert_uri) {
        if (uri_check(ep->cfg->cert_uri, NULL, NULL, &nv_handle, err) < 0 || nv_handle == 0) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS,
                           "the certificate of endpoint %s lives at %s, which certd cannot write",
                           ep->cfg->name, ep->cfg->cert_uri);
        }
        r = nv_data(certs, cert_pem, &der, &nv, err);
        if (r < 0) {
            return r;
        }
    }
    /* The journal: the chain, then the new key's blob (a bundle bundle_parse reads back). */
    journal.len = cert_pem.len + (blob ? blob->len : 0);
    journal.p = malloc(journal.len);
    if (!journal.p) {
        return oom(err);
    }
    memcpy(journal.p, cert_pem.p, cert_pem.len);
    if (blob) {
        memcpy(journal.p + cert_pem.len, blob->p, blob->len);
    }
    r = store_write_atomic(jpath, span_make(journal.p, journal.len), STORE_MODE_SECRET, err);
    if (r < 0) {
        return r;
    }
    /* Once the TPM may have changed, a failure keeps the journal: the next start finishes. */
    bool is_tpm_touched = false;
    if (is_new_key || nv_handle) {
        r = tss_open(NULL, &t, err);
        if (r >= 0 && is_new_key) {
            is_tpm_touched = true;
            r = tss_key_persist(t, span_make(blob->p, blob->len), key_handle, err);
        }
        if (r >= 0 && nv_handle) {
            is_tpm_touched = true;
            r = tss_nv_write(t, nv_handle, nv, err);
        }
    }
    if (r >= 0 && !ep->cfg->key_uri) {
        r = store_write_atomic(ep->cfg->key, span_make(blob->p, blob->len), STORE_MODE_SECRET, err);
    }
    if (r >= 0 && !ep->cfg->cert_uri) {
        r = store_write_atomic(ep->cfg->cert, cert_pem, STORE_MODE_PUBLIC, err);
    }
    if (r < 0 && is_tpm_touched) {
        log_err("endpoint %s: a change into the TPM failed halfway (%s); %s is kept, and the next "
                "start finishes the change",
                ep->cfg->name, err && err->msg[0] ? err->msg : strerror(-r), jpath);
        return r;
    }
    if (unlink(jpath) < 0 && errno != ENOENT) {
        log_warning("endpoint %s: cannot remove %s: %s", ep->cfg->name, jpath, strerror(errno));
    }
    return r;
}

/*
 * At start: a journal of tpm_write that a crash left is done again (the key made persistent,
 * the certificates written), then removed. A journal that does not parse is kept aside.
 */
static void tpm_journal_replay(struct manager *m, struct endpoint *ep)
{
    _cleanup_(store_buf_done) struct store_buf buf = { .p = NULL };
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    _cleanup_free_ char *jpath = tpm_journal_path(ep);
    _cleanup_(cleanup_secret) struct secret *blob = NULL;
    _cleanup_(cleanup_tss) struct tss *t = NULL;
    _cleanup_(ossl_bytes_free) unsigned char *der = NULL;
    _cleanup_free_ char *cert_pem = NULL;
    struct certd_err e = { 0 };
    uint32_t handle = 0;
    size_t cert_len = 0;
    struct span nv;
    int r;

    if (!jpath || (r = store_read_file_err(jpath, CERTD_INPUT_MAX_HARD, true, &buf, &e)) < 0) {
        return; /* none (or unreadable: the next write replaces it) */
    }
    r = bundle_parse(m->libctx, m->propq, span_make(buf.p, buf.len), CERTD_INPUT_MAX_HARD, &b, &e);
    if (r >= 0 && b->key && ep->cfg->key_uri && !key_is_held(b->key)) {
        r = err_set(&e, -EINVAL, CERTD_E_KEY_UNSUPPORTED, "the key is not a TPM key");
    }
    if (r >= 0) {
        r = certs_to_pem(b->certs, &cert_pem, &cert_len);
    }
    if (r >= 0 && ((b->key && ep->cfg->key_uri) || ep->cfg->cert_uri)) {
        r = tss_open(NULL, &t, &e);
    }
    if (r >= 0 && b->key) {
        r = key_private_to_pem(m->libctx, m->propq, b->key, &blob);
    }
    if (r >= 0 && b->key && ep->cfg->key_uri &&
        (r = uri_check(ep->cfg->key_uri, NULL, NULL, &handle, &e)) >= 0) {
        r = tss_key_persist(t, span_make(blob->p, blob->len), handle, &e);
    }
    if (r >= 0 && b->key && !ep->cfg->key_uri) {
        r = store_write_atomic(ep->cfg->key, span_make(blob->p, blob->len), STORE_MODE_SECRET, &e);
    }
    if (r >= 0 && ep->cfg->cert_uri) {
        r = uri_check(ep->cfg->cert_uri, NULL, NULL, &handle, &e);
        if (r >= 0) {
            r = nv_data(b->certs, span_make(cert_pem, cert_len), &der, &nv, &e);
        }
        if (r >= 0) {
            r = tss_nv_write(t, handle, nv, &e);
        }
    } else if (r >= 0) {
        r = store_write_atomic(ep->cfg->cert, span_make(cert_pem, cert_len), STORE_MODE_PUBLIC, &e);
    }
    if (r < 0) {
        log_err("endpoint %s: cannot finish the change a crash interrupted (%s): %s", ep->cfg->name,
                jpath, e.msg[0] ? e.msg : strerror(-r));
        return; /* kept: the next start tries again */
    }
    log_notice("endpoint %s: finished the change into the TPM that a crash interrupted",
               ep->cfg->name);
    (void)unlink(jpath);
}

/*
 * Write certs (leaf first) and key to a server/client endpoint's files, all or nothing: one
 * combined file (chain PEM, then key PEM, 0600), or cert (0644) and key (0600) as one journaled
 * set in their directory. Files in two directories are written one after the other (key
 * first), the key put back as it was when the certificate cannot be written.
 */
static int files_write(struct manager *m, struct endpoint *ep, const STACK_OF(X509) *certs,
                       EVP_PKEY *key, struct certd_err *err)
{
    _cleanup_free_ char *cert_pem = NULL;
    _cleanup_(cleanup_secret) struct secret *key_pem = NULL;
    struct span cert_span, key_span;
    struct certd_err e = { 0 };
    size_t cert_len = 0;
    int r;

    r = certs_to_pem(certs, &cert_pem, &cert_len);
    if (r == -ENOMEM) {
        return oom(err);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the certificates as PEM");
    }
    if (ep->cfg->key_uri || ep->cfg->cert_uri) {
        return tpm_write(m, ep, certs, span_make(cert_pem, cert_len), key, err);
    }
    r = key_private_to_pem(m->libctx, m->propq, key, &key_pem);
    if (r == -ENOMEM) {
        return oom(err);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the private key");
    }
    cert_span = span_make(cert_pem, cert_len);
    key_span = span_make(key_pem->p, key_pem->len);

    if (ep->is_combined) {
        _cleanup_(store_buf_done) struct store_buf both = { .p = NULL };
        if (!size_add(cert_len, key_pem->len, &both.len) || !(both.p = malloc(both.len))) {
            return oom(err);
        }
        memcpy(both.p, cert_pem, cert_len);
        memcpy(both.p + cert_len, key_pem->p, key_pem->len);
        return store_write_atomic(ep->cfg->cert, span_make(both.p, both.len), STORE_MODE_SECRET,
                                  err);
    }

    const struct store_file files[] = {
        { .path = ep->cfg->cert, .data = cert_span, .mode = STORE_MODE_PUBLIC },
        { .path = ep->cfg->key, .data = key_span, .mode = STORE_MODE_SECRET },
    };
    r = store_write_set(files, ELEMENTSOF(files), &e);
    if (r != -EXDEV) {
        return r < 0 ? err_set(err, r, e.code, "%s", e.msg) : 0;
    }

    /* Two directories: no journal spans them (store_write_set refused before writing). */
    _cleanup_(store_buf_done) struct store_buf old_key = { .p = NULL };
    err_clear(&e);
    r = store_read_file_err(ep->cfg->key, CERTD_INPUT_MAX_HARD, key_nofollow(ep), &old_key, &e);
    if (r < 0 && r != -ENOENT) {
        return err_set(err, r, e.code, "%s", e.msg);
    }
    r = store_write_atomic(ep->cfg->key, key_span, STORE_MODE_SECRET, err);
    if (r < 0) {
        return r;
    }
    r = store_write_atomic(ep->cfg->cert, cert_span, STORE_MODE_PUBLIC, err);
    if (r < 0) {
        file_restore(ep->cfg->key, &old_key);
        return r;
    }
    return 0;
}

/* Write what a server/client snapshot holds to ep's files (files_write). */
static int snapshot_write(struct manager *m, struct endpoint *ep, const struct ep_snapshot *s,
                          EVP_PKEY *key, struct certd_err *err)
{
    _cleanup_(cleanup_x509_view) x509_view *certs = sk_X509_new_null();

    /* key: the private key itself (s may hold only the public half of a held key). */
    assert(s->n == 1 && key);
    if (!certs || sk_X509_push(certs, s->entries[0].cert) <= 0) {
        return oom(err);
    }
    for (int i = 0; i < sk_X509_num(s->chain); i++) {
        if (sk_X509_push(certs, sk_X509_value(s->chain, i)) <= 0) {
            return oom(err);
        }
    }
    return files_write(m, ep, certs, key, err);
}

/*
 * Remove a client endpoint's files, all or nothing: each is first renamed within its directory
 * to a store_tmp_name (which store_recover removes after a crash), and renamed back if another
 * cannot be; only then are they unlinked.
 */
static int files_remove(struct endpoint *ep, struct certd_err *err)
{
    const char *paths[2] = { ep->cfg->cert, ep->is_combined ? NULL : ep->cfg->key };
    char *moved[2] = { NULL, NULL };
    char buf[128], tmp[NAME_MAX + 1];
    int r = 0;

    for (size_t i = 0; i < ELEMENTSOF(paths) && paths[i] && r == 0; i++) {
        _cleanup_free_ char *dir = path_dir(paths[i]);
        const char *base = strrchr(paths[i], '/');
        base = base ? base + 1 : paths[i];
        r = store_tmp_name(tmp, sizeof(tmp), "deleted-", base);
        if (r < 0) {
            r = err_set(err, r, CERTD_E_STORAGE, "cannot remove %s: %s", paths[i],
                        store_errno_str(r, buf, sizeof(buf)));
            break;
        }
        if (!dir || asprintf(&moved[i], "%s/%s", dir, tmp) < 0) {
            moved[i] = NULL;
            r = oom(err);
            break;
        }
        if (rename(paths[i], moved[i]) < 0) {
            r = -errno;
            free(moved[i]);
            moved[i] = NULL;
            if (r == -ENOENT) {
                /* Gone already (removed behind our back): nothing to undo for it. */
                r = 0;
                continue;
            }
            r = err_set(err, r, CERTD_E_STORAGE, "cannot remove %s: %s", paths[i],
                        store_errno_str(r, buf, sizeof(buf)));
        }
    }
    for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
        if (!moved[i]) {
            continue;
        }
        if (r < 0) {
            if (rename(moved[i], paths[i]) < 0) {
                log_err("cannot put %s back: %s", paths[i],
                        store_errno_str(-errno, buf, sizeof(buf)));
            }
        } else if (unlink(moved[i]) < 0) {
            log_debug("cannot unlink %s: %s (store_recover will)", moved[i],
                      store_errno_str(-errno, buf, sizeof(buf)));
        }
        (void)path_sync_dir(paths[i]);
        free(moved[i]);
    }
    return r;
}

/*
 * Rename path aside to "<path>.corrupt-<stamp>" (never over an existing file). 0 when done or
 * when there was nothing at path; -errno otherwise. ret_aside gets the new name (malloc'd).
 */
static int file_keep_aside(const char *path, const char *stamp, char **ret_aside)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    for (unsigned i = 0; i < ASIDE_TRIES; i++) {
        _cleanup_free_ char *aside = NULL;
        int n = i == 0 ? asprintf(&aside, "%s.corrupt-%s", path, stamp)
                       : asprintf(&aside, "%s.corrupt-%s-%u", path, stamp, i);
        if (n < 0) {
            aside = NULL;
            return -ENOMEM;
        }
        if (renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE) < 0) {
            if (errno == EEXIST) {
                continue;
            }
            if (errno != EINVAL) {
                return -errno;
            }
            /*
             * A file system without RENAME_NOREPLACE: check, then rename. Nothing else writes
             * these names, and start-up runs alone.
             */
            if (lstat(aside, &st) == 0) {
                continue;
            }
            if (errno != ENOENT || rename(path, aside) < 0) {
                return -errno;
            }
        }
        (void)path_sync_dir(path);
        *ret_aside = TAKE_PTR(aside);
        return 0;
    }
    return -EEXIST;
}

static void log_loaded(const struct endpoint *ep, const struct ep_snapshot *s, const char *warning)
{
    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        log_info("endpoint %s: %zu CA certificate(s) in %s", ep->cfg->name, s->n, ep->cfg->dir);
        return;
    }
    if (s->n == 0) {
        log_info("endpoint %s: no certificate yet", ep->cfg->name);
        return;
    }
    const struct cert_info *info = s->entries[0].info;
    char until[32];
    unix_to_iso8601(info->not_after, until, sizeof(until));
    log_info("endpoint %s: certificate %s, serial %s, valid until %s", ep->cfg->name,
             info->subject.rfc4514, info->serial_hex, until);
    if (warning && warning[0]) {
        log_warning("endpoint %s: %s", ep->cfg->name, warning);
    }
}

/* ---- self-signed certificates ---- */

/*
 * The names of a bootstrap certificate: CN = the host name into cn, or its first label when the
 * name is longer than a CN may be (253 against 64: the whole name then goes into the SAN, which
 * is what clients match anyway); the SAN names into *ret_alts (an owned array of borrowed
 * strings): the host name when it was cut, or, with is_host_listed, whenever it is a DNS name
 * or an IP address (issue_selfsigned adds it itself; a CSR does not), then the configured names.
 */
static int bootstrap_names(const struct manager *m, const struct endpoint *ep, bool is_host_listed,
                           char cn[static X520_CN_MAX + 1], const char ***ret_alts, size_t *ret_n,
                           struct certd_err *err)
{
    _cleanup_free_ const char **alts = NULL;
    const char *host = m->hostname;
    bool is_short = strlen(host) <= X520_CN_MAX;
    enum san_kind kind;
    size_t n = 0;

    if (is_short) {
        (void)snprintf(cn, X520_CN_MAX + 1, "%s", host);
    } else {
        size_t label = strcspn(host, ".");
        (void)snprintf(cn, X520_CN_MAX + 1, "%.*s",
                       (int)(label < X520_CN_MAX ? label : X520_CN_MAX), host);
    }
    alts = calloc(ep->cfg->n_names + 1, sizeof(*alts));
    if (!alts) {
        return oom(err);
    }
    bool is_host_in = !is_short || (is_host_listed && san_classify(host, &kind) == 0 &&
                                    (kind == SAN_DNS || kind == SAN_IP));
    for (size_t i = 0; i < ep->cfg->n_names && is_host_in; i++) {
        /* Listed among the names already: once is enough. */
        is_host_in = strcmp(ep->cfg->names[i], host) != 0;
    }
    if (is_host_in) {
        alts[n++] = host;
    }
    for (size_t i = 0; i < ep->cfg->n_names; i++) {
        alts[n++] = ep->cfg->names[i];
    }
    *ret_alts = TAKE_PTR(alts);
    *ret_n = n;
    return 0;
}

/*
 * A new key (the endpoint's new_key) and a self-signed certificate for the host name: CN = the
 * host name, SAN = host name and the configured names, the configured days.
 */
static int selfsigned_make(struct manager *m, struct endpoint *ep, X509 **ret_cert,
                           EVP_PKEY **ret_key, struct certd_err *err)
{
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    _cleanup_free_ const char **alts = NULL;
    char cn[X520_CN_MAX + 1];
    size_t n_alts = 0;
    int r;

    r = bootstrap_names(m, ep, false, cn, &alts, &n_alts, err);
    if (r < 0) {
        return r;
    }
    /* A key at a URI (a persistent TPM key) stays: the certificate is made for it. */
    if (ep->cfg->key_uri) {
        r = uri_load_key(m->libctx, m->propq, ep->cfg->key_uri, &key, err);
    } else {
        r = key_generate(m->libctx, m->propq, &ep->cfg->new_key, &key, err);
    }
    if (r < 0) {
        return r;
    }
    const struct selfsign_request req = {
        .common_name = cn,
        .alt_names = alts,
        .n_alt_names = n_alts,
        .days = ep->cfg->days,
        .now = now_unix(),
    };
    r = issue_selfsigned(m->libctx, m->propq, key, &req, &cert, err);
    if (r < 0) {
        return r;
    }
    *ret_cert = TAKE_PTR(cert);
    *ret_key = TAKE_PTR(key);
    return 0;
}

/*
 * A self-signed certificate for key (the private key: a held key signs in its provider) as ep
 * keeps it: the subject and alternative names of from_cert exactly, as a Renew CSR takes them,
 * or the bootstrap names when from_cert is NULL; EKU of the endpoint's type, plus the serverAuth
 * and clientAuth that from_info (from_cert's, nullable) shows; the endpoint's days from now.
 * Made by way of a CSR, so that the library's one copy of a subject and its names (csr_build's
 * from_cert) and its one signing path (issue_from_csr) serve here too.
 */
static int selfsigned_issue(struct manager *m, const struct endpoint *ep, EVP_PKEY *key,
                            const X509 *from_cert, const struct cert_info *from_info, X509 **ret,
                            struct certd_err *err)
{
    _cleanup_(cleanup_X509_REQ) X509_REQ *csr = NULL;
    _cleanup_free_ const char **alts = NULL;
    struct csr_request req = { .from_cert = from_cert };
    char cn[X520_CN_MAX + 1];
    size_t n_alts = 0;
    int r;

    if (!from_cert) {
        r = bootstrap_names(m, ep, true, cn, &alts, &n_alts, err);
        if (r < 0) {
            return r;
        }
        req.common_name = cn;
        req.alt_names = alts;
        req.n_alt_names = n_alts;
    }
    r = csr_build(m->libctx, m->propq, &req, key, &csr, err);
    if (r < 0) {
        return r;
    }
    uint32_t eku = ep->cfg->type == ENDPOINT_CLIENT ? CERT_EKU_CLIENT_AUTH : CERT_EKU_SERVER_AUTH;
    if (from_info && from_info->has_eku) {
        /* A certificate used both ways stays so; other purposes are a CA's to grant. */
        eku |= from_info->eku & (CERT_EKU_SERVER_AUTH | CERT_EKU_CLIENT_AUTH);
    }
    const struct issue_profile prof = {
        .days = ep->cfg->days,
        .eku = eku,
        .copy_sans = true,
        .allowed_sans = (1u << SAN_DNS) | (1u << SAN_IP) | (1u << SAN_EMAIL) | (1u << SAN_URI),
        .keys = { .allow_ed25519 = ep->cfg->allow_ed25519 },
        /* Built and signed just now, with the key that signs the certificate. */
        .is_csr_verified = true,
    };
    return issue_from_csr(m->libctx, m->propq, csr, NULL, key, &prof, now_unix(), ret, err);
}

/*
 * Rename ep's files aside (start-up), each that exists to "<file>.corrupt-<UTC stamp>": never
 * deleted, as an admin may want to see what was there, or it held the only key.
 */
static int files_keep_aside(const struct endpoint *ep, struct certd_err *err)
{
    const char *paths[2] = { ep->cfg->cert,
                             ep->is_combined || ep->cfg->key_uri ? NULL : ep->cfg->key };
    char stamp[32], buf[128];
    struct tm tm;
    time_t t = (time_t)now_unix();
    int r;

    if (!gmtime_r(&t, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0) {
        return err_set(err, -EINVAL, CERTD_E_INTERNAL, "cannot format the time");
    }
    for (size_t i = 0; i < ELEMENTSOF(paths) && paths[i]; i++) {
        _cleanup_free_ char *aside = NULL;
        r = file_keep_aside(paths[i], stamp, &aside);
        if (r < 0) {
            return err_set(err, r, CERTD_E_STORAGE, "cannot keep %s aside: %s", paths[i],
                           store_errno_str(r, buf, sizeof(buf)));
        }
        if (aside) {
            log_notice("endpoint %s: kept %s aside as %s", ep->cfg->name, paths[i], aside);
        }
    }
    return 0;
}

/*
 * Store cert (a new self-signed certificate) and key (its private key) in ep's files, those
 * there first kept aside when is_aside (start-up). *ret is the snapshot to publish.
 */
static int selfsigned_keep(struct manager *m, struct endpoint *ep, X509 *cert, EVP_PKEY *key,
                           bool is_aside, struct ep_snapshot **ret, struct certd_err *err)
{
    _cleanup_(cleanup_x509_view) x509_view *certs = sk_X509_new_null();
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    int r;

    if (!certs || sk_X509_push(certs, cert) <= 0) {
        return oom(err);
    }
    r = snapshot_new_single(m, ep, certs, key, &s, err);
    if (r < 0) {
        return r;
    }
    if (is_aside) {
        r = files_keep_aside(ep, err);
        if (r < 0) {
            return r;
        }
    }
    r = snapshot_write(m, ep, s, key, err);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(s);
    return 0;
}

/*
 * A self-signed certificate and key for ep (a server without a usable certificate at start, or
 * whose certificate is deleted), stored in its files, those there first kept aside when
 * is_aside. why (logged at notice) says what led here. *ret is the snapshot to publish.
 */
static int selfsigned_store(struct manager *m, struct endpoint *ep, const char *why, bool is_aside,
                            struct ep_snapshot **ret, struct certd_err *err)
{
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    int r;

    r = selfsigned_make(m, ep, &cert, &key, err);
    if (r < 0) {
        return r;
    }
    log_notice("endpoint %s: %s; making a self-signed certificate for %s", ep->cfg->name, why,
               m->hostname);
    return selfsigned_keep(m, ep, cert, key, is_aside, ret, err);
}

/*
 * At start, a server whose files hold a self-signed certificate refused only for its dates
 * (validate_bundle stopped at its last rule: one leaf, the key there and matching, its strength,
 * the usages all held): the same key gets a new self-signed certificate, the files kept aside
 * as for any bootstrap, so that clients that pin the key keep connecting. 0 and *ret; 1 when
 * this does not apply or the key cannot sign (logged): the caller then makes a new key; -errno
 * when storing failed (fatal, as for selfsigned_store).
 */
static int selfsigned_reissue(struct manager *m, struct endpoint *ep, struct ep_snapshot **ret,
                              struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    _cleanup_(cleanup_cert_info) struct cert_info *info = NULL;
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    struct certd_err e = { 0 };
    char when[32];

    if (files_load(m, ep, &b, &e) != 0 || bundle_n_certs(b) != 1 || !b->key ||
        cert_inspect(m->libctx, m->propq, bundle_cert(b, 0), &info, &e) < 0 ||
        !info->is_self_signed) {
        return 1;
    }
    if (selfsigned_issue(m, ep, b->key, bundle_cert(b, 0), info, &cert, &e) < 0) {
        log_warning("endpoint %s: cannot re-issue its self-signed certificate for the same key: %s",
                    ep->cfg->name, e.msg);
        return 1;
    }
    bool is_early = info->not_before > now_unix();
    unix_to_iso8601(is_early ? info->not_before : info->not_after, when, sizeof(when));
    log_notice("endpoint %s: self-signed certificate %s %s; re-issued for the same key (pins "
               "stay valid)",
               ep->cfg->name, is_early ? "not valid before" : "expired on", when);
    return selfsigned_keep(m, ep, cert, b->key, true, ret, err);
}

/* ---- pending keys ---- */

static void pending_drop_file(const struct endpoint *ep, uint64_t seq)
{
    _cleanup_free_ char *path = pending_path(ep, seq);
    char buf[128];

    if (!path) {
        log_warning("endpoint %s: out of memory removing pending key %" PRIu64, ep->cfg->name, seq);
        return;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        log_warning("endpoint %s: cannot remove %s: %s", ep->cfg->name, path,
                    store_errno_str(-errno, buf, sizeof(buf)));
        return;
    }
    (void)dir_sync(ep->pending_dir);
}

/*
 * Insert (seq, key) into the list, a reference to key already taken for it. When the list is
 * full, the oldest entry (possibly this one) leaves it and is returned in *ret_victim (its
 * file and reference are the caller's to drop, outside the lock). Caller holds m->lock.
 */
static bool pending_insert_locked(struct endpoint *ep, uint64_t seq, EVP_PKEY *key, bool is_public,
                                  const struct pin *pin, struct pending_key *ret_victim)
{
    const struct pending_key pk = {
        .seq = seq, .key = key, .is_public = is_public, .pin = pin ? *pin : (struct pin){ { 0 } }
    };
    bool has_victim = false;

    if (ep->n_pending == MANAGER_PENDING_MAX) {
        if (seq < ep->pending[0].seq) {
            *ret_victim = pk;
            return true;
        }
        *ret_victim = ep->pending[0];
        memmove(&ep->pending[0], &ep->pending[1], (ep->n_pending - 1) * sizeof(ep->pending[0]));
        ep->n_pending--;
        has_victim = true;
    }
    size_t i = ep->n_pending;
    while (i > 0 && ep->pending[i - 1].seq > seq) {
        ep->pending[i] = ep->pending[i - 1];
        i--;
    }
    ep->pending[i] = pk;
    ep->n_pending++;
    return has_victim;
}

static void pending_victim_drop(const struct endpoint *ep, struct pending_key *victim)
{
    log_info("endpoint %s: dropped pending key %" PRIu64 " (more than %u CSRs wait)", ep->cfg->name,
             victim->seq, MANAGER_PENDING_MAX);
    pending_drop_file(ep, victim->seq);
    EVP_PKEY_free(victim->key);
    victim->key = NULL;
}

/*
 * Keep key (borrowed; the list takes its own reference) as a new pending key of ep: its file
 * first, then the list. Parallel callers get distinct numbers under the lock. Its pin goes to
 * *ret_pin (nullable).
 */
static int pending_add(struct manager *m, struct endpoint *ep, EVP_PKEY *key, struct pin *ret_pin,
                       struct certd_err *err)
{
    _cleanup_(cleanup_secret) struct secret *pem = NULL;
    _cleanup_free_ char *path = NULL;
    struct pending_key victim = { 0 };
    struct pin pin;
    uint64_t seq;
    int r;

    lock(m);
    seq = ep->next_seq++;
    unlock(m);

    r = key_private_to_pem(m->libctx, m->propq, key, &pem);
    if (r == -ENOMEM) {
        return oom(err);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the private key");
    }
    path = pending_path(ep, seq);
    if (!path) {
        return oom(err);
    }
    r = store_write_atomic(path, span_make(pem->p, pem->len), STORE_MODE_SECRET, err);
    if (r < 0) {
        return r;
    }
    EVP_PKEY *kept = NULL;
    if (key_is_held(key)) {
        r = key_public_dup(m->libctx, m->propq, key, &kept);
    } else {
        r = EVP_PKEY_up_ref(key) == 1 ? 0 : -EIO;
        kept = r == 0 ? key : NULL;
    }
    if (r < 0) {
        pending_drop_file(ep, seq);
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the key");
    }
    /* The public half kept: a held key's pin needs nothing of its provider. */
    r = pin_from_pkey(m->libctx, m->propq, kept, &pin);
    if (r < 0) {
        EVP_PKEY_free(kept);
        pending_drop_file(ep, seq);
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                       "cannot compute the pin of the new key");
    }
    lock(m);
    bool has_victim = pending_insert_locked(ep, seq, kept, kept != key, &pin, &victim);
    unlock(m);
    if (has_victim) {
        pending_victim_drop(ep, &victim);
    }
    if (ret_pin) {
        *ret_pin = pin;
    }
    return 0;
}

/* References to every pending key of ep, oldest first, into v (at most MANAGER_PENDING_MAX). */
static size_t pending_copy(struct endpoint *ep, struct pending_key v[static MANAGER_PENDING_MAX])
{
    size_t n;

    lock(ep->m);
    n = ep->n_pending;
    for (size_t i = 0; i < n; i++) {
        v[i] = ep->pending[i];
        /* Cannot fail for a live key: the list holds a reference. */
        (void)EVP_PKEY_up_ref(v[i].key);
    }
    unlock(ep->m);
    return n;
}

static void pending_copy_free(struct pending_key *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY_free(v[i].key);
        v[i].key = NULL;
    }
}

/* Consume every pending key of ep whose public key is key's: it is installed now. */
static void pending_consume(struct endpoint *ep, const EVP_PKEY *key)
{
    struct pending_key v[MANAGER_PENDING_MAX], taken[MANAGER_PENDING_MAX];
    uint64_t match[MANAGER_PENDING_MAX];
    size_t n, n_match = 0, n_taken = 0, j = 0;

    /* Compared outside the lock; an entry dropped meanwhile is the dropper's to remove. */
    n = pending_copy(ep, v);
    for (size_t i = 0; i < n; i++) {
        if (key_public_eq(v[i].key, key)) {
            match[n_match++] = v[i].seq;
        }
    }
    pending_copy_free(v, n);
    if (n_match == 0) {
        return;
    }

    lock(ep->m);
    for (size_t i = 0; i < ep->n_pending; i++) {
        bool is_match = false;
        for (size_t k = 0; k < n_match; k++) {
            is_match = is_match || ep->pending[i].seq == match[k];
        }
        if (is_match) {
            taken[n_taken++] = ep->pending[i];
        } else {
            ep->pending[j++] = ep->pending[i];
        }
    }
    ep->n_pending = j;
    unlock(ep->m);

    for (size_t i = 0; i < n_taken; i++) {
        log_info("endpoint %s: pending key %" PRIu64 " is installed now", ep->cfg->name,
                 taken[i].seq);
        pending_drop_file(ep, taken[i].seq);
        EVP_PKEY_free(taken[i].key);
    }
}

/* "<seq>.key" -> seq; false for any other name. */
static bool pending_name_parse(const char *name, uint64_t *ret)
{
    const char *dot = strchr(name, '.');
    char digits[24];

    if (!dot || strcmp(dot, ".key") != 0 || dot == name || (size_t)(dot - name) >= sizeof(digits)) {
        return false;
    }
    memcpy(digits, name, (size_t)(dot - name));
    digits[dot - name] = '\0';
    /* UINT64_MAX - 1: next_seq = seq + 1 must not wrap. */
    return parse_u64(digits, 1, UINT64_MAX - 1, ret) == 0;
}

/*
 * The key in pending file seq, or NULL (logged): a file that holds no key is removed, as no key
 * will come out of it; one that cannot be read now (memory, I/O) is left for the next start.
 */
static EVP_PKEY *pending_key_load(struct manager *m, const struct endpoint *ep, uint64_t seq)
{
    _cleanup_(store_buf_done) struct store_buf file = { .p = NULL };
    _cleanup_free_ char *path = pending_path(ep, seq);
    struct certd_err e = { 0 };
    EVP_PKEY *key = NULL;
    int r;

    if (!path) {
        log_warning("endpoint %s: out of memory loading pending keys", ep->cfg->name);
        return NULL;
    }
    r = store_read_file_err(path, PENDING_FILE_MAX, true, &file, &e);
    if (r < 0 && r != -E2BIG) {
        log_warning("endpoint %s: pending key left out: %s", ep->cfg->name, e.msg);
        return NULL;
    }
    if (r >= 0) {
        r = key_parse_pem(m->libctx, m->propq, span_make(file.p, file.len), &key, &e);
    }
    if (r < 0 && err_code_class(e.code) == CERTD_CLASS_UNAVAILABLE) {
        /* A TPM that is away or full says nothing about the key: keep its file. */
        log_warning("endpoint %s: pending key %s cannot be loaded now (%s): kept", ep->cfg->name,
                    path, e.msg);
        return NULL;
    }
    if (r < 0) {
        log_warning("endpoint %s: pending key %s is unusable (%s): removed", ep->cfg->name, path,
                    e.msg);
        pending_drop_file(ep, seq);
        return NULL;
    }
    return key;
}

/*
 * Load ep's pending keys at start: the newest MANAGER_PENDING_MAX files, in sequence order,
 * chosen as pending_add keeps them (pending_insert_locked, whatever the directory's order);
 * older ones, which a crash between two steps may leave, are dropped with their files. Only
 * then are the chosen keys read, and a file that yields none leaves the list. Never fatal: a
 * key lost here only means a certificate for it must come with its key.
 */
static void pending_load(struct manager *m, struct endpoint *ep)
{
    _cleanup_(cleanup_DIR) DIR *d = opendir(ep->pending_dir);
    uint64_t seqs[MANAGER_PENDING_MAX], max_seq = 0;
    struct pending_key victim;
    struct dirent *de;
    bool has_victim;
    char buf[128];
    size_t n;

    if (!d) {
        log_warning("endpoint %s: cannot read %s: %s", ep->cfg->name, ep->pending_dir,
                    store_errno_str(-errno, buf, sizeof(buf)));
        return;
    }
    while ((de = readdir(d))) {
        uint64_t seq;
        if (!pending_name_parse(de->d_name, &seq)) {
            continue;
        }
        max_seq = seq > max_seq ? seq : max_seq;
        /* No key yet: the list only picks the numbers here. */
        lock(m);
        has_victim = pending_insert_locked(ep, seq, NULL, false, NULL, &victim);
        unlock(m);
        if (has_victim) {
            pending_victim_drop(ep, &victim);
        }
    }

    lock(m);
    n = ep->n_pending;
    for (size_t i = 0; i < n; i++) {
        seqs[i] = ep->pending[i].seq;
    }
    /* Refilled below with the keys that load, in the same order. */
    ep->n_pending = 0;
    ep->next_seq = max_seq + 1;
    unlock(m);
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY *key = pending_key_load(m, ep, seqs[i]);
        if (!key) {
            continue;
        }
        bool is_public = key_is_held(key);
        if (is_public) {
            /* Loading it proved that the TPM takes it; waiting, it needs only its public half. */
            EVP_PKEY *pub = NULL;
            int r = key_public_dup(m->libctx, m->propq, key, &pub);
            EVP_PKEY_free(key);
            if (r < 0) {
                log_warning("endpoint %s: pending key %" PRIu64 " left out: no public key",
                            ep->cfg->name, seqs[i]);
                continue;
            }
            key = pub;
        }
        struct pin pin;
        if (pin_from_pkey(m->libctx, m->propq, key, &pin) < 0) {
            log_warning("endpoint %s: pending key %" PRIu64 " left out: no pin", ep->cfg->name,
                        seqs[i]);
            EVP_PKEY_free(key);
            continue;
        }
        lock(m);
        has_victim = pending_insert_locked(ep, seqs[i], key, is_public, &pin, &victim);
        unlock(m);
        assert(!has_victim);
    }
    lock(m);
    n = ep->n_pending;
    unlock(m);
    if (n > 0) {
        log_info("endpoint %s: %zu pending key(s) waiting for a certificate", ep->cfg->name, n);
    }
}

/* ---- loading ---- */

static int dir_prepare(const char *dir, mode_t mode, struct certd_err *err)
{
    char buf[128];
    int r = store_mkdir_p(dir, mode);
    if (r == -EPERM) {
        return err_set(err, r, CERTD_E_STORAGE,
                       "directory %s is not safe: not owned by certd's user, or writable by others",
                       dir);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot create directory %s: %s", dir,
                       store_errno_str(r, buf, sizeof(buf)));
    }
    r = store_recover(dir);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot settle interrupted writes in %s: %s", dir,
                       store_errno_str(r, buf, sizeof(buf)));
    }
    return 0;
}

/* The directories of a server/client endpoint: its own, pending keys', the cert's, the key's. */
static int single_dirs_prepare(struct endpoint *ep, struct certd_err *err)
{
    _cleanup_free_ char *cert_dir = path_dir(ep->cfg->cert);
    _cleanup_free_ char *key_dir = path_dir(ep->cfg->key);
    int r;

    if (!cert_dir || !key_dir) {
        return oom(err);
    }
    const struct {
        const char *dir;
        mode_t mode;
    } dirs[] = {
        { ep->dir, STORE_MODE_DIR },
        { ep->pending_dir, STORE_MODE_DIR },
        { key_dir, STORE_MODE_DIR },
        /* A certificate alone is public; with the key beside it the directory is not. */
        { cert_dir, strcmp(cert_dir, key_dir) == 0 ? STORE_MODE_DIR : MODE_DIR_PUBLIC },
    };
    for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
        bool is_seen = false;
        for (size_t j = 0; j < i; j++) {
            is_seen = is_seen || strcmp(dirs[i].dir, dirs[j].dir) == 0;
        }
        if (is_seen) {
            continue;
        }
        r = dir_prepare(dirs[i].dir, dirs[i].mode, err);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* Whether b holds the certificates (leaf first) and public key cur holds. */
static bool single_same(const struct ep_snapshot *cur, const struct bundle *b)
{
    size_t n = bundle_n_certs(b);

    if (cur->n != 1 || (size_t)sk_X509_num(cur->chain) + 1 != n ||
        X509_cmp(cur->entries[0].cert, bundle_cert(b, 0)) != 0 ||
        !key_public_eq(cur->key, b->key)) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (X509_cmp(sk_X509_value(cur->chain, (int)(i - 1)), bundle_cert(b, i)) != 0) {
            return false;
        }
    }
    return true;
}

/*
 * A server/client endpoint's files as a validated snapshot in *ret; 1 when neither file exists.
 * With cur (a reload), 0 and *ret = NULL when the files hold what cur holds: found before
 * anything is validated, inspected or encoded, since every change certd makes itself comes
 * back as a reload.
 */
static int single_load(struct manager *m, struct endpoint *ep, const struct ep_snapshot *cur,
                       struct ep_snapshot **ret, char warning[static 256], struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    struct validate_policy pol;
    struct validate_result res = { .is_expired = false };
    int r;

    r = files_load(m, ep, &b, err);
    if (r != 0) {
        return r;
    }
    if (cur && single_same(cur, b)) {
        *ret = NULL;
        return 0;
    }
    validate_policy_for(ep, &pol);
    r = validate_bundle(m->libctx, m->propq, b, ep->cfg->type, &pol, NULL, NULL, &res, err);
    if (r < 0) {
        return r;
    }
    r = snapshot_new_single(m, ep, b->certs, b->key, ret, err);
    if (r < 0) {
        return r;
    }
    (void)snprintf(warning, 256, "%s", res.warning);
    return 0;
}

/* Whether two authority snapshots hold the same ids (the same certificates). */
static bool authority_same(const struct ep_snapshot *a, const struct ep_snapshot *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->entries[i].id, b->entries[i].id) != 0) {
            return false;
        }
    }
    return true;
}

/*
 * An authority's directory as a snapshot in *ret; with cur (a reload) as single_load, and
 * entries of cur shared rather than inspected again.
 */
static int authority_load(struct manager *m, struct endpoint *ep, const struct ep_snapshot *cur,
                          struct ep_snapshot **ret, struct certd_err *err)
{
    _cleanup_(cleanup_x509_stack) STACK_OF(X509) *certs = NULL;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    char **ids = NULL;
    char buf[128];
    size_t n = 0;
    int r;

    r = authority_dir_load(m->libctx, m->propq, ep->cfg->dir, &certs, &ids, &n);
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_LIMIT_REACHED, "%s holds more than %u certificates",
                       ep->cfg->dir, CERTD_AUTHORITY_MAX_HARD);
    }
    if (r < 0) {
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_STORAGE,
                       "cannot load %s: %s", ep->cfg->dir, store_errno_str(r, buf, sizeof(buf)));
    }
    /* Both lists are sorted by id, and an id is the certificate's fingerprint. */
    bool is_same = cur && cur->n == n;
    for (size_t i = 0; is_same && i < n; i++) {
        is_same = strcmp(cur->entries[i].id, ids[i]) == 0;
    }
    if (!is_same) {
        r = snapshot_new_authority(m, ep, NULL, NULL, certs, ids, cur, false, &s, err);
    }
    strv_free_n(ids, n);
    if (r < 0) {
        return r;
    }
    /* A certificate left out (it cannot be shown) is left out again: no change either. */
    if (s && cur && authority_same(cur, s)) {
        s = ep_snapshot_unref(s);
    }
    *ret = TAKE_PTR(s);
    return 0;
}

/*
 * Rebuild the CApath links of an authority directory at start-up. A change writes its files as
 * one journaled set and only then the links, so a crash in between (or recovery completing the
 * set, which knows nothing of links) leaves links to files that are gone and none for the new
 * ones: OpenSSL clients reading the directory (nslcd, curl) would miss certificates until the
 * next change. Best effort: the certificates load all the same.
 */
static void authority_links_repair(struct manager *m, const struct endpoint *ep)
{
    char buf[128];
    int r = authority_dir_rehash_ex(m->libctx, m->propq, ep->cfg->dir);

    if (r < 0) {
        log_warning("endpoint %s: cannot rebuild the links in %s: %s", ep->cfg->name, ep->cfg->dir,
                    store_errno_str(r, buf, sizeof(buf)));
    }
}

static int endpoint_start(struct manager *m, struct endpoint *ep, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    struct certd_err e = { 0 };
    char warning[256] = "";
    int r;

    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        r = dir_prepare(ep->cfg->dir, MODE_DIR_PUBLIC, &e);
        if (r >= 0) {
            authority_links_repair(m, ep);
            r = authority_load(m, ep, NULL, &s, &e);
        }
        if (r < 0) {
            log_warning("endpoint %s: left empty: %s", ep->cfg->name, e.msg);
            return 0;
        }
        log_loaded(ep, s, NULL);
        publish(ep, TAKE_PTR(s));
        return 0;
    }

    r = single_dirs_prepare(ep, &e);
    if (r < 0) {
        if (ep->cfg->type == ENDPOINT_SERVER) {
            return err_set(err, r, e.code, "endpoint %s: %s", ep->cfg->name, e.msg);
        }
        log_warning("endpoint %s: left empty: %s", ep->cfg->name, e.msg);
        return 0;
    }
    pending_load(m, ep);
    if (ep->cfg->key_uri || ep->cfg->cert_uri) {
        tpm_journal_replay(m, ep);
    }

    r = single_load(m, ep, NULL, &s, warning, &e);
    if (r == 0) {
        log_loaded(ep, s, warning);
        publish(ep, TAKE_PTR(s));
        return 0;
    }
    if (ep->cfg->type == ENDPOINT_CLIENT) {
        if (r == 1) {
            log_info("endpoint %s: no certificate yet", ep->cfg->name);
        } else {
            log_warning("endpoint %s: left empty, its files as they are: %s", ep->cfg->name, e.msg);
        }
        return 0;
    }
    if (r < 0 && err_code_class(e.code) == CERTD_CLASS_UNAVAILABLE) {
        /*
         * Its key is in a TPM that did not load it now (away, or out of object slots): a new
         * key would replace a good one for a passing fault. Not starting says what to fix.
         */
        return err_set(err, r, e.code, "endpoint %s: %s; its files are left as they are",
                       ep->cfg->name, e.msg);
    }
    if (e.code == CERTD_E_CERT_EXPIRED || e.code == CERTD_E_CERT_NOT_YET_VALID) {
        /* Only its dates are wrong: a self-signed one keeps its key (issue #6). */
        int rr = selfsigned_reissue(m, ep, &s, err);
        if (rr < 0) {
            return rr;
        }
        if (rr == 0) {
            log_loaded(ep, s, NULL);
            publish(ep, TAKE_PTR(s));
            return 0;
        }
    }
    /* A server without a usable certificate: a self-signed one, the files there kept aside. */
    r = selfsigned_store(m, ep, r == 1 ? "no certificate yet" : e.msg, true, &s, err);
    if (r < 0) {
        return r;
    }
    log_loaded(ep, s, NULL);
    publish(ep, TAKE_PTR(s));
    return 0;
}

/* ---- life cycle and accessors ---- */

int manager_new(const struct config *cfg, OSSL_LIB_CTX *libctx, const char *propq,
                const char *hostname, struct manager **ret)
{
    _cleanup_(cleanup_manager) struct manager *m = NULL;

    assert_return(cfg && hostname && ret, -EINVAL);
    assert_return(hostname[0] != '\0', -EINVAL);

    m = calloc(1, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(TAKE_PTR(m));
        return -ENOMEM;
    }
    m->cfg = cfg;
    m->libctx = libctx;
    m->propq = propq ? strdup(propq) : NULL;
    m->hostname = strdup(hostname);
    m->endpoints = calloc(cfg->n_endpoints > 0 ? cfg->n_endpoints : 1, sizeof(*m->endpoints));
    if ((propq && !m->propq) || !m->hostname || !m->endpoints) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        struct endpoint *ep = &m->endpoints[i];
        const struct config_endpoint *ce = &cfg->endpoints[i];

        ep->m = m;
        ep->cfg = ce;
        ep->next_seq = 1;
        /* Counted now, so that manager_free frees whatever the loop got to. */
        m->n_endpoints++;
        ep->current = snapshot_alloc(0);
        if (!ep->current || asprintf(&ep->dir, "%s/%s", cfg->state_dir, ce->name) < 0) {
            ep->dir = NULL;
            return -ENOMEM;
        }
        if (ce->type != ENDPOINT_AUTHORITY) {
            if (asprintf(&ep->pending_dir, "%s/pending", ep->dir) < 0) {
                ep->pending_dir = NULL;
                return -ENOMEM;
            }
            ep->is_combined = !ce->key_uri && !ce->cert_uri && strcmp(ce->cert, ce->key) == 0;
        }
    }
    *ret = TAKE_PTR(m);
    return 0;
}

struct manager *manager_free(struct manager *m)
{
    if (!m) {
        return NULL;
    }
    for (size_t i = 0; i < m->n_endpoints; i++) {
        struct endpoint *ep = &m->endpoints[i];
        (void)ep_snapshot_unref(ep->current);
        pending_copy_free(ep->pending, ep->n_pending);
        free(ep->dir);
        free(ep->pending_dir);
    }
    free(m->endpoints);
    free(m->propq);
    free(m->hostname);
    (void)pthread_mutex_destroy(&m->lock);
    free(m);
    return NULL;
}

int manager_start(struct manager *m, struct certd_err *err)
{
    int r;

    assert_return(m, -EINVAL);
    assert_return(!m->is_started, -EALREADY);
    m->is_started = true;

    r = dir_prepare(m->cfg->state_dir, MODE_DIR_PUBLIC, err);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < m->n_endpoints; i++) {
        r = endpoint_start(m, &m->endpoints[i], err);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

size_t manager_n_endpoints(const struct manager *m)
{
    return m ? m->n_endpoints : 0;
}

struct endpoint *manager_endpoint_at(struct manager *m, size_t i)
{
    return m && i < m->n_endpoints ? &m->endpoints[i] : NULL;
}

struct endpoint *manager_endpoint(struct manager *m, const char *name)
{
    if (!m || !name) {
        return NULL;
    }
    for (size_t i = 0; i < m->n_endpoints; i++) {
        if (strcmp(m->endpoints[i].cfg->name, name) == 0) {
            return &m->endpoints[i];
        }
    }
    return NULL;
}

const char *endpoint_name(const struct endpoint *ep)
{
    return ep->cfg->name;
}

enum endpoint_type endpoint_type(const struct endpoint *ep)
{
    return ep->cfg->type;
}

const struct config_endpoint *endpoint_config(const struct endpoint *ep)
{
    return ep->cfg;
}

struct ep_snapshot *endpoint_snapshot(struct endpoint *ep)
{
    struct ep_snapshot *s;

    lock(ep->m);
    s = ep_snapshot_ref(ep->current);
    unlock(ep->m);
    return s;
}

/* ---- changes ---- */

static int not_found(struct certd_err *err, const struct endpoint *ep, const char *id)
{
    /* The id comes from a request: only a bounded, printable piece of it is quoted. */
    return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "endpoint %s has no certificate '%.64s'",
                   ep->cfg->name, id);
}

static int forbid_authority(struct certd_err *err, const struct endpoint *ep)
{
    return err_set(err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS,
                   "endpoint %s holds CA certificates: it has no key to make a CSR for",
                   ep->cfg->name);
}

/*
 * The key to pair with an upload that has none: the newest pending key whose public key is the
 * leaf's (*ret_is_pending); else the current key (the answer to a Renew is for it); else a
 * pending key matching another certificate of the upload, so that validation reports the
 * misordered chain rather than a missing key. NULL when none: validation then reports the
 * missing key.
 */
static EVP_PKEY *pair_find(const struct bundle *b, const struct pending_key *cands, size_t n,
                           const struct ep_snapshot *cur, bool *ret_is_pending, size_t *ret_index)
{
    EVP_PKEY *leaf_key = X509_get0_pubkey(bundle_cert(b, 0));

    *ret_is_pending = false;
    *ret_index = SIZE_MAX;
    if (!leaf_key) {
        (void)ossl_drain_errors("manager: leaf public key");
        return NULL;
    }
    for (size_t i = n; i > 0; i--) {
        if (key_public_eq(cands[i - 1].key, leaf_key)) {
            *ret_is_pending = true;
            *ret_index = i - 1;
            return cands[i - 1].key;
        }
    }
    if (cur->key && key_public_eq(cur->key, leaf_key)) {
        return cur->key;
    }
    for (size_t c = 1; c < bundle_n_certs(b); c++) {
        EVP_PKEY *k = X509_get0_pubkey(bundle_cert(b, c));
        for (size_t i = n; k && i > 0; i--) {
            if (key_public_eq(cands[i - 1].key, k)) {
                return cands[i - 1].key;
            }
        }
    }
    (void)ossl_drain_errors("manager: chain public keys");
    return NULL;
}

/*
 * Whether pair (found by pair_find) is only the public half of a held key: a pending key kept
 * so (pending, nullable), or the current key of a snapshot that keeps only its public half.
 */
static bool key_is_held_public(const struct ep_snapshot *cur, const EVP_PKEY *pair,
                               const struct pending_key *pending)
{
    if (pending) {
        return pending->is_public;
    }
    return pair == cur->key && cur->is_key_public;
}

/* The private key of pending key seq, loaded from its file (a held key: into its provider). */
static int pending_private_key(struct manager *m, struct endpoint *ep, uint64_t seq, EVP_PKEY **ret,
                               struct certd_err *err)
{
    EVP_PKEY *key = pending_key_load(m, ep, seq);
    if (!key) {
        return err_set(err, -ENOENT, CERTD_E_KEY_MISSING,
                       "the key of the CSR for this certificate can no longer be loaded");
    }
    *ret = key;
    return 0;
}

/*
 * The private key of snapshot cur of ep: cur's own, or, when cur keeps only the public half of a
 * held key, the key loaded again from ep's key file or key_uri (it must still be cur's).
 */
static int endpoint_private_key(struct manager *m, struct endpoint *ep,
                                const struct ep_snapshot *cur, EVP_PKEY **ret,
                                struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    int r;

    if (!cur->key) {
        return err_set(err, -ENOENT, CERTD_E_KEY_MISSING, "endpoint %s holds no key",
                       ep->cfg->name);
    }
    if (!cur->is_key_public) {
        if (EVP_PKEY_up_ref(cur->key) != 1) {
            return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the key");
        }
        *ret = cur->key;
        return 0;
    }
    r = files_load(m, ep, &b, err);
    if (r == 1) {
        return err_set(err, -ENOENT, CERTD_E_KEY_MISSING, "the key of endpoint %s is gone",
                       ep->cfg->name);
    }
    if (r < 0) {
        return r;
    }
    if (!key_public_eq(b->key, cur->key)) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the key of endpoint %s changed on disk; reload it first", ep->cfg->name);
    }
    *ret = TAKE_PTR(b->key);
    return 0;
}

struct pending_copy {
    struct pending_key v[MANAGER_PENDING_MAX];
    size_t n;
};

/*
 * The end of every change of a server/client endpoint's certificate (an install, a self-signed
 * certificate): the snapshot of certs (leaf first) and key (the private key itself, borrowed)
 * built, written to ep's files, published, and every pending key for key consumed. what and
 * how (appended) say in the log line what was done; warning goes to the change.
 */
static int single_commit(struct manager *m, struct endpoint *ep, const STACK_OF(X509) *certs,
                         EVP_PKEY *key, const char *warning, const char *what, const char *how,
                         struct manager_change *ret, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    struct manager_change change = { .id = "" };
    char pin[PIN_STR_MAX];
    int r;

    r = snapshot_new_single(m, ep, certs, key, &s, err);
    if (r < 0) {
        return r;
    }
    r = snapshot_write(m, ep, s, key, err);
    if (r < 0) {
        return r;
    }
    (void)snprintf(change.id, sizeof(change.id), "%s", MANAGER_SINGLE_ID);
    (void)snprintf(change.warning, sizeof(change.warning), "%s", warning);
    pin_format(&s->key_pin, pin, sizeof(pin));
    log_info("endpoint %s: %s %s, serial %s, key %s%s", ep->cfg->name, what,
             s->entries[0].info->subject.rfc4514, s->entries[0].info->serial_hex, pin, how);
    publish(ep, TAKE_PTR(s));
    pending_consume(ep, key);
    *ret = change;
    return 0;
}

static void pending_copy_done(struct pending_copy *c)
{
    pending_copy_free(c->v, c->n);
    c->n = 0;
}

static int install_single(struct manager *m, struct endpoint *ep, struct span data,
                          const char *replace_id, struct manager_change *ret, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = endpoint_snapshot(ep);
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    _cleanup_(pending_copy_done) struct pending_copy cands = { .n = 0 };
    struct validate_policy pol;
    struct validate_result res = { .is_expired = false };
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *loaded = NULL;
    EVP_PKEY *pair = NULL;
    size_t pair_index = SIZE_MAX;
    bool is_pending = false;
    int r;

    if (replace_id && (strcmp(replace_id, MANAGER_SINGLE_ID) != 0 || cur->n == 0)) {
        return not_found(err, ep, replace_id);
    }
    r = bundle_parse(m->libctx, m->propq, data, m->cfg->max_body, &b, err);
    if (r < 0) {
        return r;
    }
    const char *home = ep->cfg->new_key.provider;
    if (b->key && home[0] && strcmp(key_provider_name(b->key), home) != 0) {
        return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                       "endpoint %s keeps its keys in provider %s: a key uploaded with the "
                       "certificate cannot go there (generate a CSR and install the certificate "
                       "alone)",
                       ep->cfg->name, home);
    }
    if (!b->key) {
        cands.n = pending_copy(ep, cands.v);
        pair = pair_find(b, cands.v, cands.n, cur, &is_pending, &pair_index);
    }
    validate_policy_for(ep, &pol);
    r = validate_bundle(m->libctx, m->propq, b, ep->cfg->type, &pol, pair, NULL, &res, err);
    if (r < 0) {
        return r;
    }
    EVP_PKEY *key = b->key ? b->key : pair;
    if (!b->key && pair &&
        key_is_held_public(cur, pair, is_pending ? &cands.v[pair_index] : NULL)) {
        /* A held key waits as its public half: load it now, from its own place. */
        r = is_pending ? pending_private_key(m, ep, cands.v[pair_index].seq, &loaded, err)
                       : endpoint_private_key(m, ep, cur, &loaded, err);
        if (r < 0) {
            return r;
        }
        key = loaded;
    }
    /* key stays valid: b, cands or loaded hold a reference until we return. */
    r = single_commit(m, ep, b->certs, key, res.warning, "installed",
                      is_pending ? " (with the key of an earlier CSR)" : "", ret, err);
    if (r < 0) {
        return r;
    }
    if (replace_id) {
        (void)snprintf(ret->replaced_id, sizeof(ret->replaced_id), "%s", MANAGER_SINGLE_ID);
    }
    return 0;
}

/* A borrowed view of the snapshot's certificates, leaving out skip (nullable). */
static int snapshot_certs_view(const struct ep_snapshot *s, const struct cert_entry *skip,
                               x509_view **ret)
{
    _cleanup_(cleanup_x509_view) x509_view *v = sk_X509_new_null();
    if (!v) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (&s->entries[i] != skip && sk_X509_push(v, s->entries[i].cert) <= 0) {
            return -ENOMEM;
        }
    }
    *ret = TAKE_PTR(v);
    return 0;
}

/* Undo adding ids[0..n) to ep's directory (a replace whose removal failed). */
static void authority_undo_add(struct manager *m, const struct endpoint *ep, char *const *ids,
                               size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct certd_err e = { 0 };
        if (authority_dir_remove_ex(m->libctx, m->propq, ep->cfg->dir, ids[i], &e) < 0) {
            log_err("endpoint %s: cannot undo adding %s: %s", ep->cfg->name, ids[i], e.msg);
        }
    }
}

/* An authority upload: its certificates and their ids (fingerprints), in upload order. */
struct auth_upload {
    struct bundle *b; /* owned */
    struct validate_result res;
    size_t n;
    char id_buf[CERTD_BUNDLE_CERTS_MAX][MANAGER_ID_MAX];
    char *ids[CERTD_BUNDLE_CERTS_MAX]; /* into id_buf */
};

static void auth_upload_done(struct auth_upload *u)
{
    u->b = bundle_free(u->b);
}

/*
 * Parse data and validate it as CA certificates for ep, duplicates judged against rest (the
 * certificates that stay; NULL: none), and compute their ids into u. The limit is judged by the
 * store, under the directory's lock, with the write. 0, or -errno with err.
 */
static int auth_upload_parse(struct manager *m, const struct endpoint *ep, struct span data,
                             const x509_view *rest, struct auth_upload *u, struct certd_err *err)
{
    struct validate_policy pol;
    int r;

    r = bundle_parse(m->libctx, m->propq, data, m->cfg->max_body, &u->b, err);
    if (r < 0) {
        return r;
    }
    validate_policy_for(ep, &pol);
    r = validate_bundle(m->libctx, m->propq, u->b, ENDPOINT_AUTHORITY, &pol, NULL, rest, &u->res,
                        err);
    if (r < 0) {
        return r;
    }
    u->n = bundle_n_certs(u->b);
    if (u->n > CERTD_BUNDLE_CERTS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, "more than %u certificates",
                       CERTD_BUNDLE_CERTS_MAX);
    }
    for (size_t i = 0; i < u->n; i++) {
        u->ids[i] = u->id_buf[i];
        r = authority_cert_id(m->libctx, m->propq, bundle_cert(u->b, i), u->id_buf[i]);
        if (r < 0) {
            return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                           "cannot compute a certificate fingerprint");
        }
    }
    return 0;
}

static int install_authority(struct manager *m, struct endpoint *ep, struct span data,
                             const char *replace_id, struct manager_change *ret,
                             struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = endpoint_snapshot(ep);
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    _cleanup_(auth_upload_done) struct auth_upload u = { .b = NULL };
    _cleanup_(cleanup_x509_view) x509_view *rest = NULL;
    struct manager_change change = { .id = "" };
    const struct cert_entry *old = NULL;
    int r;

    if (replace_id) {
        old = ep_snapshot_find(cur, replace_id);
        if (!old) {
            return not_found(err, ep, replace_id);
        }
    }
    /* Duplicates and the limit are judged against what stays: the replaced one goes. */
    r = snapshot_certs_view(cur, old, &rest);
    if (r < 0) {
        return oom(err);
    }
    r = auth_upload_parse(m, ep, data, rest, &u, err);
    if (r < 0) {
        return r;
    }
    /* What stays is shared with the current snapshot; only the new ones are inspected. */
    r = snapshot_new_authority(m, ep, cur, old, u.b->certs, u.ids, NULL, true, &s, err);
    if (r < 0) {
        return r;
    }
    qsort(s->entries, s->n, sizeof(*s->entries), entry_cmp);

    /*
     * Add first, then remove the replaced one: undoing an add removes exactly the files it
     * made, so a failed replace leaves the directory as it was. For that moment the directory
     * holds one more than the limit.
     */
    r = authority_dir_add_ex(m->libctx, m->propq, ep->cfg->dir, u.b->certs,
                             ep->cfg->max + (old ? 1 : 0), NULL, err);
    if (r < 0) {
        return r;
    }
    if (old) {
        r = authority_dir_remove_ex(m->libctx, m->propq, ep->cfg->dir, old->id, err);
        if (r < 0) {
            authority_undo_add(m, ep, u.ids, u.n);
            return r;
        }
    }
    (void)snprintf(change.id, sizeof(change.id), "%s", u.ids[0]);
    if (old) {
        (void)snprintf(change.replaced_id, sizeof(change.replaced_id), "%s", old->id);
    }
    (void)snprintf(change.warning, sizeof(change.warning), "%s", u.res.warning);
    log_info("endpoint %s: added %zu CA certificate(s)%s%s", ep->cfg->name, u.n,
             old ? ", replacing " : "", old ? old->id : "");
    publish(ep, TAKE_PTR(s));
    *ret = change;
    return 0;
}

int manager_install(struct manager *m, struct endpoint *ep, struct span data,
                    const char *replace_id, struct manager_change *ret, struct certd_err *err)
{
    assert_return(m && ep && ret, -EINVAL);
    assert_return(data.p || data.len == 0, -EINVAL);

    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        return install_authority(m, ep, data, replace_id, ret, err);
    }
    return install_single(m, ep, data, replace_id, ret, err);
}

/*
 * After a storage failure of a replace: the set may be in place all the same (committed, then
 * the links failed), and the directory is the truth. Publish what it holds when that differs
 * from cur, so that the snapshot never shows a set the directory no longer has.
 */
static void authority_resync(struct manager *m, struct endpoint *ep, const struct ep_snapshot *cur)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    struct certd_err e = { 0 };

    if (authority_load(m, ep, cur, &s, &e) < 0) {
        log_err("endpoint %s: cannot re-read %s after a failed replace: %s", ep->cfg->name,
                ep->cfg->dir, e.msg);
        return;
    }
    if (s) {
        log_warning("endpoint %s: %s changed although the replace failed; showing what it holds",
                    ep->cfg->name, ep->cfg->dir);
        publish(ep, TAKE_PTR(s));
    }
}

int manager_replace_all(struct manager *m, struct endpoint *ep, struct span data,
                        struct manager_change *ret, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    _cleanup_(auth_upload_done) struct auth_upload u = { .b = NULL };
    struct manager_change change = { .id = "" };
    struct certd_err e = { 0 };
    int r;

    assert_return(m && ep && ret, -EINVAL);
    assert_return(data.p || data.len == 0, -EINVAL);

    if (ep->cfg->type != ENDPOINT_AUTHORITY) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS,
                       "endpoint %s holds one certificate with its key: only the CA certificates "
                       "of an authority endpoint can be replaced all at once",
                       ep->cfg->name);
    }
    cur = endpoint_snapshot(ep);
    /* Judged alone: every certificate held now goes, so none of them can be a duplicate. */
    r = auth_upload_parse(m, ep, data, NULL, &u, err);
    if (r < 0) {
        return r;
    }
    /* A certificate that stays keeps its entry (shared: an id is a fingerprint). */
    r = snapshot_new_authority(m, ep, NULL, NULL, u.b->certs, u.ids, cur, true, &s, err);
    if (r < 0) {
        return r;
    }
    qsort(s->entries, s->n, sizeof(*s->entries), entry_cmp);

    /* The limit and duplicates are judged again under the directory's lock, with the write. */
    r = authority_dir_replace_ex(m->libctx, m->propq, ep->cfg->dir, u.b->certs, ep->cfg->max, NULL,
                                 &e);
    if (r < 0) {
        if (e.code == CERTD_E_STORAGE) {
            authority_resync(m, ep, cur);
        }
        return err_set(err, r, e.code, "%s", e.msg);
    }
    (void)snprintf(change.id, sizeof(change.id), "%s", u.ids[0]);
    (void)snprintf(change.warning, sizeof(change.warning), "%s", u.res.warning);
    log_info("endpoint %s: replaced its %zu CA certificate(s) with %zu", ep->cfg->name, cur->n,
             u.n);
    publish(ep, TAKE_PTR(s));
    *ret = change;
    return 0;
}

int manager_selfsign(struct manager *m, struct endpoint *ep, const struct pin *key_pin,
                     struct manager_change *ret, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    _cleanup_(pending_copy_done) struct pending_copy cands = { .n = 0 };
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    _cleanup_(cleanup_x509_view) x509_view *certs = NULL;
    struct validate_policy pol;
    struct validate_result res = { .is_expired = false };
    const struct pending_key *pk = NULL;
    EVP_PKEY *pub;
    char pin[PIN_STR_MAX];
    int r;

    assert_return(m && ep && ret, -EINVAL);

    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS,
                       "endpoint %s holds CA certificates: it has no key of its own to sign with",
                       ep->cfg->name);
    }
    cur = endpoint_snapshot(ep);
    if (key_pin) {
        /* The newest first, as an upload pairs. */
        cands.n = pending_copy(ep, cands.v);
        for (size_t i = cands.n; i > 0 && !pk; i--) {
            if (pin_eq(&cands.v[i - 1].pin, key_pin)) {
                pk = &cands.v[i - 1];
            }
        }
        if (!pk) {
            pin_format(key_pin, pin, sizeof(pin));
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND,
                           "endpoint %s has no pending key with pin %s (PrepareNextKey or Rekey "
                           "makes one; a key is used up once a certificate for it is installed)",
                           ep->cfg->name, pin);
        }
        pub = pk->key;
        if (pk->is_public) {
            /* A held key waits as its public half: loaded now, from its own file. */
            r = pending_private_key(m, ep, pk->seq, &key, err);
        } else if (EVP_PKEY_up_ref(pk->key) == 1) {
            key = pk->key;
            r = 0;
        } else {
            r = err_set(err, -EIO, CERTD_E_INTERNAL, "cannot reference the key");
        }
    } else {
        pub = cur->key;
        r = endpoint_private_key(m, ep, cur, &key, err);
    }
    if (r < 0) {
        return r;
    }
    r = selfsigned_issue(m, ep, key, cur->n > 0 ? cur->entries[0].cert : NULL,
                         cur->n > 0 ? cur->entries[0].info : NULL, &cert, err);
    if (r < 0) {
        return r;
    }
    /* Judged as any upload is: a certificate certd makes is no exception to its rules. */
    certs = sk_X509_new_null();
    if (!certs || sk_X509_push(certs, cert) <= 0) {
        return oom(err);
    }
    const struct bundle b = { .certs = certs, .key = NULL };
    validate_policy_for(ep, &pol);
    r = validate_bundle(m->libctx, m->propq, &b, ep->cfg->type, &pol, pub, NULL, &res, err);
    if (r < 0) {
        return r;
    }
    return single_commit(m, ep, certs, key, res.warning, "self-signed",
                         pk ? " (the key of an earlier CSR)" : " (the same key)", ret, err);
}

int manager_delete(struct manager *m, struct endpoint *ep, const char *id,
                   struct manager_change *ret, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    struct manager_change change = { .id = "" };
    const struct cert_entry *e;
    int r;

    assert_return(m && ep && id && ret, -EINVAL);

    cur = endpoint_snapshot(ep);
    e = ep_snapshot_find(cur, id);
    if (!e) {
        return not_found(err, ep, id);
    }
    switch (ep->cfg->type) {
    case ENDPOINT_AUTHORITY:
        /* Everything else stays, shared with the current snapshot. */
        r = snapshot_new_authority(m, ep, cur, e, NULL, NULL, NULL, true, &s, err);
        if (r < 0) {
            return r;
        }
        r = authority_dir_remove_ex(m->libctx, m->propq, ep->cfg->dir, e->id, err);
        if (r < 0) {
            return r;
        }
        log_info("endpoint %s: removed CA certificate %s", ep->cfg->name, e->id);
        break;
    case ENDPOINT_CLIENT:
        s = snapshot_alloc(0);
        if (!s) {
            return oom(err);
        }
        r = files_remove(ep, err);
        if (r < 0) {
            return r;
        }
        log_info("endpoint %s: certificate and key removed", ep->cfg->name);
        break;
    case ENDPOINT_SERVER:
        /* A server must keep serving something (seed 002): a new self-signed one. */
        r = selfsigned_store(m, ep, "deleting its certificate", false, &s, err);
        if (r < 0) {
            return r;
        }
        break;
    case ENDPOINT_TYPE_MAX:
    default:
        return err_set(err, -EINVAL, CERTD_E_INTERNAL, "endpoint %s has no valid type",
                       ep->cfg->name);
    }
    (void)snprintf(change.id, sizeof(change.id), "%s", e->id);
    change.is_delete = true;
    publish(ep, TAKE_PTR(s));
    *ret = change;
    return 0;
}

/* ---- CSRs ---- */

/* The CSR of req signed by key, as PEM. */
static int csr_make(struct manager *m, const struct csr_request *req, EVP_PKEY *key, char **ret_pem,
                    struct certd_err *err)
{
    _cleanup_(cleanup_X509_REQ) X509_REQ *x = NULL;
    size_t len = 0;
    int r;

    r = csr_build(m->libctx, m->propq, req, key, &x, err);
    if (r < 0) {
        return r;
    }
    r = csr_to_pem(x, ret_pem, &len);
    if (r == -ENOMEM) {
        return oom(err);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the CSR as PEM");
    }
    return 0;
}

/*
 * A new key of spec, the CSR of req with it (as PEM), and the key kept as a pending key of ep,
 * its pin in *ret_pin (nullable).
 */
static int csr_make_new_key(struct manager *m, struct endpoint *ep, const struct key_spec *spec,
                            const struct csr_request *req, char **ret_pem, struct pin *ret_pin,
                            struct certd_err *err)
{
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_free_ char *pem = NULL;
    const struct key_policy pol = { .allow_ed25519 = ep->cfg->allow_ed25519 };
    struct key_spec where = *spec;
    int r;

    /*
     * A request names the algorithm; the endpoint says where its keys are made (new_key's
     * provider): a TPM endpoint's CSR key is made in the TPM whatever the request's algorithm.
     */
    if (!where.provider[0]) {
        memcpy(where.provider, ep->cfg->new_key.provider, sizeof(where.provider));
    }
    r = key_generate(m->libctx, m->propq, &where, &key, err);
    if (r < 0) {
        return r;
    }
    /* A certificate for a key the endpoint would refuse could never be installed. */
    r = key_check_strength(key, &pol, "the requested key", err);
    if (r < 0) {
        return r;
    }
    r = csr_make(m, req, key, &pem, err);
    if (r < 0) {
        return r;
    }
    r = pending_add(m, ep, key, ret_pin, err);
    if (r < 0) {
        return r;
    }
    *ret_pem = TAKE_PTR(pem);
    return 0;
}

/* What a Renew or Rekey of certificate id is for: the snapshot holding it, and the entry. */
static int csr_target(struct endpoint *ep, const char *id, struct ep_snapshot **ret_snap,
                      const struct cert_entry **ret_entry, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    const struct cert_entry *e;

    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        return forbid_authority(err, ep);
    }
    cur = endpoint_snapshot(ep);
    e = ep_snapshot_find(cur, id);
    if (!e) {
        return not_found(err, ep, id);
    }
    *ret_entry = e;
    *ret_snap = TAKE_PTR(cur);
    return 0;
}

int manager_generate_csr(struct manager *m, struct endpoint *ep, const struct key_spec *spec,
                         const struct csr_request *req, char **ret_pem, struct certd_err *err)
{
    assert_return(m && ep && spec && req && ret_pem, -EINVAL);

    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        return forbid_authority(err, ep);
    }
    return csr_make_new_key(m, ep, spec, req, ret_pem, NULL, err);
}

int manager_renew_csr(struct manager *m, struct endpoint *ep, const char *id,
                      const char *challenge_password, char **ret_pem, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    const struct cert_entry *e = NULL;
    int r;

    assert_return(m && ep && id && ret_pem, -EINVAL);

    r = csr_target(ep, id, &cur, &e, err);
    if (r < 0) {
        return r;
    }
    assert(cur && e); /* csr_target sets both on success (GCC -O3 cannot see it) */
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    r = endpoint_private_key(m, ep, cur, &key, err);
    if (r < 0) {
        return r;
    }
    const struct csr_request req = { .from_cert = e->cert,
                                     .challenge_password = challenge_password };
    return csr_make(m, &req, key, ret_pem, err);
}

/* Rekey, and the new key's pin in *ret_pin (nullable). */
static int rekey_csr(struct manager *m, struct endpoint *ep, const char *id,
                     const struct key_spec *spec, const char *challenge_password, char **ret_pem,
                     struct pin *ret_pin, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    const struct cert_entry *e = NULL;
    struct key_spec same;
    int r;

    r = csr_target(ep, id, &cur, &e, err);
    if (r < 0) {
        return r;
    }
    assert(cur && e); /* csr_target sets both on success (GCC -O3 cannot see it) */
    if (!spec) {
        struct key_info ki;
        r = key_describe(cur->key, &ki);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "cannot describe the current key");
        }
        r = key_spec_from_names(ki.alg_name, ki.alg == KEY_ALG_RSA ? (unsigned)ki.bits : 0,
                                ki.alg == KEY_ALG_EC ? ki.curve : NULL, &same, err);
        if (r < 0) {
            return r;
        }
        spec = &same;
    }
    const struct csr_request req = { .from_cert = e->cert,
                                     .challenge_password = challenge_password };
    return csr_make_new_key(m, ep, spec, &req, ret_pem, ret_pin, err);
}

int manager_rekey_csr(struct manager *m, struct endpoint *ep, const char *id,
                      const struct key_spec *spec, const char *challenge_password, char **ret_pem,
                      struct certd_err *err)
{
    assert_return(m && ep && id && ret_pem, -EINVAL);
    return rekey_csr(m, ep, id, spec, challenge_password, ret_pem, NULL, err);
}

int manager_prepare_next_key(struct manager *m, struct endpoint *ep, const char *id,
                             const struct key_spec *spec, const char *challenge_password,
                             char **ret_pem, struct pin *ret_pin, struct certd_err *err)
{
    assert_return(m && ep && id && ret_pem && ret_pin, -EINVAL);
    return rekey_csr(m, ep, id, spec, challenge_password, ret_pem, ret_pin, err);
}

/* ---- reload ---- */

int manager_reload(struct manager *m, struct endpoint *ep, bool *ret_changed, struct certd_err *err)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *cur = NULL;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = NULL;
    char warning[256] = "";
    int r;

    assert_return(m && ep && ret_changed, -EINVAL);

    cur = endpoint_snapshot(ep);
    if (ep->cfg->type == ENDPOINT_AUTHORITY) {
        r = authority_load(m, ep, cur, &s, err);
    } else {
        r = single_load(m, ep, cur, &s, warning, err);
    }
    if (r < 0) {
        return r;
    }
    if (r == 1) {
        /* A server keeps serving what it has; a client may be emptied by hand. */
        if (ep->cfg->type == ENDPOINT_SERVER) {
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "%s does not exist", ep->cfg->cert);
        }
        if (cur->n > 0) {
            s = snapshot_alloc(0);
            if (!s) {
                return oom(err);
            }
        }
    }
    if (!s) {
        *ret_changed = false;
        return 0;
    }
    log_info("endpoint %s: its files changed; reloaded", ep->cfg->name);
    log_loaded(ep, s, warning);
    publish(ep, TAKE_PTR(s));
    *ret_changed = true;
    return 0;
}

void endpoint_key_location(const struct endpoint *ep, const struct ep_snapshot *s, char *provider,
                           size_t provider_size, char *uri, size_t uri_size)
{
    const char *name = "";

    if (s && s->key) {
        /* A public half stands for a key of the provider new keys are made in. */
        name = s->is_key_public && ep->cfg->new_key.provider[0] ? ep->cfg->new_key.provider
                                                                : key_provider_name(s->key);
    }
    (void)snprintf(provider, provider_size, "%s", name);
    if (!s || !s->key) {
        (void)snprintf(uri, uri_size, "%s", "");
    } else if (ep->cfg->key_uri) {
        (void)snprintf(uri, uri_size, "%s", ep->cfg->key_uri);
    } else {
        (void)snprintf(uri, uri_size, "file:%s", ep->cfg->key);
    }
}

bool endpoint_is_held(struct endpoint *ep)
{
    if (ep->cfg->new_key.provider[0] || ep->cfg->key_uri) {
        return true;
    }
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = endpoint_snapshot(ep);
    return s && s->key && (s->is_key_public || key_is_held(s->key));
}

size_t endpoint_pending_pins(const struct endpoint *ep, struct pin *ret, size_t max)
{
    size_t n = 0;

    if (!ep || !ret) {
        return 0;
    }
    lock(ep->m);
    for (size_t i = ep->n_pending; i > 0 && n < max; i--) {
        ret[n++] = ep->pending[i - 1].pin;
    }
    unlock(ep->m);
    return n;
}
