/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration parser (config.h). The text is checked as a whole first (size, NUL and
 * control bytes, line length: inih would split a long line silently), then fed to inih one line
 * at a time through our own reader, which counts lines (Debian's inih passes no line number to
 * the handler), recognises section headers itself (inih does not report them, and truncates long
 * ones) and stops inih at the first error. Values are checked as they arrive; what depends on
 * the whole endpoint (its type, the keys that belong to it) or the whole [ca] section (its
 * signer) is checked once the text is read.
 * Paths not given are derived from state_dir last, so that --state-dir moves them.
 *
 * Providers (issue #5): [providers] load may name only what the build supports (the meson option
 * "providers", CERTD_PROVIDERS_BUILT); [provider NAME] sections may come before or after it, so
 * they are kept aside while reading and matched to load afterwards. Key and certificate
 * locations go through uri_check (keys/uri.h), the one parser of certd's URIs: a file: URI or a
 * plain path becomes a path, anything else a URI for OSSL_STORE.
 *
 * Client certificates (issue #6): [pins NAME] sections are read as endpoints are; once the text
 * is read, the store [tls] client_pins names is added with its default file when no section
 * defines it, and client_ca is matched against the endpoints (the embedded ones included). Pin
 * store files and their lock files take part in the one overlap check of the paths certd
 * writes (paths_check), as the users file's lock now does too.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <openssl/obj_mac.h>

#include "csr/csr.h"
#include "keys/uri.h"
#include "pin/pinstore.h"
#include "store/store.h"
#include "tss/tss.h"
#include "users/users.h"
#include "util/limits.h"
#include "util/parse.h"

_Static_assert(CONFIG_LINE_MAX < INI_MAX_LINE, "a checked line must fit inih's line buffer");

#ifndef CERTD_PROVIDERS_BUILT
#error "CERTD_PROVIDERS_BUILT comes from meson (option providers, src/daemon/meson.build)"
#endif
_Static_assert(sizeof(CERTD_PROVIDERS_BUILT) > 1, "meson option providers names no provider");

enum section_kind {
    SEC_NONE,
    SEC_SERVER,
    SEC_TLS,
    SEC_LIMITS,
    SEC_CA,
    SEC_PROVIDERS,
    SEC_PROVIDER, /* [provider NAME] */
    SEC_ENDPOINT,
    SEC_PINS, /* [pins NAME] */
    SEC_DBUS,
    SEC_KIND_MAX
};

/* [ca] sans = dns,ip: the names a console's certificate usually carries. */
#define CONFIG_CA_SANS_DEFAULT ((1u << SAN_DNS) | (1u << SAN_IP))

/* Keys per section, for duplicate detection; [ca] has the most. */
#define SECTION_KEYS_MAX 16u

struct parse_state;
typedef int (*key_set_fn)(struct parse_state *st, const char *key, const char *value);

struct key_def {
    const char *name;
    key_set_fn set;
    unsigned types; /* endpoint keys: the types (1 << enum endpoint_type) they belong to */
    bool can_be_empty;
};

/*
 * A [provider NAME] section as read. Its strings are owned here until providers_finish moves
 * them into the config in [providers] load order (NULL then).
 */
struct provider_section {
    char name[KEY_PROVIDER_NAME_MAX + 1];
    unsigned line;
    struct provider_param params[PROVIDER_PARAMS_MAX];
    unsigned param_lines[PROVIDER_PARAMS_MAX];
    size_t n_params;
    char *sign_query;
    unsigned sign_query_line;
    uint32_t parent; /* keygen_parent: 0 = not given */
    unsigned parent_line;
    char *parent_auth_file;
    unsigned parent_auth_file_line;
};

struct parse_state {
    const char *filename;
    struct config *cfg;
    struct certd_err *err;
    int r; /* the first error; parsing stops there */
    struct cursor cur;
    unsigned lineno; /* of the line last handed to inih */
    enum section_kind sec;
    struct config_endpoint *ep; /* the current [endpoint] */
    unsigned *key_lines;        /* the current section's row of the tables below */
    char label[16 + CONFIG_ENDPOINT_NAME_MAX];
    unsigned sec_line[SEC_KIND_MAX];
    unsigned sec_key_lines[SEC_KIND_MAX][SECTION_KEYS_MAX];
    unsigned ep_line[CONFIG_ENDPOINTS_MAX];
    unsigned ep_key_lines[CONFIG_ENDPOINTS_MAX][SECTION_KEYS_MAX];
    /* [providers] load as given (n_load 0: not given) and the [provider NAME] sections */
    char load[PROVIDERS_MAX][KEY_PROVIDER_NAME_MAX + 1];
    size_t n_load;
    struct provider_section psecs[PROVIDERS_MAX];
    size_t n_psecs;
    struct provider_section *psec; /* the current [provider NAME] */
    /* [pins NAME] sections (cfg->pins, same index) and [tls] client_pins as given ("": not) */
    struct config_pins *pins; /* the current [pins NAME] */
    unsigned pins_line[CONFIG_PINS_MAX];
    unsigned pins_key_lines[CONFIG_PINS_MAX][SECTION_KEYS_MAX];
    char client_pins[CONFIG_ENDPOINT_NAME_MAX + 1];
};

static void provider_section_clear(struct provider_section *ps)
{
    for (size_t i = 0; i < ps->n_params; i++) {
        free(ps->params[i].name);
        free(ps->params[i].value);
    }
    free(ps->sign_query);
    free(ps->parent_auth_file);
    *ps = (struct provider_section){ .n_params = 0 };
}

static void parse_state_free(struct parse_state *st)
{
    if (!st) {
        return;
    }
    for (size_t i = 0; i < st->n_psecs; i++) {
        provider_section_clear(&st->psecs[i]);
    }
    free(st);
}

static void parse_state_freep(struct parse_state **st)
{
    parse_state_free(*st);
}

/* ---- messages ---- */

/* A short, printable rendering of outside text for a message: at most 40 bytes, then "...". */
static const char *quote(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    size_t i = 0;
    for (; s[i] && n + 4 < size && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (s[i] && n + 4 <= size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

#define QUOTE_SIZE 48u

/*
 * Record the first error: "FILE:LINE: [section] key: detail", "FILE:LINE: detail" without a
 * key, "FILE: detail" without a line. Returns r.
 */
_printf_(7, 8) static int fail(struct parse_state *st, unsigned line, const char *section,
                               const char *key, int r, enum certd_errc code, const char *fmt, ...)
{
    assert(r < 0);
    if (st->r < 0) {
        return st->r;
    }
    st->r = r;
    char detail[CERTD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (n < 0) {
        detail[0] = '\0';
    }
    if (line == 0) {
        return err_set(st->err, r, code, "%.100s: %s", st->filename, detail);
    }
    if (!key) {
        return err_set(st->err, r, code, "%.100s:%u: %s", st->filename, line, detail);
    }
    return err_set(st->err, r, code, "%.100s:%u: [%s] %s: %s", st->filename, line, section, key,
                   detail);
}

/* An error about key on the current line of the current section. */
#define fail_key(st, key, r, code, ...) \
    fail((st), (st)->lineno, (st)->label, (key), (r), (code), __VA_ARGS__)

static int fail_nomem(struct parse_state *st)
{
    return fail(st, 0, NULL, NULL, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
}

/* ---- value checkers shared by the file and the command line ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Free n strings and the array holding them; accepts NULL. */
static void strv_free(char **v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* An endpoint's or a pin store's name: 1..CONFIG_ENDPOINT_NAME_MAX of [a-z0-9_-]. */
static bool endpoint_name_is_valid(const char *s, size_t n)
{
    if (n == 0 || n > CONFIG_ENDPOINT_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Normal form (path_check_normal) is what lets paths_check compare paths as strings. */
static int path_check(const char *s, const char **why)
{
    return path_check_normal(s, strlen(s), false, why);
}

/*
 * A copy of an absolute directory path without trailing slashes ("/" stays "/"): a trailing "/"
 * on a directory is usual and harmless, so it is removed rather than refused; the rest must be
 * in normal form (path_check_normal).
 */
static int dir_dup(const char *s, char **ret, const char **why)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/') {
        n--;
    }
    int r = path_check_normal(s, n, true, why);
    if (r < 0) {
        return r;
    }
    char *d = strndup(s, n);
    if (!d) {
        return -ENOMEM;
    }
    *ret = d;
    return 0;
}

/* Where a certificate or key lives (config.h, issue #5): a path or a URI, owned. */
struct location {
    char *path; /* a plain path or a file: URI, decoded; else NULL */
    char *uri;  /* any other URI, as written; else NULL */
    enum uri_kind kind;
    uint32_t handle; /* URI_HANDLE */
};

static void location_clear(struct location *l)
{
    free(l->path);
    free(l->uri);
    *l = (struct location){ .kind = URI_KIND_MAX };
}

/*
 * s as uri_check (keys/uri.h), the one parser of certd's locations, reads it: a plain absolute
 * path or a file: URI gives a path (percent-decoded, in normal form and free of control
 * characters: uri_check's promise, which config.h passes on), any other URI it accepts
 * (handle:, object:, a provider's scheme) is kept as written, with its kind and handle. Returns
 * 0, or -EINVAL / -E2BIG with why (uri_check's message, in whybuf), or -ENOMEM.
 */
static int location_parse(const char *s, struct location *ret, char *whybuf, size_t whysize,
                          const char **why)
{
    struct certd_err e = { 0 };
    struct location l = { .kind = URI_KIND_MAX };
    int r = uri_check(s, &l.kind, &l.path, &l.handle, &e);
    if (r == -ENOMEM) {
        return r;
    }
    if (r < 0) {
        (void)snprintf(whybuf, whysize, "%s", e.msg[0] ? e.msg : "not a path or URI certd reads");
        *why = whybuf;
        return r == -E2BIG ? -E2BIG : -EINVAL;
    }
    if (l.kind != URI_FILE) {
        /* An object: path is not kept: config_check_paths asks uri_check for it again. */
        free(l.path);
        l.path = NULL;
        l.uri = strdup(s);
        if (!l.uri) {
            return -ENOMEM;
        }
    }
    *ret = l;
    return 0;
}

/* "ADDR:PORT" with ADDR a numeric IPv4 address or a bracketed IPv6 one. */
static int listen_parse(const char *s, struct config_listen *ret, const char **why)
{
    struct config_listen l = { 0 };
    char host[INET6_ADDRSTRLEN];
    const char *port;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') {
            *why = "must be [IPv6]:PORT, e.g. [::1]:8443";
            return -EINVAL;
        }
        hlen = (size_t)(end - s - 1);
        port = end + 2;
        l.family = AF_INET6;
        s++;
    } else {
        const char *colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':')) {
            *why = "must be IPv4:PORT or [IPv6]:PORT, e.g. 127.0.0.1:8443";
            return -EINVAL;
        }
        hlen = (size_t)(colon - s);
        port = colon + 1;
        l.family = AF_INET;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        *why = "the address must be a numeric IPv4 or IPv6 address";
        return -EINVAL;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(l.family, host, l.addr) != 1) {
        *why = "the address must be a numeric IPv4 or IPv6 address";
        return -EINVAL;
    }
    uint64_t v;
    if (parse_u64(port, 1, 65535, &v) < 0) {
        *why = "the port must be a number from 1 to 65535";
        return -EINVAL;
    }
    l.port = (uint16_t)v;
    char canon[INET6_ADDRSTRLEN];
    if (!inet_ntop(l.family, l.addr, canon, sizeof(canon))) {
        *why = "the address must be a numeric IPv4 or IPv6 address";
        return -EINVAL;
    }
    (void)snprintf(l.text, sizeof(l.text), l.family == AF_INET6 ? "[%s]:%u" : "%s:%u", canon,
                   (unsigned)l.port);
    *ret = l;
    return 0;
}

/* systemd.unit(5): a unit name of allowed characters with a known type suffix. */
static bool unit_name_is_valid(const char *s)
{
    static const char *const suffixes[] = { "service", "socket", "target",    "path",
                                            "timer",   "mount",  "automount", "swap",
                                            "slice",   "scope",  "device" };
    size_t n = strlen(s);
    /* UNIT_NAME_MAX in systemd is 256, the NUL included. */
    if (n == 0 || n > 255) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@';
        if (!ok) {
            return false;
        }
    }
    const char *dot = strrchr(s, '.');
    if (!dot || dot == s || dot[-1] == '@') {
        /* no suffix, no name, or a template without an instance ("foo@.service") */
        return false;
    }
    for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
        if (strcmp(dot + 1, suffixes[i]) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * The signals a service reloads on: HUP, USR1 or USR2, by name, with or without "SIG", any case.
 * Numbers and other names are refused: a reload must not be able to KILL, STOP or TERM a process
 * (or send a real-time signal whose number differs between C libraries).
 */
static int signal_parse(const char *s, int *ret)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = { { "HUP", SIGHUP }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 } };
    const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
        if (str_case_eq(name, sigs[i].name)) {
            *ret = sigs[i].sig;
            return 0;
        }
    }
    return -EINVAL;
}

static void reload_clear(struct config_reload *r)
{
    free(r->unit);
    free(r->pidfile);
    strv_free(r->argv, r->argc);
    *r = (struct config_reload){ .kind = CONFIG_RELOAD_NONE };
}

/*
 * The words after "exec:" ([endpoint] reload, [ca] signer): split on blanks, no shell, so no
 * quoting and no expansion; at most CONFIG_EXEC_ARGS_MAX words, the first an absolute path in
 * normal form (the others are the program's business). Returns 0 and an owned argv of *ret_argc
 * words and a NULL; or -EINVAL / -E2BIG (*ret_code CERTD_E_TOO_MANY_VALUES) with why, or -ENOMEM.
 */
static int exec_parse(const char *p, char ***ret_argv, size_t *ret_argc, enum certd_errc *ret_code,
                      const char **why)
{
    *ret_code = CERTD_E_FIELD_INVALID;
    size_t words = 0;
    for (size_t i = 0; p[i]; i++) {
        if (!is_blank(p[i]) && (i == 0 || is_blank(p[i - 1]))) {
            words++;
        }
    }
    if (words == 0 || p[0] != '/') {
        *why = "exec:COMMAND needs the program's absolute path, e.g. exec:/usr/sbin/PROGRAM ARGS";
        return -EINVAL;
    }
    if (words > CONFIG_EXEC_ARGS_MAX) {
        *ret_code = CERTD_E_TOO_MANY_VALUES;
        _Static_assert(CONFIG_EXEC_ARGS_MAX == 32u, "the message names the limit");
        *why = "exec:COMMAND has more than 32 words";
        return -E2BIG;
    }
    char **argv = calloc(words + 1, sizeof(char *));
    if (!argv) {
        return -ENOMEM;
    }
    size_t argc = 0;
    for (size_t i = 0; p[i];) {
        if (is_blank(p[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (p[j] && !is_blank(p[j])) {
            j++;
        }
        argv[argc] = strndup(p + i, j - i);
        if (!argv[argc]) {
            strv_free(argv, argc);
            return -ENOMEM;
        }
        argc++;
        i = j;
    }
    int r = path_check(argv[0], why);
    if (r < 0) {
        strv_free(argv, argc);
        if (r == -EINVAL) {
            *why = "exec:COMMAND: the program must be an absolute path without '.', '..', "
                   "'//' or a trailing '/'";
        }
        return r;
    }
    *ret_argv = argv;
    *ret_argc = argc;
    return 0;
}

static int reload_parse(const char *s, struct config_reload *ret, enum certd_errc *ret_code,
                        const char **why)
{
    struct config_reload rl = { .kind = CONFIG_RELOAD_NONE };
    *ret_code = CERTD_E_FIELD_INVALID;
    if (str_case_eq(s, "none")) {
        *ret = rl;
        return 0;
    }
    if (str_case_eq(s, "self")) {
        rl.kind = CONFIG_RELOAD_SELF;
        *ret = rl;
        return 0;
    }
    if (strncmp(s, "systemd:", 8) == 0) {
        if (!unit_name_is_valid(s + 8)) {
            *why = "systemd:UNIT needs a unit name with its suffix, e.g. systemd:nslcd.service";
            return -EINVAL;
        }
        rl.kind = CONFIG_RELOAD_SYSTEMD;
        rl.unit = strdup(s + 8);
        if (!rl.unit) {
            return -ENOMEM;
        }
        *ret = rl;
        return 0;
    }
    if (strncmp(s, "signal:", 7) == 0) {
        const char *sig = s + 7;
        const char *colon = strchr(sig, ':');
        char name[8];
        size_t n = colon ? (size_t)(colon - sig) : 0;
        if (!colon || n == 0 || n >= sizeof(name)) {
            *why = "must be signal:SIG:PIDFILE, e.g. signal:HUP:/run/nginx.pid";
            return -EINVAL;
        }
        memcpy(name, sig, n);
        name[n] = '\0';
        if (signal_parse(name, &rl.signal) < 0) {
            *why = "SIG must be HUP, USR1 or USR2 (by name; numbers are not accepted)";
            return -EINVAL;
        }
        int r = path_check(colon + 1, why);
        if (r == -EINVAL) {
            *why = "PIDFILE must be an absolute path without '.', '..', '//' or a trailing '/'";
        }
        if (r < 0) {
            return r;
        }
        rl.pidfile = strdup(colon + 1);
        if (!rl.pidfile) {
            return -ENOMEM;
        }
        rl.kind = CONFIG_RELOAD_SIGNAL;
        *ret = rl;
        return 0;
    }
    if (strncmp(s, "exec:", 5) == 0) {
        int r = exec_parse(s + 5, &rl.argv, &rl.argc, ret_code, why);
        if (r < 0) {
            return r;
        }
        rl.kind = CONFIG_RELOAD_EXEC;
        *ret = rl;
        return 0;
    }
    *why = "must be none, self, systemd:UNIT, signal:SIG:PIDFILE or exec:COMMAND";
    return -EINVAL;
}

/* ---- the struct ---- */

static void endpoint_clear(struct config_endpoint *ep)
{
    free(ep->cert);
    free(ep->key);
    free(ep->cert_uri);
    free(ep->key_uri);
    free(ep->dir);
    if (ep->names) {
        for (size_t i = 0; i < ep->n_names; i++) {
            free(ep->names[i]);
        }
        free(ep->names);
    }
    reload_clear(&ep->reload);
    *ep = (struct config_endpoint){ .type = ENDPOINT_TYPE_MAX };
}

static void endpoint_init(struct config_endpoint *ep, const char *name, enum endpoint_type type)
{
    *ep = (struct config_endpoint){
        .type = type,
        .new_key = { .alg = KEY_ALG_EC, .bits = 256, .curve = "P-256" },
        .days = CONFIG_DAYS_DEFAULT,
        .expired = VALIDITY_ACCEPT_WARN,
        .not_yet_valid = VALIDITY_ACCEPT_WARN,
        .max = CERTD_AUTHORITY_MAX_DEFAULT,
        .reload = { .kind = CONFIG_RELOAD_NONE },
    };
    size_t n = strlen(name);
    assert(n <= CONFIG_ENDPOINT_NAME_MAX);
    memcpy(ep->name, name, n + 1);
}

static void providers_clear(struct config_providers *p)
{
    for (size_t i = 0; i < p->n; i++) {
        for (size_t j = 0; j < p->specs[i].n_params; j++) {
            free(p->specs[i].params[j].name);
            free(p->specs[i].params[j].value);
        }
        free(p->specs[i].params);
        free(p->sign_query[i]);
    }
    free(p->query);
    for (size_t i = 0; i < PROVIDERS_MAX; i++) {
        free(p->keygen[i].auth_file);
    }
    for (size_t i = 0; i < p->n_env; i++) {
        free(p->env[i].name);
        free(p->env[i].value);
    }
    *p = (struct config_providers){ .n = 0 };
}

/*
 * Providers certd knows something about. A held-key provider that also offers digests, ciphers
 * and random numbers must not get them (notes/tpm2.md P2: the tpm2 provider's are slow, and each
 * hash sequence takes one of the TPM's three object slots, so TLS dies with TPM_RC_OBJECT_MEMORY),
 * hence query_terms, appended to the global query; and whatever signs with one of its keys must
 * fetch the signature from it (P1: otherwise OpenSSL exports the key, public half only, to the
 * first provider and fails with "missing private key"), hence sign_query for TLS contexts. It
 * must not be loaded first (P2: key management has no property to steer by, so it would come
 * from the TPM for every key, and software EC keys and key shares then fail).
 */
static const struct known_provider {
    const char *name;
    const char *query_terms;  /* appended to [providers] query ... */
    const char *query_marker; /* ... unless the admin's query names this property */
    const char *sign_query;   /* the default of [provider NAME] sign_query */
    bool is_not_first;        /* may not come first in load */
    const char *env_param;    /* a parameter the provider only takes from ... */
    const char *env_var;      /* ... this environment variable (config_providers.env) */
    /* certd's keys "parent" and "parent_auth_file" of [provider NAME], when set: */
    const char *keygen_parent;      /* the key generation parameter of the parent's handle */
    const char *keygen_parent_auth; /* ... and of its password */
    const char *parent_auth_env;    /* where the provider takes the password when it loads */
} known_providers[] = {
    /* tpm2-openssl 1.1.1 asks OpenSSL for its "tcti" parameter but passes the pointer's value,
     * not its address, so the answer is lost: only TPM2OPENSSL_TCTI works. A persistent
     * parent's password reaches its key loader only through TPM2OPENSSL_PARENT_AUTH. */
    { "tpm2", "tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes", "tpm2.digest", "?tpm2.signature",
      true, "tcti", "TPM2OPENSSL_TCTI", "parent", "parent-auth", "TPM2OPENSSL_PARENT_AUTH" },
};

static const struct known_provider *known_provider_find(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(known_providers); i++) {
        if (strcmp(known_providers[i].name, name) == 0) {
            return &known_providers[i];
        }
    }
    return NULL;
}

/* The sign query of a provider certd knows nothing about: prefer its own implementations. */
static char *sign_query_default(const char *name)
{
    const struct known_provider *kp = known_provider_find(name);
    if (kp && kp->sign_query) {
        return strdup(kp->sign_query);
    }
    char *q = NULL;
    if (asprintf(&q, "?provider=%s", name) < 0) {
        return NULL;
    }
    return q;
}

struct config *config_free(struct config *cfg)
{
    if (!cfg) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        endpoint_clear(&cfg->endpoints[i]);
    }
    free(cfg->state_dir);
    free(cfg->users_file);
    free(cfg->password_file);
    free(cfg->uuid_file);
    struct config_ca *ca = &cfg->ca;
    strv_free(ca->exec_argv, ca->exec_argc);
    free(ca->cert);
    free(ca->key);
    free(ca->key_uri);
    free(ca->db);
    free(ca->crl);
    free(ca->common_name);
    for (size_t i = 0; i < cfg->n_pins; i++) {
        free(cfg->pins[i].file);
    }
    providers_clear(&cfg->providers);
    free(cfg);
    return NULL;
}

/* A config with the [server], [tls], [limits] and [ca] defaults and no endpoints. */
static struct config *config_alloc(void)
{
    _cleanup_(cleanup_config) struct config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        return NULL;
    }
    const char *why = NULL;
    int r = listen_parse(CONFIG_LISTEN_DEFAULT, &cfg->listen, &why);
    assert(r == 0);
    (void)r;
    cfg->state_dir = strdup(CONFIG_STATE_DIR_DEFAULT);
    if (!cfg->state_dir) {
        return NULL;
    }
    cfg->log_level = CONFIG_LOG_INFO;
    cfg->tls_profile = CONFIG_TLS_INTERMEDIATE;
    cfg->client_auth = CONFIG_CLIENT_AUTH_OFF;
    cfg->client_verify = CONFIG_CLIENT_VERIFY_PIN;
    cfg->max_body = CONFIG_MAX_BODY_DEFAULT;
    cfg->max_headers_size = CONFIG_MAX_HEADERS_SIZE_DEFAULT;
    cfg->max_connections = CONFIG_MAX_CONNECTIONS_DEFAULT;
    cfg->idle_timeout = CONFIG_IDLE_TIMEOUT_DEFAULT;
    cfg->request_timeout = CONFIG_REQUEST_TIMEOUT_DEFAULT;
    cfg->ca = (struct config_ca){
        .signer = CONFIG_SIGNER_LOCAL,
        .exec_timeout = CONFIG_CA_EXEC_TIMEOUT_DEFAULT,
        .new_key = { .alg = KEY_ALG_EC, .bits = 384, .curve = "P-384" },
        .root_days = CONFIG_CA_ROOT_DAYS_DEFAULT,
        .days = CONFIG_CA_DAYS_DEFAULT,
        .crl_days = CONFIG_CA_CRL_DAYS_DEFAULT,
        .allowed_sans = CONFIG_CA_SANS_DEFAULT,
        .subject_attrs = CONFIG_CA_SUBJECT_DEFAULT,
    };
    /* [providers] load = default */
    memcpy(cfg->providers.specs[0].name, "default", sizeof("default"));
    cfg->providers.sign_query[0] = sign_query_default("default");
    if (!cfg->providers.sign_query[0]) {
        return NULL;
    }
    cfg->providers.n = 1;
    return TAKE_PTR(cfg);
}

/* DESIGN.md's three endpoints. */
static void add_default_endpoints(struct config *cfg)
{
    assert(cfg->n_endpoints == 0);
    endpoint_init(&cfg->endpoints[0], "https", ENDPOINT_SERVER);
    cfg->endpoints[0].reload.kind = CONFIG_RELOAD_SELF;
    endpoint_init(&cfg->endpoints[1], "ldap", ENDPOINT_CLIENT);
    endpoint_init(&cfg->endpoints[2], "truststore", ENDPOINT_AUTHORITY);
    cfg->n_endpoints = 3;
}

/*
 * The index of the store called name in *ret, adding it with its default file (which
 * config_resolve derives) when no [pins NAME] section defines it. -E2BIG when there are
 * CONFIG_PINS_MAX stores already.
 */
static int pins_find_or_add(struct config *cfg, const char *name, size_t *ret)
{
    for (size_t i = 0; i < cfg->n_pins; i++) {
        if (strcmp(cfg->pins[i].name, name) == 0) {
            *ret = i;
            return 0;
        }
    }
    if (cfg->n_pins >= CONFIG_PINS_MAX) {
        return -E2BIG;
    }
    size_t n = strlen(name);
    assert(n > 0 && n <= CONFIG_ENDPOINT_NAME_MAX);
    struct config_pins *p = &cfg->pins[cfg->n_pins];
    *p = (struct config_pins){ .file = NULL, .is_file_given = false };
    memcpy(p->name, name, n + 1);
    *ret = cfg->n_pins++;
    return 0;
}

/* [tls] client_ca when not given: CONFIG_CLIENT_CA_DEFAULT if it is an authority, else "". */
static void client_ca_default(struct config *cfg)
{
    const struct config_endpoint *ep = config_endpoint_find(cfg, CONFIG_CLIENT_CA_DEFAULT);
    if (ep && ep->type == ENDPOINT_AUTHORITY) {
        _Static_assert(sizeof(CONFIG_CLIENT_CA_DEFAULT) <= sizeof(cfg->client_ca), "fits");
        memcpy(cfg->client_ca, CONFIG_CLIENT_CA_DEFAULT, sizeof(CONFIG_CLIENT_CA_DEFAULT));
    } else {
        cfg->client_ca[0] = '\0';
    }
}

/* "A/B" or "A/B/C" into a new string; -E2BIG when it would reach CONFIG_PATH_MAX. */
static int path_join(const char *dir, const char *a, const char *b, char **ret)
{
    /* "/" joins as "" so that no path starts with "//". */
    const char *d = strcmp(dir, "/") == 0 ? "" : dir;
    size_t n = strlen(d) + 1 + strlen(a) + (b ? 1 + strlen(b) : 0);
    if (n >= CONFIG_PATH_MAX) {
        return -E2BIG;
    }
    char *p = malloc(n + 1);
    if (!p) {
        return -ENOMEM;
    }
    (void)snprintf(p, n + 1, b ? "%s/%s/%s" : "%s/%s", d, a, b ? b : "");
    *ret = p;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
}

/*
 * Slots of the paths resolved and checked: certd's own files in the state directory (always
 * derived), the users file and its lock, the CA's files, then per endpoint cert (or dir) and
 * key, and the paths of object: URIs given as cert and key (never derived: a serialized TPM
 * object is read there, so it must not be one of the files certd writes either), then per pin
 * store its file and that file's lock. A lock is a file certd writes too: a store saved over
 * another's lock (a rename puts a new inode there) would let two writers in at once.
 */
#define SLOT_PASSWORD   0u
#define SLOT_UUID       1u
#define SLOT_USERS      2u
#define SLOT_USERS_LOCK 3u
#define SLOT_CA_DB      4u
#define SLOT_CA_CRL     5u
#define SLOT_CA_CERT    6u
#define SLOT_CA_KEY     7u
#define SLOT_CA_KEY_OBJ 8u
#define SLOT_EP0        9u
#define SLOT_EP_K       4u /* cert/dir, key, cert's object:, key's object: */
#define SLOT_EP(i, k)   (SLOT_EP0 + SLOT_EP_K * (i) + (k))
#define SLOT_PINS0      SLOT_EP(CONFIG_ENDPOINTS_MAX, 0)
#define SLOT_PINS_K     2u /* file, its lock */
#define SLOT_PINS(i, k) (SLOT_PINS0 + SLOT_PINS_K * (i) + (k))
#define SLOTS_MAX       SLOT_PINS(CONFIG_PINS_MAX, 0)

/* The endpoint a slot belongs to, and which of its SLOT_EP_K paths it is. */
static bool slot_is_ep(unsigned slot)
{
    return slot >= SLOT_EP0 && slot < SLOT_PINS0;
}

/* The pin store a slot belongs to, and whether it is the store's lock. */
static bool slot_is_pins(unsigned slot)
{
    return slot >= SLOT_PINS0 && slot < SLOTS_MAX;
}

static size_t slot_pins(unsigned slot)
{
    assert(slot_is_pins(slot));
    return (slot - SLOT_PINS0) / SLOT_PINS_K;
}

static bool slot_is_pins_lock(unsigned slot)
{
    return slot_is_pins(slot) && (slot - SLOT_PINS0) % SLOT_PINS_K == 1;
}

static size_t slot_ep(unsigned slot)
{
    assert(slot_is_ep(slot));
    return (slot - SLOT_EP0) / SLOT_EP_K;
}

static unsigned slot_k(unsigned slot)
{
    assert(slot_is_ep(slot));
    return (slot - SLOT_EP0) % SLOT_EP_K;
}

/* An endpoint's key slot: its key file or its key's object: path. */
static bool slot_is_ep_key(unsigned slot)
{
    return slot_is_ep(slot) && (slot_k(slot) == 1 || slot_k(slot) == 3);
}

/* The CA's certificate or key (which may be one file). */
static bool slot_is_ca_pem(unsigned slot)
{
    return slot == SLOT_CA_CERT || slot == SLOT_CA_KEY;
}

/*
 * Derive every path not given explicitly from sd into paths[SLOTS_MAX] (owned, NULL where the
 * path is given). On failure nothing is left allocated.
 */
static int resolve_compute(const struct config *cfg, const char *sd, char **paths)
{
    int r = path_join(sd, CONFIG_PASSWORD_FILE_NAME, NULL, &paths[SLOT_PASSWORD]);
    if (r == 0) {
        r = path_join(sd, CONFIG_UUID_FILE_NAME, NULL, &paths[SLOT_UUID]);
    }
    if (r == 0 && !cfg->is_users_file_given) {
        r = path_join(sd, CONFIG_USERS_FILE_NAME, NULL, &paths[SLOT_USERS]);
    }
    if (r == 0) {
        r = path_join(sd, CONFIG_CA_DB_NAME, NULL, &paths[SLOT_CA_DB]);
    }
    if (r == 0) {
        r = path_join(sd, CONFIG_CA_DIR_NAME, CONFIG_CA_CRL_NAME, &paths[SLOT_CA_CRL]);
    }
    if (r == 0 && !cfg->ca.is_cert_given) {
        r = path_join(sd, CONFIG_CA_DIR_NAME, CONFIG_CA_CERT_NAME, &paths[SLOT_CA_CERT]);
    }
    if (r == 0 && !cfg->ca.is_key_given) {
        r = path_join(sd, CONFIG_CA_DIR_NAME, CONFIG_CA_KEY_NAME, &paths[SLOT_CA_KEY]);
    }
    for (size_t i = 0; r == 0 && i < cfg->n_endpoints; i++) {
        const struct config_endpoint *ep = &cfg->endpoints[i];
        char **p = &paths[SLOT_EP(i, 0)];
        if (ep->type == ENDPOINT_AUTHORITY) {
            if (!ep->is_dir_given) {
                r = path_join(sd, ep->name, NULL, &p[0]);
            }
            continue;
        }
        if (!ep->is_cert_given) {
            r = path_join(sd, ep->name, "cert.pem", &p[0]);
        }
        if (r == 0 && !ep->is_key_given) {
            r = path_join(sd, ep->name, "key.pem", &p[1]);
        }
    }
    for (size_t i = 0; r == 0 && i < cfg->n_pins; i++) {
        const struct config_pins *ps = &cfg->pins[i];
        char file[CONFIG_ENDPOINT_NAME_MAX + sizeof(CONFIG_PINS_FILE_SUFFIX)];
        if (!ps->is_file_given) {
            (void)snprintf(file, sizeof(file), "%s" CONFIG_PINS_FILE_SUFFIX, ps->name);
            r = path_join(sd, CONFIG_PINS_DIR_NAME, file, &paths[SLOT_PINS(i, 0)]);
        }
    }
    if (r < 0) {
        free_strings(paths, SLOTS_MAX);
    }
    return r;
}

/* Install what resolve_compute made (and new_state_dir, when not NULL); cannot fail. */
static void resolve_commit(struct config *cfg, char *new_state_dir, char **paths)
{
    if (new_state_dir) {
        free(cfg->state_dir);
        cfg->state_dir = new_state_dir;
    }
    free(cfg->password_file);
    cfg->password_file = paths[SLOT_PASSWORD];
    free(cfg->uuid_file);
    cfg->uuid_file = paths[SLOT_UUID];
    if (paths[SLOT_USERS]) {
        free(cfg->users_file);
        cfg->users_file = paths[SLOT_USERS];
    }
    free(cfg->ca.db);
    cfg->ca.db = paths[SLOT_CA_DB];
    free(cfg->ca.crl);
    cfg->ca.crl = paths[SLOT_CA_CRL];
    if (paths[SLOT_CA_CERT]) {
        free(cfg->ca.cert);
        cfg->ca.cert = paths[SLOT_CA_CERT];
    }
    if (paths[SLOT_CA_KEY]) {
        free(cfg->ca.key);
        cfg->ca.key = paths[SLOT_CA_KEY];
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        struct config_endpoint *ep = &cfg->endpoints[i];
        char **p = &paths[SLOT_EP(i, 0)];
        char **slot0 = ep->type == ENDPOINT_AUTHORITY ? &ep->dir : &ep->cert;
        if (p[0]) {
            free(*slot0);
            *slot0 = p[0];
        }
        if (p[1]) {
            free(ep->key);
            ep->key = p[1];
        }
    }
    for (size_t i = 0; i < cfg->n_pins; i++) {
        if (paths[SLOT_PINS(i, 0)]) {
            free(cfg->pins[i].file);
            cfg->pins[i].file = paths[SLOT_PINS(i, 0)];
        }
    }
}

/*
 * Derive every path not given explicitly from state_dir (new_state_dir, owned, replaces
 * cfg->state_dir when not NULL). All or nothing: on failure cfg and new_state_dir's owner
 * are unchanged (new_state_dir is not freed).
 */
static int config_resolve(struct config *cfg, char *new_state_dir)
{
    const char *sd = new_state_dir ? new_state_dir : cfg->state_dir;
    char *paths[SLOTS_MAX] = { NULL };
    int r = resolve_compute(cfg, sd, paths);
    if (r < 0) {
        return r;
    }
    resolve_commit(cfg, new_state_dir, paths);
    return 0;
}

/* A clash found by paths_check: the path in slot b is the path in slot a, or lies inside it. */
struct path_clash {
    unsigned a;
    unsigned b;
    bool is_inside;
};

/* s is dir itself or lies under it (both in normal form). */
static bool path_is_under(const char *s, const char *dir)
{
    if (strcmp(dir, "/") == 0) {
        return s[0] == '/' && s[1] != '\0';
    }
    size_t n = strlen(dir);
    return strncmp(s, dir, n) == 0 && s[n] == '/';
}

/*
 * The files certd writes must not overlap: a certificate or key rewritten (or a "corrupt" key
 * renamed aside) must never be the users file, the bootstrap password, the service UUID, one of
 * the CA's files (its log, CRL, certificate and key) or another endpoint's file, nor lie in a
 * directory an authority endpoint manages. eff[SLOTS_MAX] holds the effective paths (NULL for
 * unused slots), all in normal form, so comparing strings is enough (symlinks are the run-time
 * code's business: O_NOFOLLOW). Returns 0, or -EINVAL and the first clash.
 */
static int paths_check(const struct config *cfg, const char *const *eff, struct path_clash *ret)
{
    /* Slots in order: certd's own files (the CA's log and CRL among them), the users file, the
     * CA's cert and key, then the endpoints, so that b is the later, more specific one, the one
     * a message should point at. */
    unsigned order[SLOTS_MAX];
    size_t n = 0;
    order[n++] = SLOT_PASSWORD;
    order[n++] = SLOT_UUID;
    order[n++] = SLOT_CA_DB;
    order[n++] = SLOT_CA_CRL;
    order[n++] = SLOT_USERS;
    order[n++] = SLOT_USERS_LOCK;
    order[n++] = SLOT_CA_CERT;
    order[n++] = SLOT_CA_KEY;
    order[n++] = SLOT_CA_KEY_OBJ;
    for (unsigned i = 0; i < cfg->n_endpoints; i++) {
        for (unsigned k = 0; k < SLOT_EP_K; k++) {
            order[n++] = SLOT_EP(i, k);
        }
    }
    for (unsigned i = 0; i < cfg->n_pins; i++) {
        for (unsigned k = 0; k < SLOT_PINS_K; k++) {
            order[n++] = SLOT_PINS(i, k);
        }
    }
    for (size_t y = 0; y < n; y++) {
        const char *pb = eff[order[y]];
        if (!pb) {
            continue;
        }
        for (size_t x = 0; x < n; x++) {
            const char *pa = eff[order[x]];
            if (!pa || x == y) {
                continue;
            }
            unsigned a = order[x];
            unsigned b = order[y];
            /* cert and key of one endpoint, or of the CA, may be one combined PEM file (an
             * object: file is no PEM: never part of a pair). */
            bool is_pair = (slot_is_ep(a) && slot_is_ep(b) && slot_ep(a) == slot_ep(b) &&
                            slot_k(a) < 2 && slot_k(b) < 2) ||
                           (slot_is_ca_pem(a) && slot_is_ca_pem(b));
            if (x < y && strcmp(pa, pb) == 0 && !is_pair) {
                *ret = (struct path_clash){ .a = a, .b = b, .is_inside = false };
                return -EINVAL;
            }
            bool a_is_dir = slot_is_ep(a) && slot_k(a) == 0 &&
                            cfg->endpoints[slot_ep(a)].type == ENDPOINT_AUTHORITY;
            if (a_is_dir && path_is_under(pb, pa)) {
                *ret = (struct path_clash){ .a = a, .b = b, .is_inside = true };
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* "[endpoint NAME] cert", "[server] users_file", ... for slot. */
static const char *slot_describe(const struct config *cfg, unsigned slot, char *buf, size_t size)
{
    if (slot == SLOT_USERS) {
        return "[server] users_file";
    }
    if (slot == SLOT_USERS_LOCK) {
        return "the lock of [server] users_file";
    }
    if (slot_is_pins(slot)) {
        (void)snprintf(buf, size, "%s[pins %s] file", slot_is_pins_lock(slot) ? "the lock of " : "",
                       cfg->pins[slot_pins(slot)].name);
        return buf;
    }
    if (slot == SLOT_PASSWORD) {
        return "certd's " CONFIG_PASSWORD_FILE_NAME " file";
    }
    if (slot == SLOT_UUID) {
        return "certd's " CONFIG_UUID_FILE_NAME " file";
    }
    if (slot == SLOT_CA_DB) {
        return "certd's " CONFIG_CA_DB_NAME " file";
    }
    if (slot == SLOT_CA_CRL) {
        return "certd's " CONFIG_CA_DIR_NAME "/" CONFIG_CA_CRL_NAME " file";
    }
    if (slot == SLOT_CA_CERT) {
        return "[ca] cert";
    }
    if (slot == SLOT_CA_KEY || slot == SLOT_CA_KEY_OBJ) {
        return "[ca] key";
    }
    const struct config_endpoint *ep = &cfg->endpoints[slot_ep(slot)];
    const char *key = slot_is_ep_key(slot)             ? "key"
                      : ep->type == ENDPOINT_AUTHORITY ? "dir"
                                                       : "cert";
    (void)snprintf(buf, size, "[endpoint %s] %s", ep->name, key);
    return buf;
}

/* The path of an object: URI (uri nullable) into *ret (NULL for other URIs); 0 or -ENOMEM. */
static int object_path(const char *uri, char **ret)
{
    *ret = NULL;
    if (!uri) {
        return 0;
    }
    enum uri_kind kind = URI_KIND_MAX;
    char *path = NULL;
    int r = uri_check(uri, &kind, &path, NULL, NULL);
    if (r == -ENOMEM) {
        return r;
    }
    /* The URI passed uri_check when it was read: it cannot fail otherwise. */
    assert(r == 0);
    if (kind != URI_OBJECT) {
        free(path);
        return 0;
    }
    *ret = path;
    return 0;
}

/* config_check_paths with the object: paths objs[SLOTS_MAX] (borrowed, NULL where none). */
static int config_check_paths_with(const struct config *cfg, char *const *paths,
                                   const char *const *objs, char *buf, size_t size,
                                   unsigned *ret_slot)
{
    const char *eff[SLOTS_MAX] = { NULL };
    for (size_t i = 0; i < SLOTS_MAX; i++) {
        eff[i] = objs[i];
    }
    eff[SLOT_PASSWORD] = paths ? paths[SLOT_PASSWORD] : cfg->password_file;
    eff[SLOT_UUID] = paths ? paths[SLOT_UUID] : cfg->uuid_file;
    eff[SLOT_USERS] = paths && paths[SLOT_USERS] ? paths[SLOT_USERS] : cfg->users_file;
    eff[SLOT_CA_DB] = paths ? paths[SLOT_CA_DB] : cfg->ca.db;
    eff[SLOT_CA_CRL] = paths ? paths[SLOT_CA_CRL] : cfg->ca.crl;
    eff[SLOT_CA_CERT] = paths && paths[SLOT_CA_CERT] ? paths[SLOT_CA_CERT] : cfg->ca.cert;
    eff[SLOT_CA_KEY] = paths && paths[SLOT_CA_KEY] ? paths[SLOT_CA_KEY] : cfg->ca.key;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        const struct config_endpoint *ep = &cfg->endpoints[i];
        const char *cur0 = ep->type == ENDPOINT_AUTHORITY ? ep->dir : ep->cert;
        const char *cur1 = ep->type == ENDPOINT_AUTHORITY ? NULL : ep->key;
        eff[SLOT_EP(i, 0)] = paths && paths[SLOT_EP(i, 0)] ? paths[SLOT_EP(i, 0)] : cur0;
        eff[SLOT_EP(i, 1)] = paths && paths[SLOT_EP(i, 1)] ? paths[SLOT_EP(i, 1)] : cur1;
    }
    for (size_t i = 0; i < cfg->n_pins; i++) {
        const char *cur = cfg->pins[i].file;
        eff[SLOT_PINS(i, 0)] = paths && paths[SLOT_PINS(i, 0)] ? paths[SLOT_PINS(i, 0)] : cur;
    }
    /* The locks: each file's path and a suffix (users.h, pinstore.h), owned here. */
    char *locks[1 + CONFIG_PINS_MAX] = { NULL };
    int r = 0;
    if (asprintf(&locks[0], "%s" USERS_LOCK_SUFFIX, eff[SLOT_USERS]) < 0) {
        locks[0] = NULL;
        r = -ENOMEM;
    }
    eff[SLOT_USERS_LOCK] = locks[0];
    for (size_t i = 0; r == 0 && i < cfg->n_pins; i++) {
        if (asprintf(&locks[1 + i], "%s" PINSTORE_LOCK_SUFFIX, eff[SLOT_PINS(i, 0)]) < 0) {
            locks[1 + i] = NULL;
            r = -ENOMEM;
        }
        eff[SLOT_PINS(i, 1)] = locks[1 + i];
    }
    struct path_clash c;
    if (r == 0) {
        r = paths_check(cfg, eff, &c);
    }
    if (r == -EINVAL) {
        char da[32 + CONFIG_ENDPOINT_NAME_MAX];
        char db[32 + CONFIG_ENDPOINT_NAME_MAX];
        char qb[QUOTE_SIZE];
        char qa[QUOTE_SIZE];
        const char *nb = slot_describe(cfg, c.b, db, sizeof(db));
        const char *na = slot_describe(cfg, c.a, da, sizeof(da));
        if (c.is_inside) {
            (void)snprintf(buf, size, "%s '%s' lies inside %s '%s'", nb,
                           quote(eff[c.b], qb, sizeof(qb)), na, quote(eff[c.a], qa, sizeof(qa)));
        } else {
            (void)snprintf(buf, size, "%s '%s' is also %s", nb, quote(eff[c.b], qb, sizeof(qb)),
                           na);
        }
        *ret_slot = c.b;
    }
    free_strings(locks, ELEMENTSOF(locks));
    return r;
}

/*
 * Check cfg's paths as they would be after installing paths (nullable: as they are). On a clash:
 * -EINVAL, a description naming both sides in buf, and the slot of the later side in *ret_slot;
 * -ENOMEM.
 */
static int config_check_paths(const struct config *cfg, char *const *paths, char *buf, size_t size,
                              unsigned *ret_slot)
{
    /* The object: paths, owned. */
    char *objs[SLOTS_MAX] = { NULL };
    int r = object_path(cfg->ca.key_uri, &objs[SLOT_CA_KEY_OBJ]);
    for (size_t i = 0; r == 0 && i < cfg->n_endpoints; i++) {
        r = object_path(cfg->endpoints[i].cert_uri, &objs[SLOT_EP(i, 2)]);
        if (r == 0) {
            r = object_path(cfg->endpoints[i].key_uri, &objs[SLOT_EP(i, 3)]);
        }
    }
    if (r == 0) {
        r = config_check_paths_with(cfg, paths, (const char *const *)objs, buf, size, ret_slot);
    }
    free_strings(objs, ELEMENTSOF(objs));
    return r;
}

/* ---- setters, one per key; value is never empty unless the key allows it ---- */

static int set_number(struct parse_state *st, const char *key, const char *v, uint64_t min,
                      uint64_t max, uint64_t *ret)
{
    if (parse_u64(v, min, max, ret) < 0) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "must be a whole number from %" PRIu64 " to %" PRIu64, min, max);
    }
    return 0;
}

static int set_listen(struct parse_state *st, const char *key, const char *v)
{
    const char *why = NULL;
    if (listen_parse(v, &st->cfg->listen, &why) < 0) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "%s", why);
    }
    return 0;
}

