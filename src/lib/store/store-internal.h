/* SPDX-License-Identifier: Apache-2.0 */
/* What store.c shares with authority.c and nobody else: directory and temporary-name helpers. */
#pragma once

#include <stddef.h>

/* Open a directory for *at() calls (O_DIRECTORY|O_CLOEXEC). A descriptor, or -errno. */
int store_open_dir(const char *dir);

/*
 * ".tmp-<kind><base, cut>-<16 random hex digits>" into buf (NAME_MAX + 1 bytes): a name no
 * reader takes for real data and store_cleanup_tmp() removes. 0, -ENAMETOOLONG or -errno.
 */
int store_tmp_name(char *buf, size_t size, const char *kind, const char *base);
