/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd: the certificate-lifecycle daemon (issue #3). This file wires the modules together
 * (daemon.h): configuration, the state directory, the initial administrator, the endpoints, the
 * TLS context, the HTTPS server, the notifier, the file watcher, signals and systemd's
 * notifications. It owns struct daemon; the modules own their parts.
 *
 * Exit codes: 0 after SIGTERM/SIGINT and a clean drain; 1 when the configuration is wrong;
 * 2 for command-line usage errors; 3 when starting failed for any other reason.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "daemon.h"
#include "keys/keys.h"
#include "keys/providers.h"
#include "log/log.h"
#include "redfish.h"
#include "sdlib.h"
#include "store/store.h"
#include "tss/tss.h"
#include "users/users.h"
#include "util/ossl.h"
#include "util/secret.h"

#define EXIT_CONFIG  1
#define EXIT_USAGE   2
#define EXIT_STARTUP 3

struct options {
    const char *config_path;
    const char *state_dir;
    const char *listen;
};

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "Usage: certd [--config FILE] [--state-dir DIR] [--listen ADDR:PORT]\n"
                  "\n"
                  "The certificate-lifecycle daemon: HTTPS server, LDAP client and truststore\n"
                  "certificates behind a Redfish API.\n"
                  "\n"
                  "  -c, --config FILE      read the INI configuration FILE (see certd(8) and\n"
                  "                         certd.conf.example); without it, embedded defaults\n"
                  "  -s, --state-dir DIR    keep state under DIR (overrides [server] state_dir)\n"
                  "  -l, --listen ADDR:PORT listen there (overrides [server] listen)\n"
                  "  -h, --help             show this help\n"
                  "  -V, --version          show the version\n"
                  "\n"
                  "Signals: SIGHUP re-reads the configuration, certificates and users;\n"
                  "SIGTERM and SIGINT finish requests in progress and exit 0.\n"
                  "Exit codes: 0 clean stop, 1 bad configuration, 2 usage, 3 start-up failure.\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option long_options[] = {
        { "config", required_argument, NULL, 'c' }, { "state-dir", required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },      { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:s:l:hV", long_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case 's':
            o->state_dir = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(EXIT_SUCCESS);
        case 'V':
            (void)printf("certd %s\n", CERTD_VERSION);
            exit(EXIT_SUCCESS);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        (void)fprintf(stderr, "certd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

/*
 * The configuration wants an absolute state directory; a relative --state-dir (NULL: none) is
 * made absolute against the working directory, created first when missing so that realpath()
 * can resolve it.
 */
static int absolute_state_dir(const char **dir, char abs[static PATH_MAX])
{
    if (!*dir || (*dir)[0] == '/') {
        return 0;
    }
    if (!realpath(*dir, abs)) {
        int r = -errno;
        if (r != -ENOENT || mkdir(*dir, STORE_MODE_DIR) < 0 || !realpath(*dir, abs)) {
            r = r == -ENOENT ? -errno : r;
            (void)fprintf(stderr, "certd: --state-dir %s: %s\n", *dir, strerror(-r));
            return r;
        }
    }
    *dir = abs;
    return 0;
}

/* The configuration from the file or the defaults, with the command line's overrides. */
static int load_config(const struct options *o, struct config **ret)
{
    _cleanup_(cleanup_config) struct config *cfg = NULL;
    struct certd_err err = { 0 };
    int r;

    if (o->config_path) {
        r = config_load(o->config_path, &cfg, &err);
        if (r < 0) {
            /* config_parse's messages already start with "FILE:LINE:". */
            if (err.code == CERTD_E_NOT_FOUND || err.code == CERTD_E_STORAGE) {
                (void)fprintf(stderr, "certd: %s: %s\n", o->config_path, err.msg);
            } else {
                (void)fprintf(stderr, "certd: %s\n", err.msg);
            }
            return r;
        }
    } else {
        char abs[PATH_MAX];
        const char *dir = o->state_dir;
        r = absolute_state_dir(&dir, abs);
        if (r < 0) {
            return r;
        }
        r = config_new_default(dir, &cfg);
        if (r < 0) {
            (void)fprintf(stderr, "certd: --state-dir %s: %s\n", dir ? dir : "(default)",
                          r == -ENOMEM ? "out of memory" : "not a usable absolute path");
            return r;
        }
    }
    if (o->config_path || o->listen) {
        const char *state_dir = o->config_path ? o->state_dir : NULL;
        char abs[PATH_MAX];
        r = absolute_state_dir(&state_dir, abs);
        if (r < 0) {
            return r;
        }
        r = config_apply_overrides(cfg, state_dir, o->listen, &err);
        if (r < 0) {
            (void)fprintf(stderr, "certd: %s\n", err.msg);
            return r;
        }
    }
    *ret = TAKE_PTR(cfg);
    return 0;
}

/* The ServiceRoot UUID: made once (random, version 4) and kept in STATE_DIR/uuid. */
static int load_uuid(struct daemon *d)
{
    const char *path = d->cfg->uuid_file;
    _cleanup_free_ uint8_t *data = NULL;
    size_t len = 0;
    struct certd_err err = { 0 };
    uint8_t b[16];
    int r;

    r = store_read_file(path, 64, true, &data, &len);
    if (r == 0 && len >= 36) {
        bool ok = true;
        for (size_t i = 0; i < 36; i++) {
            char c = (char)data[i];
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            ok = ok && (dash ? c == '-' : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        }
        if (ok) {
            memcpy(d->uuid, data, 36);
            d->uuid[36] = '\0';
            return 0;
        }
    }
    if (r < 0 && r != -ENOENT) {
        log_warning("%s: cannot read (%s); making a new service UUID", path, strerror(-r));
    }
    if (RAND_bytes(b, sizeof(b)) != 1) {
        return -EIO;
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    (void)snprintf(d->uuid, sizeof(d->uuid),
                   "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                   b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                   b[14], b[15]);
    char line[DAEMON_UUID_MAX + 1];
    (void)snprintf(line, sizeof(line), "%s\n", d->uuid);
    r = store_write_atomic(path, (struct span){ .p = (const uint8_t *)line, .len = strlen(line) },
                           STORE_MODE_PUBLIC, &err);
    if (r < 0) {
        log_warning("%s", err.msg);
    }
    return 0;
}

/* The first admin: made when there is no users file at all (never over an existing one). */
static int bootstrap_admin(struct daemon *d)
{
    const char *password_path = d->cfg->password_file;
    _cleanup_(cleanup_secret) struct secret *password = NULL;
    struct certd_err err = { 0 };
    int r;

    r = users_bootstrap(d->cfg->users_file, password_path, &password, &err);
    if (r < 0) {
        return log_err_errno(r, "cannot create the initial administrator: %s", err.msg);
    }
    if (!password) {
        return 0;
    }
    log_notice("created user 'admin' (Administrator) in %s; its password is in %s (mode 0600)",
               d->cfg->users_file, password_path);
    /*
     * The password goes to a terminal only: under systemd stdout is the journal, and a password
     * never goes into a log. The file above is the one place it is kept.
     */
    if (isatty(STDOUT_FILENO)) {
        (void)printf("certd: initial password of user 'admin': %.*s\n", (int)password->len,
                     (const char *)password->p);
        (void)fflush(stdout);
    }
    return 0;
}

static struct http_limits limits_from_config(const struct config *cfg)
{
    return (struct http_limits){
        .max_body = cfg->max_body,
        .max_headers_size = cfg->max_headers_size,
        .max_connections = cfg->max_connections,
        .idle_timeout = cfg->idle_timeout,
        .request_timeout = cfg->request_timeout,
    };
}

/* --- TLS --- */

static int tls_build(struct daemon *d, SSL_CTX **ret, bool *ret_is_held, char *msg, size_t msg_size)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = endpoint_snapshot(d->tls_endpoint);
    struct certd_err err = { 0 };
    int r;

    if (!s || s->n == 0 || !s->key) {
        (void)snprintf(msg, msg_size, "endpoint '%s' holds no certificate to serve",
                       endpoint_name(d->tls_endpoint));
        return -ENOENT;
    }
    /*
     * A key its provider holds signs through that provider (notes/tpm2.md P1), and its
     * handshakes run on the serial thread (http_server_set_ssl_ctx_ex).
     */
    const char *propq = d->propq;
    char query[KEY_QUERY_MAX];
    bool is_held = key_is_held(s->key);
    if (is_held) {
        propq = config_provider_sign_query(d->cfg, key_provider_name(s->key));
        if (!propq) {
            propq = key_query_for(s->key, d->propq, query, sizeof(query));
        }
    }
    r = tls_ctx_new(d->libctx, propq, d->cfg->tls_profile, s->entries[0].cert, s->chain, s->key,
                    d->tickets, ret, &err);
    if (r < 0) {
        (void)snprintf(msg, msg_size, "cannot build the TLS context: %s", err.msg);
        return r;
    }
    r = peers_setup_ctx(d->peers, *ret, &err);
    if (r < 0) {
        SSL_CTX_free(*ret);
        *ret = NULL;
        (void)snprintf(msg, msg_size, "cannot build the TLS context: %s", err.msg);
        return r;
    }
    if (ret_is_held) {
        *ret_is_held = is_held;
    }
    return 0;
}

/* The notifier's "self": new handshakes get the endpoint's current certificate. */
static int reload_self(void *userdata, const struct config_endpoint *ep, char *msg, size_t size)
{
    struct daemon *d = userdata;
    SSL_CTX *ctx = NULL;
    int r;

    if (!d->tls_endpoint || endpoint_config(d->tls_endpoint) != ep) {
        (void)snprintf(msg, size, "endpoint '%s' is not the one certd serves HTTPS with", ep->name);
        return -EINVAL;
    }
    bool is_held = false;
    r = tls_build(d, &ctx, &is_held, msg, size);
    if (r < 0) {
        return r;
    }
    http_server_set_ssl_ctx_ex(d->http, ctx, is_held ? d->workers : NULL);
    SSL_CTX_free(ctx);
    (void)snprintf(msg, size, "new TLS connections use the new certificate");
    return 0;
}

void daemon_endpoint_changed(struct daemon *d, struct endpoint *ep,
                             const struct manager_change *change, notifier_done_fn done, void *arg)
{
    dbus_endpoint_changed(d->dbus, ep, change);
    notifier_notify(d->notifier, endpoint_config(ep), done, arg);
}

/* --- re-reading endpoints (inotify, SIGHUP) --- */

struct reload_job {
    struct daemon *d;
    struct endpoint *ep;
    bool changed;
    int r;
    struct certd_err err;
};

static void reload_run(void *arg)
{
    struct reload_job *j = arg;
    j->r = manager_reload(j->d->manager, j->ep, &j->changed, &j->err);
}

static void reload_done(void *arg, bool cancelled)
{
    struct reload_job *j = arg;

    if (!cancelled) {
        if (j->r < 0) {
            log_warning("endpoint '%s': the files changed but are not usable, keeping the "
                        "current certificate: %s",
                        endpoint_name(j->ep), j->err.msg);
        } else if (j->changed) {
            log_notice("endpoint '%s': certificate changed on disk, reloading its users",
                       endpoint_name(j->ep));
            daemon_endpoint_changed(j->d, j->ep, NULL, NULL, NULL);
        }
    }
    free(j);
}

static void endpoint_reload(struct daemon *d, struct endpoint *ep)
{
    struct reload_job *j = calloc(1, sizeof(*j));
    if (!j) {
        log_err("endpoint '%s': out of memory for a reload", endpoint_name(ep));
        return;
    }
    j->d = d;
    j->ep = ep;
    if (worker_submit(d->workers, WORKER_LANE_SERIAL, reload_run, reload_done, j) < 0) {
        log_warning("endpoint '%s': worker queue full, reload skipped", endpoint_name(ep));
        free(j);
    }
}

struct watch_target {
    struct daemon *d;
    struct endpoint *ep;
};

static void on_file_changed(void *arg)
{
    struct watch_target *t = arg;
    if (!t->d->is_draining) {
        endpoint_reload(t->d, t->ep);
    }
}

static int watch_endpoints(struct daemon *d, struct watch_target *targets)
{
    for (size_t i = 0; i < manager_n_endpoints(d->manager); i++) {
        struct endpoint *ep = manager_endpoint_at(d->manager, i);
        const struct config_endpoint *c = endpoint_config(ep);
        int r;

        if (c->type == ENDPOINT_AUTHORITY) {
            continue; /* certd writes its authority dirs; SIGHUP re-reads them */
        }
        targets[i] = (struct watch_target){ .d = d, .ep = ep };
        r = watch_add(d->watch, c->cert, on_file_changed, &targets[i]);
        if (r >= 0 && strcmp(c->cert, c->key) != 0) {
            r = watch_add(d->watch, c->key, on_file_changed, &targets[i]);
        }
        if (r < 0) {
            log_warning("endpoint '%s': cannot watch its files (%s); SIGHUP re-reads them", c->name,
                        strerror(-r));
        }
    }
    return 0;
}

static void on_users_changed(void *arg)
{
    struct daemon *d = arg;
    auth_reload_async(d->auth);
}

static void pins_reload_run(void *arg)
{
    struct daemon *d = arg;
    struct certd_err err = { 0 };
    if (peers_reload(d->peers, &err) < 0) {
        log_warning("pin store %s: %s; the pins in force stay", peers_store_path(d->peers),
                    err.msg);
    }
}

static void pins_reload_done(void *arg, bool cancelled)
{
    (void)arg;
    (void)cancelled;
}

/* The pin store changed (certctl pin, an editor): the pins in force follow at once. */
static void on_pins_changed(void *arg)
{
    struct daemon *d = arg;
    if (worker_submit(d->workers, WORKER_LANE_PARALLEL, pins_reload_run, pins_reload_done, d) < 0) {
        log_warning("cannot re-read the pin store now (busy); SIGHUP re-reads it");
    }
}

/* certctl ca revoke wrote a newer CRL: serve it (read on the serial lane, as the CA's files). */
static void crl_reload_run(void *arg)
{
    struct daemon *d = arg;
    if (ca_reload_crl(d->ca) == 1) {
        log_info("ca: serving the CRL another process wrote");
    }
}

static void crl_reload_done(void *arg, bool cancelled)
{
    (void)arg;
    (void)cancelled;
}

static void on_crl_changed(void *arg)
{
    struct daemon *d = arg;
    if (worker_submit(d->workers, WORKER_LANE_SERIAL, crl_reload_run, crl_reload_done, d) < 0) {
        log_warning("ca: the changed CRL file is not read now: the worker queue is full");
    }
}

/* --- signals --- */

/*
 * Giving memory back. glibc keeps what freed TLS connections and finished key generations used
 * in its arenas, so a burst of clients would leave certd bigger for good. A second after the
 * last connection closed (every close pushes it back, so never during a burst), a worker hands
 * the free pages back with malloc_trim. On a worker, not the loop: malloc_trim takes every
 * arena's lock in turn, one of which a worker may be holding (worker.h, "Priority").
 */
#define TRIM_DELAY_SECONDS 1

static void trim_run(void *arg)
{
    (void)arg;
    (void)malloc_trim(0);
}

static void trim_done(void *arg, bool cancelled)
{
    (void)arg;
    (void)cancelled;
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    /* A full queue means work is going on: the next close asks again. */
    if (worker_submit(d->workers, WORKER_LANE_PARALLEL, trim_run, trim_done, NULL) < 0) {
        log_debug("memory trim skipped: the worker queue is full");
    }
}

static void trim_soon(void *arg)
{
    struct daemon *d = arg;
    (void)evtimer_add(d->trim, &(struct timeval){ .tv_sec = TRIM_DELAY_SECONDS });
}

/* The CRL is made again at half its lifetime, so relying parties never hold an expired one. */
static void crl_refresh_run(void *arg)
{
    struct daemon *d = arg;
    struct certd_err err = { 0 };
    if (ca_refresh_crl(d->ca, &err) < 0) {
        log_err("ca: cannot make a new CRL: %s", err.msg);
    }
}

static void crl_refresh_done(void *arg, bool cancelled)
{
    (void)arg;
    (void)cancelled;
}

static void on_crl_refresh(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    if (worker_submit(d->workers, WORKER_LANE_SERIAL, crl_refresh_run, crl_refresh_done, d) < 0) {
        log_warning("ca: the CRL is not made again now: the worker queue is full");
    }
}

/* Tell systemd (Type=notify) where we are; a failure to tell it is logged, not fatal. */
static void notify_manager(const char *state)
{
    int r = sdlib_notify(state);
    if (r < 0) {
        log_warning("cannot notify the service manager ($NOTIFY_SOCKET): %s", strerror(-r));
    }
}

/* RELOADING=1 with the time it started, as Type=notify-reload units require. */
static void notify_manager_reloading(void)
{
    char state[64];
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    (void)snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
                   (unsigned long long)ts.tv_sec * 1000000ull +
                       (unsigned long long)ts.tv_nsec / 1000ull);
    notify_manager(state);
}

static void on_sighup(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct certd_err err = { 0 };
    (void)fd;
    (void)what;

    if (d->is_draining) {
        return; /* stopping or restarting: the next start reads everything anew */
    }
    notify_manager_reloading();
    log_notice("SIGHUP: re-reading the configuration, certificates and users");
    bool is_profile_changed = false;
    if (d->config_path) {
        _cleanup_(cleanup_config) struct config *cfg = NULL;
        if (config_load(d->config_path, &cfg, &err) < 0) {
            log_err("%s; keeping the current configuration", err.msg);
        } else {
            /*
             * Endpoints, paths and the listening address belong to the objects built at start;
             * what can change in place is applied, the rest waits for a restart.
             */
            log_set_max_level((int)cfg->log_level);
            d->cfg->log_level = cfg->log_level;
            is_profile_changed = cfg->tls_profile != d->cfg->tls_profile;
            d->cfg->tls_profile = cfg->tls_profile; /* read on the loop thread only */
            /*
             * The limits go to the HTTP server only: d->cfg's copies stay as they were,
             * because worker jobs read them (the manager's upload cap) while this runs.
             */
            struct http_limits limits = limits_from_config(cfg);
            http_server_set_limits(d->http, &limits);
            log_info("applied log level, TLS profile and limits; endpoint and listen changes "
                     "take effect at the next start");
        }
    }
    auth_reload_async(d->auth); /* logs its own failure */
    on_pins_changed(d);
    for (size_t i = 0; i < manager_n_endpoints(d->manager); i++) {
        endpoint_reload(d, manager_endpoint_at(d->manager, i));
    }
    /*
     * A new TLS profile needs a new context at once; a changed certificate gets one from its
     * endpoint's reload job above (reload = self), so nothing is built twice.
     */
    if (is_profile_changed && d->tls_endpoint) {
        char msg[NOTIFIER_MESSAGE_MAX];
        if (reload_self(d, endpoint_config(d->tls_endpoint), msg, sizeof(msg)) < 0) {
            log_err("%s", msg);
        }
    }
    notify_manager("READY=1");
}

static void drained(void *arg)
{
    struct daemon *d = arg;
    log_info("all connections closed");
    (void)event_base_loopexit(d->base, NULL);
}

/* --- the TLS key's provider (a TPM): a probe, and a restart when the provider is stuck --- */

enum tpm_state { TPM_OK, TPM_AWAY, TPM_BACK, TPM_STATE_MAX };

struct tpm_probe_job {
    struct daemon *d;
    enum tpm_state state;
};

/*
 * One signature with the TLS key. When it fails, is the TPM there? tss opens a connection of
 * its own, which reconnects: if the TPM answers it while the provider's signature fails, the
 * provider is stuck (tpm2-openssl's ESYS context answers every command with "bad sequence"
 * once one failed below the TPM, for good).
 */
static void tpm_probe_run(void *arg)
{
    struct tpm_probe_job *j = arg;
    struct daemon *d = j->d;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = endpoint_snapshot(d->tls_endpoint);
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *mctx = NULL;
    static const unsigned char msg[] = "certd: is the TLS key's provider there?";
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    struct certd_err err = { 0 };

    j->state = TPM_OK;
    if (!s->key || !key_is_held(s->key)) {
        return;
    }
    if (key_sign_ctx_new(d->libctx, d->propq, s->key, &mctx, &err) >= 0 &&
        (size_t)EVP_PKEY_get_size(s->key) <= sizeof(sig) &&
        EVP_DigestSign(mctx, sig, &sig_len, msg, sizeof(msg) - 1) == 1) {
        return;
    }
    (void)ossl_drain_errors("tpm probe: sign");
    _cleanup_(cleanup_tss) struct tss *t = NULL;
    bool exists = false;
    j->state =
        tss_open(NULL, &t, &err) >= 0 && tss_exists(t, TSS_PERSISTENT_FIRST, &exists, &err) >= 0
            ? TPM_BACK
            : TPM_AWAY;
}

static void tpm_probe_arm(struct daemon *d)
{
    const struct timeval tv = { .tv_sec = d->is_tpm_degraded ? DAEMON_TPM_RETRY_SECONDS
                                                             : DAEMON_TPM_PROBE_SECONDS };
    if (d->tpm_probe) {
        (void)event_add(d->tpm_probe, &tv);
    }
}

static void tpm_probe_done(void *arg, bool cancelled)
{
    struct tpm_probe_job *j = arg;
    struct daemon *d = j->d;
    enum tpm_state state = j->state;
    free(j);
    d->is_tpm_probing = false;
    if (cancelled || d->is_draining) {
        return;
    }
    switch (state) {
    case TPM_OK:
        if (d->is_tpm_degraded) {
            log_notice("the TLS key's provider signs again");
        }
        d->is_tpm_degraded = false;
        break;
    case TPM_AWAY:
        if (!d->is_tpm_degraded) {
            log_err("the TLS key's provider cannot sign and the TPM does not answer: new TLS "
                    "connections fail until it is back; connections already open go on");
        }
        d->is_tpm_degraded = true;
        break;
    case TPM_BACK:
    case TPM_STATE_MAX:
    default:
        log_warning("the TPM answers again but the TLS key's provider cannot reconnect to it: "
                    "certd restarts itself (the same process, after the requests in progress)");
        d->is_reexec = true;
        d->is_draining = true;
        /* A restart in place, as a reload is to systemd: the new program says READY=1. */
        notify_manager_reloading();
        http_server_drain(d->http, drained, d);
        return;
    }
    tpm_probe_arm(d);
}

static void on_tpm_probe(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    struct tpm_probe_job *j = calloc(1, sizeof(*j));
    if (!j || d->is_tpm_probing || d->is_draining) {
        free(j);
        tpm_probe_arm(d);
        return;
    }
    j->d = d;
    if (worker_submit(d->workers, WORKER_LANE_SERIAL, tpm_probe_run, tpm_probe_done, j) < 0) {
        free(j);
        tpm_probe_arm(d);
        return;
    }
    d->is_tpm_probing = true;
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;

    if (d->is_draining) {
        if (d->is_reexec) {
            /* Asked to stop while draining for a restart in place: stop, do not restart. */
            d->is_reexec = false;
            notify_manager("STOPPING=1");
            log_notice("stopping instead of restarting");
        }
        return;
    }
    d->is_draining = true;
    notify_manager("STOPPING=1");
    log_notice("stopping: finishing requests in progress");
    http_server_drain(d->http, drained, d);
}

static void on_ticket_rotate(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    if (tls_tickets_rotate(d->tickets) < 0) {
        log_warning("cannot rotate the TLS session ticket keys; keeping the current ones");
    }
}

/* --- start and stop --- */

static struct endpoint *find_tls_endpoint(struct manager *m)
{
    for (size_t i = 0; i < manager_n_endpoints(m); i++) {
        struct endpoint *ep = manager_endpoint_at(m, i);
        const struct config_endpoint *c = endpoint_config(ep);
        if (c->type == ENDPOINT_SERVER && c->reload.kind == CONFIG_RELOAD_SELF) {
            return ep;
        }
    }
    return NULL;
}

/* A parent's password file: the first line, at most 128 bytes, of a file only we can read. */
#define PARENT_AUTH_MAX 128u

static int parent_auth_read(const char *path, struct secret **ret)
{
    /* Ours (or root's), no access for group or others, no symlink: store_read_trusted. */
    _cleanup_(store_buf_done) struct store_buf buf = { 0 };
    struct certd_err err = { 0 };
    int r = store_read_trusted(path, "parent_auth_file", PARENT_AUTH_MAX + 2, 0077, &buf, &err);
    if (r < 0) {
        return log_err_errno(r, "parent_auth_file: %s", err.msg);
    }
    size_t len = strcspn((const char *)buf.p, "\r\n");
    if (len == 0 || len > PARENT_AUTH_MAX || memchr(buf.p, '\0', buf.len) != NULL) {
        return log_err_errno(-EINVAL,
                             "parent_auth_file %s: its first line must hold 1 to %u "
                             "bytes (the password) and no NUL",
                             path, PARENT_AUTH_MAX);
    }
    *ret = secret_new((const char *)buf.p, len);
    return *ret ? 0 : log_err_errno(-ENOMEM, "out of memory");
}

/*
 * A provider's key generation settings (config.h config_keygen): the parent's handle and
 * password for every key made in it, and the password where the provider takes it when it
 * loads such a key (its environment). Before any thread exists.
 */
static int provider_keygen_start(struct daemon *d, const struct provider_spec *spec,
                                 const struct config_keygen *kg)
{
    _cleanup_(cleanup_secret) struct secret *pw = NULL;
    OSSL_PARAM params[3];
    size_t n = 0;
    uint32_t parent = kg->parent;
    int r;

    if (!kg->parent) {
        return 0;
    }
    params[n++] = OSSL_PARAM_construct_uint32(kg->parent_param, &parent);
    if (kg->auth_file) {
        r = parent_auth_read(kg->auth_file, &pw);
        if (r < 0) {
            return r;
        }
        assert(pw); /* parent_auth_read sets it on success (GCC cannot see it) */
        /* secret_new NUL-terminates (util/secret.h); the parameter is a UTF-8 string. */
        params[n++] = OSSL_PARAM_construct_utf8_string(kg->auth_param, (char *)pw->p, pw->len);
        if (setenv(kg->auth_env, (const char *)pw->p, 1) < 0) {
            return log_err_errno(-errno, "cannot set %s: %s", kg->auth_env, strerror(errno));
        }
        /* Hooks (notifier exec:) never see it. */
        for (size_t i = 0; i < PROVIDERS_MAX; i++) {
            if (!d->hidden_env[i]) {
                d->hidden_env[i] = kg->auth_env;
                break;
            }
        }
    }
    params[n] = OSSL_PARAM_construct_end();
    r = key_set_provider_keygen_params(spec->name, params);
    if (r < 0) {
        return log_err_errno(r, "provider %s: cannot keep its key settings: %s", spec->name,
                             strerror(-r));
    }
    log_info("provider %s: new keys are made under the persistent parent 0x%08" PRIx32 "%s",
             spec->name, kg->parent, pw ? " (with its password)" : "");
    return 0;
}

/*
 * The library context of [providers] (issue #5). With the defaults -- the default provider
 * alone, no parameters, no query -- OpenSSL's own default context is exactly that and costs
 * nothing more, so it stays in use (d->libctx NULL).
 */
static int providers_start(struct daemon *d)
{
    const struct config_providers *p = &d->cfg->providers;
    struct certd_err err = { 0 };

    if (p->n == 1 && strcmp(p->specs[0].name, "default") == 0 && p->specs[0].n_params == 0 &&
        !p->query) {
        return 0;
    }
    /* Before any thread exists: setenv is not thread-safe. */
    for (size_t i = 0; i < p->n; i++) {
        int r = provider_keygen_start(d, &p->specs[i], &p->keygen[i]);
        if (r < 0) {
            return r;
        }
    }
    for (size_t i = 0; i < p->n_env; i++) {
        if (setenv(p->env[i].name, p->env[i].value, 1) < 0) {
            return log_err_errno(-errno, "cannot set %s: %s", p->env[i].name, strerror(errno));
        }
    }
    int r = providers_libctx_new(p->specs, p->n, p->query, &d->libctx, &err);
    if (r < 0) {
        return log_err_errno(r, "cannot start: %s", err.msg);
    }
    for (size_t i = 0; i < p->n; i++) {
        log_info("provider %s loaded", p->specs[i].name);
    }
    return 0;
}

/* The listener's pin store and client certificate checks (peers.h). */
static int pins_start(struct daemon *d)
{
    const struct config_pins *cp = &d->cfg->pins[d->cfg->client_pins];
    if (!cp->is_file_given) {
        /* STATE_DIR/pins: made now so that changes to the store are watched from the start. */
        struct certd_err err = { 0 };
        int r = pinstore_mkdir(cp->file, &err);
        if (r < 0) {
            return log_err_errno(r, "pin store %s: %s", cp->file, err.msg);
        }
    }
    int r = peers_new(d->cfg, d->manager, d->libctx, d->propq, &d->peers);
    if (r < 0) {
        return log_err_errno(r, "cannot set up client certificates: %s", strerror(-r));
    }
    if (peers_is_enabled(d->peers)) {
        log_info("client certificates: %s, verified by %s (pin store %s)",
                 config_client_auth_name(d->cfg->client_auth),
                 config_client_verify_name(d->cfg->client_verify), cp->file);
    }
    return 0;
}

static int daemon_start(struct daemon *d)
{
    struct certd_err err = { 0 };
    struct sockaddr_storage ss;
    socklen_t sl;
    SSL_CTX *ctx = NULL;
    char msg[NOTIFIER_MESSAGE_MAX];
    int r;

    if (d->cfg->hostname[0]) {
        (void)snprintf(d->hostname, sizeof(d->hostname), "%s", d->cfg->hostname);
    } else if (gethostname(d->hostname, sizeof(d->hostname) - 1) < 0 || !d->hostname[0]) {
        (void)snprintf(d->hostname, sizeof(d->hostname), "localhost");
    }
    r = providers_start(d);
    if (r < 0) {
        return r;
    }
    r = store_mkdir_p(d->cfg->state_dir, STORE_MODE_DIR);
    if (r < 0) {
        return log_err_errno(r, "state directory %s: %s", d->cfg->state_dir,
                             r == -EPERM ? "must be ours and not writable by group or others"
                                         : strerror(-r));
    }
    r = load_uuid(d);
    if (r < 0) {
        return log_err_errno(r, "cannot make the service UUID: %s", strerror(-r));
    }
    r = bootstrap_admin(d);
    if (r < 0) {
        return r;
    }

    r = worker_pool_new(d->base, WORKER_THREADS_DEFAULT, &d->workers);
    if (r < 0) {
        return log_err_errno(r, "cannot start worker threads: %s", strerror(-r));
    }
    d->trim = evtimer_new(d->base, on_trim, d);
    if (!d->trim) {
        return log_err_errno(-ENOMEM, "out of memory");
    }
    r = manager_new(d->cfg, d->libctx, d->propq, d->hostname, &d->manager);
    if (r < 0) {
        return log_err_errno(r, "out of memory");
    }
    r = manager_start(d->manager, &err);
    if (r < 0) {
        return log_err_errno(r, "cannot start the certificate endpoints: %s", err.msg);
    }
    r = ca_new(d->cfg, d->libctx, d->propq, d->hostname, d->workers, &d->ca);
    if (r < 0) {
        return log_err_errno(r, "out of memory");
    }
    err_clear(&err);
    r = ca_start(d->ca, 0, &err);
    if (r < 0) {
        return log_err_errno(r, "cannot start the CA: %s", err.msg);
    }
    if (ca_signer(d->ca) == CONFIG_SIGNER_LOCAL) {
        d->crl = event_new(d->base, -1, EV_PERSIST, on_crl_refresh, d);
        unsigned half = d->cfg->ca.crl_days * 86400u / 2u;
        if (!d->crl || event_add(d->crl, &(struct timeval){ .tv_sec = (time_t)half }) < 0) {
            return log_err_errno(-ENOMEM, "out of memory");
        }
    }
    d->tls_endpoint = find_tls_endpoint(d->manager);
    if (!d->tls_endpoint) {
        return log_err_errno(-EINVAL, "no [endpoint] of type server with reload = self: certd "
                                      "has no certificate to serve HTTPS with");
    }
    err_clear(&err);
    r = auth_new_ex(d->base, d->workers, d->cfg->users_file, d->libctx, d->propq, &d->auth, &err);
    if (r < 0) {
        return log_err_errno(r, "users file %s: %s", d->cfg->users_file, err.msg);
    }
    r = pins_start(d);
    if (r < 0) {
        return r;
    }
    r = notifier_new(d->base, reload_self, d, &d->notifier);
    if (r < 0) {
        return log_err_errno(r, "out of memory");
    }
    notifier_hide_env(d->notifier, d->hidden_env);
    d->tickets = tls_tickets_new_ex(d->libctx, d->propq);
    if (!d->tickets) {
        return log_err_errno(-EIO, "cannot make TLS session ticket keys");
    }
    bool is_held = false;
    r = tls_build(d, &ctx, &is_held, msg, sizeof(msg));
    if (r < 0) {
        return log_err_errno(r, "%s", msg);
    }
    struct http_limits limits = limits_from_config(d->cfg);
    r = http_server_new(d->base, &limits, front_handle, d, &d->http);
    if (r < 0) {
        SSL_CTX_free(ctx);
        return log_err_errno(r, "out of memory");
    }
    http_server_set_ssl_ctx_ex(d->http, ctx, is_held ? d->workers : NULL);
    SSL_CTX_free(ctx);
    http_server_on_close(d->http, trim_soon, d);
    if (is_held) {
        d->tpm_probe = evtimer_new(d->base, on_tpm_probe, d);
        if (!d->tpm_probe) {
            return log_err_errno(-ENOMEM, "out of memory");
        }
        tpm_probe_arm(d);
    }
    sl = config_listen_sockaddr(&d->cfg->listen, &ss);
    r = http_server_listen(d->http, (const struct sockaddr *)&ss, sl, -1);
    if (r < 0) {
        return log_err_errno(r, "cannot listen on %s: %s", d->cfg->listen.text, strerror(-r));
    }
    r = watch_new(d->base, &d->watch);
    if (r < 0) {
        log_warning("cannot watch certificate files (%s); SIGHUP re-reads them", strerror(-r));
    } else {
        /* certctl edits the users file behind our back: logins follow within a moment. */
        r = watch_add(d->watch, d->cfg->users_file, on_users_changed, d);
        if (r < 0) {
            log_warning("cannot watch the users file (%s); SIGHUP re-reads it", strerror(-r));
        }
        r = watch_add(d->watch, peers_store_path(d->peers), on_pins_changed, d);
        if (r < 0) {
            log_warning("cannot watch the pin store (%s); SIGHUP re-reads it", strerror(-r));
        } else {
            /* A change between the first read and the watch would otherwise go unseen. */
            on_pins_changed(d);
        }
        if (ca_signer(d->ca) == CONFIG_SIGNER_LOCAL &&
            (r = watch_add(d->watch, d->cfg->ca.crl, on_crl_changed, d)) < 0) {
            log_warning("cannot watch the CRL file (%s)", strerror(-r));
        }
    }
    struct certd_err bus_err = { 0 };
    r = dbus_start(d, &d->dbus, &bus_err);
    if (r < 0) {
        return log_err_errno(r, "D-Bus (%s bus): %s", config_dbus_bus_name(d->cfg->dbus_bus),
                             bus_err.msg);
    }
    return 0;
}

static void daemon_stop(struct daemon *d)
{
    /* Connections the pool's last done callbacks free must not reach the freed timers. */
    http_server_on_close(d->http, NULL, NULL);
    if (d->tpm_probe) {
        event_free(d->tpm_probe);
        d->tpm_probe = NULL;
    }
    if (d->trim) {
        event_free(d->trim);
        d->trim = NULL;
    }
    if (d->crl) {
        event_free(d->crl);
        d->crl = NULL;
    }
    /* No D-Bus call may start now; those in flight finish with the workers below. */
    dbus_close(d->dbus);
    /* Workers first: their done callbacks may still use the other parts. */
    d->workers = worker_pool_free(d->workers);
    d->http = http_server_free(d->http);
    d->watch = watch_free(d->watch);
    d->notifier = notifier_free(d->notifier);
    d->auth = auth_free(d->auth);
    d->peers = peers_free(d->peers);
    d->manager = manager_free(d->manager);
    d->ca = ca_free(d->ca);
    /* After the CA: a signing it still held calls back into the D-Bus front end. */
    d->dbus = dbus_free(d->dbus);
    d->tickets = tls_tickets_free(d->tickets);
    d->cfg = config_free(d->cfg);
    key_clear_provider_keygen_params();
    /* Last: every key and context above came from it. */
    OSSL_LIB_CTX_free(d->libctx);
    d->libctx = NULL;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct daemon d = { 0 };
    struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL, *ev_tickets = NULL;
    struct watch_target targets[CONFIG_ENDPOINTS_MAX] = { 0 };
    bool is_reexec = false;
    int r, code = EXIT_STARTUP;

    if (parse_options(argc, argv, &o) < 0) {
        return EXIT_USAGE;
    }
    if (load_config(&o, &d.cfg) < 0) {
        return EXIT_CONFIG;
    }
    d.config_path = o.config_path;
    log_set_max_level((int)d.cfg->log_level);
    (void)signal(SIGPIPE, SIG_IGN);
    d.start_time = time(NULL);

    if (evthread_use_pthreads() < 0) {
        log_err("libevent has no thread support");
        goto out;
    }
    /*
     * The epoll changelist folds the add/del/add of one descriptor within a loop iteration
     * into at most one epoll_ctl: bufferevents turn write interest on and off around every
     * response, which cost a TLS connection 8 epoll_ctl calls instead of 2 or 3.
     */
    struct event_config *ecfg = event_config_new();
    if (ecfg) {
        (void)event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        d.base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
    }
    if (!d.base) {
        log_err("cannot create the event loop");
        goto out;
    }
    /*
     * Signals are caught before the listener exists: a SIGHUP or SIGTERM sent as soon as the
     * port answers (a test, a reload racing a start) is queued for the loop instead of taking
     * the default action and killing certd.
     */
    ev_hup = evsignal_new(d.base, SIGHUP, on_sighup, &d);
    ev_term = evsignal_new(d.base, SIGTERM, on_sigterm, &d);
    ev_int = evsignal_new(d.base, SIGINT, on_sigterm, &d);
    if (!ev_hup || !ev_term || !ev_int || event_add(ev_hup, NULL) < 0 ||
        event_add(ev_term, NULL) < 0 || event_add(ev_int, NULL) < 0) {
        log_err("cannot set up signal handling");
        goto out;
    }
    if (daemon_start(&d) < 0) {
        goto out;
    }
    if (d.watch) {
        (void)watch_endpoints(&d, targets);
    }
    ev_tickets = event_new(d.base, -1, EV_PERSIST, on_ticket_rotate, &d);
    if (!ev_tickets ||
        event_add(ev_tickets, &(struct timeval){ .tv_sec = TLS_TICKET_ROTATE_SECONDS }) < 0) {
        log_err("cannot set up the ticket key rotation");
        goto out;
    }

    log_notice("certd %s listening on https://%s (state in %s)", CERTD_VERSION, d.cfg->listen.text,
               d.cfg->state_dir);
    notify_manager("READY=1");
    trim_soon(&d); /* what starting up left free (certificate checks, a bootstrap key) */
    r = event_base_dispatch(d.base);
    if (r < 0) {
        log_err("the event loop failed");
        goto out;
    }
    code = EXIT_SUCCESS;
    log_notice("stopped");
    is_reexec = d.is_reexec;
out:
    if (ev_hup) {
        event_free(ev_hup);
    }
    if (ev_term) {
        event_free(ev_term);
    }
    if (ev_int) {
        event_free(ev_int);
    }
    if (ev_tickets) {
        event_free(ev_tickets);
    }
    daemon_stop(&d);
    if (d.base) {
        event_base_free(d.base);
    }
    if (is_reexec) {
        /*
         * Everything certd opened is O_CLOEXEC and freed above; the same program, arguments
         * and environment start again in this process, with a fresh provider.
         */
        (void)execv("/proc/self/exe", argv);
        log_err("cannot restart: %s", strerror(errno));
        code = EXIT_STARTUP;
    }
    return code;
}
