/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reload notifier (notifier.h): tells the users of a certificate that it changed.
 *
 * Every notification that outlives notifier_notify (systemd:, exec:) is a struct job in the
 * notifier's list. Finishing a job logs the result, unlinks and frees the job, and only then
 * calls done, so done always sees a consistent notifier and may start new notifications.
 * Invariants:
 *  - a job is in the list exactly as long as its done has not been called;
 *  - an exec job's child is reaped before its job is freed, and signals go to its process
 *    group only while the child is unreaped: an unreaped child (even a zombie) pins its pid and
 *    therefore its process group id, so a signal never reaches a recycled id;
 *  - the system bus is driven by a busev (busev.h); after queueing a call outside its
 *    processing, busev_kick registers what sd-bus asks for; a lost bus fails its systemd jobs
 *    (slots dropped while the bus exists) and is freed before their done is called.
 *
 * Reaping: each child gets a pidfd (pidfd_open, Linux >= 5.3; Debian 12 ships 6.1), watched by
 * the loop: readable exactly when that child exited, without a process-wide signal handler, so
 * nothing else in the process is disturbed and no other module's child is looked at. Without
 * pidfds (older kernels, valgrind, a seccomp filter), an evsignal on SIGCHLD; signals coalesce,
 * so each SIGCHLD looks at every child of ours by pid (never waitpid(-1), which would reap
 * other modules' children). Either way a child is reaped by waitid(P_PID) on its own pid,
 * which cannot be recycled before that, after a WNOWAIT look that lets us signal its group
 * first.
 */
#include "notifier.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "busev.h"
#include "log/log.h"
#include "sdlib.h"
#include "util/parse.h"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH    "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
/* Bytes of a path or an outside string quoted in a message (messages are 256 bytes). */
#define MSG_PATH_MAX "120"

struct notifier;

enum exec_stage { EXEC_RUNNING, EXEC_TERMINATED, EXEC_KILLED };

struct job {
    struct notifier *n;
    struct job *prev, *next;
    bool is_linked;
    const struct config_endpoint *ep;
    notifier_done_fn done;
    void *arg;
    struct event *timer; /* the deadline; for exec also the SIGKILL delay */
    /* exec */
    pid_t pid; /* > 0 while the child is not reaped */
    int pidfd;
    int errfd; /* read end of the pipe the child writes execv's errno to */
    struct event *child_ev;
    enum exec_stage stage;
    /* systemd */
    sd_bus_slot *call_slot;
    sd_bus_slot *match_slot;
    char *job_path; /* systemd's job, once the call returned it */
};

struct notifier {
    struct event_base *base;
    const char *const *hidden_env; /* NULL-terminated names kept from hooks; borrowed */
    notifier_self_fn self;
    void *userdata;
    unsigned timeout_ms;
    unsigned kill_delay_ms;
    struct job *jobs;
    size_t n_jobs;
    const struct sdlib *sd;   /* libsystemd, loaded by the first systemd: reload */
    struct busev *bus;        /* the system bus; NULL until needed, and after it is lost */
    bool has_pidfd;           /* else children are watched through SIGCHLD */
    struct event *sigchld_ev; /* created at the first exec without pidfds */
};

/* ---- messages ---- */

/* Messages go into API responses (JSON): printable ASCII only, whatever was quoted in them. */
static void msg_sanitize(char *msg)
{
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            *p = '?';
        }
    }
}

_printf_(4, 0) static int vmsgf(char *msg, size_t size, int r, const char *fmt, va_list ap)
{
    /* Truncation is acceptable: paths are quoted with a precision, the rest is short. */
    if (vsnprintf(msg, size, fmt, ap) < 0) {
        msg[0] = '\0';
    }
    msg_sanitize(msg);
    return r;
}

_printf_(4, 5) static int msgf(char *msg, size_t size, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vmsgf(msg, size, r, fmt, ap);
    va_end(ap);
    return r;
}

/* "10 s" or "250 ms", for messages about timeouts. */
static void duration_str(unsigned ms, char *buf, size_t size)
{
    if (ms % 1000u == 0) {
        (void)snprintf(buf, size, "%u s", ms / 1000u);
    } else {
        (void)snprintf(buf, size, "%u ms", ms);
    }
}

static void report(const struct config_endpoint *ep, int r, const char *msg, notifier_done_fn done,
                   void *arg)
{
    if (r < 0) {
        log_warning("endpoint '%s': reload failed: %s", ep->name, msg);
    } else if (ep->reload.kind == CONFIG_RELOAD_NONE) {
        log_debug("endpoint '%s': %s", ep->name, msg);
    } else {
        log_notice("endpoint '%s': %s", ep->name, msg);
    }
    if (done) {
        done(arg, r, msg);
    }
}

/* ---- jobs ---- */

static void job_unlink(struct job *j)
{
    struct notifier *n = j->n;

    if (!j->is_linked) {
        return;
    }
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        n->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    j->prev = j->next = NULL;
    j->is_linked = false;
    n->n_jobs--;
}

