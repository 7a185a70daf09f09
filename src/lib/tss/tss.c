/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tss/: what OpenSSL cannot do with a TPM, through ESYS (tss.h). The only module that includes
 * tss2 headers; libtss2-esys, -tctildr and -mu are opened on first use (util/dlib.h).
 * Invariants:
 *  - every transient object this module creates (a re-made primary, a loaded key) is flushed
 *    before the function returns, on every path, and every ESYS_TR is closed: a TPM without a
 *    resource manager has three object slots, shared by all its users;
 *  - a key blob is checked whole (PEM armour, DER consumed exactly, OID, parent, both TPM
 *    structures unmarshalled to their last byte) before the TPM sees any of it;
 *  - the old object at a handle is evicted only once the new key is loaded;
 *  - owner authorisation is the empty password (the TPM's default), as for the tpm2 provider
 *    without a parent-auth setting.
 */
#include "tss/tss.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "log/log.h"
#include "util/base64.h"
#include "util/dlib.h"
#include "util/ossl.h"

/*
 * The three libraries, one table each (util/dlib.h). Every ESYS, TCTI loader and MU call
 * below goes through them (the macros after the tables).
 */
#define TSS_ESYS_SONAME    "libtss2-esys.so.0"
#define TSS_TCTILDR_SONAME "libtss2-tctildr.so.0"
#define TSS_MU_SONAME      "libtss2-mu.so.0"

#define ESYS_FUNCTIONS(X)    \
    X(Esys_CreatePrimary)    \
    X(Esys_EvictControl)     \
    X(Esys_Finalize)         \
    X(Esys_FlushContext)     \
    X(Esys_Free)             \
    X(Esys_GetCapability)    \
    X(Esys_Initialize)       \
    X(Esys_Load)             \
    X(Esys_NV_DefineSpace)   \
    X(Esys_NV_ReadPublic)    \
    X(Esys_NV_UndefineSpace) \
    X(Esys_NV_Write)         \
    X(Esys_TR_Close)         \
    X(Esys_TR_FromTPMPublic) \
    X(Esys_TR_SetAuth)

#define TCTILDR_FUNCTIONS(X) \
    X(Tss2_TctiLdr_Finalize) \
    X(Tss2_TctiLdr_Initialize)

#define MU_FUNCTIONS(X)                \
    X(Tss2_MU_TPM2B_PRIVATE_Unmarshal) \
    X(Tss2_MU_TPM2B_PUBLIC_Unmarshal)

struct esys_lib {
    ESYS_FUNCTIONS(DLIB_MEMBER)
};
struct tctildr_lib {
    TCTILDR_FUNCTIONS(DLIB_MEMBER)
};
struct mu_lib {
    MU_FUNCTIONS(DLIB_MEMBER)
};

/* Filled once (pthread_once), read-only after. */
static struct esys_lib esys_table;
static struct tctildr_lib tctildr_table;
static struct mu_lib mu_table;
static int tss_load_r;
static char tss_load_msg[CERTD_ERR_MSG_MAX];
static pthread_once_t tss_once = PTHREAD_ONCE_INIT;

static void tss_load(void)
{
    static const char *const esys_names[] = { ESYS_FUNCTIONS(DLIB_NAME) };
    static const char *const tctildr_names[] = { TCTILDR_FUNCTIONS(DLIB_NAME) };
    static const char *const mu_names[] = { MU_FUNCTIONS(DLIB_NAME) };
    static_assert(sizeof(struct esys_lib) == ELEMENTSOF(esys_names) * sizeof(void (*)(void)),
                  "struct esys_lib holds the functions of the list and nothing else");
    static_assert(sizeof(struct tctildr_lib) == ELEMENTSOF(tctildr_names) * sizeof(void (*)(void)),
                  "struct tctildr_lib holds the functions of the list and nothing else");
    static_assert(sizeof(struct mu_lib) == ELEMENTSOF(mu_names) * sizeof(void (*)(void)),
                  "struct mu_lib holds the functions of the list and nothing else");

    tss_load_r = dlib_load(TSS_ESYS_SONAME, esys_names, ELEMENTSOF(esys_names), &esys_table,
                           tss_load_msg, sizeof(tss_load_msg));
    if (tss_load_r < 0) {
        return;
    }
    tss_load_r = dlib_load(TSS_TCTILDR_SONAME, tctildr_names, ELEMENTSOF(tctildr_names),
                           &tctildr_table, tss_load_msg, sizeof(tss_load_msg));
    if (tss_load_r < 0) {
        return;
    }
    tss_load_r = dlib_load(TSS_MU_SONAME, mu_names, ELEMENTSOF(mu_names), &mu_table, tss_load_msg,
                           sizeof(tss_load_msg));
}

#define Esys_CreatePrimary(...)              (esys_table.Esys_CreatePrimary(__VA_ARGS__))
#define Esys_EvictControl(...)               (esys_table.Esys_EvictControl(__VA_ARGS__))
#define Esys_Finalize(...)                   (esys_table.Esys_Finalize(__VA_ARGS__))
#define Esys_FlushContext(...)               (esys_table.Esys_FlushContext(__VA_ARGS__))
#define Esys_Free(...)                       (esys_table.Esys_Free(__VA_ARGS__))
#define Esys_GetCapability(...)              (esys_table.Esys_GetCapability(__VA_ARGS__))
#define Esys_Initialize(...)                 (esys_table.Esys_Initialize(__VA_ARGS__))
#define Esys_Load(...)                       (esys_table.Esys_Load(__VA_ARGS__))
#define Esys_NV_DefineSpace(...)             (esys_table.Esys_NV_DefineSpace(__VA_ARGS__))
#define Esys_NV_ReadPublic(...)              (esys_table.Esys_NV_ReadPublic(__VA_ARGS__))
#define Esys_NV_UndefineSpace(...)           (esys_table.Esys_NV_UndefineSpace(__VA_ARGS__))
#define Esys_NV_Write(...)                   (esys_table.Esys_NV_Write(__VA_ARGS__))
#define Esys_TR_Close(...)                   (esys_table.Esys_TR_Close(__VA_ARGS__))
#define Esys_TR_FromTPMPublic(...)           (esys_table.Esys_TR_FromTPMPublic(__VA_ARGS__))
#define Esys_TR_SetAuth(...)                 (esys_table.Esys_TR_SetAuth(__VA_ARGS__))
#define Tss2_TctiLdr_Finalize(...)           (tctildr_table.Tss2_TctiLdr_Finalize(__VA_ARGS__))
#define Tss2_TctiLdr_Initialize(...)         (tctildr_table.Tss2_TctiLdr_Initialize(__VA_ARGS__))
#define Tss2_MU_TPM2B_PRIVATE_Unmarshal(...) (mu_table.Tss2_MU_TPM2B_PRIVATE_Unmarshal(__VA_ARGS__))
#define Tss2_MU_TPM2B_PUBLIC_Unmarshal(...)  (mu_table.Tss2_MU_TPM2B_PUBLIC_Unmarshal(__VA_ARGS__))

/* TPM2_PT_NV_BUFFER_MAX when the TPM does not say (TPM 2.0 PC Client profile minimum). */
#define TSS_NV_CHUNK_DEFAULT 1024u

/* The attributes of the NV indices we define (notes/tpm2.md §3, the tested recipe). */
#define TSS_NV_ATTRIBUTES \
    (TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD)

/* Handle types (TPM 2.0 Part 2 §7.2): the first octet of a handle. */
#define TSS_HANDLE_TYPE(h) ((h) >> 24)

struct tss {
    char *tcti_conf; /* NULL: the TSS default */
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    /*
     * After an error below the TPM (TCTI, ESYS) ESYS refuses every further command ("bad
     * sequence"): the next call connects again, so that a TPM that comes back is used again.
     */
    bool needs_reset;
    bool has_ecc; /* the primary template is chosen by the TPM's algorithms, as the provider does */
    bool has_rsa;
    uint16_t nv_chunk; /* bytes per TPM2_NV_Write */
};

/*
 * The TPM refused, or could not be reached (an error of the TCTI layer: a stopped swtpm, a
 * closed device): one message shape each, with the response code for people who look it up
 * (tpm2_rc_decode).
 */
static int tpm_fail(struct tss *t, struct certd_err *err, TSS2_RC rc, const char *what,
                    uint32_t handle)
{
    log_debug("tss: %s 0x%08" PRIx32 ": response code 0x%" PRIx32, what, handle, rc);
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER) {
        t->needs_reset = true;
    }
    if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER) {
        return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                       "cannot reach the TPM to %s 0x%08" PRIx32 " (response code 0x%" PRIx32 ")",
                       what, handle, rc);
    }
    return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                   "the TPM refused to %s 0x%08" PRIx32 " (response code 0x%" PRIx32 ")", what,
                   handle, rc);
}

