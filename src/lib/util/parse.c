/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strict parsing of what certd reads as text: decimal numbers (the only way a string becomes a
 * number in certd), percent-encoding (request paths, file: URIs), absolute paths and UTF-8 text.
 */
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    assert_return(s && ret, -EINVAL);
    if (s[0] == '\0') {
        return -EINVAL;
    }
    /* "0" alone is fine; "007" is not a number we wrote, so it is not one we read. */
    if (s[0] == '0' && s[1] != '\0') {
        return -EINVAL;
    }
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        if (__builtin_mul_overflow(v, 10u, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v)) {
            return -ERANGE;
        }
    }
    if (v < min || v > max) {
        return -ERANGE;
    }
    *ret = v;
    return 0;
}

bool str_case_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb) {
            return false;
        }
        if (ca == '\0') {
            return true;
        }
    }
}

int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int percent_decode(struct span in, char *out, size_t *ret_len)
{
    assert_return(out && (in.p || in.len == 0), -EINVAL);
    const char *s = (const char *)in.p;
    /* Check all of it first, so that a bad escape leaves out untouched. */
    for (size_t i = 0; i < in.len; i++) {
        if (s[i] == '\0') {
            return -EBADMSG;
        }
        if (s[i] != '%') {
            continue;
        }
        if (in.len - i < 3 || hex_digit_value(s[i + 1]) < 0 || hex_digit_value(s[i + 2]) < 0 ||
            (s[i + 1] == '0' && s[i + 2] == '0')) {
            return -EBADMSG;
        }
        i += 2;
    }
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        if (s[i] == '%') {
            out[o++] = (char)(hex_digit_value(s[i + 1]) * 16 + hex_digit_value(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (ret_len) {
        *ret_len = o;
    }
    return 0;
}

int path_split_name(const char *path, char **ret_dir, const char **ret_name)
{
    assert_return(path && ret_dir && ret_name, -EINVAL);
    const char *slash = strrchr(path, '/');
    if (path[0] != '/' || slash[1] == '\0') {
        return -EINVAL;
    }
    char *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    if (!dir) {
        return -ENOMEM;
    }
    *ret_dir = dir;
    *ret_name = slash + 1;
    return 0;
}

int path_check_normal(const char *s, size_t n, bool is_dir, const char **ret_why)
{
    if (n == 0 || s[0] != '/') {
        *ret_why = "must be an absolute path";
        return -EINVAL;
    }
    if (n >= PATH_MAX) {
        *ret_why = "path too long";
        return -E2BIG;
    }
    if (n == 1) {
        if (!is_dir) {
            *ret_why = "must name a file, not '/'";
            return -EINVAL;
        }
        return 0;
    }
    /* Each component starts after a '/'. */
    for (size_t i = 1; i <= n; i++) {
        size_t j = i;
        while (j < n && s[j] != '/') {
            j++;
        }
        size_t len = j - i;
        if (len == 0) {
            *ret_why = j == n ? "must not end with '/'" : "must not contain '//'";
            return -EINVAL;
        }
        if ((len == 1 && s[i] == '.') || (len == 2 && s[i] == '.' && s[i + 1] == '.')) {
            *ret_why = "must not contain '.' or '..' components";
            return -EINVAL;
        }
        i = j;
    }
    return 0;
}

bool str_has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

int utf8_next(struct cursor *c, uint32_t *ret_cp, struct span *ret_bytes)
{
    /* Read on a copy: c moves only once the whole character is known to be good. */
    struct cursor peek = *c;
    uint8_t b0;
    if (cur_u8(&peek, &b0) < 0) {
        return -EBADMSG;
    }
    /* The lead byte gives the length, its payload bits, and the smallest code point allowed. */
    static const struct {
        uint8_t mask, value;
        size_t n;
        uint32_t min;
    } leads[] = {
        { 0x80, 0x00, 1, 0x0 },
        { 0xe0, 0xc0, 2, 0x80 },
        { 0xf0, 0xe0, 3, 0x800 },
        { 0xf8, 0xf0, 4, 0x10000 },
    };
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    for (size_t i = 0; i < ELEMENTSOF(leads); i++) {
        if ((b0 & leads[i].mask) == leads[i].value) {
            n = leads[i].n;
            cp = b0 & (uint8_t)~leads[i].mask;
            min = leads[i].min;
            break;
        }
    }
    if (n == 0) {
        return -EBADMSG; /* a continuation byte, or a lead byte RFC 3629 no longer allows */
    }
    peek = *c;
    struct span bytes;
    if (cur_bytes(&peek, n, &bytes) < 0) {
        return -EBADMSG;
    }
    for (size_t i = 1; i < n; i++) {
        if ((bytes.p[i] & 0xc0) != 0x80) {
            return -EBADMSG;
        }
        cp = cp << 6 | (bytes.p[i] & 0x3fu);
    }
    /* Overlong forms would give one character two spellings; surrogates are UTF-16's. */
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -EBADMSG;
    }
    *c = peek;
    *ret_cp = cp;
    if (ret_bytes) {
        *ret_bytes = bytes;
    }
    return 0;
}

bool utf8_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int utf8_check_text(struct span s)
{
    assert_return(s.p || s.len == 0, -EINVAL);
    struct cursor c = cur_init(s);
    while (cur_left(&c) > 0) {
        uint32_t cp = 0;
        if (utf8_next(&c, &cp, NULL) < 0) {
            return -EILSEQ;
        }
        /* They change how the text shows in a terminal or log, or cut it. */
        if (utf8_is_control(cp)) {
            return -EBADMSG;
        }
    }
    return 0;
}