/* The child must be reaped already (pid <= 0): see the invariants above. */
static void job_free(struct job *j)
{
    assert(j->pid <= 0);
    job_unlink(j);
    if (j->timer) {
        event_free(j->timer);
    }
    if (j->child_ev) {
        event_free(j->child_ev);
    }
    if (j->pidfd >= 0) {
        (void)close(j->pidfd);
    }
    if (j->errfd >= 0) {
        (void)close(j->errfd);
    }
    if (j->call_slot) {
        (void)j->n->sd->sd_bus_slot_unref(j->call_slot);
    }
    if (j->match_slot) {
        (void)j->n->sd->sd_bus_slot_unref(j->match_slot);
    }
    free(j->job_path);
    free(j);
}

/* Log, free the job, then call done: done may start new notifications. */
_printf_(3, 4) static void job_finish(struct job *j, int r, const char *fmt, ...)
{
    char msg[NOTIFIER_MESSAGE_MAX];
    const struct config_endpoint *ep = j->ep;
    notifier_done_fn done = j->done;
    void *arg = j->arg;
    va_list ap;

    va_start(ap, fmt);
    (void)vmsgf(msg, sizeof(msg), r, fmt, ap);
    va_end(ap);
    job_free(j);
    report(ep, r, msg, done, arg);
}

static void on_job_timer(evutil_socket_t fd, short what, void *userdata);

static int job_new(struct notifier *n, const struct config_endpoint *ep, notifier_done_fn done,
                   void *arg, struct job **ret)
{
    struct job *j = calloc(1, sizeof(*j));

    if (!j) {
        return -ENOMEM;
    }
    *j = (struct job){
        .n = n, .ep = ep, .done = done, .arg = arg, .pidfd = -EBADF, .errfd = -EBADF
    };
    j->timer = evtimer_new(n->base, on_job_timer, j);
    if (!j->timer) {
        free(j);
        return -ENOMEM;
    }
    j->next = n->jobs;
    if (n->jobs) {
        n->jobs->prev = j;
    }
    n->jobs = j;
    j->is_linked = true;
    n->n_jobs++;
    *ret = j;
    return 0;
}

static struct timeval ms_to_timeval(unsigned ms)
{
    return (struct timeval){ .tv_sec = (time_t)(ms / 1000u),
                             .tv_usec = (suseconds_t)((ms % 1000u) * 1000u) };
}

static int job_arm(struct job *j, unsigned ms)
{
    struct timeval tv = ms_to_timeval(ms);
    return evtimer_add(j->timer, &tv) < 0 ? -ENOMEM : 0;
}

/* ---- trusting files: pidfiles and programs ---- */

static bool is_trusted_owner(const struct stat *st)
{
    return st->st_uid == 0 || st->st_uid == geteuid();
}

/*
 * One component of a trusted path, checked on its open descriptor: owned by root or us, and
 * nobody else may write to it. A directory above the last one may be world-writable when
 * sticky (/tmp): others can then not rename or remove what root or we own in it.
 */
static int check_trusted(int fd, const char *what, const char *path, int path_len, bool is_dir,
                         bool may_be_sticky, char *msg, size_t size)
{
    struct stat st;

    /* The end of a long path says most: quote its last bytes. */
    if (path_len > 120) {
        path += path_len - 120;
        path_len = 120;
    }
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        return msgf(msg, size, r, "%s: cannot inspect %.*s: %s", what, path_len, path,
                    strerror(-r));
    }
    if (is_dir && !S_ISDIR(st.st_mode)) {
        return msgf(msg, size, -EPERM, "%s: %.*s is not a directory", what, path_len, path);
    }
    if (!is_dir && !S_ISREG(st.st_mode)) {
        return msgf(msg, size, -EPERM, "%s: %.*s is not a regular file", what, path_len, path);
    }
    if (!is_trusted_owner(&st)) {
        return msgf(msg, size, -EPERM, "%s: %.*s is owned by uid %u, neither root nor certd", what,
                    path_len, path, (unsigned)st.st_uid);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
        !(may_be_sticky && (st.st_mode & S_ISVTX) != 0)) {
        return msgf(msg, size, -EPERM, "%s: %.*s is writable by group or others", what, path_len,
                    path);
    }
    return 0;
}

/*
 * Open directory dir (absolute) for use as the parent of a trusted file: its real path is
 * walked from "/" one component at a time without following symlinks, each component checked
 * by check_trusted (sticky allowed above the last). realpath() resolves symlinks such as
 * /var/run first; the walk then proves that what it resolved is what we open.
 */
