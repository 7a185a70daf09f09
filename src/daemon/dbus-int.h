/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What dbus.c (the certificate managers) shares with dbus-ca.c (the VMI CA): the connection
 * type, the error replies, and the CA part's life cycle. Not for other modules: they use dbus.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>
#include <systemd/sd-bus.h>

#include "busev.h"
#include "error/error.h"
#include "sdlib.h"
#include "util/limits.h"

struct daemon;

/* Upstream error names (phosphor-dbus-interfaces). */
#define DBUS_E_INVALID_CERTIFICATE "xyz.openbmc_project.Certs.Error.InvalidCertificate"
#define DBUS_E_NOT_ALLOWED         "xyz.openbmc_project.Common.Error.NotAllowed"
#define DBUS_E_INVALID_ARGUMENT    "xyz.openbmc_project.Common.Error.InvalidArgument"
#define DBUS_E_INTERNAL_FAILURE    "xyz.openbmc_project.Common.Error.InternalFailure"
#define DBUS_E_UNAVAILABLE         "xyz.openbmc_project.Common.Error.Unavailable"
#define DBUS_E_RESOURCE_NOT_FOUND  "xyz.openbmc_project.Common.Error.ResourceNotFound"
#define DBUS_E_TOO_MANY_RESOURCES  "xyz.openbmc_project.Common.Error.TooManyResources"

#define DBUS_CERTS_ROOT          "/xyz/openbmc_project/certs"
#define DBUS_IFACE_OBJECT_DELETE "xyz.openbmc_project.Object.Delete"

/* Object paths and bus names we make: the longest endpoint name, an id, "/csr" fit easily. */
#define DBUS_PATH_MAX    128u
#define DBUS_SERVICE_MAX 128u

/*
 * One part's connection (a manager's, or the VMI CA's): each part owns its one bus name on a
 * connection of its own, as upstream runs one process per name (dbus.h says why). Owned by
 * dbus.c, which makes, loses and remakes each one on its own; a part only borrows its own.
 */
struct dbus_conn {
    struct daemon *d;       /* borrowed */
    const struct sdlib *sd; /* libsystemd */
    struct busev *ev;       /* NULL while not connected (closing, or reconnecting) */
};

/* The bus, or NULL while not connected: nothing is sent then. */
sd_bus *dbus_conn_bus(const struct dbus_conn *c);

/*
 * After queueing messages outside a callback of the bus (a worker's done, a signing's done):
 * register their write interest (busev_kick). Harmless inside a callback, or when c is not
 * connected.
 */
void dbus_conn_kick(const struct dbus_conn *c);

/* Unref every non-NULL slot of slots[0..n) and set it to NULL. */
void dbus_slots_drop(const struct sdlib *sd, sd_bus_slot **slots, size_t n);

/*
 * Signals from the ObjectManager above path (InterfacesAdded / InterfacesRemoved of ifaces), and
 * PropertiesChanged of props (NULL: every property of iface that emits changes). Nothing when c
 * is not connected; a failure is logged (a warning), never returned: the state they describe is
 * already changed and a client reads it again. Each kicks the connection.
 */
void dbus_emit_added(const struct dbus_conn *c, const char *path, char **ifaces);
void dbus_emit_removed(const struct dbus_conn *c, const char *path, char **ifaces);
void dbus_emit_changed(const struct dbus_conn *c, const char *path, const char *iface,
                       char **props);

/*
 * Reply to call m with the D-Bus error for err: the upstream name its code maps to
 * (CERTD_E_CERT_* and the other content errors InvalidCertificate, input and argument errors
 * InvalidArgument, policy refusals NotAllowed, a full queue Unavailable, CERTD_E_INTERNAL,
 * CERTD_E_STORAGE and -ENOMEM InternalFailure) and err->msg as its message (never key material:
 * messages of certd_err never hold any). Returns what a method handler returns: 1 (answered,
 * or nothing to answer: m came over a connection that is gone), or sd-bus's -errno when the
 * reply cannot be sent (sd-bus then answers from the errno itself).
 */
