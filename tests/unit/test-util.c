/* SPDX-License-Identifier: Apache-2.0 */
/* util/: cursors, strict number parsing, overflow helpers, secrets, base64. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "util/base64.h"
#include "util/parse.h"
#include "util/secret.h"
#include "util/span.h"

static void test_parse_u64_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint64_t min, max;
        int r;
        uint64_t v;
    } cases[] = {
        { "0", 0, 10, 0, 0 },
        { "10", 0, 10, 0, 10 },
        { "11", 0, 10, -ERANGE, 0 },
        { "4", 5, 10, -ERANGE, 0 },
        { "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
        { "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
        { "", 0, 10, -EINVAL, 0 },
        { "-1", 0, 10, -EINVAL, 0 },
        { "+1", 0, 10, -EINVAL, 0 },
        { " 1", 0, 10, -EINVAL, 0 },
        { "1 ", 0, 10, -EINVAL, 0 },
        { "1x", 0, 10, -EINVAL, 0 },
        { "007", 0, 10, -EINVAL, 0 },
        { "0x1", 0, 10, -EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int r = parse_u64(cases[i].in, cases[i].min, cases[i].max, &v);
        assert_int_equal(r, cases[i].r);
        /* Output parameters are written only on success. */
        assert_int_equal(v, r == 0 ? cases[i].v : 12345);
    }
}

static void test_size_ops(void **state)
{
    (void)state;
    size_t r = 7;
    assert_true(size_add(1, 2, &r));
    assert_int_equal(r, 3);
    assert_false(size_add(SIZE_MAX, 1, &r));
    assert_int_equal(r, 3);
    assert_true(size_mul(3, 4, &r));
    assert_int_equal(r, 12);
    assert_false(size_mul(SIZE_MAX / 2 + 1, 2, &r));
    assert_int_equal(r, 12);
}

