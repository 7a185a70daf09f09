/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one log module (STYLE.md §7). Lines go to stderr with a syslog priority prefix ("<7>"),
 * which journald understands. libcertd itself logs only at debug; front ends log once, where
 * an error becomes a reply. Never pass keys, passphrases or tokens.
 */
#pragma once

#include <syslog.h>

#include "util/cleanup.h"

/* Lines above this priority (numerically greater) are dropped. Default LOG_INFO. */
void log_set_max_level(int prio);
int log_get_max_level(void);

/* Log one line at prio; returns r so that callers can `return log_full_errno(...)`. */
_printf_(3, 4) int log_full_errno(int prio, int r, const char *fmt, ...);

#define log_debug(...)        ((void)log_full_errno(LOG_DEBUG, 0, __VA_ARGS__))
#define log_info(...)         ((void)log_full_errno(LOG_INFO, 0, __VA_ARGS__))
#define log_notice(...)       ((void)log_full_errno(LOG_NOTICE, 0, __VA_ARGS__))
#define log_warning(...)      ((void)log_full_errno(LOG_WARNING, 0, __VA_ARGS__))
#define log_err(...)          ((void)log_full_errno(LOG_ERR, 0, __VA_ARGS__))
#define log_err_errno(r, ...) log_full_errno(LOG_ERR, (r), __VA_ARGS__)
