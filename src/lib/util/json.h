/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every user of jansson in certd shares: the cleanup for json_t, and the bound on the work
 * a hostile text can make jansson do (STYLE.md §5), checked on the raw bytes before parsing.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "util/cleanup.h"
#include "util/span.h"

DEFINE_CLEANUP(json_t, json_decref)

/*
 * Count, on the raw bytes of JSON text and outside strings, the nesting depth of objects and
 * arrays and the number of values (commas and openings, plus one). 0 when the depth stays at
 * most depth_max and the count at most values_max; -EBADMSG when the text nests deeper;
 * -E2BIG when it holds more values. Malformed text may pass: the parser then refuses it.
 */
int json_text_bounds(struct span s, size_t depth_max, size_t values_max);
