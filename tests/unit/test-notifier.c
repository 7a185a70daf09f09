/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/notifier: every kind of reload on a real event loop. none and self; exec with scripts
 * in a scratch directory (arguments, stdin, descriptors and signal dispositions the child gets,
 * exit statuses, execv failures, timeouts that stop the whole process group, no zombie left,
 * refusals of untrusted programs); signal to a child of ours that waits for it, and the
 * refusals of unsafe or garbage pidfiles; systemd without a reachable bus, and against a
 * private dbus-daemon on which a peer owns org.freedesktop.systemd1 and answers as systemd does
 * (job path, then JobRemoved), including errors, timeouts and a bus that goes away.
 * The test process is a child subreaper, so that grandchildren a timeout kills come back to it.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "notifier.h"
#include "testutil.h"
#include "util/parse.h"

/* valgrind cannot survive a failed execve in a child (it exits 101), so those rows skip. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define is_under_valgrind() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef is_under_valgrind
#define is_under_valgrind() false
#endif

/* Generous: an event-driven wait only fails at this bound when something is broken. */
#define WAIT_SECONDS 60

/* ---- helpers (plain libc, never the code under test) ---- */

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* Write a file with exactly this mode (umask notwithstanding); returns its malloc'd path. */
static char *file_put(const char *dir, const char *name, const char *content, mode_t mode)
{
    char *p = path_join(dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return p;
}

/* Whole small file, NUL-terminated, in a static buffer; NULL when absent. */
static const char *file_get(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    (void)close(fd);
    return buf;
}

static pid_t file_get_pid(const char *path)
{
    const char *s = file_get(path);
    if (!s) {
        print_error("%s was not written: the script did not get that far\n", path);
        fail();
        return 0; /* not reached: cmocka's fail() does not return, but GCC cannot tell */
    }
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
    }
    assert_true(v > 1);
    return (pid_t)v;
}

struct result {
    int calls;
    int r;
    char msg[NOTIFIER_MESSAGE_MAX];
};

static void on_done(void *arg, int r, const char *msg)
{
    struct result *res = arg;
    res->calls++;
    res->r = r;
    assert_non_null(msg);
    assert_true(strlen(msg) < NOTIFIER_MESSAGE_MAX);
    (void)snprintf(res->msg, sizeof(res->msg), "%s", msg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Run the loop until done was called (event-driven; the deadline only catches a hang). */
static void wait_done(struct event_base *base, struct result *res)
{
    bool is_expired = false;
    struct event *deadline = evtimer_new(base, on_deadline, &is_expired);
    struct timeval tv = { .tv_sec = WAIT_SECONDS };

    assert_non_null(deadline);
    assert_int_equal(evtimer_add(deadline, &tv), 0);
    while (res->calls == 0 && !is_expired) {
        assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
    }
    event_free(deadline);
    if (is_expired) {
        print_error("no result after %d s\n", WAIT_SECONDS);
        fail();
    }
}

/* One result: r, and the message holds word; every message is printable ASCII. */
static void expect(const struct result *res, int r, const char *word)
{
    if (res->calls != 1 || res->r != r || !strstr(res->msg, word)) {
        print_error("got %d call(s), %d (%s) '%s'; want %d (%s) and '%s'\n", res->calls, res->r,
                    strerror(-res->r), res->msg, r, strerror(-r), word);
        fail();
    }
    for (const char *p = res->msg; *p; p++) {
        assert_true(*p >= 0x20 && *p < 0x7f);
    }
}

struct bus_env;
static void bus_env_stop(struct bus_env *b);

struct fixture {
    struct event_base *base;
    struct notifier *n;
    char *dir;
    struct bus_env *bus; /* stopped by the teardown too: a failed test leaves no daemon */
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(notifier_new(f->base, NULL, NULL, &f->n), 0);
    f->dir = scratch_dir("notifier");
    *state = f;
    return 0;
}

/* The same, with exec children watched through SIGCHLD (kernels without pidfd_open). */
static int fixture_setup_sigchld(void **state)
{
    (void)fixture_setup(state);
    notifier_use_sigchld(((struct fixture *)*state)->n);
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    f->n = notifier_free(f->n);
    if (f->bus) {
        bus_env_stop(f->bus);
    }
    event_base_free(f->base);
    scratch_rm(f->dir);
    free(f);
    return 0;
}

static struct config_endpoint endpoint_of(enum config_reload_kind kind)
{
    struct config_endpoint ep = { .type = ENDPOINT_CLIENT };
    (void)snprintf(ep.name, sizeof(ep.name), "ldap");
    ep.reload.kind = kind;
    return ep;
}

static struct result notify(struct fixture *f, const struct config_endpoint *ep)
{
    struct result res = { 0 };
    notifier_notify(f->n, ep, on_done, &res);
    wait_done(f->base, &res);
    return res;
}

/* ---- none, self ---- */

static void test_none(void **state)
{
    struct fixture *f = *state;
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_NONE);
    struct result res = { 0 };

    /* Synchronous: done before notifier_notify returns. */
    notifier_notify(f->n, &ep, on_done, &res);
    expect(&res, 0, "nothing");
    /* done is optional. */
    notifier_notify(f->n, &ep, NULL, NULL);
}

struct self_state {
    int calls;
    const struct config_endpoint *seen;
    int r;
    const char *msg; /* NULL: leave the message empty */
};

static int self_reload(void *userdata, const struct config_endpoint *ep, char *msg, size_t size)
{
    struct self_state *s = userdata;
    s->calls++;
    s->seen = ep;
    assert_int_equal(size, NOTIFIER_MESSAGE_MAX);
    if (s->msg) {
        (void)snprintf(msg, size, "%s", s->msg);
    }
    return s->r;
}

static void test_self(void **state)
{
    struct fixture *f = *state;
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SELF);
    static const struct {
        int r;
        const char *msg;
        const char *want;
    } cases[] = {
        { 0, "new TLS connections use the new certificate", "new TLS connections" },
        { 0, NULL, "reloaded its own certificate" },
        { -EIO, "cannot build the TLS context: key-mismatch", "cannot build the TLS context" },
        { -EIO, NULL, "Input/output error" },
        /* What the callback writes reaches a JSON response: control bytes are replaced. */
        { 0, "line\nbreak\x01", "line?break?" },
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct self_state s = { .r = cases[i].r, .msg = cases[i].msg };
        struct notifier *n = NULL;
        struct result res = { 0 };

        assert_int_equal(notifier_new(f->base, self_reload, &s, &n), 0);
        notifier_notify(n, &ep, on_done, &res);
        assert_int_equal(s.calls, 1);
        assert_ptr_equal(s.seen, &ep);
        expect(&res, cases[i].r, cases[i].want);
        n = notifier_free(n);
    }

    /* A notifier without a self callback refuses self. */
    struct result res = { 0 };
    notifier_notify(f->n, &ep, on_done, &res);
    expect(&res, -EOPNOTSUPP, "self");
}

