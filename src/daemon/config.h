/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's configuration (DESIGN.md "Configuration", issue #3): an INI file read with inih, the
 * embedded defaults used without a file, and the --state-dir/--listen overrides. The parser is a
 * pure function from bytes to a validated struct config (no I/O; config_load adds the bounded
 * read): everything in the struct has been checked, so the daemon uses it without re-checking.
 *
 * Invariants of a struct config handed out by this module:
 *  - every string is owned by the struct, NUL-terminated, free of control characters;
 *  - every path is absolute. users_file, password_file, uuid_file, cert and key (server and
 *    client endpoints), dir (authority endpoints) and the CA's cert, key, db and crl (whatever
 *    the signer) are always set; those not given in the file are derived from state_dir
 *    (STATE_DIR/users, STATE_DIR/initial-admin-password, STATE_DIR/uuid, STATE_DIR/ca.db and
 *    STATE_DIR/ca/crl.der, which are never given, STATE_DIR/NAME/cert.pem and key.pem,
 *    STATE_DIR/NAME, STATE_DIR/ca/ca.pem and ca-key.pem) and derived again when
 *    config_apply_overrides moves state_dir. is_*_given marks the others. Each pin store's file
 *    is set too (default STATE_DIR/pins/NAME.json, derived and moved the same way);
 *  - every path is in normal form (no "." or ".." component, no "//", no trailing "/"; checked
 *    after file: URI decoding), and the paths certd writes do not overlap: no two endpoints share
 *    a cert, key or dir (one endpoint's cert may equal its key: a combined PEM), none is
 *    users_file, password_file, uuid_file or one of the CA's files (whose cert may equal its
 *    key too), and neither an endpoint path nor those files lie inside an authority endpoint's
 *    dir. Pin store files and their locks (FILE.lock, pinstore.h) and the users file's lock
 *    take part as well: none equals another path above, and none lies in an authority's dir.
 *    Endpoint names CONFIG_RESERVED_NAMES are refused. Paths are compared as strings:
 *    symlinks, bind mounts and hard links are not seen here, so the daemon still opens with
 *    O_NOFOLLOW where it writes;
 *  - fields that do not belong to an endpoint's type keep their defaults and mean nothing;
 *  - [ca]: with signer = exec, key is never given (is_key_given false: the helper holds the
 *    key) and cert only when is_cert_given; with signer = off nothing of [ca] is used;
 *  - [tls]: client_pins indexes pins; client_ca is "" or the name of an authority endpoint, and
 *    is not "" when client_auth is not off and client_verify is chain or pin-or-chain.
 * Messages: "FILE:LINE: [section] key: what is wrong", "FILE:LINE: ..." for lines that are not a
 * key, "FILE: ..." for the file as a whole; values are quoted only briefly and printable.
 * Thread-safety: none needed; the loop thread owns the struct.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error/error.h"
#include "keys/keys.h"
#include "keys/providers.h"
#include "util/cleanup.h"
#include "util/span.h"
#include "x509/validate.h"

/*
 * Largest configuration file read. A file documenting every key of 16 endpoints is about 10 KiB;
 * 64 KiB bounds the work of parsing a wrong file (a certificate, a log) given by mistake.
 */
#define CONFIG_FILE_MAX (64u * 1024u)
/*
 * Longest line, in bytes without its terminator. inih copies each line into a buffer of
 * INI_MAX_LINE (200) bytes and silently splits longer lines; one byte goes to the NUL, and our
 * line reader hands inih lines without their terminator, so 199 bytes fit.
 */