/*
 * An ESYS object for the cleanup attribute: a transient is flushed from the TPM, any other
 * handle only forgotten by ESYS (Esys_TR_Close), so that no path leaves a slot taken.
 */
struct tss_obj {
    struct tss *t; /* its ESYS context may be replaced (needs_reset), but only between calls */
    ESYS_TR tr;
    bool is_transient;
};

static void tss_obj_release(struct tss_obj *o)
{
    if (o->tr == ESYS_TR_NONE) {
        return;
    }
    if (o->is_transient) {
        TSS2_RC rc = Esys_FlushContext(o->t->esys, o->tr);
        if (rc == TSS2_RC_SUCCESS) {
            o->tr = ESYS_TR_NONE;
            return;
        }
        /*
         * Not flushed: gone with a TPM that went away (its next startup clears transients), or
         * left in one a broken connection separated us from. Nothing else can be done safely
         * without a resource manager: by the time we are back its handle may be another
         * program's object.
         */
        log_debug("tss: flushing a transient object: response code 0x%" PRIx32, rc);
    }
    (void)Esys_TR_Close(o->t->esys, &o->tr);
    o->tr = ESYS_TR_NONE;
}

#define TSS_OBJ_NONE(t, transient)                                \
    {                                                             \
        .t = (t), .tr = ESYS_TR_NONE, .is_transient = (transient) \
    }