/* ---- exec ---- */

/* The child's view of itself: its arguments, stdin, a descriptor we leak on purpose, its
 * process group and whether SIGPIPE (ignored by certd) is still ignored. */
static const char script_inspect[] =
    "#!/bin/sh\n"
    "out=\"$1\"\n"
    "{\n"
    "  echo \"arg2:$2\"\n"
    "  if [ -e /proc/$$/fd/250 ]; then echo fd250:open; else echo fd250:closed; fi\n"
    "  echo \"stdin:$(readlink /proc/$$/fd/0)\"\n"
    "  echo \"secret:${CERTD_TEST_SECRET-unset} other:${CERTD_TEST_OTHER-unset}\"\n"
    "  read -r stat < /proc/$$/stat\n"
    "  set -- $stat\n"
    "  if [ \"$1\" = \"$5\" ]; then echo pgrp:own; else echo pgrp:other; fi\n"
    "  while read -r k v; do [ \"$k\" = SigIgn: ] && echo \"sigign:$v\"; done < /proc/$$/status\n"
    "} > \"$out.tmp\"\n"
    "mv \"$out.tmp\" \"$out\"\n";

static void test_exec_success(void **state)
{
    struct fixture *f = *state;
    char *prog = file_put(f->dir, "inspect", script_inspect, 0755);
    char *out = path_join(f->dir, "out");
    char arg2[] = "two words";
    char *argv[] = { prog, out, arg2, NULL };
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_EXEC);
    const char *got;

    ep.reload.argv = argv;
    ep.reload.argc = 3;
    /* A descriptor without close-on-exec, as a careless library might leave one. */
    assert_true(fcntl(250, F_GETFD) < 0);
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak >= 0);
    assert_int_equal(dup2(leak, 250), 250);
    assert_int_equal(close(leak), 0);
    /* certd ignores SIGPIPE; the child must not inherit that. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    /* A secret certd keeps in its environment for a provider (a TPM parent's password). */
    static const char *const hidden[] = { "CERTD_TEST_SECRET", NULL };
    assert_int_equal(setenv("CERTD_TEST_SECRET", "s3cret", 1), 0);
    assert_int_equal(setenv("CERTD_TEST_OTHER", "kept", 1), 0);
    notifier_hide_env(f->n, hidden);

    struct result res = notify(f, &ep);
    (void)signal(SIGPIPE, old);
    notifier_hide_env(f->n, NULL);
    assert_int_equal(unsetenv("CERTD_TEST_SECRET"), 0);
    assert_int_equal(unsetenv("CERTD_TEST_OTHER"), 0);
    assert_int_equal(close(250), 0);
    expect(&res, 0, "ran ");
    assert_non_null(strstr(res.msg, "inspect"));
    /* Other words may hold secrets: never in the message. */
    assert_null(strstr(res.msg, "two words"));

    got = file_get(out);
    assert_non_null(got);
    assert_non_null(strstr(got, "arg2:two words\n")); /* one word, no shell splitting */
    assert_non_null(strstr(got, "fd250:closed\n"));
    assert_non_null(strstr(got, "stdin:/dev/null\n"));
    assert_non_null(strstr(got, "pgrp:own\n"));
    /* The rest of the environment goes on; the hidden variable does not. */
    assert_non_null(strstr(got, "secret:unset other:kept\n"));
    const char *ign = strstr(got, "sigign:");
    assert_non_null(ign);
    uint64_t mask = 0;
    for (const char *h = ign + 7; hex_digit_value(*h) >= 0; h++) {
        mask = mask << 4 | (uint64_t)hex_digit_value(*h);
    }
    assert_int_equal(mask & (UINT64_C(1) << (SIGPIPE - 1)), 0);

    /* A program reached through symlinks (/bin -> usr/bin on merged-/usr systems). */
    char true_path[] = "/bin/true";
    char *argv_true[] = { true_path, NULL };
    ep.reload.argv = argv_true;
    ep.reload.argc = 1;
    res = notify(f, &ep);
    expect(&res, 0, "ran /bin/true");
    free(prog);
    free(out);
}

