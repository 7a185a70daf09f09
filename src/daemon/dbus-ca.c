/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMI CA of IBM's flow on D-Bus (issue #7, seeds 000 and 002): phosphor-certificate-manager's
 * bmc-vmi-ca, served by certd's own CA (ca.h: the local signer or the exec helper), or in host
 * mode (signer off) by the host through pldmd.
 *
 *   xyz.openbmc_project.Certs.ca.authority.Manager
 *   /xyz/openbmc_project/certs/ca            org.freedesktop.DBus.ObjectManager
 *                                            xyz.openbmc_project.Certs.Authority  SignCSR(s) -> o
 *                                            xyz.openbmc_project.Collection.DeleteAll (as upstream)
 *   /xyz/openbmc_project/certs/ca/entry/<n>  xyz.openbmc_project.Certs.Entry
 *                                              ClientCertificate s, Status s (the State enum as
 *                                              "xyz.openbmc_project.Certs.Entry.State.Pending")
 *                                            xyz.openbmc_project.PLDM.Provider.Certs.Authority.CSR
 *                                              CSR s (const)
 *                                            xyz.openbmc_project.Object.Delete  Delete()
 *
 * SignCSR takes at most CA_CSR_MAX bytes (more, or nothing: InvalidArgument), makes entry n
 * (1, 2, ... never reused while certd runs) with Status Pending and the CSR, announces it with
 * InterfacesAdded from the manager path, hands the CSR to ca_sign and returns the path at once:
 * the bus never waits for a signature. A full signing queue answers Unavailable and makes no
 * entry; so does a full table of DBUS_CA_ENTRIES_MAX entries that are all still pending (a full
 * table with a finished entry drops the oldest finished one, with InterfacesRemoved). When the
 * signing ends, one PropertiesChanged on xyz.openbmc_project.Certs.Entry says how:
 *  - signed and recorded: ClientCertificate is the client certificate followed by the CA
 *    certificate(s) (PEM), Status Complete. Seed 000 hands the console both in one string, and
 *    bmcweb's /ibm/v1/Host/Actions/SignCSR passes ClientCertificate on unchanged as its
 *    "Certificate", so the console gets both through either path; the leaf comes first, so a
 *    reader that takes the first certificate gets the client's own;
 *  - refused for its content (the CSR is malformed, its signature is wrong, or policy forbids
 *    what it asks: ca.h's invalid-input and not-allowed classes): Status BadCSR, the meaning
 *    the interface gives that value;
 *  - a fault that is not the CSR's (storage, the helper failing or not ready, certd too busy or
 *    stopping): the entry is removed (InterfacesRemoved) and the reason logged. BadCSR would
 *    tell the console to fix a CSR that is fine, and a Pending that never ends would leave it
 *    waiting; an entry that vanishes before Complete or BadCSR means "not served: ask again".
 *    bmcweb, which waits for PropertiesChanged, answers 500 after its own timeout then. A fault
 *    known while SignCSR still runs is its error reply instead (dbus_reply_err), with no entry.
 * A signing that ends before SignCSR returns is announced too, right after the reply. A client
 * that subscribes to PropertiesChanged only after SignCSR returns (bmcweb does) can still miss
 * it; it should read Status after subscribing.
 *
 * Host mode ([ca] signer = off), upstream's flow for pldmd: SignCSR checks that the CSR parses
 * (csr_parse; InvalidArgument and no entry otherwise), makes a Pending entry and leaves it:
 * pldmd forwards the CSR to the host and writes the answer back with Properties.Set, Status
 * (one of the three State strings) and ClientCertificate ("" or PEM certificates that parse,
 * at most CA_EXEC_OUT_MAX bytes, no key); each write is checked, logged (never the
 * certificate) and announced with PropertiesChanged. With signer local or exec certd is the CA
 * and a write is NotAllowed: two writers of one result would race, and a write from outside
 * could only forge it. The properties are writable in both modes (as upstream's), so that a
 * refusal says why rather than PropertyReadOnly. Entries live until Delete, DeleteAll, the table's
 * limit or the end of certd; while no bus is attached they keep changing state, without signals,
 * and a connection that comes back serves them as they are (GetManagedObjects).
 *
 * Access control is the bus's, as for dbus.c's managers: the policy file lets only root own the
 * name and call the methods on the system bus, so the methods are SD_BUS_VTABLE_UNPRIVILEGED
 * (sd-bus's own check would ask the bus driver for the caller's credentials, blocking the loop).
 *
 * Entries are served through fallback vtables at the entry prefix and a node enumerator, so
 * attaching and detaching costs a fixed number of slots whatever the number of entries.
 * Invariants: an entry is in the table (owner set) or orphaned (owner NULL: deleted while its
 * signing ran; ca_sign's done frees it); each entry owns its strings; the CA's done is called
 * exactly once per accepted signing (ca.h), so no entry leaks.
 *
 * dbus_ca_attach registers the objects on the CA's own connection; dbus.c requests the name on
 * it (blocking at start
 * only; after a reconnect asynchronously, so the loop never waits on the bus), and the name goes
 * back when the connection closes; dbus_ca_detach drops the slots. Every signing request and its
 * outcome are logged at notice level, with the caller's unique name; never the CSR or the
 * certificate.
 *
 * Loop thread only.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "csr/csr.h"
#include "daemon.h"
#include "dbus-int.h"
#include "log/log.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/span.h"
#include "x509/bundle.h"

/* Non-const arrays: sd-bus takes interface lists as char ** (InterfacesAdded/Removed). */
static char iface_authority[] = "xyz.openbmc_project.Certs.Authority";
static char iface_delete_all[] = "xyz.openbmc_project.Collection.DeleteAll";
static char iface_entry[] = "xyz.openbmc_project.Certs.Entry";
static char iface_csr[] = "xyz.openbmc_project.PLDM.Provider.Certs.Authority.CSR";
static char iface_delete[] = DBUS_IFACE_OBJECT_DELETE;
static char prop_cert[] = "ClientCertificate";
static char prop_status[] = "Status";

static char *entry_ifaces[] = { iface_entry, iface_csr, iface_delete, NULL };

/* "/xyz/openbmc_project/certs/ca/entry/" and a uint64_t's 20 digits. */
#define ENTRY_PATH_MAX (sizeof(DBUS_CA_ENTRY_PREFIX "/") + 20u)

/* What requester names a caller without a unique name (a direct connection). */
#define REQUESTER_DEFAULT "dbus"

enum entry_state {
    ENTRY_PENDING,
    ENTRY_BAD_CSR,
    ENTRY_COMPLETE,
    ENTRY_FAILED, /* not the CSR's fault: never shown, the entry goes (see the file comment) */
    ENTRY_STATE_MAX
};

struct ca_entry {
    struct dbus_ca *owner; /* NULL: orphaned, freed by its signing's done */
    struct ca_entry *prev, *next;
    uint64_t id;
    char path[ENTRY_PATH_MAX];
    char *csr;  /* as received, at most CA_CSR_MAX bytes */
    char *cert; /* "" until Complete */
    enum entry_state state;
    struct certd_err err; /* ENTRY_BAD_CSR, ENTRY_FAILED: why */
    bool is_signing;      /* ca_sign's done has not run yet */
    bool is_announced;    /* SignCSR has returned it (InterfacesAdded sent, when attached) */
};

enum {
    SLOT_OBJECT_MANAGER,
    SLOT_AUTHORITY,
    SLOT_DELETE_ALL,
    SLOT_ENTRY,
    SLOT_CSR,
    SLOT_DELETE,
    SLOT_ENUMERATOR,
    SLOT_MAX
};

struct dbus_ca {
    struct dbus_conn *conn; /* borrowed */
    struct ca *ca;          /* borrowed: the daemon's; NULL in host mode */
    bool is_host;           /* [ca] signer = off: pldmd answers the entries (Properties.Set) */
    sd_bus_slot *slots[SLOT_MAX];
    bool is_attached;              /* objects registered and the name requested on conn's bus */
    struct ca_entry *first, *last; /* oldest first */
    size_t n_entries;
    uint64_t last_id;
};

static const char *state_name(enum entry_state s)
{
    switch (s) {
    case ENTRY_BAD_CSR:
        return "xyz.openbmc_project.Certs.Entry.State.BadCSR";
    case ENTRY_COMPLETE:
        return "xyz.openbmc_project.Certs.Entry.State.Complete";
    case ENTRY_PENDING:
    case ENTRY_FAILED:
    case ENTRY_STATE_MAX:
        break;
    }
    return "xyz.openbmc_project.Certs.Entry.State.Pending";
}

static struct ca_entry *entry_free(struct ca_entry *e)
{
    if (e) {
        free(e->csr);
        free(e->cert);
        free(e);
    }
    return NULL;
}

/* The bus when our objects are on it; NULL otherwise (nothing is sent then). */
static sd_bus *ca_bus(const struct dbus_ca *ca)
{
    return ca->is_attached ? dbus_conn_bus(ca->conn) : NULL;
}

static void entry_link(struct dbus_ca *ca, struct ca_entry *e)
{
    e->owner = ca;
    e->prev = ca->last;
    if (ca->last) {
        ca->last->next = e;
    } else {
        ca->first = e;
    }
    ca->last = e;
    ca->n_entries++;
}

static void entry_unlink(struct dbus_ca *ca, struct ca_entry *e)
{
    assert(e->owner == ca);
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        ca->first = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        ca->last = e->prev;
    }
    e->prev = e->next = NULL;
    e->owner = NULL;
    ca->n_entries--;
}

/*
 * Take e (in ca's table) off the bus and out of the table: InterfacesRemoved when clients know
 * it, then freed, or orphaned while its signing runs (the done frees it).
 */
static void entry_remove(struct dbus_ca *ca, struct ca_entry *e)
{
    if (ca_bus(ca) && e->is_announced) {
        dbus_emit_removed(ca->conn, e->path, entry_ifaces);
    }
    entry_unlink(ca, e);
    if (!e->is_signing) {
        entry_free(e);
    }
}

/*
 * The entry at exactly path: an entry has one path, the one it was announced with, so that
 * ".../entry/01" or ".../entry/+1" name no object (GetManagedObjects would not list them, and a
 * client must not reach an entry by a name it was never given). At most DBUS_CA_ENTRIES_MAX
 * entries: a linear search.
 */
static struct ca_entry *entry_find(const struct dbus_ca *ca, const char *path)
{
    for (struct ca_entry *e = ca->first; e; e = e->next) {
        if (strcmp(e->path, path) == 0) {
            return e;
        }
    }
    return NULL;
}

/* ---- the signing's outcome ---- */

static bool is_csr_fault(const struct certd_err *err)
{
    enum certd_errclass cls = err_code_class(err->code);
    return cls == CERTD_CLASS_INVALID_INPUT || cls == CERTD_CLASS_NOT_ALLOWED;
}

/* The client certificate and then the CA's (see the file comment). 0, -ENOMEM, -E2BIG. */
static int entry_take_cert(struct ca_entry *e, const struct ca_sign_result *res)
{
    size_t ca_len = res->pub && res->pub->ca_pem ? res->pub->ca_pem_len : 0, len;

    if (!size_add(res->cert_pem_len, ca_len, &len) || !size_add(len, 1, &len)) {
        return -E2BIG;
    }
    char *both = malloc(len);
    if (!both) {
        return -ENOMEM;
    }
    memcpy(both, res->cert_pem, res->cert_pem_len);
    if (ca_len) {
        memcpy(both + res->cert_pem_len, res->pub->ca_pem, ca_len);
    }
    both[len - 1] = '\0';
    free(e->cert);
    e->cert = both;
    return 0;
}

/* Record res in e and log it (never the CSR or the certificate). */
static void entry_settle(struct ca_entry *e, const struct ca_sign_result *res)
{
    int r = res->r;

    if (r == 0) {
        r = entry_take_cert(e, res);
        if (r == 0) {
            e->state = ENTRY_COMPLETE;
            log_notice("VMI CA: %s complete: serial %s", e->path, res->serial);
            return;
        }
        /* Recorded in the issuance log but not handed out: the client asks again. */
        (void)err_set(&e->err, r, CERTD_E_NO_MEMORY, "no memory for the signed certificate");
    } else if (is_csr_fault(&res->err)) {
        e->err = res->err;
        e->state = ENTRY_BAD_CSR;
        log_notice("VMI CA: %s BadCSR: %s", e->path, e->err.msg);
        return;
    } else if (err_is_set(&res->err)) {
        e->err = res->err;
    } else {
        (void)err_set(&e->err, r, CERTD_E_INTERNAL, "signing failed: %s", strerror(-r));
    }
    e->state = ENTRY_FAILED;
    log_notice("VMI CA: %s not signed, entry removed: %s", e->path, e->err.msg);
}

/* Tell clients how e's signing ended (e is announced and in the table). */
static void entry_publish(struct ca_entry *e)
{
    struct dbus_ca *ca = e->owner;
    char *complete[] = { prop_cert, prop_status, NULL };
    char *bad[] = { prop_status, NULL };

    if (e->state == ENTRY_FAILED) {
        entry_remove(ca, e);
        return;
    }
    /* Without a bus nothing is said: a connection that comes back serves the new state. */
    if (ca_bus(ca)) {
        dbus_emit_changed(ca->conn, e->path, iface_entry,
                          e->state == ENTRY_COMPLETE ? complete : bad);
    }
}

static void entry_signed(const struct ca_sign_result *res, void *arg)
{
    struct ca_entry *e = arg;

    e->is_signing = false;
    if (!e->owner) {
        log_notice("VMI CA: %s ended after it was deleted (%s)", e->path,
                   res->r == 0 ? "signed" : res->err.msg);
        entry_free(e);
        return;
    }
    entry_settle(e, res);
    if (e->is_announced) {
        entry_publish(e);
    }
    /* Otherwise ca_sign called done before returning: SignCSR acts on the outcome itself. */
}

/* ---- methods ---- */

/* Room for one more entry: drop the oldest finished one at the limit. false: all pending. */
static bool ca_make_room(struct dbus_ca *ca)
{
    if (ca->n_entries < DBUS_CA_ENTRIES_MAX) {
        return true;
    }
    for (struct ca_entry *e = ca->first; e; e = e->next) {
        /* A host-mode entry waits for pldmd without a signing of ours: pending too. */
        if (!e->is_signing && e->state != ENTRY_PENDING) {
            log_info("VMI CA: %s dropped: %u entries kept at most", e->path, DBUS_CA_ENTRIES_MAX);
            entry_remove(ca, e);
            return true;
        }
    }
    return false;
}

static int method_sign_csr(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_ca *ca = userdata;
    const struct sdlib *sd = ca->conn->sd;
    const char *csr = NULL;
    (void)ret_error;

    int r = sd->sd_bus_message_read(m, "s", &csr);
    if (r < 0) {
        return r; /* sd-bus answers InvalidArgs */
    }
    const char *who = sd->sd_bus_message_get_sender(m);
    if (!who) {
        who = REQUESTER_DEFAULT;
    }
    /* sd-bus has checked that csr is valid UTF-8 without NUL: only its size is left. */
    size_t len = strlen(csr);
    if (len == 0 || len > (size_t)CA_CSR_MAX) {
        log_notice("VMI CA: SignCSR from %s refused: CSR of %zu bytes", who, len);
        if (len == 0) {
            return dbus_reply_errorf(ca->conn, m, DBUS_E_INVALID_ARGUMENT, "CSR is empty");
        }
        return dbus_reply_errorf(ca->conn, m, DBUS_E_INVALID_ARGUMENT,
                                 "CSR is longer than %u bytes", CA_CSR_MAX);
    }
    if (ca->is_host) {
        /* pldmd forwards the CSR as it is: a CSR that does not parse would only come back from
         * the host as an error much later, or never. */
        _cleanup_(cleanup_X509_REQ) X509_REQ *req = NULL;
        struct certd_err err = { 0 };
        r = csr_parse(ca->conn->d->libctx, ca->conn->d->propq, csr, len, CA_CSR_MAX, &req, &err);
        if (r < 0) {
            log_notice("VMI CA: SignCSR from %s refused: %s", who, err.msg);
            return dbus_reply_errorf(ca->conn, m, DBUS_E_INVALID_ARGUMENT, "CSR: %s", err.msg);
        }
    }
    /* Allocated before room is made: a failure must not cost a finished entry. */
    struct ca_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->csr = strdup(csr)) || !(e->cert = strdup(""))) {
        entry_free(e);
        log_err("VMI CA: SignCSR from %s: out of memory", who);
        return dbus_reply_errorf(ca->conn, m, DBUS_E_INTERNAL_FAILURE, "out of memory");
    }
    if (!ca_make_room(ca)) {
        entry_free(e);
        log_notice("VMI CA: SignCSR from %s refused: %u signings pending", who,
                   DBUS_CA_ENTRIES_MAX);
        return dbus_reply_errorf(ca->conn, m, DBUS_E_UNAVAILABLE,
                                 "%u signings are pending; try again later", DBUS_CA_ENTRIES_MAX);
    }
    e->id = ++ca->last_id;
    (void)snprintf(e->path, sizeof(e->path), DBUS_CA_ENTRY_PREFIX "/%" PRIu64, e->id);
    e->state = ENTRY_PENDING;
    if (ca->is_host) {
        entry_link(ca, e);
        e->is_announced = true;
        log_notice("VMI CA: SignCSR from %s: %s, pending for the host", who, e->path);
        if (ca_bus(ca)) {
            dbus_emit_added(ca->conn, e->path, entry_ifaces);
        }
        return sd->sd_bus_reply_method_return(m, "o", e->path);
    }
    e->is_signing = true;
    /* In the table before ca_sign: its done may run before ca_sign returns. */
    entry_link(ca, e);
    log_notice("VMI CA: SignCSR from %s: %s", who, e->path);

    r = ca_sign(ca->ca, span_make(csr, len), who, entry_signed, e);
    if (r < 0) {
        e->is_signing = false;
        entry_remove(ca, e); /* never announced: no signal */
        if (r == -EAGAIN) {
            log_notice("VMI CA: SignCSR from %s refused: the signing queue is full", who);
            return dbus_reply_errorf(ca->conn, m, DBUS_E_UNAVAILABLE,
                                     "the CA's signing queue is full; try again later");
        }
        log_err("VMI CA: SignCSR from %s: %s", who, strerror(-r));
        return dbus_reply_errorf(ca->conn, m, DBUS_E_INTERNAL_FAILURE, "cannot queue the CSR");
    }
    if (!e->is_signing && e->state == ENTRY_FAILED) {
        /* Failed before ca_sign returned (certd too busy, stopping): the caller hears it now. */
        struct certd_err err = e->err;
        entry_remove(ca, e);
        return dbus_reply_err(ca->conn, m, &err);
    }
    e->is_announced = true;
    if (ca_bus(ca)) {
        dbus_emit_added(ca->conn, e->path, entry_ifaces);
    }
    r = sd->sd_bus_reply_method_return(m, "o", e->path);
    if (!e->is_signing) {
        /* Signed before ca_sign returned: the completion is announced all the same, after the
         * reply, so that a client that waits for PropertiesChanged of the path it was given
         * can see it (it may still subscribe too late: the file comment says so). */
        entry_publish(e);
    }
    return r;
}