static int open_trusted_dir(const char *dir, const char *what, int *ret_fd, char *msg, size_t size)
{
    _cleanup_free_ char *real = realpath(dir, NULL);
    _cleanup_close_ int fd = -EBADF;
    const char *p;
    int r;

    if (!real) {
        r = -errno;
        return msgf(msg, size, r, "%s: directory %." MSG_PATH_MAX "s: %s", what, dir, strerror(-r));
    }
    fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        return msgf(msg, size, r, "%s: cannot open /: %s", what, strerror(-r));
    }
    r = check_trusted(fd, what, "/", 1, true, real[1] != '\0', msg, size);
    if (r < 0) {
        return r;
    }
    for (p = real + 1; *p != '\0';) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char comp[NAME_MAX + 1];
        int end = (int)(p + len - real); /* a realpath() result is shorter than PATH_MAX */
        int nfd;

        if (len > NAME_MAX) {
            return msgf(msg, size, -ENAMETOOLONG, "%s: %.*s: name too long", what, end, real);
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            r = -errno;
            if (r == -ELOOP || r == -ENOTDIR) {
                /* realpath() resolved it, so it changed since: refuse rather than follow. */
                return msgf(msg, size, -EPERM, "%s: %.*s changed while being checked", what, end,
                            real);
            }
            return msgf(msg, size, r, "%s: cannot open directory %.*s: %s", what, end, real,
                        strerror(-r));
        }
        (void)close(fd);
        fd = nfd;
        r = check_trusted(fd, what, real, end, true, slash != NULL, msg, size);
        if (r < 0) {
            return r;
        }
        p = slash ? slash + 1 : p + len;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* ---- signal:SIG:PIDFILE ---- */

/* The pid in a pidfile: one decimal number and at most one newline, nothing else. */
static int pidfile_read(const char *path, pid_t *ret, char *msg, size_t size)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
    const char *name = NULL;
    char buf[NOTIFIER_PIDFILE_MAX + 2];
    size_t len = 0;
    uint64_t v;
    int r;

    r = path_split_name(path, &dir, &name);
    if (r < 0) {
        return msgf(msg, size, r, "pidfile %." MSG_PATH_MAX "s: not an absolute file path", path);
    }
    r = open_trusted_dir(dir, "pidfile", &dfd, msg, size);
    if (r < 0) {
        return r;
    }
    /* O_NONBLOCK: a FIFO put there must not block the loop; fstat then refuses it. */
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        if (r == -ELOOP) {
            return msgf(msg, size, -EPERM, "pidfile %." MSG_PATH_MAX "s is a symlink", path);
        }
        return msgf(msg, size, r, "pidfile %." MSG_PATH_MAX "s: %s", path, strerror(-r));
    }
    r = check_trusted(fd, "pidfile", path, (int)strnlen(path, CONFIG_PATH_MAX), false, false, msg,
                      size);
    if (r < 0) {
        return r;
    }
    /* Bounded: one byte more than allowed tells "too large" from "exactly the limit". */
    while (len < NOTIFIER_PIDFILE_MAX + 1) {
        ssize_t k = read(fd, buf + len, NOTIFIER_PIDFILE_MAX + 1 - len);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            r = -errno;
            return msgf(msg, size, r, "pidfile %." MSG_PATH_MAX "s: cannot read: %s", path,
                        strerror(-r));
        }
        if (k == 0) {
            break;
        }
        len += (size_t)k;
    }
    if (len > NOTIFIER_PIDFILE_MAX) {
        return msgf(msg, size, -E2BIG, "pidfile %." MSG_PATH_MAX "s is larger than %u bytes", path,
                    NOTIFIER_PIDFILE_MAX);
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
    }
    buf[len] = '\0';
    /* parse_u64 refuses blanks, signs, leading zeros and trailing bytes; NULs cut it short. */
    if (memchr(buf, '\0', len) != NULL || parse_u64(buf, 0, INT32_MAX, &v) < 0) {
        return msgf(msg, size, -EBADMSG,
                    "pidfile %." MSG_PATH_MAX "s does not hold one decimal process id", path);
    }
    if (v <= 1) {
        return msgf(msg, size, -EINVAL, "pidfile %." MSG_PATH_MAX "s names pid %u: refused", path,
                    (unsigned)v);
    }
    *ret = (pid_t)v;
    return 0;
}

static int notify_signal(const struct config_reload *rl, char *msg, size_t size)
{
    const char *sig = sigabbrev_np(rl->signal);
    pid_t pid = 0;
    int r;

    if (!sig) {
        return msgf(msg, size, -EINVAL, "signal %d is not a signal", rl->signal);
    }
    r = pidfile_read(rl->pidfile, &pid, msg, size);
    if (r < 0) {
        return r;
    }
    if (pid == getpid()) {
        /* Reloading ourselves through a signal would re-read and notify again, in a loop. */
        return msgf(msg, size, -EINVAL,
                    "pidfile %." MSG_PATH_MAX "s names certd itself (use reload = self)",
                    rl->pidfile);
    }
    if (kill(pid, rl->signal) < 0) {
        r = -errno;
        if (r == -ESRCH) {
            return msgf(msg, size, r, "no process %d (stale pidfile %." MSG_PATH_MAX "s)", (int)pid,
                        rl->pidfile);
        }
        return msgf(msg, size, r, "cannot send SIG%s to pid %d: %s", sig, (int)pid, strerror(-r));
    }
    return msgf(msg, size, 0, "sent SIG%s to pid %d (pidfile %." MSG_PATH_MAX "s)", sig, (int)pid,
                rl->pidfile);
}

/* ---- exec:COMMAND ---- */