static void esys_freep(void *p)
{
    Esys_Free(*(void **)p);
}
#define _cleanup_esys_ _cleanup_(esys_freep)

static void tss_disconnect(struct tss *t)
{
    if (t->esys) {
        Esys_Finalize(&t->esys);
    }
    if (t->tcti) {
        Tss2_TctiLdr_Finalize(&t->tcti);
    }
}

static int tss_connect(struct tss *t, struct certd_err *err)
{
    const char *name = t->tcti_conf ? t->tcti_conf : "(default)";
    TSS2_RC rc = Tss2_TctiLdr_Initialize(t->tcti_conf, &t->tcti);
    if (rc != TSS2_RC_SUCCESS) {
        t->tcti = NULL;
        return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                       "cannot reach the TPM through TCTI %s (response code 0x%" PRIx32 ")", name,
                       rc);
    }
    rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        t->esys = NULL;
        tss_disconnect(t);
        return err_set(err, rc == TSS2_ESYS_RC_MEMORY ? -ENOMEM : -EIO,
                       rc == TSS2_ESYS_RC_MEMORY ? CERTD_E_NO_MEMORY : CERTD_E_UNAVAILABLE,
                       "cannot start a TPM session through TCTI %s (response code 0x%" PRIx32 ")",
                       name, rc);
    }
    return 0;
}

/* Before each command sequence: a context that an earlier failure broke is made anew. */
static int tss_ready(struct tss *t, struct certd_err *err)
{
    int r;

    if (!t->needs_reset) {
        return 0;
    }
    tss_disconnect(t);
    r = tss_connect(t, err);
    if (r < 0) {
        return r;
    }
    t->needs_reset = false;
    return 0;
}

struct tss *tss_close(struct tss *t)
{
    if (!t) {
        return NULL;
    }
    tss_disconnect(t);
    free(t->tcti_conf);
    free(t);
    return NULL;
}

/* The algorithms the TPM has, for the primary's template: the provider's own query. */
static int read_algorithms(struct tss *t, struct certd_err *err)
{
    _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_ALGS, 0, TPM2_MAX_CAP_ALGS, &more, &cap);
    if (rc != TSS2_RC_SUCCESS) {
        return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                       "cannot reach the TPM (response code 0x%" PRIx32 ")", rc);
    }
    uint32_t n = cap->data.algorithms.count;
    if (n > TPM2_MAX_CAP_ALGS) {
        n = TPM2_MAX_CAP_ALGS;
    }
    for (uint32_t i = 0; i < n; i++) {
        TPM2_ALG_ID alg = cap->data.algorithms.algProperties[i].alg;
        t->has_ecc = t->has_ecc || alg == TPM2_ALG_ECC;
        t->has_rsa = t->has_rsa || alg == TPM2_ALG_RSA;
    }
    return 0;
}

/* TPM2_PT_NV_BUFFER_MAX (TPM 2.0 Part 2 §6.13), bounded by the TSS's buffer. */
static int read_nv_chunk(struct tss *t, struct certd_err *err)
{
    _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS) {
        return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                       "cannot read the TPM's properties (response code 0x%" PRIx32 ")", rc);
    }
    uint32_t v = TSS_NV_CHUNK_DEFAULT;
    if (cap->data.tpmProperties.count >= 1 &&
        cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX &&
        cap->data.tpmProperties.tpmProperty[0].value > 0) {
        v = cap->data.tpmProperties.tpmProperty[0].value;
    }
    if (v > TPM2_MAX_NV_BUFFER_SIZE) {
        v = TPM2_MAX_NV_BUFFER_SIZE;
    }
    t->nv_chunk = (uint16_t)v;
    return 0;
}