static int method_delete_all(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct dbus_ca *ca = userdata;
    const char *who = ca->conn->sd->sd_bus_message_get_sender(m);
    size_t n = ca->n_entries;
    (void)ret_error;

    for (struct ca_entry *e = ca->first, *next; e; e = next) {
        next = e->next;
        entry_remove(ca, e);
    }
    log_notice("VMI CA: DeleteAll from %s: %zu entries deleted", who ? who : REQUESTER_DEFAULT, n);
    return ca->conn->sd->sd_bus_reply_method_return(m, "");
}

static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct ca_entry *e = userdata;
    struct dbus_ca *ca = e->owner;
    const char *who = ca->conn->sd->sd_bus_message_get_sender(m);
    (void)ret_error;

    log_notice("VMI CA: %s deleted by %s%s", e->path, who ? who : REQUESTER_DEFAULT,
               e->is_signing ? " while pending" : "");
    entry_remove(ca, e);
    return ca->conn->sd->sd_bus_reply_method_return(m, "");
}

/* ---- properties ---- */

/* Every property of an entry: they are all strings the entry owns. */
static int entry_property(sd_bus *bus, const char *path, const char *interface,
                          const char *property, sd_bus_message *reply, void *userdata,
                          sd_bus_error *ret_error)
{
    const struct ca_entry *e = userdata;
    const char *v;
    (void)bus;
    (void)path;
    (void)interface;
    (void)ret_error;

    if (strcmp(property, "ClientCertificate") == 0) {
        v = e->cert;
    } else if (strcmp(property, "Status") == 0) {
        v = state_name(e->state);
    } else if (strcmp(property, "CSR") == 0) {
        v = e->csr;
    } else {
        return -ENOENT;
    }
    return e->owner->conn->sd->sd_bus_message_append_basic(reply, 's', v);
}