/* The real path of argv[0] (malloc'd), once it and every directory on its way are trusted. */
static int exec_resolve(const char *program, char **ret, char *msg, size_t size)
{
    _cleanup_free_ char *real = NULL, *dir = NULL;
    _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
    const char *name = NULL;
    struct stat st;
    int r;

    real = realpath(program, NULL);
    if (!real) {
        r = -errno;
        return msgf(msg, size, r, "program %." MSG_PATH_MAX "s: %s", program, strerror(-r));
    }
    r = path_split_name(real, &dir, &name);
    if (r < 0) {
        return msgf(msg, size, r, "program %." MSG_PATH_MAX "s: not a file", program);
    }
    r = open_trusted_dir(dir, "program", &dfd, msg, size);
    if (r < 0) {
        return r;
    }
    fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        return msgf(msg, size, r == -ELOOP ? -EPERM : r, "program %." MSG_PATH_MAX "s: %s", program,
                    strerror(-r));
    }
    r = check_trusted(fd, "program", real, (int)strnlen(real, PATH_MAX), false, false, msg, size);
    if (r < 0) {
        return r;
    }
    if (fstat(fd, &st) < 0 || (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
        return msgf(msg, size, -EACCES, "program %." MSG_PATH_MAX "s is not executable", program);
    }
    *ret = TAKE_PTR(real);
    return 0;
}

/* Move a descriptor above 0, 1 and 2, which the child rewires. */
static int fd_above_stdio(int *fd)
{
    int nfd;

    if (*fd > STDERR_FILENO) {
        return 0;
    }
    nfd = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (nfd < 0) {
        return -errno;
    }
    (void)close(*fd);
    *fd = nfd;
    return 0;
}

/* Close [first, last]; close_range (Linux >= 5.9) or, without it, one by one up to max_fd. */
static void close_fds(unsigned first, unsigned last, unsigned max_fd)
{
    if (first > last) {
        return;
    }
    if (close_range(first, last, 0) == 0) {
        return;
    }
    for (unsigned fd = first; fd <= last && fd <= max_fd; fd++) {
        (void)close((int)fd);
    }
}

/*
 * In the forked child of a process with threads: async-signal-safe calls only (no malloc, no
 * stdio, no locks). Anything that fails before execv reports its errno through errfd.
 */
_noreturn_ static void child_exec(const char *path, char *const argv[], char *const envp[],
                                  int nullfd, int errfd, unsigned max_fd)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigset_t none;
    int e;

    /* Ignored signals (certd ignores SIGPIPE) survive execv; handlers are ours, not its. */
    for (int s = 1; s < NSIG; s++) {
        (void)sigaction(s, &dfl, NULL);
    }
    (void)sigemptyset(&none);
    /* The parent blocked every signal around fork(); a signal pending now hits the default. */
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) {
        goto fail;
    }
    /* Its own process group, so that a timeout stops whatever it started too. */
    if (setpgid(0, 0) < 0) {
        goto fail;
    }
    if (dup2(nullfd, STDIN_FILENO) < 0) {
        goto fail;
    }
    if (fcntl(STDERR_FILENO, F_GETFD) < 0 && dup2(nullfd, STDERR_FILENO) < 0) {
        goto fail;
    }
    if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        goto fail;
    }
    /* Sockets, key files, the bus, inotify: nothing of certd's is the command's business. */
    close_fds(STDERR_FILENO + 1, (unsigned)errfd - 1, max_fd);
    close_fds((unsigned)errfd + 1, ~0u, max_fd);
    (void)execve(path, argv, envp);
fail:
    e = errno;
    /* Nothing is left to do if even this fails: exit status 127 then says "not run". */
    if (write(errfd, &e, sizeof(e)) != (ssize_t)sizeof(e)) {
        _exit(127);
    }
    _exit(127);
}

/*
 * A copy of the pointer array of environ without the variables notifier_hide_env names (the
 * strings are environ's own: the child uses them right away). NULL for lack of memory.
 */
static char **env_filtered(const struct notifier *n)
{
    size_t count = 0, k = 0;
    while (environ[count]) {
        count++;
    }
    char **v = calloc(count + 1, sizeof(*v));
    if (!v) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        bool is_hidden = false;
        for (const char *const *h = n->hidden_env; h && *h && !is_hidden; h++) {
            size_t len = strlen(*h);
            is_hidden = strncmp(environ[i], *h, len) == 0 && environ[i][len] == '=';
        }
        if (!is_hidden) {
            v[k++] = environ[i];
        }
    }
    return v;
}

void notifier_hide_env(struct notifier *n, const char *const *names)
{
    if (n) {
        n->hidden_env = names;
    }
}

static void on_child_fd(evutil_socket_t fd, short what, void *userdata);
static void on_sigchld(evutil_socket_t sig, short what, void *userdata);