int dbus_reply_err(const struct dbus_conn *c, sd_bus_message *m, const struct certd_err *err);

/* Reply with error name and a printf message; returns as dbus_reply_err. */
int dbus_reply_errorf(const struct dbus_conn *c, sd_bus_message *m, const char *name,
                      const char *fmt, ...) _printf_(4, 5);

/*
 * The D-Bus error name for a certd_err code (the table dbus_reply_err uses): content errors of
 * an upload InvalidCertificate, other input errors InvalidArgument, policy refusals and
 * conflicts (duplicate, limit reached) NotAllowed as upstream, not found ResourceNotFound,
 * unavailable Unavailable, everything else (CERTD_E_OK included) InternalFailure. Pure.
 */
const char *dbus_error_name(enum certd_errc code);

/*
 * Copy in (nullable: "") into out (size > 0), always NUL-terminated and valid UTF-8 without
 * control characters: control characters and bytes that are not UTF-8 become "\xNN"; what
 * does not fit is cut at a character boundary. For caller strings in messages and logs. Pure.
 */
void dbus_text_safe(const char *in, char *out, size_t size);

/* ---- the VMI CA (dbus-ca.c) ---- */

#define DBUS_CA_SERVICE      "xyz.openbmc_project.Certs.ca.authority.Manager"
#define DBUS_CA_PATH         DBUS_CERTS_ROOT "/ca"
#define DBUS_CA_ENTRY_PREFIX DBUS_CA_PATH "/entry"
/* Entries kept at most; at the limit, SignCSR drops the oldest finished entry (InterfacesRemoved)
 * or, when every entry is still pending, fails with Unavailable. */
#define DBUS_CA_ENTRIES_MAX 64u

struct dbus_ca;

/*
 * The VMI CA part, for conn (borrowed; outlives it; the CA's own connection). Always made: with
 * the daemon's [ca] signer local or exec certd signs the entries; with signer off (or no CA)
 * it serves in host mode, where pldmd answers each entry through Properties.Set (dbus-ca.c).
 * 0 with *ret, -ENOMEM, -EINVAL.
 */
_must_check_ int dbus_ca_new(struct dbus_conn *conn, struct dbus_ca **ret);

/*
 * The CA's connection is up (at start, and again after a reconnect): register the objects (the
 * manager and every entry kept). dbus.c then requests DBUS_CA_SERVICE on that connection, so
 * that the objects are in place when the name appears, and never waits for the bus on the loop
 * (a blocking request at start only). 0, or -errno with err (-ENOMEM, sd-bus's errors).
 */
_must_check_ int dbus_ca_attach(struct dbus_ca *ca, struct certd_err *err);

/*
 * The connection goes away (lost, or closing): drop every slot; entries are kept. The name is
 * given back by closing the connection (no ReleaseName round trip on the loop).
 */
void dbus_ca_detach(struct dbus_ca *ca);

/*
 * Free. Signings in flight are not cancelled (ca.h calls their done exactly once): their entries
 * are orphaned and freed by that call; dbus_free is called after ca_free, so none is left then.
 */
struct dbus_ca *dbus_ca_free(struct dbus_ca *ca);

/*
 * Host mode: what pldmd may write to an entry's ClientCertificate (v, len bytes, no NUL
 * inside): "" or PEM certificate(s) that parse (bundle_parse), at most CA_EXEC_OUT_MAX bytes,
 * no private key, not DER. 0 with the number of certificates in *ret_n (0 for ""), or -errno
 * with err: -E2BIG CERTD_E_INPUT_TOO_LARGE, bundle_parse's errors, -EBADMSG
 * CERTD_E_INPUT_GARBAGE for DER, -EINVAL CERTD_E_FIELD_INVALID for a key. Pure, thread-safe.
 */
_must_check_ int dbus_ca_check_client_cert(OSSL_LIB_CTX *libctx, const char *propq, const char *v,
                                           size_t len, size_t *ret_n, struct certd_err *err);