static void test_exec_failures(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *script; /* NULL: no file */
        mode_t mode;
        int r;
        const char *word;
        bool is_execve_failure;
    } cases[] = {
        { "#!/bin/sh\nexit 3\n", 0755, -EIO, "exit status 3", false },
        { "#!/bin/sh\nkill -USR1 $$\n", 0755, -EIO, "killed by signal SIGUSR1", false },
        /* execv itself fails: the error comes back through the child's pipe. */
        { "#!/nonexistent/interpreter\n", 0755, -ENOENT, "cannot run it", true },
        { "\x7f"
          "ELF garbage",
          0755, -ENOEXEC, "cannot run it", true },
        /* Refused before anything runs. */
        { "#!/bin/sh\nexit 0\n", 0775, -EPERM, "writable by group or others", false },
        { "#!/bin/sh\nexit 0\n", 0757, -EPERM, "writable by group or others", false },
        { "#!/bin/sh\nexit 0\n", 0644, -EACCES, "not executable", false },
        { NULL, 0, -ENOENT, "No such file", false },
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char name[32];
        if (cases[i].is_execve_failure && is_under_valgrind()) {
            continue;
        }
        (void)snprintf(name, sizeof(name), "prog%zu", i);
        char *prog = cases[i].script ? file_put(f->dir, name, cases[i].script, cases[i].mode)
                                     : path_join(f->dir, name);
        char *argv[] = { prog, NULL };
        struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_EXEC);
        ep.reload.argv = argv;
        ep.reload.argc = 1;

        struct result res = notify(f, &ep);
        expect(&res, cases[i].r, cases[i].word);
        free(prog);
    }
}

static void test_exec_untrusted_places(void **state)
{
    struct fixture *f = *state;
    char *sub = path_join(f->dir, "sub");
    char *prog;
    char *argv[] = { NULL, NULL };
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_EXEC);
    struct result res;

    ep.reload.argv = argv;
    ep.reload.argc = 1;
    assert_int_equal(mkdir(sub, 0700), 0);
    prog = file_put(sub, "prog", "#!/bin/sh\nexit 0\n", 0755);
    argv[0] = prog;

    /* The directory holding it: others could swap the program. */
    assert_int_equal(chmod(sub, 0770), 0);
    res = notify(f, &ep);
    expect(&res, -EPERM, "writable by group or others");
    /* Sticky does not make the last directory acceptable. */
    assert_int_equal(chmod(sub, 01777), 0);
    res = notify(f, &ep);
    expect(&res, -EPERM, "writable by group or others");
    /* A directory above it may be sticky (as /tmp), not plainly writable. */
    assert_int_equal(chmod(sub, 0755), 0);
    assert_int_equal(chmod(f->dir, 01777), 0);
    res = notify(f, &ep);
    expect(&res, 0, "ran ");
    assert_int_equal(chmod(f->dir, 0777), 0);
    res = notify(f, &ep);
    expect(&res, -EPERM, "writable by group or others");
    assert_int_equal(chmod(f->dir, 0700), 0);

    /* Not ours, not root's (only root can make such a file here). */
    if (geteuid() == 0) {
        assert_int_equal(chown(prog, 65534, 65534), 0);
        res = notify(f, &ep);
        expect(&res, -EPERM, "owned by uid 65534");
        assert_int_equal(chown(prog, 0, 0), 0);
    }
    /* A directory is not a program. */
    argv[0] = sub;
    res = notify(f, &ep);
    expect(&res, -EPERM, "not a regular file");
    free(prog);
    free(sub);
}

