# SPDX-License-Identifier: Apache-2.0
"""certd's D-Bus API (issue #7), end to end on a private dbus-daemon, driven with busctl and
dbus-send as OpenBMC's bmcweb, pldmd and scripts drive phosphor-certificate-manager: the
introspection data against phosphor-dbus-interfaces' definitions, the upstream bus names and
paths, Install / Replace / Delete / InstallAll / ReplaceAll / DeleteAll / GenerateCSR / CSR /
SignCSR with the signals each one emits (recorded by busctl monitor started before the call),
every error by its upstream name and a word of its message, concurrent calls, D-Bus and Redfish
changes interleaved, and the start-up failures (no bus, a name already owned, the packaged
system bus policy).

Results are checked with openssl and python cryptography. Every busctl, dbus-send and monitor
output is scanned for private key material (conftest's no_secrets)."""
import concurrent.futures
import datetime
import hashlib
import ipaddress
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import (CA, CSR_EVERY_SUBJECT, Bus, Certd, Client, PrivateBus, cert_pem,
                      check_csr_subject, dn, key_pem, no_secrets, ok, served_cert, stop_process,
                      wait_for)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID

# --- upstream names ---------------------------------------------------------------------------

SVC_HTTPS = "xyz.openbmc_project.Certs.Manager.Server.Https"
SVC_LDAP = "xyz.openbmc_project.Certs.Manager.Client.Ldap"
SVC_TRUST = "xyz.openbmc_project.Certs.Manager.Authority.Truststore"
SVC_CA = "xyz.openbmc_project.Certs.ca.authority.Manager"
ALL_NAMES = {SVC_HTTPS, SVC_LDAP, SVC_TRUST, SVC_CA}

ROOT = "/xyz/openbmc_project/certs"
P_HTTPS = ROOT + "/server/https"
P_LDAP = ROOT + "/client/ldap"
P_TRUST = ROOT + "/authority/truststore"
P_CA = ROOT + "/ca"

I_OM = "org.freedesktop.DBus.ObjectManager"
I_PROPS = "org.freedesktop.DBus.Properties"
I_INSTALL = "xyz.openbmc_project.Certs.Install"
I_CREATE = "xyz.openbmc_project.Certs.CSR.Create"
I_CSR = "xyz.openbmc_project.Certs.CSR"
I_INSTALLALL = "xyz.openbmc_project.Certs.InstallAll"
I_REPLACEALL = "xyz.openbmc_project.Certs.ReplaceAll"
I_DELETEALL = "xyz.openbmc_project.Collection.DeleteAll"
I_CERT = "xyz.openbmc_project.Certs.Certificate"
I_REPLACE = "xyz.openbmc_project.Certs.Replace"
I_DELETE = "xyz.openbmc_project.Object.Delete"
I_AUTHORITY = "xyz.openbmc_project.Certs.Authority"
I_ENTRY = "xyz.openbmc_project.Certs.Entry"
I_PLDM_CSR = "xyz.openbmc_project.PLDM.Provider.Certs.Authority.CSR"

E_INVALID_CERT = "xyz.openbmc_project.Certs.Error.InvalidCertificate"
E_NOT_ALLOWED = "xyz.openbmc_project.Common.Error.NotAllowed"
E_INVALID_ARG = "xyz.openbmc_project.Common.Error.InvalidArgument"
# GenerateCSR's parameters in phosphor-dbus-interfaces' order (Certs/CSR/Create.interface.yaml).
CSR_ARGS = [("AlternativeNames", "as"), ("ChallengePassword", "s"), ("City", "s"),
            ("CommonName", "s"), ("ContactPerson", "s"), ("Country", "s"), ("Email", "s"),
            ("GivenName", "s"), ("Initials", "s"), ("KeyBitLength", "x"), ("KeyCurveId", "s"),
            ("KeyPairAlgorithm", "s"), ("KeyUsage", "as"), ("Organization", "s"),
            ("OrganizationalUnit", "s"), ("State", "s"), ("Surname", "s"),
            ("UnstructuredName", "s")]
CSR_SIG = "".join(t for _, t in CSR_ARGS)
assert CSR_SIG == "as" + "s" * 8 + "x" + "ss" + "as" + "s" * 5

# The interfaces of phosphor-dbus-interfaces certd implements: methods as (in, out) lists of
# (name, type), properties as {name: type}; no signals. ObjectManager is freedesktop's.
UPSTREAM = {
    I_INSTALL: {"methods": {"Install": ([("Path", "s")], [("ObjectPath", "s")])}},
    I_CREATE: {"methods": {"GenerateCSR": (CSR_ARGS, [("path", "s")])}},
    I_INSTALLALL: {"methods": {"InstallAll": ([("Path", "s")], [("ObjectPath", "ao")])}},
    I_REPLACEALL: {"methods": {"ReplaceAll": ([("Path", "s")], [("ObjectPath", "ao")])}},
    I_DELETEALL: {"methods": {"DeleteAll": ([], [])}},
    I_CERT: {"properties": {"CertificateString": "s", "KeyUsage": "as", "Issuer": "s",
                            "Subject": "s", "ValidNotAfter": "t", "ValidNotBefore": "t"}},
    I_REPLACE: {"methods": {"Replace": ([("Path", "s")], [])}},
    I_DELETE: {"methods": {"Delete": ([], [])}},
    I_CSR: {"methods": {"CSR": ([], [("CSRString", "s")])}},
    I_AUTHORITY: {"methods": {"SignCSR": ([("CSR", "s")], [("path", "o")])}},
    I_ENTRY: {"properties": {"ClientCertificate": "s", "Status": "s"}},
    I_PLDM_CSR: {"properties": {"CSR": "s"}},
    I_OM: {"methods": {"GetManagedObjects": ([], [(None, "a{oa{sa{sv}}}")])},
           "signals": {"InterfacesAdded": ["o", "a{sa{sv}}"], "InterfacesRemoved": ["o", "as"]}},
}

# What each manager carries: upstream puts all five interfaces on every manager
# (certs_manager.hpp) and refuses with NotAllowed what the type does not allow.
MANAGER_IFACES = {
    P: {I_OM, I_INSTALL, I_CREATE, I_DELETEALL, I_INSTALLALL, I_REPLACEALL}
    for P in (P_HTTPS, P_LDAP, P_TRUST)
}
SERVICE_OF = {P_HTTPS: SVC_HTTPS, P_LDAP: SVC_LDAP, P_TRUST: SVC_TRUST, P_CA: SVC_CA}

# sdbusplus' wire form of enum Certs.Entry.State, which pldmd writes and reads.
STATE = "xyz.openbmc_project.Certs.Entry.State."

# Redfish's Certificate.KeyUsage values.
REDFISH_KEY_USAGE = {"DigitalSignature", "NonRepudiation", "KeyEncipherment", "DataEncipherment",
                     "KeyAgreement", "KeyCertSign", "CRLSigning", "EncipherOnly", "DecipherOnly",
                     "ServerAuthentication", "ClientAuthentication", "CodeSigning",
                     "EmailProtection", "Timestamping", "OCSPSigning"}

HTTPS_RF = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"
LDAP_RF = "/redfish/v1/AccountService/LDAP/Certificates"
TRUST_RF = "/redfish/v1/Managers/bmc/Truststore/Certificates"
REPLACE_RF = "/redfish/v1/CertificateService/Actions/CertificateService.ReplaceCertificate"
CA_ROOT_RF = "/ibm/v1/Host/Certificate/root"

CONFIG = """
[server]
hostname = certd.test

[dbus]
bus = session

[endpoint https]
type = server
reload = self

[endpoint ldap]
type = client

[endpoint truststore]
type = authority
max = 30
"""

SHORT_NAMES = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O",
               NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.COUNTRY_NAME: "C",
               NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.LOCALITY_NAME: "L"}


# --- fixtures and helpers ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca():
    return CA("dbus test CA")


def wait_for_names(bus, d, names=ALL_NAMES):
    """certd listens before it joins the bus: wait until it owns every name (or dies)."""
    def owned():
        assert d.proc.poll() is None, f"certd exited with {d.proc.returncode}:\n{d.log()}"
        return names <= bus.names()
    wait_for(owned, timeout=30, what=f"certd to own {sorted(names)}")


