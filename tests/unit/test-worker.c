/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/worker: parallel jobs really run side by side and all come back; serial jobs run one
 * at a time and come back in submission order, also when mixed with parallel ones; a full queue
 * refuses (-EAGAIN) without ever calling done; stopping cancels queued jobs (serial ones only
 * after the running serial job's done) and lets running ones finish; free calls every done still
 * owed; done always runs on the loop thread and run never does; done may submit again; a stress
 * run of thousands of jobs through a queue kept full; jobs run at SCHED_IDLE. Waits are
 * event-driven (the loop runs until the callbacks fired; gates are condition variables), never
 * timed.
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "worker.h"

/* A condition a job's run waits on, opened by the test thread. */
struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool is_started;
    bool is_open;
};

static void gate_init(struct gate *g)
{
    assert_int_equal(pthread_mutex_init(&g->m, NULL), 0);
    assert_int_equal(pthread_cond_init(&g->c, NULL), 0);
    g->is_started = false;
    g->is_open = false;
}

static void gate_destroy(struct gate *g)
{
    (void)pthread_cond_destroy(&g->c);
    (void)pthread_mutex_destroy(&g->m);
}

static void gate_open(struct gate *g)
{
    (void)pthread_mutex_lock(&g->m);
    g->is_open = true;
    (void)pthread_cond_broadcast(&g->c);
    (void)pthread_mutex_unlock(&g->m);
}

static void gate_wait_started(struct gate *g)
{
    (void)pthread_mutex_lock(&g->m);
    while (!g->is_started) {
        (void)pthread_cond_wait(&g->c, &g->m);
    }
    (void)pthread_mutex_unlock(&g->m);
}

/* Shared by the jobs of one test. */
struct tstate {
    pthread_t loop_thread;
    atomic_int run_seq;
    atomic_int serial_running;
    atomic_bool is_serial_overlap;
    int n_done; /* loop thread only */
    int n_cancelled;
    int done_order[8192];
    struct worker_pool *pool; /* for done callbacks that submit */
    int n_resubmit;           /* how many more jobs done callbacks chain */
    int resubmit_r;           /* the last result of a submit from a done callback */
};

struct tjob {
    struct tstate *st;
    int id;
    enum worker_lane lane;
    struct gate *gate; /* run waits for it when set */
    struct gate *peer; /* run waits for this job to start too (parallelism proof) */
    bool is_peer_seen;
    pthread_t run_thread;
    int run_policy; /* the scheduling policy run ran under */
    bool is_ran;
    int run_seq;
    int result;
    int n_done_calls;
    bool is_cancelled;
    bool is_done_on_loop;
};

static void job_run(void *arg)
{
    struct tjob *j = arg;
    j->run_thread = pthread_self();
    j->run_policy = sched_getscheduler(0);
    j->is_ran = true;
    j->run_seq = atomic_fetch_add(&j->st->run_seq, 1);
    if (j->lane == WORKER_LANE_SERIAL) {
        if (atomic_fetch_add(&j->st->serial_running, 1) != 0) {
            atomic_store(&j->st->is_serial_overlap, true);
        }
        /* Give an overlapping serial job the time to show itself. */
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 200000 };
        (void)nanosleep(&ts, NULL);
    }
    if (j->gate) {
        (void)pthread_mutex_lock(&j->gate->m);
        j->gate->is_started = true;
        (void)pthread_cond_broadcast(&j->gate->c);
        while (!j->gate->is_open) {
            (void)pthread_cond_wait(&j->gate->c, &j->gate->m);
        }
        (void)pthread_mutex_unlock(&j->gate->m);
    }
    if (j->peer) {
        /* A generous bound: only a pool that does not run jobs side by side waits it out. */
        struct timespec until;
        (void)clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 60;
        (void)pthread_mutex_lock(&j->peer->m);
        while (!j->peer->is_started) {
            if (pthread_cond_timedwait(&j->peer->c, &j->peer->m, &until) != 0) {
                break;
            }
        }
        j->is_peer_seen = j->peer->is_started;
        (void)pthread_mutex_unlock(&j->peer->m);
    }
    j->result = j->id * 3;
    if (j->lane == WORKER_LANE_SERIAL) {
        atomic_fetch_sub(&j->st->serial_running, 1);
    }
}

