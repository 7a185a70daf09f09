/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker pool (DESIGN.md "certd"): a few threads that run slow work -- key generation,
 * signing, password hashing, validating and writing certificates -- so that the event loop never
 * waits on crypto or fsync. A job is two functions: `run` on a worker thread, then `done` on the
 * loop thread with the same argument. Results travel in the argument, never through globals.
 *
 * Lanes: WORKER_LANE_PARALLEL jobs run on any of n_threads workers, in any order (key
 * generation, CSRs, password checks). WORKER_LANE_SERIAL jobs run one at a time, in submission
 * order, on a thread of their own (every change of stored state: install, replace, delete,
 * pending keys; and every job that touches a key held by a provider such as tpm2, whose
 * provider is not thread-safe and whose TPM has three object slots: key generation, CSRs and
 * CA signatures with such keys, TLS handshakes that sign with one), so two changes of one
 * endpoint never interleave, no two threads ever talk to the TPM, and `done` callbacks of
 * serial jobs come in submission order.
 *
 * Guarantees: `done` is called exactly once for every accepted job, on the loop thread, after
 * `run` returned (or without `run` when the pool is shutting down: then `cancelled` is true). No
 * job is ever run twice. The queue is bounded: a full queue refuses the job (-EAGAIN) so that a
 * flood of requests cannot grow memory; front ends answer 503 with Retry-After.
 * Priority: the parallel workers run under SCHED_IDLE (the serial thread does not: its jobs are
 * short, mostly waiting on fsync or the TPM, and TLS handshakes wait for them). Whenever the loop
 * thread (or any other process) wants a core it gets it at once, so a few RSA-4096 key generations
 * on this 2-core platform cost requests almost no latency, while the workers still use every cycle
 * nobody else wants. The loop must therefore never wait for a worker: a lock a worker holds could
 * be held up for as long as the machine is busy (hence malloc_trim runs on a worker, see main.c).
 * Thread-safety: every function here only from the loop thread (the thread running base).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/cleanup.h"

struct event_base;
struct worker_pool;

/* Threads: this platform has 2 cores; RSA-4096 keygen takes ~1 s, so 2-4 is right. */
#define WORKER_THREADS_DEFAULT 2u
#define WORKER_THREADS_MAX     16u
/* Jobs waiting (not yet running) over all lanes. */
#define WORKER_QUEUE_MAX 64u

enum worker_lane { WORKER_LANE_PARALLEL, WORKER_LANE_SERIAL, WORKER_LANE_MAX };

/* Runs on a worker thread. Must not touch loop-owned state. */
typedef void (*worker_run_fn)(void *arg);
/* Runs on the loop thread after run (cancelled: run was never called; free arg). */
typedef void (*worker_done_fn)(void *arg, bool cancelled);

/*
 * A pool of n_threads (1..WORKER_THREADS_MAX) attached to base. Returns 0, -EINVAL, -ENOMEM or
 * -errno (thread or eventfd creation).
 */
_must_check_ int worker_pool_new(struct event_base *base, unsigned n_threads,
                                 struct worker_pool **ret);

/*
 * Queue a job. Returns 0 (done will be called), -EAGAIN (queue full, or the pool is
 * shutting down: done will NOT be called, the caller keeps arg), -ENOMEM (likewise), -EINVAL.
 * May be called from a done callback (from worker_pool_free's: -EAGAIN).
 */
_must_check_ int worker_submit(struct worker_pool *p, enum worker_lane lane, worker_run_fn run,
                               worker_done_fn done, void *arg);

/* Accepted jobs whose done has not been called yet (queued, running, or finished and waiting
 * for the loop), for logs and the drain at shutdown. */
size_t worker_pool_pending(const struct worker_pool *p);

/*
 * Begin shutting down without blocking: from now on worker_submit refuses (-EAGAIN); queued jobs
 * are cancelled -- their done(arg, true) comes through the loop like any other done, a serial
 * one only after the done of the serial job running at the time -- and running jobs finish and
 * get done(arg, false). To drain without blocking the loop, stop and keep the loop running until
 * worker_pool_pending() is 0, then free. Idempotent; accepts NULL.
 */
void worker_pool_stop(struct worker_pool *p);

/*
 * Stop (as worker_pool_stop), wait for the running jobs, join the threads, and call every done
 * still owed from here: cancelled jobs get done(arg, true), finished ones done(arg, false), in the
 * order they were handed back (serial jobs in submission order). Blocks the loop thread for as
 * long as the running jobs take. Must be called before the event base is freed, and not from a
 * done callback. Accepts NULL; returns NULL.
 */
struct worker_pool *worker_pool_free(struct worker_pool *p);
DEFINE_CLEANUP_STRUCT(worker_pool, worker_pool_free)
