/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/config: every key's good and bad values (tables of text, errno, detail code, line and
 * key), limits at N and N+1, section and key rules, the text checks done before inih, file
 * loading, the embedded defaults, the command-line overrides, and certd.conf.example.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/objects.h>

#include "config.h"
#include "csr/csr.h"
#include "store/store.h"
#include "testutil.h"
#include "util/limits.h"
#include "util/parse.h"

#define FILE_NAME "t.conf"

static struct config *parse_ok(const char *text)
{
    struct certd_err err = { 0 };
    struct config *cfg = NULL;
    int r = config_parse(span_from_str(text), FILE_NAME, &cfg, &err);
    if (r != 0) {
        print_error("unexpected failure %d (%s) for:\n%s\n", r, err.msg, text);
    }
    assert_int_equal(r, 0);
    assert_int_equal(err.code, CERTD_E_OK);
    assert_non_null(cfg);
    return cfg;
}

/* Parse text expecting failure r/code with a message naming "t.conf:LINE:" and word. */
static void parse_bad_span(struct span text, int r, enum certd_errc code, unsigned line,
                           const char *word)
{
    struct certd_err err = { 0 };
    struct config *cfg = (struct config *)&err; /* sentinel: must stay untouched */
    int got = config_parse(text, FILE_NAME, &cfg, &err);
    if (got != r || err.code != code) {
        print_error("got %d %s (%s), want %d %s for:\n%.*s\n", got, err_code_name(err.code),
                    err.msg, r, err_code_name(code), (int)text.len, (const char *)text.p);
    }
    assert_int_equal(got, r);
    assert_int_equal(err.code, code);
    assert_ptr_equal(cfg, (struct config *)&err);
    char where[32];
    if (line > 0) {
        (void)snprintf(where, sizeof(where), FILE_NAME ":%u: ", line);
    } else {
        (void)snprintf(where, sizeof(where), FILE_NAME ": ");
    }
    if (strncmp(err.msg, where, strlen(where)) != 0 || (word && !strstr(err.msg, word))) {
        print_error("message '%s' lacks '%s' or '%s'\n", err.msg, where, word ? word : "");
        fail();
    }
}

static void parse_bad(const char *text, int r, enum certd_errc code, unsigned line,
                      const char *word)
{
    parse_bad_span(span_from_str(text), r, code, line, word);
}

/* Whether this build supports the provider called name (meson option providers). */
static bool is_built(const char *name)
{
    char list[sizeof(CERTD_PROVIDERS_BUILT) + 2];
    char item[64];
    (void)snprintf(list, sizeof(list), ",%s,", CERTD_PROVIDERS_BUILT);
    (void)snprintf(item, sizeof(item), ",%s,", name);
    return strstr(list, item) != NULL;
}

/* The TPM cases need default and tpm2 in the build (the default of the meson option). */
static void need_tpm2(void)
{
    if (!is_built("default") || !is_built("tpm2")) {
        print_message("this build has no default or tpm2 provider: skipped\n");
        skip();
    }
}

#define SRV "[server]\n"
#define EPS "[endpoint e]\ntype = server\n"
#define EPC "[endpoint e]\ntype = client\n"
#define EPA "[endpoint e]\ntype = authority\n"
#define CA  "[ca]\n"

struct bad_case {
    const char *text;
    int r;
    enum certd_errc code;
    unsigned line;
    const char *word; /* the key, or a word of the message */
};

#define INV(text, line, word)                            \
    {                                                    \
        text, -EINVAL, CERTD_E_FIELD_INVALID, line, word \
    }

static const struct bad_case bad_values[] = {
    /* [server] */
    INV(SRV "listen = 127.0.0.1\n", 2, "] listen: "),
    INV(SRV "listen = 127.0.0.1:0\n", 2, "] listen: "),
    INV(SRV "listen = 127.0.0.1:65536\n", 2, "] listen: "),
    INV(SRV "listen = 127.0.0.1:08443\n", 2, "port"),
    INV(SRV "listen = 127.0.0.1:+1\n", 2, "port"),
    INV(SRV "listen = 127.0.0.1:\n", 2, "port"),
    INV(SRV "listen = ::1:8443\n", 2, "] listen: "),
    INV(SRV "listen = [::1]8443\n", 2, "] listen: "),
    INV(SRV "listen = [::1]:\n", 2, "port"),
    INV(SRV "listen = [127.0.0.1]:80\n", 2, "numeric"),
    INV(SRV "listen = localhost:8443\n", 2, "numeric"),
    INV(SRV "listen = 1.2.3:80\n", 2, "numeric"),
    INV(SRV "listen = :80\n", 2, "numeric"),
    INV(SRV "listen =\n", 2, "] listen: empty value"),
    INV(SRV "state_dir = var/lib/certd\n", 2, "] state_dir: must be an absolute path"),
    INV(SRV "users_file = users\n", 2, "] users_file: must be an absolute path"),
    INV(SRV "users_file = file:///etc/users\n", 2, "] users_file: "),
    INV(SRV "hostname = bad_host!\n", 2, "] hostname: "),
    INV(SRV "hostname = *.example.com\n", 2, "] hostname: "),
    INV(SRV "hostname = 10.0.0.1\n", 2, "] hostname: "),
    INV(SRV "log_level = verbose\n", 2, "] log_level: "),
    INV(SRV "log_level = 7\n", 2, "] log_level: "),
    /* [tls] */
    INV("[tls]\nprofile = old\n", 2, "[tls] profile: "),
    /* [limits]: N-1 below and N+1 above each range */
    INV("[limits]\nmax_body = 1023\n", 2, "[limits] max_body: must be a whole number from 1024"),
    INV("[limits]\nmax_body = 1048577\n", 2, "to 1048576"),
    INV("[limits]\nmax_body = -1\n", 2, "max_body"),
    INV("[limits]\nmax_body = 64k\n", 2, "max_body"),
    INV("[limits]\nmax_body = 99999999999999999999999\n", 2, "max_body"),
    INV("[limits]\nmax_headers_size = 1023\n", 2, "max_headers_size"),
    INV("[limits]\nmax_headers_size = 65537\n", 2, "max_headers_size"),
    INV("[limits]\nmax_connections = 0\n", 2, "max_connections"),
    INV("[limits]\nmax_connections = 4097\n", 2, "max_connections"),
    INV("[limits]\nidle_timeout = 0\n", 2, "idle_timeout"),
    INV("[limits]\nidle_timeout = 3601\n", 2, "idle_timeout"),
    INV("[limits]\nrequest_timeout = 0\n", 2, "request_timeout"),
    INV("[limits]\nrequest_timeout = 601\n", 2, "request_timeout"),
    /* [endpoint] values */
    INV("[endpoint e]\ntype = bogus\n", 2, "[endpoint e] type: must be server"),
    INV(EPS "new_key = ec:P-192\n", 3, "[endpoint e] new_key: "),
    INV(EPS "new_key = rsa:1024\n", 3, "new_key"),
    INV(EPS "new_key = dsa\n", 3, "new_key"),
    INV(EPS "new_key = ed25519\n", 3, "new_key: ed25519 needs allow_ed25519 = yes"),
    INV(EPS "names = a.example,,b.example\n", 3, "[endpoint e] names: name 2 is empty"),
    INV(EPS "names = a.example,\n", 3, "names: name 2 is empty"),
    INV(EPS "names = bad name\n", 3, "names: 'bad name' is not"),
    INV(EPS "names = -bad.example\n", 3, "names"),
    INV(EPS "days = 0\n", 3, "[endpoint e] days: "),
    INV(EPS "days = 36501\n", 3, "days"),
    INV(EPS "expired = warn\n", 3, "[endpoint e] expired: must be accept or reject"),
    INV(EPS "not_yet_valid = maybe\n", 3, "not_yet_valid"),
    INV(EPS "allow_ed25519 = true\n", 3, "[endpoint e] allow_ed25519: must be yes or no"),
    INV(EPA "max = 0\n", 3, "[endpoint e] max: "),
    INV(EPA "max = 1001\n", 3, "max"),
    INV(EPA "dir = relative/dir\n", 3, "[endpoint e] dir: must be an absolute path"),
    INV(EPS "cert = relative.pem\n", 3,
        "[endpoint e] cert: must be an absolute path or a URI with a lowercase scheme"),
    INV(EPS "key = HANDLE:0x81000001\n", 3, "[endpoint e] key: must be an absolute path or a URI"),
    INV(EPS "key = handle:0x81000001 x\n", 3, "key: a URI may hold only printable ASCII"),
    INV(EPS "cert = file://host/etc/cert.pem\n", 3, "cert: a file: URI must name"),
    INV(EPS "cert = file:relative.pem\n", 3, "cert"),
    INV(EPS "cert = file:///a%zz\n", 3, "cert: bad percent"),
    INV(EPS "cert = file:///a%4\n", 3, "cert: bad percent"),
    INV(EPS "cert = file:///a%00b\n", 3, "cert: bad percent-encoding"),
    INV(EPS "cert = file:///a%0ab\n", 3, "cert: the file: URI encodes a control"),
    INV(EPS "cert = file:///a%7Fb\n", 3, "cert: the file: URI encodes a control"),
    INV(EPS "cert = file:///a%3f?b\n", 3, "cert: a file: URI may not have a query"),
    INV(EPS "cert = file:///a?x=1\n", 3, "cert: a file: URI may not have a query"),
    /* paths in normal form, checked after file: URI decoding */
    INV(EPS "cert = file:///var/lib/certd/a/%2e%2e/users\n", 3,
        "[endpoint e] cert: must not contain '.' or '..' components"),
    INV(EPS "cert = file:///a/%2E/c.pem\n", 3, "cert: must not contain '.'"),
    INV(EPS "cert = file:///a%2f%2fc.pem\n", 3, "cert: must not contain '//'"),
    INV(EPS "cert = file://localhost//etc/c.pem\n", 3, "cert: must not contain '//'"),
    INV(EPS "cert = file:///etc/\n", 3, "cert: must not end with '/'"),
    INV(EPS "key = /etc/ssl/../shadow\n", 3, "[endpoint e] key: must not contain '.' or '..'"),
    INV(EPS "key = /etc/./k.pem\n", 3, "key: must not contain '.'"),
    INV(EPS "key = /etc//k.pem\n", 3, "key: must not contain '//'"),
    INV(EPS "key = /etc/k.pem/\n", 3, "key: must not end with '/'"),
    INV(EPS "key = /\n", 3, "key: must name a file"),
    INV(EPC "cert = /..\n", 3, "cert: must not contain"),
    INV(EPA "dir = /etc/../ca\n", 3, "[endpoint e] dir: must not contain '.' or '..'"),
    INV(EPA "dir = /etc//ca\n", 3, "dir: must not contain '//'"),
    INV(EPA "dir = /etc/ca/.\n", 3, "dir: must not contain"),
    INV(SRV "state_dir = /var/lib/../certd\n", 2, "[server] state_dir: must not contain"),
    INV(SRV "state_dir = //var\n", 2, "state_dir: must not contain '//'"),
    INV(SRV "users_file = /etc/./users\n", 2, "[server] users_file: must not contain"),
    INV(SRV "users_file = /etc/users/\n", 2, "users_file: must not end with '/'"),
    INV(SRV "users_file = /\n", 2, "users_file: must name a file"),
    /* names of certd's own state entries */
    INV("[endpoint users]\ntype = authority\n", 1, "[endpoint users]: the name is reserved"),
    INV("[endpoint initial-admin-password]\ntype = server\n", 1, "is reserved"),
    /* STATE_DIR/uuid is a file: as an authority's directory it would break start-up */
    INV("[endpoint uuid]\ntype = authority\n", 1, "[endpoint uuid]: the name is reserved"),
    /* reload */
    INV(EPS "reload = sometimes\n", 3, "[endpoint e] reload: must be none, self"),
    INV(EPS "reload = systemd:\n", 3, "reload: systemd:UNIT"),
    INV(EPS "reload = systemd:nslcd\n", 3, "reload: systemd:UNIT"),
    INV(EPS "reload = systemd:nslcd.bogus\n", 3, "reload"),
    INV(EPS "reload = systemd:.service\n", 3, "reload"),
    INV(EPS "reload = systemd:getty@.service\n", 3, "reload"),
    INV(EPS "reload = systemd:a/b.service\n", 3, "reload"),
    INV(EPS "reload = signal:KILL:/run/x.pid\n", 3, "reload: SIG must be HUP, USR1 or USR2"),
    INV(EPS "reload = signal:0:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:65:/run/x.pid\n", 3, "reload: SIG must be"),
    /* only the reload signals, only by name */
    INV(EPS "reload = signal:9:/run/x.pid\n", 3, "reload: SIG must be HUP, USR1 or USR2"),
    INV(EPS "reload = signal:19:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:32:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:33:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:1:/run/x.pid\n", 3, "numbers are not accepted"),
    INV(EPS "reload = signal:64:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:SIGSTOP:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:TERM:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:SIGINT:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:SIG:/run/x.pid\n", 3, "reload: SIG must be"),
    INV(EPS "reload = signal:HUP:/run/../x.pid\n", 3, "reload: PIDFILE must be an absolute path"),
    INV(EPS "reload = signal:HUP:/run//x.pid\n", 3, "'//'"),
    INV(EPS "reload = signal:HUP:/run/x/\n", 3, "reload: PIDFILE"),
    INV(EPS "reload = exec:/../tmp/x\n", 3, "reload: exec:COMMAND: the program must be"),
    INV(EPS "reload = exec:/usr/./bin/x --now\n", 3, "'..'"),
    INV(EPS "reload = exec://bin/x\n", 3, "reload: exec:COMMAND: the program"),
    INV(EPS "reload = exec:/bin/\n", 3, "reload: exec:COMMAND: the program"),
    INV(EPS "reload = exec:/\n", 3, "reload: exec:COMMAND: the program"),
    INV(EPS "reload = signal:HUP\n", 3, "reload: must be signal:SIG:PIDFILE"),
    INV(EPS "reload = signal::/run/x.pid\n", 3, "reload: must be signal:SIG:PIDFILE"),
    INV(EPS "reload = signal:HUP:run/x.pid\n", 3, "reload: PIDFILE must be an absolute path"),
    INV(EPS "reload = exec:reload-it\n", 3, "reload: exec:COMMAND needs"),
    INV(EPS "reload = exec:\n", 3, "reload: exec:COMMAND needs"),
    INV(EPS "reload = exec: /bin/true\n", 3, "reload: exec:COMMAND needs"),
    INV(EPC "reload = self\n", 3, "[endpoint e] reload: 'self' is only for server endpoints"),
    INV(EPA "reload = self\n", 3, "reload: 'self' is only for server"),
    /* keys on the wrong endpoint type, wherever the type line is */
    INV(EPA "cert = /etc/c.pem\n", 3, "[endpoint e] cert: 'cert' is only for server and client"),
    INV(EPA "key = /etc/k.pem\n", 3, "key: 'key' is only for server and client"),
    INV(EPA "new_key = ec\n", 3, "new_key: 'new_key' is only"),
    INV(EPA "names = a.example\n", 3, "names: 'names' is only"),
    INV(EPA "days = 10\n", 3, "days: 'days' is only"),
    INV(EPA "expired = reject\n", 3, "expired: 'expired' is only"),
    INV(EPA "not_yet_valid = reject\n", 3, "not_yet_valid: 'not_yet_valid' is only"),
    INV(EPA "allow_ed25519 = yes\n", 3, "allow_ed25519: 'allow_ed25519' is only"),
    INV(EPS "dir = /etc/ca\n", 3, "[endpoint e] dir: 'dir' is only for authority endpoints"),
    INV(EPC "max = 5\n", 3, "max: 'max' is only for authority"),
    INV("[endpoint e]\nmax = 5\ndir = /x\ntype = server\n", 2, "max: 'max' is only"),
    INV("[endpoint e]\ndir = /x\nmax = 5\ntype = client\n", 2, "dir: 'dir' is only"),
    /* sections and keys */
    INV("[Server]\n", 1, "unknown section [Server]"),
    INV("[endpointx]\n", 1, "unknown section"),
    INV("[endpoint]\ntype = server\n", 1, "the name '' must be"),
    INV("[endpoint Https]\ntype = server\n", 1, "the name 'Https' must be"),
    INV("[endpoint a.b]\ntype = server\n", 1, "the name 'a.b' must be"),
    INV("[endpoint a b]\ntype = server\n", 1, "the name 'a b' must be"),
    INV("[endpoint aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\ntype = server\n", 1, "must be 1 to 32"),
    INV(SRV "\n[tls]\n[server]\n", 4, "duplicate section [server] (first on line 1)"),
    INV("[limits]\n[limits]\n", 2, "duplicate section [limits] (first on line 1)"),
    INV("[tls]\n[tls]\n", 2, "duplicate section [tls]"),
    INV(EPS "[endpoint e]\n", 3, "duplicate section [endpoint e] (first on line 1)"),
    INV(SRV "listen = 1.2.3.4:1\n; x\nlisten = 1.2.3.4:2\n", 4,
        "[server] listen: duplicate key (first on line 2)"),
    INV(EPS "type = server\n", 3, "[endpoint e] type: duplicate key (first on line 2)"),
    INV(EPS "names = a.example\nnames = b.example\n", 4, "names: duplicate key"),
    INV("[tls]\nprofile = modern\nprofile = modern\n", 3, "[tls] profile: duplicate key"),
    INV(SRV "lsten = 1.2.3.4:1\n", 2, "unknown key 'lsten' in [server]"),
    INV("[tls]\nciphers = ALL\n", 2, "unknown key 'ciphers' in [tls]"),
    INV("[limits]\nmax_bodies = 1\n", 2, "unknown key 'max_bodies' in [limits]"),
    INV(EPS "Type = server\n", 3, "unknown key 'Type' in [endpoint e]"),
    INV(EPS "listen = 1.2.3.4:1\n", 3, "unknown key 'listen' in [endpoint e]"),
    INV("listen = 1.2.3.4:1\n", 1, "key 'listen' outside any section"),
    /* an over-long unknown key is quoted briefly */
    INV(SRV "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1\n", 2,
        "unknown key 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' in [server]"),
    /* [ca] values */
    INV(CA "signer = remote\n", 2, "[ca] signer: must be local, off or exec:COMMAND"),
    INV(CA "signer = Exec:/bin/x\n", 2, "[ca] signer: must be local, off or exec"),
    INV(CA "signer =\n", 2, "[ca] signer: empty value"),
    INV(CA "signer = exec:\n", 2, "[ca] signer: exec:COMMAND needs the program's absolute path"),
    INV(CA "signer = exec:host-sign\n", 2, "signer: exec:COMMAND needs"),
    INV(CA "signer = exec: /bin/x\n", 2, "signer: exec:COMMAND needs"),
    INV(CA "signer = exec:/usr/../bin/x\n", 2, "[ca] signer: exec:COMMAND: the program must be"),
    INV(CA "signer = exec://bin/x\n", 2, "signer: exec:COMMAND: the program must be"),
    INV(CA "signer = exec:/bin/\n", 2, "signer: exec:COMMAND: the program must be"),
    INV(CA "exec_timeout = 0\n", 2, "[ca] exec_timeout: must be a whole number from 1 to 600"),
    INV(CA "exec_timeout = 601\n", 2, "exec_timeout: must be a whole number"),
    INV(CA "exec_timeout = 30s\n", 2, "exec_timeout"),
    INV(CA "exec_timeout = -1\n", 2, "exec_timeout"),
    INV(CA "root_days = 0\n", 2, "[ca] root_days: must be a whole number from 1 to 36500"),
    INV(CA "root_days = 36501\n", 2, "[ca] root_days: "),
    INV(CA "days = 0\n", 2, "[ca] days: must be a whole number from 1 to 36500"),
    INV(CA "days = 36501\n", 2, "[ca] days: "),
    INV(CA "crl_days = 0\n", 2, "[ca] crl_days: must be a whole number from 1 to 365"),
    INV(CA "crl_days = 366\n", 2, "[ca] crl_days: "),
    INV(CA "cert = ca.pem\n", 2, "[ca] cert: must be an absolute path or a URI"),
    INV(CA "cert = file:///var/lib/certd/x/%2e%2e/users\n", 2, "[ca] cert: must not contain '.'"),
    INV(CA "key = /etc//k.pem\n", 2, "[ca] key: must not contain '//'"),
    INV(CA "key = /etc/k.pem/\n", 2, "[ca] key: must not end with '/'"),
    INV(CA "cert = /\n", 2, "[ca] cert: must name a file"),
    INV(CA "new_key = ec:P-192\n", 2, "[ca] new_key: "),
    INV(CA "new_key = rsa:1024\n", 2, "[ca] new_key: "),
    INV(CA "common_name = caf\xc3\xa9 CA\n", 2, "[ca] common_name: must be printable ASCII"),
    INV(CA "common_name =\n", 2, "[ca] common_name: empty value"),
    INV(CA "sans = dns,,ip\n", 2, "[ca] sans: an empty entry (use dns, ip, email, uri, or none)"),
    INV(CA "sans = dns,\n", 2, "[ca] sans: an empty entry"),
    INV(CA "sans = , dns\n", 2, "[ca] sans: an empty entry"),
    INV(CA "sans = dns,rid\n", 2, "[ca] sans: 'rid' is not one of dns, ip, email, uri"),
    INV(CA "sans = dnsip\n", 2, "[ca] sans: 'dnsip' is not one of"),
    INV(CA "sans = none,dns\n", 2, "[ca] sans: 'none' is not one of"),
    INV(CA "sans = dns none\n", 2, "[ca] sans: 'none' is not one of"),
    INV(CA "subject = O,CN\n", 2,
        "[ca] subject: 'CN' is not one of O, OU, C, ST, L, emailAddress, serialNumber"),
    INV(CA "subject = email\n", 2, "[ca] subject: 'email' is not one of"),
    INV(CA "subject = O;OU\n", 2, "[ca] subject: 'O;OU' is not one of"),
    INV(CA "subject = O,,OU\n", 2, "[ca] subject: an empty entry"),
    INV(CA "server_auth = true\n", 2, "[ca] server_auth: must be yes or no"),
    INV(CA "allow_ed25519 = 1\n", 2, "[ca] allow_ed25519: must be yes or no"),
    /* the CA key is certd's only when certd signs, wherever the signer line is */
    INV(CA "key = /etc/ca-key.pem\nsigner = exec:/usr/libexec/host-sign\n", 2,
        "[ca] key: key is only for signer = local"),
    INV(CA "signer = exec:/usr/libexec/host-sign\ncert = /etc/ca.pem\nkey = /etc/ca.pem\n", 4,
        "[ca] key: key is only for signer = local"),
    /* [ca] sections and keys */
    INV(CA "db = /etc/ca.db\n", 2, "unknown key 'db' in [ca]"),
    INV(CA "crl = /etc/crl.der\n", 2, "unknown key 'crl' in [ca]"),
    INV(CA "dir = /etc/ca\n", 2, "unknown key 'dir' in [ca]"),
    INV(CA "Signer = local\n", 2, "unknown key 'Signer' in [ca]"),
    INV(CA "days = 1\n; x\ndays = 2\n", 4, "[ca] days: duplicate key (first on line 2)"),
    INV(CA "signer = off\nsigner = off\n", 3, "[ca] signer: duplicate key (first on line 2)"),
    INV(CA "[tls]\n[ca]\n", 3, "duplicate section [ca] (first on line 1)"),
    INV("[CA]\n", 1,
        "unknown section [CA] (sections: server, tls, limits, providers, provider NAME, ca, "
        "endpoint NAME, pins NAME, dbus)"),
    INV("[ca x]\n", 1, "unknown section [ca x]"),
    /* STATE_DIR/ca and STATE_DIR/ca.db are the CA's */
    INV("[endpoint ca]\ntype = authority\n", 1, "[endpoint ca]: the name is reserved"),
    INV("[endpoint ca]\ntype = server\n", 1, "[endpoint ca]: the name is reserved"),
    INV("[endpoint ca.db]\ntype = authority\n", 1, "the name 'ca.db' must be"),
    /* an endpoint needs its type */
    { "[endpoint e]\nnew_key = ec\n", -EINVAL, CERTD_E_FIELD_MISSING, 1,
      "[endpoint e] type: missing" },
    { EPS "\n[endpoint f]\n", -EINVAL, CERTD_E_FIELD_MISSING, 4, "[endpoint f] type: missing" },
    /* syntax */
    { SRV "listen\n", -EBADMSG, CERTD_E_FIELD_INVALID, 2, "expected 'key = value'" },
    { SRV "listen ; = 1\n", -EBADMSG, CERTD_E_FIELD_INVALID, 2, "expected 'key = value'" },
    { SRV "= 1.2.3.4:1\n", -EBADMSG, CERTD_E_FIELD_INVALID, 2, "key name is missing" },
    { "[server\n", -EBADMSG, CERTD_E_FIELD_INVALID, 1, "without ']'" },
    { "[server] listen = 1.2.3.4:1\n", -EBADMSG, CERTD_E_FIELD_INVALID, 1, "text after" },
    { SRV "listen = 1.2.3.4:1\r\x01\n", -EBADMSG, CERTD_E_FIELD_INVALID, 2, "control" },
    { SRV "listen = 1.2.3.4:1\x7f\n", -EBADMSG, CERTD_E_FIELD_INVALID, 2, "control" },
    { SRV "listen = 1.2.3.4:1\rlisten = 1.2.3.4:2\n", -EBADMSG, CERTD_E_FIELD_INVALID, 2,
      "control character 0x0d" },
    /* [ca] values over a limit */
    { CA "common_name = "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
      -E2BIG, CERTD_E_FIELD_TOO_LONG, 2, "[ca] common_name: longer than 64 characters" },
};