static void job_done(void *arg, bool cancelled)
{
    struct tjob *j = arg;
    struct tstate *st = j->st;
    j->n_done_calls++;
    j->is_cancelled = cancelled;
    j->is_done_on_loop = pthread_equal(pthread_self(), st->loop_thread) != 0;
    if (st->n_done < (int)(sizeof(st->done_order) / sizeof(st->done_order[0]))) {
        st->done_order[st->n_done] = j->id;
    }
    st->n_done++;
    if (cancelled) {
        st->n_cancelled++;
    }
}

static void tstate_init(struct tstate *st)
{
    memset(st, 0, sizeof(*st));
    st->loop_thread = pthread_self();
    atomic_init(&st->run_seq, 0);
    atomic_init(&st->serial_running, 0);
    atomic_init(&st->is_serial_overlap, false);
}

static struct tjob *jobs_new(struct tstate *st, size_t n)
{
    struct tjob *v = calloc(n, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i].st = st;
        v[i].id = (int)i;
    }
    return v;
}

static int submit(struct worker_pool *p, struct tjob *j, enum worker_lane lane)
{
    j->lane = lane;
    return worker_submit(p, lane, job_run, job_done, j);
}

/* Run the loop until n done callbacks have come. */
static void loop_until(struct event_base *base, const struct tstate *st, int n)
{
    while (st->n_done < n) {
        assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
    }
}

/* What every test starts with: a loop, a pool, the jobs' shared state and a closed gate. */
struct fixture {
    struct event_base *base;
    struct worker_pool *pool; /* NULL once the test freed it */
    struct tstate st;         /* st.pool is pool */
    struct gate g;
};