/* Without pidfds: SIGCHLD, watched from before the first fork on. */
static int sigchld_watch(struct notifier *n)
{
    if (n->sigchld_ev) {
        return 0;
    }
    n->sigchld_ev = evsignal_new(n->base, SIGCHLD, on_sigchld, n);
    if (!n->sigchld_ev || event_add(n->sigchld_ev, NULL) < 0) {
        if (n->sigchld_ev) {
            event_free(n->sigchld_ev);
        }
        n->sigchld_ev = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int exec_spawn(struct job *j, const char *path, char *const argv[], char *msg, size_t size)
{
    struct notifier *n = j->n;
    _cleanup_close_ int nullfd = -EBADF, rfd = -EBADF, wfd = -EBADF, pidfd = -EBADF;
    int pipefd[2];
    struct rlimit rl = { 0 };
    sigset_t all, old;
    unsigned max_fd;
    pid_t pid;
    int r;

    if (!n->has_pidfd && sigchld_watch(n) < 0) {
        return msgf(msg, size, -ENOMEM, "out of memory");
    }
    /* certd's environment but for the variables that hold secrets (notifier_hide_env). */
    _cleanup_free_ char **envp = env_filtered(n);
    if (!envp) {
        return msgf(msg, size, -ENOMEM, "out of memory");
    }
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        r = -errno;
        return msgf(msg, size, r, "cannot make a pipe: %s", strerror(-r));
    }
    rfd = pipefd[0];
    wfd = pipefd[1];
    nullfd = open("/dev/null", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (nullfd < 0) {
        r = -errno;
        return msgf(msg, size, r, "cannot open /dev/null: %s", strerror(-r));
    }
    r = fd_above_stdio(&nullfd);
    if (r >= 0) {
        r = fd_above_stdio(&wfd);
    }
    if (r < 0) {
        return msgf(msg, size, r, "cannot set up descriptors: %s", strerror(-r));
    }
    /* Only for the fallback without close_range: it closes up to the descriptor limit. */
    max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                     rl.rlim_cur <= 1024u * 1024u
                 ? (unsigned)rl.rlim_cur
                 : 1024u * 1024u;

    /*
     * Block every signal across fork(): until the child has reset its dispositions, a signal
     * would run one of certd's handlers (libevent's writes to a socket the parent shares).
     */
    (void)sigfillset(&all);
    r = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (r != 0) {
        return msgf(msg, size, -r, "cannot block signals: %s", strerror(r));
    }
    pid = fork();
    if (pid == 0) {
        child_exec(path, argv, envp, nullfd, wfd, max_fd);
    }
    r = pid < 0 ? -errno : 0;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        return msgf(msg, size, r, "cannot fork: %s", strerror(-r));
    }
    /* Also here: the group must exist before a timeout may signal it. The child may have
     * called execv already (EACCES): then it did setpgid itself. */
    (void)setpgid(pid, pid);
    j->pid = pid; /* from here on the caller kills and reaps it on failure */
    j->errfd = TAKE_FD(rfd);
    if (!n->has_pidfd) {
        /* SIGCHLD is handled in the loop, after this returns: it will find j. */
        return 0;
    }
    pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        r = -errno;
        return msgf(msg, size, r, "cannot watch the child process: %s", strerror(-r));
    }
    j->child_ev = event_new(n->base, pidfd, EV_READ | EV_PERSIST, on_child_fd, j);
    j->pidfd = TAKE_FD(pidfd);
    if (!j->child_ev || event_add(j->child_ev, NULL) < 0) {
        return msgf(msg, size, -ENOMEM, "out of memory");
    }
    return 0;
}

/* Kill the child's group and reap the child, blocking: for failures and notifier_free. */
static void exec_kill_and_reap(struct job *j)
{
    siginfo_t si;

    if (j->pid <= 0) {
        return;
    }
    (void)kill(-j->pid, SIGKILL);
    while (waitid(P_PID, (id_t)j->pid, &si, WEXITED) < 0 && errno == EINTR) {
    }
    j->pid = 0;
}

/*
 * Has the child exited? Looks without reaping (WNOWAIT): the zombie must keep pinning the
 * group id until the group was signalled. -errno when it cannot be waited for at all.
 */
static int exec_has_exited(const struct job *j)
{
    siginfo_t si = { 0 };

    while (waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return si.si_pid != 0;
}

/* The child may have exited: if so, stop its leftovers, reap it and finish the job. */
static void exec_check(struct job *j)
{
    const char *program = j->ep->reload.argv[0];
    char took[32];
    siginfo_t si = { 0 };
    int e = 0, r;

    r = exec_has_exited(j);
    if (r == 0) {
        return;
    }
    if (r < 0) {
        /* Someone else reaped it (waitpid(-1) elsewhere): nothing left to wait for. */
        j->pid = 0;
        job_finish(j, r, "exec %." MSG_PATH_MAX "s: lost track of the child: %s", program,
                   strerror(-r));
        return;
    }
    /* Leftovers of a stopped command die with it while the zombie still pins the group id. */
    if (j->stage != EXEC_RUNNING) {
        (void)kill(-j->pid, SIGKILL);
    }
    while (waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOHANG) < 0 && errno == EINTR) {
    }
    j->pid = 0;
    if (read(j->errfd, &e, sizeof(e)) == (ssize_t)sizeof(e) && e > 0) {
        job_finish(j, -e, "exec %." MSG_PATH_MAX "s: cannot run it: %s", program, strerror(e));
        return;
    }
    if (j->stage != EXEC_RUNNING) {
        duration_str(j->n->timeout_ms, took, sizeof(took));
        job_finish(j, -ETIMEDOUT, "exec %." MSG_PATH_MAX "s: timed out after %s, stopped with %s",
                   program, took, j->stage == EXEC_KILLED ? "SIGKILL" : "SIGTERM");
        return;
    }
    if (si.si_code == CLD_EXITED && si.si_status == 0) {
        job_finish(j, 0, "ran %." MSG_PATH_MAX "s", program);
    } else if (si.si_code == CLD_EXITED) {
        job_finish(j, -EIO, "exec %." MSG_PATH_MAX "s: failed with exit status %d", program,
                   si.si_status);
    } else {
        const char *sig = sigabbrev_np(si.si_status);
        job_finish(j, -EIO, "exec %." MSG_PATH_MAX "s: killed by signal %s%s", program,
                   sig ? "SIG" : "", sig ? sig : "(unknown)");
    }
}