static void test_config_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
        const struct bad_case *c = &bad_values[i];
        parse_bad(c->text, c->r, c->code, c->line, c->word);
    }
}

/* Texts that parse; the values they set are checked in the tests below. */
static const char *const good_texts[] = {
    "",
    "\n\n",
    "; only a comment\n# and another\n",
    SRV,
    SRV "listen = 0.0.0.0:443\n",
    SRV "listen = 127.0.0.1:1\n",
    SRV "listen = 127.0.0.1:65535\n",
    SRV "listen = [::]:443\n",
    SRV "listen = [fe80::1]:8443 ; inline comment\n",
    SRV "state_dir = /\n",
    SRV "hostname =\n",
    SRV "hostname = bmc\n",
    SRV "hostname = bmc.example.com.\n",
    SRV "log_level = err\n",
    SRV "log_level = WARNING\n",
    SRV "log_level = notice\n",
    SRV "log_level = debug\n",
    "[tls]\nprofile = intermediate\n",
    "[limits]\nmax_body = 1024\nmax_headers_size = 1024\nmax_connections = 1\n"
    "idle_timeout = 1\nrequest_timeout = 1\n",
    "[limits]\nmax_body = 1048576\nmax_headers_size = 65536\nmax_connections = 4096\n"
    "idle_timeout = 3600\nrequest_timeout = 600\n",
    EPS "new_key = rsa:4096\n",
    EPS "new_key = EC:secp384r1\n",
    EPS "new_key = ed25519\nallow_ed25519 = yes\n",
    EPS "allow_ed25519 = yes\nnew_key = ed25519\n",
    EPS "days = 1\n",
    EPS "days = 36500\n",
    EPS "expired = reject\nnot_yet_valid = accept\n",
    EPS "reload = none\n",
    EPS "reload = systemd:nslcd.service\n",
    EPS "reload = systemd:getty@tty1.service\n",
    EPS "reload = systemd:multi-user.target\n",
    EPS "reload = signal:SIGUSR2:/run/x.pid\n",
    EPS "reload = signal:sighup:/run/x.pid\n",
    EPS "reload = signal:Usr2:/run/x.pid\n",
    EPC "reload = exec:/usr/bin/true\n",
    EPC "reload = exec:/usr/bin/x.y ../a //b ./c\n",
    /* an encoded '?' is part of the name; '+' is not a space */
    EPS "cert = file:///etc/ssl/a%3Fb+c.pem\n",
    /* dots inside names are fine; only whole "." and ".." components are not */
    EPS "cert = /etc/ssl/..pem\nkey = file:///etc/ssl/.k.pem.\n",
    /* cert and key of one endpoint may be one combined PEM */
    EPS "cert = /etc/ssl/both.pem\nkey = file:///etc/ssl/both.pem\n",
    /* endpoints that merely resemble the reserved names */
    "[endpoint users2]\ntype = server\n[endpoint initial-admin]\ntype = authority\n"
    "[endpoint uuid2]\ntype = authority\n",
    EPA "max = 1\n",
    EPA "max = 1000\n",
    EPA "dir = /etc/ssl/ca/\n",
    /* type after the type-specific keys */
    "[endpoint e]\ndir = /etc/ca\nmax = 3\ntype = authority\n",
    /* key: value, as inih also reads it */
    SRV "listen: 1.2.3.4:80\n",
    /* indented lines are ordinary lines, not continuations */
    SRV "  listen = 1.2.3.4:80\n\thostname = bmc\n",
    /* [ca] */
    CA,
    CA "signer = LOCAL\n",
    /* with signer = off the other keys are kept, unused: the CA can be switched off and on */
    CA "signer = off\nkey = /etc/ca-key.pem\ncert = /etc/ca.pem\n",
    CA "signer = exec:/usr/libexec/certd/host-sign\n",
    CA "cert = /etc/ca.pem\nsigner = exec:/usr/libexec/certd/host-sign --pldm\n",
    CA "exec_timeout = 1\nroot_days = 1\ndays = 1\ncrl_days = 1\n",
    CA "exec_timeout = 600\nroot_days = 36500\ndays = 36500\ncrl_days = 365\n",
    CA "new_key = rsa:3072\n",
    CA "new_key = ed25519\n",
    CA "sans = none\nsubject = NONE\n",
    CA "sans = uri\nsubject = serialnumber\n",
    /* the CA's cert and key may be one combined PEM */
    CA "cert = /etc/ca/both.pem\nkey = file:///etc/ca/both.pem\n",
    CA "common_name = Example Corp. Console CA #1 (O=x, CN=y)\n",
    /* endpoints that merely resemble the CA's names */
    "[endpoint ca2]\ntype = server\n[endpoint ca-db]\ntype = authority\n"
    "[endpoint ca_db]\ntype = client\n",
    /* [ca] anywhere in the file */
    EPS CA "days = 30\n[tls]\n",
};

static void test_config_good_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(good_texts); i++) {
        config_free(parse_ok(good_texts[i]));
    }
}

static void test_config_server_values(void **state)
{
    (void)state;
    struct config *cfg = parse_ok(SRV "listen = [::1]:8443\nstate_dir = /srv/certd//\n"
                                      "users_file = /etc/certd/users\nhostname = bmc.example\n"
                                      "log_level = debug\n[tls]\nprofile = modern\n"
                                      "[limits]\nmax_body = 2048\nmax_headers_size = 4096\n"
                                      "max_connections = 7\nidle_timeout = 9\n"
                                      "request_timeout = 11\n");
    assert_int_equal(cfg->listen.family, AF_INET6);
    assert_int_equal(cfg->listen.port, 8443);
    assert_string_equal(cfg->listen.text, "[::1]:8443");
    uint8_t loop6[16] = { [15] = 1 };
    assert_memory_equal(cfg->listen.addr, loop6, 16);
    struct sockaddr_storage ss;
    assert_int_equal(config_listen_sockaddr(&cfg->listen, &ss), sizeof(struct sockaddr_in6));
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_port, htons(8443));
    assert_string_equal(cfg->state_dir, "/srv/certd");
    assert_string_equal(cfg->users_file, "/etc/certd/users");
    assert_true(cfg->is_users_file_given);
    assert_string_equal(cfg->hostname, "bmc.example");
    assert_int_equal(cfg->log_level, CONFIG_LOG_DEBUG);
    assert_int_equal(cfg->tls_profile, CONFIG_TLS_MODERN);
    assert_int_equal(cfg->max_body, 2048);
    assert_int_equal(cfg->max_headers_size, 4096);
    assert_int_equal(cfg->max_connections, 7);
    assert_int_equal(cfg->idle_timeout, 9);
    assert_int_equal(cfg->request_timeout, 11);
    /* no [endpoint]: the embedded three, under the file's state_dir */
    assert_int_equal(cfg->n_endpoints, 3);
    assert_string_equal(config_endpoint_find(cfg, "https")->cert, "/srv/certd/https/cert.pem");
    assert_string_equal(config_endpoint_find(cfg, "truststore")->dir, "/srv/certd/truststore");
    config_free(cfg);

    cfg = parse_ok(SRV "listen = 10.1.2.3:443\nstate_dir = /\n");
    assert_int_equal(cfg->listen.family, AF_INET);
    assert_string_equal(cfg->listen.text, "10.1.2.3:443");
    assert_int_equal(config_listen_sockaddr(&cfg->listen, &ss), sizeof(struct sockaddr_in));
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(0x0a010203));
    assert_string_equal(cfg->state_dir, "/");
    assert_string_equal(cfg->users_file, "/users");
    assert_string_equal(cfg->password_file, "/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/uuid");
    assert_string_equal(config_endpoint_find(cfg, "ldap")->key, "/ldap/key.pem");
    config_free(cfg);
}

static void test_config_endpoint_values(void **state)
{
    (void)state;
    struct config *cfg =
        parse_ok("[endpoint web-1]\ntype = server\ncert = file:///etc/ssl/a%20b.pem\n"
                 "key = file://localhost/etc/ssl/k.pem\nnew_key = rsa:3072\n"
                 "names = host.example.com, 10.0.0.1 ,::1,admin@example.com,https://bmc.example/x\n"
                 "days = 90\nexpired = reject\nnot_yet_valid = reject\nallow_ed25519 = yes\n"
                 "reload = exec:/usr/sbin/reload-it --now  -v\n"
                 "[endpoint ldap_2]\ntype = client\ncert = file:/etc/c.pem\n"
                 "reload = signal:usr1:/run/nslcd/nslcd.pid\n"
                 "[endpoint trust]\ntype = authority\ndir = /etc/ssl/ca//\nmax = 25\n"
                 "reload = systemd:nslcd.service\n");
    assert_int_equal(cfg->n_endpoints, 3);
    const struct config_endpoint *ep = config_endpoint_find(cfg, "web-1");
    assert_non_null(ep);
    assert_ptr_equal(ep, &cfg->endpoints[0]);
    assert_int_equal(ep->type, ENDPOINT_SERVER);
    assert_string_equal(ep->cert, "/etc/ssl/a b.pem");
    assert_string_equal(ep->key, "/etc/ssl/k.pem");
    assert_true(ep->is_cert_given && ep->is_key_given);
    assert_int_equal(ep->new_key.alg, KEY_ALG_RSA);
    assert_int_equal(ep->new_key.bits, 3072);
    assert_int_equal(ep->n_names, 5);
    assert_string_equal(ep->names[0], "host.example.com");
    assert_string_equal(ep->names[1], "10.0.0.1");
    assert_string_equal(ep->names[2], "::1");
    assert_string_equal(ep->names[3], "admin@example.com");
    assert_string_equal(ep->names[4], "https://bmc.example/x");
    assert_int_equal(ep->days, 90);
    assert_int_equal(ep->expired, VALIDITY_REJECT);
    assert_int_equal(ep->not_yet_valid, VALIDITY_REJECT);
    assert_true(ep->allow_ed25519);
    assert_int_equal(ep->reload.kind, CONFIG_RELOAD_EXEC);
    assert_int_equal(ep->reload.argc, 3);
    assert_string_equal(ep->reload.argv[0], "/usr/sbin/reload-it");
    assert_string_equal(ep->reload.argv[1], "--now");
    assert_string_equal(ep->reload.argv[2], "-v");
    assert_null(ep->reload.argv[3]);
    assert_null(ep->dir);

    ep = config_endpoint_find(cfg, "ldap_2");
    assert_int_equal(ep->type, ENDPOINT_CLIENT);
    assert_string_equal(ep->cert, "/etc/c.pem");
    assert_true(ep->is_cert_given);
    assert_false(ep->is_key_given);
    assert_string_equal(ep->key, CONFIG_STATE_DIR_DEFAULT "/ldap_2/key.pem");
    assert_int_equal(ep->reload.kind, CONFIG_RELOAD_SIGNAL);
    assert_int_equal(ep->reload.signal, SIGUSR1);
    assert_string_equal(ep->reload.pidfile, "/run/nslcd/nslcd.pid");
    /* defaults of the keys not given */
    assert_int_equal(ep->new_key.alg, KEY_ALG_EC);
    assert_string_equal(ep->new_key.curve, "P-256");
    assert_int_equal(ep->days, CONFIG_DAYS_DEFAULT);
    assert_int_equal(ep->expired, VALIDITY_ACCEPT_WARN);
    assert_int_equal(ep->not_yet_valid, VALIDITY_ACCEPT_WARN);
    assert_false(ep->allow_ed25519);
    assert_int_equal(ep->n_names, 0);

    ep = config_endpoint_find(cfg, "trust");
    assert_int_equal(ep->type, ENDPOINT_AUTHORITY);
    assert_string_equal(ep->dir, "/etc/ssl/ca");
    assert_true(ep->is_dir_given);
    assert_int_equal(ep->max, 25);
    assert_null(ep->cert);
    assert_null(ep->key);
    assert_int_equal(ep->reload.kind, CONFIG_RELOAD_SYSTEMD);
    assert_string_equal(ep->reload.unit, "nslcd.service");
    assert_null(config_endpoint_find(cfg, "https"));
    assert_null(config_endpoint_find(cfg, "nope"));
    config_free(cfg);

    cfg = parse_ok(EPS "reload = signal:HUP:/run/x.pid\n");
    assert_int_equal(cfg->endpoints[0].reload.signal, SIGHUP);
    assert_string_equal(config_reload_kind_name(cfg->endpoints[0].reload.kind), "signal");
    config_free(cfg);
    cfg = parse_ok(EPS "reload = signal:SIGUSR2:/run/x.pid\n");
    assert_int_equal(cfg->endpoints[0].reload.signal, SIGUSR2);
    config_free(cfg);
    cfg = parse_ok(EPS);
    assert_int_equal(cfg->endpoints[0].reload.kind, CONFIG_RELOAD_NONE);
    config_free(cfg);
}

