/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus.c's pure helpers (dbus-int.h): Issuer / Subject as upstream shows them, the error name
 * table, the text that caller strings become in messages, and what pldmd may write to a VMI CA
 * entry in host mode. The bus itself is tested end to end (tests/integration/test_dbus.py).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "ca.h"
#include "daemon.h"
#include "dbus-int.h"
#include "error/error.h"
#include "testutil.h"

/* main.c defines it; dbus.c calls it only after a change, which no test here makes. */
void daemon_endpoint_changed(struct daemon *d, struct endpoint *ep,
                             const struct manager_change *change, notifier_done_fn done, void *arg)
{
    (void)d;
    (void)ep;
    (void)change;
    (void)done;
    (void)arg;
    fail_msg("daemon_endpoint_changed is not reached by these tests");
}

/* ---- dbus_error_name ---- */

static void test_error_names(void **state)
{
    (void)state;
    static const struct {
        enum certd_errc code;
        const char *name;
    } cases[] = {
        { CERTD_E_OK, DBUS_E_INTERNAL_FAILURE },
        { CERTD_E_INPUT_EMPTY, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_INPUT_GARBAGE, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_NO_CERT, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_KEY_MISMATCH, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_KEY_MISSING, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_CERT_EXPIRED, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_NOT_CA, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_CHAIN_ORDER, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_INPUT_TOO_LARGE, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_FIELD_INVALID, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_FIELD_MISSING, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_ALG_UNSUPPORTED, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_CURVE_UNSUPPORTED, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_SAN_INVALID, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_KEY_USAGE_INVALID, DBUS_E_INVALID_ARGUMENT },
        /* What csr_check_request refuses GenerateCSR's arguments with: never InternalFailure. */
        { CERTD_E_TOO_MANY_VALUES, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_FIELD_TOO_LONG, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_KEY_SIZE_UNSUPPORTED, DBUS_E_INVALID_ARGUMENT },
        { CERTD_E_CERT_BAD, DBUS_E_INVALID_CERTIFICATE },
        { CERTD_E_IN_USE, DBUS_E_NOT_ALLOWED },
        { CERTD_E_POLICY_FORBIDS, DBUS_E_NOT_ALLOWED },
        { CERTD_E_KEY_NOT_ALLOWED, DBUS_E_NOT_ALLOWED },
        { CERTD_E_DUPLICATE, DBUS_E_NOT_ALLOWED },
        { CERTD_E_LIMIT_REACHED, DBUS_E_NOT_ALLOWED },
        { CERTD_E_NOT_FOUND, DBUS_E_RESOURCE_NOT_FOUND },
        { CERTD_E_UNAVAILABLE, DBUS_E_UNAVAILABLE },
        { CERTD_E_STORAGE, DBUS_E_INTERNAL_FAILURE },
        { CERTD_E_NO_MEMORY, DBUS_E_INTERNAL_FAILURE },
        { CERTD_E_INTERNAL, DBUS_E_INTERNAL_FAILURE },
        { CERTD_E_SIGNER_FAILED, DBUS_E_INTERNAL_FAILURE },
        { CERTD_E_MAX, DBUS_E_INTERNAL_FAILURE },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const char *got = dbus_error_name(cases[i].code);
        if (strcmp(got, cases[i].name) != 0) {
            fail_msg("%s: got %s, want %s", err_code_name(cases[i].code), got, cases[i].name);
        }
    }
    /* Every code has an upstream name, and only an input error is blamed on the certificate;
     * InternalFailure is left to the internal class (and no code). */
    for (int c = 0; c < CERTD_E_MAX; c++) {
        const char *got = dbus_error_name((enum certd_errc)c);
        enum certd_errclass cls = err_code_class((enum certd_errc)c);
        if (strcmp(got, DBUS_E_INVALID_CERTIFICATE) == 0) {
            assert_int_equal(cls, CERTD_CLASS_INVALID_INPUT);
        }
        if (strcmp(got, DBUS_E_INTERNAL_FAILURE) == 0) {
            assert_true(cls == CERTD_CLASS_INTERNAL || cls == CERTD_CLASS_UPSTREAM ||
                        cls == CERTD_CLASS_NONE);
        }
    }
}

/* ---- dbus_text_safe ---- */

static void test_text_safe(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t size;
        const char *expected;
    } cases[] = {
        { "/tmp/cert.pem", 64, "/tmp/cert.pem" },
        { NULL, 8, "" },
        { "", 8, "" },
        { "a\nb", 64, "a\\x0Ab" },
        { "\x1b[31m", 64, "\\x1B[31m" },
        { "x\xc2\x85y", 64, "x\\xC2\\x85y" }, /* C1 NEL, one escape per byte */
        { "bad\xff\xfe", 64, "bad\\xFF\\xFE" },
        { "\xc3(", 64, "\\xC3(" }, /* a broken sequence: its byte alone */
        { "M\xc3\xbcller", 64, "M\xc3\xbcller" },
        /* Cut at character boundaries, never inside a character or an escape. */
        { "abcdef", 4, "abc" },
        { "ab\xc3\xbc", 4, "ab" },
        { "ab\n", 6, "ab" },
        { "abc", 1, "" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char out[64];
        memset(out, 'Z', sizeof(out));
        dbus_text_safe(cases[i].in, out, cases[i].size);
        if (strcmp(out, cases[i].expected) != 0) {
            fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].expected);
        }
        assert_true(strlen(out) < cases[i].size);
    }
}

