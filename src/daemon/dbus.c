/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The D-Bus front end for certificate endpoints (issue #7, seed 002): per [endpoint], the
 * manager object of OpenBMC's phosphor-certificate-manager with its certificate objects and
 * its CSR object, each manager on an sd-bus connection of its own (owning its one bus name, as
 * upstream's one process per name) that busev drives from certd's loop.
 *
 * Invariants:
 *  - The model (struct dbus_mgr and its struct dbus_cert objects) mirrors one published
 *    snapshot per endpoint (mgr->shown) and outlives connections: a lost connection drops its
 *    part's slots and keeps the model; a new one registers it again, same paths, same ids.
 *  - Objects and signals of a manager go only over its own connection (struct dbus_link), so
 *    that clients tracking names (phosphor-objmgr) credit them to the right name.
 *  - Object ids count 1, 2, ... per manager and are never reused while certd runs, so a path a
 *    client holds names one certificate or none. A certificate object holds a reference to the
 *    snapshot its entry lives in, so its properties never dangle.
 *  - Signals come only from dbus_endpoint_changed (and the CSR object's life), which compares
 *    snapshots: whichever front end changed an endpoint, the bus tells the same story.
 *  - The loop never waits: file reads, validation, writes and key generation run on the worker
 *    pool (changes on the serial lane, CSRs where manager.h asks). The call is kept
 *    (sd_bus_message_ref) and answered from the job's done callback, after the signals of the
 *    change went out. A reply whose connection is gone is dropped, never sent on a newer one.
 *  - Callers are hostile: every string is bounded and checked before use, file names reach
 *    messages only through dbus_text_safe, file contents never reach a message or a log.
 *
 * Access control is the bus's: the policy file (packaging/) lets only root own the names and
 * call the methods on the system bus, as upstream's does; the methods are therefore marked
 * SD_BUS_VTABLE_UNPRIVILEGED, because sd-bus's own check would ask the bus driver for the
 * caller's credentials with a blocking call on every method call.
 */
#include "dbus.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr/csr.h"
#include "daemon.h"
#include "dbus-int.h"
#include "log/log.h"
#include "store/store.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/span.h"
#include "x509/inspect.h"

/* ---- names ---- */

#define DBUS_SERVICE_PREFIX "xyz.openbmc_project.Certs.Manager."
#define IFACE_INSTALL       "xyz.openbmc_project.Certs.Install"
#define IFACE_CSR_CREATE    "xyz.openbmc_project.Certs.CSR.Create"
#define IFACE_INSTALL_ALL   "xyz.openbmc_project.Certs.InstallAll"
#define IFACE_REPLACE_ALL   "xyz.openbmc_project.Certs.ReplaceAll"
#define IFACE_DELETE_ALL    "xyz.openbmc_project.Collection.DeleteAll"
#define IFACE_CERTIFICATE   "xyz.openbmc_project.Certs.Certificate"
#define IFACE_REPLACE       "xyz.openbmc_project.Certs.Replace"
#define IFACE_CSR           "xyz.openbmc_project.Certs.CSR"

/* A lost connection is tried again this often. */
#define DBUS_RETRY_SECONDS 5
/* The longest path a caller may name (with its NUL: PATH_MAX). */
#define DBUS_FILE_PATH_MAX (PATH_MAX - 1)
/* How much of a caller's file name an error message quotes. */
#define DBUS_SHOWN_PATH_MAX 160u
/* A manager's path: room for a certificate's "/<uint64>" below it within DBUS_PATH_MAX. */
#define DBUS_MGR_PATH_MAX (DBUS_PATH_MAX - 32u)
/* Sender names (":1.42") as logged; longer ones are cut. */
#define DBUS_SENDER_MAX 64u

/* sd-bus takes interface lists as char **: arrays, not literals, keep -Wwrite-strings quiet. */
static char iface_certificate[] = IFACE_CERTIFICATE;
static char iface_replace[] = IFACE_REPLACE;
static char iface_delete[] = DBUS_IFACE_OBJECT_DELETE;
static char iface_csr[] = IFACE_CSR;
static char *cert_ifaces[] = { iface_certificate, iface_replace, iface_delete, NULL };
static char *csr_ifaces[] = { iface_csr, NULL };

static const char *const type_path[ENDPOINT_TYPE_MAX] = {
    [ENDPOINT_SERVER] = "server",
    [ENDPOINT_CLIENT] = "client",
    [ENDPOINT_AUTHORITY] = "authority",
};
static const char *const type_service[ENDPOINT_TYPE_MAX] = {
    [ENDPOINT_SERVER] = "Server",
    [ENDPOINT_CLIENT] = "Client",
    [ENDPOINT_AUTHORITY] = "Authority",
};

/* ---- the model ---- */

struct dbus_mgr;

/* A certificate object: <manager>/<n>. */
struct dbus_cert {
    struct dbus_cert *next; /* in creation order */
    struct dbus_mgr *mgr;
    uint64_t n;
    char path[DBUS_PATH_MAX];
    struct ep_snapshot *snap;   /* a reference: e lives in it */
    const struct cert_entry *e; /* borrowed from snap */
    char *subject;              /* as upstream shows them (name_to_oneline) */
    char *issuer;
    sd_bus_slot *slots[3]; /* Certificate, Replace, Object.Delete */
};

enum mgr_slot {
    MGR_SLOT_OBJECT_MANAGER,
    MGR_SLOT_INSTALL,
    MGR_SLOT_CSR_CREATE,
    MGR_SLOT_INSTALL_ALL,
    MGR_SLOT_REPLACE_ALL,
    MGR_SLOT_DELETE_ALL,
    MGR_SLOT_MAX
};

struct dbus;
struct dbus_link;

/* What a link serves: its objects go on a new connection, and come off a closing one. */
typedef int (*link_attach_fn)(struct dbus_link *l, struct certd_err *err);
typedef void (*link_detach_fn)(struct dbus_link *l);
typedef void (*link_owned_fn)(struct dbus_link *l);

/*
 * One connection owning one bus name (a manager's or the VMI CA's), as upstream runs one
 * process per name: phosphor-objmgr keeps one well-known name per connection and credits
 * InterfacesAdded/Removed only to that name, so objects and signals of a name must come from
 * the connection that owns it. Each link connects, loses its bus and reconnects on its own.
 */
struct dbus_link {
    struct dbus_conn conn; /* d, sd; ev NULL while not connected */
    struct dbus *db;
    const char *service;    /* borrowed: the manager's service[], or DBUS_CA_SERVICE */
    sd_bus_slot *name_slot; /* an asynchronous request in flight (after a reconnect) */
    struct event *retry;
    bool is_drop_wanted; /* the name request failed after a reconnect: start over */
    link_attach_fn attach;
    link_detach_fn detach;
    link_owned_fn owned; /* nullable: the name became ours after a reconnect */
};

/* The manager object of one endpoint. */
struct dbus_mgr {
    struct dbus_link link; /* first: link_mgr() */
    struct dbus *db;
    struct endpoint *ep;
    enum endpoint_type type;
    char service[DBUS_SERVICE_MAX];
    char path[DBUS_MGR_PATH_MAX];
    char csr_path[DBUS_PATH_MAX];
    struct ep_snapshot *shown; /* what the bus shows */
    struct dbus_cert *certs;
    uint64_t next_n;
    sd_bus_slot *slots[MGR_SLOT_MAX];
    /*
     * The CSR object: exists once a generation finished, until the next one starts. Every
     * GenerateCSR counts csr_gen up; only the job of the newest one sets the object (an
     * older one that ends later is dropped: its key stays a pending key of the manager).
     */
    uint64_t csr_gen;
    bool has_csr;
    bool is_csr_unannounced; /* finished while the connection was down: InterfacesAdded due */
    char *csr_pem;           /* NULL: the generation failed, csr_err says why */
    struct certd_err csr_err;
    sd_bus_slot *csr_slot;
};

struct dbus_job;

struct dbus {
    struct daemon *d;
    const struct sdlib *sd;
    struct dbus_mgr *mgrs;
    size_t n_mgrs;
    struct dbus_ca *ca;
    struct dbus_link ca_link; /* dbus-ca.c borrows &ca_link.conn */
    enum busev_kind kind;
    const char *bus_label; /* "system" / "session", for logs */
    bool is_closed;
    struct dbus_job *jobs; /* every job alive (some wait for a notifier that never answers) */
};

/* ---- pure helpers (dbus-int.h) ---- */

const char *dbus_error_name(enum certd_errc code)
{
    switch (code) {
    /* What the file holds is at fault: upstream's InvalidCertificate. */
    case CERTD_E_INPUT_EMPTY:
    case CERTD_E_INPUT_GARBAGE:
    case CERTD_E_PEM_TRUNCATED:
    case CERTD_E_PEM_BAD_BLOCK:
    case CERTD_E_PEM_UNEXPECTED_LABEL:
    case CERTD_E_TRAILING_DATA:
    case CERTD_E_NO_CERT:
    case CERTD_E_TOO_MANY_CERTS:
    case CERTD_E_KEY_ENCRYPTED:
    case CERTD_E_MULTIPLE_KEYS:
    case CERTD_E_KEY_BAD:
    case CERTD_E_CERT_BAD:
    case CERTD_E_NOT_ONE_LEAF:
    case CERTD_E_KEY_MISSING:
    case CERTD_E_KEY_MISMATCH:
    case CERTD_E_KEY_WEAK:
    case CERTD_E_KEY_UNSUPPORTED:
    case CERTD_E_SIGNATURE_WEAK:
    case CERTD_E_CHAIN_ORDER:
    case CERTD_E_CHAIN_TOO_LONG:
    case CERTD_E_EKU_MISMATCH:
    case CERTD_E_KEY_USAGE_MISMATCH:
    case CERTD_E_CERT_EXPIRED:
    case CERTD_E_CERT_NOT_YET_VALID:
    case CERTD_E_CERT_BEFORE_1970:
    case CERTD_E_NOT_CA:
    case CERTD_E_CA_NO_KEYCERTSIGN:
        return DBUS_E_INVALID_CERTIFICATE;
    default:
        break;
    }
    switch (err_code_class(code)) {
    case CERTD_CLASS_INVALID_INPUT:
        return DBUS_E_INVALID_ARGUMENT;
    /* Upstream refuses duplicates and a full store with NotAllowed too. */
    case CERTD_CLASS_NOT_ALLOWED:
    case CERTD_CLASS_CONFLICT:
        return DBUS_E_NOT_ALLOWED;
    case CERTD_CLASS_NOT_FOUND:
        return DBUS_E_RESOURCE_NOT_FOUND;
    case CERTD_CLASS_UNAVAILABLE:
        return DBUS_E_UNAVAILABLE;
    case CERTD_CLASS_NONE:
    case CERTD_CLASS_INTERNAL:
    case CERTD_CLASS_UPSTREAM:
    case CERTD_CLASS_MAX:
    default:
        return DBUS_E_INTERNAL_FAILURE;
    }
}

/* Append what fits of s[0..n) whole, or nothing; false when it does not fit. */
static bool text_put(char *out, size_t size, size_t *len, const char *s, size_t n)
{
    if (n >= size - *len) {
        return false;
    }
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return true;
}

void dbus_text_safe(const char *in, char *out, size_t size)
{
    size_t len = 0;

    assert(out && size > 0);
    out[0] = '\0';
    if (!in) {
        return;
    }
    struct cursor c = cur_init(span_from_str(in));
    while (cur_left(&c) > 0) {
        uint32_t cp;
        struct span bytes = { 0 };
        /* Room for one character's escapes: at most 4 bytes of "\xNN". */
        char esc[4 * 4 + 1];
        size_t n = 0;
        bool is_ok;

        if (utf8_next(&c, &cp, &bytes) < 0) {
            /* Not UTF-8: this byte alone, escaped; the next one is read afresh. */
            uint8_t b;
            if (cur_u8(&c, &b) < 0) {
                break;
            }
            (void)snprintf(esc, sizeof(esc), "\\x%02X", b);
            is_ok = text_put(out, size, &len, esc, strlen(esc));
        } else if (utf8_is_control(cp)) {
            for (size_t i = 0; i < bytes.len && i < 4; i++) {
                (void)snprintf(esc + n, sizeof(esc) - n, "\\x%02X", bytes.p[i]);
                n += 4;
            }
            is_ok = text_put(out, size, &len, esc, n);
        } else {
            is_ok = text_put(out, size, &len, (const char *)bytes.p, bytes.len);
        }
        if (!is_ok) {
            break;
        }
    }
}

/* ---- the connection (dbus-int.h) ---- */

sd_bus *dbus_conn_bus(const struct dbus_conn *c)
{
    return c && c->ev ? busev_bus(c->ev) : NULL;
}

/* Whether call m can still be answered: it came over the connection we have now. */
static bool call_is_live(const struct dbus_conn *c, sd_bus_message *m)
{
    sd_bus *bus = dbus_conn_bus(c);
    return bus && m && c->sd->sd_bus_message_get_bus(m) == bus;
}

void dbus_conn_kick(const struct dbus_conn *c)
{
    if (c && c->ev) {
        busev_kick(c->ev);
    }
}

void dbus_slots_drop(const struct sdlib *sd, sd_bus_slot **slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (slots[i]) {
            slots[i] = sd->sd_bus_slot_unref(slots[i]);
        }
    }
}

static int reply_error(const struct dbus_conn *c, sd_bus_message *m, const char *name,
                       const char *msg)
{
    sd_bus_error e = SD_BUS_ERROR_NULL;
    char safe[CERTD_ERR_MSG_MAX + 64];
    int r;

    if (!call_is_live(c, m)) {
        return 1; /* nobody to answer: the call came over a connection that is gone */
    }
    /* Library messages may quote subjects and file names: the bus takes only valid UTF-8. */
    dbus_text_safe(msg && msg[0] ? msg : "internal error", safe, sizeof(safe));
    (void)c->sd->sd_bus_error_set(&e, name, safe);
    r = c->sd->sd_bus_reply_method_error(m, &e);
    c->sd->sd_bus_error_free(&e);
    dbus_conn_kick(c);
    /* What a method handler returns: 1, replied; a failure, sd-bus answers from the errno. */
    return r < 0 ? r : 1;
}

int dbus_reply_err(const struct dbus_conn *c, sd_bus_message *m, const struct certd_err *err)
{
    bool is_set = err && err_is_set(err);
    return reply_error(c, m, dbus_error_name(is_set ? err->code : CERTD_E_INTERNAL),
                       is_set ? err->msg : NULL);
}

int dbus_reply_errorf(const struct dbus_conn *c, sd_bus_message *m, const char *name,
                      const char *fmt, ...)
{
    char msg[CERTD_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return reply_error(c, m, name, msg);
}

/* ---- signals (dbus-int.h) ---- */

void dbus_emit_added(const struct dbus_conn *c, const char *path, char **ifaces)
{
    sd_bus *bus = dbus_conn_bus(c);
    if (bus) {
        int r = c->sd->sd_bus_emit_interfaces_added_strv(bus, path, ifaces);
        if (r < 0) {
            log_warning("dbus: cannot announce %s: %s", path, strerror(-r));
        }
        dbus_conn_kick(c);
    }
}

void dbus_emit_removed(const struct dbus_conn *c, const char *path, char **ifaces)
{
    sd_bus *bus = dbus_conn_bus(c);
    if (bus) {
        int r = c->sd->sd_bus_emit_interfaces_removed_strv(bus, path, ifaces);
        if (r < 0) {
            log_warning("dbus: cannot announce the removal of %s: %s", path, strerror(-r));
        }
        dbus_conn_kick(c);
    }
}

void dbus_emit_changed(const struct dbus_conn *c, const char *path, const char *iface, char **props)
{
    sd_bus *bus = dbus_conn_bus(c);
    if (bus) {
        int r = c->sd->sd_bus_emit_properties_changed_strv(bus, path, iface, props);
        if (r < 0) {
            log_warning("dbus: cannot announce the change of %s: %s", path, strerror(-r));
        }
        dbus_conn_kick(c);
    }
}

/* ---- certificate objects ---- */

static int cert_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
    const struct dbus_cert *c = userdata;
    const struct sdlib *sd = c->mgr->link.conn.sd;
    const struct cert_info *ci = c->e->info;
    (void)bus;
    (void)path;
    (void)interface;
    (void)ret_error;

    if (strcmp(property, "CertificateString") == 0) {
        return sd->sd_bus_message_append_basic(reply, 's', c->e->pem);
    }
    if (strcmp(property, "Subject") == 0) {
        return sd->sd_bus_message_append_basic(reply, 's', c->subject ? c->subject : "");
    }
    if (strcmp(property, "Issuer") == 0) {
        return sd->sd_bus_message_append_basic(reply, 's', c->issuer ? c->issuer : "");
    }
    bool is_after = strcmp(property, "ValidNotAfter") == 0;
    if (is_after || strcmp(property, "ValidNotBefore") == 0) {
        int64_t t = is_after ? ci->not_after : ci->not_before;
        /* Seconds, as upstream's implementation gives them; before 1970 cannot be said in t. */
        uint64_t v = t > 0 ? (uint64_t)t : 0;
        return sd->sd_bus_message_append_basic(reply, 't', &v);
    }
    if (strcmp(property, "KeyUsage") == 0) {
        const char *names[CSR_REDFISH_KEY_USAGES_MAX];
        size_t n = key_usage_to_redfish(ci->has_key_usage ? ci->key_usage : 0,
                                        ci->has_eku ? ci->eku : 0, names, ELEMENTSOF(names));
        int r = sd->sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && i < n; i++) {
            r = sd->sd_bus_message_append_basic(reply, 's', names[i]);
        }
        return r < 0 ? r : sd->sd_bus_message_close_container(reply);
    }
    return -ENOENT;
}

static int method_replace(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

#define PROP(name, sig) \
    SD_BUS_PROPERTY(name, sig, cert_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static sd_bus_vtable cert_vtable[] = {
    SDLIB_VTABLE_START(0),       PROP("CertificateString", "s"),
    PROP("KeyUsage", "as"),      PROP("Issuer", "s"),
    PROP("Subject", "s"),        PROP("ValidNotAfter", "t"),
    PROP("ValidNotBefore", "t"), SD_BUS_VTABLE_END,
};

static sd_bus_vtable replace_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("Replace", "s", SD_BUS_PARAM(Path), "", "", method_replace,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable delete_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("Delete", "", "", "", "", method_delete, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static void cert_detach(struct dbus_cert *c)
{
    dbus_slots_drop(c->mgr->link.conn.sd, c->slots, ELEMENTSOF(c->slots));
}

static int cert_attach(struct dbus_cert *c, sd_bus *bus)
{
    const struct sdlib *sd = c->mgr->link.conn.sd;
    int r =
        sd->sd_bus_add_object_vtable(bus, &c->slots[0], c->path, IFACE_CERTIFICATE, cert_vtable, c);
    if (r >= 0) {
        r = sd->sd_bus_add_object_vtable(bus, &c->slots[1], c->path, IFACE_REPLACE, replace_vtable,
                                         c);
    }
    if (r >= 0) {
        r = sd->sd_bus_add_object_vtable(bus, &c->slots[2], c->path, DBUS_IFACE_OBJECT_DELETE,
                                         delete_vtable, c);
    }
    if (r < 0) {
        cert_detach(c);
    }
    return r;
}

/* Point c at entry e of snap (a new reference is taken) and render its names. */
static int cert_set_entry(struct dbus_cert *c, struct ep_snapshot *snap, const struct cert_entry *e)
{
    _cleanup_free_ char *subject = NULL;
    _cleanup_free_ char *issuer = NULL;
    int r = name_to_oneline(X509_get_subject_name(e->cert), &subject);
    if (r >= 0) {
        r = name_to_oneline(X509_get_issuer_name(e->cert), &issuer);
    }
    if (r < 0) {
        return r;
    }
    (void)ep_snapshot_unref(c->snap);
    c->snap = ep_snapshot_ref(snap);
    c->e = e;
    free(c->subject);
    free(c->issuer);
    c->subject = TAKE_PTR(subject);
    c->issuer = TAKE_PTR(issuer);
    return 0;
}

static struct dbus_cert *cert_free(struct dbus_cert *c)
{
    if (c) {
        cert_detach(c);
        (void)ep_snapshot_unref(c->snap);
        free(c->subject);
        free(c->issuer);
        free(c);
    }
    return NULL;
}

/* A new object for entry e of snap, appended to mgr's list (registered when a bus is up). */
static int cert_new(struct dbus_mgr *mgr, struct ep_snapshot *snap, const struct cert_entry *e,
                    struct dbus_cert **ret)
{
    struct dbus_cert *c = calloc(1, sizeof(*c));
    struct dbus_cert **tail = &mgr->certs;
    sd_bus *bus = dbus_conn_bus(&mgr->link.conn);
    int r;

    if (!c) {
        return -ENOMEM;
    }
    c->mgr = mgr;
    c->n = mgr->next_n;
    (void)snprintf(c->path, sizeof(c->path), "%s/%" PRIu64, mgr->path, c->n);
    r = cert_set_entry(c, snap, e);
    if (r >= 0 && bus) {
        r = cert_attach(c, bus);
    }
    if (r < 0) {
        (void)cert_free(c);
        return r;
    }
    /* Counted only now: a failed creation leaves no gap a client could notice. */
    mgr->next_n++;
    while (*tail) {
        tail = &(*tail)->next;
    }
    *tail = c;
    *ret = c;
    return 0;
}

static void cert_remove(struct dbus_mgr *mgr, struct dbus_cert *c, bool is_announced)
{
    for (struct dbus_cert **p = &mgr->certs; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (is_announced) {
        dbus_emit_removed(&mgr->link.conn, c->path, cert_ifaces);
    }
    (void)cert_free(c);
}

static struct dbus_cert *cert_by_id(const struct dbus_mgr *mgr, const char *id)
{
    for (struct dbus_cert *c = mgr->certs; c; c = c->next) {
        if (strcmp(c->e->id, id) == 0) {
            return c;
        }
    }
    return NULL;
}

/* ---- the CSR object ---- */

static int method_csr(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static sd_bus_vtable csr_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("CSR", "", "", "s", SD_BUS_PARAM(CSRString), method_csr,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static int csr_attach(struct dbus_mgr *mgr, sd_bus *bus)
{
    return mgr->link.conn.sd->sd_bus_add_object_vtable(bus, &mgr->csr_slot, mgr->csr_path,
                                                       IFACE_CSR, csr_vtable, mgr);
}

static void csr_detach(struct dbus_mgr *mgr)
{
    dbus_slots_drop(mgr->link.conn.sd, &mgr->csr_slot, 1);
}

/* InterfacesAdded of the CSR object, once per generation. */
static void csr_announce(struct dbus_mgr *mgr)
{
    if (mgr->has_csr && mgr->is_csr_unannounced && mgr->csr_slot) {
        mgr->is_csr_unannounced = false;
        dbus_emit_added(&mgr->link.conn, mgr->csr_path, csr_ifaces);
    }
}

/* The CSR object goes (a new generation starts): InterfacesRemoved, as upstream's does. */
static void csr_remove(struct dbus_mgr *mgr)
{
    if (mgr->has_csr && !mgr->is_csr_unannounced) {
        dbus_emit_removed(&mgr->link.conn, mgr->csr_path, csr_ifaces);
    }
    csr_detach(mgr);
    mgr->has_csr = false;
    mgr->is_csr_unannounced = false;
    free(mgr->csr_pem);
    mgr->csr_pem = NULL;
    err_clear(&mgr->csr_err);
}

static int method_csr(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_mgr *mgr = userdata;
    const struct dbus_conn *c = &mgr->link.conn;
    (void)ret_error;

    if (!mgr->csr_pem) {
        /* Upstream: a failed generation is InternalFailure when the CSR is read. */
        return dbus_reply_errorf(c, m, DBUS_E_INTERNAL_FAILURE, "the CSR could not be made: %s",
                                 mgr->csr_err.msg[0] ? mgr->csr_err.msg : "unknown error");
    }
    return c->sd->sd_bus_reply_method_return(m, "s", mgr->csr_pem);
}

/* ---- jobs: every method that changes state, on the worker pool ---- */

enum job_kind {
    JOB_INSTALL,
    JOB_REPLACE,
    JOB_DELETE,
    JOB_DELETE_ALL,
    JOB_INSTALL_ALL,
    JOB_REPLACE_ALL,
    JOB_CSR,
    JOB_KIND_MAX
};

struct dbus_job {
    struct dbus_job *prev;
    struct dbus_job *next;
    enum job_kind kind;
    struct dbus *db;
    struct dbus_mgr *mgr;
    struct manager *m;
    struct endpoint *ep;
    enum endpoint_type type;
    sd_bus_message *call; /* a reference: the caller's strings below live in it */
    char sender[DBUS_SENDER_MAX];
    /* inputs (run reads them, nothing writes them after submission) */
    const char *file; /* borrowed from call */
    size_t max_body;
    char id[MANAGER_ID_MAX]; /* replaced or deleted */
    struct key_spec spec;
    struct csr_request req; /* strings borrowed from call */
    const char *alt_names[CERTD_SANS_MAX];
    const char *key_usage[CERTD_KEY_USAGES_MAX];
    /* results */
    int r;
    struct certd_err err;
    struct manager_change change;
    bool is_occupied; /* Install on a server or client that holds a certificate */
    size_t n_deleted;
    struct ep_snapshot *before; /* InstallAll: what was there */
    struct ep_snapshot *after;  /* the snapshot the change published */
    char *csr_pem;
    uint64_t csr_gen; /* JOB_CSR: mgr->csr_gen when it was asked for */
};

static struct dbus_job *job_free(struct dbus_job *j)
{
    if (!j) {
        return NULL;
    }
    if (j->prev) {
        j->prev->next = j->next;
    } else if (j->db->jobs == j) {
        j->db->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    if (j->call) {
        (void)j->db->sd->sd_bus_message_unref(j->call);
    }
    (void)ep_snapshot_unref(j->before);
    (void)ep_snapshot_unref(j->after);
    free(j->csr_pem);
    free(j);
    return NULL;
}
DEFINE_CLEANUP_STRUCT(dbus_job, job_free)

static int job_new(struct dbus_mgr *mgr, enum job_kind kind, sd_bus_message *call,
                   struct dbus_job **ret)
{
    struct dbus *db = mgr->db;
    struct dbus_job *j = calloc(1, sizeof(*j));

    if (!j) {
        return -ENOMEM;
    }
    j->kind = kind;
    j->db = db;
    j->mgr = mgr;
    j->m = db->d->manager;
    j->ep = mgr->ep;
    j->type = mgr->type;
    j->max_body = db->d->cfg->max_body;
    j->call = db->sd->sd_bus_message_ref(call);
    const char *sender = db->sd->sd_bus_message_get_sender(call);
    dbus_text_safe(sender ? sender : "(no sender)", j->sender, sizeof(j->sender));
    j->next = db->jobs;
    if (db->jobs) {
        db->jobs->prev = j;
    }
    db->jobs = j;
    *ret = j;
    return 0;
}

static const char *file_kind(mode_t mode)
{
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    return "not a regular file";
}

/*
 * Worker thread: the file a caller named, at most max bytes, into *ret (wiped and freed by the
 * caller: it may hold a key). store_read_file opens with O_NONBLOCK|O_NOCTTY|O_CLOEXEC and
 * judges the descriptor by fstat, so a FIFO or a device never blocks a worker. Every way the
 * name can be wrong is the caller's: InvalidArgument (CERTD_E_FIELD_INVALID) naming it.
 */
static int read_upload(const char *path, size_t max, struct store_buf *ret, struct certd_err *err)
{
    struct store_buf b = { .p = NULL };
    char shown[DBUS_SHOWN_PATH_MAX];
    char why[128];
    struct stat st;
    int r;

    r = store_read_file(path, max, false, &b.p, &b.len);
    if (r >= 0) {
        *ret = b;
        return 0;
    }
    dbus_text_safe(path, shown, sizeof(shown));
    switch (r) {
    case -ENOENT:
    case -ENOTDIR:
        return err_set_field(err, r, CERTD_E_FIELD_INVALID, "Path",
                             "%s does not exist (no such file)", shown);
    case -EISDIR:
        return err_set_field(err, r, CERTD_E_FIELD_INVALID, "Path", "%s is a directory, not a file",
                             shown);
    case -EINVAL: /* fstat: not a regular file */
    case -ENXIO:  /* open: a socket, a device without a driver */
    case -ENODEV:
    case -EOPNOTSUPP:
        /* Only for the message: what the name was when we looked at it. */
        return err_set_field(err, r, CERTD_E_FIELD_INVALID, "Path", "%s is %s, not a regular file",
                             shown, stat(path, &st) == 0 ? file_kind(st.st_mode) : "not a file");
    case -EACCES:
    case -EPERM:
        return err_set_field(err, r, CERTD_E_FIELD_INVALID, "Path",
                             "%s cannot be read by certd: permission denied", shown);
    case -E2BIG:
        return err_set_field(err, r, CERTD_E_INPUT_TOO_LARGE, "Path", "%s is larger than %zu bytes",
                             shown, max);
    case -ELOOP:
    case -ENAMETOOLONG:
        return err_set_field(err, r, CERTD_E_FIELD_INVALID, "Path", "%s cannot be opened: %s",
                             shown, store_errno_str(r, why, sizeof(why)));
    case -ENOMEM:
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    default:
        return err_set(err, r, CERTD_E_STORAGE, "cannot read %s: %s", shown,
                       store_errno_str(r, why, sizeof(why)));
    }
}

/* Worker thread: Install, Replace, InstallAll, ReplaceAll. */
static int job_run_upload(struct dbus_job *j)
{
    _cleanup_(store_buf_done) struct store_buf data = { .p = NULL };
    int r;

    if (j->kind == JOB_INSTALL && j->type != ENDPOINT_AUTHORITY) {
        /* Upstream: one certificate per server or client, changed with Replace. Checked here,
         * on the serial lane, so that two Installs cannot both find the endpoint empty. The
         * message is written in done, which knows the object's path. */
        _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = endpoint_snapshot(j->ep);
        if (s->n > 0) {
            j->is_occupied = true;
            return err_set(&j->err, -EEXIST, CERTD_E_POLICY_FORBIDS, "already holds one");
        }
    }
    if (j->kind == JOB_INSTALL_ALL) {
        /* Upstream: InstallAll sets up an empty store; ReplaceAll changes a full one. */
        _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = endpoint_snapshot(j->ep);
        if (s->n > 0) {
            return err_set(&j->err, -EEXIST, CERTD_E_POLICY_FORBIDS,
                           "endpoint %s already holds %zu certificate%s: call DeleteAll, then "
                           "InstallAll, or use ReplaceAll",
                           endpoint_name(j->ep), s->n, s->n == 1 ? "" : "s");
        }
    }
    r = read_upload(j->file, j->max_body, &data, &j->err);
    if (r < 0) {
        return r;
    }
    j->before = endpoint_snapshot(j->ep);
    if (j->kind == JOB_REPLACE_ALL) {
        r = manager_replace_all(j->m, j->ep, span_make(data.p, data.len), &j->change, &j->err);
    } else {
        r = manager_install(j->m, j->ep, span_make(data.p, data.len),
                            j->kind == JOB_REPLACE ? j->id : NULL, &j->change, &j->err);
    }
    if (r >= 0) {
        /* Taken here, on the serial lane, so that no later change slips in before it. */
        j->after = endpoint_snapshot(j->ep);
    }
    return r;
}

/* Worker thread: DeleteAll, each certificate in turn; what was deleted stays deleted. */
static int job_run_delete_all(struct dbus_job *j)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *s = endpoint_snapshot(j->ep);

    for (size_t i = 0; i < s->n; i++) {
        int r = manager_delete(j->m, j->ep, s->entries[i].id, &j->change, &j->err);
        if (r < 0) {
            return r;
        }
        j->n_deleted++;
    }
    return 0;
}

/* Worker thread: only the job's own data and the (thread-safe) manager. */
static void job_run(void *arg)
{
    struct dbus_job *j = arg;

    switch (j->kind) {
    case JOB_INSTALL:
    case JOB_REPLACE:
    case JOB_INSTALL_ALL:
    case JOB_REPLACE_ALL:
        j->r = job_run_upload(j);
        break;
    case JOB_DELETE:
        j->r = manager_delete(j->m, j->ep, j->id, &j->change, &j->err);
        j->n_deleted = j->r >= 0 ? 1 : 0;
        break;
    case JOB_DELETE_ALL:
        j->r = job_run_delete_all(j);
        break;
    case JOB_CSR:
        j->r = manager_generate_csr(j->m, j->ep, &j->spec, &j->req, &j->csr_pem, &j->err);
        break;
    case JOB_KIND_MAX:
    default:
        j->r = err_set(&j->err, -EINVAL, CERTD_E_INTERNAL, "unknown job");
        break;
    }
    if (j->r < 0 && !err_is_set(&j->err)) {
        (void)err_set(&j->err, j->r, CERTD_E_INTERNAL, "the request failed: %s", strerror(-j->r));
    }
}

/* Append the path of the object showing entry id, when there is one (a later change may have
 * removed it already). */
static int append_path_of(const struct sdlib *sd, sd_bus_message *reply, const struct dbus_mgr *mgr,
                          const char *id)
{
    const struct dbus_cert *c = cert_by_id(mgr, id);
    return c ? sd->sd_bus_message_append_basic(reply, 'o', c->path) : 0;
}

/* InstallAll: the objects of the certificates it added; ReplaceAll: of the whole new set. */
static int reply_paths(struct dbus_job *j)
{
    const struct sdlib *sd = j->db->sd;
    sd_bus_message *reply = NULL;
    int r = sd->sd_bus_message_new_method_return(j->call, &reply);

    if (r >= 0) {
        r = sd->sd_bus_message_open_container(reply, 'a', "o");
    }
    for (size_t i = 0; r >= 0 && j->after && i < j->after->n; i++) {
        const char *id = j->after->entries[i].id;
        if (j->kind == JOB_INSTALL_ALL && ep_snapshot_find(j->before, id)) {
            continue;
        }
        r = append_path_of(sd, reply, j->mgr, id);
    }
    if (r >= 0) {
        r = sd->sd_bus_message_close_container(reply);
    }
    if (r >= 0) {
        r = sd->sd_bus_send(NULL, reply, NULL);
    }
    if (reply) {
        (void)sd->sd_bus_message_unref(reply);
    }
    return r;
}

/* Loop thread: answer a change that was stored (and announced). */
static void job_reply(struct dbus_job *j)
{
    const struct dbus_conn *c = &j->mgr->link.conn;
    int r = 0;

    if (!call_is_live(c, j->call)) {
        return;
    }
    if (j->r < 0) {
        /* DeleteAll stopped at a failure: what it deleted before stays deleted. */
        (void)dbus_reply_err(c, j->call, &j->err);
        return;
    }
    switch (j->kind) {
    case JOB_INSTALL: {
        const struct dbus_cert *cert = cert_by_id(j->mgr, j->change.id);
        if (!cert) {
            (void)dbus_reply_errorf(c, j->call, DBUS_E_RESOURCE_NOT_FOUND,
                                    "certificate %s was installed, then removed by a later change",
                                    j->change.id);
            return;
        }
        r = c->sd->sd_bus_reply_method_return(j->call, "s", cert->path);
        break;
    }
    case JOB_INSTALL_ALL:
    case JOB_REPLACE_ALL:
        r = reply_paths(j);
        break;
    case JOB_REPLACE:
    case JOB_DELETE:
    case JOB_DELETE_ALL:
    case JOB_CSR:
    case JOB_KIND_MAX:
    default:
        r = c->sd->sd_bus_reply_method_return(j->call, "");
        break;
    }
    if (r < 0) {
        log_warning("dbus: cannot answer %s: %s", j->sender, strerror(-r));
    }
    dbus_conn_kick(c);
}

static void job_log(const struct dbus_job *j)
{
    const char *name = endpoint_name(j->ep);

    switch (j->kind) {
    case JOB_INSTALL:
        log_notice("dbus: installed certificate %s on endpoint %s (caller %s)", j->change.id, name,
                   j->sender);
        break;
    case JOB_REPLACE:
        log_notice("dbus: replaced certificate %s with %s on endpoint %s (caller %s)", j->id,
                   j->change.id, name, j->sender);
        break;
    case JOB_DELETE:
        log_notice("dbus: deleted certificate %s on endpoint %s%s (caller %s)", j->id, name,
                   j->type == ENDPOINT_SERVER ? ", a self-signed certificate took its place" : "",
                   j->sender);
        break;
    case JOB_DELETE_ALL:
        log_notice("dbus: deleted %zu certificate%s on endpoint %s%s%s (caller %s)", j->n_deleted,
                   j->n_deleted == 1 ? "" : "s", name, j->r < 0 ? " before a failure" : "",
                   j->type == ENDPOINT_SERVER ? ", a self-signed certificate took its place" : "",
                   j->sender);
        break;
    case JOB_INSTALL_ALL: {
        size_t added = 0;
        for (size_t i = 0; j->after && i < j->after->n; i++) {
            added += ep_snapshot_find(j->before, j->after->entries[i].id) ? 0 : 1;
        }
        log_notice("dbus: installed %zu authority certificate%s on endpoint %s (caller %s)", added,
                   added == 1 ? "" : "s", name, j->sender);
        break;
    }
    case JOB_REPLACE_ALL: {
        size_t before = j->before ? j->before->n : 0;
        size_t after = j->after ? j->after->n : 0;
        log_notice("dbus: replaced the %zu authority certificate%s of endpoint %s with %zu "
                   "(caller %s)",
                   before, before == 1 ? "" : "s", name, after, j->sender);
        break;
    }
    case JOB_CSR:
    case JOB_KIND_MAX:
    default:
        break;
    }
    if (j->change.warning[0]) {
        log_notice("dbus: endpoint %s: %s", name, j->change.warning);
    }
}

/* Loop thread: the endpoint's users were told (or not); now the caller hears. */
static void job_notified(void *arg, int result, const char *message)
{
    _cleanup_(cleanup_dbus_job) struct dbus_job *j = arg;

    if (result < 0) {
        /* The change is stored: not an error of the call, but the admin must know. */
        log_warning("dbus: endpoint %s: the change is stored, but reloading its users failed: %s",
                    endpoint_name(j->ep), message && message[0] ? message : strerror(-result));
    }
    job_reply(j);
}

/* Register the CSR object and, with the name ours, announce it (bmcweb waits for exactly this
 * signal before it reads the CSR). Without a connection, the next one announces it. */
static void csr_publish(struct dbus_mgr *mgr)
{
    sd_bus *bus = dbus_conn_bus(&mgr->link.conn);

    mgr->is_csr_unannounced = true;
    if (!bus) {
        return;
    }
    csr_detach(mgr);
    int r = csr_attach(mgr, bus);
    if (r < 0) {
        log_err("dbus: cannot register %s: %s", mgr->csr_path, strerror(-r));
        return;
    }
    if (!mgr->link.name_slot) {
        csr_announce(mgr);
    }
    /* Otherwise the name request is in flight: name_reply announces it once the name is ours,
     * so that a client matching on the well-known name sees it. */
}

static void csr_done(struct dbus_job *j, bool cancelled)
{
    struct dbus_mgr *mgr = j->mgr;

    if (j->csr_gen != mgr->csr_gen) {
        /* A newer GenerateCSR came meanwhile: its result is the one the object shows. */
        log_info("dbus: endpoint %s: a CSR requested by %s ended after a newer request; dropped "
                 "(its key stays pending)",
                 endpoint_name(j->ep), j->sender);
        return;
    }
    err_clear(&mgr->csr_err);
    if (cancelled) {
        (void)err_set(&mgr->csr_err, -ECANCELED, CERTD_E_UNAVAILABLE, "certd is shutting down");
    } else if (j->r < 0) {
        mgr->csr_err = j->err;
        log_warning("dbus: the CSR for endpoint %s failed (caller %s): %s", endpoint_name(j->ep),
                    j->sender, j->err.msg);
    } else {
        mgr->csr_pem = TAKE_PTR(j->csr_pem);
        log_notice("dbus: generated a CSR on endpoint %s (caller %s)", endpoint_name(j->ep),
                   j->sender);
    }
    mgr->has_csr = true;
    csr_publish(mgr);
}

/* Loop thread: the worker finished (or the pool is shutting down). */
static void job_done(void *arg, bool cancelled)
{
    _cleanup_(cleanup_dbus_job) struct dbus_job *j = arg;
    const struct dbus_conn *c = &j->mgr->link.conn;

    if (j->kind == JOB_CSR) {
        csr_done(j, cancelled);
        return;
    }
    if (cancelled) {
        (void)dbus_reply_errorf(c, j->call, DBUS_E_UNAVAILABLE, "certd is shutting down");
        return;
    }
    if (j->r < 0 && j->n_deleted == 0) {
        if (j->is_occupied) {
            const struct dbus_cert *cert = j->mgr->certs;
            (void)dbus_reply_errorf(c, j->call, DBUS_E_NOT_ALLOWED,
                                    "endpoint %s already holds a certificate; use Replace on %s",
                                    endpoint_name(j->ep), cert ? cert->path : j->mgr->path);
        } else {
            log_info("dbus: endpoint %s: request of %s refused: %s", endpoint_name(j->ep),
                     j->sender, j->err.msg);
            (void)dbus_reply_err(c, j->call, &j->err);
        }
        return;
    }
    if (j->kind == JOB_DELETE_ALL && j->n_deleted == 0) {
        job_reply(j); /* nothing was there */
        return;
    }
    job_log(j);
    /* job_notified owns the job from here; it may run before this returns. */
    struct dbus *db = j->db;
    struct endpoint *ep = j->ep;
    struct dbus_job *owned = TAKE_PTR(j);
    daemon_endpoint_changed(db->d, ep, &owned->change, job_notified, owned);
}

/* Hand j to the pool; a full queue is Unavailable. Returns what a method handler returns. */
static int job_submit(struct dbus_job *j, enum worker_lane lane)
{
    const struct dbus_conn *c = &j->mgr->link.conn;
    sd_bus_message *call = j->call;

    if (worker_submit(c->d->workers, lane, job_run, job_done, j) < 0) {
        (void)c->sd->sd_bus_message_ref(call);
        (void)job_free(j);
        int r =
            dbus_reply_errorf(c, call, DBUS_E_UNAVAILABLE, "certd is busy; try again in a moment");
        (void)c->sd->sd_bus_message_unref(call);
        return r;
    }
    return 1;
}

/* The file name argument: absolute and bounded, checked before any job exists. */
static int check_file_arg(const struct dbus_conn *c, sd_bus_message *m, const char *file)
{
    char shown[DBUS_SHOWN_PATH_MAX];
    size_t n = strnlen(file, (size_t)DBUS_FILE_PATH_MAX + 1);

    if (n > DBUS_FILE_PATH_MAX) {
        return dbus_reply_errorf(c, m, DBUS_E_INVALID_ARGUMENT, "Path is longer than %d bytes",
                                 DBUS_FILE_PATH_MAX);
    }
    if (file[0] != '/') {
        dbus_text_safe(file, shown, sizeof(shown));
        return dbus_reply_errorf(c, m, DBUS_E_INVALID_ARGUMENT,
                                 "Path must be an absolute file name, not '%s'", shown);
    }
    return 0;
}

static int submit_upload(struct dbus_mgr *mgr, sd_bus_message *m, enum job_kind kind,
                         const char *id)
{
    const struct dbus_conn *c = &mgr->link.conn;
    const char *file = NULL;
    struct dbus_job *j = NULL;
    int r = c->sd->sd_bus_message_read(m, "s", &file);

    if (r < 0) {
        return r;
    }
    r = check_file_arg(c, m, file);
    if (r != 0) {
        return r;
    }
    r = job_new(mgr, kind, m, &j);
    if (r < 0) {
        return r;
    }
    j->file = file;
    if (id) {
        /* Ids come from a snapshot: shorter than MANAGER_ID_MAX. */
        memcpy(j->id, id, strlen(id) + 1);
    }
    return job_submit(j, WORKER_LANE_SERIAL);
}

/* ---- methods ---- */

static int method_install(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    (void)ret_error;
    return submit_upload(userdata, m, JOB_INSTALL, NULL);
}

/*
 * Upstream offers InstallAll and ReplaceAll on every manager and refuses them where the type has
 * one certificate: NotAllowed, pointing at the methods that fit.
 */
static int refuse_set_method(struct dbus_mgr *mgr, sd_bus_message *m, const char *method)
{
    const struct dbus_cert *cert = mgr->certs;
    return dbus_reply_errorf(&mgr->link.conn, m, DBUS_E_NOT_ALLOWED,
                             "%s is for authority endpoints; %s endpoint %s holds one "
                             "certificate: use %s",
                             method, type_path[mgr->type], endpoint_name(mgr->ep),
                             cert ? "Replace on its certificate object" : "Install");
}

static int method_install_all(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_mgr *mgr = userdata;
    (void)ret_error;
    if (mgr->type != ENDPOINT_AUTHORITY) {
        return refuse_set_method(mgr, m, "InstallAll");
    }
    return submit_upload(mgr, m, JOB_INSTALL_ALL, NULL);
}

static int method_replace_all(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_mgr *mgr = userdata;
    (void)ret_error;
    if (mgr->type != ENDPOINT_AUTHORITY) {
        return refuse_set_method(mgr, m, "ReplaceAll");
    }
    return submit_upload(mgr, m, JOB_REPLACE_ALL, NULL);
}

static int method_replace(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_cert *cert = userdata;
    (void)ret_error;
    return submit_upload(cert->mgr, m, JOB_REPLACE, cert->e->id);
}

static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_cert *cert = userdata;
    struct dbus_job *j = NULL;
    (void)ret_error;

    int r = job_new(cert->mgr, JOB_DELETE, m, &j);
    if (r < 0) {
        return r;
    }
    memcpy(j->id, cert->e->id, strlen(cert->e->id) + 1);
    return job_submit(j, WORKER_LANE_SERIAL);
}

static int method_delete_all(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_mgr *mgr = userdata;
    struct dbus_job *j = NULL;
    (void)ret_error;

    /* A server's certificate is deleted as by Delete: a self-signed one takes its place. */
    int r = job_new(mgr, JOB_DELETE_ALL, m, &j);
    if (r < 0) {
        return r;
    }
    return job_submit(j, WORKER_LANE_SERIAL);
}

/* The strings of an "as" argument, borrowed from m, into v[0..max); *ret_n is max + 1 when
 * there are more (all are read, so that the next argument can be). */
static int read_strings(const struct sdlib *sd, sd_bus_message *m, const char **v, size_t max,
                        size_t *ret_n)
{
    const char *s = NULL;
    size_t n = 0;
    int r = sd->sd_bus_message_enter_container(m, 'a', "s");

    if (r < 0) {
        return r;
    }
    while ((r = sd->sd_bus_message_read_basic(m, 's', &s)) > 0) {
        if (n < max) {
            v[n] = s;
        }
        if (n <= max) {
            n++;
        }
    }
    if (r < 0) {
        return r;
    }
    r = sd->sd_bus_message_exit_container(m);
    if (r < 0) {
        return r;
    }
    *ret_n = n;
    return 0;
}

/*
 * The key GenerateCSR asks for, as upstream reads its arguments: all three empty, the
 * endpoint's new_key; an empty KeyPairAlgorithm is EC; EC takes KeyCurveId ("" P-256) and
 * ignores KeyBitLength (bmcweb sends 2048 with EC); RSA takes KeyBitLength (0 2048) and
 * ignores KeyCurveId (bmcweb sends its default curve with RSA too).
 */
static int csr_key_spec(const struct config_endpoint *cfg, const char *alg, const char *curve,
                        int64_t bits, struct key_spec *ret, struct certd_err *err)
{
    struct key_spec probe;
    int r;

    if (!alg[0] && !curve[0] && bits == 0) {
        *ret = cfg->new_key;
        return 0;
    }
    if (bits < 0 || bits > UINT16_MAX) {
        return err_set_field(err, -EINVAL, CERTD_E_KEY_SIZE_UNSUPPORTED, "KeyBitLength",
                             "KeyBitLength %" PRId64 " is not a key size", bits);
    }
    const char *name = alg[0] ? alg : "EC";
    r = key_spec_from_names(name, 0, NULL, &probe, err);
    if (r < 0) {
        return r;
    }
    switch (probe.alg) {
    case KEY_ALG_RSA:
        return key_spec_from_names(name, (unsigned)bits, NULL, ret, err);
    case KEY_ALG_EC:
        return key_spec_from_names(name, 0, curve[0] ? curve : NULL, ret, err);
    case KEY_ALG_ED25519:
    case KEY_ALG_MAX:
    default:
        if (!cfg->allow_ed25519) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "KeyPairAlgorithm",
                                 "Ed25519 keys are not allowed for endpoint %s", cfg->name);
        }
        return key_spec_from_names(name, 0, NULL, ret, err);
    }
}

static int method_generate_csr(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_mgr *mgr = userdata;
    const struct dbus_conn *c = &mgr->link.conn;
    const struct sdlib *sd = c->sd;
    _cleanup_(cleanup_dbus_job) struct dbus_job *j = NULL;
    struct certd_err err = { 0 };
    const char *alg = NULL;
    const char *curve = NULL;
    int64_t bits = 0;
    int r;
    (void)ret_error;

    if (mgr->type == ENDPOINT_AUTHORITY) {
        return dbus_reply_errorf(c, m, DBUS_E_NOT_ALLOWED,
                                 "endpoint %s is an authority: it holds CA certificates installed "
                                 "from files and has no key of its own to make a CSR for",
                                 endpoint_name(mgr->ep));
    }
    r = job_new(mgr, JOB_CSR, m, &j);
    if (r < 0) {
        return r;
    }
    struct csr_request *req = &j->req;
    r = read_strings(sd, m, j->alt_names, CERTD_SANS_MAX, &req->n_alt_names);
    if (r >= 0) {
        r = sd->sd_bus_message_read(m, "ssssssssxss", &req->challenge_password, &req->city,
                                    &req->common_name, &req->contact_person, &req->country,
                                    &req->email, &req->given_name, &req->initials, &bits, &curve,
                                    &alg);
    }
    if (r >= 0) {
        r = read_strings(sd, m, j->key_usage, CERTD_KEY_USAGES_MAX, &req->n_key_usage);
    }
    if (r >= 0) {
        r = sd->sd_bus_message_read(m, "sssss", &req->organization, &req->organizational_unit,
                                    &req->state, &req->surname, &req->unstructured_name);
    }
    if (r < 0) {
        return r;
    }
    req->alt_names = j->alt_names;
    req->key_usage = j->key_usage;
    /* csr_build's own checks, before a key exists: a bad argument is answered now, not by a
     * CSR object that fails later. The counts are judged before the arrays are read, so
     * read_strings' "one more than fits" is safe here. */
    r = csr_check_request(req, &err);
    if (r >= 0) {
        r = csr_key_spec(endpoint_config(mgr->ep), alg, curve, bits, &j->spec, &err);
    }
    if (r < 0) {
        return dbus_reply_err(c, m, &err);
    }

    /* Keys a provider holds (a TPM) are used by the serial thread only (worker.h). */
    enum worker_lane lane = endpoint_is_held(mgr->ep) ? WORKER_LANE_SERIAL : WORKER_LANE_PARALLEL;
    if (worker_submit(c->d->workers, lane, job_run, job_done, j) < 0) {
        return dbus_reply_errorf(c, m, DBUS_E_UNAVAILABLE, "certd is busy; try again in a moment");
    }
    /* The newest request wins (upstream starts a new generation too; bmcweb asks again after
     * its own timeout): a job still running for an older one is dropped when it ends. */
    j->csr_gen = ++mgr->csr_gen;
    TAKE_PTR(j);
    /* Upstream keeps one CSR: the last one goes when a new generation starts. */
    csr_remove(mgr);
    return sd->sd_bus_reply_method_return(m, "s", mgr->csr_path);
}

/* ---- manager objects ---- */

static sd_bus_vtable install_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("Install", "s", SD_BUS_PARAM(Path), "s", SD_BUS_PARAM(ObjectPath),
                             method_install, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable csr_create_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES(
        "GenerateCSR", "asssssssssxssassssss",
        SD_BUS_PARAM(AlternativeNames) SD_BUS_PARAM(ChallengePassword) SD_BUS_PARAM(City)
            SD_BUS_PARAM(CommonName) SD_BUS_PARAM(ContactPerson) SD_BUS_PARAM(Country) SD_BUS_PARAM(
                Email) SD_BUS_PARAM(GivenName) SD_BUS_PARAM(Initials) SD_BUS_PARAM(KeyBitLength)
                SD_BUS_PARAM(KeyCurveId) SD_BUS_PARAM(KeyPairAlgorithm) SD_BUS_PARAM(KeyUsage)
                    SD_BUS_PARAM(Organization) SD_BUS_PARAM(OrganizationalUnit) SD_BUS_PARAM(State)
                        SD_BUS_PARAM(Surname) SD_BUS_PARAM(UnstructuredName),
        "s", SD_BUS_PARAM(path), method_generate_csr, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable install_all_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("InstallAll", "s", SD_BUS_PARAM(Path), "ao", SD_BUS_PARAM(ObjectPath),
                             method_install_all, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable replace_all_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("ReplaceAll", "s", SD_BUS_PARAM(Path), "ao", SD_BUS_PARAM(ObjectPath),
                             method_replace_all, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable delete_all_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("DeleteAll", "", "", "", "", method_delete_all,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static void vtables_fix(const struct sdlib *sd)
{
    sd_bus_vtable *all[] = { cert_vtable,        replace_vtable,     delete_vtable,
                             csr_vtable,         install_vtable,     csr_create_vtable,
                             install_all_vtable, replace_all_vtable, delete_all_vtable };
    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        sdlib_vtable_fix(sd, all[i]);
    }
}

static void mgr_detach(struct dbus_mgr *mgr)
{
    dbus_slots_drop(mgr->link.conn.sd, mgr->slots, ELEMENTSOF(mgr->slots));
    for (struct dbus_cert *c = mgr->certs; c; c = c->next) {
        cert_detach(c);
    }
    csr_detach(mgr);
}

static int mgr_add_vtable(struct dbus_mgr *mgr, sd_bus *bus, enum mgr_slot slot, const char *iface,
                          const sd_bus_vtable *vt)
{
    return mgr->link.conn.sd->sd_bus_add_object_vtable(bus, &mgr->slots[slot], mgr->path, iface, vt,
                                                       mgr);
}

/* Register mgr's objects on bus: the manager, its certificates, its CSR. */
static int mgr_attach(struct dbus_mgr *mgr, sd_bus *bus)
{
    const struct sdlib *sd = mgr->link.conn.sd;
    int r = sd->sd_bus_add_object_manager(bus, &mgr->slots[MGR_SLOT_OBJECT_MANAGER], mgr->path);

    /* Every manager has all five, as upstream's (certs_manager.hpp); the methods refuse what
     * the type does not allow with NotAllowed. */
    if (r >= 0) {
        r = mgr_add_vtable(mgr, bus, MGR_SLOT_INSTALL, IFACE_INSTALL, install_vtable);
    }
    if (r >= 0) {
        r = mgr_add_vtable(mgr, bus, MGR_SLOT_CSR_CREATE, IFACE_CSR_CREATE, csr_create_vtable);
    }
    if (r >= 0) {
        r = mgr_add_vtable(mgr, bus, MGR_SLOT_INSTALL_ALL, IFACE_INSTALL_ALL, install_all_vtable);
    }
    if (r >= 0) {
        r = mgr_add_vtable(mgr, bus, MGR_SLOT_REPLACE_ALL, IFACE_REPLACE_ALL, replace_all_vtable);
    }
    if (r >= 0) {
        r = mgr_add_vtable(mgr, bus, MGR_SLOT_DELETE_ALL, IFACE_DELETE_ALL, delete_all_vtable);
    }
    for (struct dbus_cert *c = mgr->certs; r >= 0 && c; c = c->next) {
        r = cert_attach(c, bus);
    }
    if (r >= 0 && mgr->has_csr) {
        r = csr_attach(mgr, bus);
    }
    if (r < 0) {
        mgr_detach(mgr);
    }
    return r;
}

static int mgr_link_attach(struct dbus_link *l, struct certd_err *err)
{
    /* The link is the manager's first member. */
    struct dbus_mgr *mgr = (struct dbus_mgr *)l;
    int r = mgr_attach(mgr, dbus_conn_bus(&l->conn));
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot register %s: %s", mgr->path, strerror(-r));
    }
    return 0;
}

static void mgr_link_detach(struct dbus_link *l)
{
    mgr_detach((struct dbus_mgr *)l);
}

/* The name is ours (after a reconnect): what happened while the bus was away can be told. */
static void mgr_link_owned(struct dbus_link *l)
{
    csr_announce((struct dbus_mgr *)l);
}

static void mgr_done(struct dbus_mgr *mgr)
{
    if (!mgr->db) {
        return;
    }
    mgr_detach(mgr);
    if (mgr->link.retry) {
        event_free(mgr->link.retry);
        mgr->link.retry = NULL;
    }
    while (mgr->certs) {
        struct dbus_cert *c = mgr->certs;
        mgr->certs = c->next;
        (void)cert_free(c);
    }
    mgr->shown = ep_snapshot_unref(mgr->shown);
    free(mgr->csr_pem);
    mgr->csr_pem = NULL;
}

/* The model of endpoint ep as it is now (registered later, when a bus is up). */
static int mgr_init(struct dbus_mgr *mgr, struct dbus *db, struct endpoint *ep,
                    struct certd_err *err)
{
    const char *name = endpoint_name(ep);
    enum endpoint_type type = endpoint_type(ep);

    /* config.c allows only [a-z][a-z0-9_]* with a bus: bus name and path elements. */
    assert_return((unsigned)type < ENDPOINT_TYPE_MAX, -EINVAL);
    if (!(name[0] >= 'a' && name[0] <= 'z') ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "endpoint name %s cannot be a D-Bus name: use [a-z][a-z0-9_]*", name);
    }
    *mgr = (struct dbus_mgr){ .db = db, .ep = ep, .type = type, .next_n = 1 };
    (void)snprintf(mgr->service, sizeof(mgr->service), "%s%s.%c%s", DBUS_SERVICE_PREFIX,
                   type_service[type], (char)(name[0] - 'a' + 'A'), name + 1);
    mgr->link = (struct dbus_link){ .conn = { .d = db->d, .sd = db->sd },
                                    .db = db,
                                    .service = mgr->service,
                                    .attach = mgr_link_attach,
                                    .detach = mgr_link_detach,
                                    .owned = mgr_link_owned };
    (void)snprintf(mgr->path, sizeof(mgr->path), "%s/%s/%s", DBUS_CERTS_ROOT, type_path[type],
                   name);
    (void)snprintf(mgr->csr_path, sizeof(mgr->csr_path), "%s/csr", mgr->path);
    mgr->shown = endpoint_snapshot(ep);
    for (size_t i = 0; i < mgr->shown->n; i++) {
        struct dbus_cert *c = NULL;
        int r = cert_new(mgr, mgr->shown, &mgr->shown->entries[i], &c);
        if (r < 0) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

/* ---- changes ---- */

static bool entry_same(const struct cert_entry *a, const struct cert_entry *b)
{
    return a->pem == b->pem ||
           (a->pem_len == b->pem_len && memcmp(a->pem, b->pem, a->pem_len) == 0);
}

static void emit_changed(const struct dbus_cert *c)
{
    if (c->slots[0]) {
        /* NULL: every property that emits changes, i.e. every Certificate property. */
        dbus_emit_changed(&c->mgr->link.conn, c->path, IFACE_CERTIFICATE, NULL);
    }
}

static int cert_add_announced(struct dbus_mgr *mgr, struct ep_snapshot *snap,
                              const struct cert_entry *e)
{
    struct dbus_cert *c = NULL;
    int r = cert_new(mgr, snap, e, &c);
    if (r < 0) {
        return r;
    }
    dbus_emit_added(&mgr->link.conn, c->path, cert_ifaces);
    return 0;
}

/*
 * Authority: objects follow manager ids (fingerprints). The object of change->replaced_id
 * shows the certificate that took its place (same path, as upstream's Replace keeps it).
 */
static int authority_changed(struct dbus_mgr *mgr, struct ep_snapshot *snap,
                             const struct manager_change *change)
{
    _cleanup_free_ bool *claimed = calloc(snap->n > 0 ? snap->n : 1, sizeof(bool));
    const char *replaced = change && change->replaced_id[0] ? change->replaced_id : NULL;
    int r = 0;

    if (!claimed) {
        return -ENOMEM;
    }
    for (struct dbus_cert *c = mgr->certs, *next; c; c = next) {
        next = c->next;
        bool is_replaced = replaced && strcmp(c->e->id, replaced) == 0;
        const struct cert_entry *e = ep_snapshot_find(snap, is_replaced ? change->id : c->e->id);
        size_t i = e ? (size_t)(e - snap->entries) : 0;
        if (!e || claimed[i]) {
            cert_remove(mgr, c, true);
            continue;
        }
        claimed[i] = true;
        bool is_same = entry_same(c->e, e);
        int k = cert_set_entry(c, snap, e);
        if (k < 0) {
            r = k;
            continue;
        }
        if (!is_same) {
            emit_changed(c);
        }
    }
    for (size_t i = 0; i < snap->n; i++) {
        if (!claimed[i]) {
            int k = cert_add_announced(mgr, snap, &snap->entries[i]);
            if (k < 0) {
                r = k;
            }
        }
    }
    return r;
}

/*
 * Server / client: one object. A delete makes a new object for what took its place (a
 * server's self-signed successor); anything else keeps the object and, when the certificate
 * differs, says so with PropertiesChanged.
 */
static int single_changed(struct dbus_mgr *mgr, struct ep_snapshot *snap,
                          const struct manager_change *change)
{
    struct dbus_cert *c = mgr->certs;

    if (c && (snap->n == 0 || (change && change->is_delete))) {
        cert_remove(mgr, c, true);
        c = NULL;
    }
    if (snap->n == 0) {
        return 0;
    }
    const struct cert_entry *e = &snap->entries[0];
    if (!c) {
        return cert_add_announced(mgr, snap, e);
    }
    bool is_same = entry_same(c->e, e);
    int r = cert_set_entry(c, snap, e);
    if (r < 0) {
        return r;
    }
    if (!is_same) {
        emit_changed(c);
    }
    return 0;
}

void dbus_endpoint_changed(struct dbus *db, struct endpoint *ep,
                           const struct manager_change *change)
{
    struct dbus_mgr *mgr = NULL;

    if (!db) {
        return;
    }
    for (size_t i = 0; i < db->n_mgrs; i++) {
        if (db->mgrs[i].ep == ep) {
            mgr = &db->mgrs[i];
            break;
        }
    }
    if (!mgr) {
        return;
    }
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
    if (snap == mgr->shown) {
        return;
    }
    int r = mgr->type == ENDPOINT_AUTHORITY ? authority_changed(mgr, snap, change)
                                            : single_changed(mgr, snap, change);
    if (r < 0) {
        /* Objects may lag behind until the next change; the state itself is stored. */
        log_err("dbus: endpoint %s: cannot show the change on the bus: %s", endpoint_name(ep),
                strerror(-r));
    }
    (void)ep_snapshot_unref(mgr->shown);
    mgr->shown = TAKE_PTR(snap);
    dbus_conn_kick(&mgr->link.conn);
}

/* ---- connections: one per name, each lost and made again on its own ---- */

static void retry_arm(struct dbus_link *l, int seconds)
{
    struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
    if (l->retry && !l->db->is_closed) {
        (void)evtimer_add(l->retry, &tv);
    }
}

/* Drop every slot of the link and its connection; the model stays. */
static void link_down(struct dbus_link *l)
{
    l->detach(l);
    dbus_slots_drop(l->conn.sd, &l->name_slot, 1);
    /* Closing the connection gives the name back at once (the bus daemon does that for a
     * connection that goes): no ReleaseName round trip on the loop. */
    l->conn.ev = busev_free(l->conn.ev);
}

/* After a reconnect: a name that cannot be ours means starting over later. */
static int name_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_link *l = userdata;
    const struct sdlib *sd = l->conn.sd;
    const sd_bus_error *e = sd->sd_bus_message_get_error(m);
    uint32_t code = 0;
    (void)ret_error;

    /* sd-bus holds its own reference while this runs: the request is no longer in flight. */
    l->name_slot = sd->sd_bus_slot_unref(l->name_slot);
    if (!e && sd->sd_bus_message_read(m, "u", &code) >= 0 &&
        (code == 1 || code == 4)) { /* primary owner, already owner */
        if (l->owned) {
            l->owned(l);
        }
        return 0;
    }
    char why[CERTD_ERR_MSG_MAX];
    dbus_text_safe(e ? (e->message ? e->message : e->name) : "owned by another process", why,
                   sizeof(why));
    log_err("dbus: cannot own bus name %s: %s; trying again in %d s", l->service, why,
            DBUS_RETRY_SECONDS);
    /* Not from inside sd_bus_process: the timer drops the connection. */
    l->is_drop_wanted = true;
    if (l->retry) {
        struct timeval now = { 0, 0 };
        (void)evtimer_add(l->retry, &now);
    }
    return 0;
}

/*
 * Request the link's name. At start (is_sync) the loop does not run yet and a taken name must
 * stop certd, so the request waits for its answer. After a reconnect the loop runs and must
 * never wait on the bus (a bus that accepts the connection and then hangs would stop Redfish
 * too): the request goes out asynchronously and name_reply judges the answer.
 */
static int request_name(struct dbus_link *l, sd_bus *bus, bool is_sync, struct certd_err *err)
{
    const struct sdlib *sd = l->conn.sd;
    int r;

    if (!is_sync) {
        r = sd->sd_bus_request_name_async(bus, &l->name_slot, l->service, 0, name_reply, l);
        if (r < 0) {
            return err_set(err, r, CERTD_E_UNAVAILABLE, "cannot request bus name %s: %s",
                           l->service, strerror(-r));
        }
        return 0;
    }
    /* No queueing: a name we would get some day is no use to callers now. */
    r = sd->sd_bus_request_name(bus, l->service, 0);
    if (r == -EEXIST) {
        return err_set(err, r, CERTD_E_IN_USE,
                       "bus name %s is owned by another process (phosphor-certificate-manager "
                       "still running?)",
                       l->service);
    }
    if (r < 0 && r != -EALREADY) {
        return err_set(err, r, CERTD_E_UNAVAILABLE, "cannot own bus name %s: %s", l->service,
                       strerror(-r));
    }
    return 0;
}

static void on_lost(void *arg, int r);

/* Connect, register the link's objects and request its name. On failure nothing is left. */
static int link_up(struct dbus_link *l, bool is_start, struct certd_err *err)
{
    const struct sdlib *sd = l->conn.sd;
    char msg[CERTD_ERR_MSG_MAX];
    int r;

    r = busev_open(l->conn.d->base, sd, l->db->kind, on_lost, l, &l->conn.ev, msg, sizeof(msg));
    if (r < 0) {
        return err_set(err, r, CERTD_E_UNAVAILABLE, "%s", msg);
    }
    sd_bus *bus = busev_bus(l->conn.ev);
    (void)sd->sd_bus_set_description(bus, l->service);
    r = l->attach(l, err);
    /* The name last: whoever sees it finds every object in place. */
    if (r >= 0) {
        r = request_name(l, bus, is_start, err);
    }
    if (r < 0) {
        link_down(l);
        return r;
    }
    /* Synchronous calls ran sd-bus outside the loop: tell the loop what it wants now. */
    dbus_conn_kick(&l->conn);
    return 0;
}

static void on_lost(void *arg, int r)
{
    struct dbus_link *l = arg;

    log_warning("dbus: %s lost its connection to the %s bus (%s); trying again every %d s",
                l->service, l->db->bus_label, strerror(r < 0 ? -r : r), DBUS_RETRY_SECONDS);
    /* A name answer the closing connection failed is no reason to wait one more period. */
    l->is_drop_wanted = false;
    link_down(l);
    retry_arm(l, DBUS_RETRY_SECONDS);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct dbus_link *l = arg;
    struct certd_err err = { 0 };
    (void)fd;
    (void)what;

    if (l->db->is_closed) {
        return;
    }
    if (l->is_drop_wanted) {
        l->is_drop_wanted = false;
        link_down(l);
        retry_arm(l, DBUS_RETRY_SECONDS);
        return;
    }
    if (l->conn.ev) {
        return;
    }
    int r = link_up(l, false, &err);
    if (r < 0) {
        /* Warned once when the connection went; each try is a debug line. */
        log_debug("dbus: %s cannot reconnect to the %s bus: %s", l->service, l->db->bus_label,
                  err.msg);
        retry_arm(l, DBUS_RETRY_SECONDS);
        return;
    }
    log_notice("dbus: %s connected to the %s bus again", l->service, l->db->bus_label);
}

static int link_init(struct dbus_link *l)
{
    l->retry = evtimer_new(l->conn.d->base, on_retry, l);
    return l->retry ? 0 : -ENOMEM;
}

/* The VMI CA's link: its objects are dbus-ca.c's. */
static int ca_link_attach(struct dbus_link *l, struct certd_err *err)
{
    return dbus_ca_attach(l->db->ca, err);
}

static void ca_link_detach(struct dbus_link *l)
{
    dbus_ca_detach(l->db->ca);
}

/* Link i: the managers' in order, then the VMI CA's; NULL after the last. */
static struct dbus_link *db_link(struct dbus *db, size_t i)
{
    if (i < db->n_mgrs) {
        return &db->mgrs[i].link;
    }
    return i == db->n_mgrs && db->ca ? &db->ca_link : NULL;
}

/* ---- life cycle ---- */

int dbus_start(struct daemon *d, struct dbus **ret, struct certd_err *err)
{
    _cleanup_(cleanup_dbus) struct dbus *db = NULL;
    struct dbus_link *l;
    char msg[CERTD_ERR_MSG_MAX];
    int r;

    assert_return(d && d->cfg && ret, -EINVAL);
    if (d->cfg->dbus_bus == CONFIG_DBUS_OFF) {
        *ret = NULL;
        return 0;
    }
    const struct sdlib *sd = sdlib_get(msg, sizeof(msg));
    if (!sd) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_UNAVAILABLE, "cannot load %s: %s", SDLIB_SONAME,
                       msg);
    }
    vtables_fix(sd);

    db = calloc(1, sizeof(*db));
    if (!db) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    db->d = d;
    db->sd = sd;
    db->kind = d->cfg->dbus_bus == CONFIG_DBUS_SYSTEM ? BUSEV_SYSTEM : BUSEV_USER;
    db->bus_label = d->cfg->dbus_bus == CONFIG_DBUS_SYSTEM ? "system" : "session";
    db->ca_link = (struct dbus_link){ .conn = { .d = d, .sd = sd },
                                      .db = db,
                                      .service = DBUS_CA_SERVICE,
                                      .attach = ca_link_attach,
                                      .detach = ca_link_detach };
    size_t n = manager_n_endpoints(d->manager);
    db->mgrs = calloc(n > 0 ? n : 1, sizeof(*db->mgrs));
    if (!db->mgrs) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        r = mgr_init(&db->mgrs[i], db, manager_endpoint_at(d->manager, i), err);
        db->n_mgrs = i + 1;
        if (r >= 0) {
            r = link_init(&db->mgrs[i].link);
            if (r < 0) {
                return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
            }
        }
        if (r < 0) {
            return r;
        }
    }
    r = dbus_ca_new(&db->ca_link.conn, &db->ca);
    if (r >= 0 && db->ca) {
        r = link_init(&db->ca_link);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    for (size_t i = 0; (l = db_link(db, i)); i++) {
        r = link_up(l, true, err);
        if (r < 0) {
            return r;
        }
    }
    log_info("dbus: serving %zu certificate endpoint%s%s on the %s bus, one connection each",
             db->n_mgrs, db->n_mgrs == 1 ? "" : "s", db->ca ? " and the VMI CA" : "",
             db->bus_label);
    *ret = TAKE_PTR(db);
    return 0;
}

void dbus_close(struct dbus *db)
{
    struct dbus_link *l;

    if (!db || db->is_closed) {
        return;
    }
    db->is_closed = true;
    for (size_t i = 0; (l = db_link(db, i)); i++) {
        if (l->retry) {
            (void)event_del(l->retry);
        }
        link_down(l);
    }
}

struct dbus *dbus_free(struct dbus *db)
{
    if (!db) {
        return NULL;
    }
    dbus_close(db);
    /* Jobs whose notifier never answered (notifier_free drops its callbacks). */
    while (db->jobs) {
        (void)job_free(db->jobs);
    }
    db->ca = dbus_ca_free(db->ca);
    if (db->ca_link.retry) {
        event_free(db->ca_link.retry);
    }
    for (size_t i = 0; i < db->n_mgrs; i++) {
        mgr_done(&db->mgrs[i]);
    }
    free(db->mgrs);
    free(db);
    return NULL;
}