static void test_config_ca_values(void **state)
{
    (void)state;
    struct config *cfg =
        parse_ok(SRV "state_dir = /srv/certd\n"
                     "[ca]\nsigner = exec:/usr/libexec/certd/host-sign --pldm  -v\n"
                     "exec_timeout = 120\ncert = file:///etc/ca/host%20ca.pem\n"
                     "new_key = rsa:4096\ncommon_name =  BMC console CA \n"
                     "root_days = 7300\ndays = 90\ncrl_days = 2\n"
                     "sans = DNS, email  uri\n"
                     "subject = o,emailaddress SerialNumber\n"
                     "server_auth = yes\nallow_ed25519 = YES\n");
    const struct config_ca *ca = &cfg->ca;
    assert_int_equal(ca->signer, CONFIG_SIGNER_EXEC);
    assert_string_equal(config_signer_name(ca->signer), "exec");
    assert_int_equal(ca->exec_argc, 3);
    assert_string_equal(ca->exec_argv[0], "/usr/libexec/certd/host-sign");
    assert_string_equal(ca->exec_argv[1], "--pldm");
    assert_string_equal(ca->exec_argv[2], "-v");
    assert_null(ca->exec_argv[3]);
    assert_int_equal(ca->exec_timeout, 120);
    assert_string_equal(ca->cert, "/etc/ca/host ca.pem");
    assert_true(ca->is_cert_given);
    /* not given (and not allowed with exec): derived, unused */
    assert_false(ca->is_key_given);
    assert_string_equal(ca->key, "/srv/certd/ca/ca-key.pem");
    assert_string_equal(ca->db, "/srv/certd/ca.db");
    assert_string_equal(ca->crl, "/srv/certd/ca/crl.der");
    assert_int_equal(ca->new_key.alg, KEY_ALG_RSA);
    assert_int_equal(ca->new_key.bits, 4096);
    assert_string_equal(ca->common_name, "BMC console CA");
    assert_int_equal(ca->root_days, 7300);
    assert_int_equal(ca->days, 90);
    assert_int_equal(ca->crl_days, 2);
    assert_int_equal(ca->allowed_sans, (1u << SAN_DNS) | (1u << SAN_EMAIL) | (1u << SAN_URI));
    assert_int_equal(ca->subject_attrs, (1u << CONFIG_ATTR_O) | (1u << CONFIG_ATTR_EMAIL) |
                                            (1u << CONFIG_ATTR_SERIALNUMBER));
    assert_true(ca->server_auth);
    assert_true(ca->allow_ed25519);
    /* no [endpoint]: the embedded three, beside the CA */
    assert_int_equal(cfg->n_endpoints, 3);
    config_free(cfg);

    /* local: a given key and cert, one combined file; the rest stays at its default */
    cfg = parse_ok(CA "signer = local\ncert = /etc/ca/ca.pem\nkey = file:/etc/ca/ca.pem\n"
                      "sans = none\nsubject = none\nserver_auth = no\n");
    ca = &cfg->ca;
    assert_int_equal(ca->signer, CONFIG_SIGNER_LOCAL);
    assert_null(ca->exec_argv);
    assert_int_equal(ca->exec_argc, 0);
    assert_string_equal(ca->cert, "/etc/ca/ca.pem");
    assert_string_equal(ca->key, "/etc/ca/ca.pem");
    assert_true(ca->is_cert_given && ca->is_key_given);
    assert_string_equal(ca->db, CONFIG_STATE_DIR_DEFAULT "/ca.db");
    assert_int_equal(ca->allowed_sans, 0);
    assert_int_equal(ca->subject_attrs, 0);
    assert_false(ca->server_auth);
    assert_int_equal(ca->new_key.alg, KEY_ALG_EC);
    assert_string_equal(ca->new_key.curve, "P-384");
    assert_null(ca->common_name);
    assert_int_equal(ca->days, CONFIG_CA_DAYS_DEFAULT);
    config_free(cfg);

    cfg = parse_ok(CA "signer = OFF\nsans = ip ,ip\nsubject = ST L\n");
    assert_int_equal(cfg->ca.signer, CONFIG_SIGNER_OFF);
    assert_string_equal(config_signer_name(cfg->ca.signer), "off");
    assert_int_equal(cfg->ca.allowed_sans, 1u << SAN_IP);
    assert_int_equal(cfg->ca.subject_attrs, (1u << CONFIG_ATTR_ST) | (1u << CONFIG_ATTR_L));
    config_free(cfg);

    /* every attribute by its name, and its NID */
    static const struct {
        enum config_attr a;
        const char *name;
        int nid;
    } attrs[] = {
        { CONFIG_ATTR_O, "O", NID_organizationName },
        { CONFIG_ATTR_OU, "OU", NID_organizationalUnitName },
        { CONFIG_ATTR_C, "C", NID_countryName },
        { CONFIG_ATTR_ST, "ST", NID_stateOrProvinceName },
        { CONFIG_ATTR_L, "L", NID_localityName },
        { CONFIG_ATTR_EMAIL, "emailAddress", NID_pkcs9_emailAddress },
        { CONFIG_ATTR_SERIALNUMBER, "serialNumber", NID_serialNumber },
    };
    assert_int_equal(ELEMENTSOF(attrs), CONFIG_ATTR_MAX);
    for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
        assert_string_equal(config_attr_name(attrs[i].a), attrs[i].name);
        assert_int_equal(config_attr_nid(attrs[i].a), attrs[i].nid);
        /* the NID is the one OpenSSL knows by that short name */
        assert_int_equal(OBJ_sn2nid(attrs[i].name), attrs[i].nid);
        char text[64];
        (void)snprintf(text, sizeof(text), CA "subject = %s\n", attrs[i].name);
        cfg = parse_ok(text);
        assert_int_equal(cfg->ca.subject_attrs, 1u << attrs[i].a);
        config_free(cfg);
    }
    assert_null(config_attr_name(CONFIG_ATTR_MAX));
    assert_int_equal(config_attr_nid(CONFIG_ATTR_MAX), NID_undef);
    assert_string_equal(config_signer_name(CONFIG_SIGNER_LOCAL), "local");
    assert_null(config_signer_name(CONFIG_SIGNER_MAX));

    /* every SAN kind by its name */
    static const char *const sans[] = {
        [SAN_DNS] = "dns", [SAN_IP] = "IP", [SAN_EMAIL] = "Email", [SAN_URI] = "uri"
    };
    for (size_t i = 0; i < ELEMENTSOF(sans); i++) {
        char text[64];
        (void)snprintf(text, sizeof(text), CA "sans = %s\n", sans[i]);
        cfg = parse_ok(text);
        assert_int_equal(cfg->ca.allowed_sans, 1u << i);
        config_free(cfg);
    }
}

/* Build "[endpoint e]\ntype = server\nKEY = v,v,...,v\n" with n copies of item. */
static char *list_text(const char *prefix, const char *item, const char *sep, size_t n)
{
    size_t size = strlen(prefix) + n * (strlen(item) + strlen(sep)) + 2;
    char *s = malloc(size);
    assert_non_null(s);
    size_t o = (size_t)snprintf(s, size, "%s", prefix);
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(s + o, size - o, "%s%s", i ? sep : "", item);
    }
    (void)snprintf(s + o, size - o, "\n");
    return s;
}

static void test_config_limits(void **state)
{
    (void)state;
    /* SANs: CERTD_SANS_MAX and one more */
    char *t = list_text(EPS "names = ", "a", ",", CERTD_SANS_MAX);
    struct config *cfg = parse_ok(t);
    assert_int_equal(cfg->endpoints[0].n_names, CERTD_SANS_MAX);
    config_free(cfg);
    free(t);
    t = list_text(EPS "names = ", "a", ",", CERTD_SANS_MAX + 1);
    parse_bad(t, -E2BIG, CERTD_E_TOO_MANY_VALUES, 3, "[endpoint e] names: more than 64 names");
    free(t);

    /* exec words: CONFIG_EXEC_ARGS_MAX and one more */
    t = list_text(EPS "reload = exec:/bin/x ", "a", " ", CONFIG_EXEC_ARGS_MAX - 1);
    cfg = parse_ok(t);
    assert_int_equal(cfg->endpoints[0].reload.argc, CONFIG_EXEC_ARGS_MAX);
    assert_null(cfg->endpoints[0].reload.argv[CONFIG_EXEC_ARGS_MAX]);
    config_free(cfg);
    free(t);
    t = list_text(EPS "reload = exec:/bin/x ", "a", " ", CONFIG_EXEC_ARGS_MAX);
    parse_bad(t, -E2BIG, CERTD_E_TOO_MANY_VALUES, 3, "reload: exec:COMMAND has more than 32");
    free(t);

    /* [ca] signer exec words: CONFIG_EXEC_ARGS_MAX and one more */
    t = list_text(CA "signer = exec:/bin/sign ", "a", " ", CONFIG_EXEC_ARGS_MAX - 1);
    cfg = parse_ok(t);
    assert_int_equal(cfg->ca.exec_argc, CONFIG_EXEC_ARGS_MAX);
    assert_null(cfg->ca.exec_argv[CONFIG_EXEC_ARGS_MAX]);
    config_free(cfg);
    free(t);
    t = list_text(CA "signer = exec:/bin/sign ", "a", " ", CONFIG_EXEC_ARGS_MAX);
    parse_bad(t, -E2BIG, CERTD_E_TOO_MANY_VALUES, 2, "[ca] signer: exec:COMMAND has more than 32");
    free(t);

    /* [ca] common_name: X520_CN_MAX characters and one more */
    t = list_text(CA "common_name = ", "c", "", X520_CN_MAX);
    cfg = parse_ok(t);
    assert_int_equal(strlen(cfg->ca.common_name), X520_CN_MAX);
    config_free(cfg);
    free(t);
    t = list_text(CA "common_name = ", "c", "", X520_CN_MAX + 1);
    parse_bad(t, -E2BIG, CERTD_E_FIELD_TOO_LONG, 2, "[ca] common_name: longer than 64");
    free(t);

    /* endpoints: CONFIG_ENDPOINTS_MAX and one more */
    char text[2048];
    size_t o = 0;
    for (unsigned i = 0; i < CONFIG_ENDPOINTS_MAX; i++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "[endpoint e%u]\ntype = client\n", i);
    }
    cfg = parse_ok(text);
    assert_int_equal(cfg->n_endpoints, CONFIG_ENDPOINTS_MAX);
    assert_string_equal(cfg->endpoints[15].name, "e15");
    assert_string_equal(cfg->endpoints[15].cert, CONFIG_STATE_DIR_DEFAULT "/e15/cert.pem");
    config_free(cfg);
    (void)snprintf(text + o, sizeof(text) - o, "[endpoint e16]\ntype = client\n");
    parse_bad(text, -E2BIG, CERTD_E_TOO_MANY_VALUES, 2 * CONFIG_ENDPOINTS_MAX + 1,
              "more than 16 endpoints");

    /* endpoint names: 32 characters and 33 */
    cfg = parse_ok("[endpoint abcdefghijklmnopqrstuvwxyz_-0123]\ntype = server\n");
    assert_string_equal(cfg->endpoints[0].name, "abcdefghijklmnopqrstuvwxyz_-0123");
    config_free(cfg);
    parse_bad("[endpoint abcdefghijklmnopqrstuvwxyz_-01234]\ntype = server\n", -EINVAL,
              CERTD_E_FIELD_INVALID, 1, "must be 1 to 32");
}

static void test_config_text_checks(void **state)
{
    (void)state;
    /* A line of CONFIG_LINE_MAX bytes, as a comment and as a value, and one byte more. */
    char line[CONFIG_LINE_MAX + 64];
    char path[CONFIG_LINE_MAX + 1];
    size_t plen = CONFIG_LINE_MAX - strlen("users_file = ");
    memset(path, 'p', plen);
    path[0] = '/';
    path[plen] = '\0';
    (void)snprintf(line, sizeof(line), SRV "users_file = %s\n", path);
    assert_int_equal(strlen(line), strlen(SRV) + CONFIG_LINE_MAX + 1);
    struct config *cfg = parse_ok(line);
    assert_string_equal(cfg->users_file, path);
    config_free(cfg);
    (void)snprintf(line, sizeof(line), SRV "users_file = %sp\n", path);
    parse_bad(line, -E2BIG, CERTD_E_INPUT_TOO_LARGE, 2, "line longer than 199 bytes");
    /* CRLF endings count as no bytes of the line */
    (void)snprintf(line, sizeof(line), SRV "users_file = %s\r\n", path);
    cfg = parse_ok(line);
    assert_string_equal(cfg->users_file, path);
    config_free(cfg);
    memset(line, ';', CONFIG_LINE_MAX);
    line[CONFIG_LINE_MAX] = '\0';
    config_free(parse_ok(line));
    memset(line, ';', CONFIG_LINE_MAX + 1);
    line[CONFIG_LINE_MAX + 1] = '\0';
    parse_bad(line, -E2BIG, CERTD_E_INPUT_TOO_LARGE, 1, "line longer");
    /* leading blanks count too: inih would split the line */
    (void)snprintf(line, sizeof(line), "[tls]\n   profile = modern%*s\n", CONFIG_LINE_MAX, "");
    parse_bad(line, -E2BIG, CERTD_E_INPUT_TOO_LARGE, 2, "line longer");

    /* embedded NUL, in a value and in a comment */
    static const char nul1[] = SRV "listen = 127.0.0.1:80\0 80\n";
    parse_bad_span(span_make(nul1, sizeof(nul1) - 1), -EBADMSG, CERTD_E_FIELD_INVALID, 2,
                   "NUL byte");
    static const char nul2[] = SRV "; comment\0\n";
    parse_bad_span(span_make(nul2, sizeof(nul2) - 1), -EBADMSG, CERTD_E_FIELD_INVALID, 2,
                   "NUL byte");
    /* not NUL-terminated: the span's length rules */
    static const char cut[] = SRV "log_level = debugXXXX";
    cfg = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(config_parse(span_make(cut, sizeof(cut) - 1 - 4), FILE_NAME, &cfg, &err), 0);
    assert_int_equal(cfg->log_level, CONFIG_LOG_DEBUG);
    config_free(cfg);

    /* CONFIG_FILE_MAX bytes, and one more */
    char *big = malloc(CONFIG_FILE_MAX + 2);
    assert_non_null(big);
    for (size_t i = 0; i < CONFIG_FILE_MAX; i++) {
        big[i] = i % 64 == 63 ? '\n' : ';';
    }
    big[CONFIG_FILE_MAX] = '\0';
    config_free(parse_ok(big));
    big[CONFIG_FILE_MAX] = '\n';
    big[CONFIG_FILE_MAX + 1] = '\0';
    parse_bad(big, -E2BIG, CERTD_E_INPUT_TOO_LARGE, 0, "larger than 65536 bytes");
    free(big);

    /* a byte-order mark, CRLF endings, a last line without a newline */
    cfg = parse_ok("\xef\xbb\xbf[server]\r\nlisten = 1.2.3.4:5\r\nlog_level = err");
    assert_string_equal(cfg->listen.text, "1.2.3.4:5");
    assert_int_equal(cfg->log_level, CONFIG_LOG_ERR);
    config_free(cfg);
    /* line numbers count blank and comment lines */
    parse_bad("\n; c\n\n[tls]\n\n# x\nprofile = x\n", -EINVAL, CERTD_E_FIELD_INVALID, 7,
              "[tls] profile");
    /* an inline comment ends a value; '#' does not start one */
    cfg = parse_ok(EPS "reload = exec:/bin/x a;b #c ; comment\n");
    assert_int_equal(cfg->endpoints[0].reload.argc, 3);
    assert_string_equal(cfg->endpoints[0].reload.argv[1], "a;b");
    assert_string_equal(cfg->endpoints[0].reload.argv[2], "#c");
    config_free(cfg);
    /* a long bad value is not echoed whole */
    char longval[256] = EPS "names = ";
    size_t at = strlen(longval);
    memset(longval + at, 'x', 150);
    longval[at + 10] = ' ';
    memcpy(longval + at + 150, "\n", 2);
    parse_bad(longval, -EINVAL, CERTD_E_FIELD_INVALID, 3, "...' is not");
    /* a NULL filename */
    err = (struct certd_err){ 0 };
    assert_int_equal(config_parse(span_from_str("[x]\n"), NULL, &cfg, &err), -EINVAL);
    assert_string_equal(err.msg, "<config>:1: unknown section [x] (sections: server, tls, "
                                 "limits, providers, provider NAME, ca, endpoint NAME, pins "
                                 "NAME, dbus)");
    assert_int_equal(config_parse(span_from_str(""), NULL, NULL, NULL), -EINVAL);
}

static void check_default_endpoints(const struct config *cfg, const char *sd)
{
    char p[256];
    assert_int_equal(cfg->n_endpoints, 3);
    const struct config_endpoint *https = &cfg->endpoints[0];
    assert_string_equal(https->name, "https");
    assert_int_equal(https->type, ENDPOINT_SERVER);
    assert_int_equal(https->reload.kind, CONFIG_RELOAD_SELF);
    (void)snprintf(p, sizeof(p), "%s/https/cert.pem", sd);
    assert_string_equal(https->cert, p);
    (void)snprintf(p, sizeof(p), "%s/https/key.pem", sd);
    assert_string_equal(https->key, p);
    assert_false(https->is_cert_given || https->is_key_given);
    assert_null(https->cert_uri);
    assert_null(https->key_uri);
    assert_string_equal(https->new_key.provider, "");
    assert_int_equal(https->new_key.alg, KEY_ALG_EC);
    assert_string_equal(https->new_key.curve, "P-256");
    assert_int_equal(https->days, 365);
    const struct config_endpoint *ldap = &cfg->endpoints[1];
    assert_string_equal(ldap->name, "ldap");
    assert_int_equal(ldap->type, ENDPOINT_CLIENT);
    assert_int_equal(ldap->reload.kind, CONFIG_RELOAD_NONE);
    (void)snprintf(p, sizeof(p), "%s/ldap/cert.pem", sd);
    assert_string_equal(ldap->cert, p);
    const struct config_endpoint *ts = &cfg->endpoints[2];
    assert_string_equal(ts->name, "truststore");
    assert_int_equal(ts->type, ENDPOINT_AUTHORITY);
    assert_int_equal(ts->max, CERTD_AUTHORITY_MAX_DEFAULT);
    (void)snprintf(p, sizeof(p), "%s/truststore", sd);
    assert_string_equal(ts->dir, p);
    assert_false(ts->is_dir_given);
}

/* The [ca] defaults: a local CA under sd. */
static void check_ca_defaults(const struct config *cfg, const char *sd)
{
    char p[256];
    const struct config_ca *ca = &cfg->ca;
    assert_int_equal(ca->signer, CONFIG_SIGNER_LOCAL);
    assert_string_equal(config_signer_name(ca->signer), "local");
    assert_null(ca->exec_argv);
    assert_int_equal(ca->exec_argc, 0);
    assert_int_equal(ca->exec_timeout, 30);
    (void)snprintf(p, sizeof(p), "%s/ca/ca.pem", sd);
    assert_string_equal(ca->cert, p);
    (void)snprintf(p, sizeof(p), "%s/ca/ca-key.pem", sd);
    assert_string_equal(ca->key, p);
    (void)snprintf(p, sizeof(p), "%s/ca.db", sd);
    assert_string_equal(ca->db, p);
    (void)snprintf(p, sizeof(p), "%s/ca/crl.der", sd);
    assert_string_equal(ca->crl, p);
    assert_false(ca->is_cert_given || ca->is_key_given);
    assert_null(ca->key_uri);
    assert_string_equal(ca->new_key.provider, "");
    assert_int_equal(ca->new_key.alg, KEY_ALG_EC);
    assert_int_equal(ca->new_key.bits, 384);
    assert_string_equal(ca->new_key.curve, "P-384");
    assert_null(ca->common_name);
    assert_int_equal(ca->root_days, 3650);
    assert_int_equal(ca->days, 365);
    assert_int_equal(ca->crl_days, 7);
    assert_int_equal(ca->allowed_sans, (1u << SAN_DNS) | (1u << SAN_IP));
    assert_int_equal(ca->subject_attrs, (1u << CONFIG_ATTR_O) | (1u << CONFIG_ATTR_OU) |
                                            (1u << CONFIG_ATTR_C) | (1u << CONFIG_ATTR_ST) |
                                            (1u << CONFIG_ATTR_L));
    assert_int_equal(ca->subject_attrs, CONFIG_CA_SUBJECT_DEFAULT);
    assert_false(ca->server_auth);
    assert_false(ca->allow_ed25519);
}