static void check_stopped(struct fixture *f, const char *script, const char *how, int bg_sig)
{
    char *prog = file_put(f->dir, "slow", script, 0755);
    char *bg_file = path_join(f->dir, "bg.pid");
    char *leader_file = path_join(f->dir, "leader.pid");
    char *argv[] = { prog, bg_file, leader_file, NULL };
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_EXEC);
    int status = 0;

    ep.reload.argv = argv;
    ep.reload.argc = 3;
    (void)unlink(bg_file);
    (void)unlink(leader_file);
    /* Room for /bin/sh to start and write its pids on a loaded machine. */
    notifier_set_timeouts(f->n, 1500, 1000);

    struct result res = notify(f, &ep);
    expect(&res, -ETIMEDOUT, "timed out after 1500 ms");
    assert_non_null(strstr(res.msg, how));

    /* The leader was reaped by the notifier: no zombie of ours. */
    pid_t leader = file_get_pid(leader_file);
    errno = 0;
    assert_int_equal(waitpid(leader, &status, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    /*
     * Its background child, in the same group, was killed too. Its parent is gone, so it is
     * ours now (subreaper): wait for it, SIGALRM ending the test if it was not killed.
     */
    pid_t bg = file_get_pid(bg_file);
    alarm(WAIT_SECONDS);
    assert_int_equal(waitpid(bg, &status, 0), bg);
    alarm(0);
    assert_true(WIFSIGNALED(status));
    if (bg_sig == SIGTERM) {
        /* SIGTERM, or SIGKILL when the leader died first and the rest went with it. */
        assert_true(WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL);
    } else {
        assert_int_equal(WTERMSIG(status), bg_sig);
    }
    free(prog);
    free(bg_file);
    free(leader_file);
}

static void test_exec_timeout_term(void **state)
{
    check_stopped(*state,
                  "#!/bin/sh\n"
                  "sleep 1000 &\n"
                  "echo $! > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"\n"
                  "echo $$ > \"$2.tmp\"; mv \"$2.tmp\" \"$2\"\n"
                  "wait\n",
                  "SIGTERM", SIGTERM);
}

static void test_exec_timeout_kill(void **state)
{
    /* SIGTERM ignored by the script and (inherited) by its child: SIGKILL has to come. */
    check_stopped(*state,
                  "#!/bin/sh\n"
                  "trap '' TERM\n"
                  "sleep 1000 &\n"
                  "echo $! > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"\n"
                  "echo $$ > \"$2.tmp\"; mv \"$2.tmp\" \"$2\"\n"
                  "while :; do wait; done\n",
                  "SIGKILL", SIGKILL);
}

/* More than NOTIFIER_JOBS_MAX at once are refused; notifier_free kills and reaps the rest. */
static void test_exec_busy_and_free(void **state)
{
    struct fixture *f = *state;
    char *prog = file_put(f->dir, "sleeper", "#!/bin/sh\nexec sleep 1000\n", 0755);
    char *argv[] = { prog, NULL };
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_EXEC);
    struct result res[NOTIFIER_JOBS_MAX + 1];
    int status;

    memset(res, 0, sizeof(res));
    ep.reload.argv = argv;
    ep.reload.argc = 1;
    for (size_t i = 0; i < NOTIFIER_JOBS_MAX; i++) {
        notifier_notify(f->n, &ep, on_done, &res[i]);
        assert_int_equal(res[i].calls, 0);
    }
    notifier_notify(f->n, &ep, on_done, &res[NOTIFIER_JOBS_MAX]);
    expect(&res[NOTIFIER_JOBS_MAX], -EBUSY, "too many");

    f->n = notifier_free(f->n);
    /* Cancelled, not reported: their callers are gone at shutdown. */
    for (size_t i = 0; i < NOTIFIER_JOBS_MAX; i++) {
        assert_int_equal(res[i].calls, 0);
    }
    /* Every child was reaped: none is left, zombie or alive. */
    errno = 0;
    assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    free(prog);
}

/* ---- signal ---- */