int tss_open(const char *tcti, struct tss **ret, struct certd_err *err)
{
    _cleanup_(cleanup_tss) struct tss *t = NULL;
    int r;

    assert_return(ret, -EINVAL);

    (void)pthread_once(&tss_once, tss_load);
    if (tss_load_r < 0) {
        return err_set(err, tss_load_r, CERTD_E_UNAVAILABLE, "the TPM libraries are not usable: %s",
                       tss_load_msg);
    }
    /* The provider's order (tss.h): configuration, TPM2OPENSSL_TCTI, the TSS default. */
    if (!tcti || !*tcti) {
        tcti = getenv("TPM2OPENSSL_TCTI");
        if (tcti && !*tcti) {
            tcti = NULL;
        }
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (tcti) {
        t->tcti_conf = strdup(tcti);
        if (!t->tcti_conf) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    r = tss_connect(t, err);
    if (r < 0) {
        return r;
    }
    /* Both are fixed for the TPM's life; asking now also proves it answers. */
    r = read_algorithms(t, err);
    if (r < 0) {
        return r;
    }
    r = read_nv_chunk(t, err);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(t);
    return 0;
}

static bool handle_is_persistent(uint32_t handle)
{
    return handle >= TSS_PERSISTENT_FIRST && handle <= TSS_PERSISTENT_LAST;
}

static bool handle_is_nv(uint32_t handle)
{
    return handle >= TSS_NV_FIRST && handle <= TSS_NV_LAST;
}

/* Whether handle exists, asked without touching it (no ESYS error lines for a missing one). */
static int handle_exists(struct tss *t, uint32_t handle, bool *ret, struct certd_err *err)
{
    _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    /* TPM 2.0 Part 3 §30.2: the handles of handle's type, from handle on, in order. */
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_HANDLES, handle, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS) {
        return tpm_fail(t, err, rc, "list the handles from", handle);
    }
    *ret = cap->data.handles.count >= 1 && cap->data.handles.handle[0] == handle;
    return 0;
}

int tss_exists(struct tss *t, uint32_t handle, bool *ret, struct certd_err *err)
{
    int r;

    assert_return(t && ret, -EINVAL);
    if (!handle_is_persistent(handle) && !handle_is_nv(handle)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "handle 0x%08" PRIx32 " is neither a persistent object nor an NV index",
                       handle);
    }
    r = tss_ready(t, err);
    if (r < 0) {
        return r;
    }
    return handle_exists(t, handle, ret, err);
}

/*
 * The key blob the tpm2 provider writes (TCG "TSS2 PRIVATE KEY", as in tpm2-tss-engine and
 * the tpm2 provider): SEQUENCE { type OID, emptyAuth [0] EXPLICIT BOOLEAN OPTIONAL, parent
 * INTEGER, pubkey OCTET STRING (TPM2B_PUBLIC), privkey OCTET STRING (TPM2B_PRIVATE) }.
 * The typedef is what OpenSSL's template macros need.
 */
typedef struct {
    ASN1_OBJECT *type;
    ASN1_BOOLEAN empty_auth;
    ASN1_INTEGER *parent;
    ASN1_OCTET_STRING *pubkey;
    ASN1_OCTET_STRING *privkey;
} tss_keyblob;