static void check_server_defaults(const struct config *cfg)
{
    assert_string_equal(cfg->listen.text, CONFIG_LISTEN_DEFAULT);
    assert_int_equal(cfg->listen.family, AF_INET);
    assert_int_equal(cfg->listen.port, 8443);
    assert_string_equal(cfg->hostname, "");
    assert_int_equal(cfg->log_level, CONFIG_LOG_INFO);
    assert_string_equal(config_log_level_name(cfg->log_level), "info");
    assert_int_equal(cfg->tls_profile, CONFIG_TLS_INTERMEDIATE);
    assert_string_equal(config_tls_profile_name(cfg->tls_profile), "intermediate");
    assert_int_equal(cfg->max_body, 65536);
    assert_int_equal(cfg->max_headers_size, 8192);
    assert_int_equal(cfg->max_connections, 64);
    assert_int_equal(cfg->idle_timeout, 30);
    assert_int_equal(cfg->request_timeout, 10);
    assert_false(cfg->is_users_file_given);
    /* [providers] load = default, no query, no parameters */
    assert_int_equal(cfg->providers.n, 1);
    assert_string_equal(cfg->providers.specs[0].name, "default");
    assert_int_equal(cfg->providers.specs[0].n_params, 0);
    assert_null(cfg->providers.specs[0].params);
    assert_null(cfg->providers.query);
    assert_string_equal(cfg->providers.sign_query[0], "?provider=default");
    assert_string_equal(config_provider_sign_query(cfg, "default"), "?provider=default");
    assert_null(config_provider_sign_query(cfg, "tpm2"));
}

/* [tls] client certificates off, pins by default, the implicit store under sd. */
static void check_tls_defaults(const struct config *cfg, const char *sd)
{
    char p[256];
    assert_int_equal(cfg->client_auth, CONFIG_CLIENT_AUTH_OFF);
    assert_string_equal(config_client_auth_name(cfg->client_auth), "off");
    assert_int_equal(cfg->client_verify, CONFIG_CLIENT_VERIFY_PIN);
    assert_string_equal(config_client_verify_name(cfg->client_verify), "pin");
    assert_string_equal(cfg->client_ca, "truststore");
    assert_int_equal(cfg->n_pins, 1);
    assert_int_equal(cfg->client_pins, 0);
    const struct config_pins *ps = &cfg->pins[0];
    assert_string_equal(ps->name, CONFIG_CLIENT_PINS_DEFAULT);
    assert_string_equal(ps->name, "clients");
    (void)snprintf(p, sizeof(p), "%s/pins/clients.json", sd);
    assert_string_equal(ps->file, p);
    assert_false(ps->is_file_given);
    assert_ptr_equal(config_pins_find(cfg, "clients"), ps);
}

static void test_config_defaults(void **state)
{
    (void)state;
    struct config *cfg = NULL;
    assert_int_equal(config_new_default(NULL, &cfg), 0);
    check_server_defaults(cfg);
    assert_string_equal(cfg->state_dir, "/var/lib/certd");
    assert_string_equal(cfg->users_file, "/var/lib/certd/users");
    assert_string_equal(cfg->password_file, "/var/lib/certd/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/var/lib/certd/uuid");
    check_default_endpoints(cfg, "/var/lib/certd");
    check_ca_defaults(cfg, "/var/lib/certd");
    check_tls_defaults(cfg, "/var/lib/certd");
    config_free(cfg);

    assert_int_equal(config_new_default("/tmp/certd-state///", &cfg), 0);
    assert_string_equal(cfg->state_dir, "/tmp/certd-state");
    assert_string_equal(cfg->password_file, "/tmp/certd-state/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/tmp/certd-state/uuid");
    check_default_endpoints(cfg, "/tmp/certd-state");
    check_ca_defaults(cfg, "/tmp/certd-state");
    check_tls_defaults(cfg, "/tmp/certd-state");
    config_free(cfg);

    cfg = (struct config *)&cfg;
    assert_int_equal(config_new_default("relative", &cfg), -EINVAL);
    assert_ptr_equal(cfg, (struct config *)&cfg);

    /* an empty file is the defaults */
    cfg = parse_ok("");
    check_server_defaults(cfg);
    check_default_endpoints(cfg, "/var/lib/certd");
    check_ca_defaults(cfg, "/var/lib/certd");
    check_tls_defaults(cfg, "/var/lib/certd");
    config_free(cfg);
    /* so is a file without [ca], or with an empty one, under its state_dir */
    cfg = parse_ok(SRV "state_dir = /srv/s\n" EPS);
    check_ca_defaults(cfg, "/srv/s");
    config_free(cfg);
    cfg = parse_ok(CA "; nothing\n");
    check_ca_defaults(cfg, "/var/lib/certd");
    config_free(cfg);
    assert_null(config_free(NULL));
    assert_null(config_log_level_name(CONFIG_LOG_LEVEL_MAX));
    assert_null(config_tls_profile_name(CONFIG_TLS_PROFILE_MAX));
    assert_null(config_reload_kind_name(CONFIG_RELOAD_KIND_MAX));
    assert_null(config_client_auth_name(CONFIG_CLIENT_AUTH_MAX));
    assert_null(config_client_verify_name(CONFIG_CLIENT_VERIFY_MAX));
    assert_null(config_pins_find(NULL, "clients"));
}

static void test_config_overrides(void **state)
{
    (void)state;
    struct config *cfg = parse_ok(SRV "state_dir = /etc/certd\nlisten = 1.2.3.4:443\n"
                                      "[endpoint web]\ntype = server\ncert = /etc/web.pem\n"
                                      "[endpoint cas]\ntype = authority\n"
                                      "[endpoint fixed]\ntype = authority\ndir = /etc/fixed\n");
    assert_string_equal(cfg->endpoints[0].key, "/etc/certd/web/key.pem");
    assert_string_equal(cfg->users_file, "/etc/certd/users");
    assert_string_equal(cfg->password_file, "/etc/certd/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/etc/certd/uuid");
    struct certd_err err = { 0 };

    /* all or nothing: a bad --listen leaves everything as it was */
    assert_int_equal(config_apply_overrides(cfg, "/run/x", "localhost:1", &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "--listen 'localhost:1': "));
    assert_string_equal(cfg->state_dir, "/etc/certd");
    assert_string_equal(cfg->listen.text, "1.2.3.4:443");
    assert_string_equal(cfg->endpoints[0].key, "/etc/certd/web/key.pem");
    err_clear(&err);
    assert_int_equal(config_apply_overrides(cfg, "run/x", "[::1]:80", &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "--state-dir 'run/x': must be an absolute path"));
    assert_string_equal(cfg->listen.text, "1.2.3.4:443");
    err_clear(&err);
    assert_int_equal(config_apply_overrides(cfg, "/run/\x01x", NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "--state-dir"));
    assert_string_equal(cfg->state_dir, "/etc/certd");
    err_clear(&err);
    char long_dir[CONFIG_PATH_MAX + 8];
    memset(long_dir, 'd', sizeof(long_dir) - 1);
    long_dir[0] = '/';
    long_dir[CONFIG_PATH_MAX - 10] = '\0'; /* fits; "/web/key.pem" under it does not */
    assert_int_equal(config_apply_overrides(cfg, long_dir, NULL, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);
    assert_string_equal(cfg->state_dir, "/etc/certd");
    assert_string_equal(cfg->users_file, "/etc/certd/users");
    assert_string_equal(cfg->password_file, "/etc/certd/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/etc/certd/uuid");
    err_clear(&err);

    /* nothing to override */
    assert_int_equal(config_apply_overrides(cfg, NULL, NULL, &err), 0);
    assert_string_equal(cfg->endpoints[0].key, "/etc/certd/web/key.pem");

    /* --state-dir moves the implicit paths only; --listen wins over the file */
    assert_int_equal(config_apply_overrides(cfg, "/run/x/", "[::1]:80", &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
    assert_string_equal(cfg->state_dir, "/run/x");
    assert_string_equal(cfg->users_file, "/run/x/users");
    assert_string_equal(cfg->password_file, "/run/x/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/run/x/uuid");
    assert_string_equal(cfg->listen.text, "[::1]:80");
    assert_string_equal(cfg->endpoints[0].cert, "/etc/web.pem");
    assert_string_equal(cfg->endpoints[0].key, "/run/x/web/key.pem");
    assert_string_equal(cfg->endpoints[1].dir, "/run/x/cas");
    assert_string_equal(cfg->endpoints[2].dir, "/etc/fixed");
    config_free(cfg);

    /* an explicit users_file stays; the embedded defaults move */
    cfg = parse_ok(SRV "users_file = /etc/users\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv", NULL, NULL), 0);
    assert_string_equal(cfg->users_file, "/etc/users");
    assert_string_equal(cfg->password_file, "/srv/initial-admin-password");
    assert_string_equal(cfg->uuid_file, "/srv/uuid");
    check_default_endpoints(cfg, "/srv");
    check_ca_defaults(cfg, "/srv");
    check_tls_defaults(cfg, "/srv");
    config_free(cfg);
    assert_int_equal(config_apply_overrides(NULL, NULL, NULL, NULL), -EINVAL);

    /* the CA's derived paths move; a given cert or key stays */
    cfg = parse_ok(CA "cert = /etc/ca.pem\n");
    assert_int_equal(config_apply_overrides(cfg, "/run/y", NULL, NULL), 0);
    assert_string_equal(cfg->ca.cert, "/etc/ca.pem");
    assert_string_equal(cfg->ca.key, "/run/y/ca/ca-key.pem");
    assert_string_equal(cfg->ca.db, "/run/y/ca.db");
    assert_string_equal(cfg->ca.crl, "/run/y/ca/crl.der");
    config_free(cfg);
    cfg = parse_ok(CA "key = /etc/ca-key.pem\n");
    assert_int_equal(config_apply_overrides(cfg, "/", NULL, NULL), 0);
    assert_string_equal(cfg->ca.cert, "/ca/ca.pem");
    assert_string_equal(cfg->ca.key, "/etc/ca-key.pem");
    assert_string_equal(cfg->ca.db, "/ca.db");
    assert_string_equal(cfg->ca.crl, "/ca/crl.der");
    /* all or nothing: too long for "/ca/ca-key.pem" under it, the CA's paths stay */
    long_dir[CONFIG_PATH_MAX - 10] = 'd';
    long_dir[CONFIG_PATH_MAX - 12] = '\0'; /* "/ca.db" fits, "/ca/crl.der" does not */
    assert_int_equal(config_apply_overrides(cfg, long_dir, NULL, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);
    assert_string_equal(cfg->state_dir, "/");
    assert_string_equal(cfg->ca.cert, "/ca/ca.pem");
    assert_string_equal(cfg->ca.db, "/ca.db");
    assert_string_equal(cfg->ca.crl, "/ca/crl.der");
    config_free(cfg);
}

/* Paths certd writes may not overlap (users file, bootstrap password, UUID, endpoints, CA dirs). */
static const struct bad_case clash_cases[] = {
    INV(EPS "key = /var/lib/certd/users\n", 3,
        "[endpoint e] key '/var/lib/certd/users' is also [server] users_file"),
    INV(EPC "cert = file:///var/lib/certd/initial-admin-password\n", 3,
        "[endpoint e] cert '/var/lib/certd/initial-admin-password' is also certd's "
        "initial-admin-password file"),
    INV("[endpoint a]\ntype = server\ncert = /etc/c.pem\n"
        "[endpoint b]\ntype = client\nkey = /etc/c.pem\n",
        6, "[endpoint b] key '/etc/c.pem' is also [endpoint a] cert"),
    /* an implicit path: the line of the endpoint's header */
    INV("[endpoint a]\ntype = server\ncert = /var/lib/certd/b/cert.pem\n"
        "[endpoint b]\ntype = client\n",
        4, "[endpoint b] cert '/var/lib/certd/b/cert.pem' is also [endpoint a] cert"),
    INV("[endpoint a]\ntype = authority\ndir = /var/lib/certd/b\n"
        "[endpoint b]\ntype = server\n",
        4, "[endpoint b] cert '/var/lib/certd/b/cert.pem' lies inside [endpoint a] dir"),
    INV("[endpoint a]\ntype = authority\ndir = /etc/ca\n"
        "[endpoint b]\ntype = authority\ndir = /etc/ca/\n",
        6, "[endpoint b] dir '/etc/ca' is also [endpoint a] dir"),
    INV("[endpoint a]\ntype = authority\ndir = /etc/ca/sub\n"
        "[endpoint b]\ntype = authority\ndir = /etc/ca\n",
        3, "[endpoint a] dir '/etc/ca/sub' lies inside [endpoint b] dir '/etc/ca'"),
    INV(SRV "users_file = /etc/ca/u\n" EPA "dir = /etc/ca\n", 2,
        "[server] users_file '/etc/ca/u' lies inside [endpoint e] dir '/etc/ca'"),
    INV(SRV "users_file = /var/lib/certd/initial-admin-password\n", 2,
        "[server] users_file '/var/lib/certd/initial-admin-password' is also certd's"),
    INV(SRV "users_file = /var/lib/certd/uuid\n", 2,
        "[server] users_file '/var/lib/certd/uuid' is also certd's uuid file"),
    INV(EPS "key = /var/lib/certd/uuid\n", 3,
        "[endpoint e] key '/var/lib/certd/uuid' is also certd's uuid file"),
    /* the default endpoints are checked too */
    INV(SRV "users_file = /var/lib/certd/truststore/users\n", 2,
        "users_file '/var/lib/certd/truststore/users' lies inside [endpoint truststore] dir"),
    INV(SRV "state_dir = /srv\n" EPA "dir = /srv\n", 2,
        "certd's initial-admin-password file '/srv/initial-admin-password' lies inside "
        "[endpoint e] dir '/srv'"),
    /* no line to name: the file */
    INV(EPA "dir = /\n", 0, "lies inside [endpoint e] dir '/'"),
    /* the CA's files: the endpoint's side is named, at its line */
    INV(CA "cert = /etc/c.pem\n" EPS "cert = /etc/c.pem\n", 5,
        "[endpoint e] cert '/etc/c.pem' is also [ca] cert"),
    INV(EPS "cert = /etc/c.pem\n" CA "key = file:///etc/c.pem\n", 3,
        "[endpoint e] cert '/etc/c.pem' is also [ca] key"),
    INV(EPC "key = /var/lib/certd/ca/ca-key.pem\n", 3,
        "[endpoint e] key '/var/lib/certd/ca/ca-key.pem' is also [ca] key"),
    INV(EPS "cert = /var/lib/certd/ca/ca.pem\n", 3,
        "[endpoint e] cert '/var/lib/certd/ca/ca.pem' is also [ca] cert"),
    INV(EPS "key = /var/lib/certd/ca.db\n", 3,
        "[endpoint e] key '/var/lib/certd/ca.db' is also certd's ca.db file"),
    INV(EPC "cert = /var/lib/certd/ca/crl.der\n", 3,
        "[endpoint e] cert '/var/lib/certd/ca/crl.der' is also certd's ca/crl.der file"),
    /* the CA's side: the line of its key */
    INV(SRV "users_file = /etc/u\n" CA "\ncert = /etc/u\n", 5,
        "[ca] cert '/etc/u' is also [server] users_file"),
    INV(CA "key = /var/lib/certd/uuid\n", 2,
        "[ca] key '/var/lib/certd/uuid' is also certd's uuid file"),
    INV(CA "cert = /var/lib/certd/initial-admin-password\n", 2,
        "[ca] cert '/var/lib/certd/initial-admin-password' is also certd's initial-admin"),
    INV(CA "cert = /var/lib/certd/ca.db\n", 2,
        "[ca] cert '/var/lib/certd/ca.db' is also certd's ca.db file"),
    INV(CA "signer = exec:/bin/sign\ncert = /var/lib/certd/ca/crl.der\n", 3,
        "[ca] cert '/var/lib/certd/ca/crl.der' is also certd's ca/crl.der file"),
    INV(CA "key = /var/lib/certd/ca/crl.der\n", 2, "[ca] key '/var/lib/certd/ca/crl.der' is also"),
    /* a derived CA path: the line of [ca], else of state_dir */
    INV(SRV "users_file = /var/lib/certd/ca/ca.pem\n" CA, 3,
        "[ca] cert '/var/lib/certd/ca/ca.pem' is also [server] users_file"),
    INV(SRV "state_dir = /srv\nusers_file = /srv/ca/ca-key.pem\n", 2,
        "[ca] key '/srv/ca/ca-key.pem' is also [server] users_file"),
    INV(SRV "users_file = /var/lib/certd/ca.db\n", 2,
        "[server] users_file '/var/lib/certd/ca.db' is also certd's ca.db file"),
    INV(SRV "\nusers_file = /var/lib/certd/ca/crl.der\n", 3,
        "[server] users_file '/var/lib/certd/ca/crl.der' is also certd's ca/crl.der file"),
    /* nothing of the CA inside an authority endpoint's dir */
    INV(CA "cert = /etc/ca/x.pem\n" EPA "dir = /etc/ca\n", 2,
        "[ca] cert '/etc/ca/x.pem' lies inside [endpoint e] dir '/etc/ca'"),
    INV(CA "\n\nkey = /etc/trust/sub/k.pem\n" EPA "dir = /etc/trust\n", 4,
        "[ca] key '/etc/trust/sub/k.pem' lies inside [endpoint e] dir"),
    INV(SRV "state_dir = /srv\n" EPA "dir = /srv/ca\n", 2,
        "certd's ca/crl.der file '/srv/ca/crl.der' lies inside [endpoint e] dir '/srv/ca'"),
    INV(EPA "dir = /var/lib/certd/ca\n", 0,
        "certd's ca/crl.der file '/var/lib/certd/ca/crl.der' lies inside [endpoint e] dir"),
    INV(EPA "dir = /var/lib/certd/ca.db\n", 3,
        "[endpoint e] dir '/var/lib/certd/ca.db' is also certd's ca.db file"),
    /* the users file's lock is a file certd writes too */
    INV(EPS "key = /var/lib/certd/users.lock\n", 3,
        "[endpoint e] key '/var/lib/certd/users.lock' is also the lock of [server] users_file"),
    /* pin stores (issue #6): the store's side is named, at its file key */
    INV("[pins a]\nfile = /etc/c.pem\n" EPS "cert = /etc/c.pem\n", 2,
        "[pins a] file '/etc/c.pem' is also [endpoint e] cert"),
    INV(EPC "\nkey = /etc/k.pem\n[pins a]\nfile = file:///etc/k.pem\n", 6,
        "[pins a] file '/etc/k.pem' is also [endpoint e] key"),
    INV(SRV "users_file = /etc/p.json\n[pins a]\nfile = /etc/p.json\n", 4,
        "[pins a] file '/etc/p.json' is also [server] users_file"),
    INV("[pins a]\nfile = /var/lib/certd/users.lock\n", 2,
        "[pins a] file '/var/lib/certd/users.lock' is also the lock of [server] users_file"),
    INV("[pins a]\nfile = /var/lib/certd/users\n", 2,
        "[pins a] file '/var/lib/certd/users' is also [server] users_file"),
    INV("[pins a]\nfile = /var/lib/certd/uuid\n", 2,
        "[pins a] file '/var/lib/certd/uuid' is also certd's uuid file"),
    INV("[pins a]\nfile = /var/lib/certd/initial-admin-password\n", 2,
        "is also certd's initial-admin-password file"),
    INV("[pins a]\nfile = /var/lib/certd/ca.db\n", 2, "is also certd's ca.db file"),
    INV(CA "cert = /etc/p.json\n[pins a]\nfile = /etc/p.json\n", 4,
        "[pins a] file '/etc/p.json' is also [ca] cert"),
    INV("[pins a]\nfile = /var/lib/certd/ca/ca-key.pem\n", 2,
        "[pins a] file '/var/lib/certd/ca/ca-key.pem' is also [ca] key"),
    /* another store's file, or its lock */
    INV("[pins a]\nfile = /etc/p.json\n[pins b]\nfile = file:///etc/p.json\n", 4,
        "[pins b] file '/etc/p.json' is also [pins a] file"),
    INV("[pins a]\nfile = /etc/p.json.lock\n[pins b]\nfile = /etc/p.json\n", 4,
        "the lock of [pins b] file '/etc/p.json.lock' is also [pins a] file"),
    /* an endpoint's path that is a store's lock */
    INV("[pins a]\nfile = /etc/p.json\n" EPS "cert = /etc/p.json.lock\n", 2,
        "the lock of [pins a] file '/etc/p.json.lock' is also [endpoint e] cert"),
    /* the implicit store: the line of client_pins, which makes it */
    INV("[tls]\nclient_pins = c\n[pins x]\nfile = /var/lib/certd/pins/c.json\n", 2,
        "[pins c] file '/var/lib/certd/pins/c.json' is also [pins x] file"),
    /* ... else of state_dir, else none */
    INV(SRV "state_dir = /srv\n" EPS "key = /srv/pins/clients.json\n", 2,
        "[pins clients] file '/srv/pins/clients.json' is also [endpoint e] key"),
    INV(EPS "key = /var/lib/certd/pins/clients.json\n", 0,
        "[pins clients] file '/var/lib/certd/pins/clients.json' is also [endpoint e] key"),
    /* no store inside an authority endpoint's dir */
    INV(EPA "dir = /etc/trust\n[pins a]\nfile = /etc/trust/p.json\n", 5,
        "[pins a] file '/etc/trust/p.json' lies inside [endpoint e] dir '/etc/trust'"),
    INV(EPA "dir = /etc/trust\n[pins a]\nfile = /etc/trust/sub/p.json\n", 5,
        "[pins a] file '/etc/trust/sub/p.json' lies inside [endpoint e] dir"),
    INV(SRV "state_dir = /srv\n" EPA "dir = /srv/pins\n", 2,
        "[pins clients] file '/srv/pins/clients.json' lies inside [endpoint e] dir '/srv/pins'"),
    INV("[pins a]\n" EPA "dir = /var/lib/certd/pins\n", 1,
        "[pins a] file '/var/lib/certd/pins/a.json' lies inside [endpoint e] dir"),
};

static void test_config_path_clashes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(clash_cases); i++) {
        const struct bad_case *c = &clash_cases[i];
        parse_bad(c->text, c->r, c->code, c->line, c->word);
    }

    /* --state-dir can make a clash the file did not have; all or nothing */
    struct certd_err err = { 0 };
    struct config *cfg = parse_ok("[endpoint trust]\ntype = authority\ndir = /srv/ca\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/ca", "[::1]:80", &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "--state-dir: certd's initial-admin-password file "
                                    "'/srv/ca/initial-admin-password' lies inside [endpoint "
                                    "trust]"));
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    assert_string_equal(cfg->users_file, CONFIG_STATE_DIR_DEFAULT "/users");
    assert_string_equal(cfg->password_file, CONFIG_STATE_DIR_DEFAULT "/initial-admin-password");
    assert_string_equal(cfg->uuid_file, CONFIG_STATE_DIR_DEFAULT "/uuid");
    assert_string_equal(cfg->listen.text, CONFIG_LISTEN_DEFAULT);
    config_free(cfg);

    /* the UUID file is checked as the password file is, --state-dir included */
    err_clear(&err);
    cfg = parse_ok("[endpoint web]\ntype = server\ncert = /srv/uuid\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv", NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(
        strstr(err.msg, "--state-dir: [endpoint web] cert '/srv/uuid' is also certd's uuid file"));
    assert_string_equal(cfg->uuid_file, CONFIG_STATE_DIR_DEFAULT "/uuid");
    config_free(cfg);

    err_clear(&err);
    cfg = parse_ok(SRV "users_file = /srv/x/web/key.pem\n[endpoint web]\ntype = server\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/x", NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg,
                           "--state-dir: [endpoint web] key '/srv/x/web/key.pem' is also [server] "
                           "users_file"));
    assert_string_equal(cfg->endpoints[0].key, CONFIG_STATE_DIR_DEFAULT "/web/key.pem");
    /* elsewhere it is fine */
    assert_int_equal(config_apply_overrides(cfg, "/srv/y", NULL, &err), 0);
    assert_string_equal(cfg->endpoints[0].key, "/srv/y/web/key.pem");
    config_free(cfg);

    /* the CA's paths take part after --state-dir too; all or nothing */
    err_clear(&err);
    cfg = parse_ok("[endpoint web]\ntype = server\nkey = /srv/ca.db\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv", NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(
        strstr(err.msg, "--state-dir: [endpoint web] key '/srv/ca.db' is also certd's ca.db file"));
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    check_ca_defaults(cfg, CONFIG_STATE_DIR_DEFAULT);
    config_free(cfg);
    err_clear(&err);
    cfg = parse_ok(CA "cert = /srv/z/users\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/z", NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "--state-dir: [ca] cert '/srv/z/users' is also [server] "
                                    "users_file"));
    assert_string_equal(cfg->users_file, CONFIG_STATE_DIR_DEFAULT "/users");
    assert_string_equal(cfg->ca.key, CONFIG_STATE_DIR_DEFAULT "/ca/ca-key.pem");
    config_free(cfg);
    err_clear(&err);
    cfg = parse_ok(EPA "dir = /srv/w/ca\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/w", NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "--state-dir: certd's ca/crl.der file '/srv/w/ca/crl.der' "
                                    "lies inside [endpoint e] dir"));
    assert_string_equal(cfg->ca.crl, CONFIG_STATE_DIR_DEFAULT "/ca/crl.der");
    config_free(cfg);

    /* --state-dir in normal form too (a trailing '/' is dropped, as before) */
    err_clear(&err);
    cfg = parse_ok("");
    assert_int_equal(config_apply_overrides(cfg, "/srv/../etc", NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "--state-dir '/srv/../etc': must not contain '.' or '..'"));
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    err_clear(&err);
    assert_int_equal(config_apply_overrides(cfg, "/srv//x", NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "must not contain '//'"));
    config_free(cfg);
    assert_int_equal(config_new_default("/srv/./x", &cfg), -EINVAL);
}

