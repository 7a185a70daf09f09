/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tss/ against a real software TPM: a fresh swtpm per test program (tools/swtpm-env, state in a
 * scratch directory), keys made by the tpm2 OpenSSL provider, and every result read back by
 * independent tools (openssl with the tpm2 provider, tpm2-tools). After each test the TPM holds
 * no transient object (tss.h: everything flushed on every path) and none of the handles the
 * tests use.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/asn1t.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "tss/tss.h"
#include "util/ossl.h"

#define KEY_HANDLE    0x81000020u
#define KEY_HANDLE_2  0x81000021u
#define PARENT_HANDLE 0x81000001u
#define NV_HANDLE     0x01000020u
#define NV_HANDLE_2   0x01000021u
#define NV_HANDLE_3   0x01000022u

#define PROVIDERS "-provider", "tpm2", "-provider", "default"

struct tpm {
    char *dir;
    char tcti[128];
};
static struct tpm tpm;

static const char *in_dir(const char *name)
{
    static char path[4][4096];
    static unsigned next;
    char *p = path[next++ % ELEMENTSOF(path)];
    int n = snprintf(p, sizeof(path[0]), "%s/%s", tpm.dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(path[0]));
    return p;
}

/*
 * Run argv (NULL-terminated) in tpm.dir with stdout into out (a name in tpm.dir, or NULL for
 * /dev/null) and stderr appended to stderr.log. Returns the exit status, -1 when it did not run.
 */
static int run(const char *const *argv, const char *out)
{
    char *args[32] = { NULL };
    posix_spawn_file_actions_t fa;
    extern char **environ;
    pid_t pid;
    int status = 0, r;

    for (size_t i = 0; argv[i]; i++) {
        assert_true(i + 1 < ELEMENTSOF(args));
        args[i] = strdup(argv[i]);
        assert_non_null(args[i]);
    }
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, out ? in_dir(out) : "/dev/null",
                                                      O_WRONLY | O_CREAT | O_TRUNC, 0600),
                     0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, in_dir("stderr.log"),
                                                      O_WRONLY | O_CREAT | O_APPEND, 0600),
                     0);
    assert_int_equal(posix_spawn_file_actions_addchdir_np(&fa, tpm.dir), 0);
    r = posix_spawnp(&pid, args[0], &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    for (size_t i = 0; args[i]; i++) {
        free(args[i]);
    }
    if (r != 0) {
        return -1;
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
        return -1;
    }
    return WEXITSTATUS(status);
}

#define RUN(out, ...) run((const char *const[]){ __VA_ARGS__, NULL }, out)

