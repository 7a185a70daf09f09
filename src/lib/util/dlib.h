/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries opened when first needed (dlopen), not linked: a certd that does not use a
 * feature does not map its library, whose pages would otherwise count in its resident size
 * (libsystemd with its dependencies about 1.2 MiB, libsqlite3 with libm about 0.6 MiB mapped
 * and 1.5 MiB once used).
 *
 * A user keeps a struct of function pointers, one member per function, declared with an
 * X-macro list (NAME(X) expanding X(function) for each) and DLIB_MEMBER, and a parallel array
 * of the names; dlib_load fills the struct from the library. The struct must hold nothing but
 * those pointers, in the order of the names (a static_assert on its size is advised).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/cleanup.h"

#define DLIB_MEMBER(f) FUNCTION_POINTER(f) f;
#define DLIB_NAME(f)   #f,

/*
 * Open soname (RTLD_NOW | RTLD_LOCAL; never closed) and look up the n names into table (n
 * function pointers). 0, or -ENOPKG (the library is missing) / -ENOSYS (a function is
 * missing: the library is too old) with the reason in msg. table is written only on success.
 */
_must_check_ int dlib_load(const char *soname, const char *const *names, size_t n, void *table,
                           char *msg, size_t size);
