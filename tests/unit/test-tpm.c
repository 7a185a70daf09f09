/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys/ with a real (software) TPM: providers_libctx_new (order, parameters, the global query,
 * and the errors naming a provider), keys made in the TPM (held, their TSS2 blobs, signing a CSR
 * that OpenSSL verifies), bundle.c's TSS2 PRIVATE KEY, and uri.c (uri_check's rules; keys and
 * certificates by file:, handle: and object: URI). The group starts its own swtpm with
 * tools/swtpm-env in a scratch directory and stops it in its teardown (and the script stops it
 * if this program dies). The TPM has 3 object slots and no resource manager: each test frees
 * its TPM keys as soon as it can.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "keys/keys.h"
#include "keys/providers.h"
#include "keys/uri.h"
#include "testutil.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "x509/bundle.h"

/* Must match tests/unit/probe-provider.c. */
#define PROBE_EXPECTED "swtpm:host=127.0.0.1,port=2321 x/y"
/* What certd's configuration gives the tpm2 provider (tpm2.md P2): no TPM hashing, ciphers, RNG. */
#define TPM2_QUERY "tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes"
#define HANDLE_KEY "0x81000001"
#define HANDLE_NV  "0x01000010"

static struct {
    char *dir;            /* the swtpm's scratch directory */
    char tcti[128];       /* "swtpm:host=127.0.0.1,port=P" */
    char *probe;          /* path of the probe provider (argv[1]) */
    OSSL_LIB_CTX *libctx; /* default, then tpm2, with TPM2_QUERY */
} tpm;

/* ---- helpers (plain libc and OpenSSL, or tools the test drives) ---- */

static void assert_err(const struct certd_err *err, enum certd_errc code, const char *kw)
{
    if (err->code != code) {
        fail_msg("code %s, want %s (%s)", err_code_name(err->code), err_code_name(code), err->msg);
    }
    if (kw && !strstr(err->msg, kw)) {
        fail_msg("message '%s' lacks '%s'", err->msg, kw);
    }
}

/*
 * Run argv (argv[0] looked up in PATH), stdin from /dev/null, stdout into out (NUL-terminated;
 * nullable), stderr to ours. Returns the exit status, or -1 when it did not exit.
 */