static void on_child_fd(evutil_socket_t fd, short what, void *userdata)
{
    (void)fd;
    (void)what;
    exec_check(userdata);
}

static void on_sigchld(evutil_socket_t sig, short what, void *userdata)
{
    struct notifier *n = userdata;
    (void)sig;
    (void)what;

    /*
     * Signals coalesce: one SIGCHLD may stand for several children, so look at each of ours
     * (only ours, by pid: never waitpid(-1), which would reap other modules' children).
     * Finishing a job changes the list (done may even add jobs), so restart after each; the
     * bound only guards against a child that cannot be reaped (the job's timer looks again).
     */
    for (unsigned i = 0; i < 2u * NOTIFIER_JOBS_MAX; i++) {
        struct job *found = NULL;
        for (struct job *j = n->jobs; j && !found; j = j->next) {
            if (j->pid > 0 && j->pidfd < 0 && exec_has_exited(j) != 0) {
                found = j;
            }
        }
        if (!found) {
            return;
        }
        exec_check(found);
    }
}

static void exec_on_timer(struct job *j)
{
    /* Gone already (its SIGCHLD may have been lost to coalescing): settle it now. */
    if (exec_has_exited(j) != 0) {
        exec_check(j);
        return;
    }
    if (j->stage == EXEC_RUNNING) {
        (void)kill(-j->pid, SIGTERM);
        j->stage = EXEC_TERMINATED;
        if (job_arm(j, j->n->kill_delay_ms) < 0) {
            (void)kill(-j->pid, SIGKILL);
            j->stage = EXEC_KILLED;
        }
    } else {
        (void)kill(-j->pid, SIGKILL);
        j->stage = EXEC_KILLED;
        /* Reaping (and the result) happens when it exits; look again in case none is heard. */
        (void)job_arm(j, j->n->kill_delay_ms);
    }
}

static void notify_exec(struct notifier *n, const struct config_endpoint *ep, notifier_done_fn done,
                        void *arg)
{
    const struct config_reload *rl = &ep->reload;
    _cleanup_free_ char *real = NULL;
    char msg[NOTIFIER_MESSAGE_MAX];
    struct job *j = NULL;
    int r;

    if (!rl->argv || !rl->argv[0]) {
        report(ep, -EINVAL, "exec: no command", done, arg);
        return;
    }
    r = exec_resolve(rl->argv[0], &real, msg, sizeof(msg));
    if (r < 0) {
        report(ep, r, msg, done, arg);
        return;
    }
    r = job_new(n, ep, done, arg, &j);
    if (r < 0) {
        report(ep, r, "out of memory", done, arg);
        return;
    }
    r = exec_spawn(j, real, rl->argv, msg, sizeof(msg));
    if (r >= 0) {
        r = job_arm(j, n->timeout_ms);
        if (r < 0) {
            (void)msgf(msg, sizeof(msg), r, "out of memory");
        }
    }
    if (r < 0) {
        exec_kill_and_reap(j);
        job_finish(j, r, "exec %." MSG_PATH_MAX "s: %s", rl->argv[0], msg);
    }
}

/* ---- systemd:UNIT over sd-bus, driven by the loop ---- */

static bool job_is_systemd(const struct job *j)
{
    return j->ep->reload.kind == CONFIG_RELOAD_SYSTEMD;
}

/* The connection broke: fail every call on it; the next systemd: reload reconnects. */
static void bus_lost(struct notifier *n, int r)
{
    struct job *lost = NULL;

    log_warning("system bus connection lost: %s", strerror(-r));
    /* Take the jobs out and drop their slots while the bus they belong to still exists. */
    for (struct job *j = n->jobs, *next; j; j = next) {
        next = j->next;
        if (job_is_systemd(j)) {
            job_unlink(j);
            j->call_slot = n->sd->sd_bus_slot_unref(j->call_slot);
            j->match_slot = n->sd->sd_bus_slot_unref(j->match_slot);
            j->next = lost;
            lost = j;
        }
    }
    n->bus = busev_free(n->bus);
    /* Only now call done: it may start a systemd: reload, which opens a new bus. */
    while (lost) {
        struct job *j = lost;
        lost = j->next;
        j->next = NULL;
        job_finish(j, r, "systemd: lost the connection to the system bus while reloading %s",
                   j->ep->reload.unit);
    }
}

static void on_bus_lost(void *userdata, int r)
{
    bus_lost(userdata, r);
}

