/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Number parsing, percent-decoding, path checking and splitting, and overflow-checked size
 * arithmetic (§5).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/cleanup.h"
#include "util/span.h"

/*
 * Parse a decimal unsigned number in [min, max]. Rejects empty strings, signs, blanks, leading
 * zeros beyond "0", trailing bytes and overflow. Returns 0, -EINVAL (not a number) or -ERANGE
 * (out of range). *ret is written only on success.
 */
_must_check_ int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* a + b and a * b into *ret; false (and *ret untouched) on overflow. */
static inline bool size_add(size_t a, size_t b, size_t *ret)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        return false;
    }
    *ret = r;
    return true;
}

static inline bool size_mul(size_t a, size_t b, size_t *ret)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        return false;
    }
    *ret = r;
    return true;
}

/* The value of one hexadecimal digit (either case), or -1. */
int hex_digit_value(char c);

/*
 * Percent-decode in (RFC 3986 §2.1; untrusted, not NUL-terminated) into out, which the caller
 * provides with room for in.len + 1 bytes (decoding never lengthens), and NUL-terminate it; the
 * decoded length goes to *ret_len (nullable). Thread-safe, no allocation.
 * Strict: a '%' not followed by two hex digits (either case), "%00" and a raw NUL are -EBADMSG,
 * since the result is used as a C string and "a%00b" would silently become "a"; so on success
 * strlen(out) == *ret_len. Other decoded bytes, control characters included, are the caller's
 * to judge. '+' stays '+': it means a space only in HTML form data
 * (application/x-www-form-urlencoded), which certd never reads, while in paths and file: URIs
 * (RFC 8089) it is an ordinary character.
 * On failure out and *ret_len are untouched. -EINVAL for a NULL out or in.p with in.len > 0.
 */
_must_check_ int percent_decode(struct span in, char *out, size_t *ret_len);

/*
 * Split an absolute path into its directory (a new string in *ret_dir; "/" for "/x") and its last
 * name (borrowed from path, in *ret_name). No normalisation: "/a//b" gives "/a/" and "b".
 * Returns 0, -EINVAL for a path that is not absolute or ends in '/' (it names no file), or
 * -ENOMEM; the outputs are written only on success.
 */
_must_check_ int path_split_name(const char *path, char **ret_dir, const char **ret_name);

/*
 * Check that s[0..n) is an absolute path in normal form: no empty ("//"), "." or ".." component,
 * no trailing '/' ("/" itself only where is_dir), shorter than PATH_MAX. Normal form is what
 * lets callers compare paths as strings ("/a/./b", "/a//b" and "/a/c/../b" would otherwise be
 * another path than they look). Returns 0, -EINVAL or -E2BIG (n >= PATH_MAX), then with *ret_why
 * a static phrase for a message ("must not contain '//'"). Thread-safe, no allocation.
 */
_must_check_ int path_check_normal(const char *s, size_t n, bool is_dir, const char **ret_why);

/* Whether NUL-terminated s holds an ASCII control character (C0 or DEL). */
bool str_has_control(const char *s);

/* ASCII case-insensitive equality, for names from configuration and requests. */
bool str_case_eq(const char *a, const char *b);

/*
 * Read one UTF-8 character at c: RFC 3629 §3-4, shortest form only, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Returns 0 with its code point in *ret_cp and its
 * bytes in *ret_bytes (nullable; borrowed from c's span) and c moved past it; -EBADMSG for
 * anything else (or nothing left), c and the outputs then unchanged. Thread-safe.
 */
_must_check_ int utf8_next(struct cursor *c, uint32_t *ret_cp, struct span *ret_bytes);

/* C0 controls (NUL included), DEL and C1 controls: terminal escapes, line breaks, NEL. */
bool utf8_is_control(uint32_t cp);

/*
 * Check text people type or read as one line (passwords, labels, notes, names from
 * certificates): valid UTF-8 (utf8_next) and no control character (utf8_is_control). Returns
 * 0, -EILSEQ (not valid UTF-8) or -EBADMSG (a control character); the first fault found
 * decides. -EINVAL only for a programmer's error (s.p NULL with s.len > 0), never for the
 * text. Thread-safe, no allocation.
 */
_must_check_ int utf8_check_text(struct span s);