static int run(const char *const argv[], char *out, size_t size)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(fds[1], 1) < 0) {
            _exit(126);
        }
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    (void)close(fds[1]);
    size_t used = 0;
    for (;;) {
        char buf[512];
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (out && used + (size_t)n < size) {
            memcpy(out + used, buf, (size_t)n);
            used += (size_t)n;
        }
    }
    if (out && size > 0) {
        out[used] = '\0';
    }
    (void)close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        assert_int_equal(errno, EINTR);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *swtpm_env_path(void)
{
    static char path[4096];
    const char *root = getenv("CERTD_SOURCE_ROOT");
    if (!root) {
        return NULL;
    }
    int n = snprintf(path, sizeof(path), "%s/tools/swtpm-env", root);
    return n > 0 && (size_t)n < sizeof(path) ? path : NULL;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static void file_put(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* A tpm2-tools command against our swtpm (TPM2TOOLS_TCTI is set by the group setup). */
static void tpm2_tool(const char *const argv[])
{
    int st = run(argv, NULL, 0);
    if (st != 0) {
        fail_msg("%s exited with %d", argv[0], st);
    }
}

/* Flush what tpm2-tools leave loaded (tpm2_load keeps its parent and key: no resource manager). */
static void tpm_flush(void)
{
    tpm2_tool((const char *const[]){ "tpm2_flushcontext", "-t", NULL });
}

/* The specs of a default,tpm2 context, with tcti as the tpm2 provider's parameter. */
struct two_specs {
    struct provider_param param;
    struct provider_spec specs[2];
};

static void two_specs_init(struct two_specs *t, const char *first, const char *second,
                           const char *tcti)
{
    *t = (struct two_specs){ .param = { .name = (char *)(uintptr_t) "tcti",
                                        .value = (char *)(uintptr_t)tcti } };
    (void)snprintf(t->specs[0].name, sizeof(t->specs[0].name), "%s", first);
    (void)snprintf(t->specs[1].name, sizeof(t->specs[1].name), "%s", second);
    struct provider_spec *tp = strcmp(first, "tpm2") == 0 ? &t->specs[0] : &t->specs[1];
    tp->params = &t->param;
    tp->n_params = 1;
}

/*
 * A context with default and tpm2 (in that order unless tpm2_first), tcti given as the tpm2
 * provider's parameter and, when env_tcti is set, also as TPM2OPENSSL_TCTI while it loads (the
 * variable the provider reads; keys/providers.h says why the parameter alone is not enough).
 */
static int tpm_ctx_new(bool tpm2_first, const char *tcti, const char *env_tcti, const char *query,
                       OSSL_LIB_CTX **ret, struct certd_err *err)
{
    struct two_specs t;
    two_specs_init(&t, tpm2_first ? "tpm2" : "default", tpm2_first ? "default" : "tpm2", tcti);
    if (env_tcti) {
        assert_int_equal(setenv("TPM2OPENSSL_TCTI", env_tcti, 1), 0);
    }
    int r = providers_libctx_new(t.specs, 2, query, ret, err);
    assert_int_equal(unsetenv("TPM2OPENSSL_TCTI"), 0);
    return r;
}

static EVP_PKEY *tpm_key(const char *spec_str)
{
    struct key_spec spec;
    struct certd_err err = { 0 };
    EVP_PKEY *k = NULL;
    assert_int_equal(key_spec_parse(spec_str, &spec, &err), 0);
    int r = key_generate(tpm.libctx, NULL, &spec, &k, &err);
    if (r != 0) {
        fail_msg("key_generate(%s): %d %s", spec_str, r, err.msg);
    }
    assert_non_null(k);
    return k;
}

/* The public key as SubjectPublicKeyInfo DER, read back into the default context. */
static char *pub_pem(const EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    assert_non_null(pub);
    char *pem = NULL;
    assert_int_equal(key_public_to_pem(NULL, NULL, pub, &pem), 0);
    EVP_PKEY_free(pub);
    return pem;
}

/* A key's TSS2 blob written to dir/name; returns the path. */
static char *blob_file(EVP_PKEY *k, const char *name)
{
    struct secret *pem = NULL;
    assert_int_equal(key_private_to_pem(tpm.libctx, NULL, k, &pem), 0);
    char *path = path_in(tpm.dir, name);
    file_put(path, pem->p, pem->len);
    pem = secret_free(pem);
    return path;
}

/* ---- group setup: our own swtpm ---- */

static int group_teardown(void **state)
{
    (void)state;
    OSSL_LIB_CTX_free(tpm.libctx);
    tpm.libctx = NULL;
    const char *script = swtpm_env_path();
    if (tpm.dir && script) {
        (void)run((const char *const[]){ script, "stop", tpm.dir, NULL }, NULL, 0);
    }
    scratch_rm(tpm.dir);
    tpm.dir = NULL;
    return 0;
}

static int group_setup(void **state)
{
    const char *script = swtpm_env_path();
    if (!script) {
        print_error("CERTD_SOURCE_ROOT is not set: run the tests with meson test\n");
        return -1;
    }
    if (!tpm.probe) {
        print_error("usage: test-tpm PATH-OF-certd-probe-provider.so (meson test passes it)\n");
        return -1;
    }
    tpm.dir = scratch_dir("tpm");
    /* The script stops the swtpm when this process is gone, even if it crashes. */
    char owner[32];
    (void)snprintf(owner, sizeof(owner), "%ld", (long)getpid());
    assert_int_equal(setenv("SWTPM_ENV_OWNER", owner, 1), 0);
    char out[1024];
    int st = run((const char *const[]){ script, "start", tpm.dir, NULL }, out, sizeof(out));
    (void)unsetenv("SWTPM_ENV_OWNER");
    static const char key[] = "export TPM2OPENSSL_TCTI='";
    const char *v = strstr(out, key);
    v = v ? v + strlen(key) : NULL;
    const char *end = v ? strchr(v, '\'') : NULL;
    if (st != 0 || !end || (size_t)(end - v) >= sizeof(tpm.tcti)) {
        print_error("tools/swtpm-env could not start a software TPM (exit %d; see its message "
                    "above): this test needs swtpm, swtpm-tools, tpm2-tools and tpm2-openssl "
                    "(scripts/install-deps installs them)\n",
                    st);
        (void)group_teardown(state);
        return -1;
    }
    (void)snprintf(tpm.tcti, sizeof(tpm.tcti), "%.*s", (int)(end - v), v);
    /* tpm2-tools read this; the provider gets its TCTI from us, never from a stale variable. */
    assert_int_equal(setenv("TPM2TOOLS_TCTI", tpm.tcti, 1), 0);
    assert_int_equal(unsetenv("TPM2OPENSSL_TCTI"), 0);

    struct certd_err err = { 0 };
    int r = tpm_ctx_new(false, tpm.tcti, tpm.tcti, TPM2_QUERY, &tpm.libctx, &err);
    if (r != 0) {
        print_error("no default,tpm2 context: %s\n", err.msg);
        (void)group_teardown(state);
        return -1;
    }
    return 0;
}

/* ---- providers_libctx_new ---- */

static void test_providers_tpm2(void **state)
{
    (void)state;
    assert_true(providers_is_loaded(tpm.libctx, "default"));
    assert_true(providers_is_loaded(tpm.libctx, "tpm2"));
    assert_false(providers_is_loaded(tpm.libctx, "base"));
    assert_false(providers_is_loaded(tpm.libctx, "fips"));
    assert_false(providers_is_loaded(tpm.libctx, "TPM2"));
    assert_false(providers_is_loaded(tpm.libctx, NULL));

    /*
     * The global query is in force: the main context's keeps digests out of the TPM (tpm2.md
     * P2); a query preferring tpm2 brings SHA-256 from there.
     */
    EVP_MD *md = EVP_MD_fetch(tpm.libctx, "SHA256", NULL);
    assert_non_null(md);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(md)), "default");
    EVP_MD_free(md);
    struct certd_err err = { 0 };
    OSSL_LIB_CTX *pref = NULL;
    assert_int_equal(tpm_ctx_new(false, tpm.tcti, tpm.tcti, "?provider=tpm2", &pref, &err), 0);
    md = EVP_MD_fetch(pref, "SHA256", NULL);
    const char *from = md ? OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(md)) : "(none)";
    bool is_tpm2 = strcmp(from, "tpm2") == 0;
    EVP_MD_free(md);
    OSSL_LIB_CTX_free(pref);
    assert_true(is_tpm2);

    /* Only what is listed: no fallback to the default provider. */
    struct provider_param tcti = { .name = (char *)(uintptr_t) "tcti", .value = tpm.tcti };
    struct provider_spec only = { .name = "tpm2", .params = &tcti, .n_params = 1 };
    OSSL_LIB_CTX *alone = NULL;
    assert_int_equal(setenv("TPM2OPENSSL_TCTI", tpm.tcti, 1), 0);
    assert_int_equal(providers_libctx_new(&only, 1, "", &alone, &err), 0);
    assert_int_equal(unsetenv("TPM2OPENSSL_TCTI"), 0);
    assert_true(providers_is_loaded(alone, "tpm2"));
    assert_false(providers_is_loaded(alone, "default"));
    OSSL_LIB_CTX_free(alone);
}