@pytest.fixture
def dcertd(certd_factory, private_bus):
    """certd on CONFIG, serving on the private bus; stopped cleanly afterwards, and its names
    gone from the bus before the next test starts another certd."""
    d = certd_factory(config=CONFIG).start()
    wait_for_names(private_bus, d)
    d.bus = private_bus
    yield d
    rc = d.stop()
    assert rc in (0, None), f"certd exited with {rc}:\n{d.log()}"
    wait_for(lambda: not (ALL_NAMES & private_bus.names()), what="certd's names released")


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


def epoch(t):
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp())


def load_pems(text):
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    return [x509.load_pem_x509_certificate(b.encode()) for b in blocks]


def name_parts(s):
    return {p.strip() for p in s.split(",") if p.strip()}


def check_name(shown, name):
    """upstream's X509_NAME_print_ex(..., XN_FLAG_SEP_COMMA_PLUS) form: "CN=a,O=b", one part
    per attribute (checked by value for the attributes with well-known short names)."""
    parts = name_parts(shown)
    assert len(parts) == len(list(name)), (shown, name)
    want = {f"{SHORT_NAMES[a.oid]}={a.value}" for a in name if a.oid in SHORT_NAMES}
    assert want <= parts, (shown, name)


def check_cert_props(props, cert, redfish=None):
    """A Certificate interface's properties show exactly cert, as upstream renders it."""
    assert set(props) >= set(UPSTREAM[I_CERT]["properties"]), props
    s = props["CertificateString"]
    assert "PRIVATE KEY" not in s
    assert load_pems(s) == [cert], s
    assert s.strip() == cert_pem(cert).decode().strip()
    # Seconds since the epoch, as upstream's implementation gives them.
    assert props["ValidNotBefore"] == epoch(cert.not_valid_before)
    assert props["ValidNotAfter"] == epoch(cert.not_valid_after)
    check_name(props["Subject"], cert.subject)
    check_name(props["Issuer"], cert.issuer)
    ku = props["KeyUsage"]
    assert set(ku) <= REDFISH_KEY_USAGE, ku
    try:
        bits = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if bits.digital_signature:
            assert "DigitalSignature" in ku
        if bits.key_cert_sign:
            assert "KeyCertSign" in ku
    except x509.ExtensionNotFound:
        pass
    if redfish is not None:
        assert set(ku) == set(redfish.get("KeyUsage", [])), (ku, redfish.get("KeyUsage"))


def certs_of(objects, prefix):
    """{object path: Certificate properties} of GetManagedObjects' answer under prefix."""
    return {p: ifs[I_CERT] for p, ifs in objects.items()
            if p.startswith(prefix + "/") and I_CERT in ifs}


def dbus_certs(d, path):
    return certs_of(d.bus.managed_objects(SERVICE_OF[path], path), path)


def id_re(path):
    return re.compile(re.escape(path) + r"/[1-9][0-9]*")


def install(d, path, file, method="Install"):
    out = d.bus.call(SERVICE_OF[path], path, {"Install": I_INSTALL, "InstallAll": I_INSTALLALL,
                                              "ReplaceAll": I_REPLACEALL}[method], method, "s",
                     file)[0]
    return out


def expect_error(err, name, word):
    assert err.name == name, (err.name, err.message)
    if isinstance(word, str):
        assert word.lower() in err.message.lower(), (word, err.message)
    else:
        assert word.search(err.message), (word.pattern, err.message)


def redfish_view(d):
    """What Redfish shows of the three collections: {collection: {Id: certificate}}."""
    out = {}
    with Client(d) as a:
        for coll in (HTTPS_RF, LDAP_RF, TRUST_RF):
            members = ok(a.get(coll)).json()["Members"]
            out[coll] = {}
            for m in members:
                body = ok(a.get(m["@odata.id"])).json()
                out[coll][body["Id"]] = x509.load_pem_x509_certificate(
                    body["CertificateString"].encode())
    return out


def state_snapshot(d):
    """Every file of the state directory: {relative path: (mode, sha256)}."""
    snap = {}
    for top, dirs, files in os.walk(d.state_dir):
        for f in files:
            p = os.path.join(top, f)
            st = os.lstat(p)
            h = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    h = hashlib.sha256(fh.read()).hexdigest()
            snap[os.path.relpath(p, d.state_dir)] = (st.st_mode, h)
    return snap


def changes(mon, start=0):
    """Signals that tell of a change (not the bus driver's NameOwnerChanged and the like)."""
    return [m for m in mon.snapshot()[start:] if m.get("type") == "signal" and
            m.get("member") in ("InterfacesAdded", "InterfacesRemoved", "PropertiesChanged")]


def wait_added(mon, manager, obj=None, start=0, what=None):
    """The InterfacesAdded from manager's ObjectManager for obj (any object when None)."""
    def pred(m):
        return (m.get("type") == "signal" and m.get("member") == "InterfacesAdded" and
                m.get("path") == manager and m.get("interface") == I_OM and
                (obj is None or m["payload"]["data"][0] == obj))
    return mon.wait(pred, start=start, what=what or f"InterfacesAdded {obj} from {manager}")


def wait_removed(mon, manager, obj, start=0):
    def pred(m):
        return (m.get("type") == "signal" and m.get("member") == "InterfacesRemoved" and
                m.get("path") == manager and m["payload"]["data"][0] == obj)
    return mon.wait(pred, start=start, what=f"InterfacesRemoved {obj} from {manager}")


def wait_changed(mon, obj, iface, prop, start=0):
    def pred(m):
        return (m.get("type") == "signal" and m.get("member") == "PropertiesChanged" and
                m.get("path") == obj and m.get("interface") == I_PROPS and
                m["payload"]["data"][0] == iface and prop in m["payload"]["data"][1])
    return mon.wait(pred, start=start, what=f"PropertiesChanged {iface}.{prop} on {obj}")


def generate_csr(d, path, **kw):
    args = []
    for name, t in CSR_ARGS:
        args.append(kw.pop(name, [] if t == "as" else 0 if t == "x" else ""))
    assert not kw, kw
    return d.bus.call(SERVICE_OF[path], path, I_CREATE, "GenerateCSR", CSR_SIG, *args)[0]


def csr_error(d, path, **kw):
    args = []
    for name, t in CSR_ARGS:
        args.append(kw.pop(name, [] if t == "as" else 0 if t == "x" else ""))
    return d.bus.error(SERVICE_OF[path], path, I_CREATE, "GenerateCSR", CSR_SIG, *args)