/* The whole file name in tpm.dir, malloc'd with a NUL after it. */
static uint8_t *slurp(const char *name, size_t *ret_len)
{
    FILE *f = fopen(in_dir(name), "re");
    assert_non_null(f);
    uint8_t *buf = malloc(65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    assert_true(feof(f));
    (void)fclose(f);
    buf[n] = '\0';
    if (ret_len) {
        *ret_len = n;
    }
    return buf;
}

static void spill(const char *name, const void *p, size_t len)
{
    FILE *f = fopen(in_dir(name), "we");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void assert_files_equal(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *pa = slurp(a, &la), *pb = slurp(b, &lb);
    assert_true(la > 0);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

/* tools/swtpm-env of this source tree (CERTD_SOURCE_ROOT, set by meson), in a static buffer. */
static const char *swtpm_env(void)
{
    static char path[4096];
    const char *root = getenv("CERTD_SOURCE_ROOT");
    assert_non_null(root);
    int n = snprintf(path, sizeof(path), "%s/tools/swtpm-env", root);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    return path;
}

/*
 * Start a fresh software TPM whose state lives in sub (a name in tpm.dir, "." for tpm.dir itself)
 * through the project's tools/swtpm-env, which picks free loopback ports and writes the TCTI
 * string to SUB/tcti; copy that into tcti. SWTPM_ENV_OWNER makes it stop the swtpm when this
 * program is gone, should it crash before it stops the swtpm itself.
 */
static void swtpm_up(const char *sub, char *tcti, size_t size)
{
    char owner[32], name[64];
    size_t len;

    (void)snprintf(owner, sizeof(owner), "%ld", (long)getpid());
    assert_int_equal(setenv("SWTPM_ENV_OWNER", owner, 1), 0);
    int r = RUN(NULL, swtpm_env(), "start", in_dir(sub));
    assert_int_equal(unsetenv("SWTPM_ENV_OWNER"), 0);
    if (r != 0) {
        fail_msg("tools/swtpm-env cannot start a software TPM (status %d), see %s", r,
                 in_dir("stderr.log"));
    }
    (void)snprintf(name, sizeof(name), "%s/tcti", sub);
    _cleanup_free_ uint8_t *text = slurp(name, &len);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
        len--;
    }
    assert_true(len > 0 && len < size);
    memcpy(tcti, text, len);
    tcti[len] = '\0';
}

static void swtpm_down(const char *sub)
{
    assert_int_equal(RUN(NULL, swtpm_env(), "stop", in_dir(sub)), 0);
}

/* The TPM of this program, in a scratch directory. */
static void swtpm_start(void)
{
    tpm.dir = scratch_dir("tss");
    swtpm_up(".", tpm.tcti, sizeof(tpm.tcti));
    /* The test's own environment, for the tools it runs (tss_open gets tcti explicitly). */
    assert_int_equal(setenv("TPM2TOOLS_TCTI", tpm.tcti, 1), 0);
    assert_int_equal(setenv("TPM2OPENSSL_TCTI", tpm.tcti, 1), 0);
}

static void swtpm_stop(void)
{
    swtpm_down(".");
    scratch_rm(tpm.dir);
    tpm.dir = NULL;
}

/* A key made by the tpm2 provider (notes/tpm2.md P3: the property query keeps it in the TPM). */
static void genpkey(const char *alg, const char *opt, const char *opt2, const char *out)
{
    int r = opt2 ? RUN(NULL, "openssl", "genpkey", PROVIDERS, "-propquery", "provider=tpm2",
                       "-algorithm", alg, "-pkeyopt", opt, "-pkeyopt", opt2, "-out", out)
                 : RUN(NULL, "openssl", "genpkey", PROVIDERS, "-propquery", "provider=tpm2",
                       "-algorithm", alg, "-pkeyopt", opt, "-out", out);
    assert_int_equal(r, 0);
    _cleanup_free_ uint8_t *pem = slurp(out, NULL);
    assert_non_null(strstr((char *)pem, "-----BEGIN TSS2 PRIVATE KEY-----"));
}

/* The public key of a TPM key (a blob file or a handle: URI) as the provider reads it. */
static int pubout(const char *in, const char *out)
{
    return RUN(NULL, "openssl", "pkey", PROVIDERS, "-in", in, "-pubout", "-out", out);
}

static int group_setup(void **state)
{
    (void)state;
    swtpm_start();
    if (RUN(NULL, "tpm2_getcap", "handles-transient") != 0) {
        fail_msg("tpm2-tools cannot reach the swtpm (see %s)", in_dir("stderr.log"));
    }
    genpkey("EC", "group:P-256", NULL, "ec.pem");
    genpkey("EC", "group:P-256", NULL, "ec2.pem");
    genpkey("RSA", "bits:2048", NULL, "rsa.pem");
    assert_int_equal(pubout("ec.pem", "ec.pub"), 0);
    assert_int_equal(pubout("ec2.pem", "ec2.pub"), 0);
    assert_int_equal(pubout("rsa.pem", "rsa.pub"), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    swtpm_stop();
    return 0;
}

/* What tpm2_getcap lists for a kind of handle, e.g. "handles-transient" (malloc'd). */
static char *getcap(const char *what)
{
    assert_int_equal(RUN("getcap.txt", "tpm2_getcap", what), 0);
    return (char *)slurp("getcap.txt", NULL);
}

/*
 * Each "- 0x..." line of a tpm2_getcap listing, put right with tool: a failed test must not fail
 * the ones after it.
 */
static void clean_up(const char *listing, const char *const *tool)
{
    for (const char *p = listing; (p = strstr(p, "- 0x")); p += 4) {
        char handle[11] = { 0 };
        memcpy(handle, p + 2, strnlen(p + 2, 10));
        const char *argv[8] = { NULL };
        size_t n = 0;
        while (tool[n]) {
            argv[n] = tool[n];
            n++;
        }
        argv[n] = handle;
        (void)run(argv, NULL);
    }
}

/* After every test: nothing transient left (tss.h), none of our handles left behind. */
static int test_teardown(void **state)
{
    (void)state;
    char *transient = getcap("handles-transient");
    char *persistent = getcap("handles-persistent");
    char *nv = getcap("handles-nv-index");
    (void)RUN(NULL, "tpm2_flushcontext", "-t");
    clean_up(persistent, (const char *const[]){ "tpm2_evictcontrol", "-C", "o", "-c", NULL });
    clean_up(nv, (const char *const[]){ "tpm2_nvundefine", "-C", "o", NULL });
    assert_string_equal(transient, "");
    assert_string_equal(persistent, "");
    assert_string_equal(nv, "");
    free(transient);
    free(persistent);
    free(nv);
    return 0;
}

static struct tss *open_tpm(void)
{
    struct certd_err err = { 0 };
    struct tss *t = NULL;
    assert_int_equal(tss_open(tpm.tcti, &t, &err), 0);
    assert_non_null(t);
    assert_false(err_is_set(&err));
    return t;
}

static void assert_exists(struct tss *t, uint32_t handle, bool expected)
{
    struct certd_err err = { 0 };
    bool is = !expected;
    assert_int_equal(tss_exists(t, handle, &is, &err), 0);
    assert_int_equal(is, expected);
}

static void assert_err(int r, const struct certd_err *err, int errno_expected, enum certd_errc code,
                       const char *word)
{
    assert_int_equal(r, errno_expected);
    assert_int_equal(err->code, code);
    if (!strstr(err->msg, word)) {
        fail_msg("message \"%s\" lacks \"%s\"", err->msg, word);
    }
}

static struct span file_span(const char *name, uint8_t **owned)
{
    size_t len;
    *owned = slurp(name, &len);
    return span_make(*owned, len);
}

static void persist_ok(struct tss *t, const char *blob, uint32_t handle)
{
    struct certd_err err = { 0 };
    _cleanup_free_ uint8_t *pem = NULL;
    assert_int_equal(tss_key_persist(t, file_span(blob, &pem), handle, &err), 0);
    assert_false(err_is_set(&err));
}

static void remove_ok(struct tss *t, uint32_t handle)
{
    struct certd_err err = { 0 };
    assert_int_equal(tss_remove(t, handle, &err), 0);
    assert_exists(t, handle, false);
}

/* The provider reads the key at handle back: the same public key as the blob's. */
static void assert_handle_is(uint32_t handle, const char *pub)
{
    char uri[32];
    (void)snprintf(uri, sizeof(uri), "handle:0x%08x", handle);
    assert_int_equal(pubout(uri, "handle.pub"), 0);
    assert_files_equal("handle.pub", pub);
}

static void test_open(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct tss *t = NULL;

    /* No TCTI given: TPM2OPENSSL_TCTI, as the provider does. */
    assert_int_equal(tss_open(NULL, &t, &err), 0);
    assert_exists(t, KEY_HANDLE, false);
    t = tss_close(t);
    assert_null(t);
    assert_null(tss_close(NULL));

    /* Nobody listens there. */
    err_clear(&err);
    assert_err(tss_open("swtpm:host=127.0.0.1,port=1", &t, &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "TPM");
    assert_null(t);
    /* No such TCTI library. */
    err_clear(&err);
    assert_err(tss_open("certd-no-such-tcti", &t, &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "certd-no-such-tcti");
    assert_null(t);
}

/*
 * A second software TPM on a unix socket in tpm.dir/second, started and stopped here (as
 * notes/tpm2.md §2 does, with unixio): unlike a TCP port, its address is still free when it
 * is started again, so a test can take a TPM away and bring the same one back.
 */
static void second_start(char *tcti, size_t size)
{
    char dir[4096], state[4200], server[4200], ctrl[4200], pidf[4200], logf[4200];

    (void)snprintf(dir, sizeof(dir), "%s", in_dir("second"));
    (void)snprintf(state, sizeof(state), "dir=%s,mode=0600", dir);
    (void)snprintf(server, sizeof(server), "type=unixio,path=%s/s", dir);
    (void)snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s/s.ctrl", dir);
    (void)snprintf(pidf, sizeof(pidf), "file=%s/swtpm.pid", dir);
    (void)snprintf(logf, sizeof(logf), "file=%s/swtpm.log,level=1", dir);
    /* AF_UNIX paths hold 107 bytes. */
    assert_true(strlen(dir) + strlen("/s.ctrl") < 100);
    assert_int_equal(RUN(NULL, "swtpm", "socket", "--tpm2", "--daemon", "--tpmstate", state,
                         "--server", server, "--ctrl", ctrl, "--flags",
                         "not-need-init,startup-clear", "--pid", pidf, "--log", logf, "--seccomp",
                         "action=none"),
                     0);
    int n = snprintf(tcti, size, "swtpm:path=%s/s", dir);
    assert_true(n > 0 && (size_t)n < size);
}

/*
 * Stop it through its control channel and wait, on inotify, until its pid file and sockets are
 * gone (swtpm removes them as it exits), so that the same paths can be used again at once.
 */
static void second_stop(void)
{
    static const char *const files[] = { "second/swtpm.pid", "second/s", "second/s.ctrl" };
    char ctrl[4200];
    int fd = inotify_init1(IN_CLOEXEC);

    assert_true(fd >= 0);
    assert_true(inotify_add_watch(fd, in_dir("second"), IN_DELETE) >= 0);
    (void)snprintf(ctrl, sizeof(ctrl), "%s/s.ctrl", in_dir("second"));
    assert_int_equal(RUN(NULL, "swtpm_ioctl", "--unix", ctrl, "-s"), 0);
    for (;;) {
        bool left = false;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
            left = left || access(in_dir(files[i]), F_OK) == 0;
        }
        if (!left) {
            break;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 60000), 1);
        char events[4096];
        assert_true(read(fd, events, sizeof(events)) > 0);
    }
    (void)close(fd);
}

/*
 * A TPM that goes away after tss_open: every call says so, none crashes or hangs; when it comes
 * back, the same context works again.
 */
static void test_tpm_gone(void **state)
{
    (void)state;
    _cleanup_free_ uint8_t *pem = NULL;
    struct certd_err err = { 0 };
    struct tss *t = NULL;
    char tcti[4200];
    bool is = true;

    assert_int_equal(mkdir(in_dir("second"), 0700), 0);
    second_start(tcti, sizeof(tcti));
    assert_int_equal(tss_open(tcti, &t, &err), 0);
    assert_int_equal(tss_exists(t, KEY_HANDLE, &is, &err), 0);
    assert_false(is);
    second_stop();

    assert_err(tss_exists(t, KEY_HANDLE, &is, &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "cannot reach the TPM");
    err_clear(&err);
    assert_err(tss_key_persist(t, file_span("ec.pem", &pem), KEY_HANDLE, &err), &err, -EIO,
               CERTD_E_UNAVAILABLE, "cannot reach the TPM");
    err_clear(&err);
    assert_err(tss_nv_write(t, NV_HANDLE, span_make("x", 1), &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "cannot reach the TPM");
    err_clear(&err);
    assert_err(tss_remove(t, NV_HANDLE, &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "cannot reach the TPM");
    err_clear(&err);
    struct tss *t2 = NULL;
    assert_err(tss_open(tcti, &t2, &err), &err, -EIO, CERTD_E_UNAVAILABLE, "cannot reach the TPM");
    assert_null(t2);

    /* Back (its state kept): the same context works again. */
    second_start(tcti, sizeof(tcti));
    err_clear(&err);
    assert_int_equal(tss_nv_write(t, NV_HANDLE, span_make("x", 1), &err), 0);
    assert_int_equal(tss_exists(t, NV_HANDLE, &is, &err), 0);
    assert_true(is);
    assert_int_equal(tss_remove(t, NV_HANDLE, &err), 0);
    assert_false(err_is_set(&err));
    /* A key of another TPM: this one cannot load it. */
    assert_err(tss_key_persist(t, span_from_str((char *)pem), KEY_HANDLE, &err), &err, -EIO,
               CERTD_E_UNAVAILABLE, "not made by this TPM");
    assert_int_equal(tss_exists(t, KEY_HANDLE, &is, &err), 0);
    assert_false(is);
    t = tss_close(t);
    second_stop();
}

/* A failed test_tpm_gone leaves no second swtpm running (its pid file goes when it exits). */
static int test_tpm_gone_teardown(void **state)
{
    if (access(in_dir("second/swtpm.pid"), F_OK) == 0) {
        second_stop();
    }
    return test_teardown(state);
}

static void test_persist_replace_remove(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();

    assert_exists(t, KEY_HANDLE, false);
    persist_ok(t, "ec.pem", KEY_HANDLE);
    assert_exists(t, KEY_HANDLE, true);
    assert_handle_is(KEY_HANDLE, "ec.pub");

    /* A second key at the same handle replaces the first: RSA, then another EC key. */
    persist_ok(t, "rsa.pem", KEY_HANDLE);
    assert_handle_is(KEY_HANDLE, "rsa.pub");
    persist_ok(t, "ec2.pem", KEY_HANDLE);
    assert_handle_is(KEY_HANDLE, "ec2.pub");

    /* Another handle next to it is left alone. */
    persist_ok(t, "ec.pem", KEY_HANDLE_2);
    assert_handle_is(KEY_HANDLE_2, "ec.pub");
    remove_ok(t, KEY_HANDLE);
    assert_exists(t, KEY_HANDLE_2, true);
    assert_handle_is(KEY_HANDLE_2, "ec.pub");
    remove_ok(t, KEY_HANDLE_2);
    /* Removing what is not there is no error. */
    remove_ok(t, KEY_HANDLE);
}

/* The owner range at both ends: 0x81000000 and 0x817FFFFF are ours, around them not. */
static void test_handle_limits(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    _cleanup_free_ uint8_t *pem = NULL;
    struct span blob = file_span("ec.pem", &pem);
    struct certd_err err = { 0 };
    bool is = false;

    persist_ok(t, "ec.pem", TSS_PERSISTENT_LAST);
    assert_handle_is(TSS_PERSISTENT_LAST, "ec.pub");
    remove_ok(t, TSS_PERSISTENT_LAST);
    persist_ok(t, "ec.pem", TSS_PERSISTENT_FIRST);
    remove_ok(t, TSS_PERSISTENT_FIRST);

    static const uint32_t not_persistent[] = {
        TSS_PERSISTENT_LAST + 1, TSS_PERSISTENT_FIRST - 1, NV_HANDLE, 0x40000001u, 0x80000000u, 0
    };
    for (size_t i = 0; i < ELEMENTSOF(not_persistent); i++) {
        err_clear(&err);
        assert_err(tss_key_persist(t, blob, not_persistent[i], &err), &err, -EINVAL,
                   CERTD_E_FIELD_INVALID, "persistent handle");
    }
    static const uint32_t not_nv[] = { TSS_NV_LAST + 1, TSS_NV_FIRST - 1, KEY_HANDLE };
    for (size_t i = 0; i < ELEMENTSOF(not_nv); i++) {
        err_clear(&err);
        assert_err(tss_nv_write(t, not_nv[i], span_make("x", 1), &err), &err, -EINVAL,
                   CERTD_E_FIELD_INVALID, "NV index");
    }
    static const uint32_t neither[] = {
        TSS_NV_LAST + 1,          TSS_NV_FIRST - 1, TSS_PERSISTENT_LAST + 1,
        TSS_PERSISTENT_FIRST - 1, 0x40000001u,      0x80000001u
    };
    for (size_t i = 0; i < ELEMENTSOF(neither); i++) {
        err_clear(&err);
        assert_err(tss_exists(t, neither[i], &is, &err), &err, -EINVAL, CERTD_E_FIELD_INVALID,
                   "neither");
        err_clear(&err);
        assert_err(tss_remove(t, neither[i], &err), &err, -EINVAL, CERTD_E_FIELD_INVALID,
                   "neither");
    }
    /* The ends of both ranges are valid to ask about. */
    assert_exists(t, TSS_NV_FIRST, false);
    assert_exists(t, TSS_NV_LAST, false);
    assert_exists(t, TSS_PERSISTENT_FIRST, false);
}

/* A key whose parent is a persistent storage key, as `-pkeyopt parent:` makes it. */
static void test_persistent_parent(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    _cleanup_free_ uint8_t *pem = NULL;
    struct certd_err err = { 0 };

    assert_int_equal(RUN(NULL, "tpm2_createprimary", "-C", "o", "-c", "primary.ctx"), 0);
    assert_int_equal(RUN(NULL, "tpm2_evictcontrol", "-C", "o", "-c", "primary.ctx", "0x81000001"),
                     0);
    /* tpm2-tools leave their objects loaded (they expect a resource manager). */
    assert_int_equal(RUN(NULL, "tpm2_flushcontext", "-t"), 0);
    genpkey("EC", "group:P-256", "parent:0x81000001", "child.pem");
    assert_int_equal(pubout("child.pem", "child.pub"), 0);

    persist_ok(t, "child.pem", KEY_HANDLE);
    assert_handle_is(KEY_HANDLE, "child.pub");

    /* Never over its own parent. */
    assert_err(tss_key_persist(t, file_span("child.pem", &pem), PARENT_HANDLE, &err), &err, -EINVAL,
               CERTD_E_FIELD_INVALID, "parent");
    assert_exists(t, PARENT_HANDLE, true);

    /* Without its parent the key cannot load: the TPM's answer, nothing left behind. */
    remove_ok(t, PARENT_HANDLE);
    err_clear(&err);
    assert_err(tss_key_persist(t, span_make(pem, strlen((char *)pem)), KEY_HANDLE_2, &err), &err,
               -EIO, CERTD_E_UNAVAILABLE, "parent");
    assert_exists(t, KEY_HANDLE_2, false);
    /* The old key stays where it was. */
    assert_handle_is(KEY_HANDLE, "child.pub");
    remove_ok(t, KEY_HANDLE);
}

/*
 * A persistent parent with a password: tss takes it where the provider does when it loads a key
 * (TPM2OPENSSL_PARENT_AUTH); without it, or with a wrong one, the TPM refuses and nothing moves.
 */
static void test_persistent_parent_with_password(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    _cleanup_free_ uint8_t *pem = NULL;
    struct certd_err err = { 0 };

    assert_int_equal(RUN(NULL, "tpm2_createprimary", "-C", "o", "-p", "pw1", "-c", "primary.ctx"),
                     0);
    assert_int_equal(RUN(NULL, "tpm2_evictcontrol", "-C", "o", "-c", "primary.ctx", "0x81000001"),
                     0);
    assert_int_equal(RUN(NULL, "tpm2_flushcontext", "-t"), 0);
    assert_int_equal(RUN(NULL, "openssl", "genpkey", PROVIDERS, "-propquery", "provider=tpm2",
                         "-algorithm", "EC", "-pkeyopt", "group:P-256", "-pkeyopt",
                         "parent:0x81000001", "-pkeyopt", "parent-auth:pw1", "-out", "child.pem"),
                     0);
    struct span blob = file_span("child.pem", &pem);

    assert_int_equal(unsetenv("TPM2OPENSSL_PARENT_AUTH"), 0);
    assert_err(tss_key_persist(t, blob, KEY_HANDLE, &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "load the key");
    assert_exists(t, KEY_HANDLE, false);
    assert_int_equal(setenv("TPM2OPENSSL_PARENT_AUTH", "wrong", 1), 0);
    err_clear(&err);
    assert_err(tss_key_persist(t, blob, KEY_HANDLE, &err), &err, -EIO, CERTD_E_UNAVAILABLE,
               "load the key");
    assert_exists(t, KEY_HANDLE, false);

    assert_int_equal(setenv("TPM2OPENSSL_PARENT_AUTH", "pw1", 1), 0);
    persist_ok(t, "child.pem", KEY_HANDLE);
    assert_int_equal(unsetenv("TPM2OPENSSL_PARENT_AUTH"), 0);
    assert_exists(t, KEY_HANDLE, true);
    remove_ok(t, KEY_HANDLE);
    remove_ok(t, PARENT_HANDLE);
}

/* tss_nv_write, read back through the provider's store (handle: of an NV index). */
static void assert_nv_is_cert(uint32_t handle, const char *der_file)
{
    char uri[32];
    (void)snprintf(uri, sizeof(uri), "handle:0x%08x", handle);
    assert_int_equal(
        RUN(NULL, "openssl", "x509", PROVIDERS, "-in", uri, "-outform", "DER", "-out", "nv.der"),
        0);
    assert_files_equal("nv.der", der_file);
}

static void write_cert_der(const char *fixture, const char *name, uint8_t **ret, size_t *ret_len)
{
    X509 *c = fixture_cert(fixture);
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    assert_true(n > 0);
    X509_free(c);
    spill(name, der, (size_t)n);
    *ret = malloc((size_t)n);
    assert_non_null(*ret);
    memcpy(*ret, der, (size_t)n);
    *ret_len = (size_t)n;
    OPENSSL_free(der);
}

static void test_nv_write(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    _cleanup_free_ uint8_t *ec = NULL, *rsa = NULL;
    struct certd_err err = { 0 };
    size_t ec_len, rsa_len;

    write_cert_der("server-ec.pem", "ec.der", &ec, &ec_len);
    write_cert_der("server-rsa.pem", "rsa.der", &rsa, &rsa_len);
    assert_true(ec_len != rsa_len);

    assert_exists(t, NV_HANDLE, false);
    assert_int_equal(tss_nv_write(t, NV_HANDLE, span_make(ec, ec_len), &err), 0);
    assert_exists(t, NV_HANDLE, true);
    assert_nv_is_cert(NV_HANDLE, "ec.der");
    /* The same size again: written over in place. */
    assert_int_equal(tss_nv_write(t, NV_HANDLE, span_make(ec, ec_len), &err), 0);
    assert_nv_is_cert(NV_HANDLE, "ec.der");
    /* Another size: the index is defined again with it. */
    assert_int_equal(tss_nv_write(t, NV_HANDLE, span_make(rsa, rsa_len), &err), 0);
    assert_nv_is_cert(NV_HANDLE, "rsa.der");
    assert_int_equal(tss_nv_write(t, NV_HANDLE, span_make(ec, ec_len), &err), 0);
    assert_nv_is_cert(NV_HANDLE, "ec.der");
    assert_false(err_is_set(&err));
    char *pub = NULL;
    assert_int_equal(RUN("nvpub.txt", "tpm2_nvreadpublic", "0x01000020"), 0);
    pub = (char *)slurp("nvpub.txt", NULL);
    char size_line[32];
    (void)snprintf(size_line, sizeof(size_line), "size: %zu", ec_len);
    assert_non_null(strstr(pub, size_line));
    free(pub);

    remove_ok(t, NV_HANDLE);
    remove_ok(t, NV_HANDLE);
}

/*
 * TSS_NV_DATA_MAX bytes take two TPM2_NV_Write commands (1024 each on swtpm); one more is refused,
 * as is nothing.
 */
static void test_nv_limits(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    _cleanup_free_ uint8_t *data = malloc(TSS_NV_DATA_MAX + 1);
    struct certd_err err = { 0 };
    char size[16];

    assert_non_null(data);
    for (size_t i = 0; i <= TSS_NV_DATA_MAX; i++) {
        data[i] = (uint8_t)(i * 7u + i / 251u);
    }
    spill("max.bin", data, TSS_NV_DATA_MAX);
    assert_int_equal(tss_nv_write(t, NV_HANDLE_2, span_make(data, TSS_NV_DATA_MAX), &err), 0);
    (void)snprintf(size, sizeof(size), "%u", TSS_NV_DATA_MAX);
    assert_int_equal(
        RUN(NULL, "tpm2_nvread", "0x01000021", "-C", "o", "-s", size, "-o", "max.read"), 0);
    assert_files_equal("max.read", "max.bin");

    assert_err(tss_nv_write(t, NV_HANDLE_2, span_make(data, TSS_NV_DATA_MAX + 1), &err), &err,
               -E2BIG, CERTD_E_INPUT_TOO_LARGE, "at most 2048");
    err_clear(&err);
    assert_err(tss_nv_write(t, NV_HANDLE_2, span_make(data, 0), &err), &err, -EINVAL,
               CERTD_E_INPUT_EMPTY, "nothing");
    /* Refused before the TPM was touched: the old contents are still there. */
    assert_int_equal(
        RUN(NULL, "tpm2_nvread", "0x01000021", "-C", "o", "-s", size, "-o", "max.read"), 0);
    assert_files_equal("max.read", "max.bin");
    remove_ok(t, NV_HANDLE_2);
}

/* An index someone defined with other attributes (no auth read) is defined again with ours. */
static void test_nv_foreign_attributes(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    _cleanup_free_ uint8_t *ec = NULL;
    struct certd_err err = { 0 };
    char size[16];
    size_t ec_len;

    write_cert_der("server-ec.pem", "ec.der", &ec, &ec_len);
    (void)snprintf(size, sizeof(size), "%zu", ec_len);
    assert_int_equal(RUN(NULL, "tpm2_nvdefine", "0x01000022", "-C", "o", "-s", size, "-a",
                         "ownerwrite|ownerread"),
                     0);
    assert_int_equal(tss_nv_write(t, NV_HANDLE_3, span_make(ec, ec_len), &err), 0);
    assert_int_equal(RUN("nvpub.txt", "tpm2_nvreadpublic", "0x01000022"), 0);
    char *pub = (char *)slurp("nvpub.txt", NULL);
    assert_non_null(strstr(pub, "authread"));
    assert_non_null(strstr(pub, "authwrite"));
    free(pub);
    assert_nv_is_cert(NV_HANDLE_3, "ec.der");
    remove_ok(t, NV_HANDLE_3);
}

/*
 * The key blob's own structure, to make variants of a real blob (the module has its own template;
 * this one only builds test input).
 */
typedef struct {
    ASN1_OBJECT *type;
    ASN1_BOOLEAN empty_auth;
    ASN1_INTEGER *parent;
    ASN1_OCTET_STRING *pubkey;
    ASN1_OCTET_STRING *privkey;
} test_blob;

ASN1_SEQUENCE(test_blob) = {
    ASN1_SIMPLE(test_blob, type, ASN1_OBJECT),
    ASN1_EXP_OPT(test_blob, empty_auth, ASN1_BOOLEAN, 0),
    ASN1_SIMPLE(test_blob, parent, ASN1_INTEGER),
    ASN1_SIMPLE(test_blob, pubkey, ASN1_OCTET_STRING),
    ASN1_SIMPLE(test_blob, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(test_blob)

/* The DER inside a PEM file of tpm.dir (malloc'd). */
static uint8_t *blob_der(const char *name, size_t *ret_len)
{
    BIO *b = BIO_new_file(in_dir(name), "r");
    char *pem_name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    assert_non_null(b);
    assert_int_equal(PEM_read_bio(b, &pem_name, &header, &der, &len), 1);
    assert_string_equal(pem_name, "TSS2 PRIVATE KEY");
    uint8_t *ret = malloc((size_t)len + 1);
    assert_non_null(ret);
    memcpy(ret, der, (size_t)len);
    *ret_len = (size_t)len;
    OPENSSL_free(pem_name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(b);
    return ret;
}

/* der as PEM with label (malloc'd, NUL-terminated). */
static char *armor(const char *label, const uint8_t *der, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    assert_non_null(b);
    assert_int_equal(PEM_write_bio(b, label, "", der, (long)len) > 0, 1);
    long n = BIO_get_mem_data(b, &p);
    char *ret = malloc((size_t)n + 1);
    assert_non_null(ret);
    memcpy(ret, p, (size_t)n);
    ret[n] = '\0';
    BIO_free(b);
    return ret;
}

enum blob_edit {
    EDIT_NONE,
    EDIT_OID,
    EDIT_OID_RSA,
    EDIT_PARENT,
    EDIT_PARENT_NEGATIVE,
    EDIT_PUB_GARBAGE,
    EDIT_PUB_TRAILING,
    EDIT_PRIV_SHORT,
    EDIT_PRIV_TRAILING,
    EDIT_PRIV_FLIPPED,
    EDIT_NO_EMPTY_AUTH,
};

/* The blob of file name with one field changed, as PEM (malloc'd). */
static char *blob_edited(const char *name, enum blob_edit edit, int64_t parent)
{
    size_t len;
    uint8_t *der = blob_der(name, &len);
    const unsigned char *p = der;
    test_blob *b = (test_blob *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(test_blob));
    assert_non_null(b);
    free(der);
    const unsigned char *pub = ASN1_STRING_get0_data(b->pubkey);
    int pub_len = ASN1_STRING_length(b->pubkey);
    const unsigned char *priv = ASN1_STRING_get0_data(b->privkey);
    int priv_len = ASN1_STRING_length(b->privkey);
    uint8_t buf[4096];
    assert_true(pub_len + 1 < (int)sizeof(buf) && priv_len + 1 < (int)sizeof(buf));

    switch (edit) {
    case EDIT_NONE:
        break;
    case EDIT_OID:
        ASN1_OBJECT_free(b->type);
        b->type = OBJ_txt2obj("2.23.133.10.1.4", 1); /* importable key */
        assert_non_null(b->type);
        break;
    case EDIT_OID_RSA:
        ASN1_OBJECT_free(b->type);
        b->type = OBJ_nid2obj(NID_rsaEncryption);
        break;
    case EDIT_PARENT:
    case EDIT_PARENT_NEGATIVE:
        assert_int_equal(ASN1_INTEGER_set_int64(b->parent, parent), 1);
        break;
    case EDIT_PUB_GARBAGE:
        assert_int_equal(ASN1_OCTET_STRING_set(b->pubkey, (const unsigned char *)"\x00\x05", 2), 1);
        break;
    case EDIT_PUB_TRAILING:
        memcpy(buf, pub, (size_t)pub_len);
        buf[pub_len] = 0;
        assert_int_equal(ASN1_OCTET_STRING_set(b->pubkey, buf, pub_len + 1), 1);
        break;
    case EDIT_PRIV_SHORT:
        memcpy(buf, priv, (size_t)priv_len);
        assert_int_equal(ASN1_OCTET_STRING_set(b->privkey, buf, priv_len - 1), 1);
        break;
    case EDIT_PRIV_TRAILING:
        memcpy(buf, priv, (size_t)priv_len);
        buf[priv_len] = 0;
        assert_int_equal(ASN1_OCTET_STRING_set(b->privkey, buf, priv_len + 1), 1);
        break;
    case EDIT_PRIV_FLIPPED:
        /* Well-formed, but the TPM's integrity check fails: Esys_Load refuses it. */
        memcpy(buf, priv, (size_t)priv_len);
        buf[priv_len / 2] ^= 0x5a;
        assert_int_equal(ASN1_OCTET_STRING_set(b->privkey, buf, priv_len), 1);
        break;
    case EDIT_NO_EMPTY_AUTH:
        b->empty_auth = -1;
        break;
    }
    unsigned char *out = NULL;
    int n = ASN1_item_i2d((ASN1_VALUE *)b, &out, ASN1_ITEM_rptr(test_blob));
    assert_true(n > 0);
    char *pem = armor("TSS2 PRIVATE KEY", out, (size_t)n);
    OPENSSL_free(out);
    ASN1_item_free((ASN1_VALUE *)b, ASN1_ITEM_rptr(test_blob));
    return pem;
}

struct bad_blob {
    const char *what;
    char *pem; /* malloc'd */
    size_t len;
    int r;
    enum certd_errc code;
    const char *word;
};

static void bad(struct bad_blob *b, size_t *n, const char *what, char *pem, size_t len, int r,
                enum certd_errc code, const char *word)
{
    assert_non_null(pem);
    b[*n] = (struct bad_blob){ what, pem, len, r, code, word };
    (*n)++;
}

static char *dup_str(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* a then b, malloc'd. */
static char *cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *d = malloc(la + lb + 1);
    assert_non_null(d);
    memcpy(d, a, la);
    memcpy(d + la, b, lb + 1);
    return d;
}

static void test_bad_blobs(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    struct bad_blob cases[40];
    size_t n = 0, der_len;
    char *good = (char *)slurp("ec.pem", NULL);
    uint8_t *der = blob_der("ec.pem", &der_len);
    size_t fixture_len;
    char *pkcs8 = (char *)fixture_read("server-ec.key", &fixture_len);
    char *cert = (char *)fixture_read("server-ec.pem", &fixture_len);

    bad(cases, &n, "garbage", dup_str("hello, TPM\n"), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "TSS2");
    bad(cases, &n, "empty", dup_str(""), 0, -EBADMSG, CERTD_E_INPUT_EMPTY, "empty");
    bad(cases, &n, "blanks", dup_str(" \r\n\t\n"), 0, -EBADMSG, CERTD_E_INPUT_EMPTY, "empty");
    bad(cases, &n, "pkcs8", dup_str(pkcs8), 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
        "another PEM");
    bad(cases, &n, "certificate", dup_str(cert), 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
        "another PEM");
    bad(cases, &n, "text before", cat("key:\n", good), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "TSS2");
    bad(cases, &n, "trailing text", cat(good, "x\n"), 0, -EBADMSG, CERTD_E_TRAILING_DATA, "after");
    bad(cases, &n, "two blobs", cat(good, good), 0, -EBADMSG, CERTD_E_TRAILING_DATA, "after");
    char *no_end = dup_str(good);
    *strstr(no_end, "-----END") = '\0';
    bad(cases, &n, "no END", no_end, 0, -EBADMSG, CERTD_E_PEM_TRUNCATED, "END");
    char *bad64 = dup_str(good);
    bad64[strlen("-----BEGIN TSS2 PRIVATE KEY-----\n") + 5] = '!';
    bad(cases, &n, "bad base64", bad64, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "base64");
    char *headers = dup_str(good);
    memcpy(headers + strlen("-----BEGIN TSS2 PRIVATE KEY-----\n"), "Proc-Type: 4,ENCRYPTED\n", 23);
    bad(cases, &n, "PEM headers", headers, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "base64");
    char *nul = dup_str(good);
    size_t nul_len = strlen(nul);
    nul[40] = '\0';
    bad(cases, &n, "embedded NUL", nul, nul_len, -EBADMSG, CERTD_E_INPUT_GARBAGE, "NUL");
    char *big = malloc(TSS_KEY_PEM_MAX + 2);
    assert_non_null(big);
    memset(big, '\n', TSS_KEY_PEM_MAX + 1);
    memcpy(big, good, strlen(good));
    big[TSS_KEY_PEM_MAX + 1] = '\0';
    bad(cases, &n, "N+1 bytes", big, 0, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "more than 8192");
    bad(cases, &n, "truncated DER", armor("TSS2 PRIVATE KEY", der, der_len - 10), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "DER");
    uint8_t *longer = malloc(der_len + 1);
    assert_non_null(longer);
    memcpy(longer, der, der_len);
    longer[der_len] = 0;
    bad(cases, &n, "DER + 1 byte", armor("TSS2 PRIVATE KEY", longer, der_len + 1), 0, -EBADMSG,
        CERTD_E_TRAILING_DATA, "after its DER");
    free(longer);
    bad(cases, &n, "other structure",
        armor("TSS2 PRIVATE KEY", (const uint8_t *)"\x30\x03\x02\x01\x01", 5), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "DER");
    bad(cases, &n, "importable key OID", blob_edited("ec.pem", EDIT_OID, 0), 0, -EOPNOTSUPP,
        CERTD_E_KEY_UNSUPPORTED, "2.23.133.10.1.4");
    bad(cases, &n, "rsaEncryption OID", blob_edited("ec.pem", EDIT_OID_RSA, 0), 0, -EOPNOTSUPP,
        CERTD_E_KEY_UNSUPPORTED, "1.2.840.113549.1.1.1");
    bad(cases, &n, "null hierarchy parent", blob_edited("ec.pem", EDIT_PARENT, 0x40000007), 0,
        -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "0x40000007");
    bad(cases, &n, "transient parent", blob_edited("ec.pem", EDIT_PARENT, 0x80000000), 0,
        -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "parent");
    bad(cases, &n, "33-bit parent", blob_edited("ec.pem", EDIT_PARENT, 0x181000001), 0, -EOPNOTSUPP,
        CERTD_E_KEY_UNSUPPORTED, "parent");
    bad(cases, &n, "negative parent", blob_edited("ec.pem", EDIT_PARENT_NEGATIVE, -1), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "parent");
    bad(cases, &n, "public garbage", blob_edited("ec.pem", EDIT_PUB_GARBAGE, 0), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "public");
    bad(cases, &n, "public + 1 byte", blob_edited("ec.pem", EDIT_PUB_TRAILING, 0), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "public");
    bad(cases, &n, "private short", blob_edited("ec.pem", EDIT_PRIV_SHORT, 0), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "private");
    bad(cases, &n, "private + 1 byte", blob_edited("ec.pem", EDIT_PRIV_TRAILING, 0), 0, -EBADMSG,
        CERTD_E_KEY_BAD, "private");
    /*
     * Well-formed but not the TPM's own: it refuses to load it, and the primary made for it is
     * flushed again (test_teardown).
     */
    bad(cases, &n, "private tampered", blob_edited("ec.pem", EDIT_PRIV_FLIPPED, 0), 0, -EIO,
        CERTD_E_UNAVAILABLE, "load");

    for (size_t i = 0; i < n; i++) {
        struct certd_err err = { 0 };
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].pem);
        int r = tss_key_persist(t, span_make(cases[i].pem, len), KEY_HANDLE, &err);
        if (r != cases[i].r || err.code != cases[i].code || !strstr(err.msg, cases[i].word)) {
            fail_msg("%s: got %d %s \"%s\", expected %d %s \"%s\"", cases[i].what, r,
                     err_code_name(err.code), err.msg, cases[i].r, err_code_name(cases[i].code),
                     cases[i].word);
        }
        assert_exists(t, KEY_HANDLE, false);
        free(cases[i].pem);
    }
    free(good);
    free(der);
    free(pkcs8);
    free(cert);
}

/* What the format allows beyond the provider's own output is accepted, up to N bytes. */
static void test_good_blob_variants(void **state)
{
    (void)state;
    _cleanup_(cleanup_tss) struct tss *t = open_tpm();
    char *good = (char *)slurp("ec.pem", NULL);
    size_t good_len = strlen(good);
    struct certd_err err = { 0 };

    /* Exactly TSS_KEY_PEM_MAX bytes: blank lines after the block. */
    char *max = malloc(TSS_KEY_PEM_MAX);
    assert_non_null(max);
    memset(max, '\n', TSS_KEY_PEM_MAX);
    memcpy(max, good, good_len);
    assert_int_equal(tss_key_persist(t, span_make(max, TSS_KEY_PEM_MAX), KEY_HANDLE, &err), 0);
    assert_handle_is(KEY_HANDLE, "ec.pub");
    free(max);

    /* CRLF line ends and blanks before the block. */
    char *crlf = malloc(2 * good_len + 8);
    assert_non_null(crlf);
    size_t k = 0;
    crlf[k++] = ' ';
    crlf[k++] = '\n';
    for (size_t i = 0; i < good_len; i++) {
        if (good[i] == '\n') {
            crlf[k++] = '\r';
        }
        crlf[k++] = good[i];
    }
    assert_int_equal(tss_key_persist(t, span_make(crlf, k), KEY_HANDLE, &err), 0);
    free(crlf);

    /* No emptyAuth field; a parent of 0 (older writers: the owner hierarchy). */
    char *no_auth = blob_edited("rsa.pem", EDIT_NO_EMPTY_AUTH, 0);
    assert_int_equal(tss_key_persist(t, span_from_str(no_auth), KEY_HANDLE, &err), 0);
    assert_handle_is(KEY_HANDLE, "rsa.pub");
    free(no_auth);
    char *parent0 = blob_edited("ec2.pem", EDIT_PARENT, 0);
    assert_int_equal(tss_key_persist(t, span_from_str(parent0), KEY_HANDLE, &err), 0);
    assert_handle_is(KEY_HANDLE, "ec2.pub");
    free(parent0);
    assert_false(err_is_set(&err));

    remove_ok(t, KEY_HANDLE);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_open, test_teardown),
        cmocka_unit_test_teardown(test_tpm_gone, test_tpm_gone_teardown),
        cmocka_unit_test_teardown(test_persist_replace_remove, test_teardown),
        cmocka_unit_test_teardown(test_handle_limits, test_teardown),
        cmocka_unit_test_teardown(test_persistent_parent, test_teardown),
        cmocka_unit_test_teardown(test_persistent_parent_with_password, test_teardown),
        cmocka_unit_test_teardown(test_nv_write, test_teardown),
        cmocka_unit_test_teardown(test_nv_limits, test_teardown),
        cmocka_unit_test_teardown(test_nv_foreign_attributes, test_teardown),
        cmocka_unit_test_teardown(test_bad_blobs, test_teardown),
        cmocka_unit_test_teardown(test_good_blob_variants, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