/* ---- writes (host mode: pldmd answers for the host) ---- */

/* Fill ret_error for a property write refused; returns what a setter returns (-errno). */
static int set_errorf(const struct sdlib *sd, sd_bus_error *ret_error, const char *name,
                      const char *fmt, ...) _printf_(4, 5);
static int set_errorf(const struct sdlib *sd, sd_bus_error *ret_error, const char *name,
                      const char *fmt, ...)
{
    char msg[CERTD_ERR_MSG_MAX];
    char safe[CERTD_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Library messages may quote subjects: the bus takes only valid UTF-8. */
    dbus_text_safe(msg, safe, sizeof(safe));
    int r = sd->sd_bus_error_set(ret_error, name, safe);
    return r < 0 ? r : -EINVAL;
}

static bool state_parse(const char *s, enum entry_state *ret)
{
    static const enum entry_state shown[] = { ENTRY_PENDING, ENTRY_BAD_CSR, ENTRY_COMPLETE };
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        if (strcmp(s, state_name(shown[i])) == 0) {
            *ret = shown[i];
            return true;
        }
    }
    return false;
}

int dbus_ca_check_client_cert(OSSL_LIB_CTX *libctx, const char *propq, const char *v, size_t len,
                              size_t *ret_n, struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;

    if (len > CA_EXEC_OUT_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "ClientCertificate is longer than %u bytes", CA_EXEC_OUT_MAX);
    }
    if (len == 0) {
        *ret_n = 0;
        return 0;
    }
    assert_return(v && ret_n, -EINVAL);
    int r = bundle_parse(libctx, propq, span_make(v, len), CA_EXEC_OUT_MAX, &b, err);
    if (r < 0) {
        return r;
    }
    if (b->is_der) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "ClientCertificate must be PEM certificates");
    }
    if (b->key) {
        /* Never kept, never shown: a key has no place in what the console gets. */
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "ClientCertificate must hold certificates only, not a private key");
    }
    *ret_n = bundle_n_certs(b);
    return 0;
}