static bool read_byte(int fd, char *ret)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;
    if (poll(&p, 1, WAIT_SECONDS * 1000) != 1 || read(fd, &c, 1) != 1) {
        return false;
    }
    if (ret) {
        *ret = c;
    }
    return true;
}

/*
 * A child that waits for sig and then writes 'g' to *ret_fd (its exit status is not used:
 * under valgrind a forked copy of the test may exit with valgrind's error code).
 */
static pid_t spawn_waiter(int sig, int *ret_fd)
{
    int p[2];
    char c = 0;
    sigset_t set;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    (void)sigemptyset(&set);
    (void)sigaddset(&set, sig);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int got = 0;
        (void)sigprocmask(SIG_BLOCK, &set, NULL);
        alarm(WAIT_SECONDS); /* never outlive a broken test */
        if (write(p[1], "r", 1) != 1) {
            _exit(1);
        }
        (void)sigwait(&set, &got);
        if (got == sig && write(p[1], "g", 1) != 1) {
            _exit(1);
        }
        _exit(0);
    }
    (void)close(p[1]);
    /* Blocked before it said so: the signal cannot come too early. */
    assert_true(read_byte(p[0], &c));
    assert_int_equal(c, 'r');
    *ret_fd = p[0];
    return pid;
}

static void test_signal_delivered(void **state)
{
    struct fixture *f = *state;
    static const struct {
        int sig;
        const char *name;
    } cases[] = { { SIGHUP, "SIGHUP" }, { SIGUSR1, "SIGUSR1" } };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        int fd = -1;
        pid_t pid = spawn_waiter(cases[i].sig, &fd);
        char content[32], want[64], c = 0;
        int status = 0;
        (void)snprintf(content, sizeof(content), "%d\n", (int)pid);
        char *pidfile = file_put(f->dir, "daemon.pid", content, 0644);
        struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SIGNAL);
        ep.reload.signal = cases[i].sig;
        ep.reload.pidfile = pidfile;

        struct result res = notify(f, &ep);
        (void)snprintf(want, sizeof(want), "sent %s to pid %d", cases[i].name, (int)pid);
        expect(&res, 0, want);
        assert_true(read_byte(fd, &c));
        assert_int_equal(c, 'g');
        assert_int_equal(waitpid(pid, &status, 0), pid);
        (void)close(fd);
        free(pidfile);
    }
}

static void test_signal_refused(void **state)
{
    struct fixture *f = *state;
    char big[NOTIFIER_PIDFILE_MAX + 2], exact[NOTIFIER_PIDFILE_MAX + 1], own[32], stale[32];
    int status;

    /* A process that is gone: its pid names nobody (until reused, which takes long). */
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0) {
        _exit(0);
    }
    assert_int_equal(waitpid(dead, &status, 0), dead);
    (void)snprintf(stale, sizeof(stale), "%d\n", (int)dead);
    (void)snprintf(own, sizeof(own), "%d", (int)getpid());
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* N bytes is read whole (and is then not a pid); N + 1 is too large. */
    memset(exact, '1', sizeof(exact) - 1);
    exact[sizeof(exact) - 1] = '\0';

    static const struct {
        const char *content;
        mode_t mode;
        int r;
        const char *word;
    } fixed[] = {
        { "", 0644, -EBADMSG, "one decimal process id" },
        { "12ab\n", 0644, -EBADMSG, "one decimal process id" },
        { " 123\n", 0644, -EBADMSG, "one decimal process id" },
        { "123 \n", 0644, -EBADMSG, "one decimal process id" },
        { "123\n\n", 0644, -EBADMSG, "one decimal process id" },
        { "0123\n", 0644, -EBADMSG, "one decimal process id" },
        { "-5\n", 0644, -EBADMSG, "one decimal process id" },
        { "99999999999\n", 0644, -EBADMSG, "one decimal process id" },
        { "1\n", 0644, -EINVAL, "names pid 1: refused" },
        { "0", 0644, -EINVAL, "names pid 0: refused" },
        { "123\n", 0664, -EPERM, "writable by group or others" },
        { "123\n", 0646, -EPERM, "writable by group or others" },
    };
    for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
        char *pidfile = file_put(f->dir, "x.pid", fixed[i].content, fixed[i].mode);
        struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SIGNAL);
        ep.reload.signal = SIGHUP;
        ep.reload.pidfile = pidfile;
        struct result res = notify(f, &ep);
        expect(&res, fixed[i].r, fixed[i].word);
        free(pidfile);
    }

    const struct {
        const char *content;
        int r;
        const char *word;
    } made[] = {
        { big, -E2BIG, "larger than 32 bytes" },
        { exact, -EBADMSG, "one decimal process id" },
        { own, -EINVAL, "certd itself" },
        { stale, -ESRCH, "no process" },
    };
    /* An embedded NUL: the number before it is not the file. */
    {
        char *pidfile = path_join(f->dir, "x.pid");
        int fd = open(pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, 0644), 0);
        assert_int_equal(write(fd,
                               "12\0"
                               "34",
                               5),
                         5);
        assert_int_equal(close(fd), 0);
        struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SIGNAL);
        ep.reload.signal = SIGHUP;
        ep.reload.pidfile = pidfile;
        struct result res = notify(f, &ep);
        expect(&res, -EBADMSG, "one decimal process id");
        free(pidfile);
    }
    for (size_t i = 0; i < ELEMENTSOF(made); i++) {
        char *pidfile = file_put(f->dir, "x.pid", made[i].content, 0644);
        struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SIGNAL);
        ep.reload.signal = SIGHUP;
        ep.reload.pidfile = pidfile;
        struct result res = notify(f, &ep);
        expect(&res, made[i].r, made[i].word);
        free(pidfile);
    }
}

