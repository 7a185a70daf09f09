/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate endpoints of certd (DESIGN.md "manager", seed 002): for each [endpoint] of the
 * configuration, the certificates it holds and the rules for changing them.
 *  - server / client: one certificate (with its chain) and its private key, in the endpoint's
 *    cert and key files (one combined PEM when cert == key). Id "1" (as bmcweb numbers them).
 *  - authority: a set of CA certificates in the endpoint's dir (store/store.h), each with its
 *    SHA-256 fingerprint (64 lower-case hex digits) as id; at most the endpoint's max.
 * Every change is validated first (x509/validate.h), written atomically (store/store.h: a
 * certificate and its key as one journaled set when they share a directory), and only then
 * published as a new snapshot. A failed change leaves files and snapshot as they were.
 *
 * Snapshots: readers (the loop thread rendering Redfish, the TLS layer) take a reference to an
 * immutable struct ep_snapshot and drop it when done; a change publishes a new one. Nothing in a
 * snapshot changes after publication, so it may be read from any thread. Successive snapshots
 * of an authority share the entries they have in common (an entry is as immutable as they are).
 *
 * Pending keys: every GenerateCSR/Rekey makes a new key, kept per endpoint (file
 * STATE_DIR/NAME/pending/<seq>.key, 0600) until a certificate for it is installed; at most
 * MANAGER_PENDING_MAX per endpoint, the oldest dropped (file removed) when a new one comes.
 * A later upload without a key is paired with the pending key whose public key matches the
 * leaf's (the newest, should several), and that key is then consumed (its file removed); so is
 * a pending key that an upload brings itself. Failing that, an upload without a key is paired
 * with the endpoint's current key (the answer to a Renew). Pending keys survive a restart:
 * manager_start loads the newest MANAGER_PENDING_MAX files in sequence order, removes older
 * ones and files that no longer parse, and numbers new keys after the highest seen.
 *
 * Bootstrap: at start every server endpoint must hold a valid, matching certificate and key.
 * When a file is missing, unreadable, corrupt, mismatched or the bundle does not validate, a
 * self-signed certificate is made (the endpoint's new_key algorithm, CN = hostname, SAN
 * hostname + names, days), stored, and the reason logged at notice. One exception keeps the
 * key, so that clients that pin it (issue #6) keep connecting: a self-signed certificate whose
 * key is there, matches and is usable, refused only for its dates (expired or not yet valid,
 * with the endpoint's policy "reject"), is re-issued self-signed for the same key, with its
 * subject and alternative names as they are (manager_selfsign's certificate); should that
 * fail, a new key is made as above. A file that exists but
 * is not usable is kept aside, renamed to "<file>.corrupt-<UTC yyyymmddThhmmssZ>" (a "-N"
 * suffix when that name exists), never deleted; both cert and key files are kept aside when
 * either is unusable. Client endpoints may be empty (no files); authority dirs may be empty.
 *
 * Files: a combined file (cert == key) holds the chain PEM then the PKCS#8 key PEM, 0600;
 * otherwise the cert file (chain PEM) is 0644 and the key file (PKCS#8 PEM) 0600, written as
 * one journaled set when they share a directory. In two directories they are written one after
 * the other (key first), the key put back when the certificate cannot be written; a crash
 * between the two leaves a mismatched pair, which the next start keeps aside (server).
 * Directories made: STATE_DIR (0755), STATE_DIR/NAME and its pending/ (0700), the cert and key
 * directories (0700; 0755 for a cert directory without the key), authority dirs (0755, a
 * CApath others read). Default cert/key paths (under STATE_DIR) and pending keys are read
 * without following symlinks; cert/key paths given in the configuration may be symlinks.
 *
 * Thread-safety: every function may be called from any thread. Changes (install, delete,
 * selfsign, reload, bootstrap) must be serialised by the caller (the worker pool's serial lane);
 * the manager guards its own state with a mutex held only for short pointer swaps, never during
 * crypto or I/O. CSRs (generate, renew, rekey) may run in parallel with each other and with
 * one change. manager_start and manager_free run alone. Blocking: every function but the snapshot
 * accessors does I/O or crypto: call them from a worker, except at start-up before the loop runs.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "csr/csr.h"
#include "error/error.h"
#include "keys/keys.h"
#include "pin/pin.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/span.h"
#include "x509/inspect.h"

#define MANAGER_PENDING_MAX 4u
/*
 * STATE_DIR/NAME/MANAGER_TPM_JOURNAL: a change into the TPM (a key made persistent at the
 * endpoint's key handle, certificates into its NV index) in progress; done again at start.
 */
#define MANAGER_TPM_JOURNAL "tpm-journal.pem"
/* Id of the one certificate of a server or client endpoint. */
#define MANAGER_SINGLE_ID "1"
/* Longest id and its NUL: an authority id (store/store.h). */
#define MANAGER_ID_MAX (AUTHORITY_ID_LEN + 1u)

struct manager;
struct endpoint;

struct cert_entry {
    char id[MANAGER_ID_MAX];
    X509 *cert;             /* the leaf (server/client) or the CA certificate (authority) */
    struct cert_info *info; /* cert_inspect of cert */
    char *pem;              /* PEM of cert followed by its chain (server/client) or of the CA
                               certificate alone: what Redfish shows as CertificateString.
                               Never a key. NUL-terminated. */
    size_t pem_len;
    /* private: how many snapshots hold cert, info and pem (shared, never changed) */
    atomic_int *refs_;
};

struct ep_snapshot {
    size_t n; /* server/client: 0 or 1; authority: 0..max, sorted by id */
    struct cert_entry *entries;
    STACK_OF(X509) *chain; /* server/client: the certificates after the leaf; never NULL, empty
                              for an authority or an empty endpoint */
    EVP_PKEY *key;         /* server/client: the private key (NULL when n == 0). Never shown.
                              With is_key_public, only the public half of a key that its
                              provider holds (a TPM key of an endpoint certd does not serve
                              TLS with: it would hold one of the TPM's three object slots for
                              nothing); endpoint_private_key loads the key itself. */
    bool is_key_public;
    /* server/client with n == 1: the SPKI pin (pin.h) of the leaf's key, what a client that
       pins this endpoint holds (issue #6); all zero for an empty endpoint or an authority. */
    struct pin key_pin;
    /* private: reference count */
    atomic_int refs_;
};

/* Take / drop a reference (thread-safe). Both accept NULL; unref returns NULL. */
struct ep_snapshot *ep_snapshot_ref(struct ep_snapshot *s);
struct ep_snapshot *ep_snapshot_unref(struct ep_snapshot *s);
DEFINE_CLEANUP_STRUCT(ep_snapshot, ep_snapshot_unref)

/* The entry with this id, or NULL (borrowed from s). NULL s or id: NULL. */
const struct cert_entry *ep_snapshot_find(const struct ep_snapshot *s, const char *id);

/*
 * A manager for cfg's endpoints (cfg borrowed; must outlive the manager, unchanged), with
 * libctx (borrowed) / propq (copied) for every key and certificate operation. hostname (copied,
 * not empty) is used for self-signed certificates: the CN (its first label when it is longer
 * than 64 characters, the whole name then going into the SAN) and the first SAN. No file is
 * touched yet. Returns 0, -EINVAL, -ENOMEM.
 */
_must_check_ int manager_new(const struct config *cfg, OSSL_LIB_CTX *libctx, const char *propq,
                             const char *hostname, struct manager **ret);
struct manager *manager_free(struct manager *m);
DEFINE_CLEANUP_STRUCT(manager, manager_free)

/*
 * Start-up: create the endpoint directories (store_mkdir_p), settle interrupted writes
 * (store_recover), load every endpoint and its pending keys, and bootstrap server endpoints as
 * described above. Returns 0, or -errno with err for what makes starting impossible (a state
 * directory that cannot be made or is not safe, a self-signed certificate that cannot be
 * stored: CERTD_E_STORAGE). A client endpoint or authority dir that does not load is logged and
 * left empty (its files untouched), never fatal. Call once; -EALREADY after that. A pending
 * key that cannot be loaded is logged and removed, never fatal.
 */
_must_check_ int manager_start(struct manager *m, struct certd_err *err);

size_t manager_n_endpoints(const struct manager *m);
struct endpoint *manager_endpoint_at(struct manager *m, size_t i);
/* By configured name; NULL when there is none. */
struct endpoint *manager_endpoint(struct manager *m, const char *name);

const char *endpoint_name(const struct endpoint *ep);
enum endpoint_type endpoint_type(const struct endpoint *ep);
const struct config_endpoint *endpoint_config(const struct endpoint *ep);
/*
 * A new reference to the current snapshot (never NULL). Every published change gives a new
 * snapshot: while a reference is held, comparing pointers tells whether ep changed since.
 */
struct ep_snapshot *endpoint_snapshot(struct endpoint *ep);

/*
 * Where the key of snapshot s (of ep) lives, for Redfish and certctl (issue #5), never key
 * material: the provider holding it ("default", "tpm2" ...; "" when s has no key) into
 * provider, and its URI (the key_uri, else "file:" and the key file's path; "" without a key)
 * into uri. Any thread.
 */
void endpoint_key_location(const struct endpoint *ep, const struct ep_snapshot *s, char *provider,
                           size_t provider_size, char *uri, size_t uri_size);

/*
 * True when jobs for ep touch a key held by a provider (its new keys are made in one, or its
 * current key is held): front ends then run them on the worker pool's serial lane, so that a
 * provider that is not thread-safe (tpm2) is used by one thread only.
 */
bool endpoint_is_held(struct endpoint *ep);

/* What a change did, for the response and the log. */
struct manager_change {
    char id[MANAGER_ID_MAX]; /* the certificate installed (authority: the first one added) or
                                deleted */
    char replaced_id[MANAGER_ID_MAX]; /* a replace (manager_install with replace_id): the
                                         certificate whose place id took; "" otherwise */
    bool is_delete;                   /* manager_delete (a server's self-signed successor
                                         included) */
    char warning[256]; /* "" or a warning for the user (expired, not yet valid ...) */
};

/*
 * Install data (an upload: PEM certificate(s) with or without a key, or one DER certificate)
 * into ep. server/client: the one certificate is replaced. authority: the CA certificates are
 * added (duplicates and the limit refused). When replace_id is not NULL it must name the
 * certificate being replaced (ReplaceCertificate): server/client "1" (present), authority an
 * existing id (removed in the same change; -ENOENT/CERTD_E_NOT_FOUND otherwise).
 * Returns 0 with *ret filled, or -errno with err: every error of bundle_parse and
 * validate_bundle (CERTD_E_KEY_MISMATCH ...; CERTD_E_KEY_MISSING when there is no key and no
 * pending key matches), CERTD_E_DUPLICATE, CERTD_E_LIMIT_REACHED, CERTD_E_NOT_FOUND,
 * CERTD_E_STORAGE. Messages never hold key material or the upload. data is bounded by
 * cfg->max_body. For an authority replace the directory holds one certificate over max between
 * the add and the removal (both under its lock); a failed removal undoes the add.
 */
_must_check_ int manager_install(struct manager *m, struct endpoint *ep, struct span data,
                                 const char *replace_id, struct manager_change *ret,
                                 struct certd_err *err);

/*
 * ReplaceAll (D-Bus, authority endpoints only): the CA certificates of data (an upload as
 * manager_install takes it, at least one certificate) take the place of every certificate ep
 * holds, all or none: validated as manager_install validates an authority upload (against an
 * empty set: duplicates within data refused, at most the endpoint's max), then written with the
 * removals as one journaled change of the directory (store.h authority_dir_replace_ex), so that
 * a crash leaves the old set or the new one; certificates in both stay as they are. ret->id is
 * the upload's first certificate (possibly one that stayed). Errors as manager_install's;
 * -EOPNOTSUPP/CERTD_E_POLICY_FORBIDS for a server or client endpoint. On CERTD_E_STORAGE the
 * directory is read again and what it holds published, so the snapshot never shows a set that
 * is gone. A change: serial lane.
 */
_must_check_ int manager_replace_all(struct manager *m, struct endpoint *ep, struct span data,
                                     struct manager_change *ret, struct certd_err *err);

/*
 * Delete certificate id of ep. authority: removed. client: the certificate and key files are
 * removed (the endpoint is then empty; pending keys stay). server: a new self-signed certificate
 * and key take its place (seed 002). -ENOENT/CERTD_E_NOT_FOUND for an unknown id;
 * CERTD_E_STORAGE. On success *ret has id (the one deleted) and no warning.
 */
_must_check_ int manager_delete(struct manager *m, struct endpoint *ep, const char *id,
                                struct manager_change *ret, struct certd_err *err);

/*
 * GenerateCSR for ep (server or client): make a key of spec (borrowed) with libctx/propq,
 * build the CSR from req (borrowed) with csr_build, keep the key as a pending key of ep, and
 * return the CSR as an owned PEM string. Parallel-safe (several may run at once; the pending
 * list is updated under the mutex). Errors of key_generate and csr_build; a key the endpoint's
 * policy refuses (Ed25519 without allow_ed25519: -EOPNOTSUPP/CERTD_E_KEY_UNSUPPORTED, checked
 * with key_check_strength); -EOPNOTSUPP with CERTD_E_POLICY_FORBIDS for an authority
 * endpoint; CERTD_E_STORAGE. Unlike the other changes it need not run on the serial lane.
 */
_must_check_ int manager_generate_csr(struct manager *m, struct endpoint *ep,
                                      const struct key_spec *spec, const struct csr_request *req,
                                      char **ret_pem, struct certd_err *err);

/*
 * Certificate.Renew (same key) and Certificate.Rekey (new key of spec; NULL spec = the key
 * algorithm and size of the current key): a CSR with the subject (exactly: every attribute in
 * its order, with its string type) and the alternative names (every one, as it is) of
 * certificate id (csr_request.from_cert). Rekey keeps the new key as a pending key; Renew keeps
 * nothing (the answer pairs with the current key). challenge_password may be NULL.
 * -ENOENT/CERTD_E_NOT_FOUND; -EOPNOTSUPP/CERTD_E_POLICY_FORBIDS for authority endpoints;
 * -E2BIG/CERTD_E_TOO_MANY_VALUES for a certificate with more than CERTD_SANS_MAX SANs; the other
 * errors of csr_build and key_generate. Parallel-safe like manager_generate_csr.
 */
_must_check_ int manager_renew_csr(struct manager *m, struct endpoint *ep, const char *id,
                                   const char *challenge_password, char **ret_pem,
                                   struct certd_err *err);
_must_check_ int manager_rekey_csr(struct manager *m, struct endpoint *ep, const char *id,
                                   const struct key_spec *spec, const char *challenge_password,
                                   char **ret_pem, struct certd_err *err);

/*
 * Re-read ep from its files (SIGHUP, or inotify saw them change). When the files hold what the
 * snapshot holds, nothing happens (*ret_changed false). When they hold a different valid
 * certificate, it is published (*ret_changed true). When they are unusable, the old snapshot
 * stays (a server keeps serving) and -errno with err says why; nothing is renamed or
 * regenerated while running (an admin may be halfway through copying files). Comparison, made
 * as soon as the files are parsed (before anything is validated, inspected or encoded):
 * server/client the same certificates (X509_cmp) and public key, whatever the file's layout;
 * authority the same ids. A client whose two files are both gone becomes empty (a change);
 * for a server that is -ENOENT/CERTD_E_NOT_FOUND. *ret_changed is written only on success.
 */
_must_check_ int manager_reload(struct manager *m, struct endpoint *ep, bool *ret_changed,
                                struct certd_err *err);

/*
 * Re-enrolment without losing connectivity (issue #6).
 *
 * PrepareNextKey: manager_rekey_csr (a new pending key of spec, NULL = the current key's
 * algorithm and size, and a CSR with certificate id's subject and alternative names), and the
 * SPKI pin of that new key in *ret_pin (pin_from_pkey of the key made here, never of anything a
 * client sent): what pinned clients add before the switch. Same errors and lanes as
 * manager_rekey_csr; *ret_pem and *ret_pin are written only on success.
 */
_must_check_ int manager_prepare_next_key(struct manager *m, struct endpoint *ep, const char *id,
                                          const struct key_spec *spec,
                                          const char *challenge_password, char **ret_pem,
                                          struct pin *ret_pin, struct certd_err *err);

/*
 * A new self-signed certificate for ep (server or client), stored and published as an install
 * is: the subject (exactly: every attribute, in order, with its string type) and alternative
 * names (every one, as it is) of the current certificate, as a Renew CSR takes them (an empty
 * endpoint: the bootstrap subject and names, CN = host name), basicConstraints CA:FALSE, the
 * default key usages of the key, EKU serverAuth (server) or clientAuth (client) plus whichever
 * of the two the current certificate has, the endpoint's days from now, a new random serial.
 * key_pin NULL: for the current key (the pin clients hold stays valid: a renewal); else for the
 * pending key whose public key has that pin (the newest, should several), which is then
 * consumed as an upload consumes it (the switch of a key rotation). Keys a provider holds (TPM)
 * sign in their provider. ret->id is MANAGER_SINGLE_ID, ret->warning "".
 * Errors, nothing changed: -ENOENT/CERTD_E_NOT_FOUND when no pending key has key_pin (the
 * message shows the pin); -ENOENT/CERTD_E_KEY_MISSING for an empty endpoint without key_pin, or
 * a pending key whose file can no longer be loaded; -EOPNOTSUPP/CERTD_E_POLICY_FORBIDS for an
 * authority endpoint; the errors of csr_build and issue_from_csr for a subject or names that
 * cannot be copied (a directoryName SAN: CERTD_E_POLICY_FORBIDS); validate_bundle's;
 * CERTD_E_STORAGE; -ENOMEM. A change: the serial lane, as manager_install.
 */
_must_check_ int manager_selfsign(struct manager *m, struct endpoint *ep, const struct pin *key_pin,
                                  struct manager_change *ret, struct certd_err *err);

/*
 * The pins of ep's pending keys, newest first, into ret[0..max): returns how many were written
 * (at most MANAGER_PENDING_MAX; 0 for an authority). Computed when each key was made or
 * loaded: no crypto here, only a copy under the mutex, so the loop thread may call it.
 */
size_t endpoint_pending_pins(const struct endpoint *ep, struct pin *ret, size_t max);
