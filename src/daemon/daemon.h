/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's shared state: one struct daemon, owned by the loop thread (main.c), handed to
 * the front ends (redfish.h) as their context. Front ends read it and call the modules; only
 * main.c creates, replaces or frees its members.
 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "ca.h"
#include "config.h"
#include "dbus.h"
#include "http.h"
#include "manager.h"
#include "notifier.h"
#include "peers.h"
#include "tls.h"
#include "watch.h"
#include "worker.h"

/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and a NUL. */
#define DAEMON_UUID_MAX 37u
/*
 * The TLS key a provider holds (a TPM) is checked with one signature this often, on the serial
 * worker (main.c, tpm_probe): a real TPM signs in some 50 ms, so this costs it almost nothing.
 * While the check fails, every DAEMON_TPM_RETRY_SECONDS.
 */
#define DAEMON_TPM_PROBE_SECONDS 10
#define DAEMON_TPM_RETRY_SECONDS 1

struct daemon {
    struct event_base *base;
    struct config *cfg;
    const char *config_path; /* NULL: embedded defaults */
    OSSL_LIB_CTX *libctx;    /* NULL: OpenSSL's default context */
    const char *propq;       /* NULL: no property query */
    struct worker_pool *workers;
    struct manager *manager;
    struct ca *ca;     /* the CA of SignCSR ([ca]) */
    struct event *crl; /* makes the CRL again at half its lifetime */
    struct auth *auth;
    struct peers *peers; /* client certificates and the listener's pin store */
    struct notifier *notifier;
    struct dbus *dbus; /* the D-Bus front end; NULL with [dbus] bus = off */
    struct watch *watch;
    struct http_server *http;
    struct tls_tickets *tickets;
    struct event *trim; /* gives freed memory back to the system once connections stop closing */
    struct endpoint *tls_endpoint; /* the server endpoint with reload = self that certd serves */
    char hostname[CONFIG_HOSTNAME_MAX + 1];
    char uuid[DAEMON_UUID_MAX]; /* ServiceRoot UUID, kept in STATE_DIR/uuid across restarts */
    time_t start_time;
    struct event *tpm_probe; /* checks the TLS key's provider; NULL without a held key */
    bool is_tpm_probing;     /* a probe job is with the serial worker */
    bool is_tpm_degraded;    /* the last probe failed */
    bool is_reexec;          /* after the drain, certd executes itself again (main.c) */
    /* environment variables that hold secrets (a TPM parent's password): kept from hooks */
    const char *hidden_env[PROVIDERS_MAX + 1];
    bool is_draining;
};

/*
 * A front end changed ep, or its files changed on disk (on the loop thread, in a worker job's
 * done callback): tell the D-Bus front end (its signals; change, nullable, says how ep changed:
 * manager.h) and run ep's notifier (for reload = self: rebuild and swap the TLS context). done
 * (nullable) gets the notifier's result and a message for the response, exactly once.
 */
void daemon_endpoint_changed(struct daemon *d, struct endpoint *ep,
                             const struct manager_change *change, notifier_done_fn done, void *arg);
