/* SPDX-License-Identifier: Apache-2.0 */
/* util/: cursors, strict number parsing, overflow helpers, secrets. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64_table), cmocka_unit_test(test_size_ops),
        cmocka_unit_test(test_cursor),          cmocka_unit_test(test_span_nul),
        cmocka_unit_test(test_secret),          cmocka_unit_test(test_str_case_eq),
        cmocka_unit_test(test_hex_digit_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
