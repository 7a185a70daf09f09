/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl: the command-line tool over libcertd (and, for `ca`, certd's own CA module). Each
 * subcommand lives in cmd-*.c; this header holds what they share: the exit-code table, input
 * reading and option helpers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error/error.h"
#include "keys/keys.h"
#include "util/cleanup.h"

/* Exit codes (documented in certctl(1) and --help). */
enum {
    EXIT_OK = 0,
    EXIT_INVALID = 1,  /* the input was judged and rejected (invalid, not allowed, conflict) */
    EXIT_USAGE = 2,    /* bad command line */
    EXIT_IO = 3,       /* a file could not be read or written, or an internal failure */
    EXIT_NOT_FOUND = 4 /* a named object does not exist */
};

/* The process-wide library context and property query (from --propq). */
struct cli_ctx {
    OSSL_LIB_CTX *libctx;
    const char *propq;
};

/* Map an error record to an exit code (one table, in certctl.c). */
int exit_code_for(const struct certd_err *err);

/*
 * Print "certctl: <what>: <message>" to stderr for err and return its exit code. Never prints
 * OpenSSL's text or key material.
 */
int cli_fail(const char *what, const struct certd_err *err);
/* Print a usage error ("certctl <cmd>: ...", then a hint) and return EXIT_USAGE. */
_printf_(2, 3) int cli_usage_error(const char *cmd, const char *fmt, ...);
/* The one operand after the options (argv[optind]) in *ret: 0, or the usage error's exit code
 * when it is missing (missing: what to say, e.g. "the serial number is missing") or followed by
 * another. */
int cli_one_operand(const char *cmd, int argc, char **argv, const char *missing, const char **ret);

/*
 * Read a whole file ("-" = stdin) of at most max bytes. Returns 0, or a negative errno with err
 * filled (CERTD_E_INPUT_TOO_LARGE for -E2BIG, CERTD_E_NOT_FOUND, CERTD_E_STORAGE).
 */
_must_check_ int cli_read_input(const char *path, size_t max, uint8_t **ret, size_t *ret_len,
                                struct certd_err *err);

/* Parse a number option; prints a usage error itself. 0 or EXIT_USAGE. */
_must_check_ int cli_parse_number(const char *cmd, const char *opt, const char *s, uint64_t min,
                                  uint64_t max, uint64_t *ret);

struct bundle;
/*
 * Read a file ("-" = stdin) of at most CERTD_INPUT_MAX_DEFAULT bytes and parse it with
 * libcertd's bundle parser; the bytes read are wiped (the file may hold a key). what names the
 * file in the parser's message ("--cacert FILE: ..."). 0 and an owned bundle, or a negative
 * errno with err (cli_read_input's errors, bundle_parse's).
 */
_must_check_ int cli_read_bundle(const struct cli_ctx *ctx, const char *path, const char *what,
                                 struct bundle **ret, struct certd_err *err);

/* Load the first private key of a PEM file (unencrypted) through libcertd's bundle parser. */
_must_check_ int cli_load_key(const struct cli_ctx *ctx, const char *path, EVP_PKEY **ret,
                              struct certd_err *err);

struct secret;
/*
 * Read the first line of a file ("-" = stdin) as a secret (a password): the line without its
 * terminator, at most max bytes (a longer file is -E2BIG, CERTD_E_INPUT_TOO_LARGE). `what`
 * names it in messages ("the password"). Every copy is wiped. 0 and an owned secret, or a
 * negative errno with err (as cli_read_input; -EINVAL CERTD_E_FIELD_INVALID for a NUL byte).
 */
_must_check_ int cli_read_secret_line(const char *path, size_t max, const char *what,
                                      struct secret **ret, struct certd_err *err);

int cmd_info(const struct cli_ctx *ctx, int argc, char **argv);
int cmd_csr(const struct cli_ctx *ctx, int argc, char **argv);
int cmd_selfsign(const struct cli_ctx *ctx, int argc, char **argv);
int cmd_verify(const struct cli_ctx *ctx, int argc, char **argv);
int cmd_user(const struct cli_ctx *ctx, int argc, char **argv);
/* certd's local CA (cmd-ca.c) and a console's enrollment over HTTPS (cmd-enroll.c). */
int cmd_ca(const struct cli_ctx *ctx, int argc, char **argv);
int cmd_enroll(const struct cli_ctx *ctx, int argc, char **argv);
/* Pin stores (issue #6): a store file, or certd's PinnedPeers API (cmd-pin.c). */
int cmd_pin(const struct cli_ctx *ctx, int argc, char **argv);
