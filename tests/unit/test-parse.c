/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util/parse: percent_decode and path_split_name, tables of (input, expected result, expected
 * output). percent_decode's inputs and outputs live in exactly sized heap buffers, so that ASan
 * and valgrind see any read past the input or write past len + 1 bytes of output. (parse_u64
 * and hex_digit_value are tested in test-util.c.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/parse.h"
#include "util/span.h"

struct decode_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int r;
    const char *out; /* on success */
    size_t out_len;  /* 0: strlen(out) */
};

#define OK(i, o)                      \
    {                                 \
        .in = (i), .r = 0, .out = (o) \
    }
#define BAD(i)                   \
    {                            \
        .in = (i), .r = -EBADMSG \
    }
#define BAD_N(i, n)                          \
    {                                        \
        .in = (i), .len = (n), .r = -EBADMSG \
    }
#define OK_N(i, n, o, on)                                          \
    {                                                              \
        .in = (i), .len = (n), .r = 0, .out = (o), .out_len = (on) \
    }

static const struct decode_case decode_cases[] = {
    OK("", ""),
    OK("/redfish/v1", "/redfish/v1"),
    OK("%41%62c", "Abc"),
    OK("%2f%2F", "//"),
    OK("%2e%2E", ".."),
    OK("%20", " "),
    OK("%ff%80", "\xff\x80"),
    /* decoded once: "%2541" is "%41", not "A" */
    OK("%2541", "%41"),
    /* '+' is an ordinary character; only an encoded one is a '+' too */
    OK("a+b", "a+b"),
    OK("%2B", "+"),
    /* control characters other than NUL are the caller's to judge */
    OK("%01%1f%7F", "\x01\x1f\x7f"),
    /* bad escapes: truncated, not hex, a NUL */
    BAD("%"),
    BAD("a%"),
    BAD("%4"),
    BAD("ab%4"),
    BAD("%zz"),
    BAD("%4g"),
    BAD("%g4"),
    BAD("%%41"),
    BAD("% 41"),
    BAD("%-1"),
    BAD("%00"),
    BAD("a%00b"),
    BAD("%41%00"),
    /* a raw NUL would cut the C string short as "%00" would */
    BAD_N("a\0b", 3),
    /* len bounds the input: what follows is not read */
    BAD_N("ab%41", 3),
    BAD_N("ab%41", 4),
    OK_N("ab%41", 5, "abA", 3),
    OK_N("ab%41zzz", 2, "ab", 2),
};

static void test_percent_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(decode_cases); i++) {
        const struct decode_case *c = &decode_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        /* malloc(0) may return NULL; keep one byte so the span is never NULL with len 0 */
        char *in = malloc(len ? len : 1);
        char *out = malloc(len + 1);
        assert_non_null(in);
        assert_non_null(out);
        memcpy(in, c->in, len);
        memset(out, 'X', len + 1);
        size_t out_len = 12345;
        int r = percent_decode(span_make(in, len), out, &out_len);
        if (r != c->r) {
            print_error("case %zu '%s': got %d, want %d\n", i, c->in, r, c->r);
        }
        assert_int_equal(r, c->r);
        if (r == 0) {
            size_t want_len = c->out_len ? c->out_len : strlen(c->out);
            assert_int_equal(out_len, want_len);
            assert_memory_equal(out, c->out, want_len);
            assert_int_equal(out[want_len], '\0');
            assert_int_equal(strlen(out), out_len);
        } else {
            /* nothing written on failure */
            assert_int_equal(out_len, 12345);
            for (size_t k = 0; k < len + 1; k++) {
                assert_int_equal(out[k], 'X');
            }
        }
        free(in);
        free(out);
    }
}

static void test_percent_decode_args(void **state)
{
    (void)state;
    char out[8];
    /* ret_len is optional */
    assert_int_equal(percent_decode(span_from_str("a%2Fb"), out, NULL), 0);
    assert_string_equal(out, "a/b");
    /* an empty span may have no bytes at all */
    size_t n = 7;
    assert_int_equal(percent_decode(SPAN_EMPTY, out, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    /* programmer errors */
    assert_int_equal(percent_decode(span_from_str("a"), NULL, &n), -EINVAL);
    assert_int_equal(percent_decode(span_make(NULL, 1), out, &n), -EINVAL);
    assert_int_equal(n, 0);
}

static void test_path_split_name(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int r;
        const char *dir, *name;
    } cases[] = {
        { "/run/x.pid", 0, "/run", "x.pid" },
        { "/x", 0, "/", "x" },
        { "/a/b/c", 0, "/a/b", "c" },
        /* not normalised: the caller's paths are already in normal form */
        { "/a//b", 0, "/a/", "b" },
        { "/a/..", 0, "/a", ".." },
        /* not absolute, or no last name */
        { "x.pid", -EINVAL, NULL, NULL },
        { "run/x", -EINVAL, NULL, NULL },
        { "", -EINVAL, NULL, NULL },
        { "/", -EINVAL, NULL, NULL },
        { "/run/", -EINVAL, NULL, NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char *dir = (char *)&cases;
        const char *name = (const char *)&cases;
        int r = path_split_name(cases[i].path, &dir, &name);
        if (r != cases[i].r) {
            print_error("case '%s': got %d, want %d\n", cases[i].path, r, cases[i].r);
        }
        assert_int_equal(r, cases[i].r);
        if (r == 0) {
            assert_string_equal(dir, cases[i].dir);
            assert_string_equal(name, cases[i].name);
            /* the name is borrowed from path */
            assert_ptr_equal(name, cases[i].path + strlen(cases[i].path) - strlen(cases[i].name));
            free(dir);
        } else {
            /* nothing written on failure */
            assert_ptr_equal(dir, (char *)&cases);
            assert_ptr_equal(name, (const char *)&cases);
        }
    }
    char *dir = NULL;
    const char *name = NULL;
    assert_int_equal(path_split_name(NULL, &dir, &name), -EINVAL);
    assert_int_equal(path_split_name("/x", NULL, &name), -EINVAL);
    assert_int_equal(path_split_name("/x", &dir, NULL), -EINVAL);
    assert_null(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decode_table),
        cmocka_unit_test(test_percent_decode_args),
        cmocka_unit_test(test_path_split_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
