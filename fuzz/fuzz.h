/* SPDX-License-Identifier: Apache-2.0 */
/* The libFuzzer entry point every harness defines; replay.c drives it without libFuzzer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