static void test_providers_errors(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    OSSL_LIB_CTX *ctx = (OSSL_LIB_CTX *)&err; /* marker: must stay untouched */

    /* A TPM that is not there: the provider is named, with OpenSSL's cause and our tcti. */
    int r = tpm_ctx_new(false, "swtpm:host=127.0.0.1,port=1", "swtpm:host=127.0.0.1,port=1", NULL,
                        &ctx, &err);
    assert_int_equal(r, -ENOENT);
    assert_ptr_equal(ctx, (OSSL_LIB_CTX *)&err);
    assert_err(&err, CERTD_E_UNAVAILABLE, "provider tpm2 cannot be loaded: ");
    assert_non_null(strstr(err.msg, "tcti"));
    assert_non_null(strstr(err.msg, "(with tcti=swtpm:host=127.0.0.1,port=1)"));

    /* No such provider module. */
    struct provider_spec nope[] = { { .name = "default" }, { .name = "certd-no-such" } };
    err_clear(&err);
    assert_int_equal(providers_libctx_new(nope, 2, NULL, &ctx, &err), -ENOENT);
    assert_err(&err, CERTD_E_UNAVAILABLE, "provider certd-no-such cannot be loaded: ");
    assert_non_null(strstr(err.msg, "could not load the shared library"));
    assert_ptr_equal(ctx, (OSSL_LIB_CTX *)&err);

    /* The first failure in order is the one named. */
    struct provider_spec two_bad[] = { { .name = "certd-bad-one" }, { .name = "certd-bad-two" } };
    err_clear(&err);
    assert_int_equal(providers_libctx_new(two_bad, 2, NULL, &ctx, &err), -ENOENT);
    assert_err(&err, CERTD_E_UNAVAILABLE, "provider certd-bad-one cannot");

    /* A query that does not parse is refused, not ignored. */
    static const char *const bad_queries[] = { "provider==default", "tpm2.digest!=yes,,x", "a b",
                                               "?" };
    for (size_t i = 0; i < ELEMENTSOF(bad_queries); i++) {
        struct provider_spec def = { .name = "default" };
        err_clear(&err);
        assert_int_equal(providers_libctx_new(&def, 1, bad_queries[i], &ctx, &err), -EINVAL);
        assert_err(&err, CERTD_E_FIELD_INVALID, "does not parse");
        assert_non_null(strstr(err.msg, bad_queries[i]));
    }

    /*
     * The tcti parameter alone, the environment variable unset: tpm2-openssl 1.1.1 drops the
     * parameter (keys/providers.h) and probes the TSS's default TPMs, which this machine has
     * not. Once the provider is fixed, this loads; either way nothing else is loaded quietly.
     */
    err_clear(&err);
    ctx = NULL;
    r = tpm_ctx_new(false, tpm.tcti, NULL, NULL, &ctx, &err);
    if (r == 0) {
        print_message("note: the tpm2 provider took its tcti from the configuration\n");
        assert_true(providers_is_loaded(ctx, "tpm2"));
        OSSL_LIB_CTX_free(ctx);
    } else {
        print_message("note: the tpm2 provider ignores its tcti parameter (keys/providers.h)\n");
        assert_int_equal(r, -ENOENT);
        assert_err(&err, CERTD_E_UNAVAILABLE, "provider tpm2 cannot be loaded: ");
        assert_null(ctx);
    }
}

/* Parameters reach the provider through the configuration, unchanged (probe-provider.c). */
static void test_providers_params(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int r;
    } cases[] = {
        { PROBE_EXPECTED, 0 },
        { "swtpm:host=127.0.0.1,port=2321 x/z", -ENOENT },
        { "swtpm:host=127.0.0.1,port=2321", -ENOENT },
        { NULL, -ENOENT }, /* no probe parameter */
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct provider_param params[] = {
            { .name = (char *)(uintptr_t) "module", .value = tpm.probe },
            { .name = (char *)(uintptr_t) "probe", .value = (char *)(uintptr_t)cases[i].value },
        };
        struct provider_spec specs[] = {
            { .name = "default" },
            { .name = "certd-probe", .params = params, .n_params = cases[i].value ? 2 : 1 }
        };
        struct certd_err err = { 0 };
        OSSL_LIB_CTX *ctx = NULL;
        int r = providers_libctx_new(specs, 2, NULL, &ctx, &err);
        if (r != cases[i].r) {
            fail_msg("case %zu: r=%d, want %d (%s)", i, r, cases[i].r, err.msg);
        }
        if (r == 0) {
            assert_true(providers_is_loaded(ctx, "certd-probe"));
            assert_true(providers_is_loaded(ctx, "default"));
            OSSL_LIB_CTX_free(ctx);
        } else {
            assert_err(&err, CERTD_E_UNAVAILABLE, "provider certd-probe cannot be loaded");
            assert_null(ctx);
        }
    }

    /* A parameter that looks like a secret is not shown. */
    struct provider_param secret[] = {
        { .name = (char *)(uintptr_t) "module", .value = tpm.probe },
        { .name = (char *)(uintptr_t) "parent-auth", .value = (char *)(uintptr_t) "hunter2" },
    };
    struct provider_spec spec = { .name = "certd-probe", .params = secret, .n_params = 2 };
    struct certd_err err = { 0 };
    OSSL_LIB_CTX *ctx = NULL;
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), -ENOENT);
    assert_err(&err, CERTD_E_UNAVAILABLE, "parent-auth=(hidden)");
    assert_null(strstr(err.msg, "hunter2"));
}