/* The pool's thread count comes in *state (cmocka's prestate, see main). */
static int fixture_setup(void **state)
{
    unsigned n_threads = *(unsigned *)*state;
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(worker_pool_new(f->base, n_threads, &f->pool), 0);
    tstate_init(&f->st);
    f->st.pool = f->pool;
    gate_init(&f->g);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    /* After a failure a job may still wait at the gate, and free would wait for it. */
    gate_open(&f->g);
    (void)worker_pool_free(f->pool);
    gate_destroy(&f->g);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Free the pool in the test (its teardown then has nothing to free). */
static void fixture_pool_free(struct fixture *f)
{
    assert_null(worker_pool_free(f->pool));
    f->pool = NULL;
    f->st.pool = NULL;
}

/* Runs on a pool of WORKER_THREADS_MAX threads: the largest allowed is accepted. */
static void test_invalid(void **state)
{
    struct fixture *f = *state;
    struct worker_pool *p = NULL;

    assert_int_equal(worker_pool_new(f->base, 0, &p), -EINVAL);
    assert_int_equal(worker_pool_new(f->base, WORKER_THREADS_MAX + 1, &p), -EINVAL);
    assert_int_equal(worker_pool_new(NULL, 1, &p), -EINVAL);
    assert_int_equal(worker_pool_new(f->base, 1, NULL), -EINVAL);
    assert_null(p);

    assert_non_null(f->pool);
    p = f->pool;
    struct tjob j = { .st = &f->st };
    assert_int_equal(worker_submit(p, WORKER_LANE_MAX, job_run, job_done, &j), -EINVAL);
    assert_int_equal(worker_submit(p, WORKER_LANE_PARALLEL, NULL, job_done, &j), -EINVAL);
    assert_int_equal(worker_submit(p, WORKER_LANE_PARALLEL, job_run, NULL, &j), -EINVAL);
    assert_int_equal(worker_submit(NULL, WORKER_LANE_PARALLEL, job_run, job_done, &j), -EINVAL);
    assert_int_equal(worker_pool_pending(p), 0);
    fixture_pool_free(f);
    assert_int_equal(j.n_done_calls, 0);
    assert_false(j.is_ran);

    assert_null(worker_pool_free(NULL));
    assert_int_equal(worker_pool_pending(NULL), 0);
    worker_pool_stop(NULL);
}

static void test_parallel(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = f->base;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;

    /* Two jobs that each wait for the other to have started: only side by side do both see
     * the other. */
    struct gate g0, g1;
    gate_init(&g0);
    gate_init(&g1);
    struct tjob *pair = jobs_new(st, 2);
    pair[0].gate = &g0;
    pair[0].peer = &g1;
    pair[1].gate = &g1;
    pair[1].peer = &g0;
    /* The peer check runs after the gate: open both gates at once, so each job only marks its
     * start and then waits for the other one's. */
    gate_open(&g0);
    gate_open(&g1);
    assert_int_equal(submit(p, &pair[0], WORKER_LANE_PARALLEL), 0);
    assert_int_equal(submit(p, &pair[1], WORKER_LANE_PARALLEL), 0);

    const size_t n = WORKER_QUEUE_MAX - 2;
    struct tjob *v = jobs_new(st, n);
    for (size_t i = 0; i < n; i++) {
        v[i].id = (int)(i + 100);
        assert_int_equal(submit(p, &v[i], WORKER_LANE_PARALLEL), 0);
    }
    assert_int_equal(worker_pool_pending(p), n + 2);
    loop_until(base, st, (int)n + 2);
    assert_int_equal(worker_pool_pending(p), 0);

    for (size_t i = 0; i < 2; i++) {
        assert_true(pair[i].is_peer_seen);
        assert_int_equal(pair[i].n_done_calls, 1);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
        assert_false(v[i].is_cancelled);
        assert_true(v[i].is_ran);
        assert_int_equal(v[i].result, v[i].id * 3);
        assert_true(v[i].is_done_on_loop);
        assert_false(pthread_equal(v[i].run_thread, st->loop_thread));
        /* Workers yield to the loop (worker.h, "Priority"); the loop itself is unchanged. */
        assert_int_equal(v[i].run_policy, SCHED_IDLE);
    }
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
    assert_int_equal(st->n_cancelled, 0);
    fixture_pool_free(f);
    /* Nothing more after free. */
    assert_int_equal(st->n_done, (int)n + 2);
    free(v);
    free(pair);
    gate_destroy(&g0);
    gate_destroy(&g1);
}

static void test_serial_order(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = f->base;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;

    /* Serial jobs interleaved with parallel ones (every third job), on four threads. */
    const size_t n = WORKER_QUEUE_MAX;
    struct tjob *v = jobs_new(st, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(submit(p, &v[i], i % 3 == 2 ? WORKER_LANE_PARALLEL : WORKER_LANE_SERIAL),
                         0);
    }
    loop_until(base, st, (int)n);

    assert_false(atomic_load(&st->is_serial_overlap));
    int last_id = -1, last_seq = -1;
    for (int k = 0; k < st->n_done; k++) {
        const struct tjob *j = &v[st->done_order[k]];
        assert_true(j->is_done_on_loop);
        if (j->lane != WORKER_LANE_SERIAL) {
            continue;
        }
        /* done and run both in submission order */
        assert_true(j->id > last_id);
        assert_true(j->run_seq > last_seq);
        last_id = j->id;
        last_seq = j->run_seq;
    }
    /* every serial job came back: the last one was the last serial id submitted */
    assert_int_equal(last_id, (n - 1) % 3 == 2 ? (int)n - 2 : (int)n - 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
    }
    fixture_pool_free(f);
    free(v);
}

static void test_queue_full(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = f->base;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;
    struct gate *g = &f->g;

    /*
     * One job holds the only parallel thread and one the serial thread (each lane has its
     * own); then exactly WORKER_QUEUE_MAX wait.
     */
    struct gate g2;
    gate_init(&g2);
    const size_t n = WORKER_QUEUE_MAX + 4;
    struct tjob *v = jobs_new(st, n);
    v[0].gate = g;
    v[1].gate = &g2;
    assert_int_equal(submit(p, &v[0], WORKER_LANE_PARALLEL), 0);
    assert_int_equal(submit(p, &v[1], WORKER_LANE_SERIAL), 0);
    gate_wait_started(g);
    gate_wait_started(&g2);
    for (size_t i = 2; i <= WORKER_QUEUE_MAX + 1; i++) {
        assert_int_equal(submit(p, &v[i], i % 2 ? WORKER_LANE_SERIAL : WORKER_LANE_PARALLEL), 0);
    }
    assert_int_equal(submit(p, &v[WORKER_QUEUE_MAX + 2], WORKER_LANE_PARALLEL), -EAGAIN);
    assert_int_equal(submit(p, &v[WORKER_QUEUE_MAX + 3], WORKER_LANE_SERIAL), -EAGAIN);
    assert_int_equal(worker_pool_pending(p), WORKER_QUEUE_MAX + 2);

    gate_open(g);
    gate_open(&g2);
    loop_until(base, st, WORKER_QUEUE_MAX + 2);
    assert_int_equal(worker_pool_pending(p), 0);
    for (size_t i = 0; i <= WORKER_QUEUE_MAX + 1; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
        assert_true(v[i].is_ran);
    }
    /* Refused jobs: never run, never done, not even at free. */
    fixture_pool_free(f);
    gate_destroy(&g2);
    for (size_t i = WORKER_QUEUE_MAX + 2; i < n; i++) {
        assert_int_equal(v[i].n_done_calls, 0);
        assert_false(v[i].is_ran);
    }
    assert_int_equal(st->n_done, WORKER_QUEUE_MAX + 2);
    free(v);
}

/*
 * A serial job runs behind a gate; parallel and serial jobs wait. Stop: the parallel ones come
 * back cancelled at once, the serial ones only after the running one, which finishes normally.
 */
static void test_stop_cancels(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = f->base;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;
    struct gate *g = &f->g;
    struct tjob *v = jobs_new(st, 8);

    v[0].gate = g;
    assert_int_equal(submit(p, &v[0], WORKER_LANE_SERIAL), 0);
    gate_wait_started(g);
    for (size_t i = 1; i <= 6; i++) {
        assert_int_equal(submit(p, &v[i], i <= 3 ? WORKER_LANE_PARALLEL : WORKER_LANE_SERIAL), 0);
    }
    worker_pool_stop(p);
    worker_pool_stop(p); /* idempotent */
    assert_int_equal(submit(p, &v[7], WORKER_LANE_PARALLEL), -EAGAIN);
    assert_int_equal(worker_pool_pending(p), 7);

    loop_until(base, st, 3);
    assert_int_equal(st->n_done, 3);
    for (size_t i = 1; i <= 3; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
        assert_true(v[i].is_cancelled);
        assert_false(v[i].is_ran);
        assert_true(v[i].is_done_on_loop);
    }
    assert_int_equal(v[0].n_done_calls, 0);

    gate_open(g);
    loop_until(base, st, 7);
    assert_int_equal(worker_pool_pending(p), 0);
    /* The running serial job first and not cancelled, then the queued serial ones in order. */
    assert_int_equal(st->done_order[3], 0);
    assert_true(v[0].is_ran);
    assert_false(v[0].is_cancelled);
    for (int i = 4; i <= 6; i++) {
        assert_int_equal(st->done_order[i], i);
        assert_true(v[i].is_cancelled);
        assert_false(v[i].is_ran);
        assert_int_equal(v[i].n_done_calls, 1);
    }
    assert_int_equal(st->n_cancelled, 6);
    fixture_pool_free(f);
    assert_int_equal(v[7].n_done_calls, 0);
    assert_int_equal(st->n_done, 7);
    free(v);
}

static void *gate_opener(void *arg)
{
    gate_open(arg);
    return NULL;
}

/* free with jobs queued and one running: every done owed comes from free, on this thread. */
static void test_free_delivers(void **state)
{
    struct fixture *f = *state;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;
    struct gate *g = &f->g;
    struct tjob *v = jobs_new(st, 5);

    v[0].gate = g;
    assert_int_equal(submit(p, &v[0], WORKER_LANE_SERIAL), 0);
    gate_wait_started(g);
    assert_int_equal(submit(p, &v[1], WORKER_LANE_PARALLEL), 0);
    assert_int_equal(submit(p, &v[2], WORKER_LANE_SERIAL), 0);
    assert_int_equal(submit(p, &v[3], WORKER_LANE_PARALLEL), 0);
    assert_int_equal(submit(p, &v[4], WORKER_LANE_SERIAL), 0);
    /* The queued jobs are cancelled before the gate opens, so none of them can run. */
    worker_pool_stop(p);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gate_opener, g), 0);
    /* No loop iteration: free itself waits for job 0 and calls all five done. */
    fixture_pool_free(f);
    assert_int_equal(pthread_join(t, NULL), 0);

    assert_int_equal(st->n_done, 5);
    assert_true(v[0].is_ran);
    assert_false(v[0].is_cancelled);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
        assert_true(v[i].is_done_on_loop);
    }
    for (size_t i = 1; i < 5; i++) {
        assert_false(v[i].is_ran);
        assert_true(v[i].is_cancelled);
    }
    /* Serial order holds: 0 before 2 before 4. */
    int pos[5] = { 0 };
    for (int k = 0; k < 5; k++) {
        pos[st->done_order[k]] = k;
    }
    assert_true(pos[0] < pos[2]);
    assert_true(pos[2] < pos[4]);
    free(v);
}