ASN1_SEQUENCE(tss_keyblob) = {
    ASN1_SIMPLE(tss_keyblob, type, ASN1_OBJECT),
    ASN1_EXP_OPT(tss_keyblob, empty_auth, ASN1_BOOLEAN, 0),
    ASN1_SIMPLE(tss_keyblob, parent, ASN1_INTEGER),
    ASN1_SIMPLE(tss_keyblob, pubkey, ASN1_OCTET_STRING),
    ASN1_SIMPLE(tss_keyblob, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(tss_keyblob)

static void tss_keyblob_freep(tss_keyblob **p)
{
    ASN1_item_free((ASN1_VALUE *)*p, ASN1_ITEM_rptr(tss_keyblob));
}

#define TSS_PEM_BEGIN "-----BEGIN TSS2 PRIVATE KEY-----"
#define TSS_PEM_END   "-----END TSS2 PRIVATE KEY-----"
#define PEM_BEGIN_ANY "-----BEGIN "
/* The DER of a blob: the PEM's base64 at 3 bytes per 4 characters is always enough. */
#define TSS_KEY_DER_MAX (TSS_KEY_PEM_MAX / 4u * 3u)

/* 2.23.133.10.1.3, tcg-loadableKey: the content octets of the OID. */
static const uint8_t oid_loadable_key[] = { 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03 };

/* The handles a blob's parent may name: the owner hierarchy (0 in old blobs) or persistent. */
static bool parent_is_owner(uint64_t parent)
{
    return parent == TPM2_RH_OWNER || parent == 0;
}

static bool parent_is_persistent(uint64_t parent)
{
    return parent <= UINT32_MAX && TSS_HANDLE_TYPE(parent) == TPM2_HT_PERSISTENT;
}

struct tss_key {
    uint32_t parent; /* TPM2_RH_OWNER or a persistent handle */
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv;
};

static bool line_is(struct span line, const char *s)
{
    return span_eq(line, span_from_str(s));
}

static bool line_starts(struct span line, const char *s)
{
    size_t n = strlen(s);
    return line.len >= n && memcmp(line.p, s, n) == 0;
}

/* Strip the PEM armour (RFC 7468 §2, one block, nothing else but blanks) into der. */
static int key_pem_body(struct span pem, uint8_t *der, size_t size, size_t *ret_len,
                        struct certd_err *err)
{
    struct cursor c = cur_init(pem);
    struct span line, body;
    size_t body_start;
    int r;

    cur_skip_space(&c);
    if (cur_line(&c, &line) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_EMPTY, "the TPM key blob is empty");
    }
    if (!line_is(line, TSS_PEM_BEGIN)) {
        if (line_starts(line, PEM_BEGIN_ANY)) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
                           "not a TPM key blob: expected " TSS_PEM_BEGIN ", found another PEM "
                           "block");
        }
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "not a TPM key blob: it does not start with " TSS_PEM_BEGIN);
    }
    body_start = c.pos;
    for (;;) {
        size_t line_start = c.pos;
        if (cur_line(&c, &line) < 0) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_TRUNCATED,
                           "the TPM key blob has no " TSS_PEM_END " line");
        }
        if (line_is(line, TSS_PEM_END)) {
            body = span_make(pem.p + body_start, line_start - body_start);
            break;
        }
    }
    cur_skip_space(&c);
    if (cur_left(&c) > 0) {
        return err_set(err, -EBADMSG, CERTD_E_TRAILING_DATA,
                       "the TPM key blob has data after its " TSS_PEM_END " line");
    }
    r = base64_decode(body, BASE64_SKIP_BLANKS, der, size, ret_len);
    if (r < 0) {
        return err_set(err, -EBADMSG, CERTD_E_PEM_BAD_BLOCK,
                       "the TPM key blob's base64 does not decode");
    }
    return 0;
}

/* Decode the DER of a blob into key; only a loadable key under a parent we can make. */
static int key_decode(struct span der, struct tss_key *key, struct certd_err *err)
{
    _cleanup_(tss_keyblob_freep) tss_keyblob *blob = NULL;
    const unsigned char *p = der.p;
    uint64_t parent;
    size_t off;

    if (der.len > LONG_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "the TPM key blob is too large");
    }
    ERR_set_mark();
    blob = (tss_keyblob *)ASN1_item_d2i(NULL, &p, (long)der.len, ASN1_ITEM_rptr(tss_keyblob));
    if (!blob) {
        (void)ossl_drain_errors("tss: key blob");
        ERR_pop_to_mark();
        return err_set(err, -EBADMSG, CERTD_E_KEY_BAD,
                       "the TPM key blob is not a well-formed TSS2 key (DER)");
    }
    ERR_pop_to_mark();
    if ((size_t)(p - der.p) != der.len) {
        return err_set(err, -EBADMSG, CERTD_E_TRAILING_DATA,
                       "the TPM key blob has bytes after its DER structure");
    }
    if (OBJ_length(blob->type) != sizeof(oid_loadable_key) ||
        memcmp(OBJ_get0_data(blob->type), oid_loadable_key, sizeof(oid_loadable_key)) != 0) {
        char oid[80];
        if (OBJ_obj2txt(oid, sizeof(oid), blob->type, 1) <= 0) {
            (void)snprintf(oid, sizeof(oid), "(unreadable)");
        }
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "the TPM key blob is of type %s, not a loadable key (2.23.133.10.1.3)", oid);
    }
    if (ASN1_INTEGER_get_uint64(&parent, blob->parent) != 1) {
        ERR_clear_error();
        return err_set(err, -EBADMSG, CERTD_E_KEY_BAD,
                       "the TPM key blob's parent is not a TPM handle");
    }
    if (!parent_is_owner(parent) && !parent_is_persistent(parent)) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "the TPM key blob's parent 0x%" PRIx64
                       " is neither the owner hierarchy nor a persistent key",
                       parent);
    }
    key->parent = parent_is_owner(parent) ? TPM2_RH_OWNER : (uint32_t)parent;

    /* Both structures must fill their OCTET STRING exactly: no bytes the TPM would not see. */
    off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(ASN1_STRING_get0_data(blob->pubkey),
                                       (size_t)ASN1_STRING_length(blob->pubkey), &off,
                                       &key->pub) != TSS2_RC_SUCCESS ||
        off != (size_t)ASN1_STRING_length(blob->pubkey)) {
        return err_set(err, -EBADMSG, CERTD_E_KEY_BAD,
                       "the TPM key blob's public part is not a TPM2B_PUBLIC");
    }
    off = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(ASN1_STRING_get0_data(blob->privkey),
                                        (size_t)ASN1_STRING_length(blob->privkey), &off,
                                        &key->priv) != TSS2_RC_SUCCESS ||
        off != (size_t)ASN1_STRING_length(blob->privkey)) {
        return err_set(err, -EBADMSG, CERTD_E_KEY_BAD,
                       "the TPM key blob's private part is not a TPM2B_PRIVATE");
    }
    return 0;
}