static void test_signal_unsafe_files(void **state)
{
    struct fixture *f = *state;
    char *sub = path_join(f->dir, "run");
    char *pidfile, *link, *fifo;
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SIGNAL);
    struct result res;

    ep.reload.signal = SIGHUP;
    assert_int_equal(mkdir(sub, 0755), 0);
    pidfile = file_put(sub, "d.pid", "123\n", 0644);
    link = path_join(sub, "link.pid");
    fifo = path_join(sub, "fifo.pid");
    assert_int_equal(symlink(pidfile, link), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);

    ep.reload.pidfile = link;
    res = notify(f, &ep);
    expect(&res, -EPERM, "is a symlink");
    /* A FIFO would block a reader: refused without blocking the loop. */
    ep.reload.pidfile = fifo;
    res = notify(f, &ep);
    expect(&res, -EPERM, "not a regular file");
    ep.reload.pidfile = sub;
    res = notify(f, &ep);
    expect(&res, -EPERM, "not a regular file");

    ep.reload.pidfile = pidfile;
    assert_int_equal(chmod(sub, 0775), 0);
    res = notify(f, &ep);
    expect(&res, -EPERM, "writable by group or others");
    assert_int_equal(chmod(sub, 0755), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(pidfile, 65534, 65534), 0);
        res = notify(f, &ep);
        expect(&res, -EPERM, "owned by uid 65534");
        assert_int_equal(chown(pidfile, 0, 0), 0);
        assert_int_equal(chown(sub, 65534, 65534), 0);
        res = notify(f, &ep);
        expect(&res, -EPERM, "owned by uid 65534");
        assert_int_equal(chown(sub, 0, 0), 0);
    }
    assert_int_equal(unlink(pidfile), 0);
    res = notify(f, &ep);
    expect(&res, -ENOENT, "No such file");
    free(pidfile);
    free(link);
    free(fifo);
    free(sub);
}

/* ---- systemd ---- */

static void test_systemd_no_bus(void **state)
{
    struct fixture *f = *state;
    char *addr = NULL;
    char unit[] = "nslcd.service";
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SYSTEMD);

    /* Deterministic whatever the machine has: a bus address where nothing listens. */
    assert_true(asprintf(&addr, "unix:path=%s/no-bus", f->dir) > 0);
    assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1), 0);
    ep.reload.unit = unit;
    struct result res = notify(f, &ep);
    expect(&res, -ENOENT, "cannot connect to the system bus");
    assert_non_null(strstr(res.msg, "nslcd.service"));
    /* And again: nothing half-open was kept. */
    res = notify(f, &ep);
    expect(&res, -ENOENT, "cannot connect to the system bus");
    assert_int_equal(unsetenv("DBUS_SYSTEM_BUS_ADDRESS"), 0);
    free(addr);
}

/*
 * The peer: owns org.freedesktop.systemd1 on a private bus and answers ReloadOrRestartUnit as
 * systemd does: the job's path, then JobRemoved (after someone else's). good.service ends
 * "done", bad.service "failed", missing.service is an error, slow.service never answers.
 */