static int bus_open(struct notifier *n, char *msg, size_t size)
{
    if (!n->sd) {
        n->sd = sdlib_get(msg, size);
        if (!n->sd) {
            return -ENOPKG;
        }
    }
    /* Gone, but the loop has not seen it yet: start afresh rather than queue on a dead bus. */
    if (n->bus && n->sd->sd_bus_is_open(busev_bus(n->bus)) <= 0 && !busev_is_processing(n->bus)) {
        bus_lost(n, -ECONNRESET);
    }
    if (n->bus) {
        return 0;
    }
    return busev_open(n->base, n->sd, BUSEV_SYSTEM, on_bus_lost, n, &n->bus, msg, size);
}

static int on_reload_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct job *j = userdata;
    const struct sdlib *sd = j->n->sd;
    const char *unit = j->ep->reload.unit;
    const sd_bus_error *e = sd->sd_bus_message_get_error(m);
    const char *path = NULL;
    int r;
    (void)ret_error;

    j->call_slot = sd->sd_bus_slot_unref(j->call_slot);
    if (e) {
        r = sd->sd_bus_message_get_errno(m);
        r = r > 0 ? -r : -EIO;
        if (sd->sd_bus_is_open(sd->sd_bus_message_get_bus(m)) <= 0) {
            /* sd-bus answers the calls in flight itself when the connection drops. */
            job_finish(j, -ECONNRESET,
                       "systemd: lost the connection to the system bus while reloading %s", unit);
        } else {
            job_finish(j, r, "systemd: cannot reload or restart %s: %." MSG_PATH_MAX "s", unit,
                       e->message ? e->message : e->name);
        }
        return 0;
    }
    r = sd->sd_bus_message_read(m, "o", &path);
    if (r < 0) {
        job_finish(j, r, "systemd: unexpected reply to reloading %s", unit);
        return 0;
    }
    j->job_path = strdup(path);
    if (!j->job_path) {
        job_finish(j, -ENOMEM, "systemd: out of memory reloading %s", unit);
    }
    /* Now wait for the job's JobRemoved. */
    return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct job *j = userdata;
    const char *unit = j->ep->reload.unit;
    const char *path = NULL, *job_unit = NULL, *result = NULL;
    uint32_t id = 0;
    int r;
    (void)ret_error;

    r = j->n->sd->sd_bus_message_read(m, "uoss", &id, &path, &job_unit, &result);
    if (r < 0) {
        log_debug("systemd: malformed JobRemoved signal ignored: %s", strerror(-r));
        return 0;
    }
    /* Every job's JobRemoved comes by; the reply told us which one is ours. */
    if (!j->job_path || strcmp(path, j->job_path) != 0) {
        return 0;
    }
    if (strcmp(result, "done") == 0) {
        job_finish(j, 0, "systemd reloaded %s", unit);
    } else {
        r = strcmp(result, "timeout") == 0    ? -ETIMEDOUT
            : strcmp(result, "canceled") == 0 ? -ECANCELED
                                              : -EIO;
        job_finish(j, r, "systemd: reloading %s ended with result '%.32s'", unit, result);
    }
    return 0;
}

static void notify_systemd(struct notifier *n, const struct config_endpoint *ep,
                           notifier_done_fn done, void *arg)
{
    sd_bus_message *m = NULL;
    const char *unit = ep->reload.unit;
    char msg[NOTIFIER_MESSAGE_MAX];
    struct job *j = NULL;
    int r;

    if (!unit) {
        report(ep, -EINVAL, "systemd: no unit", done, arg);
        return;
    }
    r = bus_open(n, msg, sizeof(msg));
    if (r < 0) {
        char m2[NOTIFIER_MESSAGE_MAX];
        (void)msgf(m2, sizeof(m2), r, "systemd: cannot reload %s: %s", unit, msg);
        report(ep, r, m2, done, arg);
        return;
    }
    r = job_new(n, ep, done, arg, &j);
    if (r < 0) {
        report(ep, r, "out of memory", done, arg);
        return;
    }
    /*
     * Subscribe to JobRemoved before the call: the bus delivers our messages in order, so the
     * match is in place before systemd can finish the job. systemd sends JobRemoved to the
     * client that asked for the job even without Subscribe().
     */
    sd_bus *bus = busev_bus(n->bus);
    r = n->sd->sd_bus_match_signal_async(bus, &j->match_slot, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                         SYSTEMD_MANAGER, "JobRemoved", on_job_removed, NULL, j);
    if (r >= 0) {
        r = n->sd->sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                                  SYSTEMD_MANAGER, "ReloadOrRestartUnit");
    }
    if (r >= 0) {
        r = n->sd->sd_bus_message_append(m, "ss", unit, "replace");
    }
    /*
     * The job's timer is the deadline; sd-bus's own comes a second later, only so that a call
     * never stays in its table forever. So a NoReply error is never our timeout but the bus
     * saying systemd went away mid-call.
     */
    if (r >= 0) {
        r = n->sd->sd_bus_call_async(bus, &j->call_slot, m, on_reload_reply, j,
                                     ((uint64_t)n->timeout_ms + 1000u) * 1000u);
    }
    if (m) {
        (void)n->sd->sd_bus_message_unref(m); /* a call in flight holds its own reference */
    }
    if (r >= 0) {
        r = job_arm(j, n->timeout_ms);
    }
    if (r < 0) {
        job_finish(j, r, "systemd: cannot reload %s: %s", unit, strerror(-r));
        return;
    }
    /* A failure here comes back through on_bus_lost, from the loop. */
    busev_kick(n->bus);
}