static void tss_key_wipe(struct tss_key *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

static int key_parse(struct span pem, struct tss_key *key, struct certd_err *err)
{
    uint8_t der[TSS_KEY_DER_MAX];
    size_t der_len = 0;
    int r;

    if (pem.len == 0) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_EMPTY, "the TPM key blob is empty");
    }
    if (pem.len > TSS_KEY_PEM_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "the TPM key blob has %zu bytes, more than %u", pem.len, TSS_KEY_PEM_MAX);
    }
    if (span_has_nul(pem)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE, "the TPM key blob holds a NUL byte");
    }
    r = key_pem_body(pem, der, sizeof(der), &der_len, err);
    if (r >= 0) {
        r = key_decode(span_make(der, der_len), key, err);
    }
    /* The private part is wrapped by the TPM and useless elsewhere, but still key material. */
    OPENSSL_cleanse(der, sizeof(der));
    return r;
}

/*
 * The storage primary key under the owner hierarchy, made exactly as the tpm2 provider makes
 * it when it loads or generates a key (tpm2-openssl 1.1.1, tpm2_build_primary): a restricted
 * decryption key, ECC P-256 when the TPM has ECC, else RSA 2048, AES-128-CFB, SHA-256 name,
 * no unique data, empty auth. The same template on the same TPM gives the same key, the one
 * the blob's private part is wrapped for; any other template makes Esys_Load fail.
 */
static int primary_create(struct tss *t, struct tss_obj *ret, struct certd_err *err)
{
    static const TPM2B_SENSITIVE_CREATE sensitive = { .size = 0 };
    static const TPM2B_DATA outside = { .size = 0 };
    static const TPML_PCR_SELECTION pcrs = { .count = 0 };
    TPM2B_PUBLIC tmpl = { .size = 0 };
    TPMT_SYM_DEF_OBJECT sym = {
        .algorithm = TPM2_ALG_AES,
        .keyBits.aes = 128,
        .mode.aes = TPM2_ALG_CFB,
    };
    TPMT_PUBLIC *a = &tmpl.publicArea;
    TSS2_RC rc;

    a->nameAlg = TPM2_ALG_SHA256;
    a->objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                          TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN;
    if (t->has_ecc) {
        a->type = TPM2_ALG_ECC;
        a->parameters.eccDetail.symmetric = sym;
        a->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    } else if (t->has_rsa) {
        a->type = TPM2_ALG_RSA;
        a->parameters.rsaDetail.symmetric = sym;
        a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        a->parameters.rsaDetail.keyBits = 2048;
        a->parameters.rsaDetail.exponent = 0;
    } else {
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "the TPM has neither ECC nor RSA for its storage key");
    }
    rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                            &sensitive, &tmpl, &outside, &pcrs, &ret->tr, NULL, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        ret->tr = ESYS_TR_NONE;
        return tpm_fail(t, err, rc, "create the storage key under", TPM2_RH_OWNER);
    }
    return 0;
}

/* Load key under its parent into *ret (a transient); the parent is released before return. */
static int key_load(struct tss *t, const struct tss_key *key, struct tss_obj *ret,
                    struct certd_err *err)
{
    _cleanup_(tss_obj_release) struct tss_obj parent = TSS_OBJ_NONE(t, false);
    TSS2_RC rc;
    int r;

