/* SPDX-License-Identifier: Apache-2.0 */
/* stderr logging with syslog priority prefixes; control bytes in messages are escaped. */
#include "log/log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_max_level = LOG_INFO;

void log_set_max_level(int prio)
{
    log_max_level = prio;
}

int log_get_max_level(void)
{
    return log_max_level;
}

int log_full_errno(int prio, int r, const char *fmt, ...)
{
    if (prio > log_max_level) {
        return r;
    }
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return r;
    }
    /* One event, one line: outside strings may carry newlines or escapes. */
    for (char *p = buf; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    (void)fprintf(stderr, "<%d>%s\n", prio, buf);
    return r;
}