#define CONFIG_LINE_MAX 199u
/* Endpoints in one configuration: a BMC has a handful (HTTPS, LDAP, truststore, a CA). */
#define CONFIG_ENDPOINTS_MAX 16u
/* Length of an endpoint name: it becomes a directory name and part of URIs and object paths. */
#define CONFIG_ENDPOINT_NAME_MAX 32u
/* Words of an exec: reload command, the program included (a line holds at most 199 bytes). */
#define CONFIG_EXEC_ARGS_MAX 32u
/* certd's own files in the state directory (struct config users_file, password_file, uuid_file). */
#define CONFIG_USERS_FILE_NAME    "users"
#define CONFIG_PASSWORD_FILE_NAME "initial-admin-password"
#define CONFIG_UUID_FILE_NAME     "uuid"
/*
 * The CA's: its issuance log STATE_DIR/ca.db, and STATE_DIR/ca holding the CRL and, when [ca]
 * does not place them elsewhere, the CA certificate and key (struct config_ca).
 */
#define CONFIG_CA_DIR_NAME  "ca"
#define CONFIG_CA_DB_NAME   "ca.db"
#define CONFIG_CA_CERT_NAME "ca.pem"
#define CONFIG_CA_KEY_NAME  "ca-key.pem"
#define CONFIG_CA_CRL_NAME  "crl.der"
/*
 * Endpoint names refused because STATE_DIR/NAME is one of certd's own files or directories
 * (CONFIG_PINS_DIR_NAME: the pin stores' default directory, below). ("." names, temporary
 * files, are outside the name charset.)
 */
#define CONFIG_RESERVED_NAMES                                                                     \
    CONFIG_USERS_FILE_NAME, CONFIG_PASSWORD_FILE_NAME, CONFIG_UUID_FILE_NAME, CONFIG_CA_DIR_NAME, \
        CONFIG_CA_DB_NAME, CONFIG_PINS_DIR_NAME
/* Longest path we build or accept (PATH_MAX, terminator included). */
#define CONFIG_PATH_MAX 4096u
/* A DNS host name (RFC 1035 §2.3.4: 253 characters in text form). */
#define CONFIG_HOSTNAME_MAX 253u
/* "[" INET6_ADDRSTRLEN "]:65535" and a NUL. */
#define CONFIG_LISTEN_STR_MAX 64u

/* Limits a front end applies; [limits] in the file. */
#define CONFIG_MAX_BODY_MIN             1024u
#define CONFIG_MAX_BODY_MAX             (1024u * 1024u)
#define CONFIG_MAX_BODY_DEFAULT         65536u
#define CONFIG_MAX_HEADERS_SIZE_MIN     1024u
#define CONFIG_MAX_HEADERS_SIZE_MAX     65536u
#define CONFIG_MAX_HEADERS_SIZE_DEFAULT 8192u
#define CONFIG_MAX_CONNECTIONS_MAX      4096u
#define CONFIG_MAX_CONNECTIONS_DEFAULT  64u
#define CONFIG_IDLE_TIMEOUT_MAX         3600u
#define CONFIG_IDLE_TIMEOUT_DEFAULT     30u
#define CONFIG_REQUEST_TIMEOUT_MAX      600u
#define CONFIG_REQUEST_TIMEOUT_DEFAULT  10u
#define CONFIG_DAYS_DEFAULT             365u

#define CONFIG_STATE_DIR_DEFAULT "/var/lib/certd"
#define CONFIG_LISTEN_DEFAULT    "127.0.0.1:8443"

/* Values are the syslog(3) priorities, so the log module can use them directly. */
enum config_log_level {
    CONFIG_LOG_ERR = 3,
    CONFIG_LOG_WARNING = 4,
    CONFIG_LOG_NOTICE = 5,
    CONFIG_LOG_INFO = 6,
    CONFIG_LOG_DEBUG = 7,
    CONFIG_LOG_LEVEL_MAX
};

enum config_tls_profile {
    CONFIG_TLS_INTERMEDIATE, /* TLS 1.2 and 1.3, forward-secret AEAD suites (the default) */
    CONFIG_TLS_MODERN,       /* TLS 1.3 only */
    CONFIG_TLS_PROFILE_MAX
};