static int peer_reload(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
    static unsigned job_id = 100;
    int *call_fd = userdata;
    const char *unit = NULL, *mode = NULL;
    char path[64];
    sd_bus *bus = sd_bus_message_get_bus(m);
    int r;

    if (write(*call_fd, "c", 1) != 1) {
        return -EIO;
    }
    r = sd_bus_message_read(m, "ss", &unit, &mode);
    if (r < 0) {
        return r;
    }
    if (strcmp(mode, "replace") != 0) {
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "mode %s", mode);
    }
    if (strcmp(unit, "missing.service") == 0) {
        return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.",
                                 unit);
    }
    if (strcmp(unit, "slow.service") == 0) {
        return 1;
    }
    job_id++;
    (void)snprintf(path, sizeof(path), "/org/freedesktop/systemd1/job/%u", job_id);
    r = sd_bus_reply_method_return(m, "o", path);
    if (r >= 0) {
        r = sd_bus_emit_signal(bus, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                               "JobRemoved", "uoss", job_id + 1000,
                               "/org/freedesktop/systemd1/job/1", "other.service", "failed");
    }
    if (r >= 0) {
        r = sd_bus_emit_signal(bus, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                               "JobRemoved", "uoss", job_id, path, unit,
                               strcmp(unit, "bad.service") == 0 ? "failed" : "done");
    }
    return r;
}

static const sd_bus_vtable peer_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("ReloadOrRestartUnit", "ss", "o", peer_reload, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("JobRemoved", "uoss", 0), SD_BUS_VTABLE_END
};

_noreturn_ static void peer_main(const char *address, int ready_fd, int call_fd)
{
    sd_bus *bus = NULL;

    if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 ||
        sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0 ||
        sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
                                 "org.freedesktop.systemd1.Manager", peer_vtable, &call_fd) < 0 ||
        sd_bus_request_name(bus, "org.freedesktop.systemd1", 0) < 0 ||
        write(ready_fd, "r", 1) != 1) {
        _exit(1);
    }
    for (;;) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) {
            _exit(r == -ECONNRESET ? 0 : 1);
        }
        if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0) {
            _exit(1);
        }
    }
}

struct bus_env {
    char *address;
    char *config;
    pid_t daemon;
    pid_t peer;
    int call_fd; /* a byte per ReloadOrRestartUnit the peer received */
};

static const char dbus_daemon[] = "/usr/bin/dbus-daemon";

static void bus_env_start(struct bus_env *b, const char *dir)
{
    int ready[2], calls[2];
    char *fd_arg = NULL, *cfg_arg = NULL;

    if (!b->config) {
        char *xml = NULL;
        assert_true(asprintf(&b->address, "unix:path=%s/bus", dir) > 0);
        assert_true(asprintf(&xml,
                             "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus "
                             "Configuration 1.0//EN\"\n"
                             " \"http://www.freedesktop.org/standards/dbus/1.0/"
                             "busconfig.dtd\">\n"
                             "<busconfig><listen>%s</listen><auth>EXTERNAL</auth>\n"
                             "<policy context=\"default\">"
                             "<allow send_destination=\"*\" eavesdrop=\"true\"/>"
                             "<allow eavesdrop=\"true\"/><allow own=\"*\"/>"
                             "</policy></busconfig>\n",
                             b->address) > 0);
        b->config = file_put(dir, "bus.conf", xml, 0644);
        free(xml);
    }
    /* The daemon prints its address when it listens: our readiness signal. */
    assert_int_equal(pipe(ready), 0);
    assert_true(asprintf(&fd_arg, "--print-address=%d", ready[1]) > 0);
    assert_true(asprintf(&cfg_arg, "--config-file=%s", b->config) > 0);
    b->daemon = fork();
    assert_true(b->daemon >= 0);
    if (b->daemon == 0) {
        (void)close(ready[0]);
        execl(dbus_daemon, dbus_daemon, "--nofork", "--nopidfile", cfg_arg, fd_arg, (char *)NULL);
        _exit(127);
    }
    free(fd_arg);
    free(cfg_arg);
    (void)close(ready[1]);
    assert_true(read_byte(ready[0], NULL));
    (void)close(ready[0]);

    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(calls, O_CLOEXEC), 0);
    b->peer = fork();
    assert_true(b->peer >= 0);
    if (b->peer == 0) {
        peer_main(b->address, ready[1], calls[1]);
    }
    (void)close(ready[1]);
    (void)close(calls[1]);
    assert_true(read_byte(ready[0], NULL));
    (void)close(ready[0]);
    b->call_fd = calls[0];
    assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", b->address, 1), 0);
}

static void bus_env_stop(struct bus_env *b)
{
    int status;
    /*
     * The bus first: its clients see the connection drop (had the peer gone first, the bus
     * would answer pending calls with NoReply). SIGKILL: nothing of these forked copies of
     * the test should run its exit code.
     */
    if (b->daemon > 0) {
        (void)kill(b->daemon, SIGKILL);
        assert_int_equal(waitpid(b->daemon, &status, 0), b->daemon);
        b->daemon = 0;
    }
    if (b->peer > 0) {
        (void)kill(b->peer, SIGKILL);
        assert_int_equal(waitpid(b->peer, &status, 0), b->peer);
        b->peer = 0;
    }
    if (b->call_fd >= 0) {
        (void)close(b->call_fd);
        b->call_fd = -1;
    }
}

