/* SPDX-License-Identifier: Apache-2.0 */
/* error/: first writer wins, every code has a name and a class, messages stay one line. */
#include <errno.h>
#include <string.h>

#include "error/error.h"
#include "testutil.h"

static void test_first_writer_wins(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    assert_false(err_is_set(&err));
    assert_int_equal(err_set(&err, -EKEYREJECTED, CERTD_E_KEY_WEAK, "RSA key of %d bits", 1024),
                     -EKEYREJECTED);
    assert_int_equal(err_set(&err, -EINVAL, CERTD_E_INTERNAL, "outer"), -EINVAL);
    assert_int_equal(err.code, CERTD_E_KEY_WEAK);
    assert_string_equal(err.msg, "RSA key of 1024 bits");
    assert_true(err_is_set(&err));
    err_clear(&err);
    assert_false(err_is_set(&err));
    assert_string_equal(err.msg, "");
    /* A NULL record is allowed and still yields r. */
    assert_int_equal(err_set(NULL, -EIO, CERTD_E_STORAGE, "x"), -EIO);
    assert_int_equal(err_set_field(NULL, -EIO, CERTD_E_STORAGE, "F", "x"), -EIO);
}

static void test_field(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    /* The field travels with the first writer only; a later writer's field is ignored. */
    assert_int_equal(err_set_field(&err, -EINVAL, CERTD_E_FIELD_INVALID, "Country",
                                   "Country must be %d letters", 2),
                     -EINVAL);
    assert_int_equal(err_set_field(&err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "City", "outer"), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_string_equal(err.field, "Country");
    assert_string_equal(err.msg, "Country must be 2 letters");
    err_clear(&err);
    assert_string_equal(err.field, "");
    /* err_set names no field, even after a record that had one. */
    (void)err_set(&err, -EINVAL, CERTD_E_FIELD_INVALID, "plain");
    assert_string_equal(err.field, "");
    err_clear(&err);
    /* A field longer than the record holds is cut, never overflows. */
    (void)err_set_field(&err, -EINVAL, CERTD_E_FIELD_INVALID,
                        "AVeryLongFieldNameThatDoesNotFitInThirtyTwoBytes", "m");
    assert_int_equal(strlen(err.field), CERTD_ERR_FIELD_MAX - 1);
}

static void test_names_and_classes(void **state)
{
    (void)state;
    for (int c = 1; c < CERTD_E_MAX; c++) {
        const char *n = err_code_name((enum certd_errc)c);
        assert_non_null(n);
        assert_string_not_equal(n, "unknown");
        enum certd_errclass cls = err_code_class((enum certd_errc)c);
        assert_true(cls > CERTD_CLASS_NONE && cls < CERTD_CLASS_MAX);
        /* Names are unique. */
        for (int d = 1; d < c; d++) {
            assert_string_not_equal(n, err_code_name((enum certd_errc)d));
        }
    }
    assert_string_equal(err_code_name(CERTD_E_KEY_MISMATCH), "key-mismatch");
    assert_int_equal(err_code_class(CERTD_E_DUPLICATE), CERTD_CLASS_CONFLICT);
    assert_string_equal(err_code_name(CERTD_E_MAX), "unknown");
    assert_string_equal(err_class_name(CERTD_CLASS_NOT_ALLOWED), "not-allowed");
}

static void test_message_sanitised_and_bounded(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    char longs[600];
    memset(longs, 'x', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    (void)err_set(&err, -EINVAL, CERTD_E_FIELD_INVALID, "bad\nline\x1b %s", longs);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\x1b'));
    assert_int_equal(strlen(err.msg), CERTD_ERR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_writer_wins),
        cmocka_unit_test(test_field),
        cmocka_unit_test(test_names_and_classes),
        cmocka_unit_test(test_message_sanitised_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