/* ---- replies and signals without a connection ---- */

/*
 * A call whose connection is gone has nobody to answer: the reply helpers say "handled" (1),
 * the value a method handler returns, and never 0 (check_file_arg once read 0 as "the argument
 * is fine" and went on). Signals without a connection are dropped quietly.
 */
static void test_no_connection(void **state)
{
    (void)state;
    const struct dbus_conn conn = { .d = NULL, .sd = NULL, .ev = NULL };
    struct certd_err err = { 0 };
    char iface[] = "xyz.openbmc_project.Certs.Certificate";
    char *ifaces[] = { iface, NULL };

    assert_null(dbus_conn_bus(&conn));
    assert_int_equal(dbus_reply_errorf(&conn, NULL, DBUS_E_INVALID_ARGUMENT, "Path %s", "x"), 1);
    (void)err_set(&err, -EINVAL, CERTD_E_FIELD_INVALID, "bad");
    assert_int_equal(dbus_reply_err(&conn, NULL, &err), 1);
    assert_int_equal(dbus_reply_err(&conn, NULL, NULL), 1);
    dbus_emit_added(&conn, "/xyz/openbmc_project/certs/server/https/1", ifaces);
    dbus_emit_removed(&conn, "/xyz/openbmc_project/certs/server/https/1", ifaces);
    dbus_emit_changed(&conn, "/xyz/openbmc_project/certs/server/https/1", iface, NULL);
    dbus_conn_kick(&conn);
    dbus_conn_kick(NULL);
    sd_bus_slot *slots[3] = { NULL, NULL, NULL };
    dbus_slots_drop(NULL, slots, ELEMENTSOF(slots)); /* nothing held: sd is never used */
}

/* ---- host mode: ClientCertificate as pldmd writes it ---- */

/* fixture NAME, or when NAME is NULL, text; padded with spaces to pad bytes when pad > 0. */
static char *cc_input(const char *name, const char *text, size_t pad, size_t *ret_len)
{
    size_t len = 0;
    char *v = name ? (char *)fixture_read(name, &len) : tu_strf("%s", text);
    if (!name) {
        len = strlen(v);
    }
    if (pad > len) {
        char *p = realloc(v, pad + 1);
        assert_non_null(p);
        memset(p + len, ' ', pad - len);
        p[pad] = '\0';
        v = p;
        len = pad;
    }
    *ret_len = len;
    return v;
}

static void test_client_cert(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *fixture; /* or text */
        const char *text;
        size_t pad; /* spaces after it up to this many bytes (white space after PEM is fine) */
        int r;
        enum certd_errc code;
        const char *word;
        size_t n_certs;
    } cases[] = {
        { "empty: no answer yet", NULL, "", 0, 0, CERTD_E_OK, NULL, 0 },
        { "one certificate", "server-ec.pem", NULL, 0, 0, CERTD_E_OK, NULL, 1 },
        { "leaf and chain", "server-ec-chain.pem", NULL, 0, 0, CERTD_E_OK, NULL, 2 },
        { "at the limit", "server-ec.pem", NULL, CA_EXEC_OUT_MAX, 0, CERTD_E_OK, NULL, 1 },
        { "one byte over the limit", "server-ec.pem", NULL, CA_EXEC_OUT_MAX + 1, -E2BIG,
          CERTD_E_INPUT_TOO_LARGE, "longer", 0 },
        { "a private key with it", "server-ec-bundle.pem", NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID,
          "private key", 0 },
        { "DER", "server-ec.der", NULL, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "PEM", 0 },
        { "text", NULL, "not a certificate", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "neither PEM", 0 },
        { "white space only", NULL, " \n", 0, -EINVAL, CERTD_E_INPUT_EMPTY, "empty", 0 },
        { "a CSR", NULL,
          "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n", 0,
          -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL, "CERTIFICATE REQUEST", 0 },
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        size_t len = 0;
        size_t n = 99;
        struct certd_err err = { 0 };
        char *v = cc_input(cases[i].fixture, cases[i].text, cases[i].pad, &len);
        int r = dbus_ca_check_client_cert(NULL, NULL, v, len, &n, &err);
        if (r != cases[i].r || err.code != cases[i].code ||
            (cases[i].word && !strstr(err.msg, cases[i].word)) ||
            (r == 0 && n != cases[i].n_certs) || (r < 0 && n != 99)) {
            fail_msg("%s: r=%d code=%s msg='%s' n=%zu", cases[i].what, r, err_code_name(err.code),
                     err.msg, n);
        }
        free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_text_safe),
        cmocka_unit_test(test_no_connection),
        cmocka_unit_test(test_client_cert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
