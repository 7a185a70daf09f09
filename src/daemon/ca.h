/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's CA (issue #4, seeds 000/001): management consoles send a CSR and get back their
 * client certificate and the CA certificate. [ca] signer = local signs with certd's own CA
 * key; exec:PROGRAM hands the CSR to a helper (the hook for a PLDM bridge to a host CA) and
 * checks what comes back; off answers that there is no CA.
 *
 * Files (local): the CA certificate and key ([ca] cert/key; by default STATE_DIR/ca/ca.pem,
 * 0644, and ca-key.pem, 0600, in STATE_DIR/ca, 0700). When neither default file exists at
 * start, a self-signed root is made ([ca] new_key, common_name, root_days) and written as one
 * journaled set; a missing, unreadable or mismatched configured pair stops the start instead
 * (a CA is never replaced behind the admin's back). The issuance log is STATE_DIR/ca.db
 * (cadb/cadb.h); the current CRL STATE_DIR/ca/crl.der, made again at every revocation and by
 * ca_refresh_crl (the daemon calls it at half the CRL's lifetime and when a CRL is asked for
 * before there is one), and at start unless the file still lists exactly the log's revoked
 * certificates with half its lifetime left. The log (and libsqlite3) is opened by its first
 * user, so a certd whose CA is not used does not map SQLite.
 * Another process (certctl ca revoke) may write a newer CRL: ca_reload_crl publishes it.
 *
 * Two layers:
 *  - blocking functions (ca_issue, ca_record, ca_revoke, ca_refresh_crl, ca_each) that do
 *    crypto, I/O or run the helper: call them from a worker, never from the loop. ca_record,
 *    ca_revoke, ca_refresh_crl and ca_each use the log and must be serialised by the caller
 *    (the worker pool's serial lane); ca_issue may run in parallel with anything.
 *  - ca_sign, on the loop: a CSR in, a certificate out, through the worker pool: the CSR is
 *    checked and signed on the parallel lane, and the records of signings that finish close
 *    together are made durable in one transaction on the serial lane (group commit), so a
 *    certificate is handed out only after its record is on disk, and many signings share one
 *    fsync. Signings wait in a queue and are signed in batches by at most CA_SIGN_JOBS worker
 *    jobs (one for a helper, so that a slow host never takes every worker; ca.c says why).
 * Public material (the CA certificate, the CRL) is an immutable refcounted snapshot, readable
 * from any thread (ca_public).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cadb/cadb.h"
#include "config.h"
#include "error/error.h"
#include "util/cleanup.h"
#include "util/span.h"

struct event_base;
struct worker_pool;

/* Bytes of a CRL file we read back (100 000 entries, issue.h's bound, take about 4 MiB). */
#define CA_CRL_FILE_MAX (8u * 1024u * 1024u)
/* Bytes of a CSR we take (issue #4). */
#define CA_CSR_MAX (16u * 1024u)
/* Bytes of a helper's stdout (certificate and chain) and of its stderr we keep. */
#define CA_EXEC_OUT_MAX (64u * 1024u)
#define CA_EXEC_ERR_MAX 512u
/* The helper's exit status for "not ready, ask again later" (EX_TEMPFAIL). */
#define CA_EXEC_NOT_READY 75
/* Retry-After (seconds) when the helper is not ready. */
#define CA_RETRY_AFTER 10u
/* Signings whose records one transaction makes durable, at most. */
#define CA_COMMIT_BATCH_MAX 64u
/* Signings waiting for their turn, at most (more: -EAGAIN, the front end answers 503): for the
 * exec helper (slow, and one at a time) and for the local CA. */
#define CA_EXEC_QUEUE_MAX 16u
#define CA_SIGN_QUEUE_MAX 256u
/* Waiting signings the local CA signs in one worker job, at most; and such jobs at once. */
#define CA_SIGN_BATCH_MAX 16u
#define CA_SIGN_JOBS      2u

struct ca;

/* The CA's public side: immutable once made. */
struct ca_public {
    atomic_uint refs_; /* private */
    char *ca_pem;      /* the CA certificate(s) handed out with every signed certificate; NULL
                          when there is none (signer exec without [ca] cert, or off) */
    size_t ca_pem_len;
    char *subject;     /* the CA certificate's subject (RFC 4514), NULL without one */
    int64_t not_after; /* of the CA certificate, 0 without one */
    uint8_t *crl_der;  /* local signer only; NULL otherwise */
    size_t crl_der_len;
    char *crl_pem;
    size_t crl_pem_len;
    uint64_t crl_number;
    int64_t crl_this_update, crl_next_update;
};
struct ca_public *ca_public_ref(struct ca_public *p);
struct ca_public *ca_public_unref(struct ca_public *p);
DEFINE_CLEANUP_STRUCT(ca_public, ca_public_unref)

/*
 * A CA for cfg (copied: the configuration may be replaced afterwards), signing through
 * workers (for ca_sign). hostname names a root made at start when [ca] common_name is not
 * set. 0, or -ENOMEM.
 */
_must_check_ int ca_new(const struct config *cfg, OSSL_LIB_CTX *libctx, const char *propq,
                        const char *hostname, struct worker_pool *workers, struct ca **ret);
/* Free; only after the worker pool stopped (no job of the CA may be left). Accepts NULL. */
struct ca *ca_free(struct ca *ca);
DEFINE_CLEANUP_STRUCT(ca, ca_free)

/*
 * Start-up (blocking, before the loop runs): local: load or make the root, check that the
 * certificate is a CA with keyCertSign and cRLSign and the key is its key, open the log, make
 * the CRL; exec: load [ca] cert when given, open the log; off: nothing. 0 or -errno with err
 * (the message names the file and what is wrong).
 */
enum ca_start_flags {
    CA_START_NO_ROOT = 1u << 0, /* never make a root: -ENOENT, CERTD_E_NOT_FOUND (certctl) */
};
_must_check_ int ca_start(struct ca *ca, unsigned flags, struct certd_err *err);

enum config_signer ca_signer(const struct ca *ca);
/* The current public side (a reference: ca_public_unref it), NULL for signer off. */
struct ca_public *ca_public(struct ca *ca);

/* One certificate made for a CSR, not yet recorded. */
struct ca_issued {
    char *cert_pem; /* the client certificate */
    size_t cert_pem_len;
    struct ca_public *pub; /* the CA certificate(s) to hand out with it (exec: possibly the
                              helper's chain, in a snapshot of its own) */
    struct cadb_cert rec;  /* the log record (rec.pem is cert_pem, not owned separately) */
};
void ca_issued_free(struct ca_issued *i);

/*
 * Check csr (PEM, at most CA_CSR_MAX bytes) and have it signed (blocking). requester is the
 * user asking (logged with the certificate). 0 and *ret, or -errno with err:
 *   the CSR: as csr_parse and issue_from_csr (CERTD_CLASS_INVALID_INPUT or NOT_ALLOWED: 400);
 *   exec: -EAGAIN CERTD_E_UNAVAILABLE when the helper exited CA_EXEC_NOT_READY (503 +
 *   Retry-After), -EPROTO CERTD_E_SIGNER_FAILED when it failed, timed out, or printed
 *   something that is not a certificate for exactly the CSR's public key (502);
 *   -ENODEV CERTD_E_UNAVAILABLE for signer off; -ENOMEM, -EIO.
 */
_must_check_ int ca_issue(struct ca *ca, struct span csr, const char *requester,
                          struct ca_issued **ret, struct certd_err *err);

/*
 * Record n issued certificates in one transaction (blocking, serial lane). On -EEXIST (a
 * serial already in the log) the records are tried one by one and dup[i] (n entries) says
 * which ones collided; the others are recorded. 0, -EEXIST (some, see dup), or -errno with err.
 */
_must_check_ int ca_record(struct ca *ca, struct ca_issued *const *v, size_t n, bool *dup,
                           struct certd_err *err);

/* Revoke serial (hex, as the log keeps it) for reason and publish a new CRL (blocking, serial
 * lane). Errors of cadb_revoke, and of making the CRL. */
_must_check_ int ca_revoke(struct ca *ca, const char *serial, int reason, struct certd_err *err);

/* Publish the CRL file when it is the CA's and newer than the published one (blocking; a
 * worker): 1 when published, 0 when not (missing, foreign, not newer), -ENOMEM. */
_must_check_ int ca_reload_crl(struct ca *ca);

/* Make and publish a new CRL (blocking, serial lane). Local signer only (-EOPNOTSUPP). */
_must_check_ int ca_refresh_crl(struct ca *ca, struct certd_err *err);

/* The log's records (blocking, serial lane): as cadb_each and cadb_get; -ENODEV for signer
 * off. */
_must_check_ int ca_each(struct ca *ca, enum cadb_filter filter, cadb_each_fn fn, void *arg);
_must_check_ int ca_get(struct ca *ca, const char *serial, struct cadb_cert **ret);

/* The result of ca_sign, valid during the callback only. */
struct ca_sign_result {
    int r; /* 0, or -errno with err */
    struct certd_err err;
    const char *cert_pem; /* r == 0: the client certificate */
    size_t cert_pem_len;
    const struct ca_public *pub; /* r == 0: its CA certificate(s) (pub->ca_pem may be NULL) */
    const char *serial;          /* r == 0 */
};
typedef void (*ca_sign_done_fn)(const struct ca_sign_result *res, void *arg);

/*
 * Sign csr (copied) for requester on the worker pool, and call done(result, arg) on the loop
 * once the certificate is recorded durably (or the signing failed). Loop thread only. Returns
 * 0 (done will be called exactly once), or -EAGAIN when a queue is full (done will not be
 * called: answer 503), -ENOMEM.
 */
_must_check_ int ca_sign(struct ca *ca, struct span csr, const char *requester,
                         ca_sign_done_fn done, void *arg);
