/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The D-Bus front end (issue #7, seed 002): OpenBMC's phosphor-certificate-manager API, with
 * its names, paths, signatures, errors and signals, so that bmcweb, pldmd, busctl and scripts
 * written for OpenBMC drive certd unchanged, over the same state as the Redfish front end.
 *
 * Bus: [dbus] bus = system | session | off (config.h). Each name below has a connection of its
 * own, as upstream runs one process per name: phosphor-objmgr keeps one well-known name per
 * connection and credits InterfacesAdded/Removed only to it, so a connection owning several
 * names would leave bmcweb's collections stale. Each connection is lost and made again alone.
 *
 * Per [endpoint] NAME of type T (server, client, authority):
 *   bus name   xyz.openbmc_project.Certs.Manager.<Type>.<Name>   Type Server/Client/Authority,
 *              Name the endpoint name with its first letter upper-cased ("https" -> "Https")
 *   manager    /xyz/openbmc_project/certs/<t>/<name>              t server/client/authority
 *     org.freedesktop.DBus.ObjectManager
 *     xyz.openbmc_project.Certs.Install       Install(s path) -> s object path
 *     xyz.openbmc_project.Certs.CSR.Create    GenerateCSR(as s s s s s s s s x s s as s s s s s)
 *                                             -> s (authority: NotAllowed)
 *     xyz.openbmc_project.Certs.InstallAll    InstallAll(s path) -> ao (server, client: NotAllowed)
 *     xyz.openbmc_project.Certs.ReplaceAll    ReplaceAll(s path) -> ao (server, client: NotAllowed)
 *     xyz.openbmc_project.Collection.DeleteAll DeleteAll()
 *   (every manager offers all five, as upstream's; the type decides what they allow)
 *   certificates  <manager>/<n>, n = 1, 2, ... never reused while certd runs
 *     xyz.openbmc_project.Certs.Certificate   CertificateString s, KeyUsage as, Issuer s,
 *                                             Subject s, ValidNotAfter t, ValidNotBefore t
 *                                             (seconds since the epoch), read-only
 *     xyz.openbmc_project.Certs.Replace       Replace(s path)
 *     xyz.openbmc_project.Object.Delete       Delete()
 *   the CSR    <manager>/csr (after the first GenerateCSR since start)
 *     xyz.openbmc_project.Certs.CSR           CSR() -> s
 *
 * And the VMI CA of IBM's flow (dbus-ca.c): signed by certd with [ca] signer local or exec; with
 * signer off in "host" mode, where pldmd answers each entry (Properties.Set), as upstream's:
 *   bus name   xyz.openbmc_project.Certs.ca.authority.Manager
 *   object     /xyz/openbmc_project/certs/ca  (ObjectManager, xyz.openbmc_project.Certs.Authority
 *              SignCSR(s csr) -> o entry)
 *   entries    /xyz/openbmc_project/certs/ca/entry/<n>  (xyz.openbmc_project.Certs.Entry:
 *              ClientCertificate s, Status s (writable in host mode, else NotAllowed);
 * xyz.openbmc_project.PLDM.Provider.Certs.Authority.CSR: CSR s; xyz.openbmc_project.Object.Delete)
 *
 * Behaviour, as upstream's where certd's rules allow:
 *  - Install(s) on a server or client that holds a certificate: NotAllowed ("use Replace on
 *    <path>"); on an authority it adds the file's CA certificates and returns the first one's
 *    object. InstallAll(s): NotAllowed unless the authority is empty; all or none; returns the
 *    new objects. ReplaceAll(s): manager_replace_all, all or none; returns the whole new set.
 *  - Delete() on any certificate (manager_delete: a server gets a self-signed certificate in
 *    its place, as a new object). DeleteAll(): authority and client delete every certificate
 *    (stopping at the first failure, which is answered; what was deleted stays deleted);
 *    server: as Delete of its certificate (a self-signed one takes its place, a new object).
 *  - File arguments: absolute; a missing file, a directory, a FIFO, socket or device, an
 *    unreadable file or one over [limits] max_body are InvalidArgument naming the problem;
 *    what the file holds is judged by the manager (InvalidCertificate ...). The name is resolved
 *    as the kernel does for certd: ".." and symbolic links are followed (upstream's reads the
 *    same way; only root may call on the system bus, packaging/'s policy), so a caller can make
 *    certd read any file certd can read, but never see it: replies and logs name the path and
 *    what is wrong, never the content (a file that is not a certificate is InvalidCertificate).
 *    The file is read once, on a worker, opened non-blocking (a FIFO never stalls a worker).
 *  - GenerateCSR: the arguments are checked at once (InvalidArgument naming the one at fault),
 *    the reply is "<manager>/csr" before the key is made; the CSR object comes with
 *    InterfacesAdded when the job ends (CSR() then answers the PEM, or InternalFailure with the
 *    reason after a failed generation). A GenerateCSR while one runs starts a new one and the
 *    newest wins (an older job that ends later is dropped; its key stays pending), as
 *    upstream starts a new generation and bmcweb asks again after its own timeout. A new
 *    GenerateCSR removes the previous CSR object (InterfacesRemoved), as upstream's does; a
 *    CSR that finished while the connection was down is announced after reconnecting.
 *  - A full worker queue: Unavailable. Replies come after the signals of the change.
 *  - Connection loss, per connection: logged once, retried every 5 s; its objects are
 *    registered again, with the same paths, and its name is requested without waiting (the
 *    loop never blocks on a bus that hangs: a name that is refused drops that connection and
 *    the next try starts over). Only dbus_start waits for the bus (the loop does not run yet).
 *
 * Changes, whichever front end makes them (Redfish, D-Bus, files changed on disk), reach the
 * bus through dbus_endpoint_changed: InterfacesAdded / InterfacesRemoved from the manager's
 * ObjectManager, PropertiesChanged on a certificate whose content changed in place.
 *
 * Loop thread only. Every change runs on the worker pool's serial lane, every CSR on the lane
 * manager.h asks for, so the bus is never blocked by crypto or file I/O.
 */
#pragma once

#include "error/error.h"
#include "manager.h"
#include "util/cleanup.h"

struct daemon;
struct dbus;

/*
 * Connect to cfg->dbus_bus once per name, register every object and request every name. 0 with
 * *ret (NULL
 * when the bus is off), or -errno with err: the bus cannot be reached, a name is owned by
 * another process (-EEXIST: "phosphor-certificate-manager still running?"), libsystemd cannot
 * be loaded. d (borrowed) must outlive it; its manager and ca are started.
 */
_must_check_ int dbus_start(struct daemon *d, struct dbus **ret, struct certd_err *err);

/*
 * ep changed (a published snapshot differs from the one the bus shows): emit what changed.
 * change (nullable: a reload from disk) says how: a delete (the certificate's object goes, a new
 * one comes for what took its place), a replace (replaced_id's object shows the new
 * certificate). NULL-safe in db.
 */
void dbus_endpoint_changed(struct dbus *db, struct endpoint *ep,
                           const struct manager_change *change);

/*
 * Stop serving: close every connection (releasing the names) and detach from the loop, so that
 * no call arrives while
 * certd drains. Jobs in flight finish; their replies and signals are dropped. NULL-safe.
 */
void dbus_close(struct dbus *db);

/* After the worker pool, the manager and the CA are gone (their done callbacks ran). */
struct dbus *dbus_free(struct dbus *db);
DEFINE_CLEANUP_STRUCT(dbus, dbus_free)