static int set_state_dir(struct parse_state *st, const char *key, const char *v)
{
    const char *why = NULL;
    char *d = NULL;
    int r = dir_dup(v, &d, &why);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail_key(st, key, r, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID,
                        "%s", why);
    }
    free(st->cfg->state_dir);
    st->cfg->state_dir = d;
    return 0;
}

static int set_users_file(struct parse_state *st, const char *key, const char *v)
{
    const char *why = NULL;
    int r = path_check(v, &why);
    if (r < 0) {
        return fail_key(st, key, r, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID,
                        "%s", why);
    }
    char *p = strdup(v);
    if (!p) {
        return fail_nomem(st);
    }
    free(st->cfg->users_file);
    st->cfg->users_file = p;
    st->cfg->is_users_file_given = true;
    return 0;
}

static int set_hostname(struct parse_state *st, const char *key, const char *v)
{
    enum san_kind kind;
    size_t n = strlen(v);
    if (n == 0) {
        st->cfg->hostname[0] = '\0';
        return 0;
    }
    if (n > CONFIG_HOSTNAME_MAX || san_classify(v, &kind) < 0 || kind != SAN_DNS ||
        strchr(v, '*')) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "must be a DNS host name (or empty: the system's host name)");
    }
    memcpy(st->cfg->hostname, v, n + 1);
    return 0;
}