/*
 * [tls] client certificates (issue #6). client_auth: whether the listener asks for one (off:
 * never; optional: a client without one authenticates with a password or a session; required:
 * the handshake fails without one). client_verify: how a client certificate is accepted: by
 * its key's pin in the listener's pin store (pin; chain, issuer and dates not looked at), by a
 * chain to the client_ca authority endpoint's certificates (chain; dates and the usual X.509
 * checks), or either (pin-or-chain: the pin is tried first). A certificate offered and not
 * accepted fails the handshake, whatever client_auth says.
 */
enum config_client_auth {
    CONFIG_CLIENT_AUTH_OFF, /* the default */
    CONFIG_CLIENT_AUTH_OPTIONAL,
    CONFIG_CLIENT_AUTH_REQUIRED,
    CONFIG_CLIENT_AUTH_MAX
};
/*
 * [dbus] bus (issue #7): the bus the D-Bus front end (dbus.h) serves on. off: none (the
 * default, and the embedded configuration's); system: the system bus (the packaged unit's
 * configuration); session: the bus $DBUS_SESSION_BUS_ADDRESS names (tests, a user's own
 * certd). With a bus, endpoint names become D-Bus object path and bus name elements, so they
 * must match [a-z][a-z0-9_]* (no '-', no leading digit).
 */
enum config_dbus_bus { CONFIG_DBUS_OFF, CONFIG_DBUS_SYSTEM, CONFIG_DBUS_SESSION, CONFIG_DBUS_MAX };

enum config_client_verify {
    CONFIG_CLIENT_VERIFY_PIN, /* the default */
    CONFIG_CLIENT_VERIFY_CHAIN,
    CONFIG_CLIENT_VERIFY_PIN_OR_CHAIN,
    CONFIG_CLIENT_VERIFY_MAX
};
/* Pin stores in one configuration ([pins NAME] sections and the implicit client_pins one). */
#define CONFIG_PINS_MAX 8u
/* STATE_DIR/pins/NAME.json is a store's default file; "pins" is a reserved endpoint name. */
#define CONFIG_PINS_DIR_NAME    "pins"
#define CONFIG_PINS_FILE_SUFFIX ".json"
/* The store client_pins names when it is not given. */
#define CONFIG_CLIENT_PINS_DEFAULT "clients"
/* client_ca when not given, if an authority endpoint has this name (the default config's). */
#define CONFIG_CLIENT_CA_DEFAULT "truststore"

/* [pins NAME]: a pin store (pin/pinstore.h). */
struct config_pins {
    char name[CONFIG_ENDPOINT_NAME_MAX + 1]; /* 1..32 of [a-z0-9_-] */
    char *file; /* absolute path in normal form; default STATE_DIR/pins/NAME.json */
    bool is_file_given;
};

/* A numeric listening address: family AF_INET (addr[0..4)) or AF_INET6 (addr[0..16)). */
struct config_listen {
    int family;
    uint8_t addr[16];
    uint16_t port;                    /* host byte order, 1..65535 */
    char text[CONFIG_LISTEN_STR_MAX]; /* canonical form: "127.0.0.1:8443", "[::1]:8443" */
};

enum config_reload_kind {
    CONFIG_RELOAD_NONE,
    CONFIG_RELOAD_SELF,    /* swap certd's own TLS context (server endpoints only) */
    CONFIG_RELOAD_SYSTEMD, /* ReloadOrRestartUnit(unit) */
    CONFIG_RELOAD_SIGNAL,  /* kill(pid read from pidfile, signal) */
    CONFIG_RELOAD_EXEC,    /* run argv, no shell */
    CONFIG_RELOAD_KIND_MAX
};

/*
 * What the parser guarantees is syntax only. At run time the daemon (TODO(#3)) must still check
 * that a pidfile and an exec program are owned by root and not writable by group or others (and
 * the same for their directories) before trusting them, and must run argv with execv(): never
 * through a shell, so no word is ever interpreted.
 */
