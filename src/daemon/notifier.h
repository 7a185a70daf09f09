/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Telling the users of a certificate that it changed (DESIGN.md "notifier"): each endpoint's
 * `reload =` (config.h struct config_reload):
 *  - none: nothing;
 *  - self: the daemon's own callback (swap the TLS context), given to notifier_new;
 *  - systemd:UNIT: org.freedesktop.systemd1.Manager.ReloadOrRestartUnit(UNIT, "replace") on the
 *    system bus (sd-bus, asynchronous call with the timeout);
 *  - signal:SIG:PIDFILE: read the pid from PIDFILE (a root- or certd-owned regular file, not
 *    writable by group or others, in such a directory; one decimal pid > 1) and kill() it;
 *  - exec:COMMAND: fork and execv() argv (never a shell; argv[0] owned by root or us and not
 *    group/other-writable), stdin /dev/null, stdout/stderr to our stderr, in its own process
 *    group; success is exit status 0; after the timeout the group gets SIGTERM, then SIGKILL
 *    two seconds later.
 * Everything is asynchronous and time-limited (NOTIFIER_TIMEOUT_SECONDS); the result is logged
 * (notice on success, warning on failure) and given to the caller's callback, whose message is
 * fit for an API response. A failed notification never undoes the certificate change.
 *
 * Details the daemon relies on:
 *  - systemd: success means the job systemd queued for the unit finished with result "done"
 *    (its JobRemoved signal), not merely that it was queued; the bus connection is shared by
 *    all calls and reopened at the next call after it is lost;
 *  - signal: the pidfile and its directory are opened without following a final symlink and
 *    checked on the opened descriptors; every directory above them must be owned by root or
 *    us and be either not group/other-writable or sticky (as /tmp), so nobody else can swap a
 *    component; certd's own pid is refused (use reload = self);
 *  - exec: argv[0] is resolved (symlinks followed, so /etc/alternatives works) and the real
 *    file and every directory on its path are checked the same way; messages name argv[0] only,
 *    never the other words (they may hold tokens). The child gets default signal dispositions,
 *    an empty signal mask, and no descriptor but 0, 1, 2. Children are watched through a pidfd
 *    (Linux >= 5.3), else through SIGCHLD (an evsignal on base: libevent lets one base at a
 *    time handle signals), and reaped by pid: certd must not set SIGCHLD to SIG_IGN nor call
 *    waitpid(-1) or wait();
 *  - at most NOTIFIER_JOBS_MAX notifications run at once; more fail at once with -EBUSY.
 * Thread-safety: loop thread only.
 */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "util/cleanup.h"

struct event_base;
struct notifier;

#define NOTIFIER_TIMEOUT_SECONDS 10u
#define NOTIFIER_MESSAGE_MAX     256u
/* exec: after the timeout the group gets SIGTERM, and SIGKILL this much later. */
#define NOTIFIER_KILL_DELAY_SECONDS 2u
/* signal: largest pidfile read. A pid is at most 7 digits (pid_max <= 2^22) and a newline. */
#define NOTIFIER_PIDFILE_MAX 32u
/* Notifications in flight at once: 16 endpoints, a few changes each. */
#define NOTIFIER_JOBS_MAX 64u

/* The daemon's "self" reload for endpoint ep; returns 0 or -errno and may fill msg. */
typedef int (*notifier_self_fn)(void *userdata, const struct config_endpoint *ep, char *msg,
                                size_t msg_size);
/*
 * result 0 or -errno; message (borrowed for the call, printable ASCII) says what happened
 * ("systemd reloaded nslcd.service", "... timed out").
 */
typedef void (*notifier_done_fn)(void *arg, int result, const char *message);

/* Returns 0, -ENOMEM. The system bus is connected lazily, at the first systemd: reload. */
/*
 * exec: hooks run with certd's environment but for the variables named in names (a
 * NULL-terminated array, borrowed: it must outlive the notifier), e.g. a TPM parent's password
 * that certd put into its own environment for the tpm2 provider. NULL hides nothing.
 */
struct notifier;
void notifier_hide_env(struct notifier *n, const char *const *names);

_must_check_ int notifier_new(struct event_base *base, notifier_self_fn self, void *userdata,
                              struct notifier **ret);
/*
 * Kills (SIGKILL to the process group) and reaps children still running, cancels bus calls,
 * closes the bus. The done callbacks of notifications still in flight are NOT called: their
 * callers (HTTP requests) are gone at shutdown. Not from a done callback. Accepts NULL;
 * returns NULL.
 */
struct notifier *notifier_free(struct notifier *n);
DEFINE_CLEANUP_STRUCT(notifier, notifier_free)

/*
 * Run ep's reload (ep borrowed: must live until done is called). done (nullable) is called
 * exactly once, possibly before this returns (none, self, signal, an immediate failure), on
 * the loop thread; it may call notifier_notify again but not notifier_free. Results:
 *   0 success; -EPERM a pidfile, program or directory on their path that is not safe to
 *   trust (owner, mode, a symlink, not a regular file); -EBADMSG a pidfile that is not one
 *   decimal pid; -E2BIG a pidfile over NOTIFIER_PIDFILE_MAX; -EINVAL pid 1 or certd's own;
 *   -ENOENT a missing pidfile or program; -ESRCH no such process; -ETIMEDOUT out of time;
 *   -EIO the command failed (exit status, signal) or systemd's job did not end "done";
 *   -EBUSY too many in flight; -ENOMEM; other -errno of the system or of D-Bus (no system
 *   bus: -ENOENT, -ECONNREFUSED).
 * The message (at most NOTIFIER_MESSAGE_MAX - 1 bytes, printable) says what happened.
 */
void notifier_notify(struct notifier *n, const struct config_endpoint *ep, notifier_done_fn done,
                     void *arg);

/*
 * For tests: replace the timeout (NOTIFIER_TIMEOUT_SECONDS) and the delay between SIGTERM and
 * SIGKILL (NOTIFIER_KILL_DELAY_SECONDS) of notifications started afterwards, in milliseconds
 * (0 keeps the current value).
 */
void notifier_set_timeouts(struct notifier *n, unsigned timeout_ms, unsigned kill_delay_ms);
/*
 * For tests: watch exec children through SIGCHLD (an evsignal on the notifier's base) instead
 * of pidfds, as on kernels without pidfd_open. Call before the first exec notification.
 */
void notifier_use_sigchld(struct notifier *n);