static int set_log_level(struct parse_state *st, const char *key, const char *v)
{
    for (int l = CONFIG_LOG_ERR; l < CONFIG_LOG_LEVEL_MAX; l++) {
        if (str_case_eq(v, config_log_level_name((enum config_log_level)l))) {
            st->cfg->log_level = (enum config_log_level)l;
            return 0;
        }
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                    "must be err, warning, notice, info or debug");
}

static int set_profile(struct parse_state *st, const char *key, const char *v)
{
    for (int p = 0; p < CONFIG_TLS_PROFILE_MAX; p++) {
        if (str_case_eq(v, config_tls_profile_name((enum config_tls_profile)p))) {
            st->cfg->tls_profile = (enum config_tls_profile)p;
            return 0;
        }
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "must be intermediate or modern");
}

static int set_client_auth(struct parse_state *st, const char *key, const char *v)
{
    for (int a = 0; a < CONFIG_CLIENT_AUTH_MAX; a++) {
        if (str_case_eq(v, config_client_auth_name((enum config_client_auth)a))) {
            st->cfg->client_auth = (enum config_client_auth)a;
            return 0;
        }
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "must be off, optional or required");
}

static int set_dbus_bus(struct parse_state *st, const char *key, const char *v)
{
    for (int b = 0; b < CONFIG_DBUS_MAX; b++) {
        if (str_case_eq(v, config_dbus_bus_name((enum config_dbus_bus)b))) {
            st->cfg->dbus_bus = (enum config_dbus_bus)b;
            return 0;
        }
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "must be off, system or session");
}

