/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What OpenSSL cannot do with a TPM (notes/tpm2.md P10, issue #5): make a key persistent at a
 * handle, write a certificate into an NV index, remove either. Through ESYS from tpm2-tss
 * (libtss2-esys, libtss2-tctildr, libtss2-mu), loaded with dlopen on first use (util/dlib.h), so
 * that a certd without TPM endpoints never maps them. Only this module includes tss2 headers.
 *
 * The TCTI is the one the tpm2 provider uses: the configuration's, else the environment's
 * TPM2OPENSSL_TCTI, else the TSS default (device:/dev/tpmrm0 first).
 * Keys come as the tpm2 provider writes them ("-----BEGIN TSS2 PRIVATE KEY-----", parent the
 * owner hierarchy 0x40000001 or a persistent parent): the parent is made again with the
 * provider's own primary template, the key loaded under it and made persistent; every
 * transient object is flushed before returning, on every path (a TPM has three slots).
 *
 * Authorisation: the owner hierarchy's is assumed empty (the TPM's default, and what the tpm2
 * provider uses without parent-auth), and so is a persistent parent's; a key's own password
 * (emptyAuth FALSE in its blob) is not needed to persist it, and stays with the key.
 *
 * A struct tss survives the TPM going away: calls fail with -EIO ("cannot reach the TPM ...")
 * and the next call connects again, so it works once the TPM is back.
 *
 * Thread-safety: a struct tss is used by one thread at a time (certd's serial thread); the
 * libraries are loaded once for all (pthread_once). ESYS prints its own warnings and errors to
 * stderr (TSS2_LOG decides how much: this module leaves the environment alone); messages in
 * err are ours, naming the handle, with the TPM's response code in hex for the TPM's errors.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error/error.h"
#include "util/cleanup.h"
#include "util/span.h"

/* Persistent object handles the owner may use (TPM 2.0 Part 2 §7.5.2: 0x81000000..0x817FFFFF). */
#define TSS_PERSISTENT_FIRST 0x81000000u
#define TSS_PERSISTENT_LAST  0x817FFFFFu
/* NV indices (TPM 2.0 Part 2 §7.4: 0x01000000..0x01FFFFFF). */
#define TSS_NV_FIRST 0x01000000u
#define TSS_NV_LAST  0x01FFFFFFu
/* A certificate chain in an NV index: swtpm allows 2048 bytes per index; real TPMs similar. */
#define TSS_NV_DATA_MAX 2048u
/*
 * A TSS2 key blob in PEM: an RSA-2048 blob is under 800 bytes; the largest possible one (a
 * TPM2B_PUBLIC of at most 616 bytes and a TPM2B_PRIVATE of at most 1552 in tpm2-tss) about
 * 3.1 KiB. 8 KiB leaves room for blanks and line ends.
 */
#define TSS_KEY_PEM_MAX 8192u

struct tss;

/*
 * Connect to the TPM through tcti (nullable, see above; copied), and ask it for its algorithms
 * and NV buffer size, which also proves it answers. Returns 0 and an owned context (free with
 * tss_close), or
 *   -ENOPKG/-ENOSYS, CERTD_E_UNAVAILABLE  the TPM libraries are missing or too old (util/dlib.h),
 *                                         the message names the library
 *   -EIO/CERTD_E_UNAVAILABLE              "cannot reach the TPM through TCTI ... (response
 *                                         code 0x...)": no such TCTI, nobody answering there
 *   -ENOMEM/CERTD_E_NO_MEMORY
 */
_must_check_ int tss_open(const char *tcti, struct tss **ret, struct certd_err *err);
struct tss *tss_close(struct tss *t);
DEFINE_CLEANUP_STRUCT(tss, tss_close)

/*
 * Make the key of tss2_pem (a TSS2 PRIVATE KEY PEM, as key_private_to_pem writes a TPM key;
 * borrowed) persistent at handle (TSS_PERSISTENT_FIRST..LAST), replacing the object there, if
 * any. The blob is checked whole before the TPM sees it: one PEM block with that label and
 * nothing but blanks around it, at most TSS_KEY_PEM_MAX bytes, DER consumed exactly, type
 * loadable key (2.23.133.10.1.3), both TPM structures unmarshalled to their last byte. The new
 * key is loaded before the old one is evicted, so a failure before the swap leaves the old key
 * in place; the swap itself (evict, persist) cannot be one TPM command: callers keep a record
 * to finish it after a crash (the key blob stays usable either way). Returns 0, or
 *   -EINVAL/CERTD_E_FIELD_INVALID        handle out of range, or the key's own parent
 *   -E2BIG/CERTD_E_INPUT_TOO_LARGE       over TSS_KEY_PEM_MAX
 *   -EBADMSG/CERTD_E_INPUT_EMPTY, _INPUT_GARBAGE (not PEM, a NUL byte), _PEM_UNEXPECTED_LABEL
 *            (another PEM block, e.g. a software key), _PEM_TRUNCATED (no END line),
 *            _PEM_BAD_BLOCK (base64), _TRAILING_DATA (after the block or the DER),
 *            _KEY_BAD (DER, parent, TPM2B_PUBLIC or TPM2B_PRIVATE malformed)
 *   -EOPNOTSUPP/CERTD_E_KEY_UNSUPPORTED  another kind of TSS2 blob (importable, sealed), or a
 *                                        parent that is neither the owner nor persistent
 *   -EIO/CERTD_E_UNAVAILABLE             the TPM refused (a key of another TPM, a missing
 *                                        parent, NV full) or cannot be reached
 *   -ENOMEM
 */
_must_check_ int tss_key_persist(struct tss *t, struct span tss2_pem, uint32_t handle,
                                 struct certd_err *err);

/*
 * Write data (1..TSS_NV_DATA_MAX bytes, borrowed) into NV index handle (TSS_NV_FIRST..LAST):
 * defined first (owner authorisation, owner and auth read/write, no password, size len) when
 * absent, undefined and defined again when its size or attributes differ (the provider's
 * handle: store reads the whole index as one certificate); written in chunks the TPM takes
 * (TPM2_PT_NV_BUFFER_MAX). A failure after the undefine leaves no index, or one partly written:
 * callers write again. Returns 0 or
 * -EINVAL/CERTD_E_FIELD_INVALID (handle), -EINVAL/CERTD_E_INPUT_EMPTY,
 * -E2BIG/CERTD_E_INPUT_TOO_LARGE, -EIO/CERTD_E_UNAVAILABLE (refused or unreachable).
 */
_must_check_ int tss_nv_write(struct tss *t, uint32_t handle, struct span data,
                              struct certd_err *err);

/*
 * Remove the persistent object or NV index at handle. 0 (also when there was none),
 * -EINVAL/CERTD_E_FIELD_INVALID (neither range), -EIO/CERTD_E_UNAVAILABLE.
 */
_must_check_ int tss_remove(struct tss *t, uint32_t handle, struct certd_err *err);

/*
 * Whether handle (persistent or NV) exists, asked without touching it: 0 and *ret, or
 * -EINVAL/CERTD_E_FIELD_INVALID (neither range), -EIO/CERTD_E_UNAVAILABLE.
 */
_must_check_ int tss_exists(struct tss *t, uint32_t handle, bool *ret, struct certd_err *err);
