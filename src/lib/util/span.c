/* SPDX-License-Identifier: Apache-2.0 */
/* Cursor readers over spans: every reader checks the remaining length first. */
#include "util/span.h"

#include <errno.h>

int cur_u8(struct cursor *c, uint8_t *ret)
{
    if (cur_left(c) < 1) {
        return -EBADMSG;
    }
    *ret = c->s.p[c->pos];
    c->pos++;
    return 0;
}

int cur_be16(struct cursor *c, uint16_t *ret)
{
    if (cur_left(c) < 2) {
        return -EBADMSG;
    }
    *ret = (uint16_t)((unsigned)c->s.p[c->pos] << 8 | c->s.p[c->pos + 1]);
    c->pos += 2;
    return 0;
}

int cur_bytes(struct cursor *c, size_t n, struct span *ret)
{
    if (cur_left(c) < n) {
        return -EBADMSG;
    }
    *ret = span_make(c->s.p + c->pos, n);
    c->pos += n;
    return 0;
}

int cur_skip(struct cursor *c, size_t n)
{
    if (cur_left(c) < n) {
        return -EBADMSG;
    }
    c->pos += n;
    return 0;
}

int cur_line(struct cursor *c, struct span *ret)
{
    size_t left = cur_left(c);
    if (left == 0) {
        return -EBADMSG;
    }
    const uint8_t *start = c->s.p + c->pos;
    const uint8_t *nl = memchr(start, '\n', left);
    size_t n = nl ? (size_t)(nl - start) : left;
    size_t consumed = nl ? n + 1 : n;
    if (n > 0 && start[n - 1] == '\r') {
        n--;
    }
    *ret = span_make(start, n);
    c->pos += consumed;
    return 0;
}

void cur_skip_space(struct cursor *c)
{
    while (cur_left(c) > 0) {
        uint8_t b = c->s.p[c->pos];
        if (b != ' ' && b != '\t' && b != '\r' && b != '\n') {
            break;
        }
        c->pos++;
    }
}