static int set_client_verify(struct parse_state *st, const char *key, const char *v)
{
    for (int m = 0; m < CONFIG_CLIENT_VERIFY_MAX; m++) {
        if (str_case_eq(v, config_client_verify_name((enum config_client_verify)m))) {
            st->cfg->client_verify = (enum config_client_verify)m;
            return 0;
        }
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "must be pin, chain or pin-or-chain");
}

/*
 * A store's or an endpoint's name as a value (client_pins, client_ca): the charset and length
 * of section names, so that it can name one; ret holds CONFIG_ENDPOINT_NAME_MAX + 1 bytes.
 */
static int parse_name(struct parse_state *st, const char *key, const char *v, char *ret)
{
    char q[QUOTE_SIZE];
    size_t n = strlen(v);
    if (!endpoint_name_is_valid(v, n)) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "'%s' is not a name (1 to %u characters of a-z, 0-9, '_' and '-')",
                        quote(v, q, sizeof(q)), CONFIG_ENDPOINT_NAME_MAX);
    }
    memcpy(ret, v, n + 1);
    return 0;
}

/* Whether client_pins names a [pins NAME] section is known once the file is read. */
static int set_client_pins(struct parse_state *st, const char *key, const char *v)
{
    return parse_name(st, key, v, st->client_pins);
}

/* Whether client_ca names an authority endpoint is known once the file is read. */
static int set_client_ca(struct parse_state *st, const char *key, const char *v)
{
    return parse_name(st, key, v, st->cfg->client_ca);
}

/*
 * [limits]: every key is a whole number in a range, stored in an unsigned field of struct
 * config. One table, one setter, instead of a setter per key.
 */
static const struct limit_def {
    const char *name;
    uint64_t min, max;
    size_t offset; /* of an unsigned field of struct config ([ca]: of struct config_ca) */
} limit_defs[] = {
    { "max_body", CONFIG_MAX_BODY_MIN, CONFIG_MAX_BODY_MAX, offsetof(struct config, max_body) },
    { "max_headers_size", CONFIG_MAX_HEADERS_SIZE_MIN, CONFIG_MAX_HEADERS_SIZE_MAX,
      offsetof(struct config, max_headers_size) },
    { "max_connections", 1, CONFIG_MAX_CONNECTIONS_MAX, offsetof(struct config, max_connections) },
    { "idle_timeout", 1, CONFIG_IDLE_TIMEOUT_MAX, offsetof(struct config, idle_timeout) },
    { "request_timeout", 1, CONFIG_REQUEST_TIMEOUT_MAX, offsetof(struct config, request_timeout) },
};

static int set_limit(struct parse_state *st, const char *key, const char *v)
{
    for (size_t i = 0; i < ELEMENTSOF(limit_defs); i++) {
        const struct limit_def *d = &limit_defs[i];
        if (strcmp(d->name, key) != 0) {
            continue;
        }
        uint64_t n;
        int r = set_number(st, key, v, d->min, d->max, &n);
        if (r == 0) {
            /* Every max fits an unsigned (config.h's constants). */
            unsigned *field = (unsigned *)(void *)((char *)st->cfg + d->offset);
            *field = (unsigned)n;
        }
        return r;
    }
    assert(!"a [limits] key without a limit_def");
    return -EINVAL;
}

static int set_type(struct parse_state *st, const char *key, const char *v)
{
    if (endpoint_type_from_name(v, &st->ep->type) < 0) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "must be server, client or authority");
    }
    return 0;
}

/*
 * A cert = or key = value into *ret (location_parse), with the errors of the key. What may be a
 * URI is the caller's business.
 */
static int parse_location(struct parse_state *st, const char *key, const char *v,
                          struct location *ret)
{
    const char *why = NULL;
    char whybuf[CERTD_ERR_MSG_MAX];
    int r = location_parse(v, ret, whybuf, sizeof(whybuf), &why);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail_key(st, key, r, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID,
                        "%s", why);
    }
    return 0;
}

/*
 * TPM 2.0 Part 2 §7.2 (TPM_HT): a key by handle is a persistent object (TPM_HT_PERSISTENT,
 * 0x81), a certificate by handle an NV index (TPM_HT_NV_INDEX, 0x01). Any other handle cannot
 * hold what the key says; refusing it here names the line instead of failing at start.
 */
#define TPM_HT_NV_INDEX   0x01u
#define TPM_HT_PERSISTENT 0x81u

static int check_handle(struct parse_state *st, const char *key, const struct location *l,
                        bool is_key)
{
    if (l->kind != URI_HANDLE) {
        return 0;
    }
    unsigned ht = l->handle >> 24;
    if (is_key && ht != TPM_HT_PERSISTENT) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "a key handle: must be a persistent TPM object, 0x81000000 to 0x81ffffff");
    }
    if (!is_key && ht != TPM_HT_NV_INDEX) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "a certificate handle: must be a TPM NV index, 0x01000000 to 0x01ffffff");
    }
    return 0;
}

/*
 * An endpoint's (or the CA's) cert or key: a path (given: *path replaced, *is_given set) or a
 * URI (*uri; *path keeps its default). ret_uri NULL: only a path will do (the CA certificate).
 */
static int set_location(struct parse_state *st, const char *key, const char *v, char **path,
                        bool *is_given, char **ret_uri, bool is_key)
{
    struct location l = { .kind = URI_KIND_MAX };
    int r = parse_location(st, key, v, &l);
    if (r < 0) {
        return r;
    }
    if (l.kind == URI_FILE) {
        free(*path);
        *path = TAKE_PTR(l.path);
        *is_given = true;
        return 0;
    }
    if (!ret_uri) {
        location_clear(&l);
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "must be an absolute path or a file: URI (the CA certificate is a file)");
    }
    r = check_handle(st, key, &l, is_key);
    if (r < 0) {
        location_clear(&l);
        return r;
    }
    /* A key is given once (duplicates are refused before), so nothing was set. */
    assert(!*ret_uri);
    *ret_uri = TAKE_PTR(l.uri);
    return 0;
}

static int set_cert(struct parse_state *st, const char *key, const char *v)
{
    struct config_endpoint *ep = st->ep;
    return set_location(st, key, v, &ep->cert, &ep->is_cert_given, &ep->cert_uri, false);
}

static int set_key(struct parse_state *st, const char *key, const char *v)
{
    struct config_endpoint *ep = st->ep;
    return set_location(st, key, v, &ep->key, &ep->is_key_given, &ep->key_uri, true);
}

static int set_dir(struct parse_state *st, const char *key, const char *v)
{
    const char *why = NULL;
    char *d = NULL;
    int r = dir_dup(v, &d, &why);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail_key(st, key, r, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID,
                        "%s", why);
    }
    free(st->ep->dir);
    st->ep->dir = d;
    st->ep->is_dir_given = true;
    return 0;
}

static int parse_new_key(struct parse_state *st, const char *key, const char *v,
                         struct key_spec *ret)
{
    struct certd_err e = { 0 };
    int r = key_spec_parse(v, ret, &e);
    if (r < 0) {
        return fail_key(
            st, key, -EINVAL, CERTD_E_FIELD_INVALID,
            "%s (use ec:P-256, ec:P-384, ec:P-521, rsa:2048, rsa:3072, rsa:4096 or ed25519, "
            "after PROVIDER: to make keys in a provider)",
            e.msg);
    }
    return 0;
}

static int set_new_key(struct parse_state *st, const char *key, const char *v)
{
    return parse_new_key(st, key, v, &st->ep->new_key);
}

static int set_names(struct parse_state *st, const char *key, const char *v)
{
    size_t count = 1;
    for (size_t i = 0; v[i]; i++) {
        count += v[i] == ',';
    }
    if (count > CERTD_SANS_MAX) {
        return fail_key(st, key, -E2BIG, CERTD_E_TOO_MANY_VALUES, "more than %u names",
                        CERTD_SANS_MAX);
    }
    char **names = calloc(count, sizeof(char *));
    if (!names) {
        return fail_nomem(st);
    }
    size_t n = 0;
    int r = 0;
    for (const char *p = v; r == 0 && n < count; n++) {
        while (is_blank(*p)) {
            p++;
        }
        size_t len = strcspn(p, ",");
        const char *next = p[len] == ',' ? p + len + 1 : p + len;
        while (len > 0 && is_blank(p[len - 1])) {
            len--;
        }
        char q[QUOTE_SIZE];
        enum san_kind kind;
        names[n] = strndup(p, len);
        if (!names[n]) {
            r = fail_nomem(st);
        } else if (len == 0) {
            r = fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "name %zu is empty", n + 1);
        } else if (len > CERTD_SAN_LEN_MAX) {
            r = fail_key(st, key, -E2BIG, CERTD_E_FIELD_TOO_LONG, "name %zu is longer than %u",
                         n + 1, CERTD_SAN_LEN_MAX);
        } else if (san_classify(names[n], &kind) < 0) {
            r = fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                         "'%s' is not a DNS name, IP address, email address or URI",
                         quote(names[n], q, sizeof(q)));
        }
        p = next;
    }
    if (r < 0) {
        free_strings(names, count);
        free(names);
        return r;
    }
    struct config_endpoint *ep = st->ep;
    if (ep->names) {
        free_strings(ep->names, ep->n_names);
        free(ep->names);
    }
    ep->names = names;
    ep->n_names = count;
    return 0;
}

static int set_days(struct parse_state *st, const char *key, const char *v)
{
    uint64_t n;
    int r = set_number(st, key, v, 1, CERTD_VALIDITY_DAYS_MAX, &n);
    if (r == 0) {
        st->ep->days = (unsigned)n;
    }
    return r;
}

static int parse_validity(struct parse_state *st, const char *key, const char *v,
                          enum validity_policy *ret)
{
    if (str_case_eq(v, "accept")) {
        *ret = VALIDITY_ACCEPT_WARN;
        return 0;
    }
    if (str_case_eq(v, "reject")) {
        *ret = VALIDITY_REJECT;
        return 0;
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "must be accept or reject");
}

static int set_expired(struct parse_state *st, const char *key, const char *v)
{
    return parse_validity(st, key, v, &st->ep->expired);
}

static int set_not_yet_valid(struct parse_state *st, const char *key, const char *v)
{
    return parse_validity(st, key, v, &st->ep->not_yet_valid);
}

static int parse_yes_no(struct parse_state *st, const char *key, const char *v, bool *ret)
{
    if (str_case_eq(v, "yes")) {
        *ret = true;
        return 0;
    }
    if (str_case_eq(v, "no")) {
        *ret = false;
        return 0;
    }
    return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID, "must be yes or no");
}

static int set_allow_ed25519(struct parse_state *st, const char *key, const char *v)
{
    return parse_yes_no(st, key, v, &st->ep->allow_ed25519);
}

static int set_max(struct parse_state *st, const char *key, const char *v)
{
    uint64_t n;
    int r = set_number(st, key, v, 1, CERTD_AUTHORITY_MAX_HARD, &n);
    if (r == 0) {
        st->ep->max = (size_t)n;
    }
    return r;
}

static int set_reload(struct parse_state *st, const char *key, const char *v)
{
    struct config_reload rl;
    enum certd_errc code;
    const char *why = NULL;
    int r = reload_parse(v, &rl, &code, &why);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail_key(st, key, r, code, "%s", why);
    }
    reload_clear(&st->ep->reload);
    st->ep->reload = rl;
    return 0;
}

/* [pins NAME] file: a path or a file: URI (a store is a file certd writes, never a URI). */
static int set_pins_file(struct parse_state *st, const char *key, const char *v)
{
    struct location l = { .kind = URI_KIND_MAX };
    int r = parse_location(st, key, v, &l);
    if (r < 0) {
        return r;
    }
    if (l.kind != URI_FILE) {
        location_clear(&l);
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "must be an absolute path or a file: URI (a pin store is a file)");
    }
    free(st->pins->file);
    st->pins->file = TAKE_PTR(l.path);
    st->pins->is_file_given = true;
    return 0;
}

/* ---- [ca] ---- */

static int set_ca_signer(struct parse_state *st, const char *key, const char *v)
{
    struct config_ca *ca = &st->cfg->ca;
    if (str_case_eq(v, "local") || str_case_eq(v, "off")) {
        ca->signer = str_case_eq(v, "local") ? CONFIG_SIGNER_LOCAL : CONFIG_SIGNER_OFF;
        return 0;
    }
    if (strncmp(v, "exec:", 5) != 0) {
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "must be local, off or exec:COMMAND");
    }
    char **argv = NULL;
    size_t argc = 0;
    enum certd_errc code;
    const char *why = NULL;
    int r = exec_parse(v + 5, &argv, &argc, &code, &why);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail_key(st, key, r, code, "%s", why);
    }
    /* The key is not repeated (duplicates are refused), so nothing was set before. */
    assert(!ca->exec_argv);
    ca->exec_argv = argv;
    ca->exec_argc = argc;
    ca->signer = CONFIG_SIGNER_EXEC;
    return 0;
}

