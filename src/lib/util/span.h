/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded views of untrusted bytes (STYLE.md §5). A span never owns its bytes. A cursor reads a
 * span front to back; each reader checks the remaining length before it moves and leaves the
 * cursor unchanged on failure, so parsers do no pointer arithmetic of their own.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/cleanup.h"

struct span {
    const uint8_t *p;
    size_t len;
};

struct cursor {
    struct span s;
    size_t pos;
};

#define SPAN_EMPTY ((struct span){ .p = NULL, .len = 0 })

static inline struct span span_make(const void *p, size_t len)
{
    return (struct span){ .p = p, .len = len };
}

static inline struct span span_from_str(const char *s)
{
    return (struct span){ .p = (const uint8_t *)s, .len = s ? strlen(s) : 0 };
}

static inline bool span_eq(struct span a, struct span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* True when the span holds a NUL byte: such bytes may not become a C string. */
static inline bool span_has_nul(struct span s)
{
    return s.len > 0 && memchr(s.p, '\0', s.len) != NULL;
}

static inline struct cursor cur_init(struct span s)
{
    return (struct cursor){ .s = s, .pos = 0 };
}

static inline size_t cur_left(const struct cursor *c)
{
    return c->s.len - c->pos;
}

static inline struct span cur_rest(const struct cursor *c)
{
    return span_make(c->s.p + c->pos, cur_left(c));
}

/* Read one byte. 0 on success, -EBADMSG when none is left. */
_must_check_ int cur_u8(struct cursor *c, uint8_t *ret);
/* Read a big-endian 16-bit number. */
_must_check_ int cur_be16(struct cursor *c, uint16_t *ret);
/* Take the next n bytes as a span. */
_must_check_ int cur_bytes(struct cursor *c, size_t n, struct span *ret);
/* Skip n bytes. */
_must_check_ int cur_skip(struct cursor *c, size_t n);
/*
 * Take the next line, without its terminator ("\n" or "\r\n"). The last line may lack a
 * terminator. Returns -EBADMSG when nothing is left.
 */
_must_check_ int cur_line(struct cursor *c, struct span *ret);
/* Skip ASCII white space (space, tab, CR, LF). */
void cur_skip_space(struct cursor *c);