static int entry_set(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *value, void *userdata, sd_bus_error *ret_error)
{
    struct ca_entry *e = userdata;
    struct dbus_ca *ca = e->owner;
    const struct sdlib *sd = ca->conn->sd;
    const char *who = sd->sd_bus_message_get_sender(value);
    struct certd_err err = { 0 };
    const char *v = NULL;
    size_t n_certs = 0;
    (void)bus;
    (void)path;
    (void)interface;

    if (!who) {
        who = REQUESTER_DEFAULT;
    }
    if (!ca->is_host) {
        /* Two writers of one result would race: with a signer, certd's is the only one. */
        log_notice("VMI CA: %s: write of %s by %s refused: certd signs", e->path, property, who);
        return set_errorf(sd, ret_error, DBUS_E_NOT_ALLOWED,
                          "certd's CA signs these entries ([ca] signer = %s)",
                          config_signer_name(ca_signer(ca->ca)));
    }
    int r = sd->sd_bus_message_read_basic(value, 's', &v);
    if (r < 0) {
        return r;
    }
    /* sd-bus has checked that v is valid UTF-8 without NUL. */
    size_t len = strlen(v);
    char *changed[] = { NULL, NULL };
    if (strcmp(property, "Status") == 0) {
        enum entry_state state;
        if (!state_parse(v, &state)) {
            char shown[96];
            dbus_text_safe(v, shown, sizeof(shown));
            log_notice("VMI CA: %s: Status '%s' from %s refused", e->path, shown, who);
            return set_errorf(sd, ret_error, DBUS_E_INVALID_ARGUMENT,
                              "Status must be %s, %s or %s, not '%s'", state_name(ENTRY_PENDING),
                              state_name(ENTRY_BAD_CSR), state_name(ENTRY_COMPLETE), shown);
        }
        e->state = state;
        changed[0] = prop_status;
        log_notice("VMI CA: %s: Status set to %s by %s", e->path, state_name(state), who);
    } else {
        r = dbus_ca_check_client_cert(ca->conn->d->libctx, ca->conn->d->propq, v, len, &n_certs,
                                      &err);
        if (r < 0) {
            log_notice("VMI CA: %s: ClientCertificate from %s refused: %s", e->path, who, err.msg);
            /* bundle_parse's messages say "the input": name the property. */
            bool is_named = strncmp(err.msg, "ClientCertificate", 17) == 0;
            return set_errorf(sd, ret_error, DBUS_E_INVALID_ARGUMENT, "%s%s",
                              is_named ? "" : "ClientCertificate: ", err.msg);
        }
        char *copy = strdup(v);
        if (!copy) {
            return set_errorf(sd, ret_error, DBUS_E_INTERNAL_FAILURE, "out of memory");
        }
        free(e->cert);
        e->cert = copy;
        changed[0] = prop_cert;
        log_notice("VMI CA: %s: ClientCertificate set by %s (%zu certificate%s, %zu bytes)",
                   e->path, who, n_certs, n_certs == 1 ? "" : "s", len);
    }
    dbus_emit_changed(ca->conn, e->path, iface_entry, changed);
    return 0;
}