/*
 * [ca]'s whole numbers: one table, as [limits]; each field is an unsigned of struct config_ca.
 */
static const struct limit_def ca_number_defs[] = {
    { "exec_timeout", 1, CONFIG_CA_EXEC_TIMEOUT_MAX, offsetof(struct config_ca, exec_timeout) },
    { "root_days", 1, CERTD_VALIDITY_DAYS_MAX, offsetof(struct config_ca, root_days) },
    { "days", 1, CERTD_VALIDITY_DAYS_MAX, offsetof(struct config_ca, days) },
    { "crl_days", 1, CONFIG_CA_CRL_DAYS_MAX, offsetof(struct config_ca, crl_days) },
};

static int set_ca_number(struct parse_state *st, const char *key, const char *v)
{
    for (size_t i = 0; i < ELEMENTSOF(ca_number_defs); i++) {
        const struct limit_def *d = &ca_number_defs[i];
        if (strcmp(d->name, key) != 0) {
            continue;
        }
        uint64_t n;
        int r = set_number(st, key, v, d->min, d->max, &n);
        if (r == 0) {
            /* Every max fits an unsigned (config.h's and limits.h's constants). */
            unsigned *field = (unsigned *)(void *)((char *)&st->cfg->ca + d->offset);
            *field = (unsigned)n;
        }
        return r;
    }
    assert(!"a [ca] number without a limit_def");
    return -EINVAL;
}

static int set_ca_cert(struct parse_state *st, const char *key, const char *v)
{
    struct config_ca *ca = &st->cfg->ca;
    return set_location(st, key, v, &ca->cert, &ca->is_cert_given, NULL, false);
}

static int set_ca_key(struct parse_state *st, const char *key, const char *v)
{
    struct config_ca *ca = &st->cfg->ca;
    return set_location(st, key, v, &ca->key, &ca->is_key_given, &ca->key_uri, true);
}

static int set_ca_new_key(struct parse_state *st, const char *key, const char *v)
{
    return parse_new_key(st, key, v, &st->cfg->ca.new_key);
}

/*
 * The root's CN: printable ASCII only, so that it is the same string in every encoding and in
 * every log line; X.520 ub-common-name bounds its length (RFC 5280 appendix A.1).
 */
static int set_ca_common_name(struct parse_state *st, const char *key, const char *v)
{
    size_t n = strlen(v);
    if (n > X520_CN_MAX) {
        return fail_key(st, key, -E2BIG, CERTD_E_FIELD_TOO_LONG, "longer than %u characters",
                        X520_CN_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e) {
            return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                            "must be printable ASCII characters");
        }
    }
    char *cn = strdup(v);
    if (!cn) {
        return fail_nomem(st);
    }
    assert(!st->cfg->ca.common_name); /* a repeated key is refused before */
    st->cfg->ca.common_name = cn;
    return 0;
}

/*
 * A list of names from names[0..n) (NULL entries skipped), separated by commas and/or blanks,
 * case-insensitive, or "none" alone: the set of their indexes as bits. Repeats are harmless.
 */
static int parse_name_set(struct parse_state *st, const char *key, const char *v,
                          const char *const *names, size_t n, const char *list, uint32_t *ret)
{
    char q[QUOTE_SIZE];
    if (str_case_eq(v, "none")) {
        *ret = 0;
        return 0;
    }
    uint32_t set = 0;
    bool is_comma = true; /* before the first item, as after a comma: an item must follow */
    for (const char *p = v;;) {
        while (is_blank(*p)) {
            p++;
        }
        if (*p == '\0' || *p == ',') {
            if (is_comma) {
                return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                                "an empty entry (use %s, or none)", list);
            }
            if (*p == '\0') {
                break;
            }
            is_comma = true;
            p++;
            continue;
        }
        size_t len = strcspn(p, ", \t");
        char item[32];
        size_t i = n;
        if (len < sizeof(item)) {
            memcpy(item, p, len);
            item[len] = '\0';
            for (i = 0; i < n; i++) {
                if (names[i] && str_case_eq(item, names[i])) {
                    break;
                }
            }
        }
        if (i == n) {
            char whole[CONFIG_LINE_MAX + 1];
            (void)snprintf(whole, sizeof(whole), "%.*s", (int)len, p);
            return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                            "'%s' is not one of %s (or none alone)", quote(whole, q, sizeof(q)),
                            list);
        }
        set |= 1u << i;
        is_comma = false;
        p += len;
    }
    *ret = set;
    return 0;
}

static int set_ca_sans(struct parse_state *st, const char *key, const char *v)
{
    static const char *const names[] = {
        [SAN_DNS] = "dns", [SAN_IP] = "ip", [SAN_EMAIL] = "email", [SAN_URI] = "uri"
    };
    _Static_assert(ELEMENTSOF(names) == SAN_KIND_MAX, "a name per SAN kind");
    return parse_name_set(st, key, v, names, ELEMENTSOF(names), "dns, ip, email, uri",
                          &st->cfg->ca.allowed_sans);
}

static int set_ca_subject(struct parse_state *st, const char *key, const char *v)
{
    const char *names[CONFIG_ATTR_MAX];
    for (size_t i = 0; i < CONFIG_ATTR_MAX; i++) {
        names[i] = config_attr_name((enum config_attr)i);
    }
    return parse_name_set(st, key, v, names, ELEMENTSOF(names),
                          "O, OU, C, ST, L, emailAddress, serialNumber",
                          &st->cfg->ca.subject_attrs);
}

static int set_ca_server_auth(struct parse_state *st, const char *key, const char *v)
{
    return parse_yes_no(st, key, v, &st->cfg->ca.server_auth);
}

static int set_ca_allow_ed25519(struct parse_state *st, const char *key, const char *v)
{
    return parse_yes_no(st, key, v, &st->cfg->ca.allow_ed25519);
}

/* ---- [providers] and [provider NAME] ---- */

/* Whether the build supports the provider called name (meson option providers). */
static bool provider_is_built(const char *name)
{
    size_t n = strlen(name);
    for (const char *p = CERTD_PROVIDERS_BUILT; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) {
            return true;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return false;
}

/* Whether name is one of cfg's providers (once providers_finish has run). */
static bool provider_is_configured(const struct config *cfg, const char *name)
{
    return config_provider_sign_query(cfg, name) != NULL;
}

/*
 * A property query ([providers] query, sign_query): printable ASCII, 1..max (providers.h). It
 * goes to EVP_set_default_properties and SSL_CTX_new_ex, which parse it themselves.
 */
static int query_check(const char *v, size_t max, const char **why)
{
    size_t n = strlen(v);
    if (n > max) {
        *why = "too long";
        return -E2BIG;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e) {
            *why = "may hold only printable ASCII characters";
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * Whether v names a section of the OpenSSL configuration providers.c writes (providers.h:
 * "default", "certd_init", "certd_providers", "certd_provider_N"): OpenSSL would read such a
 * value as a section of nested parameters.
 */
static bool names_ossl_section(const char *v)
{
    if (strcmp(v, "default") == 0 || strcmp(v, "certd_init") == 0 ||
        strcmp(v, "certd_providers") == 0) {
        return true;
    }
    const char *p = "certd_provider_";
    size_t plen = strlen(p);
    if (strncmp(v, p, plen) != 0 || v[plen] == '\0') {
        return false;
    }
    return strspn(v + plen, "0123456789") == strlen(v + plen);
}

/*
 * A provider parameter's value (providers.h): printable ASCII without the characters OpenSSL's
 * configuration parser, which providers.c writes it into, gives a meaning (quotes and '\'
 * escape, '$' expands a variable, '#' and ';' start comments), 1..max, and not a section's name.
 */
static int param_value_check(const char *v, size_t max, const char **why)
{
    int r = query_check(v, max, why);
    if (r < 0) {
        return r;
    }
    if (strpbrk(v, "\"'\\$#;")) {
        *why = "may hold only printable ASCII characters other than \" ' \\ $ # ;";
        return -EINVAL;
    }
    if (names_ossl_section(v)) {
        *why = "names a section of OpenSSL's configuration, which certd writes for the "
               "providers";
        return -EINVAL;
    }
    return 0;
}

static int set_provider_value(struct parse_state *st, const char *key, const char *v, size_t max,
                              bool is_query, char **ret)
{
    const char *why = NULL;
    int r = is_query ? query_check(v, max, &why) : param_value_check(v, max, &why);
    if (r == -E2BIG) {
        return fail_key(st, key, r, CERTD_E_FIELD_TOO_LONG, "longer than %zu characters", max);
    }
    if (r < 0) {
        return fail_key(st, key, r, CERTD_E_FIELD_INVALID, "%s", why);
    }
    char *d = strdup(v);
    if (!d) {
        return fail_nomem(st);
    }
    /* Each key is given once (duplicates are refused before), so nothing was set. */
    assert(!*ret);
    *ret = d;
    return 0;
}

/* "default, fips, null, tpm2": the build's providers, for messages. */
static const char *providers_built_text(char *buf, size_t size)
{
    size_t o = 0;
    for (const char *p = CERTD_PROVIDERS_BUILT; *p && o + 2 < size; p++) {
        if (*p == ',') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return buf;
}

/*
 * load = NAME[,NAME...]: 1..PROVIDERS_MAX names, no name twice, each supported by the build; the
 * order is OpenSSL's (the first provider offering an algorithm serves fetches without a query),
 * so a provider that must not come first (known_providers) does not.
 */
static int set_providers_load(struct parse_state *st, const char *key, const char *v)
{
    char names[PROVIDERS_MAX][KEY_PROVIDER_NAME_MAX + 1];
    size_t n = 0;
    char q[QUOTE_SIZE];
    /* Counted first, so that the limit is what a long list hears about. */
    size_t count = 1;
    for (const char *p = v; *p; p++) {
        count += *p == ',';
    }
    if (count > PROVIDERS_MAX) {
        return fail_key(st, key, -E2BIG, CERTD_E_TOO_MANY_VALUES, "more than %u providers",
                        PROVIDERS_MAX);
    }
    for (const char *p = v;;) {
        while (is_blank(*p)) {
            p++;
        }
        size_t len = strcspn(p, ",");
        const char *next = p[len] == ',' ? p + len + 1 : NULL;
        while (len > 0 && is_blank(p[len - 1])) {
            len--;
        }
        if (len == 0) {
            return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                            "provider %zu is empty (e.g. load = default,tpm2)", n + 1);
        }
        assert(n < PROVIDERS_MAX); /* counted above */
        char item[CONFIG_LINE_MAX + 1];
        memcpy(item, p, len);
        item[len] = '\0';
        if (!key_provider_name_is_valid(item, len)) {
            return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                            "'%s' is not a provider name (1 to %u characters of a-z, 0-9, '_' "
                            "and '-')",
                            quote(item, q, sizeof(q)), KEY_PROVIDER_NAME_MAX);
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(names[j], item) == 0) {
                return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                                "provider '%s' is named twice", item);
            }
        }
        if (!provider_is_built(item)) {
            char built[sizeof(CERTD_PROVIDERS_BUILT) * 2];
            return fail_key(st, key, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
                            "provider '%s' is not supported by this build (built with: %s)", item,
                            providers_built_text(built, sizeof(built)));
        }
        memcpy(names[n++], item, len + 1);
        if (!next) {
            break;
        }
        p = next;
    }
    const struct known_provider *kp = known_provider_find(names[0]);
    if (kp && kp->is_not_first) {
        /* notes/tpm2.md P2 */
        return fail_key(st, key, -EINVAL, CERTD_E_FIELD_INVALID,
                        "%s may not come first: load a software provider (default or fips) before "
                        "it, which OpenSSL then takes hashing and key management from",
                        names[0]);
    }
    memcpy(st->load, names, sizeof(names));
    st->n_load = n;
    return 0;
}

static int set_providers_query(struct parse_state *st, const char *key, const char *v)
{
    return set_provider_value(st, key, v, PROVIDER_QUERY_MAX, true, &st->cfg->providers.query);
}

/*
 * A parameter name (providers.h): [A-Za-z0-9_.-], 1..PROVIDER_PARAM_NAME_MAX, starting with a
 * letter or digit (a line starting with '.' is a directive to OpenSSL's parser).
 */
static bool provider_param_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PROVIDER_PARAM_NAME_MAX) {
        return false;
    }
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
          (s[0] >= '0' && s[0] <= '9'))) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/*
 * The commands of OpenSSL's provider configuration, which it matches on the part after the
 * first '.' ("x.activate" is "activate" to it): certd decides how providers load (every one in
 * load, activated, and a failure is an error; "soft_load" would hide one), and "identity" would
 * load another provider under this name. Refused in any case.
 */
static bool provider_param_is_command(const char *name)
{
    static const char *const commands[] = { "activate", "soft_load", "identity" };
    const char *dot = strchr(name, '.');
    const char *cmd = dot ? dot + 1 : name;
    for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
        if (str_case_eq(cmd, commands[i]) || str_case_eq(name, commands[i])) {
            return true;
        }
    }
    return false;
}

/*
 * A line of [provider NAME]: certd's own sign_query, or any other key, which becomes a parameter
 * handed to the provider (providers_libctx_new) as it is, "module" (where the provider's shared
 * object is) included.
 */
static int set_provider_param(struct parse_state *st, const char *name, const char *value)
{
    struct provider_section *ps = st->psec;
    char q[QUOTE_SIZE];
    if (strcmp(name, "sign_query") == 0) {
        if (ps->sign_query_line != 0) {
            return fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                            "duplicate key (first on line %u)", ps->sign_query_line);
        }
        ps->sign_query_line = st->lineno;
        return set_provider_value(st, name, value, PROVIDER_QUERY_MAX, true, &ps->sign_query);
    }
    const struct known_provider *kp = known_provider_find(ps->name);
    if (kp && kp->keygen_parent && strcmp(name, "parent") == 0) {
        uint32_t handle = 0;
        enum uri_kind kind = URI_KIND_MAX;
        char uri[32];
        if (ps->parent_line != 0) {
            return fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                            "duplicate key (first on line %u)", ps->parent_line);
        }
        /* The one parser of handles (keys/uri.h), with a persistent object's range. */
        int n = snprintf(uri, sizeof(uri), "handle:%s", value);
        if (n < 0 || (size_t)n >= sizeof(uri) || uri_check(uri, &kind, NULL, &handle, NULL) < 0 ||
            kind != URI_HANDLE || handle < TSS_PERSISTENT_FIRST || handle > TSS_PERSISTENT_LAST) {
            return fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                            "'%s' is not a persistent TPM handle (0x81000000 to 0x817fffff)",
                            quote(value, q, sizeof(q)));
        }
        ps->parent = handle;
        ps->parent_line = st->lineno;
        return 0;
    }
    if (kp && kp->keygen_parent_auth && strcmp(name, "parent_auth_file") == 0) {
        const char *why = NULL;
        if (ps->parent_auth_file_line != 0) {
            return fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                            "duplicate key (first on line %u)", ps->parent_auth_file_line);
        }
        int r = path_check(value, &why);
        if (r < 0) {
            return fail_key(st, name, r,
                            r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID, "%s",
                            why);
        }
        ps->parent_auth_file = strdup(value);
        if (!ps->parent_auth_file) {
            return fail_nomem(st);
        }
        ps->parent_auth_file_line = st->lineno;
        return 0;
    }
    if (!provider_param_name_is_valid(name)) {
        return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                    "[%s] '%s' is not a parameter name (1 to %u characters of A-Z, a-z, 0-9, "
                    "'_', '.' and '-', starting with a letter or digit)",
                    st->label, quote(name, q, sizeof(q)), PROVIDER_PARAM_NAME_MAX);
    }
    if (provider_param_is_command(name)) {
        return fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                        "'%s' is a command of OpenSSL's provider configuration, not a parameter "
                        "(certd loads and activates every provider in [providers] load itself)",
                        name);
    }
    for (size_t i = 0; i < ps->n_params; i++) {
        if (strcmp(ps->params[i].name, name) == 0) {
            return fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                            "duplicate key (first on line %u)", ps->param_lines[i]);
        }
    }
    if (ps->n_params == PROVIDER_PARAMS_MAX) {
        return fail_key(st, name, -E2BIG, CERTD_E_TOO_MANY_VALUES, "more than %u parameters",
                        PROVIDER_PARAMS_MAX);
    }
    char *v = NULL;
    int r = set_provider_value(st, name, value, PROVIDER_PARAM_VALUE_MAX, false, &v);
    if (r < 0) {
        return r;
    }
    char *n = strdup(name);
    if (!n) {
        free(v);
        return fail_nomem(st);
    }
    ps->params[ps->n_params] = (struct provider_param){ .name = n, .value = v };
    ps->param_lines[ps->n_params++] = st->lineno;
    return 0;
}