/* ---- [tls] client certificates and [pins NAME] (issue #6) ---- */

#define TLS  "[tls]\n"
#define PINS "[pins a]\n"

static const struct bad_case tls_bad[] = {
    /* values */
    INV(TLS "client_auth = yes\n", 2, "[tls] client_auth: must be off, optional or required"),
    INV(TLS "client_auth = on\n", 2, "[tls] client_auth: must be off"),
    INV(TLS "client_auth = required optional\n", 2, "[tls] client_auth: must be off"),
    INV(TLS "client_auth =\n", 2, "[tls] client_auth: empty value"),
    INV(TLS "client_verify = ca\n", 2, "[tls] client_verify: must be pin, chain or pin-or-chain"),
    INV(TLS "client_verify = pin,chain\n", 2, "[tls] client_verify: must be pin, chain"),
    INV(TLS "client_verify = pin_or_chain\n", 2, "[tls] client_verify: must be pin, chain"),
    INV(TLS "client_verify =\n", 2, "[tls] client_verify: empty value"),
    INV(TLS "client_pins = Consoles\n", 2,
        "[tls] client_pins: 'Consoles' is not a name (1 to 32 characters of a-z, 0-9, '_' and "
        "'-')"),
    INV(TLS "client_pins = a.json\n", 2, "[tls] client_pins: 'a.json' is not a name"),
    INV(TLS "client_pins = /var/lib/certd/pins/a.json\n", 2, "client_pins: '/var/lib/certd/"),
    INV(TLS "client_pins = a b\n", 2, "[tls] client_pins: 'a b' is not a name"),
    INV(TLS "client_pins = abcdefghijklmnopqrstuvwxyz_-01234\n", 2,
        "[tls] client_pins: 'abcdefghijklmnopqrstuvwxyz_-01234' is not a name (1 to 32"),
    INV(TLS "client_pins =\n", 2, "[tls] client_pins: empty value"),
    INV(TLS "client_ca = Truststore\n", 2, "[tls] client_ca: 'Truststore' is not a name"),
    INV(TLS "client_ca = trust store\n", 2, "[tls] client_ca: 'trust store' is not a name"),
    INV(TLS "client_ca =\n", 2, "[tls] client_ca: empty value"),
    INV(TLS "client_auth = off\nclient_auth = required\n", 3,
        "[tls] client_auth: duplicate key (first on line 2)"),
    INV(TLS "client_verify = pin\n\nclient_verify = pin\n", 4,
        "[tls] client_verify: duplicate key (first on line 2)"),
    INV(TLS "client_pins = a\nclient_pins = a\n", 3, "[tls] client_pins: duplicate key"),
    INV(TLS "client_ca = truststore\nclient_ca = truststore\n", 3,
        "[tls] client_ca: duplicate key"),
    INV(TLS "client_cert = required\n", 2, "unknown key 'client_cert' in [tls]"),
    INV(TLS "pins = clients\n", 2, "unknown key 'pins' in [tls]"),
    /* client_ca: an authority endpoint, wherever [tls] is */
    INV(TLS "client_ca = cas\n", 2,
        "[tls] client_ca: there is no [endpoint cas] (client_ca names an authority endpoint)"),
    INV(TLS "\nclient_ca = https\n", 3,
        "[tls] client_ca: [endpoint https] is a server endpoint, not an authority"),
    INV(TLS "client_ca = ldap\n", 2, "[endpoint ldap] is a client endpoint, not an authority"),
    INV(TLS "client_ca = e\n" EPS, 2, "[tls] client_ca: [endpoint e] is a server endpoint"),
    /* endpoints given: the default ones are not there */
    INV(EPA TLS "client_ca = truststore\n", 4,
        "[tls] client_ca: there is no [endpoint truststore]"),
    /* client_ca names an endpoint, not a pin store */
    INV(PINS TLS "client_ca = a\n", 3, "[tls] client_ca: there is no [endpoint a]"),
    /* a chain mode that can be asked for needs an authority to verify against */
    INV(EPS TLS "client_auth = required\nclient_verify = chain\n", 5,
        "[tls] client_verify: chain needs client_ca = NAME of an authority endpoint (there is no "
        "authority endpoint 'truststore')"),
    INV(EPS TLS "client_verify = pin-or-chain\nclient_auth = optional\n", 4,
        "[tls] client_verify: pin-or-chain needs client_ca = NAME of an authority endpoint"),
    INV("[endpoint truststore]\ntype = server\n" TLS "client_auth = required\n"
        "client_verify = chain\n",
        5, "[tls] client_verify: chain needs client_ca"),
    /* [pins NAME] sections */
    INV("[pins]\n", 1, "[pins NAME]: the name '' must be 1 to 32 characters of a-z, 0-9, '_'"),
    INV("[pins Consoles]\n", 1, "[pins NAME]: the name 'Consoles' must be"),
    INV("[pins a.json]\n", 1, "[pins NAME]: the name 'a.json' must be"),
    INV("[pins a b]\n", 1, "[pins NAME]: the name 'a b' must be"),
    INV("[pins ../a]\n", 1, "[pins NAME]: the name '../a' must be"),
    INV("[pins abcdefghijklmnopqrstuvwxyz_-01234]\n", 1, "must be 1 to 32 characters"),
    INV("[pinsx]\n", 1, "unknown section [pinsx]"),
    INV("[Pins a]\n", 1, "unknown section [Pins a]"),
    INV("[pin a]\n", 1, "unknown section [pin a]"),
    INV(PINS "\n" PINS, 3, "duplicate section [pins a] (first on line 1)"),
    INV("[pins a]\n[pins b]\n[pins  a ]\n", 3, "duplicate section [pins a] (first on line 1)"),
    /* [pins NAME] file */
    INV(PINS "file = a.json\n", 2, "[pins a] file: must be an absolute path"),
    INV(PINS "file = /etc/../p.json\n", 2, "[pins a] file: must not contain '.' or '..'"),
    INV(PINS "file = file:///etc/%2e%2e/p.json\n", 2, "[pins a] file: must not contain '.'"),
    INV(PINS "file = /etc//p.json\n", 2, "[pins a] file: must not contain '//'"),
    INV(PINS "file = /etc/p.json/\n", 2, "[pins a] file: must not end with '/'"),
    INV(PINS "file = /\n", 2, "[pins a] file: must name a file"),
    INV(PINS "file = file:///etc/p%0a.json\n", 2, "[pins a] file: the file: URI encodes a control"),
    INV(PINS "file = file://host/etc/p.json\n", 2, "[pins a] file: a file: URI must name"),
    INV(PINS "file = handle:0x81000001\n", 2,
        "[pins a] file: must be an absolute path or a file: URI (a pin store is a file)"),
    INV(PINS "file = object:/etc/p.json\n", 2, "[pins a] file: must be an absolute path or a file"),
    INV(PINS "file =\n", 2, "[pins a] file: empty value"),
    INV(PINS "file = /a.json\nfile = /b.json\n", 3,
        "[pins a] file: duplicate key (first on line 2)"),
    INV(PINS "pin = sha256//AAAA\n", 2, "unknown key 'pin' in [pins a]"),
    INV(PINS "File = /a.json\n", 2, "unknown key 'File' in [pins a]"),
    INV(PINS "dir = /etc/pins\n", 2, "unknown key 'dir' in [pins a]"),
    /* STATE_DIR/pins holds the stores: no endpoint may take it over */
    INV("[endpoint pins]\ntype = authority\n", 1,
        "[endpoint pins]: the name is reserved (certd keeps its own 'pins' in the state "
        "directory)"),
    INV("[endpoint pins]\ntype = server\n", 1, "[endpoint pins]: the name is reserved"),
};

static void test_config_tls_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(tls_bad); i++) {
        const struct bad_case *c = &tls_bad[i];
        parse_bad(c->text, c->r, c->code, c->line, c->word);
    }
}

/* ---- [dbus] (issue #7) ---- */

#define DBUS "[dbus]\n"

static const struct bad_case dbus_bad[] = {
    INV(DBUS "bus = user\n", 2, "[dbus] bus: must be off, system or session"),
    INV(DBUS "bus = system session\n", 2, "[dbus] bus: must be off"),
    INV(DBUS "bus =\n", 2, "[dbus] bus: empty value"),
    INV(DBUS "bus = off\nbus = system\n", 3, "[dbus] bus: duplicate key (first on line 2)"),
    INV(DBUS "bus = off\n" DBUS, 3, "duplicate section [dbus] (first on line 1)"),
    INV(DBUS "address = unix:path=/x\n", 2, "address"),
    /* endpoint names become object path and bus name elements */
    INV("[endpoint web-1]\ntype = server\n" DBUS "bus = session\n", 4,
        "[endpoint web-1]: with a D-Bus bus, endpoint names must match [a-z][a-z0-9_]*"),
    INV("[endpoint 1web]\ntype = server\n" DBUS "bus = system\n", 4, "[a-z][a-z0-9_]*"),
};

static void test_config_dbus(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(dbus_bad); i++) {
        const struct bad_case *c = &dbus_bad[i];
        parse_bad(c->text, c->r, c->code, c->line, c->word);
    }
    struct config *cfg = parse_ok("");
    assert_int_equal(cfg->dbus_bus, CONFIG_DBUS_OFF);
    config_free(cfg);
    static const char *const buses[] = { "Off", "system", "SESSION" };
    for (size_t b = 0; b < ELEMENTSOF(buses); b++) {
        char text[128];
        (void)snprintf(text, sizeof(text), DBUS "bus = %s\n", buses[b]);
        cfg = parse_ok(text);
        assert_int_equal(cfg->dbus_bus, (enum config_dbus_bus)b);
        assert_true(str_case_eq(config_dbus_bus_name(cfg->dbus_bus), buses[b]));
        config_free(cfg);
    }
    assert_null(config_dbus_bus_name(CONFIG_DBUS_MAX));
    /* Without a bus any endpoint name goes; with one, [a-z][a-z0-9_]* names do. */
    cfg = parse_ok("[endpoint web-1]\ntype = server\n");
    config_free(cfg);
    cfg = parse_ok("[endpoint web_1]\ntype = server\n" DBUS "bus = session\n");
    assert_string_equal(cfg->endpoints[0].name, "web_1");
    config_free(cfg);
}

static void test_config_tls_values(void **state)
{
    (void)state;
    /* every combination, any case; the defaults' truststore verifies chains */
    static const char *const auth[] = { "off", "OPTIONAL", "Required" };
    static const char *const verify[] = { "pin", "CHAIN", "Pin-Or-Chain" };
    for (size_t a = 0; a < ELEMENTSOF(auth); a++) {
        for (size_t v = 0; v < ELEMENTSOF(verify); v++) {
            char text[128];
            (void)snprintf(text, sizeof(text), TLS "client_auth = %s\nclient_verify = %s\n",
                           auth[a], verify[v]);
            struct config *cfg = parse_ok(text);
            assert_int_equal(cfg->client_auth, (enum config_client_auth)a);
            assert_int_equal(cfg->client_verify, (enum config_client_verify)v);
            assert_true(str_case_eq(config_client_auth_name(cfg->client_auth), auth[a]));
            assert_true(str_case_eq(config_client_verify_name(cfg->client_verify), verify[v]));
            assert_string_equal(cfg->client_ca, "truststore");
            assert_int_equal(cfg->n_pins, 1);
            assert_string_equal(cfg->pins[cfg->client_pins].name, "clients");
            config_free(cfg);
        }
    }
    assert_string_equal(config_client_auth_name(CONFIG_CLIENT_AUTH_OPTIONAL), "optional");
    assert_string_equal(config_client_auth_name(CONFIG_CLIENT_AUTH_REQUIRED), "required");
    assert_string_equal(config_client_verify_name(CONFIG_CLIENT_VERIFY_CHAIN), "chain");
    assert_string_equal(config_client_verify_name(CONFIG_CLIENT_VERIFY_PIN_OR_CHAIN),
                        "pin-or-chain");

    /* client_ca names another authority; client_pins a store with its section, given later */
    struct config *cfg = parse_ok(TLS "client_auth = required\nclient_verify = pin-or-chain\n"
                                      "client_pins = consoles\nclient_ca = cas\n"
                                      "[endpoint web]\ntype = server\n"
                                      "[endpoint cas]\ntype = authority\n"
                                      "[pins consoles]\nfile = /etc/certd/consoles.json\n");
    assert_int_equal(cfg->client_auth, CONFIG_CLIENT_AUTH_REQUIRED);
    assert_int_equal(cfg->client_verify, CONFIG_CLIENT_VERIFY_PIN_OR_CHAIN);
    assert_string_equal(cfg->client_ca, "cas");
    assert_int_equal(cfg->n_pins, 1); /* no implicit "clients" */
    assert_int_equal(cfg->client_pins, 0);
    assert_string_equal(cfg->pins[0].name, "consoles");
    assert_string_equal(cfg->pins[0].file, "/etc/certd/consoles.json");
    assert_true(cfg->pins[0].is_file_given);
    assert_null(config_pins_find(cfg, "clients"));
    assert_ptr_equal(config_pins_find(cfg, "consoles"), &cfg->pins[0]);
    config_free(cfg);

    /* client_ca given with pins only, or with client_auth off: checked, kept, unused */
    cfg = parse_ok(TLS "client_ca = truststore\n");
    assert_string_equal(cfg->client_ca, "truststore");
    config_free(cfg);
    cfg = parse_ok(EPA TLS "client_ca = e\nclient_verify = chain\n");
    assert_string_equal(cfg->client_ca, "e");
    assert_int_equal(cfg->client_auth, CONFIG_CLIENT_AUTH_OFF);
    config_free(cfg);

    /* an authority named truststore among given endpoints is the default client_ca */
    cfg = parse_ok(EPS "[endpoint truststore]\ntype = authority\ndir = /etc/trust\n" TLS
                       "client_auth = optional\nclient_verify = chain\n");
    assert_string_equal(cfg->client_ca, "truststore");
    config_free(cfg);

    /* no authority at all: client_ca is "", fine for pins and while client_auth is off */
    cfg = parse_ok(EPS TLS "client_auth = required\n");
    assert_string_equal(cfg->client_ca, "");
    assert_int_equal(cfg->client_verify, CONFIG_CLIENT_VERIFY_PIN);
    config_free(cfg);
    cfg = parse_ok(EPS TLS "client_verify = chain\n");
    assert_string_equal(cfg->client_ca, "");
    config_free(cfg);
    /* a truststore that is not an authority is not the default */
    cfg = parse_ok("[endpoint truststore]\ntype = client\n");
    assert_string_equal(cfg->client_ca, "");
    config_free(cfg);

    /* client_pins with a chain-only listener: kept, unused */
    cfg = parse_ok(TLS "client_verify = chain\nclient_pins = spare\nclient_auth = required\n");
    assert_int_equal(cfg->n_pins, 1);
    assert_string_equal(cfg->pins[cfg->client_pins].name, "spare");
    assert_string_equal(cfg->pins[0].file, CONFIG_STATE_DIR_DEFAULT "/pins/spare.json");
    config_free(cfg);
}