struct call_wait {
    bool is_called;
};

static void on_peer_call(evutil_socket_t fd, short what, void *arg)
{
    char c;
    (void)what;
    if (read(fd, &c, 1) == 1) {
        ((struct call_wait *)arg)->is_called = true;
    }
}

static void test_systemd_bus(void **state)
{
    struct fixture *f = *state;
    /* Static: the teardown stops it even after a failure has left this frame. */
    static struct bus_env b;
    char good[] = "good.service", bad[] = "bad.service", missing[] = "missing.service",
         slow[] = "slow.service";
    struct config_endpoint ep = endpoint_of(CONFIG_RELOAD_SYSTEMD);
    struct result res;

    /* A missing bus fails rather than skips: a skip would pass unnoticed on a fresh machine. */
    if (access(dbus_daemon, X_OK) != 0) {
        print_error("%s is not installed (Debian package dbus-daemon; scripts/install-deps)\n",
                    dbus_daemon);
        fail();
    }
    b = (struct bus_env){ .call_fd = -1 };
    f->bus = &b;
    bus_env_start(&b, f->dir);

    ep.reload.unit = good;
    res = notify(f, &ep);
    expect(&res, 0, "systemd reloaded good.service");
    /* The connection is reused. */
    res = notify(f, &ep);
    expect(&res, 0, "systemd reloaded good.service");

    ep.reload.unit = bad;
    res = notify(f, &ep);
    expect(&res, -EIO, "ended with result 'failed'");
    ep.reload.unit = missing;
    res = notify(f, &ep);
    /* libsystemd knows systemd's error names: NoSuchUnit is ENOENT. */
    expect(&res, -ENOENT, "Unit missing.service not found.");

    /* No answer: the timeout. */
    ep.reload.unit = slow;
    notifier_set_timeouts(f->n, 300, 0);
    res = notify(f, &ep);
    expect(&res, -ETIMEDOUT, "timed out after 300 ms");
    notifier_set_timeouts(f->n, NOTIFIER_TIMEOUT_SECONDS * 1000u, 0);

    /* Drain the peer's record of the calls so far, then lose the bus in the middle of one. */
    assert_int_equal(fcntl(b.call_fd, F_SETFL, O_NONBLOCK), 0);
    for (char c; read(b.call_fd, &c, 1) == 1;) {
    }
    struct call_wait cw = { false };
    struct event *ev = event_new(f->base, b.call_fd, EV_READ | EV_PERSIST, on_peer_call, &cw);
    assert_non_null(ev);
    assert_int_equal(event_add(ev, NULL), 0);
    res = (struct result){ 0 };
    notifier_notify(f->n, &ep, on_done, &res);
    while (!cw.is_called && res.calls == 0) {
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
    }
    event_free(ev);
    assert_int_equal(res.calls, 0);
    bus_env_stop(&b);
    wait_done(f->base, &res);
    expect(&res, -ECONNRESET, "lost the connection to the system bus");

    /* The next call connects again. */
    bus_env_start(&b, f->dir);
    ep.reload.unit = good;
    res = notify(f, &ep);
    expect(&res, 0, "systemd reloaded good.service");

    bus_env_stop(&b);
    f->bus = NULL;
    assert_int_equal(unsetenv("DBUS_SYSTEM_BUS_ADDRESS"), 0);
    free(b.address);
    free(b.config);
}

/* Each exec test twice: children watched through pidfds, then through SIGCHLD. */
#define EXEC_TEST(t, setup)                                  \
    {                                                        \
#t " (" #setup ")", t, setup, fixture_teardown, NULL \
    }
#define EXEC_TESTS(setup)                                                                   \
    EXEC_TEST(test_exec_success, setup), EXEC_TEST(test_exec_failures, setup),              \
        EXEC_TEST(test_exec_timeout_term, setup), EXEC_TEST(test_exec_timeout_kill, setup), \
        EXEC_TEST(test_exec_busy_and_free, setup)

int main(void)
{
    /* Grandchildren that a timeout kills come back to us: their end can be checked. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        perror("PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_none, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_self, fixture_setup, fixture_teardown),
        EXEC_TESTS(fixture_setup),
        EXEC_TESTS(fixture_setup_sigchld),
        cmocka_unit_test_setup_teardown(test_exec_untrusted_places, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_signal_delivered, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_signal_refused, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_signal_unsafe_files, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_systemd_no_bus, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_systemd_bus, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