static void test_providers_spec_rules(void **state)
{
    (void)state;
    char long_value[PROVIDER_PARAM_VALUE_MAX + 2];
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    char max_value[PROVIDER_PARAM_VALUE_MAX + 1];
    memset(max_value, 'v', sizeof(max_value) - 1);
    max_value[sizeof(max_value) - 1] = '\0';
    char long_name[PROVIDER_PARAM_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    static const struct {
        const char *name;
        const char *value;
        const char *kw;
    } params[] = {
        { "activate", "1", "command" },
        { "soft_load", "1", "command" },
        { "identity", "default", "command" },
        { "x.activate", "1", "command" },
        { ".include", "/etc/passwd", "start with a letter" },
        { "-x", "1", "start with a letter" },
        { "a=b", "1", "may hold only" },
        { "a b", "1", "may hold only" },
        { "a:b", "1", "may hold only" },
        { "", "1", "1 to 63" },
        { NULL, "1", "missing" },
        { "tcti", "", "1 to 199" },
        { "tcti", NULL, "missing" },
        { "tcti", "$ENV::HOME", "printable ASCII" },
        { "tcti", "a#comment", "printable ASCII" },
        { "tcti", "a;b", "printable ASCII" },
        { "tcti", "\"quoted\"", "printable ASCII" },
        { "tcti", "it's", "printable ASCII" },
        { "tcti", "back\\slash", "printable ASCII" },
        { "tcti", "line\nbreak", "printable ASCII" },
        { "tcti", "tab\there", "printable ASCII" },
        { "tcti", "caf\xc3\xa9", "printable ASCII" },
        { "tcti", " lead", "start or end with a space" },
        { "tcti", "trail ", "start or end with a space" },
        { "tcti", "default", "names a section" },
        { "tcti", "certd_providers", "names a section" },
        { "tcti", "certd_provider_0", "names a section" },
    };
    for (size_t i = 0; i < ELEMENTSOF(params); i++) {
        struct provider_param p = { .name = (char *)(uintptr_t)params[i].name,
                                    .value = (char *)(uintptr_t)params[i].value };
        struct provider_spec spec = { .name = "certd-rules", .params = &p, .n_params = 1 };
        struct certd_err err = { 0 };
        OSSL_LIB_CTX *ctx = NULL;
        int r = providers_libctx_new(&spec, 1, NULL, &ctx, &err);
        if (r != -EINVAL || !strstr(err.msg, params[i].kw)) {
            fail_msg("param %zu: r=%d (%s), want -EINVAL with '%s'", i, r, err.msg, params[i].kw);
        }
        assert_err(&err, CERTD_E_FIELD_INVALID, "provider certd-rules: ");
        assert_null(ctx);
        /* Values are never quoted back: they may be secrets. */
        if (params[i].value && strlen(params[i].value) > 3) {
            assert_null(strstr(err.msg, params[i].value));
        }
    }

    /* Lengths at N and N+1; an unknown parameter of the right shape is the provider's. */
    struct provider_param at[] = { { .name = long_name + 1, .value = max_value } };
    struct provider_spec spec = { .name = "default", .params = at, .n_params = 1 };
    struct certd_err err = { 0 };
    OSSL_LIB_CTX *ctx = NULL;
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), 0);
    OSSL_LIB_CTX_free(ctx);
    ctx = NULL;
    at[0].name = long_name;
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "1 to 63");
    at[0].name = long_name + 1;
    at[0].value = long_value;
    err_clear(&err);
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "1 to 199");

    /* A parameter twice, too many parameters. */
    struct provider_param many[PROVIDER_PARAMS_MAX + 1];
    char names[PROVIDER_PARAMS_MAX + 1][8];
    for (size_t i = 0; i < ELEMENTSOF(many); i++) {
        (void)snprintf(names[i], sizeof(names[i]), "p%zu", i);
        many[i] = (struct provider_param){ .name = names[i], .value = (char *)(uintptr_t) "v" };
    }
    spec.params = many;
    spec.n_params = PROVIDER_PARAMS_MAX;
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), 0);
    OSSL_LIB_CTX_free(ctx);
    ctx = NULL;
    spec.n_params = PROVIDER_PARAMS_MAX + 1;
    err_clear(&err);
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "at most 16 parameters");
    many[1].name = names[0];
    spec.n_params = 2;
    err_clear(&err);
    assert_int_equal(providers_libctx_new(&spec, 1, NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "parameter p0 is given twice");

    /* Provider names, counts, duplicates. */
    static const char *const bad_names[] = { "",       "TPM2", "tpm 2",
                                             "tpm2.x", "a/b",  "x2345678901234567890123456789012" };
    for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
        struct provider_spec s = { .name = "" };
        /* The last fills all 32 bytes of the array: no room left for a terminator. */
        memcpy(s.name, bad_names[i], strnlen(bad_names[i], sizeof(s.name)));
        err_clear(&err);
        assert_int_equal(providers_libctx_new(&s, 1, NULL, &ctx, &err), -EINVAL);
        assert_err(&err, CERTD_E_FIELD_INVALID, "malformed provider name");
    }
    struct provider_spec dup[] = { { .name = "default" },
                                   { .name = "base" },
                                   { .name = "default" } };
    err_clear(&err);
    assert_int_equal(providers_libctx_new(dup, 3, NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "provider default is named twice");
    err_clear(&err);
    assert_int_equal(providers_libctx_new(dup, 0, NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "between 1 and 8 providers");
    struct provider_spec nine[PROVIDERS_MAX + 1];
    for (size_t i = 0; i < ELEMENTSOF(nine); i++) {
        nine[i] = (struct provider_spec){ .name = "" };
        (void)snprintf(nine[i].name, sizeof(nine[i].name), "p%zu", i);
    }
    err_clear(&err);
    assert_int_equal(providers_libctx_new(nine, ELEMENTSOF(nine), NULL, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "not 9");

    /* The query: printable, bounded. */
    struct provider_spec def = { .name = "default" };
    char long_query[PROVIDER_QUERY_MAX + 2];
    memset(long_query, 'q', sizeof(long_query) - 1);
    long_query[sizeof(long_query) - 1] = '\0';
    err_clear(&err);
    assert_int_equal(providers_libctx_new(&def, 1, long_query, &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "longer than 199");
    err_clear(&err);
    assert_int_equal(providers_libctx_new(&def, 1, "a=b\n", &ctx, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "printable");
    assert_null(ctx);
    assert_int_equal(providers_libctx_new(&def, 1, NULL, NULL, NULL), -EINVAL);
}

/* ---- keys in the TPM ---- */

static void check_tpm_key(const char *spec_str, enum key_alg alg, int bits)
{
    EVP_PKEY *k = tpm_key(spec_str);
    assert_true(key_is_held(k));
    assert_string_equal(key_provider_name(k), "tpm2");
    struct key_info info;
    assert_int_equal(key_describe(k, &info), 0);
    assert_int_equal(info.alg, alg);
    assert_int_equal(info.bits, bits);

    /* Its PEM is the TPM's wrapping, never the key itself. */
    struct secret *pem = NULL;
    assert_int_equal(key_private_to_pem(tpm.libctx, NULL, k, &pem), 0);
    assert_int_equal(strncmp((const char *)pem->p, "-----BEGIN TSS2 PRIVATE KEY-----\n", 33), 0);
    assert_null(memmem(pem->p, pem->len, "BEGIN PRIVATE KEY", 17));
    char *pub = pub_pem(k);
    /* Its public half alone, as certd keeps it: a software key, no TPM slot. */
    EVP_PKEY *half = NULL;
    assert_int_equal(key_public_dup(tpm.libctx, NULL, k, &half), 0);
    assert_string_equal(key_provider_name(half), "default");
    assert_false(key_is_held(half));
    char *half_pem = pub_pem(half);
    assert_string_equal(half_pem, pub);
    free(half_pem);
    EVP_PKEY_free(half);
    /* One key in the TPM at a time: parsing the blob loads it again. */
    EVP_PKEY_free(k);

    EVP_PKEY *back = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(key_parse_pem(tpm.libctx, NULL, span_make(pem->p, pem->len), &back, &err), 0);
    assert_true(key_is_held(back));
    assert_string_equal(key_provider_name(back), "tpm2");
    char *pub2 = pub_pem(back);
    assert_string_equal(pub, pub2);
    EVP_PKEY_free(back);

    /* Without the tpm2 provider, the blob is nothing: a clear error, no key. */
    OSSL_LIB_CTX *soft = NULL;
    struct provider_spec def = { .name = "default" };
    assert_int_equal(providers_libctx_new(&def, 1, NULL, &soft, &err), 0);
    back = NULL;
    err_clear(&err);
    assert_int_equal(key_parse_pem(soft, NULL, span_make(pem->p, pem->len), &back, &err),
                     -EOPNOTSUPP);
    assert_err(&err, CERTD_E_KEY_UNSUPPORTED,
               "no loaded provider can read a TSS2 PRIVATE KEY (load the tpm2 provider)");
    assert_null(back);
    OSSL_LIB_CTX_free(soft);

    free(pub);
    free(pub2);
    pem = secret_free(pem);
}

static void test_keygen_ec(void **state)
{
    (void)state;
    check_tpm_key("tpm2:ec:P-256", KEY_ALG_EC, 256);
}

static void test_keygen_rsa(void **state)
{
    (void)state;
    check_tpm_key("tpm2:rsa:2048", KEY_ALG_RSA, 2048);
}

/* tpm2.md P2/P3: after a TPM keygen, a spec without a provider still makes a software key. */
static void test_keygen_software_after_tpm(void **state)
{
    (void)state;
    EVP_PKEY *t = tpm_key("tpm2:ec:P-256");
    EVP_PKEY_free(t);
    static const char *const specs[] = { "ec:P-256", "ec:P-384", "rsa:2048" };
    for (size_t i = 0; i < ELEMENTSOF(specs); i++) {
        EVP_PKEY *k = tpm_key(specs[i]);
        assert_false(key_is_held(k));
        assert_string_equal(key_provider_name(k), "default");
        EVP_PKEY_free(k);
    }

    /* A provider that is not loaded is named, and no key is made anywhere else. */
    struct key_spec spec;
    assert_int_equal(key_spec_parse("fips:ec:P-256", &spec, NULL), 0);
    struct certd_err err = { 0 };
    EVP_PKEY *k = NULL;
    assert_int_equal(key_generate(tpm.libctx, NULL, &spec, &k, &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_ALG_UNSUPPORTED, "provider fips is not loaded");
    assert_null(k);

    /* A curve the TPM lacks: refused by the TPM's provider, not made in software. */
    struct key_spec p521;
    assert_int_equal(key_spec_parse("tpm2:ec:P-521", &p521, NULL), 0);
    err_clear(&err);
    int r = key_generate(tpm.libctx, NULL, &p521, &k, &err);
    if (r == 0) {
        /* This TPM has P-521: then the key is the TPM's. */
        assert_true(key_is_held(k));
        EVP_PKEY_free(k);
    } else {
        assert_true(r == -EOPNOTSUPP || r == -EIO);
        assert_non_null(strstr(err.msg, "tpm2"));
        assert_null(k);
    }
}

/* A CSR signed by a TPM key (through key_sign_ctx_new), verified by OpenSSL alone. */
static void check_csr(const char *spec_str)
{
    EVP_PKEY *k = tpm_key(spec_str);
    X509_REQ *req = X509_REQ_new_ex(tpm.libctx, NULL);
    assert_non_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"tpm.example", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
    EVP_MD_CTX *mctx = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(key_sign_ctx_new(tpm.libctx, NULL, k, &mctx, &err), 0);
    assert_true(X509_REQ_sign_ctx(req, mctx) > 0);
    EVP_MD_CTX_free(mctx);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    /* The request holds a reference to the key: both go, and the TPM slot with them. */
    X509_REQ_free(req);
    char *want = pub_pem(k);
    EVP_PKEY_free(k);

    const unsigned char *p = der;
    X509_REQ *back = d2i_X509_REQ(NULL, &p, n);
    assert_non_null(back);
    assert_int_equal(X509_REQ_verify(back, X509_REQ_get0_pubkey(back)), 1);
    char *got = pub_pem(X509_REQ_get0_pubkey(back));
    assert_string_equal(got, want);
    X509_REQ_free(back);
    OPENSSL_free(der);
    free(got);
    free(want);
}

static void test_sign_csr(void **state)
{
    (void)state;
    check_csr("tpm2:ec:P-256");
    check_csr("tpm2:rsa:2048");
    /* And a software key in the same context signs through its own provider. */
    check_csr("ec:P-384");
}

/* ---- uri.c ---- */

static void test_uri_check_table(void **state)
{
    (void)state;
    char long_uri[URI_MAX + 2];
    memset(long_uri, 'a', sizeof(long_uri) - 1);
    memcpy(long_uri, "file:///", 8);
    long_uri[sizeof(long_uri) - 1] = '\0';
    char max_uri[URI_MAX + 1];
    memset(max_uri, 'a', sizeof(max_uri) - 1);
    memcpy(max_uri, "foo:", 4);
    max_uri[sizeof(max_uri) - 1] = '\0';

    const struct {
        const char *uri;
        int r;
        enum uri_kind kind;
        const char *out; /* the path, the handle in hex, or a message word */
    } cases[] = {
        { "/etc/certd/key.pem", 0, URI_FILE, "/etc/certd/key.pem" },
        { "/etc/certd/a b.pem", 0, URI_FILE, "/etc/certd/a b.pem" },
        { "/etc/certd/caf\xc3\xa9.pem", 0, URI_FILE, "/etc/certd/caf\xc3\xa9.pem" },
        { "file:///etc/certd/key.pem", 0, URI_FILE, "/etc/certd/key.pem" },
        { "file:/etc/certd/key.pem", 0, URI_FILE, "/etc/certd/key.pem" },
        { "file://localhost/etc/k.pem", 0, URI_FILE, "/etc/k.pem" },
        { "file://LOCALHOST/etc/k.pem", 0, URI_FILE, "/etc/k.pem" },
        { "file:///etc/a%20b%2Bc.pem", 0, URI_FILE, "/etc/a b+c.pem" },
        { "file:///etc/a+b.pem", 0, URI_FILE, "/etc/a+b.pem" },
        { "handle:0x81000001", 0, URI_HANDLE, "81000001" },
        { "handle:0x01000010", 0, URI_HANDLE, "1000010" },
        { "handle:0x81ABCdef", 0, URI_HANDLE, "81abcdef" },
        { "object:/var/lib/certd/key.obj", 0, URI_OBJECT, "/var/lib/certd/key.obj" },
        { "pkcs11:token=x;object=y", 0, URI_OTHER, "" },
        { "x-y.z+w:anything", 0, URI_OTHER, "" },
        { "", -EINVAL, 0, "no path or URI" },
        { NULL, -EINVAL, 0, "no path or URI" },
        { "key.pem", -EINVAL, 0, "absolute path or a URI" },
        { "./key.pem", -EINVAL, 0, "absolute path or a URI" },
        { "certs/key.pem", -EINVAL, 0, "absolute path or a URI" },
        { "FILE:///etc/k.pem", -EINVAL, 0, "lowercase scheme" },
        { "1x:/etc/k.pem", -EINVAL, 0, "lowercase scheme" },
        { "file:etc/k.pem", -EINVAL, 0, "absolute path on this host" },
        { "file://host/etc/k.pem", -EINVAL, 0, "absolute path on this host" },
        { "file:///etc/k.pem?x=1", -EINVAL, 0, "query or fragment" },
        { "file:///etc/k.pem#f", -EINVAL, 0, "query or fragment" },
        { "file:///etc/a%zz", -EINVAL, 0, "bad percent-encoding" },
        { "file:///etc/a%4", -EINVAL, 0, "bad percent-encoding" },
        { "file:///etc/a%00b", -EINVAL, 0, "bad percent-encoding" },
        { "file:///etc/a%0ab", -EINVAL, 0, "control character" },
        { "file:///etc/a%7Fb", -EINVAL, 0, "control character" },
        { "file:///etc/%2e%2e/k", -EINVAL, 0, "'.' or '..'" },
        { "file:///etc/a%2f%2fb", -EINVAL, 0, "'//'" },
        { "file:///etc/", -EINVAL, 0, "must not end with '/'" },
        { "file:///etc/a b", -EINVAL, 0, "without spaces" },
        { "file:///etc/caf\xc3\xa9", -EINVAL, 0, "printable ASCII" },
        { "/etc//k.pem", -EINVAL, 0, "'//'" },
        { "/etc/./k.pem", -EINVAL, 0, "'.' or '..'" },
        { "/etc/../k.pem", -EINVAL, 0, "'.' or '..'" },
        { "/etc/k/", -EINVAL, 0, "must not end with '/'" },
        { "/", -EINVAL, 0, "not '/'" },
        { "/etc/k\n.pem", -EINVAL, 0, "control character" },
        { "/etc/k\t.pem", -EINVAL, 0, "control character" },
        { "handle:0x123", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle:0xZZ000000", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle:0x810000011", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle:0X81000001", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle:81000001", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle:0x81000001?pass", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle:", -EINVAL, 0, "0x and 8 hex digits" },
        { "handle: 0x81000001", -EINVAL, 0, "without spaces" },
        { "handle:0x8100 0001", -EINVAL, 0, "without spaces" },
        { "object:key.obj", -EINVAL, 0, "absolute path" },
        { "object:/a/../k.obj", -EINVAL, 0, "'.' or '..'" },
        { "object:", -EINVAL, 0, "absolute path" },
        { "foo:", -EINVAL, 0, "nothing after the scheme" },
        { "foo:bar\x7f", -EINVAL, 0, "printable ASCII" },
        { long_uri, -E2BIG, 0, "longer than 4200" },
        { max_uri, 0, URI_OTHER, "" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        enum uri_kind kind = URI_KIND_MAX;
        char *path = (char *)&err; /* markers: untouched on failure */
        uint32_t handle = 7;
        int r = uri_check(cases[i].uri, &kind, &path, &handle, &err);
        if (r != cases[i].r) {
            fail_msg("case %zu (%.40s): r=%d, want %d (%s)", i,
                     cases[i].uri ? cases[i].uri : "NULL", r, cases[i].r, err.msg);
        }
        if (r < 0) {
            assert_err(&err, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID,
                       cases[i].out);
            assert_int_equal(kind, URI_KIND_MAX);
            assert_ptr_equal(path, (char *)&err);
            assert_int_equal(handle, 7);
            continue;
        }
        assert_int_equal(err.code, CERTD_E_OK);
        assert_int_equal(kind, cases[i].kind);
        if (kind == URI_FILE || kind == URI_OBJECT) {
            assert_string_equal(path, cases[i].out);
            free(path);
        } else {
            assert_ptr_equal(path, (char *)&err);
        }
        if (kind == URI_HANDLE) {
            char hex[16];
            (void)snprintf(hex, sizeof(hex), "%x", handle);
            assert_string_equal(hex, cases[i].out);
        } else {
            assert_int_equal(handle, 7);
        }
    }
    /* Outputs are optional. */
    assert_int_equal(uri_check("file:///etc/k.pem", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(uri_check("handle:0x81000001", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(uri_check("handle:0x8100001", NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_uri_file_keys(void **state)
{
    (void)state;
    EVP_PKEY *k = tpm_key("tpm2:ec:P-256");
    char *blob = blob_file(k, "ec.tss2.pem");
    char *want = pub_pem(k);
    EVP_PKEY_free(k);

    /* The same key as a path, a file: URI and a percent-encoded one. */
    char *uris[3];
    uris[0] = strdup(blob);
    assert_true(asprintf(&uris[1], "file://%s", blob) > 0);
    size_t stem = strlen(blob) - strlen(".pem");
    assert_string_equal(blob + stem, ".pem");
    assert_true(asprintf(&uris[2], "file:%.*s%%2Epem", (int)stem, blob) > 0);
    for (size_t i = 0; i < ELEMENTSOF(uris); i++) {
        struct certd_err err = { 0 };
        EVP_PKEY *got = NULL;
        int r = uri_load_key(tpm.libctx, NULL, uris[i], &got, &err);
        if (r != 0) {
            fail_msg("%s: %d %s", uris[i], r, err.msg);
        }
        assert_true(key_is_held(got));
        char *pub = pub_pem(got);
        EVP_PKEY_free(got);
        assert_string_equal(pub, want);
        free(pub);
        free(uris[i]);
    }

    /* A software key file, in the same context: a software key. */
    struct certd_err err = { 0 };
    EVP_PKEY *sw = NULL;
    assert_int_equal(uri_load_key(tpm.libctx, NULL, fixture_path("server-ec.key"), &sw, &err), 0);
    assert_false(key_is_held(sw));
    EVP_PKEY *ref = fixture_key("server-ec.key");
    assert_true(key_public_eq(sw, ref));
    EVP_PKEY_free(ref);
    EVP_PKEY_free(sw);

    /* The blob without the tpm2 provider: no key. */
    OSSL_LIB_CTX *soft = NULL;
    struct provider_spec def = { .name = "default" };
    assert_int_equal(providers_libctx_new(&def, 1, NULL, &soft, &err), 0);
    sw = NULL;
    err_clear(&err);
    assert_true(uri_load_key(soft, NULL, blob, &sw, &err) < 0);
    assert_null(sw);
    assert_non_null(strstr(err.msg, blob));
    OSSL_LIB_CTX_free(soft);

    free(want);
    free(blob);
}

static void test_uri_handle_object(void **state)
{
    (void)state;
    /* Made persistent the way an administrator does it (tpm2.md §3), from a fresh key. */
    EVP_PKEY *k = tpm_key("tpm2:rsa:2048");
    char *blob = blob_file(k, "rsa.tss2.pem");
    char *want = pub_pem(k);
    EVP_PKEY_free(k);
    char *ctx_path = path_in(tpm.dir, "rsa.ctx");
    char *obj_path = path_in(tpm.dir, "rsa.obj");
    tpm2_tool((const char *const[]){ "tpm2_load", "-r", blob, "-c", ctx_path, NULL });
    tpm2_tool((const char *const[]){ "tpm2_evictcontrol", "-C", "o", "-c", ctx_path, HANDLE_KEY,
                                     "-o", obj_path, NULL });
    tpm_flush();

    char *object_uri = NULL;
    assert_true(asprintf(&object_uri, "object:%s", obj_path) > 0);
    const char *uris[] = { "handle:" HANDLE_KEY, object_uri };
    for (size_t i = 0; i < ELEMENTSOF(uris); i++) {
        struct certd_err err = { 0 };
        EVP_PKEY *got = NULL;
        int r = uri_load_key(tpm.libctx, NULL, uris[i], &got, &err);
        if (r != 0) {
            fail_msg("%s: %d %s", uris[i], r, err.msg);
        }
        assert_true(key_is_held(got));
        assert_string_equal(key_provider_name(got), "tpm2");
        char *pub = pub_pem(got);
        assert_string_equal(pub, want);
        free(pub);

        /* It signs, through its own provider. */
        EVP_MD_CTX *mctx = NULL;
        assert_int_equal(key_sign_ctx_new(tpm.libctx, NULL, got, &mctx, &err), 0);
        unsigned char sig[512];
        size_t siglen = sizeof(sig);
        static const unsigned char msg[] = "signed in the TPM";
        assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, msg, sizeof(msg)), 1);
        EVP_MD_CTX_free(mctx);
        EVP_PKEY_free(got);
    }

    /* A handle with nothing there: an error naming it, and no key. */
    struct certd_err err = { 0 };
    EVP_PKEY *got = NULL;
    int r = uri_load_key(tpm.libctx, NULL, "handle:0x81000099", &got, &err);
    /* OSSL_STORE cannot tell "no such handle" from "no TPM": unavailable, never "bad". */
    assert_int_equal(r, -EIO);
    assert_int_equal(err.code, CERTD_E_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "'handle:0x81000099'"));
    assert_null(got);
    /* A missing object file. */
    char *missing = NULL;
    assert_true(asprintf(&missing, "object:%s/none.obj", tpm.dir) > 0);
    err_clear(&err);
    assert_int_equal(uri_load_key(tpm.libctx, NULL, missing, &got, &err), -ENOENT);
    assert_err(&err, CERTD_E_NOT_FOUND, "no such file");
    free(missing);

    tpm2_tool((const char *const[]){ "tpm2_evictcontrol", "-C", "o", "-c", HANDLE_KEY, NULL });
    tpm_flush();
    free(object_uri);
    free(ctx_path);
    free(obj_path);
    free(want);
    free(blob);
}

static void test_uri_certs(void **state)
{
    (void)state;
    /* A certificate in an NV index, as DER. */
    X509 *cert = fixture_cert("server-ec.pem");
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    assert_true(n > 0 && n < 2048);
    char *der_path = path_in(tpm.dir, "cert.der");
    file_put(der_path, der, (size_t)n);
    OPENSSL_free(der);
    char size[16];
    (void)snprintf(size, sizeof(size), "%d", n);
    tpm2_tool((const char *const[]){ "tpm2_nvdefine", HANDLE_NV, "-C", "o", "-s", size, "-a",
                                     "ownerwrite|ownerread|authread|authwrite", NULL });
    tpm2_tool((const char *const[]){ "tpm2_nvwrite", HANDLE_NV, "-C", "o", "-i", der_path, NULL });

    STACK_OF(X509) *certs = NULL;
    struct certd_err err = { 0 };
    int r = uri_load_certs(tpm.libctx, NULL, "handle:" HANDLE_NV, &certs, &err);
    if (r != 0) {
        fail_msg("NV certificate: %d %s", r, err.msg);
    }
    assert_int_equal(sk_X509_num(certs), 1);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), cert), 0);
    sk_X509_pop_free(certs, X509_free);
    certs = NULL;
    /* A key URI is not a certificate URI, and the other way round. */
    EVP_PKEY *k = NULL;
    err_clear(&err);
    assert_int_equal(uri_load_key(tpm.libctx, NULL, "handle:" HANDLE_NV, &k, &err), -EBADMSG);
    assert_err(&err, CERTD_E_KEY_MISSING, "holds no private key");
    assert_null(k);
    tpm2_tool((const char *const[]){ "tpm2_nvundefine", HANDLE_NV, "-C", "o", NULL });
    X509_free(cert);
    free(der_path);

    /* A PEM chain file, in order; as a path and as a file: URI. */
    X509 *leaf = fixture_cert("server-ec-chain.pem");
    const char *chain = fixture_path("server-ec-chain.pem");
    char *chain_uri = NULL;
    assert_true(asprintf(&chain_uri, "file://%s", chain) > 0);
    const char *paths[] = { chain, chain_uri };
    for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
        err_clear(&err);
        assert_int_equal(uri_load_certs(tpm.libctx, NULL, paths[i], &certs, &err), 0);
        assert_int_equal(sk_X509_num(certs), 2);
        assert_int_equal(X509_cmp(sk_X509_value(certs, 0), leaf), 0);
        sk_X509_pop_free(certs, X509_free);
        certs = NULL;
    }
    free(chain_uri);
    X509_free(leaf);

    /* 32 certificates pass, 33 are too many. */
    size_t pem_len;
    uint8_t *one = fixture_read("server-ec.pem", &pem_len);
    char *many = path_in(tpm.dir, "many.pem");
    for (size_t count = CERTD_BUNDLE_CERTS_MAX; count <= CERTD_BUNDLE_CERTS_MAX + 1; count++) {
        int fd = open(many, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(write(fd, one, pem_len), (ssize_t)pem_len);
        }
        assert_int_equal(close(fd), 0);
        err_clear(&err);
        r = uri_load_certs(tpm.libctx, NULL, many, &certs, &err);
        if (count == CERTD_BUNDLE_CERTS_MAX) {
            assert_int_equal(r, 0);
            assert_int_equal(sk_X509_num(certs), (int)count);
            sk_X509_pop_free(certs, X509_free);
            certs = NULL;
        } else {
            assert_int_equal(r, -E2BIG);
            assert_err(&err, CERTD_E_TOO_MANY_VALUES, "more than 32");
            assert_null(certs);
        }
    }
    free(one);
    free(many);

    /* A key file holds no certificate. */
    err_clear(&err);
    assert_int_equal(uri_load_certs(tpm.libctx, NULL, fixture_path("server-ec.key"), &certs, &err),
                     -EBADMSG);
    assert_err(&err, CERTD_E_NO_CERT, "holds no certificate");
    assert_null(certs);
}

static void test_uri_errors(void **state)
{
    (void)state;
    char *dir_uri = NULL, *missing = NULL, *big = NULL, *two = NULL, *garbage = NULL;
    assert_true(asprintf(&dir_uri, "file://%s", tpm.dir) > 0);
    missing = path_in(tpm.dir, "missing.pem");
    big = path_in(tpm.dir, "big.pem");
    two = path_in(tpm.dir, "two-keys.pem");
    garbage = path_in(tpm.dir, "garbage.pem");

    /* Over the size limit, by one byte. */
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, CERTD_INPUT_MAX_HARD + 1), 0);
    assert_int_equal(close(fd), 0);
    /* Two keys in one file. */
    size_t l1, l2;
    uint8_t *k1 = fixture_read("server-ec.key", &l1);
    uint8_t *k2 = fixture_read("client-ec384.key", &l2);
    fd = open(two, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, k1, l1), (ssize_t)l1);
    assert_int_equal(write(fd, k2, l2), (ssize_t)l2);
    assert_int_equal(close(fd), 0);
    free(k1);
    free(k2);
    file_put(garbage, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 58);

    static const char *const enc = "server-ec-enc.key";
    const struct {
        const char *uri;
        int r;
        enum certd_errc code;
        const char *kw;
    } cases[] = {
        { "foo:bar", -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "no loaded provider opens 'foo:bar'" },
        { "handle:0x123", -EINVAL, CERTD_E_FIELD_INVALID, "0x and 8 hex digits" },
        { "key.pem", -EINVAL, CERTD_E_FIELD_INVALID, "absolute path" },
        { missing, -ENOENT, CERTD_E_NOT_FOUND, "no such file" },
        { dir_uri, -EINVAL, CERTD_E_FIELD_INVALID, "not a regular file" },
        { big, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "larger than" },
        { two, -EBADMSG, CERTD_E_MULTIPLE_KEYS, "more than one private key" },
        { fixture_path("server-ec.pem"), -EBADMSG, CERTD_E_KEY_MISSING, "holds no private key" },
        /* OpenSSL's file store skips a block it cannot decode. */
        { garbage, -EBADMSG, CERTD_E_KEY_MISSING, "none that a loaded provider reads" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        EVP_PKEY *k = (EVP_PKEY *)&err;
        int r = uri_load_key(tpm.libctx, NULL, cases[i].uri, &k, &err);
        if (r != cases[i].r) {
            fail_msg("case %zu (%s): r=%d, want %d (%s)", i, cases[i].uri, r, cases[i].r, err.msg);
        }
        assert_err(&err, cases[i].code, cases[i].kw);
        assert_ptr_equal(k, (EVP_PKEY *)&err);
    }

    /* An encrypted key: refused, never a prompt. */
    struct certd_err err = { 0 };
    EVP_PKEY *k = NULL;
    char *enc_path = strdup(fixture_path(enc));
    assert_int_equal(uri_load_key(tpm.libctx, NULL, enc_path, &k, &err), -EACCES);
    assert_err(&err, CERTD_E_KEY_ENCRYPTED, "wants a passphrase");
    assert_null(k);
    free(enc_path);

    /* Certificates: the same checks. */
    STACK_OF(X509) *certs = NULL;
    err_clear(&err);
    assert_int_equal(uri_load_certs(tpm.libctx, NULL, missing, &certs, &err), -ENOENT);
    assert_err(&err, CERTD_E_NOT_FOUND, "no such file");
    err_clear(&err);
    assert_int_equal(uri_load_certs(tpm.libctx, NULL, "foo:bar", &certs, &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_FIELD_INVALID, "no loaded provider opens");
    assert_null(certs);
    assert_int_equal(uri_load_certs(tpm.libctx, NULL, "/x", NULL, NULL), -EINVAL);
    assert_int_equal(uri_load_key(tpm.libctx, NULL, "/x", NULL, NULL), -EINVAL);

    free(dir_uri);
    free(missing);
    free(big);
    free(two);
    free(garbage);
}

/* Last: the TPM goes away under a loaded provider. Clear errors; software keys still work. */
static void test_tpm_stopped(void **state)
{
    (void)state;
    /* A blob made while the TPM was there. */
    EVP_PKEY *k = tpm_key("tpm2:ec:P-256");
    struct secret *pem = NULL;
    assert_int_equal(key_private_to_pem(tpm.libctx, NULL, k, &pem), 0);
    EVP_PKEY_free(k);
    const char *script = swtpm_env_path();
    assert_int_equal(run((const char *const[]){ script, "stop", tpm.dir, NULL }, NULL, 0), 0);

    struct key_spec spec;
    assert_int_equal(key_spec_parse("tpm2:ec:P-256", &spec, NULL), 0);
    struct certd_err err = { 0 };
    k = NULL;
    assert_int_equal(key_generate(tpm.libctx, NULL, &spec, &k, &err), -EIO);
    assert_err(&err, CERTD_E_UNAVAILABLE, "provider tpm2 failed to generate an EC key");
    assert_null(k);

    err_clear(&err);
    assert_int_equal(uri_load_key(tpm.libctx, NULL, "handle:" HANDLE_KEY, &k, &err), -EIO);
    assert_err(&err, CERTD_E_UNAVAILABLE, "its provider failed");
    assert_null(k);

    err_clear(&err);
    /* Unavailable, not "bad": a caller must not take the key for garbage and delete it. */
    assert_int_equal(key_parse_pem(tpm.libctx, NULL, span_make(pem->p, pem->len), &k, &err), -EIO);
    assert_err(&err, CERTD_E_UNAVAILABLE, "the TPM did not load the TSS2 key");
    assert_null(k);
    pem = secret_free(pem);

    k = tpm_key("ec:P-256");
    assert_false(key_is_held(k));
    EVP_PKEY_free(k);
}

int main(int argc, char **argv)
{
    tpm.probe = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_providers_tpm2),
        cmocka_unit_test(test_providers_errors),
        cmocka_unit_test(test_providers_params),
        cmocka_unit_test(test_providers_spec_rules),
        cmocka_unit_test(test_keygen_ec),
        cmocka_unit_test(test_keygen_rsa),
        cmocka_unit_test(test_keygen_software_after_tpm),
        cmocka_unit_test(test_sign_csr),
        cmocka_unit_test(test_uri_check_table),
        cmocka_unit_test(test_uri_file_keys),
        cmocka_unit_test(test_uri_handle_object),
        cmocka_unit_test(test_uri_certs),
        cmocka_unit_test(test_uri_errors),
        cmocka_unit_test(test_tpm_stopped),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