struct config_reload {
    enum config_reload_kind kind;
    char *unit;    /* SYSTEMD: a unit name with a known suffix ("nslcd.service"); else NULL */
    int signal;    /* SIGNAL: SIGHUP, SIGUSR1 or SIGUSR2 (given by name only); else 0 */
    char *pidfile; /* SIGNAL: absolute path in normal form; else NULL */
    char **argv;   /* EXEC: argc words and a NULL; argv[0] an absolute path in normal form (the
                      other words are not checked); else NULL */
    size_t argc;
};

struct config_endpoint {
    char name[CONFIG_ENDPOINT_NAME_MAX + 1]; /* 1..32 of [a-z0-9_-] */
    enum endpoint_type type;
    /* server and client */
    char *cert; /* absolute path of the certificate (+chain) PEM */
    char *key;  /* absolute path of the private key PEM (may equal cert); a TSS2 blob for a key
                   made in a TPM */
    bool is_cert_given;
    bool is_key_given;
    /*
     * Issue #5: where the key or certificate lives when it is not a file: a URI that
     * uri_check accepts and that is not file: ("handle:0x81000001", "object:/p",
     * "handle:0x01000010" for a certificate in an NV index, a provider's own scheme); NULL
     * when cert / key above is the place (a file: URI or a path given, or the default). When
     * set, cert / key keep their default paths under STATE_DIR and mean nothing. A key_uri
     * endpoint needs a new_key with a provider (keys made for it are made there).
     */
    char *cert_uri;
    char *key_uri;
    struct key_spec new_key; /* keys made for self-signed certificates and CSRs; ec:P-256;
                                "tpm2:ec:P-256" makes them in a provider (its name is one of
                                [providers] load) */
    char **names;            /* n_names SANs (san_classify-valid) for self-signed certificates */
    size_t n_names;
    unsigned days; /* self-signed validity, 1..CERTD_VALIDITY_DAYS_MAX; 365 */
    enum validity_policy expired;
    enum validity_policy not_yet_valid;
    bool allow_ed25519;
    /* authority */
    char *dir; /* absolute path of the CA directory (no trailing slash) */
    bool is_dir_given;
    size_t max; /* 1..CERTD_AUTHORITY_MAX_HARD; CERTD_AUTHORITY_MAX_DEFAULT */
    /* all */
    struct config_reload reload;
};

/* [ca]: the CA that signs management consoles' CSRs (issue #4). */
enum config_signer {
    CONFIG_SIGNER_LOCAL, /* certd signs with its own CA key (the default) */
    CONFIG_SIGNER_EXEC,  /* a helper program signs (the hook for a PLDM bridge to a host CA) */
    CONFIG_SIGNER_OFF,   /* no CA: SignCSR answers 503 */
    CONFIG_SIGNER_MAX
};

#define CONFIG_CA_DAYS_DEFAULT         365u
#define CONFIG_CA_ROOT_DAYS_DEFAULT    3650u
#define CONFIG_CA_CRL_DAYS_DEFAULT     7u
#define CONFIG_CA_CRL_DAYS_MAX         365u
#define CONFIG_CA_EXEC_TIMEOUT_DEFAULT 30u
#define CONFIG_CA_EXEC_TIMEOUT_MAX     600u

