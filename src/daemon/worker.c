/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker pool (worker.h): pthreads take jobs from two FIFO lanes and hand finished jobs
 * back to the loop thread through an eventfd watched by a libevent event.
 *
 * Locking (one mutex, p->lock, so that there is no lock order to get wrong):
 *  - p->lock guards the lanes, n_queued, is_serial_busy, is_stopping and the finished list.
 *    Threads hold it only to take a job and to hand it back, never while `run` runs; the loop
 *    thread holds it only to queue a job and to take the whole finished list, never while a
 *    `done` runs (a done may submit again without deadlocking).
 *  - Everything else -- base, the event, the eventfd, n_undone, is_dispatching -- is touched
 *    only by the loop thread (the eventfd's counter is the kernel's business).
 *  - A job belongs to whoever holds it: the lane (under the lock), then one worker (without
 *    it), then the finished list (under the lock), then the loop thread. Because a job passes
 *    through the mutex at each hand-over, what the submitter wrote into arg happens-before
 *    `run`, and what `run` wrote happens-before `done`: jobs need no locks of their own.
 * Threads: n_threads workers take parallel jobs only; one more thread, the serial thread, takes
 * serial jobs only, in FIFO order, so serial jobs never run two at a time and never wait for a
 * core behind a parallel job. Its `done`s come in submission order because it puts each
 * finished job on the (FIFO) finished list before it takes the next one.
 * Shutdown: worker_pool_stop sets is_stopping and hands the queued jobs back cancelled -- the
 * parallel ones at once, the serial ones at once unless one runs, else the serial thread
 * cancels them after it, in order. Threads exit when nothing is left to take.
 */
#include "worker.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log/log.h"

struct job {
    struct job *next;
    worker_run_fn run;
    worker_done_fn done;
    void *arg;
    bool is_cancelled; /* handed back without running: the pool was stopping */
};

/* A FIFO of jobs linked through next. */
struct job_list {
    struct job *head;
    struct job **tail; /* &head when empty */
};

struct worker_pool {
    /* loop thread only */
    struct event_base *base;
    struct event *ev;
    int efd;
    size_t n_undone; /* accepted jobs whose done has not been called yet */
    bool is_dispatching;
    pthread_t threads[WORKER_THREADS_MAX];
    unsigned n_threads;
    pthread_t serial_thread;
    bool has_serial_thread;
    bool is_lock_ready;

    /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* a parallel job was queued, or the pool stops */
    pthread_cond_t serial_cond; /* a serial job was queued, or the pool stops */
    struct job_list lanes[WORKER_LANE_MAX];
    size_t n_queued;
    bool is_serial_busy;
    bool is_stopping;
    struct job_list finished;
};

static void list_init(struct job_list *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    *l->tail = j;
    l->tail = &j->next;
}

static struct job *list_pop(struct job_list *l)
{
    struct job *j = l->head;
    if (j) {
        l->head = j->next;
        if (!l->head) {
            l->tail = &l->head;
        }
        j->next = NULL;
    }
    return j;
}

/* Move all of from to a new list (from becomes empty). */
static struct job_list list_take(struct job_list *from)
{
    struct job_list l;
    list_init(&l);
    if (from->head) {
        l.head = from->head;
        l.tail = from->tail;
        list_init(from);
    }
    return l;
}

static void wake_loop(struct worker_pool *p)
{
    uint64_t one = 1;
    /* Only EAGAIN (a counter near 2^64) can fail here; the loop is already awake then. */
    ssize_t n = write(p->efd, &one, sizeof(one));
    (void)n;
}