#define T_SC  ((1u << ENDPOINT_SERVER) | (1u << ENDPOINT_CLIENT))
#define T_A   (1u << ENDPOINT_AUTHORITY)
#define T_ALL (T_SC | T_A)

static const struct key_def server_keys[] = {
    { "listen", set_listen, 0, false },         { "state_dir", set_state_dir, 0, false },
    { "users_file", set_users_file, 0, false }, { "hostname", set_hostname, 0, true },
    { "log_level", set_log_level, 0, false },
};
static const struct key_def tls_keys[] = {
    { "profile", set_profile, 0, false },
    { "client_auth", set_client_auth, 0, false },
    { "client_verify", set_client_verify, 0, false },
    { "client_pins", set_client_pins, 0, false },
    { "client_ca", set_client_ca, 0, false },
};
static const struct key_def dbus_keys[] = {
    { "bus", set_dbus_bus, 0, false },
};
static const struct key_def pins_keys[] = {
    { "file", set_pins_file, 0, false },
};
static const struct key_def limits_keys[] = {
    { "max_body", set_limit, 0, false },        { "max_headers_size", set_limit, 0, false },
    { "max_connections", set_limit, 0, false }, { "idle_timeout", set_limit, 0, false },
    { "request_timeout", set_limit, 0, false },
};
static const struct key_def endpoint_keys[] = {
    { "type", set_type, T_ALL, false },
    { "cert", set_cert, T_SC, false },
    { "key", set_key, T_SC, false },
    { "new_key", set_new_key, T_SC, false },
    { "names", set_names, T_SC, false },
    { "days", set_days, T_SC, false },
    { "expired", set_expired, T_SC, false },
    { "not_yet_valid", set_not_yet_valid, T_SC, false },
    { "allow_ed25519", set_allow_ed25519, T_SC, false },
    { "dir", set_dir, T_A, false },
    { "max", set_max, T_A, false },
    { "reload", set_reload, T_ALL, false },
};
static const struct key_def ca_keys[] = {
    { "signer", set_ca_signer, 0, false },
    { "exec_timeout", set_ca_number, 0, false },
    { "cert", set_ca_cert, 0, false },
    { "key", set_ca_key, 0, false },
    { "new_key", set_ca_new_key, 0, false },
    { "common_name", set_ca_common_name, 0, false },
    { "root_days", set_ca_number, 0, false },
    { "days", set_ca_number, 0, false },
    { "crl_days", set_ca_number, 0, false },
    { "sans", set_ca_sans, 0, false },
    { "subject", set_ca_subject, 0, false },
    { "server_auth", set_ca_server_auth, 0, false },
    { "allow_ed25519", set_ca_allow_ed25519, 0, false },
};
static const struct key_def providers_keys[] = {
    { "load", set_providers_load, 0, false },
    { "query", set_providers_query, 0, false },
};
_Static_assert(ELEMENTSOF(endpoint_keys) <= SECTION_KEYS_MAX, "room for every endpoint key");
_Static_assert(ELEMENTSOF(ca_keys) <= SECTION_KEYS_MAX, "room for every ca key");
_Static_assert(ELEMENTSOF(server_keys) <= SECTION_KEYS_MAX, "room for every server key");
_Static_assert(ELEMENTSOF(limits_keys) <= SECTION_KEYS_MAX, "room for every limits key");
_Static_assert(ELEMENTSOF(tls_keys) <= SECTION_KEYS_MAX, "room for every tls key");
_Static_assert(ELEMENTSOF(pins_keys) <= SECTION_KEYS_MAX, "room for every pins key");
_Static_assert(ELEMENTSOF(dbus_keys) <= SECTION_KEYS_MAX, "room for every dbus key");

/* The index of a key in keys[0..n) (and in the duplicate tables). */
static size_t key_index(const struct key_def *keys, size_t n, const char *name)
{
    /* By length and bytes: with constant names, GCC's -O3 -Wstring-compare takes every
     * strcmp() that cannot match for an error, though finding that is the point here. */
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0) {
            return i;
        }
    }
    assert(false);
    return 0;
}

static size_t endpoint_key_index(const char *name)
{
    return key_index(endpoint_keys, ELEMENTSOF(endpoint_keys), name);
}

/* The line of a [ca] key, 0 when not given. */
static unsigned ca_key_line(const struct parse_state *st, const char *name)
{
    return st->sec_key_lines[SEC_CA][key_index(ca_keys, ELEMENTSOF(ca_keys), name)];
}

/* The line of a [tls] key, 0 when not given. */
static unsigned tls_key_line(const struct parse_state *st, const char *name)
{
    return st->sec_key_lines[SEC_TLS][key_index(tls_keys, ELEMENTSOF(tls_keys), name)];
}

static const struct key_def *section_keys(enum section_kind sec, size_t *ret_n)
{
    switch (sec) {
    case SEC_SERVER:
        *ret_n = ELEMENTSOF(server_keys);
        return server_keys;
    case SEC_TLS:
        *ret_n = ELEMENTSOF(tls_keys);
        return tls_keys;
    case SEC_LIMITS:
        *ret_n = ELEMENTSOF(limits_keys);
        return limits_keys;
    case SEC_CA:
        *ret_n = ELEMENTSOF(ca_keys);
        return ca_keys;
    case SEC_PROVIDERS:
        *ret_n = ELEMENTSOF(providers_keys);
        return providers_keys;
    case SEC_ENDPOINT:
        *ret_n = ELEMENTSOF(endpoint_keys);
        return endpoint_keys;
    case SEC_PINS:
        *ret_n = ELEMENTSOF(pins_keys);
        return pins_keys;
    case SEC_DBUS:
        *ret_n = ELEMENTSOF(dbus_keys);
        return dbus_keys;
    default:
        *ret_n = 0;
        return NULL;
    }
}

/* ---- the line reader and the inih handler ---- */

/*
 * Names of certd's own entries in the state directory (config.h CONFIG_RESERVED_NAMES: files,
 * the CA's directory, the pin stores' directory), which an endpoint's default directory
 * STATE_DIR/NAME would otherwise take over. Names starting with '.' (temporary files) cannot
 * pass endpoint_name_is_valid.
 */
static bool endpoint_name_is_reserved(const char *s)
{
    static const char *const reserved[] = { CONFIG_RESERVED_NAMES };
    for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
        if (strcmp(s, reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * "[provider NAME]" (name: what follows "provider"): kept aside until [providers] load is known
 * (it may come later in the file); at most PROVIDERS_MAX, as load.
 */
static int provider_section_enter(struct parse_state *st, const char *name)
{
    char q[QUOTE_SIZE];
    while (is_blank(*name)) {
        name++;
    }
    size_t n = strlen(name);
    if (!key_provider_name_is_valid(name, n)) {
        return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                    "[provider NAME]: the name '%s' must be 1 to %u characters of a-z, 0-9, '_' "
                    "and '-'",
                    quote(name, q, sizeof(q)), KEY_PROVIDER_NAME_MAX);
    }
    for (size_t i = 0; i < st->n_psecs; i++) {
        if (strcmp(st->psecs[i].name, name) == 0) {
            return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                        "duplicate section [provider %s] (first on line %u)", name,
                        st->psecs[i].line);
        }
    }
    if (st->n_psecs == PROVIDERS_MAX) {
        return fail(st, st->lineno, NULL, NULL, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                    "more than %u [provider NAME] sections", PROVIDERS_MAX);
    }
    struct provider_section *ps = &st->psecs[st->n_psecs++];
    memcpy(ps->name, name, n + 1);
    ps->line = st->lineno;
    st->sec = SEC_PROVIDER;
    st->ep = NULL;
    st->psec = ps;
    st->pins = NULL;
    st->key_lines = NULL;
    (void)snprintf(st->label, sizeof(st->label), "provider %s", name);
    return 0;
}

/*
 * "[pins NAME]" (name: what follows "pins"): a pin store, at most CONFIG_PINS_MAX (the implicit
 * client_pins store, added after the file is read, counts too).
 */
static int pins_section_enter(struct parse_state *st, const char *name)
{
    char q[QUOTE_SIZE];
    while (is_blank(*name)) {
        name++;
    }
    size_t n = strlen(name);
    if (!endpoint_name_is_valid(name, n)) {
        return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                    "[pins NAME]: the name '%s' must be 1 to %u characters of a-z, 0-9, '_' "
                    "and '-'",
                    quote(name, q, sizeof(q)), CONFIG_ENDPOINT_NAME_MAX);
    }
    struct config *cfg = st->cfg;
    for (size_t i = 0; i < cfg->n_pins; i++) {
        if (strcmp(cfg->pins[i].name, name) == 0) {
            return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                        "duplicate section [pins %s] (first on line %u)", name, st->pins_line[i]);
        }
    }
    if (cfg->n_pins >= CONFIG_PINS_MAX) {
        return fail(st, st->lineno, NULL, NULL, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                    "more than %u pin stores", CONFIG_PINS_MAX);
    }
    size_t i = cfg->n_pins++;
    struct config_pins *ps = &cfg->pins[i];
    *ps = (struct config_pins){ .file = NULL, .is_file_given = false };
    memcpy(ps->name, name, n + 1);
    st->pins_line[i] = st->lineno;
    st->sec = SEC_PINS;
    st->ep = NULL;
    st->psec = NULL;
    st->pins = ps;
    st->key_lines = st->pins_key_lines[i];
    (void)snprintf(st->label, sizeof(st->label), "pins %s", name);
    return 0;
}

/* A "[...]" line: enter the section it names. */
static int section_enter(struct parse_state *st, const char *line)
{
    char q[QUOTE_SIZE];
    const char *end = strchr(line, ']');
    if (!end) {
        return fail(st, st->lineno, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                    "section header without ']'");
    }
    /* After the ']' only blanks or a comment. */
    const char *after = end + 1;
    while (is_blank(*after)) {
        after++;
    }
    if (*after && *after != ';' && *after != '#') {
        return fail(st, st->lineno, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                    "text after the section header");
    }
    const char *s = line + 1;
    size_t n = (size_t)(end - s);
    while (n > 0 && is_blank(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_blank(s[n - 1])) {
        n--;
    }
    char name[CONFIG_LINE_MAX + 1];
    memcpy(name, s, n);
    name[n] = '\0';

    static const char *const fixed[SEC_KIND_MAX] = {
        [SEC_SERVER] = "server",       [SEC_TLS] = "tls",
        [SEC_LIMITS] = "limits",       [SEC_CA] = "ca",
        [SEC_PROVIDERS] = "providers", [SEC_DBUS] = "dbus",
    };
    enum section_kind sec = SEC_NONE;
    for (int k = 0; k < SEC_KIND_MAX; k++) {
        if (fixed[k] && strcmp(name, fixed[k]) == 0) {
            sec = (enum section_kind)k;
        }
    }
    if (sec != SEC_NONE) {
        /* one of the fixed sections */
    } else if (strncmp(name, "endpoint", 8) == 0 && (name[8] == '\0' || is_blank(name[8]))) {
        sec = SEC_ENDPOINT;
    } else if (strncmp(name, "provider", 8) == 0 && (name[8] == '\0' || is_blank(name[8]))) {
        return provider_section_enter(st, name + 8);
    } else if (strncmp(name, "pins", 4) == 0 && (name[4] == '\0' || is_blank(name[4]))) {
        return pins_section_enter(st, name + 4);
    } else {
        return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                    "unknown section [%s] (sections: server, tls, limits, providers, provider "
                    "NAME, ca, endpoint NAME, pins NAME, dbus)",
                    quote(name, q, sizeof(q)));
    }

    if (sec != SEC_ENDPOINT) {
        if (st->sec_line[sec] != 0) {
            return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                        "duplicate section [%s] (first on line %u)", fixed[sec], st->sec_line[sec]);
        }
        st->sec_line[sec] = st->lineno;
        st->sec = sec;
        st->ep = NULL;
        st->psec = NULL;
        st->pins = NULL;
        st->key_lines = st->sec_key_lines[sec];
        (void)snprintf(st->label, sizeof(st->label), "%s", fixed[sec]);
        return 0;
    }

    const char *ep_name = name + 8;
    while (is_blank(*ep_name)) {
        ep_name++;
    }
    if (!endpoint_name_is_valid(ep_name, strlen(ep_name))) {
        return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                    "[endpoint NAME]: the name '%s' must be 1 to %u characters of a-z, 0-9, '_' "
                    "and '-'",
                    quote(ep_name, q, sizeof(q)), CONFIG_ENDPOINT_NAME_MAX);
    }
    if (endpoint_name_is_reserved(ep_name)) {
        return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                    "[endpoint %s]: the name is reserved (certd keeps its own '%s' in the state "
                    "directory)",
                    ep_name, ep_name);
    }
    struct config *cfg = st->cfg;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        if (strcmp(cfg->endpoints[i].name, ep_name) == 0) {
            return fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                        "duplicate section [endpoint %s] (first on line %u)", ep_name,
                        st->ep_line[i]);
        }
    }
    if (cfg->n_endpoints >= CONFIG_ENDPOINTS_MAX) {
        return fail(st, st->lineno, NULL, NULL, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                    "more than %u endpoints", CONFIG_ENDPOINTS_MAX);
    }
    size_t i = cfg->n_endpoints++;
    endpoint_init(&cfg->endpoints[i], ep_name, ENDPOINT_TYPE_MAX);
    st->ep_line[i] = st->lineno;
    st->sec = SEC_ENDPOINT;
    st->ep = &cfg->endpoints[i];
    st->psec = NULL;
    st->pins = NULL;
    st->key_lines = st->ep_key_lines[i];
    (void)snprintf(st->label, sizeof(st->label), "endpoint %s", ep_name);
    return 0;
}

/*
 * Check a line before inih sees it. Comments and blank lines pass; section headers are handled
 * here; any other line must be "key = value" (or inih's "key: value"), the separator before an
 * inline comment (";" after a blank), as inih will split it.
 */
static int line_check(struct parse_state *st, const char *line)
{
    if (line[0] == '\0' || line[0] == ';' || line[0] == '#') {
        return 0;
    }
    if (line[0] == '[') {
        return section_enter(st, line);
    }
    for (size_t i = 0; line[i]; i++) {
        if (line[i] == ';' && i > 0 && is_blank(line[i - 1])) {
            break;
        }
        if (line[i] == '=' || line[i] == ':') {
            if (i == 0) {
                return fail(st, st->lineno, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                            "a key name is missing before '%c'", line[i]);
            }
            return 0;
        }
    }
    return fail(st, st->lineno, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                "expected 'key = value', '[section]' or a comment");
}