static void test_config_pins(void **state)
{
    (void)state;
    /* sections in file order, then the implicit store client_pins names */
    struct config *cfg = parse_ok(SRV "state_dir = /srv/certd\n"
                                      "[pins managers]\n"
                                      "[pins consoles]\nfile = file:///etc/certd/c%20p.json\n"
                                      "[pins abcdefghijklmnopqrstuvwxyz_-0123]\n"
                                      "file = /etc/certd/long.json\n");
    assert_int_equal(cfg->n_pins, 4);
    assert_string_equal(cfg->pins[0].name, "managers");
    assert_string_equal(cfg->pins[0].file, "/srv/certd/pins/managers.json");
    assert_false(cfg->pins[0].is_file_given);
    assert_string_equal(cfg->pins[1].name, "consoles");
    assert_string_equal(cfg->pins[1].file, "/etc/certd/c p.json");
    assert_true(cfg->pins[1].is_file_given);
    assert_string_equal(cfg->pins[2].name, "abcdefghijklmnopqrstuvwxyz_-0123");
    assert_string_equal(cfg->pins[2].file, "/etc/certd/long.json");
    assert_string_equal(cfg->pins[3].name, "clients");
    assert_string_equal(cfg->pins[3].file, "/srv/certd/pins/clients.json");
    assert_false(cfg->pins[3].is_file_given);
    assert_int_equal(cfg->client_pins, 3);
    assert_ptr_equal(config_pins_find(cfg, "consoles"), &cfg->pins[1]);
    assert_null(config_pins_find(cfg, "nope"));
    assert_null(config_pins_find(cfg, NULL));
    config_free(cfg);

    /* [pins clients] is the default store: no second one */
    cfg = parse_ok("[pins x]\n[pins clients]\nfile = /etc/certd/clients.json\n");
    assert_int_equal(cfg->n_pins, 2);
    assert_int_equal(cfg->client_pins, 1);
    assert_string_equal(cfg->pins[1].file, "/etc/certd/clients.json");
    config_free(cfg);
    /* a client_pins store without a section, and an empty section */
    cfg = parse_ok(TLS "client_pins = peers\n[pins clients]\n");
    assert_int_equal(cfg->n_pins, 2);
    assert_string_equal(cfg->pins[0].name, "clients");
    assert_string_equal(cfg->pins[0].file, CONFIG_STATE_DIR_DEFAULT "/pins/clients.json");
    assert_string_equal(cfg->pins[1].name, "peers");
    assert_string_equal(cfg->pins[1].file, CONFIG_STATE_DIR_DEFAULT "/pins/peers.json");
    assert_int_equal(cfg->client_pins, 1);
    config_free(cfg);
    /* stores and endpoints are apart: one name may be both */
    cfg = parse_ok("[endpoint trust]\ntype = authority\n[pins trust]\n" TLS "client_pins = trust\n"
                   "client_ca = trust\nclient_auth = required\nclient_verify = pin-or-chain\n");
    assert_int_equal(cfg->n_pins, 1);
    assert_string_equal(cfg->pins[0].file, CONFIG_STATE_DIR_DEFAULT "/pins/trust.json");
    assert_string_equal(cfg->client_ca, "trust");
    config_free(cfg);
    /* a store file beside an authority's dir, not in it */
    cfg = parse_ok(EPA "dir = /etc/trust\n" PINS "file = /etc/trust.json\n");
    assert_string_equal(cfg->pins[0].file, "/etc/trust.json");
    config_free(cfg);

    /* CONFIG_PINS_MAX stores, the implicit one among them, and one more */
    char text[1024];
    size_t o = 0;
    for (unsigned i = 0; i < CONFIG_PINS_MAX - 1; i++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "[pins p%u]\n", i);
    }
    cfg = parse_ok(text);
    assert_int_equal(cfg->n_pins, CONFIG_PINS_MAX);
    assert_string_equal(cfg->pins[CONFIG_PINS_MAX - 1].name, "clients");
    assert_int_equal(cfg->client_pins, CONFIG_PINS_MAX - 1);
    config_free(cfg);
    (void)snprintf(text + o, sizeof(text) - o, "[pins clients]\n");
    cfg = parse_ok(text);
    assert_int_equal(cfg->n_pins, CONFIG_PINS_MAX);
    assert_int_equal(cfg->client_pins, CONFIG_PINS_MAX - 1);
    config_free(cfg);
    /* the implicit store would be the ninth */
    (void)snprintf(text + o, sizeof(text) - o, "[pins p7]\n");
    parse_bad(text, -E2BIG, CERTD_E_TOO_MANY_VALUES, 0,
              "more than 8 pin stores: the client_pins store [pins clients] has no section");
    (void)snprintf(text + o, sizeof(text) - o, "[pins p7]\n" TLS "\nclient_pins = other\n");
    parse_bad(text, -E2BIG, CERTD_E_TOO_MANY_VALUES, CONFIG_PINS_MAX + 3,
              "[tls] client_pins: more than 8 pin stores: the client_pins store [pins other]");
    /* a ninth section */
    (void)snprintf(text + o, sizeof(text) - o, "[pins p7]\n[pins clients]\n");
    parse_bad(text, -E2BIG, CERTD_E_TOO_MANY_VALUES, CONFIG_PINS_MAX + 1, "more than 8 pin stores");
}

