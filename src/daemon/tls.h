/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS server contexts of certd. Policy (issue #3):
 *  - TLS 1.2 and 1.3 only (profile "intermediate", the default) or TLS 1.3 only ("modern");
 *  - TLS 1.2: forward-secret AEAD suites only, ECDHE with AES-GCM or ChaCha20-Poly1305, for
 *    ECDSA and RSA certificates; server cipher preference; no renegotiation, no compression;
 *  - groups X25519, P-256, P-384; the certificate's chain is sent as uploaded;
 *  - stateless session tickets whose keys rotate: a new key every TLS_TICKET_ROTATE_SECONDS,
 *    the previous one still decrypts (a ticket lives at most two periods); keys are random,
 *    held only in memory and wiped, so a restart invalidates every ticket. The ticket keys are
 *    shared by every context made with the same struct tls_tickets, so a certificate swap does
 *    not end resumption.
 * A context is built once per certificate change and then only read, so it may be shared by
 * many connections; SSL_CTX reference counting keeps an old context alive for connections
 * that still use it.
 */
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "error/error.h"
#include "util/cleanup.h"

#define TLS_TICKET_ROTATE_SECONDS (12 * 3600)

struct tls_tickets;

/*
 * New ticket keys (random). NULL on failure (no randomness, no memory). tls_tickets_new_ex
 * draws the keys from libctx's private random generator and fetches the ticket cipher with
 * libctx/propq (both borrowed, must outlive the tickets); every context made with these tickets
 * must use the same libctx. tls_tickets_new() is tls_tickets_new_ex(NULL, NULL) (tests).
 * Thread-safety: tls_tickets_rotate and tls_tickets_free on the loop thread; handshakes read the
 * keys under a lock from any thread (those with a provider-held key run on the serial worker).
 */
struct tls_tickets *tls_tickets_new(void);
struct tls_tickets *tls_tickets_new_ex(OSSL_LIB_CTX *libctx, const char *propq);
/*
 * Make a new current key; the current one becomes the previous; the older one is wiped.
 * 0 or -EIO (no randomness: the keys are unchanged).
 */
_must_check_ int tls_tickets_rotate(struct tls_tickets *t);
/* Wipe and free; accepts NULL; returns NULL. */
struct tls_tickets *tls_tickets_free(struct tls_tickets *t);
DEFINE_CLEANUP_STRUCT(tls_tickets, tls_tickets_free)

/*
 * A server context for profile with leaf + chain (borrowed; chain may be NULL) and key
 * (borrowed; may be a provider-held key), using libctx/propq, and tickets (borrowed; must
 * outlive the context). Checks that the key matches the leaf (SSL_CTX_check_private_key).
 * Returns 0 and an owned context, or -errno with err: -EKEYREJECTED CERTD_E_KEY_MISMATCH;
 * -EINVAL CERTD_E_INTERNAL (an argument out of range, tickets made for another libctx);
 * -EOPNOTSUPP CERTD_E_KEY_UNSUPPORTED (OpenSSL cannot serve a certificate of that key type);
 * -EIO CERTD_E_INTERNAL (OpenSSL refused the configuration; the message names what; OpenSSL's
 * own text goes to the debug log); -ENOMEM CERTD_E_NO_MEMORY. Loop thread (or any one thread).
 */
_must_check_ int tls_ctx_new(OSSL_LIB_CTX *libctx, const char *propq,
                             enum config_tls_profile profile, X509 *leaf, STACK_OF(X509) *chain,
                             EVP_PKEY *key, struct tls_tickets *tickets, SSL_CTX **ret,
                             struct certd_err *err);