/* inih's fgets-like reader over our checked text: one line per call, NULL at the end or error. */
static char *line_reader(char *buf, int size, void *user)
{
    struct parse_state *st = user;
    struct span line;
    if (st->r < 0 || cur_line(&st->cur, &line) < 0) {
        return NULL;
    }
    st->lineno++;
    /* Leading blanks go: inih would take an indented line as the continuation of the previous
     * value (its multi-line mode), which only hides mistakes here. */
    struct cursor c = cur_init(line);
    while (cur_left(&c) > 0 && is_blank((char)cur_rest(&c).p[0])) {
        if (cur_skip(&c, 1) < 0) {
            break;
        }
    }
    struct span rest = cur_rest(&c);
    if (size <= 0 || rest.len >= (size_t)size) {
        (void)fail(st, st->lineno, NULL, NULL, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                   "line longer than %d bytes", size - 1);
        return NULL;
    }
    if (rest.len > 0) {
        memcpy(buf, rest.p, rest.len);
    }
    buf[rest.len] = '\0';
    if (line_check(st, buf) < 0) {
        return NULL;
    }
    return buf;
}

static int ini_handler_cb(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    char q[QUOTE_SIZE];
    (void)section; /* ours is st->sec: inih truncates long section names */
    if (st->r < 0) {
        return 0;
    }
    if (st->sec == SEC_NONE) {
        (void)fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                   "key '%s' outside any section", quote(name, q, sizeof(q)));
        return 0;
    }
    if (st->sec == SEC_PROVIDER) {
        /* Any key: the provider's parameters are its own business. */
        if (value[0] == '\0') {
            (void)fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                       "[%s] '%s': empty value", st->label, quote(name, q, sizeof(q)));
            return 0;
        }
        return set_provider_param(st, name, value) == 0;
    }
    size_t n;
    const struct key_def *keys = section_keys(st->sec, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].name, name) != 0) {
            continue;
        }
        if (st->key_lines[i] != 0) {
            (void)fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID,
                           "duplicate key (first on line %u)", st->key_lines[i]);
            return 0;
        }
        st->key_lines[i] = st->lineno;
        if (value[0] == '\0' && !keys[i].can_be_empty) {
            (void)fail_key(st, name, -EINVAL, CERTD_E_FIELD_INVALID, "empty value");
            return 0;
        }
        return keys[i].set(st, name, value) == 0;
    }
    (void)fail(st, st->lineno, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
               "unknown key '%s' in [%s]", quote(name, q, sizeof(q)), st->label);
    return 0;
}

/* The whole text: size, NUL and control bytes, line length. */
static int text_check(struct parse_state *st, struct span text)
{
    if (text.len > CONFIG_FILE_MAX) {
        return fail(st, 0, NULL, NULL, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "larger than %u bytes",
                    CONFIG_FILE_MAX);
    }
    struct cursor c = cur_init(text);
    struct span line;
    for (unsigned lineno = 1; cur_line(&c, &line) == 0; lineno++) {
        if (line.len > CONFIG_LINE_MAX) {
            return fail(st, lineno, NULL, NULL, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                        "line longer than %u bytes", CONFIG_LINE_MAX);
        }
        struct cursor lc = cur_init(line);
        uint8_t b;
        while (cur_u8(&lc, &b) == 0) {
            if (b == 0) {
                return fail(st, lineno, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                            "contains a NUL byte");
            }
            if ((b < 0x20 && b != '\t') || b == 0x7f) {
                return fail(st, lineno, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                            "contains control character 0x%02x", (unsigned)b);
            }
        }
    }
    return 0;
}

/*
 * What needs [providers] and every [provider NAME]: each section is for a provider in load; the
 * config's providers in load order, each with its parameters and its sign query (given, the
 * known provider's, or "?provider=NAME"); the global query with the known providers' terms
 * appended, unless the admin's query already names their marker property (then it is the whole
 * query, as written).
 */
static int providers_finish(struct parse_state *st)
{
    struct config *cfg = st->cfg;
    if (st->n_load == 0) {
        memcpy(st->load[0], "default", sizeof("default"));
        st->n_load = 1;
    }
    struct provider_section *by_load[PROVIDERS_MAX] = { NULL };
    for (size_t i = 0; i < st->n_psecs; i++) {
        struct provider_section *ps = &st->psecs[i];
        size_t j = 0;
        while (j < st->n_load && strcmp(st->load[j], ps->name) != 0) {
            j++;
        }
        if (j == st->n_load) {
            return fail(st, ps->line, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                        "[provider %s] is not in [providers] load", ps->name);
        }
        by_load[j] = ps;
    }

    const char *admin = cfg->providers.query;
    unsigned query_line = st->sec_key_lines[SEC_PROVIDERS][1];
    size_t len = admin ? strlen(admin) : 0;
    const struct known_provider *terms[PROVIDERS_MAX];
    size_t n_terms = 0;
    for (size_t i = 0; i < st->n_load; i++) {
        const struct known_provider *kp = known_provider_find(st->load[i]);
        if (kp && kp->query_terms && !(admin && strstr(admin, kp->query_marker))) {
            terms[n_terms++] = kp;
            len += (len > 0 ? 1 : 0) + strlen(kp->query_terms);
        }
    }
    if (len > PROVIDER_QUERY_MAX) {
        assert(n_terms > 0 && admin); /* the admin's alone was checked, the terms are short */
        return fail(st, query_line, "providers", "query", -E2BIG, CERTD_E_FIELD_TOO_LONG,
                    "longer than %u characters with %s's terms appended (or name %s in it to "
                    "give the whole query yourself)",
                    PROVIDER_QUERY_MAX, terms[0]->name, terms[0]->query_marker);
    }

    struct config_providers np = { .n = 0 };
    int r = 0;
    if (len > 0) {
        np.query = malloc(len + 1);
        if (!np.query) {
            return fail_nomem(st);
        }
        size_t o = (size_t)snprintf(np.query, len + 1, "%s", admin ? admin : "");
        for (size_t i = 0; i < n_terms; i++) {
            o += (size_t)snprintf(np.query + o, len + 1 - o, "%s%s", o > 0 ? "," : "",
                                  terms[i]->query_terms);
        }
        assert(o == len);
    }
    for (size_t i = 0; r == 0 && i < st->n_load; i++) {
        struct provider_section *ps = by_load[i];
        struct provider_spec *spec = &np.specs[i];
        memcpy(spec->name, st->load[i], sizeof(spec->name));
        np.n = i + 1;
        if (ps && ps->n_params > 0) {
            spec->params = calloc(ps->n_params, sizeof(*spec->params));
            if (!spec->params) {
                r = -ENOMEM;
                break;
            }
            memcpy(spec->params, ps->params, ps->n_params * sizeof(*spec->params));
            spec->n_params = ps->n_params;
            ps->n_params = 0; /* now np's */
        }
        const struct known_provider *kp = known_provider_find(spec->name);
        for (size_t k = 0; kp && kp->env_param && k < spec->n_params; k++) {
            if (strcmp(spec->params[k].name, kp->env_param) == 0) {
                struct provider_param *e = &np.env[np.n_env];
                e->name = strdup(kp->env_var);
                e->value = strdup(spec->params[k].value);
                np.n_env++;
                if (!e->name || !e->value) {
                    r = -ENOMEM;
                }
                break;
            }
        }
        if (ps && ps->parent_auth_file && !ps->parent) {
            char label[sizeof("provider ") + KEY_PROVIDER_NAME_MAX];
            (void)snprintf(label, sizeof(label), "provider %s", st->load[i]);
            r = fail(st, ps->parent_auth_file_line, label, "parent_auth_file", -EINVAL,
                     CERTD_E_FIELD_INVALID,
                     "needs parent = 0x81...: %s takes a parent's password when it loads a key "
                     "only for a persistent parent",
                     st->load[i]);
            providers_clear(&np);
            return r;
        }
        if (ps && ps->parent) {
            np.keygen[i].parent = ps->parent;
            np.keygen[i].parent_param = kp->keygen_parent;
            np.keygen[i].auth_param = kp->keygen_parent_auth;
            np.keygen[i].auth_env = kp->parent_auth_env;
            np.keygen[i].auth_file = TAKE_PTR(ps->parent_auth_file);
        }
        if (ps && ps->sign_query) {
            np.sign_query[i] = TAKE_PTR(ps->sign_query);
        } else {
            np.sign_query[i] = sign_query_default(spec->name);
            if (!np.sign_query[i]) {
                r = -ENOMEM;
            }
        }
    }
    if (r < 0) {
        providers_clear(&np);
        return fail_nomem(st);
    }
    providers_clear(&cfg->providers);
    cfg->providers = np;
    return 0;
}

/*
 * A key's provider (new_key = PROVIDER:ALG) must be loaded; a key behind a URI needs one, so
 * that a new key (a rekey, a CSR's, a new CA root) is made where that key lives and never in
 * software beside it. what: "endpoint", "CA".
 */
static int new_key_check(struct parse_state *st, const char *label, const struct key_spec *nk,
                         unsigned nk_line, const char *key_uri, unsigned key_line, const char *what)
{
    char q[QUOTE_SIZE];
    if (nk->provider[0] && !provider_is_configured(st->cfg, nk->provider)) {
        return fail(st, nk_line, label, "new_key", -EINVAL, CERTD_E_FIELD_INVALID,
                    "provider '%s' is not in [providers] load", nk->provider);
    }
    if (key_uri && !nk->provider[0]) {
        return fail(st, key_line, label, "key", -EINVAL, CERTD_E_FIELD_INVALID,
                    "key = %s needs new_key = PROVIDER:ALG, so that new keys for this %s are "
                    "made where the key lives",
                    quote(key_uri, q, sizeof(q)), what);
    }
    return 0;
}