static void test_cursor(void **state)
{
    (void)state;
    static const uint8_t data[] = { 0x01, 0x02, 0x03, 'a', '\r', '\n', 'b' };
    struct cursor c = cur_init(span_make(data, sizeof(data)));
    uint8_t b;
    uint16_t w;
    struct span s;

    assert_int_equal(cur_u8(&c, &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(cur_be16(&c, &w), 0);
    assert_int_equal(w, 0x0203);
    assert_int_equal(cur_line(&c, &s), 0);
    assert_true(span_eq(s, span_from_str("a")));
    assert_int_equal(cur_line(&c, &s), 0);
    assert_true(span_eq(s, span_from_str("b")));
    /* Exhausted: every reader fails and leaves the cursor where it was. */
    size_t pos = c.pos;
    assert_int_equal(cur_u8(&c, &b), -EBADMSG);
    assert_int_equal(cur_be16(&c, &w), -EBADMSG);
    assert_int_equal(cur_line(&c, &s), -EBADMSG);
    assert_int_equal(cur_bytes(&c, 1, &s), -EBADMSG);
    assert_int_equal(cur_skip(&c, 1), -EBADMSG);
    assert_int_equal(c.pos, pos);

    /* A read past the end fails without moving. */
    struct cursor d = cur_init(span_make(data, 1));
    assert_int_equal(cur_be16(&d, &w), -EBADMSG);
    assert_int_equal(d.pos, 0);
    assert_int_equal(cur_bytes(&d, 2, &s), -EBADMSG);
    assert_int_equal(d.pos, 0);
}

static void test_span_nul(void **state)
{
    (void)state;
    static const uint8_t with_nul[] = { 'a', 0, 'b' };
    assert_true(span_has_nul(span_make(with_nul, 3)));
    assert_false(span_has_nul(span_from_str("abc")));
    assert_false(span_has_nul(SPAN_EMPTY));
}

static void test_secret(void **state)
{
    (void)state;
    struct secret *s = secret_new("key material", 12);
    assert_non_null(s);
    assert_int_equal(s->len, 12);
    assert_memory_equal(s->p, "key material", 12);
    assert_int_equal(s->p[12], 0);
    assert_null(secret_free(s));
    assert_null(secret_free(NULL));
}

static void test_str_case_eq(void **state)
{
    (void)state;
    assert_true(str_case_eq("TPM_ALG_RSA", "tpm_alg_rsa"));
    assert_false(str_case_eq("rsa", "rsa2"));
    assert_false(str_case_eq("rsa2", "rsa"));
}

static void test_hex_digit_value(void **state)
{
    (void)state;
    assert_int_equal(hex_digit_value('0'), 0);
    assert_int_equal(hex_digit_value('9'), 9);
    assert_int_equal(hex_digit_value('a'), 10);
    assert_int_equal(hex_digit_value('F'), 15);
    assert_int_equal(hex_digit_value('g'), -1);
    assert_int_equal(hex_digit_value('/'), -1);
    assert_int_equal(hex_digit_value(':'), -1);
    assert_int_equal(hex_digit_value('@'), -1);
    assert_int_equal(hex_digit_value('`'), -1);
    assert_int_equal(hex_digit_value('\0'), -1);
}

/* Decoding: RFC 4648 §10's vectors, and everything the strict decoder must refuse. */
static void test_base64_decode_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t in_len; /* 0: strlen */
        unsigned flags;
        size_t size; /* room given to the decoder */
        int r;
        const char *out; /* decoded, on success */
    } cases[] = {
        /* RFC 4648 §10 */
        { "Zg==", 0, 0, 16, 0, "f" },
        { "Zm8=", 0, 0, 16, 0, "fo" },
        { "Zm9v", 0, 0, 16, 0, "foo" },
        { "Zm9vYg==", 0, 0, 16, 0, "foob" },
        { "Zm9vYmE=", 0, 0, 16, 0, "fooba" },
        { "Zm9vYmFy", 0, 0, 16, 0, "foobar" },
        { "+/+/", 0, 0, 16, 0, "\xfb\xff\xbf" },
        /* nothing */
        { "", 0, 0, 16, -EBADMSG, NULL },
        { " \n", 0, BASE64_SKIP_BLANKS, 16, -EBADMSG, NULL },
        /* partial quanta, misplaced or extra padding */
        { "Zm9", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9vY", 0, 0, 16, -EBADMSG, NULL },
        { "Zg=", 0, 0, 16, -EBADMSG, NULL },
        { "Zg===", 0, 0, 16, -EBADMSG, NULL },
        { "Z===", 0, 0, 16, -EBADMSG, NULL },
        { "====", 0, 0, 16, -EBADMSG, NULL },
        { "=Zm9", 0, 0, 16, -EBADMSG, NULL },
        { "Zg=A", 0, 0, 16, -EBADMSG, NULL },
        { "Zg==Zm9v", 0, 0, 16, -EBADMSG, NULL },
        { "Zm8=Zm8=", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9v=", 0, 0, 16, -EBADMSG, NULL },
        /* non-canonical: bits set under the padding */
        { "Zh==", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9=", 0, 0, 16, -EBADMSG, NULL },
        /* outside the alphabet: base64url, blanks (unless allowed), controls, NUL, 8-bit */
        { "Zm-v", 0, 0, 16, -EBADMSG, NULL },
        { "Zm_v", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9v Yg==", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9vYg==\n", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9vYg==\t", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9\0", 4, 0, 16, -EBADMSG, NULL },
        { "Zm9\0", 4, BASE64_SKIP_BLANKS, 16, -EBADMSG, NULL },
        { "Zm9\xc3", 0, 0, 16, -EBADMSG, NULL },
        { "Zm9\v", 0, BASE64_SKIP_BLANKS, 16, -EBADMSG, NULL },
        /* PEM: blanks and line breaks anywhere, padding split by a line break too */
        { "Zm9v\nYmFy\n", 0, BASE64_SKIP_BLANKS, 16, 0, "foobar" },
        { " Z m\t9v\r\nYg=\n=", 0, BASE64_SKIP_BLANKS, 16, 0, "foob" },
        { "Zm9vYg==\nZg==", 0, BASE64_SKIP_BLANKS, 16, -EBADMSG, NULL },
        { "Zm9vY\ng", 0, BASE64_SKIP_BLANKS, 16, -EBADMSG, NULL },
        /* the limit: at N and N + 1; invalid text is -EBADMSG whatever its length */
        { "Zm9vYmFy", 0, 0, 6, 0, "foobar" },
        { "Zm9vYmFy", 0, 0, 5, -E2BIG, NULL },
        { "Zm9vYmE=", 0, 0, 5, 0, "fooba" },
        { "Zm9vYmE=", 0, 0, 4, -E2BIG, NULL },
        { "Zm9vYmFy", 0, 0, 0, -E2BIG, NULL },
        { "Zm9vYmFy!", 0, 0, 3, -EBADMSG, NULL },
        { "Zm9vYmFyZ", 0, 0, 3, -EBADMSG, NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        uint8_t out[16];
        size_t len = 12345;
        size_t in_len = cases[i].in_len ? cases[i].in_len : strlen(cases[i].in);
        int r = base64_decode(span_make(cases[i].in, in_len), cases[i].flags,
                              cases[i].size ? out : NULL, cases[i].size, &len);
        if (r != cases[i].r) {
            fail_msg("case %zu (%s): r=%d, want %d", i, cases[i].in, r, cases[i].r);
        }
        if (r == 0) {
            assert_int_equal(len, strlen(cases[i].out));
            assert_memory_equal(out, cases[i].out, len);
        } else {
            assert_int_equal(len, 12345); /* untouched on failure */
        }
    }
    size_t len = 0;
    uint8_t out[4];
    assert_int_equal(base64_decode(span_from_str("Zg=="), 0, NULL, 4, &len), -EINVAL);
    assert_int_equal(base64_decode(span_from_str("Zg=="), 0, out, sizeof(out), NULL), -EINVAL);
}

/* The decoder never writes past the room it was given, not even for text that is too long. */
static void test_base64_decode_bounded(void **state)
{
    (void)state;
    uint8_t out[8];
    memset(out, 0xaa, sizeof(out));
    size_t len = 0;
    assert_int_equal(base64_decode(span_from_str("Zm9vYmFyZm9vYmFy"), 0, out, 4, &len), -E2BIG);
    for (size_t i = 4; i < sizeof(out); i++) {
        assert_int_equal(out[i], 0xaa);
    }
}

static void test_base64_encode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *std, *url;
    } cases[] = {
        /* RFC 4648 §10; base64url: the same without padding */
        { "", "", "" },
        { "f", "Zg==", "Zg" },
        { "fo", "Zm8=", "Zm8" },
        { "foo", "Zm9v", "Zm9v" },
        { "foob", "Zm9vYg==", "Zm9vYg" },
        { "fooba", "Zm9vYmE=", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
        /* the two alphabets differ in 62 and 63 only */
        { "\xfb\xff\xbf", "+/+/", "-_-_" },
        { "\xfb\xf0", "+/A=", "-_A" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const uint8_t *in = (const uint8_t *)cases[i].in;
        size_t n = strlen(cases[i].in);
        char out[16];
        memset(out, 'x', sizeof(out));
        assert_int_equal(BASE64_LEN(n), strlen(cases[i].std));
        base64_encode(in, n, out, BASE64_LEN(n) + 1);
        assert_string_equal(out, cases[i].std);
        memset(out, 'x', sizeof(out));
        assert_int_equal(BASE64URL_LEN(n), strlen(cases[i].url));
        base64url_encode(in, n, out, BASE64URL_LEN(n) + 1);
        assert_string_equal(out, cases[i].url);

        /* What is encoded decodes back (the url form through the standard alphabet). */
        uint8_t back[16];
        size_t len = 0;
        if (n > 0) {
            base64_encode(in, n, out, sizeof(out));
            assert_int_equal(base64_decode(span_from_str(out), 0, back, sizeof(back), &len), 0);
            assert_int_equal(len, n);
            assert_memory_equal(back, in, n);
        }
    }
    /* Random bytes: 16 (session ids, tokens) and 18 (the initial password) round-trip. */
    uint8_t raw[18];
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (uint8_t)(i * 37 + 11);
    }
    char text[BASE64_LEN(sizeof(raw)) + 1], url[BASE64URL_LEN(16) + 1];
    base64url_encode(raw, 16, url, sizeof(url));
    assert_int_equal(strlen(url), 22);
    assert_int_equal(
        strspn(url, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 22);
    base64_encode(raw, sizeof(raw), text, sizeof(text));
    uint8_t back[sizeof(raw)];
    size_t len = 0;
    assert_int_equal(base64_decode(span_from_str(text), 0, back, sizeof(back), &len), 0);
    assert_int_equal(len, sizeof(raw));
    assert_memory_equal(back, raw, sizeof(raw));
}

static void test_base64_char_value(void **state)
{
    (void)state;
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++) {
        assert_int_equal(base64_char_value(abc[i]), i);
    }
    static const char bad[] = "-_= \n\t.:@[`{\x7f";
    for (size_t i = 0; i < sizeof(bad); i++) { /* the NUL too */
        assert_int_equal(base64_char_value(bad[i]), -1);
    }
    assert_int_equal(base64_char_value((char)0xc3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64_table),
        cmocka_unit_test(test_size_ops),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_span_nul),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_str_case_eq),
        cmocka_unit_test(test_hex_digit_value),
        cmocka_unit_test(test_base64_decode_table),
        cmocka_unit_test(test_base64_decode_bounded),
        cmocka_unit_test(test_base64_encode),
        cmocka_unit_test(test_base64_char_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