/* The loop of a thread that takes the jobs of one lane, until the pool stops. */
static void run_lane(struct worker_pool *p, enum worker_lane lane)
{
    pthread_cond_t *cond = lane == WORKER_LANE_SERIAL ? &p->serial_cond : &p->cond;

    (void)pthread_mutex_lock(&p->lock);
    for (;;) {
        struct job *j = list_pop(&p->lanes[lane]);
        if (!j) {
            if (p->is_stopping) {
                break;
            }
            (void)pthread_cond_wait(cond, &p->lock);
            continue;
        }
        p->n_queued--;
        /*
         * A serial job queued behind a running one when the pool stopped: it is cancelled here,
         * after that one finished, so that its done still comes after the earlier one's.
         */
        j->is_cancelled = p->is_stopping;
        if (!j->is_cancelled) {
            if (lane == WORKER_LANE_SERIAL) {
                p->is_serial_busy = true;
            }
            (void)pthread_mutex_unlock(&p->lock);

            j->run(j->arg);

            (void)pthread_mutex_lock(&p->lock);
            if (lane == WORKER_LANE_SERIAL) {
                p->is_serial_busy = false;
            }
        }
        list_push(&p->finished, j);
        wake_loop(p);
    }
    (void)pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *userdata)
{
    /* Unprivileged threads may always lower their priority; a seccomp filter that refuses it
     * leaves the worker at normal priority, which is slower for requests but correct. */
    const struct sched_param idle = { .sched_priority = 0 };
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
    run_lane(userdata, WORKER_LANE_PARALLEL);
    return NULL;
}

/*
 * The serial thread keeps normal priority: its jobs are short (a validation and an fsync, a
 * TPM command) and requests wait for them -- TLS handshakes with a TPM key among them, which
 * must not wait for idle cycles on a busy machine.
 */
static void *serial_main(void *userdata)
{
    run_lane(userdata, WORKER_LANE_SERIAL);
    return NULL;
}

/* Hand jobs to their done callbacks, in list order, with no lock held. */
static void deliver(struct worker_pool *p, struct job_list *l)
{
    struct job *j;
    while ((j = list_pop(l))) {
        worker_done_fn done = j->done;
        void *arg = j->arg;
        bool cancelled = j->is_cancelled;
        free(j);
        assert(p->n_undone > 0);
        p->n_undone--;
        done(arg, cancelled);
    }
}

static void on_finished(evutil_socket_t fd, short what, void *userdata)
{
    struct worker_pool *p = userdata;
    uint64_t n;
    (void)what;

    /*
     * Reset the counter before taking the list: a job finished after the take writes the
     * eventfd again and so wakes us again; one finished before it is in this take (at worst
     * the next wake-up finds an empty list).
     */
    ssize_t r = read((int)fd, &n, sizeof(n));
    (void)r;

    (void)pthread_mutex_lock(&p->lock);
    struct job_list l = list_take(&p->finished);
    (void)pthread_mutex_unlock(&p->lock);

    p->is_dispatching = true;
    deliver(p, &l);
    p->is_dispatching = false;
}

/* Move every job of from to the end of to, marked cancelled. */
static void cancel_all_locked(struct job_list *from, struct job_list *to)
{
    struct job *j;
    while ((j = list_pop(from))) {
        j->is_cancelled = true;
        list_push(to, j);
    }
}

void worker_pool_stop(struct worker_pool *p)
{
    if (!p || !p->is_lock_ready) {
        return;
    }
    (void)pthread_mutex_lock(&p->lock);
    if (!p->is_stopping) {
        p->is_stopping = true;
        cancel_all_locked(&p->lanes[WORKER_LANE_PARALLEL], &p->finished);
        /*
         * Queued serial jobs can be handed back now only when none runs: otherwise their done
         * would overtake the running one's. The worker running it cancels them afterwards.
         */
        if (!p->is_serial_busy) {
            cancel_all_locked(&p->lanes[WORKER_LANE_SERIAL], &p->finished);
        }
        p->n_queued = 0;
        for (struct job *j = p->lanes[WORKER_LANE_SERIAL].head; j; j = j->next) {
            p->n_queued++;
        }
        /* Idle threads wake up and exit; busy ones exit once their lanes are empty. */
        (void)pthread_cond_broadcast(&p->cond);
        (void)pthread_cond_broadcast(&p->serial_cond);
        if (p->finished.head) {
            wake_loop(p);
        }
    }
    (void)pthread_mutex_unlock(&p->lock);
}

struct worker_pool *worker_pool_free(struct worker_pool *p)
{
    if (!p) {
        return NULL;
    }
    /* A done callback freeing the pool would pull the list it is called from away. */
    assert(!p->is_dispatching);