def openssl_verify_csr(pem):
    p = subprocess.run(["openssl", "req", "-noout", "-verify"], input=pem.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and b"verify OK" in p.stdout + p.stderr, (p.stdout, p.stderr)


# --- introspection ----------------------------------------------------------------------------

def parse_introspection(xml):
    """{interface: {"methods": {name: ([(name, type)], [(name, type)])}, "properties": {name:
    (type, access)}, "signals": {name: [type]}}}, and the child node names."""
    root = ET.fromstring(xml)
    ifaces = {}
    for i in root.findall("interface"):
        d = {"methods": {}, "properties": {}, "signals": {}}
        for m in i.findall("method"):
            ins = [(a.get("name"), a.get("type")) for a in m.findall("arg")
                   if a.get("direction", "in") == "in"]
            outs = [(a.get("name"), a.get("type")) for a in m.findall("arg")
                    if a.get("direction") == "out"]
            d["methods"][m.get("name")] = (ins, outs)
        for p in i.findall("property"):
            d["properties"][p.get("name")] = (p.get("type"), p.get("access"))
        for s in i.findall("signal"):
            d["signals"][s.get("name")] = [a.get("type") for a in s.findall("arg")]
        ifaces[i.get("name")] = d
    return ifaces, [n.get("name") for n in root.findall("node")]


def check_upstream(ifaces, where):
    """Every xyz.openbmc_project interface (and the ObjectManager) shown matches upstream:
    method names, in and out signatures, argument names where given, property names and
    types, no signals of its own."""
    for name, got in ifaces.items():
        if not (name.startswith("xyz.openbmc_project.") or name == I_OM):
            continue
        assert name in UPSTREAM, f"{where}: {name} is not a phosphor-dbus-interfaces interface"
        want = UPSTREAM[name]
        assert set(got["methods"]) == set(want.get("methods", {})), (where, name, got)
        for m, (w_in, w_out) in want.get("methods", {}).items():
            g_in, g_out = got["methods"][m]
            assert [t for _, t in g_in] == [t for _, t in w_in], (where, name, m, g_in)
            assert [t for _, t in g_out] == [t for _, t in w_out], (where, name, m, g_out)
            for (gn, _), (wn, _) in zip(g_in + g_out, w_in + w_out):
                if gn and wn:
                    assert gn == wn, (where, name, m, gn, wn)
        assert {p: t for p, (t, _) in got["properties"].items()} == \
            want.get("properties", {}), (where, name, got["properties"])
        if name == I_CERT:
            # Certificates change only through Install / Replace (dbus.h: read-only).
            assert all(a == "read" for _, a in got["properties"].values()), got["properties"]
        assert got["signals"] == want.get("signals", {}), (where, name, got["signals"])


def introspect(d, path):
    svc = SERVICE_OF.get(path) or next(s for p, s in SERVICE_OF.items()
                                       if path.startswith(p + "/"))
    ifaces, nodes = parse_introspection(d.bus.introspect(svc, path))
    check_upstream(ifaces, path)
    return ifaces, nodes


def walk(d, svc, path="/"):
    """Every object path reachable from path through introspection's child nodes, as
    phosphor-objmapper discovers services."""
    seen = set()
    todo = [path]
    while todo:
        p = todo.pop()
        seen.add(p)
        _, nodes = parse_introspection(d.bus.introspect(svc, p))
        for n in nodes:
            todo.append(("" if p == "/" else p) + "/" + n)
    return seen


def test_names_paths_and_introspection(dcertd, ca, tmp_path):
    d = dcertd
    bus = d.bus
    # One connection per name, as upstream's one process per name: the object mapper credits
    # a connection's signals to one well-known name only.
    owners = {bus.owner(n) for n in ALL_NAMES}
    assert len(owners) == len(ALL_NAMES) and all(o.startswith(":") for o in owners), owners

    # Something in every kind of object: an LDAP certificate, a root, the CSR, a CA entry.
    _c, _k, pem = ca.leaf("ldap.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    ldap_obj = install(d, P_LDAP, write(tmp_path, "ldap.pem", pem))
    trust_obj = install(d, P_TRUST, write(tmp_path, "root.pem", CA("introspect root").pem))
    with bus.monitor() as mon:
        csr_obj = generate_csr(d, P_HTTPS, CommonName="i.certd.test", KeyPairAlgorithm="EC",
                               KeyCurveId="prime256v1")
        wait_added(mon, P_HTTPS, csr_obj)
    entry = bus.call(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", console_csr()[1])[0]
    https_objs = list(dbus_certs(d, P_HTTPS))
    assert len(https_objs) == 1 and id_re(P_HTTPS).fullmatch(https_objs[0]), https_objs

    for path, required in MANAGER_IFACES.items():
        ifaces, nodes = introspect(d, path)
        assert required <= set(ifaces), (path, sorted(ifaces))
    for obj, required in ((https_objs[0], {I_CERT, I_REPLACE}),
                          (ldap_obj, {I_CERT, I_REPLACE, I_DELETE}),
                          (trust_obj, {I_CERT, I_REPLACE, I_DELETE}),
                          (csr_obj, {I_CSR})):
        ifaces, _ = introspect(d, obj)
        assert required <= set(ifaces), (obj, sorted(ifaces))
    ifaces, _ = introspect(d, P_CA)
    assert {I_OM, I_AUTHORITY} <= set(ifaces), sorted(ifaces)
    assert re.fullmatch(re.escape(P_CA) + r"/entry/[1-9][0-9]*", entry), entry
    ifaces, _ = introspect(d, entry)
    assert {I_ENTRY, I_PLDM_CSR, I_DELETE} <= set(ifaces), sorted(ifaces)

    # Discoverable from "/" as the object mapper walks the tree, each service its own objects
    # and no other's.
    own = {SVC_HTTPS: {P_HTTPS, https_objs[0], csr_obj}, SVC_LDAP: {P_LDAP, ldap_obj},
           SVC_TRUST: {P_TRUST, trust_obj}, SVC_CA: {P_CA, entry}}
    for svc, paths in own.items():
        found = walk(d, svc)
        assert paths <= found, (svc, sorted(found))
        for other, theirs in own.items():
            if other != svc:
                assert not (theirs & found), (svc, sorted(theirs & found))


def test_get_managed_objects_shows_the_bootstrap_certificate(dcertd):
    d = dcertd
    objs = d.bus.managed_objects(SVC_HTTPS, P_HTTPS)
    certs = certs_of(objs, P_HTTPS)
    assert len(certs) == 1
    (path, props), = certs.items()
    assert id_re(P_HTTPS).fullmatch(path)
    served = served_cert(d.port)
    with Client(d) as a:
        rf = ok(a.get(HTTPS_RF + "/1")).json()
    check_cert_props(props, served, rf)
    assert {I_REPLACE} <= set(objs[path])
    # Each manager shows only its own objects; the empty ones are empty.
    assert all(p.startswith(P_HTTPS + "/") for p in objs)
    assert dbus_certs(d, P_LDAP) == {}
    assert dbus_certs(d, P_TRUST) == {}
    # The same through Properties.Get, and GetAll.
    assert d.bus.get_property(SVC_HTTPS, path, I_CERT, "ValidNotAfter") == \
        epoch(served.not_valid_after)
    allp = d.bus.call(SVC_HTTPS, path, I_PROPS, "GetAll", "s", I_CERT)[0]
    check_cert_props(allp, served)


# --- install, replace, delete -----------------------------------------------------------------

def test_install_replace_delete_client_with_signals(dcertd, ca, tmp_path):
    d = dcertd
    cert1, _k1, pem1 = ca.leaf("ldap1.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    cert2, _k2, pem2 = ca.leaf("ldap2.certd.test", kind="rsa",
                               eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    with d.bus.monitor() as mon:
        obj = install(d, P_LDAP, write(tmp_path, "l1.pem", pem1))
        assert id_re(P_LDAP).fullmatch(obj), obj
        _, sig = wait_added(mon, P_LDAP, obj)
        added = sig["payload"]["data"][1]
        assert {I_CERT, I_REPLACE, I_DELETE} <= set(added), sorted(added)
        check_cert_props(added[I_CERT], cert1)
        # Visible in Redfish at once, and the same through GetManagedObjects.
        view = redfish_view(d)
        assert list(view[LDAP_RF].values()) == [cert1]
        with Client(d) as a:
            rf = ok(a.get(LDAP_RF + "/" + next(iter(view[LDAP_RF])))).json()
        check_cert_props(dbus_certs(d, P_LDAP)[obj], cert1, rf)

        # Replace in place: the same object, PropertiesChanged with the new certificate.
        n = len(mon.snapshot())
        assert d.bus.call(SVC_LDAP, obj, I_REPLACE, "Replace", "s",
                          write(tmp_path, "l2.pem", pem2)) == []
        _, sig = wait_changed(mon, obj, I_CERT, "CertificateString", start=n)
        changed = sig["payload"]["data"][1]
        assert load_pems(changed["CertificateString"]) == [cert2]
        if "ValidNotAfter" in changed:
            assert changed["ValidNotAfter"] == epoch(cert2.not_valid_after)
        assert list(dbus_certs(d, P_LDAP)) == [obj]
        check_cert_props(dbus_certs(d, P_LDAP)[obj], cert2)
        assert list(redfish_view(d)[LDAP_RF].values()) == [cert2]
        assert not mon.signals("InterfacesRemoved", P_LDAP, start=n)

        # Delete: InterfacesRemoved from the manager; gone from both front ends.
        n = len(mon.snapshot())
        assert d.bus.call(SVC_LDAP, obj, I_DELETE, "Delete") == []
        _, sig = wait_removed(mon, P_LDAP, obj, start=n)
        assert I_CERT in sig["payload"]["data"][1]
        assert dbus_certs(d, P_LDAP) == {}
        assert redfish_view(d)[LDAP_RF] == {}

        # Ids are never reused.
        obj2 = install(d, P_LDAP, write(tmp_path, "l1b.pem", pem1))
        assert obj2 != obj and id_re(P_LDAP).fullmatch(obj2)
        wait_added(mon, P_LDAP, obj2, start=n)
        # The deleted object answers no more.
        e = d.bus.error(SVC_LDAP, obj, I_PROPS, "Get", "ss", I_CERT,
                        "CertificateString")
        assert e.name.startswith("org.freedesktop.DBus.Error."), e


def test_server_refusals_and_replace(dcertd, ca, tmp_path):
    d = dcertd
    (https_obj,) = dbus_certs(d, P_HTTPS)
    before_files = state_snapshot(d)
    before_rf = redfish_view(d)
    served = served_cert(d.port)
    _c, _k, pem = ca.leaf("second.certd.test")
    f = write(tmp_path, "second.pem", pem)
    with d.bus.monitor() as mon:
        # A server holds one certificate: Install is refused (upstream: "Certificate already
        # exist"); InstallAll and ReplaceAll are for authorities (NotAllowed, as upstream).
        expect_error(d.bus.error(SVC_HTTPS, P_HTTPS, I_INSTALL, "Install", "s", f),
                     E_NOT_ALLOWED, re.compile(r"(?i)already|exist"))
        for iface, method in ((I_INSTALLALL, "InstallAll"), (I_REPLACEALL, "ReplaceAll")):
            expect_error(d.bus.error(SVC_HTTPS, P_HTTPS, iface, method, "s", f), E_NOT_ALLOWED,
                         re.compile(r"(?i)authorit"))
        # Properties are read-only.
        p = subprocess.run(["busctl", "--user", "set-property", SVC_HTTPS, https_obj, I_CERT,
                            "Subject", "s", "CN=evil"], capture_output=True, text=True,
                           env=d.bus.env(), timeout=60)
        assert p.returncode != 0, p.stdout
        mon.sync()
        assert changes(mon) == [], changes(mon)
    assert state_snapshot(d) == before_files
    assert redfish_view(d) == before_rf
    assert served_cert(d.port) == served

    # Replace the server certificate: PropertiesChanged, and served at once.
    cert, _k, pem = ca.leaf("replaced.certd.test", kind="rsa")
    with d.bus.monitor() as mon:
        assert d.bus.call(SVC_HTTPS, https_obj, I_REPLACE, "Replace", "s",
                          write(tmp_path, "rep.pem", pem)) == []
        _, sig = wait_changed(mon, https_obj, I_CERT, "CertificateString")
        assert load_pems(sig["payload"]["data"][1]["CertificateString"]) == [cert]
    assert served_cert(d.port) == cert
    assert list(dbus_certs(d, P_HTTPS)) == [https_obj]
    with Client(d) as a:
        rf = ok(a.get(HTTPS_RF + "/1")).json()
    check_cert_props(dbus_certs(d, P_HTTPS)[https_obj], cert, rf)


def test_server_delete_makes_a_self_signed_certificate(dcertd, ca, tmp_path):
    """Upstream's rule for server certificates: Delete puts a new self-signed one in place (the
    old object goes, a new one comes)."""
    d = dcertd
    (https_obj,) = dbus_certs(d, P_HTTPS)
    cert, _k, pem = ca.leaf("gone.certd.test")
    d.bus.call(SVC_HTTPS, https_obj, I_REPLACE, "Replace", "s", write(tmp_path, "g.pem", pem))
    assert served_cert(d.port) == cert
    with d.bus.monitor() as mon:
        assert d.bus.call(SVC_HTTPS, https_obj, I_DELETE, "Delete") == []
        wait_removed(mon, P_HTTPS, https_obj)
        _, sig = wait_added(mon, P_HTTPS)
    new_obj = sig["payload"]["data"][0]
    assert new_obj != https_obj and id_re(P_HTTPS).fullmatch(new_obj)
    served = served_cert(d.port)
    assert served != cert and served.issuer == served.subject
    check_cert_props(sig["payload"]["data"][1][I_CERT], served)
    # Sent by the connection that owns the https name (the object mapper's bookkeeping).
    assert sig["sender"] == d.bus.owner(SVC_HTTPS)
    assert list(dbus_certs(d, P_HTTPS)) == [new_obj]
    assert list(redfish_view(d)[HTTPS_RF].values()) == [served]

    # DeleteAll on a server is its one Delete: again a new self-signed certificate.
    with d.bus.monitor() as mon:
        assert d.bus.call(SVC_HTTPS, P_HTTPS, I_DELETEALL, "DeleteAll") == []
        wait_removed(mon, P_HTTPS, new_obj)
        _, sig = wait_added(mon, P_HTTPS)
    newer = sig["payload"]["data"][0]
    assert newer not in (https_obj, new_obj) and list(dbus_certs(d, P_HTTPS)) == [newer]
    assert served_cert(d.port) != served


def test_truststore_install_all_replace_all_delete_all(dcertd, tmp_path):
    d = dcertd
    roots = [CA(f"all root {i}") for i in range(5)]
    bundle = b"".join(r.pem for r in roots[:3])
    with d.bus.monitor() as mon:
        paths = install(d, P_TRUST, write(tmp_path, "three.pem", bundle), "InstallAll")
        assert len(paths) == 3 and len(set(paths)) == 3
        assert all(id_re(P_TRUST).fullmatch(p) for p in paths), paths
        for p in paths:
            wait_added(mon, P_TRUST, p)
        shown = dbus_certs(d, P_TRUST)
        assert set(shown) == set(paths)
        assert sorted(load_pems(shown[p]["CertificateString"])[0].fingerprint(hashes.SHA256())
                      for p in paths) == sorted(r.cert.fingerprint(hashes.SHA256())
                                                for r in roots[:3])
        for p in paths:
            root = next(r for r in roots if load_pems(shown[p]["CertificateString"]) == [r.cert])
            check_cert_props(shown[p], root.cert)
        assert set(redfish_view(d)[TRUST_RF].values()) == {r.cert for r in roots[:3]}

        # Not on a non-empty store (upstream: "Call DeleteAll then InstallAll").
        expect_error(d.bus.error(SVC_TRUST, P_TRUST, I_INSTALLALL, "InstallAll", "s",
                                 write(tmp_path, "two.pem", roots[3].pem + roots[4].pem)),
                     E_NOT_ALLOWED, re.compile(r"(?i)already|replace|delete|empty"))

        # ReplaceAll is atomic: one leaf (not a CA) among roots changes nothing.
        leaf, _k, _p = CA("leaf issuer").leaf("leaf.certd.test")
        before = state_snapshot(d)
        n = len(mon.snapshot())
        expect_error(d.bus.error(SVC_TRUST, P_TRUST, I_REPLACEALL, "ReplaceAll", "s",
                                 write(tmp_path, "mixed.pem", roots[3].pem + cert_pem(leaf))),
                     E_INVALID_CERT, "CA")
        assert state_snapshot(d) == before and set(dbus_certs(d, P_TRUST)) == set(paths)

        new = install(d, P_TRUST, write(tmp_path, "two.pem", roots[3].pem + roots[4].pem),
                      "ReplaceAll")
        assert len(new) == 2 and not set(new) & set(paths), (new, paths)
        for p in paths:
            wait_removed(mon, P_TRUST, p, start=n)
        for p in new:
            wait_added(mon, P_TRUST, p, start=n)
        assert set(dbus_certs(d, P_TRUST)) == set(new)
        assert set(redfish_view(d)[TRUST_RF].values()) == {roots[3].cert, roots[4].cert}

        n = len(mon.snapshot())
        assert d.bus.call(SVC_TRUST, P_TRUST, I_DELETEALL, "DeleteAll") == []
        for p in new:
            wait_removed(mon, P_TRUST, p, start=n)
        assert dbus_certs(d, P_TRUST) == {}
        assert redfish_view(d)[TRUST_RF] == {}
        # DeleteAll of nothing is fine; InstallAll works again on the empty store.
        assert d.bus.call(SVC_TRUST, P_TRUST, I_DELETEALL, "DeleteAll") == []
        again = install(d, P_TRUST, write(tmp_path, "one.pem", roots[0].pem), "InstallAll")
        assert len(again) == 1 and again[0] not in paths + new
        # A duplicate is refused (upstream: "Certificate already exist").
        expect_error(d.bus.error(SVC_TRUST, P_TRUST, I_INSTALL, "Install", "s",
                                 write(tmp_path, "dup.pem", roots[0].pem)),
                     E_NOT_ALLOWED, re.compile(r"(?i)already|exist|duplicate"))
        # Replace of one root in place.
        n = len(mon.snapshot())
        assert d.bus.call(SVC_TRUST, again[0], I_REPLACE, "Replace", "s",
                          write(tmp_path, "r1.pem", roots[1].pem)) == []
        wait_changed(mon, again[0], I_CERT, "CertificateString", start=n)
        check_cert_props(dbus_certs(d, P_TRUST)[again[0]], roots[1].cert)
        assert set(redfish_view(d)[TRUST_RF].values()) == {roots[1].cert}


# --- CSR --------------------------------------------------------------------------------------

def console_csr(cn="hmc.certd.test", bad_signature=False):
    """A key and a CSR as a console makes them; with bad_signature the signature's last byte is
    flipped (the CSR still parses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(dn(cn)).sign(key, hashes.SHA256())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    if bad_signature:
        der[-1] ^= 0x01
        broken = x509.load_der_x509_csr(bytes(der))
        assert not broken.is_signature_valid
    import base64
    b64 = base64.encodebytes(bytes(der)).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(lines) + \
        "\n-----END CERTIFICATE REQUEST-----\n"
    return key, pem


# bmcweb's defaults for GenerateCSR (KeyPairAlgorithm EC, KeyBitLength 2048, KeyCurveId
# secp384r1), and RSA-2048 as the seed's example asks for it.
@pytest.mark.parametrize("path,alg,bits,curve", [
    (P_HTTPS, "EC", 2048, "secp384r1"),
    (P_LDAP, "RSA", 2048, ""),
])
def test_generate_csr_signal_before_read_then_install(dcertd, ca, tmp_path, path, alg, bits,
                                                      curve):
    d = dcertd
    svc = SERVICE_OF[path]
    with d.bus.monitor() as mon:
        obj = generate_csr(
            d, path, **CSR_EVERY_SUBJECT,
            AlternativeNames=["bmc.certd.test", "www.certd.test", "192.0.2.10"],
            ChallengePassword="challenge-123", KeyBitLength=bits, KeyCurveId=curve,
            KeyPairAlgorithm=alg,
            KeyUsage=["DigitalSignature", "KeyEncipherment", "ServerAuthentication",
                      "ClientAuthentication"])
        assert obj == path + "/csr"
        # bmcweb's flow: wait for InterfacesAdded of <manager>/csr, then call CSR().
        i_added, sig = wait_added(mon, path, obj)
        assert I_CSR in sig["payload"]["data"][1]
        csr_pem = d.bus.call(svc, obj, I_CSR, "CSR")[0]
        i_call, _ = mon.wait(lambda m: m.get("type") == "method_call" and
                             m.get("member") == "CSR" and m.get("path") == obj)
        assert i_added < i_call
        assert mon.signals("InterfacesAdded", path) and \
            mon.signals("InterfacesAdded", path)[0]["payload"]["data"][0] == obj

    assert "PRIVATE KEY" not in csr_pem
    openssl_verify_csr(csr_pem)
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    check_csr_subject(csr, CSR_EVERY_SUBJECT)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["bmc.certd.test", "www.certd.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert csr.attributes.get_attribute_for_oid(
        AttributeOID.CHALLENGE_PASSWORD).value == b"challenge-123"
    pub = csr.public_key()
    if alg == "EC":
        assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == curve
    else:
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == bits

    # The signed certificate alone is paired with the CSR's key: Replace for the server (as
    # bmcweb's ReplaceCertificate does), Install for the empty client.
    cert = ca.sign_csr(csr, eku=(ExtendedKeyUsageOID.SERVER_AUTH,
                                 ExtendedKeyUsageOID.CLIENT_AUTH))
    f = write(tmp_path, "signed.pem", cert_pem(cert))
    if path == P_HTTPS:
        (obj,) = dbus_certs(d, P_HTTPS)
        d.bus.call(svc, obj, I_REPLACE, "Replace", "s", f)
        assert served_cert(d.port) == cert
    else:
        obj = install(d, path, f)
    check_cert_props(dbus_certs(d, path)[obj], cert)


def test_generate_csr_again_and_never_blocks_the_bus(dcertd):
    d = dcertd
    with d.bus.monitor() as mon:
        first = generate_csr(d, P_LDAP, CommonName="one.certd.test", KeyPairAlgorithm="EC",
                             KeyCurveId="secp384r1")
        wait_added(mon, P_LDAP, first)
        one = x509.load_pem_x509_csr(d.bus.call(SVC_LDAP, first, I_CSR, "CSR")[0].encode())
        # RSA-4096 takes a while: the bus answers meanwhile, and a new InterfacesAdded tells
        # when the new CSR is there (the old object may go first).
        n = len(mon.snapshot())
        again = generate_csr(d, P_LDAP, CommonName="two.certd.test", KeyPairAlgorithm="RSA",
                             KeyBitLength=4096)
        assert again == first
        d.bus.managed_objects(SVC_TRUST, P_TRUST)
        _, call = mon.wait(lambda m: m.get("type") == "method_call" and
                           m.get("member") == "GetManagedObjects", start=n)
        i_reply, _ = mon.wait(lambda m: m.get("type") == "method_return" and
                              m.get("reply_cookie") == call["cookie"] and
                              m.get("destination") == call["sender"], start=n)
        i_added, _ = wait_added(mon, P_LDAP, again, start=n)
        assert i_reply < i_added, "the bus waited for the key"
        two = x509.load_pem_x509_csr(d.bus.call(SVC_LDAP, again, I_CSR, "CSR")[0].encode())
        assert two.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
            "two.certd.test"
        assert isinstance(two.public_key(), rsa.RSAPublicKey) and two.public_key().key_size == \
            4096
        assert one.public_key().public_numbers() != two.public_key().public_numbers()


@pytest.mark.parametrize("kw,word", [
    ({"KeyPairAlgorithm": "DSA"}, "algorithm"),
    ({"KeyPairAlgorithm": "EC", "KeyCurveId": "secp1"}, "curve"),
    ({"KeyPairAlgorithm": "RSA", "KeyBitLength": 1024}, re.compile(r"(?i)bit|length|size")),
    ({"KeyUsage": ["Teleportation"]}, "usage"),
    ({"Country": "India"}, "country"),
])
def test_generate_csr_invalid_arguments(dcertd, kw, word):
    d = dcertd
    args = {"CommonName": "bad.certd.test"}
    args.update(kw)
    with d.bus.monitor() as mon:
        expect_error(csr_error(d, P_HTTPS, **args), E_INVALID_ARG, word)
        mon.sync()
        assert changes(mon) == []
    pending = os.path.join(d.state_dir, "https", "pending")
    assert not os.path.isdir(pending) or os.listdir(pending) == []
    e = d.bus.error(SVC_HTTPS, P_HTTPS + "/csr", I_CSR, "CSR")
    assert e.name.startswith("org.freedesktop.DBus.Error."), e
    # An authority makes no CSR (CSR.Create is there, as on every upstream manager).
    expect_error(csr_error(d, P_TRUST, CommonName="x"), E_NOT_ALLOWED,
                 re.compile(r"(?i)authorit"))


# --- the VMI CA -------------------------------------------------------------------------------

def wait_status(d, entry):
    def done():
        return d.bus.get_property(SVC_CA, entry, I_ENTRY, "Status") != STATE + "Pending"
    wait_for(done, timeout=60, what=f"{entry} to leave Pending")
    return d.bus.get_property(SVC_CA, entry, I_ENTRY, "Status")


def test_sign_csr_complete_bad_csr_and_delete(dcertd, tmp_path):
    d = dcertd
    _key, csr = console_csr()
    with d.bus.monitor() as mon:
        entry = d.bus.call(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", csr)[0]
        assert re.fullmatch(re.escape(P_CA) + r"/entry/[1-9][0-9]*", entry), entry
        _, sig = wait_added(mon, P_CA, entry)
        assert {I_ENTRY, I_PLDM_CSR, I_DELETE} <= set(sig["payload"]["data"][1])
        assert wait_status(d, entry) == STATE + "Complete"
        # The change was announced: Complete in InterfacesAdded, or PropertiesChanged.
        first = sig["payload"]["data"][1][I_ENTRY]
        if first.get("Status") != STATE + "Complete":
            wait_changed(mon, entry, I_ENTRY, "Status")
        objs = d.bus.managed_objects(SVC_CA, P_CA)
        props = objs[entry]
        assert props[I_PLDM_CSR]["CSR"] == csr
        client = props[I_ENTRY]["ClientCertificate"]
        assert "PRIVATE KEY" not in client
        root = ok(d.get(CA_ROOT_RF)).json()["Certificate"]
        p = subprocess.run(["openssl", "verify", "-CAfile", write(tmp_path, "root.pem", root),
                            write(tmp_path, "client.pem", client)], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        issued = load_pems(client)[0]
        assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
            "hmc.certd.test"
        assert issued.public_key().public_numbers() == _key.public_key().public_numbers()

        # A CSR whose signature does not verify: an entry that ends BadCSR, with no certificate.
        _k, bad = console_csr("bad.certd.test", bad_signature=True)
        bad_entry = d.bus.call(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", bad)[0]
        assert bad_entry != entry
        assert wait_status(d, bad_entry) == STATE + "BadCSR"
        assert d.bus.get_property(SVC_CA, bad_entry, I_ENTRY, "ClientCertificate") == ""

        # An empty CSR is an invalid argument (upstream), and makes no entry.
        n = len(mon.snapshot())
        expect_error(d.bus.error(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", ""), E_INVALID_ARG,
                     "CSR")
        mon.sync()
        assert mon.signals("InterfacesAdded", P_CA, start=n) == []
        assert set(p for p in d.bus.managed_objects(SVC_CA, P_CA)
                   if p.startswith(P_CA + "/entry/")) == {entry, bad_entry}

        # Delete an entry: InterfacesRemoved; the other stays.
        n = len(mon.snapshot())
        assert d.bus.call(SVC_CA, entry, I_DELETE, "Delete") == []
        wait_removed(mon, P_CA, entry, start=n)
        left = set(d.bus.managed_objects(SVC_CA, P_CA))
        assert entry not in left and bad_entry in left


# --- every bad input --------------------------------------------------------------------------

def bad_inputs(tmp_path, ca):
    """(name, path, expected error, word) for files no Install may accept."""
    _c, key, _p = ca.leaf("k.certd.test")
    d = tmp_path / "bad"
    d.mkdir()
    fifo = str(d / "fifo")
    os.mkfifo(fifo)
    sock_path = str(d / "sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    s.close()
    nocert = r"(?i)certificate|PEM"
    return [
        ("text", write(d, "hello.pem", "hello, world\n"), E_INVALID_CERT, re.compile(nocert)),
        ("key alone", write(d, "key.pem", key_pem(key)), E_INVALID_CERT, re.compile(nocert)),
        ("garbage", write(d, "garbage.pem", os.urandom(700)), E_INVALID_CERT,
         re.compile(nocert)),
        ("empty", write(d, "empty.pem", b""), E_INVALID_CERT, re.compile(nocert + "|empty")),
        ("truncated PEM", write(d, "trunc.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n"),
         E_INVALID_CERT, re.compile(nocert)),
        ("missing", str(d / "nope.pem"), E_INVALID_ARG, "does not exist"),
        ("directory", str(d), E_INVALID_ARG, "directory"),
        ("relative", "bad/hello.pem", E_INVALID_ARG, "absolute"),
        ("empty path", "", E_INVALID_ARG, re.compile(r"(?i)path|empty")),
        ("char device", "/dev/null", E_INVALID_ARG, "regular"),
        ("fifo", fifo, E_INVALID_ARG, "regular"),
        ("socket", sock_path, E_INVALID_ARG, re.compile(r"(?i)regular|socket")),
    ]


def test_bad_inputs_change_nothing(dcertd, ca, tmp_path):
    d = dcertd
    (https_obj,) = dbus_certs(d, P_HTTPS)
    before_files = state_snapshot(d)
    before_rf = redfish_view(d)
    cases = bad_inputs(tmp_path, ca)
    # A certificate with no key certd holds, for the client that needs one.
    lone, _k, _p = ca.leaf("lone.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    leaf, _k, _p = ca.leaf("leaf.certd.test")
    extra = [
        ((SVC_LDAP, P_LDAP, I_INSTALL, "Install"), write(tmp_path, "lone.pem", cert_pem(lone)),
         E_INVALID_CERT, "key"),
        ((SVC_TRUST, P_TRUST, I_INSTALL, "Install"), write(tmp_path, "leaf.pem", cert_pem(leaf)),
         E_INVALID_CERT, "CA"),
    ]
    targets = [(SVC_LDAP, P_LDAP, I_INSTALL, "Install"),
               (SVC_TRUST, P_TRUST, I_INSTALL, "Install"),
               (SVC_TRUST, P_TRUST, I_INSTALLALL, "InstallAll"),
               (SVC_TRUST, P_TRUST, I_REPLACEALL, "ReplaceAll"),
               (SVC_HTTPS, https_obj, I_REPLACE, "Replace")]
    with d.bus.monitor() as mon:
        for target in targets:
            for what, path, name, word in cases:
                svc, obj, iface, method = target
                # A FIFO must not hang certd: the call answers (dbus-send's timeout is long).
                e = d.bus.error(svc, obj, iface, method, "s", path, timeout=60)
                try:
                    expect_error(e, name, word)
                except AssertionError as ex:
                    raise AssertionError(f"{method} on {obj} with {what}: {ex}") from None
        for target, path, name, word in extra:
            svc, obj, iface, method = target
            expect_error(d.bus.error(svc, obj, iface, method, "s", path), name, word)
        mon.sync()
        assert changes(mon) == [], changes(mon)
    assert state_snapshot(d) == before_files
    assert redfish_view(d) == before_rf
    # certd still serves: a good install works after all of it.
    _c, _k, pem = ca.leaf("after.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert id_re(P_LDAP).fullmatch(install(d, P_LDAP, write(tmp_path, "ok.pem", pem)))


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def unreadable_install(d, ca, tmp_path):
    """Install of a file in a directory certd may not enter: InvalidArgument, nothing kept."""
    _c, _k, pem = ca.leaf("locked.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    locked = tmp_path / "locked"
    locked.mkdir()
    f = write(locked, "c.pem", pem)
    locked.chmod(0)
    try:
        e = d.bus.error(SVC_LDAP, P_LDAP, I_INSTALL, "Install", "s", f)
        expect_error(e, E_INVALID_ARG, re.compile(r"(?i)read|permission|access"))
    finally:
        locked.chmod(0o700)
    assert dbus_certs(d, P_LDAP) == {}


def test_unreadable_file(certd_exe, certctl, ca, tmp_path, monkeypatch):
    """A file certd cannot read. Root reads any file whatever its mode, so as root certd runs
    as nobody here, on a bus that lets nobody connect."""
    if os.geteuid() != 0:
        pb = PrivateBus()
        run_as = []
    else:
        p = subprocess.run(NOBODY + ["test", "-x", certd_exe], timeout=60)
        if p.returncode != 0:
            pytest.skip(f"nobody cannot run {certd_exe} (a directory on its path is closed)")
        pb = PrivateBus(extra='<policy context="default"><allow user="*"/></policy>')
        os.chmod(pb.dir, 0o755)
        run_as = NOBODY
    base = tempfile.mkdtemp(prefix="certd-unreadable-")
    d = None
    try:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", pb.address)
        d = Certd(certd_exe, certctl, base, config=CONFIG)
        os.chmod(base, 0o755)
        if run_as:
            os.chown(base, 65534, 65534)
        plain = d.command
        d.command = lambda: run_as + plain()
        d.start()
        d.bus = pb.bus
        wait_for_names(pb.bus, d)
        unreadable_install(d, ca, tmp_path)
        assert d.stop() == 0
    finally:
        if d is not None:
            d.kill()
            no_secrets(d.log(), "the log of certd")
        pb.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_client_holds_one_certificate(dcertd, ca, tmp_path):
    d = dcertd
    _c, _k, pem = ca.leaf("one.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    install(d, P_LDAP, write(tmp_path, "one.pem", pem))
    before = state_snapshot(d)
    _c, _k, pem2 = ca.leaf("two.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    expect_error(d.bus.error(SVC_LDAP, P_LDAP, I_INSTALL, "Install", "s",
                             write(tmp_path, "two.pem", pem2)),
                 E_NOT_ALLOWED, re.compile(r"(?i)already|exist"))
    assert state_snapshot(d) == before
    # DeleteAll on a client empties it.
    assert d.bus.call(SVC_LDAP, P_LDAP, I_DELETEALL, "DeleteAll") == []
    assert dbus_certs(d, P_LDAP) == {} and redfish_view(d)[LDAP_RF] == {}


# --- concurrency and the two front ends together ----------------------------------------------

def test_concurrent_installs_and_deletes(dcertd, tmp_path):
    d = dcertd
    old_roots = [CA(f"old root {i}") for i in range(5)]
    new_roots = [CA(f"new root {i}") for i in range(10)]
    old = [install(d, P_TRUST, write(tmp_path, f"old{i}.pem", r.pem))
           for i, r in enumerate(old_roots)]
    files = [write(tmp_path, f"new{i}.pem", r.pem) for i, r in enumerate(new_roots)]
    with d.bus.monitor() as mon, concurrent.futures.ThreadPoolExecutor(15) as pool:
        n = len(mon.snapshot())
        adds = [pool.submit(install, d, P_TRUST, f) for f in files]
        dels = [pool.submit(d.bus.call, SVC_TRUST, p, I_DELETE, "Delete") for p in old]
        added = [f.result() for f in adds]
        assert [f.result() for f in dels] == [[]] * len(old)
        assert len(set(added)) == len(added) and not set(added) & set(old)
        for p in added:
            wait_added(mon, P_TRUST, p, start=n)
        for p in old:
            wait_removed(mon, P_TRUST, p, start=n)
    shown = dbus_certs(d, P_TRUST)
    assert set(shown) == set(added)
    dbus_set = {load_pems(v["CertificateString"])[0] for v in shown.values()}
    assert dbus_set == {r.cert for r in new_roots}
    rf = redfish_view(d)[TRUST_RF]
    assert set(rf.values()) == dbus_set
    # Redfish's ids are the SHA-256 fingerprints.
    assert set(rf) == {c.fingerprint(hashes.SHA256()).hex() for c in dbus_set}


def test_redfish_and_dbus_interleaved(dcertd, ca, tmp_path):
    d = dcertd
    (https_obj,) = dbus_certs(d, P_HTTPS)
    r1, r2 = CA("redfish root"), CA("dbus root")
    with d.bus.monitor() as mon, Client(d) as a:
        # A Redfish install emits InterfacesAdded with the certificate.
        body = ok(a.post(TRUST_RF, json={"CertificateString": r1.pem.decode(),
                                         "CertificateType": "PEM"})).json()
        _, sig = wait_added(mon, P_TRUST)
        rf_obj = sig["payload"]["data"][0]
        check_cert_props(sig["payload"]["data"][1][I_CERT], r1.cert)
        assert list(dbus_certs(d, P_TRUST)) == [rf_obj]

        # A D-Bus install is in Redfish at once.
        dbus_obj = install(d, P_TRUST, write(tmp_path, "r2.pem", r2.pem))
        members = ok(a.get(TRUST_RF)).json()["Members"]
        assert {m["@odata.id"] for m in members} == {
            f"{TRUST_RF}/{r.cert.fingerprint(hashes.SHA256()).hex()}" for r in (r1, r2)}

        # A Redfish ReplaceCertificate of HTTPS: PropertiesChanged on the D-Bus object.
        cert, _k, pem = ca.leaf("rf-replaced.certd.test")
        n = len(mon.snapshot())
        ok(a.post(REPLACE_RF, json={"CertificateString": pem.decode(), "CertificateType": "PEM",
                                    "CertificateUri": {"@odata.id": HTTPS_RF + "/1"}}))
        _, sig = wait_changed(mon, https_obj, I_CERT, "CertificateString", start=n)
        assert load_pems(sig["payload"]["data"][1]["CertificateString"]) == [cert]
        check_cert_props(dbus_certs(d, P_HTTPS)[https_obj], cert)

        # A Redfish DELETE: InterfacesRemoved for the object that showed it.
        n = len(mon.snapshot())
        assert a.delete(body["@odata.id"]).status_code == 204
        wait_removed(mon, P_TRUST, rf_obj, start=n)
        assert list(dbus_certs(d, P_TRUST)) == [dbus_obj]

        # A D-Bus delete: gone from Redfish at once.
        d.bus.call(SVC_TRUST, dbus_obj, I_DELETE, "Delete")
        assert ok(a.get(TRUST_RF)).json()["Members"] == []


# --- start-up ---------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["unix:path=/nonexistent/certd-test-bus", None])
def test_no_bus_fails_to_start(certd_factory, monkeypatch, tmp_path, address):
    if address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    else:
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    # Without the variable sd-bus would try $XDG_RUNTIME_DIR/bus: an empty directory.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    d = certd_factory(config=CONFIG, name="nobus").start(expect_ready=False)
    rc = d.proc.wait(timeout=60)
    assert rc != 0, d.log()
    log = d.log()
    assert "D-Bus" in log and "session" in log, log


def test_name_already_owned_fails_to_start(dcertd, certd_factory, private_bus):
    owners = {n: private_bus.owner(n) for n in ALL_NAMES}
    second = certd_factory(config=CONFIG, name="second").start(expect_ready=False)
    rc = second.proc.wait(timeout=60)
    assert rc != 0, second.log()
    log = second.log()
    assert re.search(r"xyz\.openbmc_project\.Certs\.(Manager\.[A-Z]\w*\.[A-Z]\w*|"
                     r"ca\.authority\.Manager)", log), log
    assert re.search(r"(?i)own|exist|running|taken|use", log), log
    # The first one is untouched.
    assert {n: private_bus.owner(n) for n in ALL_NAMES} == owners
    assert len(dbus_certs(dcertd, P_HTTPS)) == 1


def test_packaged_system_bus_policy(certd_factory, monkeypatch):
    """packaging/dbus/xyz.openbmc_project.Certs.conf on a bus that lets everyone connect: root
    owns and serves the names; any other user may neither own such a name nor call certd."""
    policy = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging",
                          "dbus", "xyz.openbmc_project.Certs.conf")
    assert os.path.isfile(policy)
    pb = PrivateBus(extra=f'<policy context="default"><allow user="*"/></policy>'
                          f'<include>{os.path.abspath(policy)}</include>')
    try:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", pb.address)
        d = certd_factory(config=CONFIG, name="policy")
        if os.geteuid() != 0:
            d.start(expect_ready=False)
            assert d.proc.wait(timeout=60) != 0
            assert "xyz.openbmc_project.Certs." in d.log(), d.log()
            return
        d.start()
        wait_for_names(pb.bus, d)
        assert len(pb.bus.managed_objects(SVC_HTTPS, P_HTTPS)) >= 1
        os.chmod(pb.dir, 0o755)  # so that nobody reaches the socket
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

        def as_nobody(*cmd):
            return subprocess.run(nobody + list(cmd), capture_output=True, text=True,
                                  env=pb.bus.env(), timeout=60)
        p = as_nobody("dbus-send", "--session", "--print-reply", f"--dest={SVC_HTTPS}", P_HTTPS,
                      f"{I_OM}.GetManagedObjects")
        assert p.returncode != 0 and "AccessDenied" in p.stderr, (p.stdout, p.stderr)
        p = as_nobody("dbus-send", "--session", "--print-reply", f"--dest={SVC_CA}", P_CA,
                      f"{I_AUTHORITY}.SignCSR", "string:x")
        assert p.returncode != 0 and "AccessDenied" in p.stderr, (p.stdout, p.stderr)
        for name, allowed in (("xyz.openbmc_project.Certs.Manager.Server.Other", False),
                              ("xyz.openbmc_project.Certs.ca.authority.Manager", False),
                              ("org.example.certd.test", True)):
            p = as_nobody("busctl", "--user", "call", "org.freedesktop.DBus",
                          "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su",
                          name, "0")
            assert (p.returncode == 0) == allowed, (name, p.stdout, p.stderr)
        assert d.stop() == 0
    finally:
        pb.stop()


# --- losing the bus -----------------------------------------------------------------------------

def test_reconnects_after_the_bus_restarts(certd_factory, monkeypatch, tmp_path):
    """dbus-daemon goes away and comes back on the same address: certd keeps serving Redfish
    meanwhile, then owns every name again with the same objects at the same paths."""
    pb = PrivateBus()
    try:
        # The address without the guid: a restarted bus has a new one, and a client that names a
        # guid refuses a server with another (as the system bus's address names none).
        pb.address = pb.address.split(",guid=")[0]
        pb.bus = Bus(pb.address)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", pb.address)
        d = certd_factory(config=CONFIG, name="reconnect").start()
        d.bus = pb.bus
        wait_for_names(pb.bus, d)
        before = {p: set(ifs) for p, ifs in pb.bus.managed_objects(SVC_HTTPS, P_HTTPS).items()}
        entry = pb.bus.call(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", console_csr()[1])[0]
        wait_status(d, entry)

        stop_process(pb.proc)  # dbus-daemon removes its socket as it exits
        wait_for(lambda: "lost" in d.log(), timeout=30, what="certd to see the bus go")
        assert d.proc.poll() is None, d.log()
        ok(d.get("/redfish/v1/CertificateService"))

        pb.proc.stdout.close()
        pb.proc = subprocess.Popen(["dbus-daemon", f"--config-file={pb.config}", "--nofork",
                                    "--print-address=1"], stdout=subprocess.PIPE, stderr=pb.log,
                                   stdin=subprocess.DEVNULL)
        assert pb.proc.stdout.readline().decode().startswith(pb.address + ",guid=")
        wait_for_names(pb.bus, d)
        after = {p: set(ifs) for p, ifs in pb.bus.managed_objects(SVC_HTTPS, P_HTTPS).items()}
        assert after == before
        # The VMI CA's entry survived the loss, at its path, still Complete.
        assert pb.bus.get_property(SVC_CA, entry, I_ENTRY, "Status") == STATE + "Complete"
        # Only the exact path names it.
        bad = entry.rsplit("/", 1)[0] + "/0" + entry.rsplit("/", 1)[1]
        err = pb.bus.error(SVC_CA, bad, "org.freedesktop.DBus.Properties", "Get", "ss", I_ENTRY,
                           "Status")
        assert err.name.startswith("org.freedesktop.DBus.Error.Unknown"), err
        assert d.stop() == 0
    finally:
        pb.stop()


# --- what upstream's managers refuse, and the VMI CA with the host as CA -----------------------

def test_authority_has_no_csr(dcertd):
    """CSR.Create is on every manager (upstream), and an authority refuses it."""
    expect_error(csr_error(dcertd, P_TRUST, CommonName="ca.certd.test"), E_NOT_ALLOWED,
                 re.compile(r"(?i)authorit|CA certificates"))
    assert certs_of(dcertd.bus.managed_objects(SVC_TRUST, P_TRUST), P_TRUST) == {}


def test_generate_csr_newest_request_wins(dcertd):
    """A GenerateCSR while one runs starts anew (upstream; bmcweb retries after its timeout):
    the CSR object shows the newest request, an older one that ends later is dropped."""
    d = dcertd
    dropped = "ended after a newer request; dropped"
    for _attempt in range(3):
        n_dropped = d.log().count(dropped)
        with d.bus.monitor() as mon:
            slow = generate_csr(d, P_LDAP, CommonName="old.certd.test", KeyPairAlgorithm="RSA",
                                KeyBitLength=4096)
            fast = generate_csr(d, P_LDAP, CommonName="new.certd.test", KeyPairAlgorithm="EC",
                                KeyCurveId="prime256v1")
            assert slow == fast == P_LDAP + "/csr"
            # Both ended: the older one dropped, or (rarely) done before the newer came in.
            def ended():
                n_added = len(mon.signals("InterfacesAdded", P_LDAP))
                return n_added >= 2 or (n_added == 1 and d.log().count(dropped) > n_dropped)
            wait_for(ended, timeout=120, what="both CSR jobs to end")
            csr = x509.load_pem_x509_csr(d.bus.call(SVC_LDAP, fast, I_CSR, "CSR")[0].encode())
            assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
                "new.certd.test"
            if d.log().count(dropped) == n_dropped:
                continue  # the RSA key came first: nothing was dropped, try again
            # Only the newest was announced.
            mon.sync()
            added = mon.signals("InterfacesAdded", P_LDAP)
            assert len(added) == 1 and added[0]["payload"]["data"][0] == fast, added
            return
    pytest.fail("an RSA-4096 key was made before the next request three times in a row")


def test_entry_properties_are_certds_when_it_signs(dcertd):
    """With certd's CA signing, pldmd may not write an entry's result behind it."""
    d = dcertd
    entry = d.bus.call(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", console_csr()[1])[0]
    wait_status(d, entry)
    for prop, value in (("Status", STATE + "BadCSR"), ("ClientCertificate", "x")):
        expect_error(d.bus.error(SVC_CA, entry, I_PROPS, "Set", "ssv", I_ENTRY, prop,
                                 ("s", value)), E_NOT_ALLOWED, re.compile(r"(?i)sign"))
    assert d.bus.get_property(SVC_CA, entry, I_ENTRY, "Status") == STATE + "Complete"


def test_vmi_ca_with_the_host_as_ca(certd_factory, private_bus, tmp_path):
    """[ca] signer = off: entries wait for pldmd, which sets the host's answer through
    Properties.Set (upstream's flow); what it sets is checked."""
    d = certd_factory(config=CONFIG + "\n[ca]\nsigner = off\n", name="host").start()
    d.bus = private_bus
    wait_for_names(private_bus, d)
    try:
        expect_error(d.bus.error(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", "garbage"),
                     E_INVALID_ARG, "CSR")
        key, csr = console_csr("host.certd.test")
        with d.bus.monitor() as mon:
            entry = d.bus.call(SVC_CA, P_CA, I_AUTHORITY, "SignCSR", "s", csr)[0]
            wait_added(mon, P_CA, entry)
            time.sleep(1)
            assert d.bus.get_property(SVC_CA, entry, I_ENTRY, "Status") == STATE + "Pending"
            assert d.bus.get_property(SVC_CA, entry, I_PLDM_CSR, "CSR") == csr
            # What the host would answer, as pldmd sets it; bad values first.
            host = CA("host CA")
            cert, _k, _both = host.leaf("host.certd.test")
            pem = cert_pem(cert)
            for prop, value, word in (("Status", "Complete", "Status"),
                                      ("Status", STATE + "Done", "Status"),
                                      ("ClientCertificate", "not a certificate",
                                       re.compile(r"(?i)certificate"))):
                expect_error(d.bus.error(SVC_CA, entry, I_PROPS, "Set", "ssv", I_ENTRY, prop,
                                         ("s", value)), E_INVALID_ARG, word)
            assert d.bus.get_property(SVC_CA, entry, I_ENTRY, "Status") == STATE + "Pending"
            d.bus.call(SVC_CA, entry, I_PROPS, "Set", "ssv", I_ENTRY, "ClientCertificate",
                       ("s", pem.decode()))
            wait_changed(mon, entry, I_ENTRY, "ClientCertificate")
            d.bus.call(SVC_CA, entry, I_PROPS, "Set", "ssv", I_ENTRY, "Status",
                       ("s", STATE + "Complete"))
            wait_changed(mon, entry, I_ENTRY, "Status")
        assert d.bus.get_property(SVC_CA, entry, I_ENTRY, "ClientCertificate") == pem.decode()
        assert "PRIVATE KEY" not in d.log()
    finally:
        assert d.stop() == 0
        wait_for(lambda: not (ALL_NAMES & private_bus.names()), what="certd's names released")