/* ---- the deadline of every job ---- */

static void on_job_timer(evutil_socket_t fd, short what, void *userdata)
{
    struct job *j = userdata;
    char took[32];
    (void)fd;
    (void)what;

    if (job_is_systemd(j)) {
        duration_str(j->n->timeout_ms, took, sizeof(took));
        job_finish(j, -ETIMEDOUT, "systemd: reloading %s timed out after %s", j->ep->reload.unit,
                   took);
    } else {
        exec_on_timer(j);
    }
}

/* ---- the API ---- */

int notifier_new(struct event_base *base, notifier_self_fn self, void *userdata,
                 struct notifier **ret)
{
    struct notifier *n;

    assert_return(base, -EINVAL);
    assert_return(ret, -EINVAL);
    n = calloc(1, sizeof(*n));
    if (!n) {
        return -ENOMEM;
    }
    *n = (struct notifier){ .base = base,
                            .self = self,
                            .userdata = userdata,
                            .timeout_ms = NOTIFIER_TIMEOUT_SECONDS * 1000u,
                            .kill_delay_ms = NOTIFIER_KILL_DELAY_SECONDS * 1000u };
    /*
     * pidfd_open may be missing (Linux < 5.3, valgrind) or refused by a seccomp filter: then
     * SIGCHLD it is, with the same guarantees (each child reaped by its pid, never another's).
     */
    int fd = pidfd_open(getpid(), 0);
    n->has_pidfd = fd >= 0 || (errno != ENOSYS && errno != EPERM);
    if (fd >= 0) {
        (void)close(fd);
    }
    *ret = n;
    return 0;
}

void notifier_use_sigchld(struct notifier *n)
{
    if (n) {
        n->has_pidfd = false;
    }
}

struct notifier *notifier_free(struct notifier *n)
{
    if (!n) {
        return NULL;
    }
    while (n->jobs) {
        struct job *j = n->jobs;
        exec_kill_and_reap(j);
        job_free(j);
    }
    n->bus = busev_free(n->bus);
    if (n->sigchld_ev) {
        event_free(n->sigchld_ev);
    }
    free(n);
    return NULL;
}

void notifier_set_timeouts(struct notifier *n, unsigned timeout_ms, unsigned kill_delay_ms)
{
    if (!n) {
        return;
    }
    if (timeout_ms > 0) {
        n->timeout_ms = timeout_ms;
    }
    if (kill_delay_ms > 0) {
        n->kill_delay_ms = kill_delay_ms;
    }
}

static void notify_self(struct notifier *n, const struct config_endpoint *ep, notifier_done_fn done,
                        void *arg)
{
    char msg[NOTIFIER_MESSAGE_MAX] = "";
    int r;

    if (!n->self) {
        report(ep, -EOPNOTSUPP, "self: certd has no reload of its own here", done, arg);
        return;
    }
    r = n->self(n->userdata, ep, msg, sizeof(msg));
    msg[sizeof(msg) - 1] = '\0';
    msg_sanitize(msg);
    if (msg[0] == '\0') {
        if (r < 0) {
            (void)msgf(msg, sizeof(msg), r, "reloading certd's own certificate failed: %s",
                       strerror(-r));
        } else {
            (void)msgf(msg, sizeof(msg), r, "certd reloaded its own certificate");
        }
    }
    report(ep, r < 0 ? r : 0, msg, done, arg);
}

void notifier_notify(struct notifier *n, const struct config_endpoint *ep, notifier_done_fn done,
                     void *arg)
{
    char msg[NOTIFIER_MESSAGE_MAX];
    int r;

    if (!n || !ep) {
        if (done) {
            done(arg, -EINVAL, "internal error: no notifier or endpoint");
        }
        return;
    }
    switch (ep->reload.kind) {
    case CONFIG_RELOAD_NONE:
        report(ep, 0, "nothing to notify (reload = none)", done, arg);
        return;
    case CONFIG_RELOAD_SELF:
        notify_self(n, ep, done, arg);
        return;
    case CONFIG_RELOAD_SIGNAL:
        r = notify_signal(&ep->reload, msg, sizeof(msg));
        report(ep, r, msg, done, arg);
        return;
    case CONFIG_RELOAD_SYSTEMD:
    case CONFIG_RELOAD_EXEC:
        if (n->n_jobs >= NOTIFIER_JOBS_MAX) {
            (void)msgf(msg, sizeof(msg), -EBUSY, "too many reloads in progress (%u)",
                       NOTIFIER_JOBS_MAX);
            report(ep, -EBUSY, msg, done, arg);
            return;
        }
        if (ep->reload.kind == CONFIG_RELOAD_SYSTEMD) {
            notify_systemd(n, ep, done, arg);
        } else {
            notify_exec(n, ep, done, arg);
        }
        return;
    case CONFIG_RELOAD_KIND_MAX:
    default:
        break;
    }
    report(ep, -EINVAL, "unknown kind of reload", done, arg);
}