    if (key->parent == TPM2_RH_OWNER) {
        parent.is_transient = true;
        r = primary_create(t, &parent, err);
        if (r < 0) {
            return r;
        }
    } else {
        rc = Esys_TR_FromTPMPublic(t->esys, key->parent, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   &parent.tr);
        if (rc != TSS2_RC_SUCCESS) {
            parent.tr = ESYS_TR_NONE;
            return tpm_fail(t, err, rc, "find the key's parent", key->parent);
        }
        /*
         * A persistent parent's password: where the tpm2 provider takes it from when it loads a
         * key under one (TPM2OPENSSL_PARENT_AUTH), so both load the same keys.
         */
        const char *pw = getenv("TPM2OPENSSL_PARENT_AUTH");
        if (pw && pw[0]) {
            TPM2B_AUTH auth = { .size = 0 };
            size_t n = strlen(pw);
            if (n > sizeof(auth.buffer)) {
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                               "the parent's password is longer than %zu bytes",
                               sizeof(auth.buffer));
            }
            memcpy(auth.buffer, pw, n);
            auth.size = (UINT16)n;
            rc = Esys_TR_SetAuth(t->esys, parent.tr, &auth);
            OPENSSL_cleanse(&auth, sizeof(auth));
            if (rc != TSS2_RC_SUCCESS) {
                return tpm_fail(t, err, rc, "set the password of the key's parent", key->parent);
            }
        }
    }
    rc = Esys_Load(t->esys, parent.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &key->priv,
                   &key->pub, &ret->tr);
    if (rc != TSS2_RC_SUCCESS) {
        ret->tr = ESYS_TR_NONE;
        return tpm_fail(t, err, rc, "load the key (not made by this TPM?) under", key->parent);
    }
    return 0;
}

/* Evict the persistent object at handle, if there is one. */
static int persistent_evict(struct tss *t, uint32_t handle, struct certd_err *err)
{
    _cleanup_(tss_obj_release) struct tss_obj old = TSS_OBJ_NONE(t, false);
    ESYS_TR none = ESYS_TR_NONE;
    bool exists = false;
    TSS2_RC rc;
    int r;

    r = handle_exists(t, handle, &exists, err);
    if (r < 0 || !exists) {
        return r;
    }
    rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &old.tr);
    if (rc != TSS2_RC_SUCCESS) {
        old.tr = ESYS_TR_NONE;
        return tpm_fail(t, err, rc, "read the persistent object at", handle);
    }
    /* TPM 2.0 Part 3 §28.5: naming a persistent object evicts it; ESYS keeps its TR (closed
     * by the cleanup). */
    rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, old.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &none);
    if (rc != TSS2_RC_SUCCESS) {
        return tpm_fail(t, err, rc, "evict the persistent object at", handle);
    }
    return 0;
}

int tss_key_persist(struct tss *t, struct span tss2_pem, uint32_t handle, struct certd_err *err)
{
    _cleanup_(tss_obj_release) struct tss_obj loaded = TSS_OBJ_NONE(t, true);
    _cleanup_(tss_obj_release) struct tss_obj persisted = TSS_OBJ_NONE(t, false);
    _cleanup_(tss_key_wipe) struct tss_key key = { .parent = 0 };
    TSS2_RC rc;
    int r;

    assert_return(t, -EINVAL);
    assert_return(tss2_pem.p || tss2_pem.len == 0, -EINVAL);
    if (!handle_is_persistent(handle)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "handle 0x%08" PRIx32 " is not an owner persistent handle (0x%08" PRIx32
                       "..0x%08" PRIx32 ")",
                       handle, TSS_PERSISTENT_FIRST, TSS_PERSISTENT_LAST);
    }
    r = key_parse(tss2_pem, &key, err);
    if (r < 0) {
        return r;
    }
    if (key.parent == handle) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "handle 0x%08" PRIx32 " holds the key's own parent", handle);
    }
    r = tss_ready(t, err);
    if (r < 0) {
        return r;
    }
    r = key_load(t, &key, &loaded, err);
    if (r < 0) {
        return r;
    }
    r = persistent_evict(t, handle, err);
    if (r < 0) {
        return r;
    }
    rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, loaded.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &persisted.tr);
    if (rc != TSS2_RC_SUCCESS) {
        persisted.tr = ESYS_TR_NONE;
        return tpm_fail(t, err, rc, "make the key persistent at", handle);
    }
    return 0;
}

/* The NV index at handle as ESYS knows it, with its public area, when it exists. */
static int nv_open(struct tss *t, uint32_t handle, struct tss_obj *ret, TPM2B_NV_PUBLIC **ret_pub,
                   struct certd_err *err)
{
    TSS2_RC rc =
        Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ret->tr);
    if (rc != TSS2_RC_SUCCESS) {
        ret->tr = ESYS_TR_NONE;
        return tpm_fail(t, err, rc, "read the NV index", handle);
    }
    if (ret_pub) {
        rc = Esys_NV_ReadPublic(t->esys, ret->tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ret_pub,
                                NULL);
        if (rc != TSS2_RC_SUCCESS) {
            return tpm_fail(t, err, rc, "read the size of the NV index", handle);
        }
    }
    return 0;
}