    if (p->is_lock_ready) {
        worker_pool_stop(p);
        /* Running jobs finish, queued serial jobs are cancelled in order, the threads exit. */
        for (unsigned i = 0; i < p->n_threads; i++) {
            (void)pthread_join(p->threads[i], NULL);
        }
        p->n_threads = 0;
        if (p->has_serial_thread) {
            (void)pthread_join(p->serial_thread, NULL);
            p->has_serial_thread = false;
        }

        (void)pthread_mutex_lock(&p->lock);
        struct job_list finished = list_take(&p->finished);
        (void)pthread_mutex_unlock(&p->lock);
        /* done callbacks may submit again: is_stopping refuses them. */
        p->is_dispatching = true;
        deliver(p, &finished);
        p->is_dispatching = false;
        assert(p->n_undone == 0);

        (void)pthread_cond_destroy(&p->serial_cond);
        (void)pthread_cond_destroy(&p->cond);
        (void)pthread_mutex_destroy(&p->lock);
    }
    if (p->ev) {
        event_free(p->ev);
    }
    if (p->efd >= 0) {
        (void)close(p->efd);
    }
    free(p);
    return NULL;
}

int worker_pool_new(struct event_base *base, unsigned n_threads, struct worker_pool **ret)
{
    assert_return(base, -EINVAL);
    assert_return(ret, -EINVAL);
    assert_return(n_threads >= 1 && n_threads <= WORKER_THREADS_MAX, -EINVAL);

    _cleanup_(cleanup_worker_pool) struct worker_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    p->base = base;
    p->efd = -EBADF;
    for (size_t i = 0; i < WORKER_LANE_MAX; i++) {
        list_init(&p->lanes[i]);
    }
    list_init(&p->finished);

    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        return -errno;
    }
    p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_finished, p);
    if (!p->ev) {
        return -ENOMEM;
    }
    if (event_add(p->ev, NULL) < 0) {
        return -ENOMEM;
    }

    int r = pthread_mutex_init(&p->lock, NULL);
    if (r != 0) {
        return -r;
    }
    r = pthread_cond_init(&p->cond, NULL);
    if (r != 0) {
        (void)pthread_mutex_destroy(&p->lock);
        return -r;
    }
    r = pthread_cond_init(&p->serial_cond, NULL);
    if (r != 0) {
        (void)pthread_cond_destroy(&p->cond);
        (void)pthread_mutex_destroy(&p->lock);
        return -r;
    }
    p->is_lock_ready = true;

    /*
     * Workers block every signal (they inherit the mask at creation): SIGTERM and SIGHUP must
     * reach the loop thread, whose libevent signal handling turns them into events.
     */
    sigset_t all, old;
    (void)sigfillset(&all);
    r = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (r != 0) {
        return -r;
    }
    r = pthread_create(&p->serial_thread, NULL, serial_main, p);
    p->has_serial_thread = r == 0;
    for (unsigned i = 0; r == 0 && i < n_threads; i++) {
        r = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (r != 0) {
            break;
        }
        p->n_threads++;
    }
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        return -r; /* the cleanup stops the threads already running */
    }

    *ret = TAKE_PTR(p);
    return 0;
}

int worker_submit(struct worker_pool *p, enum worker_lane lane, worker_run_fn run,
                  worker_done_fn done, void *arg)
{
    assert_return(p, -EINVAL);
    assert_return((unsigned)lane < WORKER_LANE_MAX, -EINVAL);
    assert_return(run && done, -EINVAL);

    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->run = run;
    j->done = done;
    j->arg = arg;

    (void)pthread_mutex_lock(&p->lock);
    if (p->is_stopping || p->n_queued >= WORKER_QUEUE_MAX) {
        (void)pthread_mutex_unlock(&p->lock);
        free(j);
        return -EAGAIN;
    }
    list_push(&p->lanes[lane], j);
    p->n_queued++;
    /* Each lane has its own threads: waking one of them is enough. */
    (void)pthread_cond_signal(lane == WORKER_LANE_SERIAL ? &p->serial_cond : &p->cond);
    (void)pthread_mutex_unlock(&p->lock);

    p->n_undone++;
    return 0;
}

size_t worker_pool_pending(const struct worker_pool *p)
{
    return p ? p->n_undone : 0;
}