/* free while a job runs (and the gate opens whenever): it waits, the job is not cancelled. */
static void test_free_waits_for_running(void **state)
{
    struct fixture *f = *state;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;
    struct gate *g = &f->g;
    struct tjob *v = jobs_new(st, 1);
    v[0].gate = g;
    v[0].id = 7; /* a result that only a finished run gives */
    assert_int_equal(submit(p, &v[0], WORKER_LANE_PARALLEL), 0);
    gate_wait_started(g);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gate_opener, g), 0);
    fixture_pool_free(f);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(v[0].n_done_calls, 1);
    assert_true(v[0].is_ran);
    assert_false(v[0].is_cancelled);
    assert_int_equal(v[0].result, 21);
    free(v);
}

/* A done that submits the next job: a chain, and refused once the pool stops. */
static void chain_done(void *arg, bool cancelled);

static void chain_run(void *arg)
{
    struct tjob *j = arg;
    j->is_ran = true;
}

static void chain_done(void *arg, bool cancelled)
{
    struct tjob *j = arg;
    struct tstate *st = j->st;
    j->n_done_calls++;
    j->is_cancelled = cancelled;
    j->is_done_on_loop = pthread_equal(pthread_self(), st->loop_thread) != 0;
    st->n_done++;
    if (st->n_resubmit > 0) {
        struct tjob *next = j + 1;
        st->resubmit_r = worker_submit(st->pool, WORKER_LANE_SERIAL, chain_run, chain_done, next);
        if (st->resubmit_r == 0) {
            st->n_resubmit--;
        }
    }
}

