/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util/parse: percent_decode, path_split_name and the UTF-8 reader and text check, tables of
 * (input, expected result, expected output). percent_decode's inputs and outputs live in exactly
 * sized heap buffers, so that ASan and valgrind see any read past the input or write past len + 1
 * bytes of output. (parse_u64 and hex_digit_value are tested in test-util.c.)
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

/*
 * utf8_next and utf8_check_text on one table: each length at its smallest and largest code
 * point, the overlong form just below each, the surrogates' edges, U+10FFFF and just above,
 * every kind of bad byte, cut sequences, and the control ranges at their edges. Inputs sit in
 * exactly sized heap buffers (ASan and valgrind see any read past them).
 */
struct utf8_case {
    const char *in;
    size_t len;  /* 0: strlen(in) */
    int next_r;  /* utf8_next on the first character */
    uint32_t cp; /* its code point */
    size_t n;    /* and its length */
    int check_r; /* utf8_check_text on the whole input */
};

static void test_utf8_table(void **state)
{
    (void)state;
    static const struct utf8_case cases[] = {
        { "a", 0, 0, 'a', 1, 0 },
        { "\x7e", 0, 0, 0x7e, 1, 0 },
        { "\x7f", 0, 0, 0x7f, 1, -EBADMSG }, /* DEL */
        { "\x1f", 0, 0, 0x1f, 1, -EBADMSG },
        { "\x20", 0, 0, 0x20, 1, 0 },
        { "\0", 1, 0, 0, 1, -EBADMSG },          /* NUL */
        { "\xc2\x80", 0, 0, 0x80, 2, -EBADMSG }, /* C1 */
        { "\xc2\x9f", 0, 0, 0x9f, 2, -EBADMSG },
        { "\xc2\xa0", 0, 0, 0xa0, 2, 0 },
        { "\xdf\xbf", 0, 0, 0x7ff, 2, 0 },
        { "\xe0\xa0\x80", 0, 0, 0x800, 3, 0 },
        { "\xed\x9f\xbf", 0, 0, 0xd7ff, 3, 0 },
        { "\xee\x80\x80", 0, 0, 0xe000, 3, 0 },
        { "\xef\xbf\xbf", 0, 0, 0xffff, 3, 0 },
        { "\xf0\x90\x80\x80", 0, 0, 0x10000, 4, 0 },
        { "\xf4\x8f\xbf\xbf", 0, 0, 0x10ffff, 4, 0 },
        { "\xc0\x80", 0, -EBADMSG, 0, 0, -EILSEQ },         /* overlong NUL */
        { "\xc1\xbf", 0, -EBADMSG, 0, 0, -EILSEQ },         /* overlong U+7F */
        { "\xe0\x9f\xbf", 0, -EBADMSG, 0, 0, -EILSEQ },     /* overlong U+7FF */
        { "\xf0\x8f\xbf\xbf", 0, -EBADMSG, 0, 0, -EILSEQ }, /* overlong U+FFFF */
        { "\xed\xa0\x80", 0, -EBADMSG, 0, 0, -EILSEQ },     /* U+D800 */
        { "\xed\xbf\xbf", 0, -EBADMSG, 0, 0, -EILSEQ },     /* U+DFFF */
        { "\xf4\x90\x80\x80", 0, -EBADMSG, 0, 0, -EILSEQ }, /* U+110000 */
        { "\xf5\x80\x80\x80", 0, -EBADMSG, 0, 0, -EILSEQ },
        { "\xf8\x88\x80\x80\x80", 0, -EBADMSG, 0, 0, -EILSEQ }, /* 5-byte form */
        { "\xff", 0, -EBADMSG, 0, 0, -EILSEQ },
        { "\x80", 0, -EBADMSG, 0, 0, -EILSEQ }, /* lone continuation */
        { "\xbf", 0, -EBADMSG, 0, 0, -EILSEQ },
        { "\xe2\x82", 0, -EBADMSG, 0, 0, -EILSEQ }, /* cut short */
        { "\xf0\x9f\x98", 0, -EBADMSG, 0, 0, -EILSEQ },
        { "\xc3", 0, -EBADMSG, 0, 0, -EILSEQ },
        { "\xc3(", 0, -EBADMSG, 0, 0, -EILSEQ }, /* not a continuation */
        { "\xe2\x28\xa1", 0, -EBADMSG, 0, 0, -EILSEQ },
        /* the first fault decides */
        { "a\x01\xff", 0, 0, 'a', 1, -EBADMSG },
        { "a\xff\x01", 0, 0, 'a', 1, -EILSEQ },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0, 0, 'c', 1, 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        uint8_t *in = malloc(len);
        assert_non_null(in);
        memcpy(in, cases[i].in, len);

        struct cursor c = cur_init(span_make(in, len));
        uint32_t cp = 0xdeadbeef;
        struct span bytes = { .p = NULL, .len = 99 };
        int r = utf8_next(&c, &cp, &bytes);
        if (r != cases[i].next_r) {
            fail_msg("case %zu: utf8_next %d, want %d", i, r, cases[i].next_r);
        }
        if (r == 0) {
            assert_int_equal(cp, cases[i].cp);
            assert_int_equal(c.pos, cases[i].n);
            assert_ptr_equal(bytes.p, in);
            assert_int_equal(bytes.len, cases[i].n);
        } else {
            /* nothing moved, nothing written */
            assert_int_equal(c.pos, 0);
            assert_int_equal(cp, 0xdeadbeef);
            assert_null(bytes.p);
        }
        r = utf8_check_text(span_make(in, len));
        if (r != cases[i].check_r) {
            fail_msg("case %zu: utf8_check_text %d, want %d", i, r, cases[i].check_r);
        }
        free(in);
    }
    /* the end: nothing left to read */
    struct cursor c = cur_init(span_make("a", 1));
    uint32_t cp = 0;
    assert_int_equal(utf8_next(&c, &cp, NULL), 0);
    assert_int_equal(utf8_next(&c, &cp, NULL), -EBADMSG);
    assert_int_equal(c.pos, 1);
    /* empty text is fine; a NULL pointer with a length is the caller's bug, told apart */
    assert_int_equal(utf8_check_text(SPAN_EMPTY), 0);
    assert_int_equal(utf8_check_text(span_make(NULL, 1)), -EINVAL);
    assert_true(utf8_is_control(0));
    assert_true(utf8_is_control(0x1f));
    assert_false(utf8_is_control(0x20));
    assert_false(utf8_is_control(0x7e));
    assert_true(utf8_is_control(0x7f));
    assert_true(utf8_is_control(0x9f));
    assert_false(utf8_is_control(0xa0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decode_table),
        cmocka_unit_test(test_percent_decode_args),
        cmocka_unit_test(test_path_split_name),
        cmocka_unit_test(test_utf8_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
