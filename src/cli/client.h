/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl's client of certd (and of a BMC's API): one HTTPS request per connection over a
 * blocking socket with timeouts, the answer parsed by http-parser and jansson, the server's
 * texts cleaned before they reach a terminal. Every subcommand that talks to certd (enroll,
 * pin --url) takes the same options for how the server is trusted and how we authenticate, and
 * parses them here:
 *
 *   --cacert FILE | (the system's CAs)  the chain and the URL's host name are verified;
 *   --insecure                           nothing is verified (a warning says so);
 *   --pin PIN (repeatable)               the server's key must have one of these SPKI pins
 *                                        (pin/pin.h): CA-less trust (issue #6, seed 004),
 *                                        chain, issuer, dates and host name are NOT checked;
 *   --known-hosts FILE [--tofu]          the pins come from FILE's line for HOST:PORT; a host
 *                                        without a line fails closed unless --tofu records
 *                                        the pin it sees (trust on first use);
 *   --client-cert FILE [--client-key FILE]  a client certificate for mutual TLS (certd may map
 *                                        its pin to a user: --user/--password-file are then
 *                                        optional);
 *   --user NAME, --password-file FILE    Basic authentication.
 *
 * Pinned verification happens inside the handshake (the verify callback) and is checked again
 * after it, before any byte of a request (the password!) is written.
 *
 * Known-hosts file: UTF-8 text lines "HOST:PORT PIN [PIN...]"; '#' starts a comment line;
 * blank lines are skipped. HOST is spelt as in URLs: a DNS name (case does not matter), an
 * IPv4 address or an IPv6 address in brackets; PORT is always given. Several pins on a line
 * are the keys the host may have during a rotation. Every line must parse: a broken file
 * fails closed ("FILE line N: ...") rather than being read in part. A host on two lines is an
 * error too. The file decides whom certctl trusts, so it is read only when it is a regular
 * file (never through a symlink), owned by the user or root and not writable by group or
 * others. --tofu rewrites the file atomically (a new file renamed over it, at the path given,
 * mode 0600 when it is new, the old mode otherwise) with one line appended, holding the lock
 * "FILE.lock" from reading it again to writing it, so concurrent runs never lose a line.
 *
 * Secrets: the password and the Authorization header live in wiped buffers; client key
 * material exists only as an EVP_PKEY inside the TLS context. None of them is ever printed.
 * Not thread-safe; one struct client per thread.
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "certctl.h"
#include "pin/pin.h"

/* --pin options, and pins on one known-hosts line: a few keys in rotation, never hundreds. */
#define CLIENT_PINS_MAX 16u
/* Largest known-hosts file read: ~100 bytes a line, thousands of hosts. */
#define CLIENT_KNOWN_HOSTS_MAX (1024u * 1024u)
/* A JSON answer's body at most: a SignCSR answer or a page of pins is a few KiB. */
#define CLIENT_BODY_MAX (1024u * 1024u)
/*
 * What jansson may be given (json_text_bounds, before it sees a byte): nesting and values.
 * Redfish bodies nest a few levels. The largest answer is a PinnedPeers collection of
 * PINSTORE_MAX (1000) members, which certd lists as links: two values a member (its '{' and
 * the ',' before the next), some 2010 in all with the envelope; 4096 leaves twice that
 * (client.c asserts it). Without a bound, a 1 MiB body of "[0,0,0,..." would have jansson
 * build half a million values, tens of MiB.
 */
#define CLIENT_JSON_DEPTH_MAX  16u
#define CLIENT_JSON_VALUES_MAX 4096u

/* Option values of getopt_long for the shared options (struct option: CLIENT_LONG_OPTIONS). */
enum {
    CLIENT_OPT_CACERT = 0x200,
    CLIENT_OPT_INSECURE,
    CLIENT_OPT_PIN,
    CLIENT_OPT_KNOWN_HOSTS,
    CLIENT_OPT_TOFU,
    CLIENT_OPT_CLIENT_CERT,
    CLIENT_OPT_CLIENT_KEY,
    CLIENT_OPT_USER,
    CLIENT_OPT_PASSWORD_FILE,
    CLIENT_OPT_MAX
};

/*
 * The struct option entries of the shared options, for a subcommand's table. The account's
 * option is the subcommand's to name (enroll: --user; pin, where --user names a pinned peer's
 * user: --login), with the value CLIENT_OPT_USER.
 */
/* One entry a line: the formatter would indent all but the first. */
/* clang-format off */
#define CLIENT_LONG_OPTIONS                                                 \
    { "cacert", required_argument, NULL, CLIENT_OPT_CACERT },               \
    { "insecure", no_argument, NULL, CLIENT_OPT_INSECURE },                 \
    { "pin", required_argument, NULL, CLIENT_OPT_PIN },                     \
    { "known-hosts", required_argument, NULL, CLIENT_OPT_KNOWN_HOSTS },     \
    { "tofu", no_argument, NULL, CLIENT_OPT_TOFU },                         \
    { "client-cert", required_argument, NULL, CLIENT_OPT_CLIENT_CERT },     \
    { "client-key", required_argument, NULL, CLIENT_OPT_CLIENT_KEY },       \
    { "password-file", required_argument, NULL, CLIENT_OPT_PASSWORD_FILE }
/* clang-format on */

/* The shared options as given; borrowed strings point into argv. Zero-initialise. */
struct client_opts {
    const char *cacert;
    bool is_insecure;
    struct pin pins[CLIENT_PINS_MAX];
    size_t n_pins;
    const char *known_hosts;
    bool is_tofu;
    const char *client_cert;
    const char *client_key;
    const char *user;          /* NULL: not given */
    const char *user_opt;      /* the account option's name in messages; NULL: "--user" */
    const char *password_file; /* NULL: not given ("-" = standard input) */
};

/*
 * Take option c (a getopt_long result) with argument arg when it is a CLIENT_OPT_*: returns 0
 * when taken, EXIT_USAGE when its argument is wrong (a malformed --pin, too many: the usage
 * error is printed, naming cmd), -ENOENT when c is not a shared option.
 */
int client_opt_take(const char *cmd, int c, const char *arg, struct client_opts *o);

/*
 * Print the help lines of the shared options (for a subcommand's --help); user_opt names the
 * account's option ("--user", "--login").
 */
void client_opts_usage(FILE *f, const char *user_opt);

/* One parsed answer. Free with client_answer_done (a zeroed struct is fine). */
struct client_answer {
    unsigned status;
    char *body; /* NUL-terminated, len bytes, NULL when there was no body */
    size_t len;
    char retry_after[16]; /* digits of Retry-After, "" when absent */
};
void client_answer_done(struct client_answer *a);

struct client;

/*
 * Prepare a client of url (https://HOST[:PORT][/PATH]) for subcommand cmd ("enroll", "pin"):
 * check the options (exclusions, --tofu needs --known-hosts, --client-key needs
 * --client-cert), read the password (--password-file FILE, or standard input when it is not
 * a terminal) unless a client certificate is given without --user/--password-file,
 * (default_user: the account when --user is not given, e.g. "admin"), load --cacert, the
 * client certificate and key and the known-hosts line of the URL's host. Nothing is sent.
 * Returns 0 and an owned client, or an exit code with its message printed (EXIT_USAGE for a
 * bad URL or option; cli_fail's code for a file that cannot be read or used).
 */
int client_new(const struct cli_ctx *ctx, const char *cmd, const char *url,
               const struct client_opts *o, const char *default_user, struct client **ret);
struct client *client_free(struct client *c);
DEFINE_CLEANUP_STRUCT(client, client_free)

/* The URL's host, as it will appear in messages ("h", "192.0.2.1", "::1"); borrowed. */
const char *client_host(const struct client *c);

/*
 * Send method path (appended to the URL's path) with an optional JSON body (body_len bytes;
 * NULL for none) on a new connection, and read the answer (at most CLIENT_BODY_MAX bytes of
 * body) into *ret (the caller frees it with client_answer_done; untouched on failure).
 * Errors, with err: -ETIMEDOUT/-EHOSTUNREACH/-ECONNREFUSED/-EPROTO/-EPIPE CERTD_E_UNAVAILABLE
 * (network, TLS); -EKEYREJECTED CERTD_E_POLICY_FORBIDS when the server is not trusted (the
 * chain or name did not verify, or its key pin is not one expected: then client_fail prints
 * the expected and actual pins and how to update them; with --tofu also when another run
 * recorded a different pin for the host meanwhile); -EBADMSG/-E2BIG CERTD_E_SIGNER_FAILED
 * for an answer that is not HTTP or too large; -ENOMEM; with --tofu, nothing sent then: -EPERM
 * CERTD_E_POLICY_FORBIDS for a known-hosts file that is not safe to trust (a symlink, not
 * ours, group/other writable), -EBADMSG for one that became malformed, -errno
 * CERTD_E_STORAGE when the pin could not be recorded.
 */
_must_check_ int client_request(struct client *c, const char *method, const char *path,
                                const char *body, size_t body_len, struct client_answer *ret,
                                struct certd_err *err);

/* What an HTTP failure means for the request at hand: shown after "HTTP 403: ". */
struct client_meanings {
    const char *unauthorized; /* 401; NULL: a default */
    const char *forbidden;    /* 403 */
    const char *not_found;    /* 404 */
    const char *conflict;     /* 409 */
};

/*
 * The error of an answer that is not 2xx, into err: "WHAT HOST: HTTP N: meaning: the server's
 * message (retry after N s)". 401/403: CERTD_E_POLICY_FORBIDS; 404: CERTD_E_NOT_FOUND; 409:
 * CERTD_E_DUPLICATE when the server's message says "already in the store",
 * CERTD_E_LIMIT_REACHED with Base's CreateLimitReachedForResource, CERTD_E_IN_USE otherwise;
 * 429/503: CERTD_E_UNAVAILABLE; other 4xx CERTD_E_FIELD_INVALID; 5xx CERTD_E_SIGNER_FAILED.
 * j (nullable) is the parsed body, m (nullable) the meanings. Returns the negative errno it
 * recorded.
 */
int client_http_failure(const struct client *c, const char *what, const struct client_answer *a,
                        json_t *j, const struct client_meanings *m, struct certd_err *err);

/*
 * The JSON object of a 2xx answer into *ret (owned); any other status is client_http_failure;
 * a 2xx body over CLIENT_JSON_DEPTH_MAX/CLIENT_JSON_VALUES_MAX is -E2BIG, one that is not a
 * JSON object -EBADMSG, both CERTD_E_SIGNER_FAILED. Bodies are bounded before they are parsed.
 */
_must_check_ int client_answer_json(const struct client *c, const char *what,
                                    const struct client_answer *a, const struct client_meanings *m,
                                    json_t **ret, struct certd_err *err);

/*
 * For an answer whose body is not needed (DELETE): 0 when it is 2xx, otherwise
 * client_http_failure with the body parsed (bounded) for the server's message.
 */
_must_check_ int client_answer_ok(const struct client *c, const char *what,
                                  const struct client_answer *a, const struct client_meanings *m,
                                  struct certd_err *err);

/*
 * Copy printable ASCII of s into buf (size > 0; control and non-ASCII bytes become '?', at
 * most CLIENT_TEXT_MAX characters): how the server's words reach a terminal.
 */
#define CLIENT_TEXT_MAX 400u
void client_clean_text(const char *s, char *buf, size_t size);

/*
 * Print a failure of an exchange with c: "certctl: WHAT: MESSAGE (code)", or for a server
 * whose key pin was not accepted, the long message with the expected and actual pins and how
 * to update them, "certctl: https://HOST:PORT: ...". Returns the exit code (exit_code_for).
 */
int client_fail(const struct client *c, const char *what, const struct certd_err *err);