struct config_ca {
    enum config_signer signer;
    char **exec_argv; /* EXEC: argc words and a NULL, as config_reload's argv (argv[0] an
                         absolute path in normal form); else NULL */
    size_t exec_argc;
    unsigned exec_timeout; /* seconds, 1..CONFIG_CA_EXEC_TIMEOUT_MAX */
    /* LOCAL: the CA certificate and key (absolute paths; default STATE_DIR/ca/ca.pem and
     * STATE_DIR/ca/ca-key.pem). EXEC: cert, when given, is the CA certificate handed out with
     * each signed certificate when the helper prints no chain. */
    char *cert;
    char *key;
    bool is_cert_given;
    bool is_key_given;
    char *key_uri;           /* LOCAL: as config_endpoint's key_uri (a CA key in a TPM) */
    char *db;                /* the issuance log: STATE_DIR/ca.db (never given) */
    char *crl;               /* the current CRL (DER): STATE_DIR/ca/crl.der (never given) */
    struct key_spec new_key; /* the key of a root made at first start: ec:P-384 */
    char *common_name;       /* the root's CN; NULL: "certd CA " + host name, at run time */
    unsigned root_days;      /* the root's validity: 3650 */
    unsigned days;           /* issued certificates' validity: 365 (capped at the CA's) */
    uint32_t allowed_sans;   /* SAN kinds copied from CSRs, bits 1u << SAN_DNS etc. (csr.h);
                                default DNS and IP */
    uint32_t subject_attrs;  /* subject attributes kept besides CN, bits 1u << CONFIG_ATTR_*;
                                default O, OU, C, ST, L */
    bool server_auth;        /* EKU serverAuth besides clientAuth: no */
    bool allow_ed25519;      /* Ed25519 CSR keys: no */
    unsigned crl_days;       /* the CRL's nextUpdate: 7 days after it is made */
};

/* Subject attributes [ca] subject = may keep (CN is always kept and required). */
enum config_attr {
    CONFIG_ATTR_O,
    CONFIG_ATTR_OU,
    CONFIG_ATTR_C,
    CONFIG_ATTR_ST,
    CONFIG_ATTR_L,
    CONFIG_ATTR_EMAIL,
    CONFIG_ATTR_SERIALNUMBER,
    CONFIG_ATTR_MAX
};
#define CONFIG_CA_SUBJECT_DEFAULT                                             \
    ((1u << CONFIG_ATTR_O) | (1u << CONFIG_ATTR_OU) | (1u << CONFIG_ATTR_C) | \
     (1u << CONFIG_ATTR_ST) | (1u << CONFIG_ATTR_L))

/*
 * [providers] and [provider NAME] (issue #5). Defaults: load = default, no query. For a
 * provider named in the table of known providers (config.c: "tpm2"), what the configuration does
 * not say comes from that table: its global query terms (tpm2: "tpm2.digest!=yes,
 * tpm2.cipher!=yes,tpm2.rand!=yes", so that hashing, ciphers and random numbers never go to the
 * TPM) are appended to query, and its sign_query ("?tpm2.signature") is used.
 */
struct config_providers {
    struct provider_spec specs[PROVIDERS_MAX]; /* in load order; params owned by the config */
    char *sign_query[PROVIDERS_MAX]; /* per provider: the property query of a TLS context whose
                                        key this provider holds (never NULL: the known
                                        provider's, or "?provider=NAME") */
    size_t n;
    char *query; /* global default properties; NULL = none */
    /*
     * Environment variables to set before the providers load: a known provider's parameter
     * that the provider reads only from its environment (config.c's table: tpm2-openssl 1.1.1
     * asks OpenSSL for "tcti" but drops the answer, so [provider tpm2] tcti = X becomes
     * TPM2OPENSSL_TCTI=X). name is the variable, value its value; both owned.
     */
    struct provider_param env[PROVIDERS_MAX];
    size_t n_env;
    /*
     * Per provider (index as specs): what its keys are made under, from certd's own keys of a
     * known provider's section: tpm2's "parent = 0x81..." (a persistent parent; 0: the
     * provider's default, the owner hierarchy) and "parent_auth_file = PATH" (that parent's
     * password, read at start: the first line of a file only we may read). The *_param and
     * auth_env names come from config.c's table (borrowed, static); auth_file is owned.
     */
    struct config_keygen {
        uint32_t parent;
        const char *parent_param; /* "parent" */
        const char *auth_param;   /* "parent-auth" */
        const char *auth_env;     /* "TPM2OPENSSL_PARENT_AUTH" */
        char *auth_file;          /* NULL: no password */
    } keygen[PROVIDERS_MAX];
};