static void test_done_submits(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = f->base;
    struct tstate *st = &f->st;
    struct tjob *v = jobs_new(st, 12);

    st->n_resubmit = 10;
    assert_int_equal(worker_submit(st->pool, WORKER_LANE_SERIAL, chain_run, chain_done, &v[0]), 0);
    loop_until(base, st, 11);
    assert_int_equal(st->n_resubmit, 0);
    for (size_t i = 0; i <= 10; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
        assert_true(v[i].is_ran);
    }

    /* The done called from free tries again: refused, and nothing is left behind. */
    st->n_resubmit = 1;
    assert_int_equal(worker_submit(st->pool, WORKER_LANE_SERIAL, chain_run, chain_done, &v[10]), 0);
    fixture_pool_free(f);
    assert_int_equal(st->resubmit_r, -EAGAIN);
    assert_int_equal(v[11].n_done_calls, 0);
    assert_int_equal(v[10].n_done_calls, 2);
    free(v);
}

/* Thousands of jobs through a queue kept full, over both lanes. */
static void test_stress(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = f->base;
    struct worker_pool *p = f->pool;
    struct tstate *st = &f->st;
    const size_t n = 6000;
    struct tjob *v = jobs_new(st, n);
    size_t submitted = 0, refusals = 0;
    while (submitted < n) {
        int r = submit(p, &v[submitted], submitted % 3 ? WORKER_LANE_PARALLEL : WORKER_LANE_SERIAL);
        if (r == -EAGAIN) {
            refusals++;
            assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
            continue;
        }
        assert_int_equal(r, 0);
        submitted++;
    }
    loop_until(base, st, (int)n);
    assert_true(refusals > 0);
    assert_int_equal(worker_pool_pending(p), 0);
    assert_false(atomic_load(&st->is_serial_overlap));
    int last = -1;
    for (int k = 0; k < st->n_done; k++) {
        const struct tjob *j = &v[st->done_order[k]];
        if (j->lane == WORKER_LANE_SERIAL) {
            assert_true(j->id > last);
            last = j->id;
        }
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].n_done_calls, 1);
        assert_true(v[i].is_ran);
        assert_false(v[i].is_cancelled);
        assert_true(v[i].is_done_on_loop);
        assert_int_equal(v[i].result, v[i].id * 3);
    }
    fixture_pool_free(f);
    free(v);
}

int main(void)
{
    /* Threads per pool, handed to fixture_setup as each test's initial state. */
    static unsigned one = 1, two = 2, four = 4, max = WORKER_THREADS_MAX,
                    stress = WORKER_THREADS_DEFAULT + 1;
#define POOL_TEST(fn, threads) \
    cmocka_unit_test_prestate_setup_teardown(fn, fixture_setup, fixture_teardown, &(threads))
    const struct CMUnitTest tests[] = {
        POOL_TEST(test_invalid, max),
        POOL_TEST(test_parallel, four),
        POOL_TEST(test_serial_order, four),
        POOL_TEST(test_queue_full, one),
        POOL_TEST(test_stop_cancels, one),
        POOL_TEST(test_free_delivers, one),
        POOL_TEST(test_free_waits_for_running, two),
        POOL_TEST(test_done_submits, two),
        POOL_TEST(test_stress, stress),
    };
#undef POOL_TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