static int nv_undefine(struct tss *t, struct tss_obj *nv, uint32_t handle, struct certd_err *err)
{
    TSS2_RC rc = Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, nv->tr, ESYS_TR_PASSWORD,
                                       ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
        return tpm_fail(t, err, rc, "remove the NV index", handle);
    }
    /* Esys_NV_UndefineSpace closed the TR. */
    nv->tr = ESYS_TR_NONE;
    return 0;
}

int tss_nv_write(struct tss *t, uint32_t handle, struct span data, struct certd_err *err)
{
    _cleanup_(tss_obj_release) struct tss_obj nv = TSS_OBJ_NONE(t, false);
    _cleanup_esys_ TPM2B_NV_PUBLIC *pub = NULL;
    bool exists = false;
    TSS2_RC rc;
    int r;

    assert_return(t, -EINVAL);
    assert_return(data.p || data.len == 0, -EINVAL);
    if (!handle_is_nv(handle)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "handle 0x%08" PRIx32 " is not an NV index (0x%08" PRIx32 "..0x%08" PRIx32
                       ")",
                       handle, TSS_NV_FIRST, TSS_NV_LAST);
    }
    if (data.len == 0) {
        return err_set(err, -EINVAL, CERTD_E_INPUT_EMPTY,
                       "nothing to write into NV index 0x%08" PRIx32, handle);
    }
    if (data.len > TSS_NV_DATA_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "%zu bytes do not fit into NV index 0x%08" PRIx32 " (at most %u)", data.len,
                       handle, TSS_NV_DATA_MAX);
    }
    r = tss_ready(t, err);
    if (r < 0) {
        return r;
    }
    r = handle_exists(t, handle, &exists, err);
    if (r < 0) {
        return r;
    }
    if (exists) {
        r = nv_open(t, handle, &nv, &pub, err);
        if (r < 0) {
            return r;
        }
        /* An index of another size, or that owner authorisation may not write, is made again:
         * the provider reads the whole index as the certificate. */
        if (pub->nvPublic.dataSize != data.len ||
            (pub->nvPublic.attributes & ~(TPMA_NV)TPMA_NV_WRITTEN) != TSS_NV_ATTRIBUTES) {
            log_debug("tss: NV index 0x%08" PRIx32 " has %u bytes, attributes 0x%" PRIx32
                      ": defined again",
                      handle, pub->nvPublic.dataSize, pub->nvPublic.attributes);
            r = nv_undefine(t, &nv, handle, err);
            if (r < 0) {
                return r;
            }
        }
    }
    if (nv.tr == ESYS_TR_NONE) {
        static const TPM2B_AUTH no_auth = { .size = 0 };
        TPM2B_NV_PUBLIC info = {
            .nvPublic = {
                .nvIndex = handle,
                .nameAlg = TPM2_ALG_SHA256,
                .attributes = TSS_NV_ATTRIBUTES,
                .authPolicy = { .size = 0 },
                .dataSize = (uint16_t)data.len,
            },
        };
        rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &no_auth, &info, &nv.tr);
        if (rc != TSS2_RC_SUCCESS) {
            nv.tr = ESYS_TR_NONE;
            return tpm_fail(t, err, rc, "define the NV index", handle);
        }
    }
    /* TPM 2.0 Part 3 §31.7: one command writes at most TPM2_PT_NV_BUFFER_MAX bytes. */
    for (size_t off = 0; off < data.len;) {
        TPM2B_MAX_NV_BUFFER chunk = { .size = 0 };
        size_t n = data.len - off;
        if (n > t->nv_chunk) {
            n = t->nv_chunk;
        }
        chunk.size = (uint16_t)n;
        memcpy(chunk.buffer, data.p + off, n);
        rc = Esys_NV_Write(t->esys, ESYS_TR_RH_OWNER, nv.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &chunk, (uint16_t)off);
        if (rc != TSS2_RC_SUCCESS) {
            return tpm_fail(t, err, rc, "write the NV index", handle);
        }
        off += n;
    }
    return 0;
}

int tss_remove(struct tss *t, uint32_t handle, struct certd_err *err)
{
    _cleanup_(tss_obj_release) struct tss_obj nv = TSS_OBJ_NONE(t, false);
    bool exists = false;
    int r;

    assert_return(t, -EINVAL);
    if (!handle_is_persistent(handle) && !handle_is_nv(handle)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "handle 0x%08" PRIx32 " is neither a persistent object nor an NV index",
                       handle);
    }
    r = tss_ready(t, err);
    if (r < 0) {
        return r;
    }
    if (handle_is_persistent(handle)) {
        return persistent_evict(t, handle, err);
    }
    r = handle_exists(t, handle, &exists, err);
    if (r < 0 || !exists) {
        return r;
    }
    r = nv_open(t, handle, &nv, NULL, err);
    if (r < 0) {
        return r;
    }
    return nv_undefine(t, &nv, handle, err);
}