struct config {
    /* [server] */
    struct config_listen listen;
    char *state_dir; /* absolute, no trailing slash (except "/") */
    char *users_file;
    bool is_users_file_given;
    char *password_file; /* the first admin's password, written once (users_bootstrap) */
    char *uuid_file;     /* the Redfish ServiceRoot UUID, made once and kept */
    char hostname[CONFIG_HOSTNAME_MAX + 1]; /* "" = gethostname() at run time */
    enum config_log_level log_level;
    /* [tls] */
    enum config_tls_profile tls_profile;
    enum config_dbus_bus dbus_bus; /* [dbus] bus */
    enum config_client_auth client_auth;
    enum config_client_verify client_verify;
    /*
     * The pin store the listener checks client certificates against: an index into pins
     * (always valid: the store client_pins names -- CONFIG_CLIENT_PINS_DEFAULT when not given
     * -- is added with its default file when no [pins NAME] section defines it).
     */
    size_t client_pins;
    /*
     * The authority endpoint whose certificates client chains are verified against
     * (client_verify chain or pin-or-chain): its name, "" when chains are never verified.
     * Default: "truststore" when such an authority endpoint exists; with client_auth not off
     * and a chain mode, an error when there is none.
     */
    char client_ca[CONFIG_ENDPOINT_NAME_MAX + 1];
    /* [limits] */
    unsigned max_body;         /* bytes */
    unsigned max_headers_size; /* bytes */
    unsigned max_connections;
    unsigned idle_timeout;    /* seconds */
    unsigned request_timeout; /* seconds */
    /* [endpoint NAME], in file order */
    struct config_endpoint endpoints[CONFIG_ENDPOINTS_MAX];
    size_t n_endpoints;
    /* [ca] */
    struct config_ca ca;
    /* [pins NAME], in file order, then the implicit client_pins store (if it had no section) */
    struct config_pins pins[CONFIG_PINS_MAX];
    size_t n_pins;
    /* [providers], [provider NAME] */
    struct config_providers providers;
};

/*
 * Parse configuration text (untrusted: any bytes, not NUL-terminated) read from `filename`
 * (borrowed, for messages only; NULL means "<config>"). Sections and keys are those of
 * certd.conf.example; anything else is an error, as is a repeated key or section. A file without
 * any [endpoint] section gets the embedded default endpoints (see config_new_default).
 * Returns 0 and an owned config in *ret, or:
 *   -E2BIG   CERTD_E_INPUT_TOO_LARGE (text over CONFIG_FILE_MAX, a line over CONFIG_LINE_MAX),
 *            CERTD_E_TOO_MANY_VALUES (endpoints, names, exec words, pin stores: the implicit
 *            client_pins store counts), CERTD_E_FIELD_TOO_LONG;
 *   -EBADMSG CERTD_E_FIELD_INVALID for malformed text (NUL or control bytes, a line that is
 *            neither a section, a key nor a comment);
 *   -EINVAL  CERTD_E_FIELD_INVALID (bad value, a path not in normal form, a reserved endpoint
 *            name, unknown or repeated key or section, a key on the wrong endpoint type, a [ca]
 *            key with signer = exec ("key is only for signer = local"), paths
 *            that overlap: "FILE:LINE: [endpoint B] key 'PATH' is also [endpoint A] cert" or
 *            "... lies inside [endpoint A] dir 'DIR'", LINE that of B's key, else of B's
 *            section; a pin store's: "[pins S] file ..." or "the lock of [pins S] file ...",
 *            LINE that of its file key, else of its section, else of [tls] client_pins), a
 *            client_ca that is not an authority endpoint, a chain client_verify without any
 *            client_ca ("[tls] client_verify: chain needs client_ca = NAME of an authority
 *            endpoint ..."), CERTD_E_FIELD_MISSING (an endpoint without type);
 *   -EOPNOTSUPP CERTD_E_FIELD_INVALID for a provider that this build does not support (meson
 *            option "providers": "provider 'X' is not supported by this build (built with:
 *            default, tpm2)");
 *   -ENOMEM.
 */