/* --state-dir moves the stores' default files, not the given ones; all or nothing. */
static void test_config_pins_overrides(void **state)
{
    (void)state;
    struct config *cfg = parse_ok("[pins given]\nfile = /etc/certd/given.json\n[pins derived]\n");
    assert_int_equal(cfg->n_pins, 3);
    assert_string_equal(cfg->pins[1].file, CONFIG_STATE_DIR_DEFAULT "/pins/derived.json");
    struct certd_err err = { 0 };
    assert_int_equal(config_apply_overrides(cfg, "/run/z/", NULL, &err), 0);
    assert_string_equal(cfg->pins[0].file, "/etc/certd/given.json");
    assert_string_equal(cfg->pins[1].file, "/run/z/pins/derived.json");
    assert_string_equal(cfg->pins[2].name, "clients");
    assert_string_equal(cfg->pins[2].file, "/run/z/pins/clients.json");
    assert_int_equal(cfg->client_pins, 2);
    assert_ptr_equal(config_pins_find(cfg, "clients"), &cfg->pins[2]);
    /* "/" joins without "//" */
    assert_int_equal(config_apply_overrides(cfg, "/", NULL, &err), 0);
    assert_string_equal(cfg->pins[1].file, "/pins/derived.json");
    assert_string_equal(cfg->pins[0].file, "/etc/certd/given.json");
    config_free(cfg);

    /* a clash the file did not have: nothing moves */
    err_clear(&err);
    cfg = parse_ok("[pins a]\nfile = /srv/q/pins/clients.json\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/q", NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "--state-dir: [pins clients] file '/srv/q/pins/clients.json' "
                                    "is also [pins a] file"));
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    assert_string_equal(cfg->pins[1].file, CONFIG_STATE_DIR_DEFAULT "/pins/clients.json");
    assert_string_equal(cfg->users_file, CONFIG_STATE_DIR_DEFAULT "/users");
    config_free(cfg);
    /* a moved store inside an authority's dir, and a moved endpoint on a store's lock */
    err_clear(&err);
    cfg = parse_ok(EPA "dir = /srv/t/pins\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/t", NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "--state-dir: [pins clients] file '/srv/t/pins/clients.json' "
                                    "lies inside [endpoint e] dir '/srv/t/pins'"));
    assert_string_equal(cfg->pins[0].file, CONFIG_STATE_DIR_DEFAULT "/pins/clients.json");
    config_free(cfg);
    err_clear(&err);
    cfg = parse_ok(SRV "users_file = /srv/u/pins/clients.json.lock\n");
    assert_int_equal(config_apply_overrides(cfg, "/srv/u", NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "--state-dir: the lock of [pins clients] file "
                                    "'/srv/u/pins/clients.json.lock' is also [server] users_file"));
    config_free(cfg);
    /* too long for the store's default file: all or nothing */
    err_clear(&err);
    cfg = parse_ok(TLS "client_pins = abcdefghijklmnopqrstuvwxyz_-0123\n");
    char long_dir[CONFIG_PATH_MAX];
    memset(long_dir, 'd', sizeof(long_dir));
    long_dir[0] = '/';
    /* "/users.lock" and "/initial-admin-password" fit; "/pins/" + 32 + ".json" does not */
    long_dir[CONFIG_PATH_MAX - 1 - 30] = '\0';
    assert_int_equal(config_apply_overrides(cfg, long_dir, NULL, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    assert_string_equal(cfg->pins[0].file,
                        CONFIG_STATE_DIR_DEFAULT "/pins/abcdefghijklmnopqrstuvwxyz_-0123.json");
    config_free(cfg);
}

static void test_config_load(void **state)
{
    (void)state;
    char *dir = scratch_dir("config");
    char path[512];
    struct certd_err err = { 0 };
    struct config *cfg = NULL;

    (void)snprintf(path, sizeof(path), "%s/missing.conf", dir);
    assert_int_equal(config_load(path, &cfg, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "missing.conf: "));
    assert_null(cfg);

    /* a directory */
    err_clear(&err);
    assert_int_equal(config_load(dir, &cfg, &err), -EISDIR);
    assert_int_equal(err.code, CERTD_E_STORAGE);

    /* over CONFIG_FILE_MAX */
    (void)snprintf(path, sizeof(path), "%s/big.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i <= CONFIG_FILE_MAX / 8; i++) {
        assert_int_equal(fputs(";;;;;;;\n", f), 1);
    }
    assert_int_equal(fclose(f), 0);
    err_clear(&err);
    assert_int_equal(config_load(path, &cfg, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_INPUT_TOO_LARGE);
    assert_non_null(strstr(err.msg, "big.conf: "));

    /* a good file, and a bad one naming the file and line */
    (void)snprintf(path, sizeof(path), "%s/good.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("[tls]\nprofile = modern\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(config_load(path, &cfg, NULL), 0);
    assert_int_equal(cfg->tls_profile, CONFIG_TLS_MODERN);
    cfg = config_free(cfg);
    (void)snprintf(path, sizeof(path), "%s/bad.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("[tls]\n\nprofile = modren\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    err_clear(&err);
    assert_int_equal(config_load(path, &cfg, &err), -EINVAL);
    char want[600];
    (void)snprintf(want, sizeof(want), "%s:3: [tls] profile: ", path);
    assert_non_null(strstr(err.msg, want));
    assert_null(cfg);
    scratch_rm(dir);
}

/*
 * A configuration file of the source tree (CERTD_SOURCE_ROOT/rel, its name into path),
 * loaded; the test is skipped without CERTD_SOURCE_ROOT.
 */
static struct config *load_source_config(const char *rel, char path[static PATH_MAX])
{
    const char *root = getenv("CERTD_SOURCE_ROOT");
    if (!root) {
        print_message("CERTD_SOURCE_ROOT is not set: skipping %s\n", rel);
        skip();
    }
    (void)snprintf(path, PATH_MAX, "%s/%s", root, rel);
    struct certd_err err = { 0 };
    struct config *cfg = NULL;
    int r = config_load(path, &cfg, &err);
    if (r < 0) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(r, 0);
    return cfg;
}

/* packaging/certd.conf: the embedded defaults but for the port and the system bus. */
static void test_config_packaged(void **state)
{
    (void)state;
    char path[PATH_MAX];
    struct config *cfg = load_source_config("packaging/certd.conf", path);
    assert_int_equal(cfg->dbus_bus, CONFIG_DBUS_SYSTEM);
    assert_string_equal(cfg->listen.text, "0.0.0.0:443");
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    check_default_endpoints(cfg, CONFIG_STATE_DIR_DEFAULT);
    check_ca_defaults(cfg, CONFIG_STATE_DIR_DEFAULT);
    check_tls_defaults(cfg, CONFIG_STATE_DIR_DEFAULT);
    config_free(cfg);
}

static void test_config_example(void **state)
{
    (void)state;
    char path[PATH_MAX];
    struct config *cfg = load_source_config("certd.conf.example", path);
    /* Its active settings are the embedded defaults. */
    check_server_defaults(cfg);
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    assert_string_equal(cfg->users_file, CONFIG_STATE_DIR_DEFAULT "/users");
    check_default_endpoints(cfg, CONFIG_STATE_DIR_DEFAULT);
    check_ca_defaults(cfg, CONFIG_STATE_DIR_DEFAULT);
    check_tls_defaults(cfg, CONFIG_STATE_DIR_DEFAULT);
    config_free(cfg);

    /* Every key is documented in it (as "; key =" or "key ="). */
    uint8_t *text = NULL;
    size_t len = 0;
    assert_int_equal(store_read_file(path, CONFIG_FILE_MAX, false, &text, &len), 0);
    static const char *const keys[] = {
        "listen",
        "state_dir",
        "users_file",
        "hostname",
        "log_level",
        "profile",
        "max_body",
        "max_headers_size",
        "max_connections",
        "idle_timeout",
        "request_timeout",
        "type",
        "cert",
        "key",
        "new_key",
        "names",
        "days",
        "expired",
        "not_yet_valid",
        "allow_ed25519",
        "dir",
        "max",
        "reload",
        "load",
        "query",
        "client_auth",
        "client_verify",
        "client_pins",
        "client_ca",
        "file",
    };
    for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
        char k[64];
        (void)snprintf(k, sizeof(k), "\n; %s =", keys[i]);
        char k2[64];
        (void)snprintf(k2, sizeof(k2), "\n%s =", keys[i]);
        if (!strstr((const char *)text, k) && !strstr((const char *)text, k2)) {
            print_error("certd.conf.example does not document '%s'\n", keys[i]);
            fail();
        }
    }
    /* ... and every [ca] key in its [ca] section, which comes last (text is NUL-terminated). */
    const char *ca = strstr((const char *)text, "\n[ca]\n");
    assert_non_null(ca);
    assert_null(strstr(ca, "\n[endpoint"));
    static const char *const ca_keys[] = {
        "signer", "exec_timeout", "cert", "key",     "new_key",     "common_name",   "root_days",
        "days",   "crl_days",     "sans", "subject", "server_auth", "allow_ed25519",
    };
    for (size_t i = 0; i < ELEMENTSOF(ca_keys); i++) {
        char k[64];
        (void)snprintf(k, sizeof(k), "\n; %s =", ca_keys[i]);
        if (!strstr(ca, k)) {
            print_error("certd.conf.example's [ca] does not document '%s'\n", ca_keys[i]);
            fail();
        }
    }
    /* Its pin store example, commented out, parses as documented. */
    static const char *const pins[] = {
        "[pins consoles]",
        "file = /var/lib/certd/pins/consoles.json",
        "client_auth = optional",
        "client_pins = consoles",
    };
    char pins_conf[256] = "[tls]\n";
    for (size_t i = 0; i < ELEMENTSOF(pins); i++) {
        char line[128];
        (void)snprintf(line, sizeof(line), "\n; %s\n", pins[i]);
        if (!strstr((const char *)text, line)) {
            print_error("certd.conf.example lacks '%s'\n", line + 1);
            fail();
        }
    }
    /* [tls] keys first, then the section */
    (void)snprintf(pins_conf, sizeof(pins_conf), "[tls]\n%s\n%s\n%s\n%s\n", pins[2], pins[3],
                   pins[0], pins[1]);
    cfg = parse_ok(pins_conf);
    assert_int_equal(cfg->client_auth, CONFIG_CLIENT_AUTH_OPTIONAL);
    assert_int_equal(cfg->client_verify, CONFIG_CLIENT_VERIFY_PIN);
    assert_int_equal(cfg->n_pins, 1);
    assert_string_equal(cfg->pins[cfg->client_pins].name, "consoles");
    assert_string_equal(cfg->pins[0].file, "/var/lib/certd/pins/consoles.json");
    config_free(cfg);

    /* Its TPM lines, commented out, make a configuration that parses as documented. */
    static const char *const tpm[] = {
        "[providers]",
        "load = default,tpm2",
        "[provider tpm2]",
        "tcti = device:/dev/tpmrm0",
        "sign_query = ?tpm2.signature",
        "[endpoint https]",
        "type = server",
        "new_key = tpm2:ec:P-256",
        "key = handle:0x81000001",
        "cert = handle:0x01000010",
        "[ca]",
        "key = handle:0x81000002",
    };
    char conf[1024];
    size_t o = 0;
    for (size_t i = 0; i < ELEMENTSOF(tpm); i++) {
        char line[128];
        (void)snprintf(line, sizeof(line), "\n; %s\n", tpm[i]);
        bool is_active = i == 0 || i == 5 || i == 6 || i == 10;
        if (!is_active && !strstr((const char *)text, line)) {
            print_error("certd.conf.example lacks '%s'\n", line + 1);
            fail();
        }
        o += (size_t)snprintf(conf + o, sizeof(conf) - o, "%s\n", tpm[i]);
    }
    assert_non_null(strstr((const char *)text, "\n; tcti = swtpm:host=127.0.0.1,port=2321\n"));
    assert_non_null(strstr((const char *)text, "\n; new_key = tpm2:ec:P-384"));
    free(text);
    if (!is_built("default") || !is_built("tpm2")) {
        return;
    }
    (void)snprintf(conf + o, sizeof(conf) - o, "new_key = tpm2:ec:P-384\n");
    cfg = parse_ok(conf);
    assert_string_equal(cfg->endpoints[0].key_uri, "handle:0x81000001");
    assert_string_equal(cfg->endpoints[0].cert_uri, "handle:0x01000010");
    assert_string_equal(cfg->ca.key_uri, "handle:0x81000002");
    assert_string_equal(config_provider_sign_query(cfg, "tpm2"), "?tpm2.signature");
    assert_string_equal(cfg->providers.specs[1].params[0].value, "device:/dev/tpmrm0");
    assert_int_equal(cfg->providers.keygen[1].parent, 0);
    config_free(cfg);

    /* A parent with its password: certd's keys, not parameters handed to the provider. */
    cfg = parse_ok("[providers]\nload = default,tpm2\n[provider tpm2]\nparent = 0x81000010\n"
                   "parent_auth_file = /etc/certd/tpm-parent\n");
    assert_int_equal(cfg->providers.keygen[1].parent, 0x81000010u);
    assert_string_equal(cfg->providers.keygen[1].parent_param, "parent");
    assert_string_equal(cfg->providers.keygen[1].auth_param, "parent-auth");
    assert_string_equal(cfg->providers.keygen[1].auth_env, "TPM2OPENSSL_PARENT_AUTH");
    assert_string_equal(cfg->providers.keygen[1].auth_file, "/etc/certd/tpm-parent");
    assert_int_equal(cfg->providers.specs[1].n_params, 0);
    config_free(cfg);
}

/* ---- [providers], [provider NAME] and key/certificate URIs (issue #5) ---- */

#define PRV "[providers]\nload = default,tpm2\n"

static const struct bad_case provider_bad[] = {
    /* [providers] load */
    INV("[providers]\nload =\n", 2, "[providers] load: empty value"),
    INV("[providers]\nload = default,,tpm2\n", 2, "[providers] load: provider 2 is empty"),
    INV("[providers]\nload = default,\n", 2, "load: provider 2 is empty"),
    INV("[providers]\nload = , default\n", 2, "load: provider 1 is empty"),
    INV("[providers]\nload = default, default\n", 2,
        "[providers] load: provider 'default' is named twice"),
    INV("[providers]\nload = default,tpm2,tpm2\n", 2, "load: provider 'tpm2' is named twice"),
    INV("[providers]\nload = Default\n", 2, "[providers] load: 'Default' is not a provider name"),
    INV("[providers]\nload = tpm 2\n", 2, "load: 'tpm 2' is not a provider name"),
    INV("[providers]\nload = default;tpm2\n", 2, "load: 'default;tpm2' is not a provider name"),
    INV("[providers]\nload = default tpm2\n", 2, "load: 'default tpm2' is not a provider"),
    INV("[providers]\nload = tpm2.so\n", 2, "load: 'tpm2.so' is not a provider name"),
    INV("[providers]\nload = /usr/lib/ossl-modules/tpm2.so\n", 2, "is not a provider name"),
    /* KEY_PROVIDER_NAME_MAX + 1 */
    INV("[providers]\nload = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2,
        "is not a provider name (1 to 31 characters"),
    /* notes/tpm2.md P2: default first */
    INV("[providers]\nload = tpm2,default\n", 2,
        "[providers] load: tpm2 may not come first: load a software provider"),
    INV("[providers]\nload = tpm2\n", 2, "load: tpm2 may not come first"),
    /* [providers] query */
    INV("[providers]\nquery =\n", 2, "[providers] query: empty value"),
    INV("[providers]\nquery = fips=\xc3\xa9\n", 2,
        "[providers] query: may hold only printable ASCII characters"),
    INV("[providers]\nquery = fips=yes\t,x=1\n", 2, "[providers] query: may hold only printable"),
    /* [providers] keys and sections */
    INV("[providers]\nsign_query = ?x\n", 2, "unknown key 'sign_query' in [providers]"),
    INV("[providers]\ntcti = device:/dev/tpmrm0\n", 2, "unknown key 'tcti' in [providers]"),
    INV("[providers]\nLoad = default\n", 2, "unknown key 'Load' in [providers]"),
    INV("[providers]\n[tls]\n[providers]\n", 3, "duplicate section [providers] (first on line 1)"),
    INV("[providers]\nload = default\nload = default\n", 3,
        "[providers] load: duplicate key (first on line 2)"),
    INV("[providers]\nquery = a\nquery = a\n", 3, "[providers] query: duplicate key"),
    INV("[Providers]\n", 1, "unknown section [Providers]"),
    INV("[providerx]\n", 1, "unknown section [providerx]"),
    /* [provider NAME]: in load, wherever [providers] is */
    INV("[provider tpm2]\ntcti = device:/dev/tpmrm0\n", 1,
        "[provider tpm2] is not in [providers] load"),
    INV("[providers]\nload = default\n\n[provider tpm2]\n", 4,
        "[provider tpm2] is not in [providers] load"),
    INV("[provider fips]\n" PRV, 1, "[provider fips] is not in [providers] load"),
    INV(PRV "[provider tpm2]\n[provider null]\n", 4, "[provider null] is not in"),
    INV("[provider Tpm2]\n", 1, "[provider NAME]: the name 'Tpm2' must be 1 to 31 characters"),
    INV("[provider]\n", 1, "[provider NAME]: the name '' must be"),
    INV("[provider a b]\n", 1, "the name 'a b' must be"),
    INV("[provider tpm2.so]\n", 1, "the name 'tpm2.so' must be"),
    INV("[provider aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", 1, "must be 1 to 31 characters"),
    INV(PRV "[provider tpm2]\n[provider tpm2]\n", 4,
        "duplicate section [provider tpm2] (first on line 3)"),
    /* parameters: names, values, certd's own */
    INV(PRV "[provider tpm2]\nactivate = 1\n", 4,
        "[provider tpm2] activate: 'activate' is a command of OpenSSL's provider configuration, "
        "not a parameter (certd loads and activates"),
    INV(PRV "[provider tpm2]\nACTIVATE = yes\n", 4, "'ACTIVATE' is a command of OpenSSL's"),
    INV(PRV "[provider tpm2]\nsoft_load = 1\n", 4, "'soft_load' is a command of OpenSSL's"),
    INV(PRV "[provider tpm2]\nidentity = tpm3\n", 4, "'identity' is a command of OpenSSL's"),
    INV(PRV "[provider tpm2]\nx.activate = 0\n", 4,
        "[provider tpm2] x.activate: 'x.activate' is a command"),
    INV(PRV "[provider tpm2]\n.include = /etc/x.cnf\n", 4,
        "'.include' is not a parameter name (1 to 63 characters of A-Z, a-z, 0-9, '_', '.' and "
        "'-', starting with a letter or digit)"),
    INV(PRV "[provider tpm2]\n-tcti = x\n", 4, "'-tcti' is not a parameter name"),
    INV(PRV "[provider tpm2]\ntcti = default\n", 4,
        "[provider tpm2] tcti: names a section of OpenSSL's configuration"),
    INV(PRV "[provider tpm2]\ntcti = certd_init\n", 4, "tcti: names a section"),
    INV(PRV "[provider tpm2]\ntcti = certd_providers\n", 4, "tcti: names a section"),
    INV(PRV "[provider tpm2]\ntcti = certd_provider_12\n", 4, "tcti: names a section"),
    INV(PRV "[provider tpm2]\ntcti = \"device:/dev/tpmrm0\"\n", 4,
        "[provider tpm2] tcti: may hold only printable ASCII characters"),
    INV(PRV "[provider tpm2]\ntcti = 'device:/dev/tpmrm0'\n", 4, "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti = $ENV::TPM2OPENSSL_TCTI\n", 4, "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti = ${TCTI}\n", 4, "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti = device:/dev/tpmrm0;x\n", 4, "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti = device:/dev/tpmrm0 # the kernel RM\n", 4,
        "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti = device:\\dev\n", 4, "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti = caf\xc3\xa9\n", 4, "tcti: may hold only"),
    INV(PRV "[provider tpm2]\ntcti =\n", 4, "[provider tpm2] 'tcti': empty value"),
    INV(PRV "[provider tpm2]\ntc$ti = x\n", 4, "[provider tpm2] 'tc$ti' is not a parameter name"),
    INV(PRV "[provider tpm2]\ntc/ti = x\n", 4, "'tc/ti' is not a parameter name (1 to 63"),
    INV(PRV "[provider tpm2]\ntc ti = x\n", 4, "'tc ti' is not a parameter name"),
    INV(PRV "[provider tpm2]\ntcti = a\n; x\ntcti = b\n", 6,
        "[provider tpm2] tcti: duplicate key (first on line 4)"),
    INV(PRV "[provider tpm2]\nsign_query = ?a\nsign_query = ?b\n", 5,
        "[provider tpm2] sign_query: duplicate key (first on line 4)"),
    /* tpm2's parent and its password file (certd's own keys of [provider tpm2]) */
    INV(PRV "[provider tpm2]\nparent = 0x01000000\n", 4,
        "[provider tpm2] parent: '0x01000000' is not a persistent TPM handle"),
    INV(PRV "[provider tpm2]\nparent = 81000001\n", 4, "is not a persistent TPM handle"),
    INV(PRV "[provider tpm2]\nparent = 0x81000001 x\n", 4, "is not a persistent TPM handle"),
    INV(PRV "[provider tpm2]\nparent = 0x81800000\n", 4, "is not a persistent TPM handle"),
    INV(PRV "[provider tpm2]\nparent = 0x81000001\nparent = 0x81000002\n", 5,
        "[provider tpm2] parent: duplicate key (first on line 4)"),
    INV(PRV "[provider tpm2]\nparent = 0x81000001\nparent_auth_file = pw\n", 5,
        "[provider tpm2] parent_auth_file: must be an absolute path"),
    INV(PRV "[provider tpm2]\nparent = 0x81000001\nparent_auth_file = /a/../pw\n", 5,
        "parent_auth_file"),
    INV(PRV "[provider tpm2]\nparent_auth_file = /etc/certd/pw\n", 4,
        "needs parent = 0x81...: tpm2 takes a parent's password"),
    INV(PRV "[provider tpm2]\nsign_query = ?tpm2.sign\xc3\xa4ture\n", 4,
        "[provider tpm2] sign_query: may hold only printable ASCII characters"),
    INV(PRV "[provider tpm2]\nsign_query =\n", 4, "[provider tpm2] 'sign_query': empty value"),
    INV("[provider default]\nx = $y\n", 2, "[provider default] x: may hold only"),
    /* new_key = [PROVIDER:]ALG[:SIZE|CURVE] (key_spec_parse) */
    INV(PRV EPS "new_key = TPM2:ec:P-256\n", 5,
        "[endpoint e] new_key: malformed provider name 'TPM2'"),
    INV(PRV EPS "new_key = tpm2:dsa\n", 5, "[endpoint e] new_key: "),
    INV(PRV EPS "new_key = tpm2:ec:P-192\n", 5, "after PROVIDER: to make keys in a provider"),
    INV(PRV EPS "new_key = tpm2:rsa:1024\n", 5, "[endpoint e] new_key: "),
    INV(PRV EPS "new_key = tpm2:ec:P-256:x\n", 5, "new_key: malformed key type"),
    INV(PRV EPS "new_key = tpm2::ec\n", 5, "new_key: malformed key type"),
    INV(PRV EPS "new_key = tpm2:ed25519\n", 5, "new_key: ed25519 needs allow_ed25519 = yes"),
    INV(PRV CA "new_key = tpm2:rsa:1024\n", 4, "[ca] new_key: "),
};

/* Build-dependent: what this build does not support is refused with -EOPNOTSUPP. */
static void test_config_providers_build(void **state)
{
    (void)state;
    char built[256];
    size_t o = 0;
    for (const char *p = CERTD_PROVIDERS_BUILT; *p; p++) {
        o += (size_t)snprintf(built + o, sizeof(built) - o, *p == ',' ? ", " : "%c", *p);
    }
    static const char *const names[] = { "default", "fips",   "null",        "tpm2",
                                         "base",    "legacy", "oqsprovider", "pkcs11" };
    for (size_t i = 0; i < ELEMENTSOF(names); i++) {
        char text[128];
        (void)snprintf(text, sizeof(text), "[providers]\nload = null,%s\n", names[i]);
        if (strcmp(names[i], "null") == 0) {
            (void)snprintf(text, sizeof(text), "[providers]\nload = null\n");
        }
        if (is_built(names[i]) && is_built("null")) {
            struct config *cfg = parse_ok(text);
            assert_string_equal(cfg->providers.specs[cfg->providers.n - 1].name, names[i]);
            config_free(cfg);
            continue;
        }
        const char *missing = is_built("null") ? names[i] : "null";
        char word[400];
        (void)snprintf(word, sizeof(word),
                       "[providers] load: provider '%s' is not supported by this build (built "
                       "with: %s)",
                       missing, built);
        parse_bad(text, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, 2, word);
    }
    /* the build's list as it is: every name in it can be loaded */
    assert_true(is_built("default") || is_built("fips") || is_built("null") || is_built("tpm2"));
}

static void test_config_providers_bad(void **state)
{
    (void)state;
    /* In a build without tpm2 (or default), the cases naming it would fail on the build's list. */
    bool has_tpm2 = is_built("default") && is_built("tpm2");
    size_t n = 0;
    for (size_t i = 0; i < ELEMENTSOF(provider_bad); i++) {
        const struct bad_case *c = &provider_bad[i];
        if (!has_tpm2 && strstr(c->text, "tpm2")) {
            continue;
        }
        parse_bad(c->text, c->r, c->code, c->line, c->word);
        n++;
    }
    assert_true(n > 0);
}

static void test_config_providers_limits(void **state)
{
    (void)state;
    /* PROVIDERS_MAX names pass the count (and fail on what the build lacks); one more does not */
    char *t = list_text("[providers]\nload = ", "default", ",", PROVIDERS_MAX);
    parse_bad(t, -EINVAL, CERTD_E_FIELD_INVALID, 2, "provider 'default' is named twice");
    free(t);
    t = list_text("[providers]\nload = ", "x", ",", PROVIDERS_MAX + 1);
    parse_bad(t, -E2BIG, CERTD_E_TOO_MANY_VALUES, 2, "[providers] load: more than 8 providers");
    free(t);
    parse_bad("[providers]\nload = a,b,c,d,e,f,g,h\n", -EOPNOTSUPP, CERTD_E_FIELD_INVALID, 2,
              "is not supported by this build");
    parse_bad("[providers]\nload = a,b,c,d,e,f,g,h,i\n", -E2BIG, CERTD_E_TOO_MANY_VALUES, 2,
              "more than 8 providers");
    /* a 31-character name is a name (this build does not have it) */
    parse_bad("[providers]\nload = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", -EOPNOTSUPP,
              CERTD_E_FIELD_INVALID, 2,
              "provider 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not supported by this build");

    /* PROVIDERS_MAX [provider NAME] sections: each must be in load; one more is too many */
    char text[1024];
    size_t o = 0;
    for (unsigned i = 0; i <= PROVIDERS_MAX; i++) {
        if (i == PROVIDERS_MAX) {
            parse_bad(text, -EINVAL, CERTD_E_FIELD_INVALID, 1,
                      "[provider p0] is not in [providers] load");
        }
        o += (size_t)snprintf(text + o, sizeof(text) - o, "[provider p%u]\n", i);
    }
    parse_bad(text, -E2BIG, CERTD_E_TOO_MANY_VALUES, PROVIDERS_MAX + 1,
              "more than 8 [provider NAME] sections");

    need_tpm2();
    /* PROVIDER_PARAMS_MAX parameters, and one more */
    o = (size_t)snprintf(text, sizeof(text), PRV "[provider tpm2]\n");
    for (unsigned i = 0; i < PROVIDER_PARAMS_MAX; i++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "p%u = v%u\n", i, i);
    }
    /* sign_query is certd's, not a parameter */
    o += (size_t)snprintf(text + o, sizeof(text) - o, "sign_query = ?tpm2.signature\n");
    struct config *cfg = parse_ok(text);
    assert_int_equal(cfg->providers.specs[1].n_params, PROVIDER_PARAMS_MAX);
    assert_string_equal(cfg->providers.specs[1].params[15].name, "p15");
    assert_string_equal(cfg->providers.specs[1].params[15].value, "v15");
    config_free(cfg);
    (void)snprintf(text + o, sizeof(text) - o, "p16 = v16\n");
    parse_bad(text, -E2BIG, CERTD_E_TOO_MANY_VALUES, 4 + PROVIDER_PARAMS_MAX + 1,
              "[provider tpm2] p16: more than 16 parameters");

    /* a name of PROVIDER_PARAM_NAME_MAX characters, and one more */
    char name[PROVIDER_PARAM_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[PROVIDER_PARAM_NAME_MAX] = '\0';
    (void)snprintf(text, sizeof(text),
                   PRV "[provider tpm2]\n%s = Az09_.-:/=,!%%&()*+<>?@[]^`{|}~ x\n", name);
    cfg = parse_ok(text);
    assert_string_equal(cfg->providers.specs[1].params[0].name, name);
    /* every printable character but the six, blanks inside included */
    assert_string_equal(cfg->providers.specs[1].params[0].value,
                        "Az09_.-:/=,!%&()*+<>?@[]^`{|}~ x");
    config_free(cfg);
    name[PROVIDER_PARAM_NAME_MAX] = 'n';
    name[PROVIDER_PARAM_NAME_MAX + 1] = '\0';
    (void)snprintf(text, sizeof(text), PRV "[provider tpm2]\n%s = v\n", name);
    parse_bad(text, -EINVAL, CERTD_E_FIELD_INVALID, 4, "is not a parameter name (1 to 63");

    /* the query with tpm2's terms appended: PROVIDER_QUERY_MAX characters, and one more */
    static const char terms[] = "tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes";
    char q[PROVIDER_QUERY_MAX + 2];
    size_t qlen = PROVIDER_QUERY_MAX - 1 - strlen(terms);
    memset(q, 'q', qlen);
    q[qlen] = '\0';
    (void)snprintf(text, sizeof(text), PRV "query = %s\n", q);
    cfg = parse_ok(text);
    assert_int_equal(strlen(cfg->providers.query), PROVIDER_QUERY_MAX);
    assert_non_null(strstr(cfg->providers.query, terms));
    config_free(cfg);
    q[qlen] = 'q';
    q[qlen + 1] = '\0';
    (void)snprintf(text, sizeof(text), PRV "query = %s\n", q);
    struct certd_err err = { 0 };
    cfg = NULL;
    assert_int_equal(config_parse(span_from_str(text), FILE_NAME, &cfg, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "t.conf:3: [providers] query: longer than 199 characters with "
                                    "tpm2's terms appended"));
    /* the same query alone is fine, as is one naming tpm2.digest (then used as it is) */
    (void)snprintf(text, sizeof(text), "[providers]\nquery = %s\n", q);
    cfg = parse_ok(text);
    assert_string_equal(cfg->providers.query, q);
    config_free(cfg);
    memcpy(q, "tpm2.digest", strlen("tpm2.digest"));
    (void)snprintf(text, sizeof(text), PRV "query = %s\n", q);
    cfg = parse_ok(text);
    assert_string_equal(cfg->providers.query, q);
    config_free(cfg);
}

static void test_config_providers(void **state)
{
    (void)state;
    need_tpm2();
    /* [provider tpm2] before [providers]; the swtpm TCTI form with its '=' and ',' */
    struct config *cfg = parse_ok("[provider tpm2]\ntcti = swtpm:host=127.0.0.1,port=2321\n"
                                  "parent-auth = file:/etc/certd/srk.auth\n"
                                  "[providers]\nload =  default , tpm2 \n");
    const struct config_providers *p = &cfg->providers;
    assert_int_equal(p->n, 2);
    assert_string_equal(p->specs[0].name, "default");
    assert_int_equal(p->specs[0].n_params, 0);
    assert_null(p->specs[0].params);
    assert_string_equal(p->specs[1].name, "tpm2");
    assert_int_equal(p->specs[1].n_params, 2);
    assert_string_equal(p->specs[1].params[0].name, "tcti");
    assert_string_equal(p->specs[1].params[0].value, "swtpm:host=127.0.0.1,port=2321");
    assert_string_equal(p->specs[1].params[1].name, "parent-auth");
    assert_string_equal(p->specs[1].params[1].value, "file:/etc/certd/srk.auth");
    /* tpm2's terms are the whole query: no hashing, ciphers or random numbers in the TPM */
    assert_string_equal(p->query, "tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes");
    /* signing with a TPM key goes through the TPM's signature */
    assert_string_equal(p->sign_query[1], "?tpm2.signature");
    assert_string_equal(p->sign_query[0], "?provider=default");
    assert_ptr_equal(config_provider_sign_query(cfg, "tpm2"), p->sign_query[1]);
    assert_string_equal(config_provider_sign_query(cfg, "default"), "?provider=default");
    assert_null(config_provider_sign_query(cfg, "fips"));
    assert_null(config_provider_sign_query(cfg, "tpm"));
    assert_null(config_provider_sign_query(cfg, NULL));
    assert_null(config_provider_sign_query(NULL, "tpm2"));
    /* the overrides move paths, nothing of the providers */
    assert_int_equal(config_apply_overrides(cfg, "/srv/p", "[::1]:1", NULL), 0);
    assert_int_equal(p->n, 2);
    assert_string_equal(p->specs[1].params[0].value, "swtpm:host=127.0.0.1,port=2321");
    assert_string_equal(p->query, "tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes");
    config_free(cfg);

    /* the kernel resource manager; the admin's query first, tpm2's terms after it */
    cfg = parse_ok(PRV "query = ?fips=no\n[provider tpm2]\ntcti = device:/dev/tpmrm0\n"
                       "sign_query = ?provider=tpm2,tpm2.signature\n");
    p = &cfg->providers;
    assert_string_equal(p->query, "?fips=no,tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes");
    assert_string_equal(p->specs[1].params[0].value, "device:/dev/tpmrm0");
    assert_int_equal(p->specs[1].n_params, 1);
    assert_string_equal(config_provider_sign_query(cfg, "tpm2"), "?provider=tpm2,tpm2.signature");
    config_free(cfg);

    /* queries are OpenSSL's syntax (quoted strings too); near misses of section names are values */
    cfg = parse_ok(PRV "query = fips=\"no\"\n[provider tpm2]\nsign_query = ?provider='tpm2'\n"
                       "a = certd_provider_\nb = certd_provider_x\nc = defaults\nmodule = "
                       "/usr/lib/x86_64-linux-gnu/ossl-modules/tpm2.so\n");
    p = &cfg->providers;
    assert_string_equal(p->query, "fips=\"no\",tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes");
    assert_string_equal(p->sign_query[1], "?provider='tpm2'");
    assert_int_equal(p->specs[1].n_params, 4);
    assert_string_equal(p->specs[1].params[3].name, "module");
    config_free(cfg);

    /* an admin's query naming tpm2.digest is the whole query */
    cfg = parse_ok(PRV "query = tpm2.digest!=yes\n");
    assert_string_equal(cfg->providers.query, "tpm2.digest!=yes");
    config_free(cfg);
    /* without tpm2 nothing is appended */
    cfg = parse_ok("[providers]\nload = default\nquery = ?provider=default\n");
    assert_int_equal(cfg->providers.n, 1);
    assert_string_equal(cfg->providers.query, "?provider=default");
    config_free(cfg);
    /* an empty [providers] is load = default */
    cfg = parse_ok("[providers]\n");
    assert_int_equal(cfg->providers.n, 1);
    assert_string_equal(cfg->providers.specs[0].name, "default");
    assert_null(cfg->providers.query);
    config_free(cfg);

    /* every provider this build has, in the order given; a section for any of them */
    cfg = parse_ok("[providers]\nload = default,fips,null,tpm2\n[provider null]\n"
                   "[provider default]\nx.Y-z_0 = 1\n");
    p = &cfg->providers;
    assert_int_equal(p->n, 4);
    static const char *const order[] = { "default", "fips", "null", "tpm2" };
    for (size_t i = 0; i < ELEMENTSOF(order); i++) {
        assert_string_equal(p->specs[i].name, order[i]);
    }
    assert_int_equal(p->specs[0].n_params, 1);
    assert_string_equal(p->specs[0].params[0].name, "x.Y-z_0");
    assert_int_equal(p->specs[2].n_params, 0);
    /* providers certd knows nothing about sign through their own implementations */
    assert_string_equal(p->sign_query[1], "?provider=fips");
    assert_string_equal(p->sign_query[2], "?provider=null");
    assert_string_equal(p->sign_query[3], "?tpm2.signature");
    assert_string_equal(p->query, "tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes");
    config_free(cfg);
}

static void test_config_uris(void **state)
{
    (void)state;
    need_tpm2();
    struct config *cfg =
        parse_ok(PRV "[endpoint web]\ntype = server\nkey = handle:0x81000001\n"
                     "cert = handle:0x01000010\nnew_key = tpm2:ec:P-256\nreload = self\n"
                     "[endpoint ldap]\ntype = client\nkey = object:/etc/certd/ldap.obj\n"
                     "new_key = tpm2:rsa:2048\n"
                     "[endpoint f]\ntype = client\ncert = file:///etc/f.pem\nkey = /etc/f.key\n"
                     "new_key = tpm2:ec:P-384\n"
                     "[endpoint p]\ntype = server\nkey = pkcs11:token=bmc;object=web\n"
                     "new_key = tpm2:ec\n"
                     "[ca]\nkey = handle:0x81000002\nnew_key = tpm2:ec:P-384\n");
    const struct config_endpoint *web = config_endpoint_find(cfg, "web");
    assert_non_null(web);
    assert_string_equal(web->key_uri, "handle:0x81000001");
    assert_string_equal(web->cert_uri, "handle:0x01000010");
    /* cert and key keep their default paths */
    assert_string_equal(web->cert, CONFIG_STATE_DIR_DEFAULT "/web/cert.pem");
    assert_string_equal(web->key, CONFIG_STATE_DIR_DEFAULT "/web/key.pem");
    assert_false(web->is_cert_given || web->is_key_given);
    assert_string_equal(web->new_key.provider, "tpm2");
    assert_int_equal(web->new_key.alg, KEY_ALG_EC);
    assert_string_equal(web->new_key.curve, "P-256");
    const struct config_endpoint *ldap = config_endpoint_find(cfg, "ldap");
    assert_string_equal(ldap->key_uri, "object:/etc/certd/ldap.obj");
    assert_null(ldap->cert_uri);
    assert_string_equal(ldap->key, CONFIG_STATE_DIR_DEFAULT "/ldap/key.pem");
    assert_int_equal(ldap->new_key.alg, KEY_ALG_RSA);
    assert_int_equal(ldap->new_key.bits, 2048);
    const struct config_endpoint *f = config_endpoint_find(cfg, "f");
    assert_null(f->cert_uri);
    assert_null(f->key_uri);
    assert_string_equal(f->cert, "/etc/f.pem");
    assert_string_equal(f->key, "/etc/f.key");
    assert_true(f->is_cert_given && f->is_key_given);
    /* a provider's own scheme, kept as written */
    const struct config_endpoint *pk = config_endpoint_find(cfg, "p");
    assert_string_equal(pk->key_uri, "pkcs11:token=bmc;object=web");
    assert_string_equal(cfg->ca.key_uri, "handle:0x81000002");
    assert_string_equal(cfg->ca.key, CONFIG_STATE_DIR_DEFAULT "/ca/ca-key.pem");
    assert_false(cfg->ca.is_key_given);
    assert_string_equal(cfg->ca.new_key.provider, "tpm2");
    assert_string_equal(cfg->ca.new_key.curve, "P-384");
    /* --state-dir moves the paths, never the URIs */
    assert_int_equal(config_apply_overrides(cfg, "/srv/u", NULL, NULL), 0);
    assert_string_equal(web->key, "/srv/u/web/key.pem");
    assert_string_equal(web->key_uri, "handle:0x81000001");
    assert_string_equal(ldap->key_uri, "object:/etc/certd/ldap.obj");
    assert_string_equal(cfg->ca.key_uri, "handle:0x81000002");
    assert_string_equal(cfg->ca.key, "/srv/u/ca/ca-key.pem");
    config_free(cfg);

    /* a TPM key made for an endpoint without a key URI: a TSS2 blob at the key path */
    cfg = parse_ok(PRV EPS "new_key = tpm2:rsa:3072\n");
    assert_null(cfg->endpoints[0].key_uri);
    assert_string_equal(cfg->endpoints[0].new_key.provider, "tpm2");
    assert_int_equal(cfg->endpoints[0].new_key.bits, 3072);
    config_free(cfg);
    /* a certificate in an NV index beside a key in a file */
    cfg = parse_ok(PRV EPC "cert = handle:0x01ffffff\nkey = /etc/k.pem\n");
    assert_string_equal(cfg->endpoints[0].cert_uri, "handle:0x01ffffff");
    assert_null(cfg->endpoints[0].key_uri);
    assert_string_equal(cfg->endpoints[0].key, "/etc/k.pem");
    config_free(cfg);

    /* an object: path that clashes only after --state-dir; all or nothing */
    cfg = parse_ok(PRV EPS "key = object:/srv/o/users\nnew_key = tpm2:ec\n");
    struct certd_err err = { 0 };
    assert_int_equal(config_apply_overrides(cfg, "/srv/o", NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "--state-dir: [endpoint e] key '/srv/o/users' is also "
                                    "[server] users_file"));
    assert_string_equal(cfg->state_dir, CONFIG_STATE_DIR_DEFAULT);
    assert_string_equal(cfg->users_file, CONFIG_STATE_DIR_DEFAULT "/users");
    assert_string_equal(cfg->endpoints[0].key_uri, "object:/srv/o/users");
    config_free(cfg);
}

static const struct bad_case uri_bad[] = {
    /* malformed handle: URIs (uri_check's rules) */
    INV(PRV EPS "key = handle:0x8100001\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV EPS "key = handle:0x810000011\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV EPS "key = handle:81000001\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV EPS "key = handle:0x8100000g\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV EPS "key = handle:\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV EPS "key = handle: 0x81000001\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV EPS "cert = handle:0x0100001\n", 5, "[endpoint e] cert: "),
    INV(PRV EPS "key = object:relative.obj\nnew_key = tpm2:ec\n", 5, "[endpoint e] key: "),
    INV(PRV CA "key = handle:0x8100000\nnew_key = tpm2:ec\n", 4, "[ca] key: "),
    /* a handle of the wrong TPM handle type (TPM 2.0 Part 2 §7.2) */
    INV(PRV EPS "key = handle:0x01000010\nnew_key = tpm2:ec\n", 5,
        "[endpoint e] key: a key handle: must be a persistent TPM object, 0x81000000 to "
        "0x81ffffff"),
    INV(PRV EPS "key = handle:0x80000001\nnew_key = tpm2:ec\n", 5, "key: a key handle: must be"),
    INV(PRV EPS "key = handle:0x40000001\nnew_key = tpm2:ec\n", 5, "key: a key handle: must be"),
    INV(PRV EPS "cert = handle:0x81000001\n", 5,
        "[endpoint e] cert: a certificate handle: must be a TPM NV index, 0x01000000 to "
        "0x01ffffff"),
    INV(PRV EPS "cert = handle:0x02000000\n", 5, "cert: a certificate handle: must be"),
    INV(PRV CA "key = handle:0x01000010\nnew_key = tpm2:ec\n", 4, "[ca] key: a key handle: must"),
    /* a key URI needs new_key with a provider, wherever new_key is */
    INV(PRV EPS "key = handle:0x81000001\n", 5,
        "[endpoint e] key: key = handle:0x81000001 needs new_key = PROVIDER:ALG, so that new "
        "keys for this endpoint are made where the key lives"),
    INV(PRV EPS "new_key = ec:P-256\nkey = object:/etc/certd/k.obj\n", 6,
        "[endpoint e] key: key = object:/etc/certd/k.obj needs new_key = PROVIDER:ALG"),
    INV(PRV EPC "key = pkcs11:token=bmc\nnew_key = rsa:3072\n", 5,
        "key: key = pkcs11:token=bmc needs new_key = PROVIDER:ALG"),
    INV(EPS "key = http://example.com/key.pem\n", 3,
        "[endpoint e] key: key = http://example.com/key.pem needs new_key = PROVIDER:ALG"),
    INV(PRV CA "key = handle:0x81000002\n", 4,
        "[ca] key: key = handle:0x81000002 needs new_key = PROVIDER:ALG, so that new keys for "
        "this CA are made where the key lives"),
    /* new_key's provider must be loaded */
    INV(EPS "new_key = tpm2:ec:P-256\n", 3,
        "[endpoint e] new_key: provider 'tpm2' is not in [providers] load"),
    INV("[providers]\nload = default,null\n" EPC "\nnew_key = tpm2:ec\n", 6,
        "[endpoint e] new_key: provider 'tpm2' is not in [providers] load"),
    INV(EPS "key = handle:0x81000001\nnew_key = tpm2:ec\n", 4,
        "new_key: provider 'tpm2' is not in [providers] load"),
    INV(CA "new_key = tpm2:ec:P-384\n", 2, "[ca] new_key: provider 'tpm2' is not in [providers]"),
    INV(CA "signer = off\nnew_key = tpm2:ec:P-384\n", 3, "[ca] new_key: provider 'tpm2' is not"),
    /* the CA key: only with signer = local; the CA certificate is a file */
    INV(PRV CA "key = handle:0x81000002\nnew_key = tpm2:ec\nsigner = exec:/usr/bin/sign\n", 4,
        "[ca] key: key is only for signer = local (an exec signer holds its own key)"),
    INV(PRV CA "signer = off\nkey = handle:0x81000002\nnew_key = tpm2:ec\n", 5,
        "[ca] key: a key URI is only for signer = local"),
    INV(PRV CA "cert = handle:0x01000010\n", 4,
        "[ca] cert: must be an absolute path or a file: URI (the CA certificate is a file)"),
    INV(CA "cert = object:/etc/ca.obj\n", 2, "[ca] cert: must be an absolute path or a file: URI"),
    /* certificates and keys by URI are for server and client endpoints */
    INV(PRV EPA "cert = handle:0x01000010\n", 5,
        "[endpoint e] cert: 'cert' is only for server and client endpoints"),
    INV(PRV EPA "key = object:/etc/k.obj\n", 5, "[endpoint e] key: 'key' is only for server"),
    /* an object: path takes part in the overlap checks */
    INV(PRV SRV "users_file = /etc/certd/users\n" EPS
                "key = object:/etc/certd/users\nnew_key = tpm2:ec\n",
        7, "[endpoint e] key '/etc/certd/users' is also [server] users_file"),
    INV(PRV EPS "key = object:/var/lib/certd/users\nnew_key = tpm2:ec\n", 5,
        "[endpoint e] key '/var/lib/certd/users' is also [server] users_file"),
    INV(PRV EPS "key = object:/var/lib/certd/uuid\nnew_key = tpm2:ec\n", 5,
        "[endpoint e] key '/var/lib/certd/uuid' is also certd's uuid file"),
    INV(PRV EPS "cert = object:/var/lib/certd/ca.db\n", 5,
        "[endpoint e] cert '/var/lib/certd/ca.db' is also certd's ca.db file"),
    INV(PRV EPS "key = object:/var/lib/certd/ca/ca-key.pem\nnew_key = tpm2:ec\n", 5,
        "[endpoint e] key '/var/lib/certd/ca/ca-key.pem' is also [ca] key"),
    INV(PRV "[endpoint t]\ntype = authority\ndir = /etc/trust\n" EPS
            "key = object:/etc/trust/k.obj\nnew_key = tpm2:ec\n",
        8, "[endpoint e] key '/etc/trust/k.obj' lies inside [endpoint t] dir '/etc/trust'"),
    /* not even its own endpoint's file: an object is no PEM */
    INV(PRV EPS "cert = /etc/w.pem\nkey = object:/etc/w.pem\nnew_key = tpm2:ec\n", 6,
        "[endpoint e] key '/etc/w.pem' is also [endpoint e] cert"),
    INV(PRV "[endpoint a]\ntype = server\nkey = /etc/a.key\n" EPS
            "key = object:/etc/a.key\nnew_key = tpm2:ec\n",
        8, "[endpoint e] key '/etc/a.key' is also [endpoint a] key"),
    INV(PRV "[endpoint a]\ntype = server\nkey = object:/etc/k.obj\nnew_key = tpm2:ec\n" EPC
            "key = object:/etc/k.obj\nnew_key = tpm2:ec\n",
        9, "[endpoint e] key '/etc/k.obj' is also [endpoint a] key"),
    INV(PRV CA "key = object:/var/lib/certd/users\nnew_key = tpm2:ec\n", 4,
        "[ca] key '/var/lib/certd/users' is also [server] users_file"),
    INV(PRV CA "cert = /etc/ca.pem\nkey = object:/etc/ca.pem\nnew_key = tpm2:ec\n", 5,
        "[ca] key '/etc/ca.pem' is also [ca] cert"),
    /* one handle or provider URI for one place */
    INV(PRV "[endpoint a]\ntype = server\nkey = handle:0x81000001\nnew_key = tpm2:ec\n"
            "[endpoint b]\ntype = client\nnew_key = tpm2:ec\nkey = handle:0x81000001\n",
        10, "[endpoint b] key 'handle:0x81000001' is also [endpoint a] key"),
    INV(PRV "[endpoint a]\ntype = server\nkey = handle:0x8100000A\nnew_key = tpm2:ec\n"
            "[endpoint b]\ntype = client\nnew_key = tpm2:ec\nkey = handle:0x8100000a\n",
        10, "[endpoint b] key 'handle:0x8100000a' is also [endpoint a] key"),
    INV(PRV "[endpoint a]\ntype = server\ncert = handle:0x01000010\n"
            "[endpoint b]\ntype = client\ncert = handle:0x01000010\n",
        8, "[endpoint b] cert 'handle:0x01000010' is also [endpoint a] cert"),
    INV(PRV CA "key = handle:0x81000001\nnew_key = tpm2:ec\n" EPS
               "key = handle:0x81000001\nnew_key = tpm2:ec\n",
        8, "[endpoint e] key 'handle:0x81000001' is also [ca] key"),
    INV(PRV "[endpoint a]\ntype = server\nkey = pkcs11:object=k\nnew_key = tpm2:ec\n" EPC
            "key = pkcs11:object=k\nnew_key = tpm2:ec\n",
        9, "[endpoint e] key 'pkcs11:object=k' is also [endpoint a] key"),
};

static void test_config_uris_bad(void **state)
{
    (void)state;
    need_tpm2();
    for (size_t i = 0; i < ELEMENTSOF(uri_bad); i++) {
        const struct bad_case *c = &uri_bad[i];
        parse_bad(c->text, c->r, c->code, c->line, c->word);
    }
    /* different handles, NV index and object are fine side by side */
    config_free(parse_ok(PRV "[endpoint a]\ntype = server\nkey = handle:0x81000001\n"
                             "cert = handle:0x01000001\nnew_key = tpm2:ec\n"
                             "[endpoint b]\ntype = client\nkey = handle:0x81000002\n"
                             "cert = handle:0x01000002\nnew_key = tpm2:ec\n"
                             "[ca]\nkey = object:/etc/ca.obj\nnew_key = tpm2:ec\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_bad_values),
        cmocka_unit_test(test_config_good_values),
        cmocka_unit_test(test_config_server_values),
        cmocka_unit_test(test_config_endpoint_values),
        cmocka_unit_test(test_config_ca_values),
        cmocka_unit_test(test_config_limits),
        cmocka_unit_test(test_config_text_checks),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_overrides),
        cmocka_unit_test(test_config_path_clashes),
        cmocka_unit_test(test_config_tls_bad),
        cmocka_unit_test(test_config_dbus),
        cmocka_unit_test(test_config_tls_values),
        cmocka_unit_test(test_config_pins),
        cmocka_unit_test(test_config_pins_overrides),
        cmocka_unit_test(test_config_load),
        cmocka_unit_test(test_config_example),
        cmocka_unit_test(test_config_packaged),
        cmocka_unit_test(test_config_providers_build),
        cmocka_unit_test(test_config_providers_bad),
        cmocka_unit_test(test_config_providers_limits),
        cmocka_unit_test(test_config_providers),
        cmocka_unit_test(test_config_uris),
        cmocka_unit_test(test_config_uris_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