/* What needs a whole endpoint: its type, and the keys that belong to the type. */
static int endpoints_finish(struct parse_state *st)
{
    for (size_t i = 0; i < st->cfg->n_endpoints; i++) {
        const struct config_endpoint *ep = &st->cfg->endpoints[i];
        const unsigned *lines = st->ep_key_lines[i];
        char label[sizeof(st->label)];
        (void)snprintf(label, sizeof(label), "endpoint %s", ep->name);
        if (ep->type == ENDPOINT_TYPE_MAX) {
            return fail(st, st->ep_line[i], label, "type", -EINVAL, CERTD_E_FIELD_MISSING,
                        "missing (server, client or authority)");
        }
        /* The first misplaced key by line. */
        size_t bad = ELEMENTSOF(endpoint_keys);
        for (size_t k = 0; k < ELEMENTSOF(endpoint_keys); k++) {
            if (lines[k] != 0 && !(endpoint_keys[k].types & (1u << ep->type)) &&
                (bad == ELEMENTSOF(endpoint_keys) || lines[k] < lines[bad])) {
                bad = k;
            }
        }
        if (bad < ELEMENTSOF(endpoint_keys)) {
            const char *name = endpoint_keys[bad].name;
            return fail(st, lines[bad], label, name, -EINVAL, CERTD_E_FIELD_INVALID,
                        "'%s' is only for %s endpoints", name,
                        endpoint_keys[bad].types == T_A ? "authority" : "server and client");
        }
        if (ep->reload.kind == CONFIG_RELOAD_SELF && ep->type != ENDPOINT_SERVER) {
            return fail(st, lines[endpoint_key_index("reload")], label, "reload", -EINVAL,
                        CERTD_E_FIELD_INVALID, "'self' is only for server endpoints");
        }
        if (ep->type != ENDPOINT_AUTHORITY && ep->new_key.alg == KEY_ALG_ED25519 &&
            !ep->allow_ed25519) {
            return fail(st, lines[endpoint_key_index("new_key")], label, "new_key", -EINVAL,
                        CERTD_E_FIELD_INVALID, "ed25519 needs allow_ed25519 = yes");
        }
        int r = new_key_check(st, label, &ep->new_key, lines[endpoint_key_index("new_key")],
                              ep->key_uri, lines[endpoint_key_index("key")], "endpoint");
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/*
 * What needs the whole [ca] section: the CA key is certd's to use only when certd signs; with an
 * exec signer the helper holds the key, and a key given here would suggest otherwise.
 */
static int ca_finish(struct parse_state *st)
{
    const struct config_ca *ca = &st->cfg->ca;
    if (ca->signer == CONFIG_SIGNER_EXEC && (ca->is_key_given || ca->key_uri)) {
        return fail(st, ca_key_line(st, "key"), "ca", "key", -EINVAL, CERTD_E_FIELD_INVALID,
                    "key is only for signer = local (an exec signer holds its own key)");
    }
    if (ca->key_uri && ca->signer != CONFIG_SIGNER_LOCAL) {
        return fail(st, ca_key_line(st, "key"), "ca", "key", -EINVAL, CERTD_E_FIELD_INVALID,
                    "a key URI is only for signer = local");
    }
    return new_key_check(st, "ca", &ca->new_key, ca_key_line(st, "new_key"), ca->key_uri,
                         ca_key_line(st, "key"), "CA");
}

/*
 * With a bus, every endpoint name is an object path element and, first letter upper-cased, a
 * bus name element (dbus.h): [a-z][a-z0-9_]*, which the endpoint name charset narrows to no
 * '-' and no leading digit.
 */
static int dbus_finish(struct parse_state *st)
{
    const struct config *cfg = st->cfg;
    if (cfg->dbus_bus == CONFIG_DBUS_OFF) {
        return 0;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        const char *name = cfg->endpoints[i].name;
        if (strchr(name, '-') || (name[0] >= '0' && name[0] <= '9')) {
            return fail(st, st->sec_key_lines[SEC_DBUS][0], "dbus", "bus", -EINVAL,
                        CERTD_E_FIELD_INVALID,
                        "[endpoint %s]: with a D-Bus bus, endpoint names must match "
                        "[a-z][a-z0-9_]* (they become object path and bus name elements)",
                        name);
        }
    }
    return 0;
}

/*
 * What needs [tls] and the whole list of endpoints and stores (after the default endpoints are
 * added): the store client_pins names exists (added with its default file when no section
 * defines it); client_ca names an authority endpoint, or defaults to one; a chain mode that
 * can be asked for has an authority to verify chains against.
 */
static int tls_finish(struct parse_state *st)
{
    struct config *cfg = st->cfg;
    const char *store = st->client_pins[0] ? st->client_pins : CONFIG_CLIENT_PINS_DEFAULT;
    unsigned pins_line = tls_key_line(st, "client_pins");
    size_t idx = 0;
    if (pins_find_or_add(cfg, store, &idx) < 0) {
        /* Every section passed the limit: only the implicit store can overflow it. */
        return fail(st, pins_line, "tls", "client_pins", -E2BIG, CERTD_E_TOO_MANY_VALUES,
                    "more than %u pin stores: the client_pins store [pins %s] has no section "
                    "and would be one more",
                    CONFIG_PINS_MAX, store);
    }
    cfg->client_pins = idx;

    unsigned ca_line = tls_key_line(st, "client_ca");
    if (ca_line != 0) {
        const struct config_endpoint *ep = config_endpoint_find(cfg, cfg->client_ca);
        if (!ep) {
            return fail(st, ca_line, "tls", "client_ca", -EINVAL, CERTD_E_FIELD_INVALID,
                        "there is no [endpoint %s] (client_ca names an authority endpoint)",
                        cfg->client_ca);
        }
        if (ep->type != ENDPOINT_AUTHORITY) {
            return fail(st, ca_line, "tls", "client_ca", -EINVAL, CERTD_E_FIELD_INVALID,
                        "[endpoint %s] is a %s endpoint, not an authority", cfg->client_ca,
                        endpoint_type_name(ep->type));
        }
    } else {
        client_ca_default(cfg);
    }
    if (cfg->client_auth != CONFIG_CLIENT_AUTH_OFF &&
        cfg->client_verify != CONFIG_CLIENT_VERIFY_PIN && cfg->client_ca[0] == '\0') {
        return fail(st, tls_key_line(st, "client_verify"), "tls", "client_verify", -EINVAL,
                    CERTD_E_FIELD_INVALID,
                    "%s needs client_ca = NAME of an authority endpoint (there is no authority "
                    "endpoint '" CONFIG_CLIENT_CA_DEFAULT "')",
                    config_client_verify_name(cfg->client_verify));
    }
    return 0;
}

/*
 * A key or certificate behind a handle: or a provider's URI belongs to one place, as files do
 * (paths_check; object: paths are checked there): two endpoints rekeying one persistent handle
 * would take each other's key.
 */
static int uris_check(struct parse_state *st)
{
    const struct config *cfg = st->cfg;
    struct {
        const char *uri;
        unsigned line;
        char what[24 + CONFIG_ENDPOINT_NAME_MAX];
        enum uri_kind kind;
        uint32_t handle;
    } u[2 * CONFIG_ENDPOINTS_MAX + 1];
    size_t n = 0;
    if (cfg->ca.key_uri) {
        u[n].uri = cfg->ca.key_uri;
        u[n].line = ca_key_line(st, "key");
        (void)snprintf(u[n].what, sizeof(u[n].what), "[ca] key");
        n++;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        const struct config_endpoint *ep = &cfg->endpoints[i];
        const char *uris[2] = { ep->cert_uri, ep->key_uri };
        const char *keys[2] = { "cert", "key" };
        for (size_t k = 0; k < 2; k++) {
            if (!uris[k]) {
                continue;
            }
            u[n].uri = uris[k];
            u[n].line = st->ep_key_lines[i][endpoint_key_index(keys[k])];
            (void)snprintf(u[n].what, sizeof(u[n].what), "[endpoint %s] %s", ep->name, keys[k]);
            n++;
        }
    }
    for (size_t y = 0; y < n; y++) {
        u[y].handle = 0;
        int r = uri_check(u[y].uri, &u[y].kind, NULL, &u[y].handle, NULL);
        if (r == -ENOMEM) {
            return fail_nomem(st);
        }
        assert(r == 0); /* it passed when it was read */
        for (size_t x = 0; x < y; x++) {
            bool is_same = u[x].kind == u[y].kind &&
                           ((u[y].kind == URI_HANDLE && u[x].handle == u[y].handle) ||
                            (u[y].kind == URI_OTHER && strcmp(u[x].uri, u[y].uri) == 0));
            if (is_same) {
                char q[QUOTE_SIZE];
                return fail(st, u[y].line, NULL, NULL, -EINVAL, CERTD_E_FIELD_INVALID,
                            "%s '%s' is also %s", u[y].what, quote(u[y].uri, q, sizeof(q)),
                            u[x].what);
            }
        }
    }
    return 0;
}

/* The line that set the path in slot: its key, else its section's header; 0 if neither. */
static unsigned paths_slot_line(const struct parse_state *st, unsigned slot)
{
    if (slot == SLOT_USERS || slot == SLOT_USERS_LOCK) {
        return st->sec_key_lines[SEC_SERVER][2];
    }
    if (slot_is_pins(slot)) {
        /* A store's file (or lock): its file key, its section, else (the implicit store)
         * client_pins, which made it, else state_dir, which its default file derives from. */
        size_t i = slot_pins(slot);
        unsigned line = st->pins_key_lines[i][0];
        if (line == 0) {
            line = st->pins_line[i];
        }
        if (line == 0) {
            line = tls_key_line(st, "client_pins");
        }
        return line != 0 ? line : st->sec_key_lines[SEC_SERVER][1];
    }
    if (slot == SLOT_CA_KEY_OBJ) {
        return ca_key_line(st, "key");
    }
    if (slot_is_ca_pem(slot)) {
        unsigned line = ca_key_line(st, slot == SLOT_CA_CERT ? "cert" : "key");
        if (line == 0) {
            line = st->sec_line[SEC_CA];
        }
        return line != 0 ? line : st->sec_key_lines[SEC_SERVER][1];
    }
    if (!slot_is_ep(slot)) { /* certd's own files: where state_dir is */
        return st->sec_key_lines[SEC_SERVER][1];
    }
    size_t i = slot_ep(slot);
    const struct config_endpoint *ep = &st->cfg->endpoints[i];
    const char *key = slot_is_ep_key(slot)             ? "key"
                      : ep->type == ENDPOINT_AUTHORITY ? "dir"
                                                       : "cert";
    unsigned line = st->ep_key_lines[i][endpoint_key_index(key)];
    return line != 0 ? line : st->ep_line[i];
}

int config_parse(struct span text, const char *filename, struct config **ret, struct certd_err *err)
{
    assert_return(ret, -EINVAL);
    assert_return(text.p || text.len == 0, -EINVAL);
    /* Big: the duplicate tables. Heap, so that the loop thread's stack stays small. */
    _cleanup_(parse_state_freep) struct parse_state *st = calloc(1, sizeof(*st));
    if (!st) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    st->filename = filename ? filename : "<config>";
    st->err = err;
    int r = text_check(st, text);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_config) struct config *cfg = config_alloc();
    if (!cfg) {
        return fail_nomem(st);
    }
    st->cfg = cfg;
    st->cur = cur_init(text);
    /* A UTF-8 byte-order mark is not part of the first line. */
    struct span bom = span_make("\xef\xbb\xbf", 3);
    if (text.len >= 3 && span_eq(span_make(text.p, 3), bom)) {
        int skipped = cur_skip(&st->cur, 3);
        assert(skipped == 0); /* the three bytes are there */
        (void)skipped;
    }
    int n = ini_parse_stream(line_reader, st, ini_handler_cb, st);
    if (st->r < 0) {
        return st->r;
    }
    if (n < 0) {
        return fail_nomem(st);
    }
    if (n > 0) {
        /* line_check accepts only what inih parses; this is a safety net. */
        return fail(st, (unsigned)n, NULL, NULL, -EBADMSG, CERTD_E_FIELD_INVALID,
                    "expected 'key = value', '[section]' or a comment");
    }
    r = providers_finish(st);
    if (r < 0) {
        return r;
    }
    r = endpoints_finish(st);
    if (r < 0) {
        return r;
    }
    r = ca_finish(st);
    if (r < 0) {
        return r;
    }
    if (cfg->n_endpoints == 0) {
        add_default_endpoints(cfg);
    }
    r = tls_finish(st);
    if (r < 0) {
        return r;
    }
    r = dbus_finish(st);
    if (r < 0) {
        return r;
    }
    r = config_resolve(cfg, NULL);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail(st, st->sec_key_lines[SEC_SERVER][1], "server", "state_dir", r,
                    CERTD_E_FIELD_TOO_LONG, "too long for the paths derived from it");
    }
    char clash[CERTD_ERR_MSG_MAX];
    unsigned slot = 0;
    r = config_check_paths(cfg, NULL, clash, sizeof(clash), &slot);
    if (r == -ENOMEM) {
        return fail_nomem(st);
    }
    if (r < 0) {
        return fail(st, paths_slot_line(st, slot), NULL, NULL, r, CERTD_E_FIELD_INVALID, "%s",
                    clash);
    }
    r = uris_check(st);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(cfg);
    return 0;
}

int config_load(const char *path, struct config **ret, struct certd_err *err)
{
    assert_return(path && ret, -EINVAL);
    _cleanup_free_ uint8_t *data = NULL;
    size_t len = 0;
    int r = store_read_file(path, CONFIG_FILE_MAX, false, &data, &len);
    if (r == -ENOENT) {
        return err_set(err, r, CERTD_E_NOT_FOUND, "%.100s: no such file", path);
    }
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_INPUT_TOO_LARGE, "%.100s: larger than %u bytes", path,
                       CONFIG_FILE_MAX);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "%.100s: cannot read: %s", path, strerror(-r));
    }
    return config_parse(span_make(data, len), path, ret, err);
}

int config_new_default(const char *state_dir, struct config **ret)
{
    assert_return(ret, -EINVAL);
    _cleanup_(cleanup_config) struct config *cfg = config_alloc();
    if (!cfg) {
        return -ENOMEM;
    }
    add_default_endpoints(cfg);
    size_t idx = 0;
    int r = pins_find_or_add(cfg, CONFIG_CLIENT_PINS_DEFAULT, &idx);
    assert(r == 0); /* the first store */
    cfg->client_pins = idx;
    client_ca_default(cfg);
    _cleanup_free_ char *sd = NULL;
    if (state_dir) {
        const char *why = NULL;
        r = dir_dup(state_dir, &sd, &why);
        if (r < 0) {
            return r;
        }
    }
    r = config_resolve(cfg, sd);
    if (r < 0) {
        return r;
    }
    TAKE_PTR(sd); /* now cfg's */
    *ret = TAKE_PTR(cfg);
    return 0;
}

int config_apply_overrides(struct config *cfg, const char *state_dir, const char *listen,
                           struct certd_err *err)
{
    assert_return(cfg, -EINVAL);
    const char *why = NULL;
    struct config_listen l = cfg->listen;
    char q[QUOTE_SIZE];
    if (listen && listen_parse(listen, &l, &why) < 0) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "--listen '%s': %s",
                       quote(listen, q, sizeof(q)), why);
    }
    _cleanup_free_ char *sd = NULL;
    if (state_dir) {
        int r = dir_dup(state_dir, &sd, &why);
        if (r == -ENOMEM) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (r < 0) {
            return err_set(err, r, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID,
                           "--state-dir '%s': %s", quote(state_dir, q, sizeof(q)), why);
        }
        if (str_has_control(state_dir)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "--state-dir: contains a control character");
        }
    }
    char *paths[SLOTS_MAX] = { NULL };
    const char *new_sd = sd ? sd : cfg->state_dir;
    int r = resolve_compute(cfg, new_sd, paths);
    if (r == 0) {
        char clash[CERTD_ERR_MSG_MAX];
        unsigned slot = 0;
        r = config_check_paths(cfg, paths, clash, sizeof(clash), &slot);
        if (r < 0) {
            free_strings(paths, ELEMENTSOF(paths));
        }
        if (r == -ENOMEM) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (r < 0) {
            return err_set(err, r, CERTD_E_FIELD_INVALID, "%s%s", sd ? "--state-dir: " : "", clash);
        }
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_FIELD_TOO_LONG,
                       "--state-dir: too long for the paths derived from it");
    }
    resolve_commit(cfg, TAKE_PTR(sd), paths); /* sd is now cfg's */
    cfg->listen = l;
    return 0;
}

const char *config_provider_sign_query(const struct config *cfg, const char *name)
{
    if (!cfg || !name) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->providers.n; i++) {
        if (strcmp(cfg->providers.specs[i].name, name) == 0) {
            return cfg->providers.sign_query[i];
        }
    }
    return NULL;
}

const struct config_endpoint *config_endpoint_find(const struct config *cfg, const char *name)
{
    if (!cfg || !name) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        if (strcmp(cfg->endpoints[i].name, name) == 0) {
            return &cfg->endpoints[i];
        }
    }
    return NULL;
}

const struct config_pins *config_pins_find(const struct config *cfg, const char *name)
{
    if (!cfg || !name) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_pins; i++) {
        if (strcmp(cfg->pins[i].name, name) == 0) {
            return &cfg->pins[i];
        }
    }
    return NULL;
}

const char *config_client_auth_name(enum config_client_auth a)
{
    static const char *const names[] = {
        [CONFIG_CLIENT_AUTH_OFF] = "off",
        [CONFIG_CLIENT_AUTH_OPTIONAL] = "optional",
        [CONFIG_CLIENT_AUTH_REQUIRED] = "required",
    };
    _Static_assert(ELEMENTSOF(names) == CONFIG_CLIENT_AUTH_MAX, "a name per mode");
    return (unsigned)a < ELEMENTSOF(names) ? names[a] : NULL;
}

const char *config_dbus_bus_name(enum config_dbus_bus b)
{
    static const char *const names[] = {
        [CONFIG_DBUS_OFF] = "off",
        [CONFIG_DBUS_SYSTEM] = "system",
        [CONFIG_DBUS_SESSION] = "session",
    };
    _Static_assert(ELEMENTSOF(names) == CONFIG_DBUS_MAX, "a name per bus");
    return (unsigned)b < ELEMENTSOF(names) ? names[b] : NULL;
}

const char *config_client_verify_name(enum config_client_verify v)
{
    static const char *const names[] = {
        [CONFIG_CLIENT_VERIFY_PIN] = "pin",
        [CONFIG_CLIENT_VERIFY_CHAIN] = "chain",
        [CONFIG_CLIENT_VERIFY_PIN_OR_CHAIN] = "pin-or-chain",
    };
    _Static_assert(ELEMENTSOF(names) == CONFIG_CLIENT_VERIFY_MAX, "a name per mode");
    return (unsigned)v < ELEMENTSOF(names) ? names[v] : NULL;
}

socklen_t config_listen_sockaddr(const struct config_listen *l, struct sockaddr_storage *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (l->family == AF_INET6) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(l->port) };
        memcpy(&sa.sin6_addr, l->addr, 16);
        memcpy(ret, &sa, sizeof(sa));
        return (socklen_t)sizeof(sa);
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(l->port) };
    memcpy(&sa.sin_addr, l->addr, 4);
    memcpy(ret, &sa, sizeof(sa));
    return (socklen_t)sizeof(sa);
}

const char *config_log_level_name(enum config_log_level l)
{
    switch (l) {
    case CONFIG_LOG_ERR:
        return "err";
    case CONFIG_LOG_WARNING:
        return "warning";
    case CONFIG_LOG_NOTICE:
        return "notice";
    case CONFIG_LOG_INFO:
        return "info";
    case CONFIG_LOG_DEBUG:
        return "debug";
    default:
        return NULL;
    }
}

const char *config_tls_profile_name(enum config_tls_profile p)
{
    switch (p) {
    case CONFIG_TLS_INTERMEDIATE:
        return "intermediate";
    case CONFIG_TLS_MODERN:
        return "modern";
    default:
        return NULL;
    }
}

const char *config_reload_kind_name(enum config_reload_kind k)
{
    static const char *const names[] = { "none", "self", "systemd", "signal", "exec" };
    _Static_assert(ELEMENTSOF(names) == CONFIG_RELOAD_KIND_MAX, "a name per kind");
    return (unsigned)k < ELEMENTSOF(names) ? names[k] : NULL;
}

const char *config_signer_name(enum config_signer s)
{
    static const char *const names[] = {
        [CONFIG_SIGNER_LOCAL] = "local", [CONFIG_SIGNER_EXEC] = "exec", [CONFIG_SIGNER_OFF] = "off"
    };
    _Static_assert(ELEMENTSOF(names) == CONFIG_SIGNER_MAX, "a name per signer");
    return (unsigned)s < ELEMENTSOF(names) ? names[s] : NULL;
}

/* The short names OpenSSL prints (SN_*), as a console's CSR tool would show them. */
static const struct {
    const char *name;
    int nid;
} config_attrs[] = {
    [CONFIG_ATTR_O] = { "O", NID_organizationName },
    [CONFIG_ATTR_OU] = { "OU", NID_organizationalUnitName },
    [CONFIG_ATTR_C] = { "C", NID_countryName },
    [CONFIG_ATTR_ST] = { "ST", NID_stateOrProvinceName },
    [CONFIG_ATTR_L] = { "L", NID_localityName },
    [CONFIG_ATTR_EMAIL] = { "emailAddress", NID_pkcs9_emailAddress },
    [CONFIG_ATTR_SERIALNUMBER] = { "serialNumber", NID_serialNumber },
};
_Static_assert(ELEMENTSOF(config_attrs) == CONFIG_ATTR_MAX, "a name per attribute");

const char *config_attr_name(enum config_attr a)
{
    return (unsigned)a < ELEMENTSOF(config_attrs) ? config_attrs[a].name : NULL;
}

int config_attr_nid(enum config_attr a)
{
    return (unsigned)a < ELEMENTSOF(config_attrs) ? config_attrs[a].nid : NID_undef;
}