_must_check_ int config_parse(struct span text, const char *filename, struct config **ret,
                              struct certd_err *err);

/*
 * Read the file at path (at most CONFIG_FILE_MAX bytes, symlinks followed: it is the admin's
 * file) and config_parse it. Besides config_parse's errors: -ENOENT with CERTD_E_NOT_FOUND,
 * -E2BIG with CERTD_E_INPUT_TOO_LARGE, other -errno with CERTD_E_STORAGE.
 */
_must_check_ int config_load(const char *path, struct config **ret, struct certd_err *err);

/*
 * The embedded defaults (no file): listen 127.0.0.1:8443, state_dir (borrowed; NULL means
 * CONFIG_STATE_DIR_DEFAULT; absolute, in normal form but for trailing slashes), and the
 * endpoints "https" (server, reload self),
 * "ldap" (client, reload none) and "truststore" (authority, max 10) under it, a local CA with
 * every [ca] default, client_auth off, client_verify pin, client_ca "truststore" and the pin store
 * CONFIG_CLIENT_PINS_DEFAULT at STATE_DIR/pins/clients.json.
 * Returns 0 and an owned config, -EINVAL for a relative or non-normal state_dir, -E2BIG for one too
 * long for its paths, or -ENOMEM.
 */
_must_check_ int config_new_default(const char *state_dir, struct config **ret);

/*
 * Apply the command-line overrides, which win over the file: state_dir (nullable, absolute) moves
 * every path that was not given explicitly; listen (nullable) as in [server] listen. All or
 * nothing: on failure cfg is unchanged. The paths are checked again as config_parse does (the
 * moved paths may overlap where the file's did not). Returns 0, or -EINVAL with
 * CERTD_E_FIELD_INVALID ("--state-dir: ...", "--listen: ..."), -E2BIG with
 * CERTD_E_FIELD_TOO_LONG, or -ENOMEM.
 */
_must_check_ int config_apply_overrides(struct config *cfg, const char *state_dir,
                                        const char *listen, struct certd_err *err);

/* Free cfg and all it owns; accepts NULL; returns NULL. */
struct config *config_free(struct config *cfg);
DEFINE_CLEANUP_STRUCT(config, config_free)

/*
 * The property query for a TLS context whose key provider `name` holds: that provider's
 * sign_query (borrowed), or NULL when the provider is not configured.
 */
const char *config_provider_sign_query(const struct config *cfg, const char *name);

/* The endpoint called name (borrowed from cfg), or NULL. */
const struct config_endpoint *config_endpoint_find(const struct config *cfg, const char *name);

/* The pin store called name (borrowed from cfg), or NULL. */
const struct config_pins *config_pins_find(const struct config *cfg, const char *name);

/* "off", "optional", "required"; "pin", "chain", "pin-or-chain". NULL when out of range. */
const char *config_client_auth_name(enum config_client_auth a);
const char *config_client_verify_name(enum config_client_verify v);
const char *config_dbus_bus_name(enum config_dbus_bus b);

/* Fill a socket address for cfg->listen; returns its length. */
socklen_t config_listen_sockaddr(const struct config_listen *l, struct sockaddr_storage *ret);

/* "err", "warning", "notice", "info", "debug"; "intermediate", "modern"; "none", "self",
 * "systemd", "signal", "exec". NULL for out-of-range values. */
const char *config_log_level_name(enum config_log_level l);
const char *config_tls_profile_name(enum config_tls_profile p);
const char *config_reload_kind_name(enum config_reload_kind k);
/* "local", "exec", "off"; the attribute's short name ("O", "OU", "C", "ST", "L", "emailAddress",
 * "serialNumber", as [ca] subject = takes them) and its OpenSSL NID (NID_organizationName ...).
 * NULL and NID_undef (0) for out-of-range values. */
const char *config_signer_name(enum config_signer s);
const char *config_attr_name(enum config_attr a);
int config_attr_nid(enum config_attr a);