/* ---- vtables: static and non-const, fixed by sdlib_vtable_fix before registering ---- */

static sd_bus_vtable authority_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("SignCSR", "s", SD_BUS_PARAM(CSR), "o", SD_BUS_PARAM(path),
                             method_sign_csr, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable delete_all_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD("DeleteAll", "", "", method_delete_all, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable entry_vtable[] = {
    SDLIB_VTABLE_START(0),
    /* Writable as upstream's, for pldmd in host mode (entry_set refuses writes otherwise);
     * unprivileged for the reason the methods are (the file comment). */
    SD_BUS_WRITABLE_PROPERTY("ClientCertificate", "s", entry_property, entry_set, 0,
                             SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_WRITABLE_PROPERTY("Status", "s", entry_property, entry_set, 0,
                             SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable csr_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_PROPERTY("CSR", "s", entry_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_VTABLE_END,
};

static sd_bus_vtable delete_vtable[] = {
    SDLIB_VTABLE_START(0),
    SD_BUS_METHOD("Delete", "", "", method_delete, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

/* The entry at path, for the fallback vtables: 1 and *ret_found, or 0 (no such object). */
static int entry_lookup(sd_bus *bus, const char *path, const char *interface, void *userdata,
                        void **ret_found, sd_bus_error *ret_error)
{
    struct ca_entry *e = entry_find(userdata, path);
    (void)bus;
    (void)interface;
    (void)ret_error;
    if (!e) {
        return 0;
    }
    *ret_found = e;
    return 1;
}

/* Every entry's path (introspection, GetManagedObjects). sd-bus frees the list with free. */
static int entry_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                           sd_bus_error *ret_error)
{
    const struct dbus_ca *ca = userdata;
    char **v = calloc(ca->n_entries + 1, sizeof(*v));
    size_t n = 0;
    (void)bus;
    (void)prefix;
    (void)ret_error;

    if (!v) {
        return -ENOMEM;
    }
    for (const struct ca_entry *e = ca->first; e && n < ca->n_entries; e = e->next) {
        char *p = strdup(e->path);
        if (!p) {
            while (n > 0) {
                free(v[--n]);
            }
            free(v);
            return -ENOMEM;
        }
        v[n++] = p;
    }
    *ret_nodes = v;
    return 0;
}

/* ---- life cycle ---- */

int dbus_ca_new(struct dbus_conn *conn, struct dbus_ca **ret)
{
    assert_return(conn && conn->d && ret, -EINVAL);

    struct dbus_ca *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        return -ENOMEM;
    }
    ca->conn = conn;
    /* Without a signer of certd's, the VMI CA is the host's, reached through pldmd. */
    ca->is_host = !conn->d->ca || ca_signer(conn->d->ca) == CONFIG_SIGNER_OFF;
    ca->ca = ca->is_host ? NULL : conn->d->ca;
    *ret = ca;
    return 0;
}

int dbus_ca_attach(struct dbus_ca *ca, struct certd_err *err)
{
    assert_return(ca && !ca->is_attached, -EINVAL);
    const struct sdlib *sd = ca->conn->sd;
    sd_bus *bus = dbus_conn_bus(ca->conn);
    static const struct {
        unsigned slot;
        const char *iface;
        sd_bus_vtable *vtable;
    } objects[] = {
        { SLOT_AUTHORITY, iface_authority, authority_vtable },
        { SLOT_DELETE_ALL, iface_delete_all, delete_all_vtable },
    },
      entries[] = {
          { SLOT_ENTRY, iface_entry, entry_vtable },
          { SLOT_CSR, iface_csr, csr_vtable },
          { SLOT_DELETE, iface_delete, delete_vtable },
      };
    const char *what = "the object manager";
    int r;

    if (!bus) {
        return err_set(err, -ENOTCONN, CERTD_E_UNAVAILABLE, "VMI CA: not connected to the bus");
    }
    r = sd->sd_bus_add_object_manager(bus, &ca->slots[SLOT_OBJECT_MANAGER], DBUS_CA_PATH);
    for (size_t i = 0; r >= 0 && i < sizeof(objects) / sizeof(objects[0]); i++) {
        what = objects[i].iface;
        sdlib_vtable_fix(sd, objects[i].vtable);
        r = sd->sd_bus_add_object_vtable(bus, &ca->slots[objects[i].slot], DBUS_CA_PATH,
                                         objects[i].iface, objects[i].vtable, ca);
    }
    for (size_t i = 0; r >= 0 && i < sizeof(entries) / sizeof(entries[0]); i++) {
        what = entries[i].iface;
        sdlib_vtable_fix(sd, entries[i].vtable);
        r = sd->sd_bus_add_fallback_vtable(bus, &ca->slots[entries[i].slot], DBUS_CA_ENTRY_PREFIX,
                                           entries[i].iface, entries[i].vtable, entry_lookup, ca);
    }
    if (r >= 0) {
        what = "the entry enumerator";
        r = sd->sd_bus_add_node_enumerator(bus, &ca->slots[SLOT_ENUMERATOR], DBUS_CA_ENTRY_PREFIX,
                                           entry_enumerate, ca);
    }
    if (r < 0) {
        dbus_slots_drop(ca->conn->sd, ca->slots, SLOT_MAX);
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                       "VMI CA: cannot register %s: %s", what, strerror(-r));
    }
    ca->is_attached = true;
    return 0;
}

void dbus_ca_detach(struct dbus_ca *ca)
{
    if (!ca || !ca->is_attached) {
        return;
    }
    dbus_slots_drop(ca->conn->sd, ca->slots, SLOT_MAX);
    ca->is_attached = false;
}

struct dbus_ca *dbus_ca_free(struct dbus_ca *ca)
{
    if (!ca) {
        return NULL;
    }
    dbus_ca_detach(ca);
    /* Detached: no signal; a pending entry is orphaned. */
    for (struct ca_entry *e = ca->first, *next; e; e = next) {
        next = e->next;
        entry_remove(ca, e);
    }
    free(ca);
    return NULL;
}
