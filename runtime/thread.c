/*
 * thread.c - the floating-point mode of a step (denormals flushed) and
 * libnncrt's thread pool.
 *
 * Denormals. nnc_fp_enter sets flush-to-zero and denormals-are-zero
 * (MXCSR FTZ|DAZ on x86, FPCR.FZ on AArch64) for the calling thread and
 * returns the mode to restore; nnc_fp_leave restores the caller's control
 * bits and keeps the exception flags raised meanwhile. The emitted
 * train_step, predict and accuracy, nnc_sgemm and every pool task run
 * under it. nnc_set_flush_denormals(0), or NNC_DENORMALS=keep in the
 * environment (read once), keeps IEEE subnormals everywhere: nnc_fp_enter
 * then changes nothing.
 *
 * Threads. nnc_parallel_for(n, chunk, fn, arg) calls fn(arg, lo, hi) on
 * chunks of [0, n). The caller works too; up to nnc_num_threads() - 1
 * workers (started on first use, kept) claim chunks from one atomic
 * word, the caller from the front and the workers from the back (see
 * run_chunks), so a thread that starts late or is preempted takes fewer
 * chunks instead of holding the others. Each task runs in the caller's
 * floating-point mode. Waiting is a short spin (SPIN_NS, with pause)
 * and then a condition variable: no thread spins long on a core that
 * another process wants.
 *
 * Stragglers. A worker preempted in the middle of a chunk makes the
 * caller wait for it, up to a scheduler time slice; a caller preempted
 * while the workers run slows everything it does alone as well. The
 * caller measures both (its wait for the last chunks, its chunks' time
 * against the workers'); when either is large, the pool runs every loop
 * on the caller alone for a while (SOLO_MIN_NS, doubling up to
 * SOLO_MAX_NS while the machine stays busy) and then tries threads
 * again, so a busy machine costs little and a quiet one keeps its
 * threads.
 *
 * Sites. Whether threads pay depends on the machine more than on the
 * loop's size: on some virtual machines two vCPUs give one core's worth of
 * arithmetic plus the cost of waking the other. So every repeating loop
 * (a call site: nnc_parallel_site's key, or nnc_parallel_for's function,
 * count and chunk) keeps the time it took on the pool and on the caller
 * alone, as a moving average, tries both at first and then runs the faster;
 * the slower way is timed again now and then (after SITE_PROBE_MIN calls,
 * the interval doubling up to SITE_PROBE_MAX while it stays slower), and a
 * loop that grows slow (another process arrived) switches at once. Both
 * ways give the same bits, so timing changes only speed.
 *
 * The default thread count is the number of CPUs the process may run on
 * (sched_getaffinity), capped by the cgroup CPU quota (v2 cpu.max, v1
 * cpu.cfs_quota_us / cpu.cfs_period_us); NNC_NUM_THREADS overrides it,
 * and nnc_set_num_threads overrides both. Built with NNC_NO_THREADS
 * (configure --disable-threads) or without POSIX threads, everything runs
 * on the caller and nnc_num_threads() is 1.
 *
 * A call made while the pool is busy (from a task, or from a second
 * application thread) runs on its caller alone. Built with
 * -DNNC_POOL_DEBUG, the pool prints at exit what it did (loops threaded
 * and not, chunks run by the caller, stragglers, time waited).
 */
#if !defined(NNC_NO_THREADS) && (defined(__linux__) || defined(__APPLE__) || \
                                 defined(__unix__)) && defined(__GNUC__)
#define _GNU_SOURCE 1
#define HAVE_POOL 1
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_POOL)
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif

#include "nncrt.h"
#include "pool.h"

/* ---- Denormals ---------------------------------------------------------- */

#define MXCSR_FLUSH 0x8040u   /* FTZ (bit 15) | DAZ (bit 6) */
#define MXCSR_FLAGS 0x3fu     /* the exception flags */
#define FPCR_FZ (1ul << 24)

static int flush_state = -1;  /* -1: not read from the environment yet */

static int flush_on(void)
{
    if (flush_state < 0) {
        const char *env = getenv("NNC_DENORMALS");
        flush_state = !(env != NULL && strcmp(env, "keep") == 0);
    }
    return flush_state;
}

void nnc_set_flush_denormals(int on)
{
    flush_state = on != 0;
}

int nnc_flush_denormals(void)
{
    return flush_on();
}

static nnc_fpmode fp_get(void)
{
#if defined(HAVE_MXCSR)
    return _mm_getcsr();
#elif defined(__aarch64__) && defined(__GNUC__)
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#else
    return 0;
#endif
}

/* Makes this thread's control bits mode's, keeping its exception flags. */
static void fp_set(nnc_fpmode mode)
{
#if defined(HAVE_MXCSR)
    unsigned int csr = _mm_getcsr();
    if ((csr & ~MXCSR_FLAGS) != ((unsigned int)mode & ~MXCSR_FLAGS))
        _mm_setcsr(((unsigned int)mode & ~MXCSR_FLAGS) | (csr & MXCSR_FLAGS));
#elif defined(__aarch64__) && defined(__GNUC__)
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    if (fpcr != mode)
        __asm__ __volatile__("msr fpcr, %0" : : "r"(mode));
#else
    (void)mode;
#endif
}

nnc_fpmode nnc_fp_enter(void)
{
    nnc_fpmode mode = fp_get();
    if (flush_on()) {
#if defined(HAVE_MXCSR)
        if ((mode & MXCSR_FLUSH) != MXCSR_FLUSH)
            _mm_setcsr((unsigned int)mode | MXCSR_FLUSH);
#elif defined(__aarch64__) && defined(__GNUC__)
        if (!(mode & FPCR_FZ))
            __asm__ __volatile__("msr fpcr, %0" : : "r"(mode | FPCR_FZ));
#endif
    }
    return mode;
}

void nnc_fp_leave(nnc_fpmode mode)
{
    fp_set(mode);
}

/* ---- Thread count ------------------------------------------------------- */

static int num_threads;  /* 0: not chosen yet */

#if defined(HAVE_POOL)
/* ceil(quota / period) from a cgroup file or pair of files, or 0 (none). */
static long read_quota(const char *max, const char *quota, const char *period)
{
    FILE *f;
    char buf[64];
    long q = -1, p = 0;

    if (max != NULL && (f = fopen(max, "r")) != NULL) {
        if (fgets(buf, sizeof buf, f) != NULL && strncmp(buf, "max", 3) != 0)
            sscanf(buf, "%ld %ld", &q, &p);
        fclose(f);
    } else if (quota != NULL && (f = fopen(quota, "r")) != NULL) {
        if (fscanf(f, "%ld", &q) != 1)
            q = -1;
        fclose(f);
        if ((f = fopen(period, "r")) != NULL) {
            if (fscanf(f, "%ld", &p) != 1)
                p = 0;
            fclose(f);
        }
    }
    return q > 0 && p > 0 ? (q + p - 1) / p : 0;
}

/* The CPU quota of this process's cgroup, rounded up, or 0 if none. */
static long cgroup_cpus(void)
{
    char line[512], path[640], path2[640];
    FILE *f = fopen("/proc/self/cgroup", "r");
    long n = 0;

    while (f != NULL && n == 0 && fgets(line, sizeof line, f) != NULL) {
        char *nl = strchr(line, '\n'), *c1 = strchr(line, ':'), *c2;
        if (nl != NULL)
            *nl = '\0';
        if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL)
            continue;
        if (c2 == c1 + 1) {   /* "0::/path": cgroup v2 */
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", c2 + 1);
            n = read_quota(path, NULL, NULL);
        } else if (strstr(c1, "cpu") != NULL && strstr(c1, "cpuset") == NULL) {
            snprintf(path, sizeof path, "/sys/fs/cgroup/cpu%s/cpu.cfs_quota_us", c2 + 1);
            snprintf(path2, sizeof path2, "/sys/fs/cgroup/cpu%s/cpu.cfs_period_us", c2 + 1);
            n = read_quota(NULL, path, path2);
        }
    }
    if (f != NULL)
        fclose(f);
    if (n == 0)   /* a container sees its own cgroup at the root */
        n = read_quota("/sys/fs/cgroup/cpu.max", NULL, NULL);
    if (n == 0)
        n = read_quota(NULL, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                       "/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    return n;
}

/* The CPUs this process may run on, capped by its cgroup quota. */
static int machine_threads(void)
{
    long n = 0, q;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
#endif
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    q = cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}
#endif

static int default_threads(void)
{
#if defined(HAVE_POOL)
    const char *env = getenv("NNC_NUM_THREADS");
    long n = env != NULL ? strtol(env, NULL, 10) : 0;

    if (n > 0)
        return n > 1024 ? 1024 : (int)n;
    return machine_threads();
#else
    return 1;
#endif
}

void nnc_set_num_threads(int n)
{
    num_threads = n > 0 ? (n > 1024 ? 1024 : n) : default_threads();
}

int nnc_num_threads(void)
{
#if defined(HAVE_POOL)
    if (num_threads == 0)
        num_threads = default_threads();
    return num_threads;
#else
    return 1;
#endif
}

/* ---- The pool ----------------------------------------------------------- */

#if defined(HAVE_POOL)

/* Spin this long before sleeping (a worker between loops, the caller
 * waiting for the last chunks). */
#ifndef SPIN_NS
#define SPIN_NS 200000
#endif
/* Threads again after a straggler: first after SOLO_MIN_NS on one thread,
 * doubling while stragglers keep coming, at most SOLO_MAX_NS. */
#define SOLO_MIN_NS 10000000LL
#define SOLO_MAX_NS 1000000000LL
/* A wait that long is not a straggler: a wake-up, the last chunk. */
#define STRAGGLE_MIN_NS 100000LL

#define MAX_WORKERS 255
#define CLOSED 0xffffffffu   /* state's chunk index while a job is set up */
/* Jobs of at most this many chunks are claimed from both ends (below) */
#define TWO_ENDED_MAX 0xfffeu

#define LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;          /* workers wait here for a job */
    pthread_cond_t done_cv;       /* the caller waits here for the last chunk */
    int started;                  /* workers running */
    int busy;                     /* a caller owns the pool */
    /* the job: generation << 32 | next chunk, or generation << 32 |
     * front << 16 | back when nchunks <= TWO_ENDED_MAX; fields set while
     * CLOSED */
    unsigned long long state;
    nnc_range_fn fn;
    void *arg;
    size_t n, chunk;
    unsigned nchunks;
    int helpers;                  /* workers 0 .. helpers-1 may join */
    nnc_fpmode mode;
    unsigned done;                /* chunks finished */
    long long worker_ns;          /* time the workers spent in chunks */
    unsigned worker_chunks;       /* chunks they ran */
    int sleepers;                 /* workers waiting on work */
    int caller_sleeps;
    /* stragglers */
    long long solo_until, backoff, probe_from;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, 0, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claims and runs chunks of generation gen until none is left; returns
 * how many it ran. A worker adds its chunks' time to worker_ns.
 *
 * The caller claims chunks from the front and the workers from the back
 * (jobs of up to TWO_ENDED_MAX chunks), so that each thread takes about
 * the same part of a loop every time it runs: the caller the low
 * indices, the workers the high ones, wherever the two meet. The data a
 * thread's part touches (Adam's moments, a product's rows) then stays in
 * that thread's caches from one step to the next, rather than moving
 * between the CPUs' caches whenever the claims fall otherwise, which
 * costs most where the CPUs share no cache (another CCX or socket). The
 * claiming stays dynamic: a late or slow thread just takes fewer.
 * (Measured on a 2-vCPU EPYC VM, AdamW over 262,144 parameters on 2
 * threads, medians of 8 alternated runs: 113 -> 86 us; 1 thread: 119.) */
static unsigned run_chunks(unsigned long long gen, int is_worker)
{
    unsigned ran = 0;
    unsigned long long s = LOAD(&pool.state);

    for (;;) {
        unsigned low = (unsigned)s, i;
        unsigned long long next;
        nnc_range_fn fn;
        void *arg;
        size_t lo, hi, n, chunk;
        if (s >> 32 != gen || low == CLOSED)
            return ran;
        if (LOAD(&pool.nchunks) <= TWO_ENDED_MAX) {
            unsigned front = low >> 16, back = low & 0xffffu;
            if (front >= back)
                return ran;
            i = is_worker ? back - 1 : front;
            next = is_worker ? s - 1 : s + (1u << 16);
        } else {
            i = low;
            if (i >= LOAD(&pool.nchunks))
                return ran;
            next = s + 1;
        }
        fn = LOAD(&pool.fn), arg = LOAD(&pool.arg);
        n = LOAD(&pool.n), chunk = LOAD(&pool.chunk);
        /* the fields are this generation's if the claim succeeds: the
         * next job's are written only after state leaves (gen, low) */
        if (!__atomic_compare_exchange_n(&pool.state, &s, next, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        lo = (size_t)i * chunk;
        hi = n - lo < chunk ? n : lo + chunk;
        if (is_worker) {
            long long t = now_ns();
            fn(arg, lo, hi);
            __atomic_add_fetch(&pool.worker_ns, now_ns() - t, __ATOMIC_RELAXED);
            __atomic_add_fetch(&pool.worker_chunks, 1u, __ATOMIC_RELAXED);
        } else {
            fn(arg, lo, hi);
        }
        ran++;
        if (__atomic_add_fetch(&pool.done, 1, __ATOMIC_SEQ_CST) == LOAD(&pool.nchunks) &&
            __atomic_load_n(&pool.caller_sleeps, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done_cv);
            pthread_mutex_unlock(&pool.mu);
        }
        s = LOAD(&pool.state);
    }
}

/* No job for a worker that has seen generation seen: the same one, or
 * the next one still being set up. */
#define NO_JOB(s, seen) ((s) >> 32 == (seen) || (unsigned)(s) == CLOSED)

static void *worker(void *p)
{
    int self = (int)(size_t)p;
    unsigned long long seen = 0;

    for (;;) {
        unsigned long long s = LOAD(&pool.state);
        if (NO_JOB(s, seen)) {   /* spin a little, then sleep */
            long long t0 = now_ns();
            int k = 0;
            while (NO_JOB(s = LOAD(&pool.state), seen)) {
                cpu_relax();
                if (++k % 64 == 0 && now_ns() - t0 > SPIN_NS)
                    break;
            }
            if (NO_JOB(s, seen)) {
                pthread_mutex_lock(&pool.mu);
                __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
                while (NO_JOB(s = __atomic_load_n(&pool.state, __ATOMIC_SEQ_CST), seen))
                    pthread_cond_wait(&pool.work, &pool.mu);
                __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&pool.mu);
            }
        }
        seen = s >> 32;
        if (self < LOAD(&pool.helpers)) {
            nnc_fpmode mine = fp_get();
            fp_set(LOAD(&pool.mode));
            run_chunks(seen, 1);
            fp_set(mine);
        }
    }
    return NULL;
}

/* Starts workers up to want; returns how many run. */
static int start_workers(int want)
{
    if (want > MAX_WORKERS)
        want = MAX_WORKERS;
    while (pool.started < want) {
        pthread_t t;
        pthread_attr_t at;
        int ok;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&t, &at, worker, (void *)(size_t)pool.started) == 0;
        pthread_attr_destroy(&at);
        if (!ok)
            break;
        pool.started++;
    }
    return pool.started;
}

#ifdef NNC_POOL_DEBUG
/* Built with -DNNC_POOL_DEBUG: what the pool did, printed at exit. */
static long long dbg_chunks, dbg_mine, dbg_jobs, dbg_solo, dbg_strag, dbg_slow, dbg_wait,
    dbg_maxwait;
static void dbg_sites(void);
static void dbg_print(void)
{
    fprintf(stderr, "pool: %lld loops threaded (%lld chunks, %lld by the caller), %lld on "
                    "the caller alone; %lld stragglers, %lld slow callers; waited %.3f ms "
                    "(at most %.3f)\n",
            dbg_jobs, dbg_chunks, dbg_mine, dbg_solo, dbg_strag, dbg_slow,
            (double)dbg_wait / 1e6, (double)dbg_maxwait / 1e6);
    dbg_sites();
}
#endif

/* After a threaded loop that started at t0, whose caller ran `mine`
 * chunks, ran out of them at t_own and saw the last one finish at t_end:
 * was the caller kept waiting by a preempted worker, or was the caller
 * itself preempted (its chunks took more than twice as long as the
 * workers')? Either means a thread shares its core with another busy
 * process: then one thread for a while (on its own, the caller can move
 * to a free core).
 *
 * Waiting for the last chunk is normal up to about one chunk's time: a
 * worker that woke late (a sleeping vCPU takes 0.1 ms or more to wake on
 * some virtual machines) or took the last chunk just before the caller
 * ran out. A straggler keeps the caller waiting for more than two chunks'
 * time (the caller's own chunks give the time: the straggler's own chunk
 * would inflate the workers' average). */
static void note_wait(long long t0, long long t_own, long long t_end, unsigned mine)
{
    long long wait = t_end - t_own, own = t_own - t0;
    long long wns = LOAD(&pool.worker_ns);
    unsigned wchunks = LOAD(&pool.worker_chunks);
    long long chunk_ns = mine > 0 ? own / (long long)mine
                         : wchunks > 0 ? wns / (long long)wchunks : 0;
    int straggler = wait > STRAGGLE_MIN_NS && wait > 2 * chunk_ns;
    int slow_caller = mine > 0 && wchunks > 0 &&
                      own > STRAGGLE_MIN_NS + 2 * (long long)mine * (wns / (long long)wchunks);
#ifdef NNC_POOL_DEBUG
    if (dbg_jobs++ == 0)
        atexit(dbg_print);
    dbg_wait += wait;
    dbg_maxwait = wait > dbg_maxwait ? wait : dbg_maxwait;
    dbg_strag += straggler;
    dbg_slow += slow_caller;
#endif

    if (straggler || slow_caller) {
        if (pool.backoff < SOLO_MIN_NS)
            pool.backoff = SOLO_MIN_NS;
        __atomic_store_n(&pool.solo_until, t_end + pool.backoff, __ATOMIC_RELAXED);
        pool.probe_from = pool.solo_until;
        pool.backoff = pool.backoff * 2 > SOLO_MAX_NS ? SOLO_MAX_NS : pool.backoff * 2;
    } else if (pool.backoff > SOLO_MIN_NS && t_end - pool.probe_from > pool.backoff) {
        pool.backoff = SOLO_MIN_NS;   /* threads have paid for a while again */
    }
}

/* ---- Sites: threads or not, by measurement ---- */

#define NSITES 256                /* direct-mapped by key */
#define SITE_PROBE_MIN 8u
#define SITE_PROBE_MAX 1024u

typedef struct Site {
    uint64_t key;
    double ns[2];                 /* moving average: [0] caller alone, [1] pool */
    unsigned runs[2];
    unsigned calls, next_probe, interval;
    int choice, probing;
} Site;

/* Touched only by the caller that owns the pool (pool.busy). */
static Site sites[NSITES];

#ifdef NNC_POOL_DEBUG
static void dbg_sites(void)
{
    int i;
    for (i = 0; i < NSITES; i++)
        if (sites[i].runs[0] | sites[i].runs[1])
            fprintf(stderr, "site %016llx: alone %.1f us (%u runs), pool %.1f us (%u runs), "
                            "%s, %u calls\n",
                    (unsigned long long)sites[i].key, sites[i].ns[0] / 1e3, sites[i].runs[0],
                    sites[i].ns[1] / 1e3, sites[i].runs[1],
                    sites[i].choice ? "pool" : "alone", sites[i].calls);
}
#endif

static Site *site_get(uint64_t key)
{
    Site *s = &sites[(key ^ key >> 29) % NSITES];
    if (s->key != key || (s->runs[0] | s->runs[1]) == 0) {
        memset(s, 0, sizeof *s);
        s->key = key;
        s->interval = SITE_PROBE_MIN;
    }
    return s;
}

/* 1: run this call on the pool, 0: on the caller alone. */
static int site_choose(Site *s)
{
    if (s->runs[1] < 2)
        return 1;
    if (s->runs[0] < 2)
        return 0;
    if (++s->calls >= s->next_probe) {
        s->probing = 1;
        return !s->choice;
    }
    return s->choice;
}

static void site_record(Site *s, int way, long long ns)
{
    double t = (double)ns;
    if (s->runs[way] == 0 || s->probing)
        s->ns[way] = t;                           /* a fresh estimate */
    else if (s->runs[way] == 1)
        s->ns[way] = t < s->ns[way] ? t : s->ns[way];   /* the first may be cold */
    else
        s->ns[way] += 0.25 * (t - s->ns[way]);
    s->runs[way]++;
    if (s->runs[0] < 2 || s->runs[1] < 2)
        return;
    if (s->probing) {
        int other = !s->choice;
        if (s->ns[other] > 1.1 * s->ns[s->choice])
            s->interval = s->interval * 2 > SITE_PROBE_MAX ? SITE_PROBE_MAX : s->interval * 2;
        else
            s->interval = SITE_PROBE_MIN;
        s->probing = 0;
        s->next_probe = s->calls + s->interval;
    } else if (s->next_probe == 0) {
        s->next_probe = s->calls + s->interval;
    }
    s->choice = s->ns[1] < s->ns[0];
}

/* Runs a job on the pool, which the caller owns (pool.busy); returns 0
 * (nothing run) when the pool should not be used now. */
static int pool_run(size_t n, size_t chunk, nnc_range_fn fn, void *arg, int nt)
{
    unsigned long long gen;
    unsigned nchunks = (unsigned)((n + chunk - 1) / chunk);
    long long t0, t_own, t_end;
    unsigned mine;
    int helpers;

    t0 = now_ns();
    if (t0 < pool.solo_until) {
#ifdef NNC_POOL_DEBUG
        dbg_solo++;
#endif
        return 0;
    }
    helpers = start_workers(nt - 1);
    if (helpers > nt - 1)
        helpers = nt - 1;
    if (helpers < 1)
        return 0;
    gen = (LOAD(&pool.state) >> 32) + 1;
    __atomic_store_n(&pool.state, gen << 32 | CLOSED, __ATOMIC_SEQ_CST);
    STORE(&pool.fn, fn), STORE(&pool.arg, arg);
    STORE(&pool.n, n), STORE(&pool.chunk, chunk), STORE(&pool.nchunks, nchunks);
    STORE(&pool.helpers, helpers);
    STORE(&pool.mode, fp_get());
    STORE(&pool.done, 0u);
    STORE(&pool.worker_ns, 0LL), STORE(&pool.worker_chunks, 0u);
    __atomic_store_n(&pool.state, gen << 32 | (nchunks <= TWO_ENDED_MAX ? nchunks : 0u),
                     __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.work);
        pthread_mutex_unlock(&pool.mu);
    }
    mine = run_chunks(gen, 0);
#ifdef NNC_POOL_DEBUG
    dbg_mine += mine;
    dbg_chunks += nchunks;
#endif
    t_own = now_ns();
    if (LOAD(&pool.done) != nchunks) {
        int k = 0;
        while (LOAD(&pool.done) != nchunks) {
            cpu_relax();
            if (++k % 64 == 0 && now_ns() - t_own > SPIN_NS)
                break;
        }
        if (LOAD(&pool.done) != nchunks) {
            pthread_mutex_lock(&pool.mu);
            __atomic_store_n(&pool.caller_sleeps, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&pool.done, __ATOMIC_SEQ_CST) != nchunks)
                pthread_cond_wait(&pool.done_cv, &pool.mu);
            __atomic_store_n(&pool.caller_sleeps, 0, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    t_end = now_ns();
    note_wait(t0, t_own, t_end, mine);
    return 1;
}
#endif /* HAVE_POOL */

int nnc_parallel_threads(void)
{
    int nt = nnc_num_threads();
#if defined(HAVE_POOL)
    if (nt > 1 && now_ns() < __atomic_load_n(&pool.solo_until, __ATOMIC_RELAXED))
        return 1;
#endif
    return nt;
}

void nnc_parallel_site(uint64_t key, size_t n, size_t chunk, nnc_range_fn fn, void *arg,
                       void (*solo)(void *), void *solo_arg)
{
    if (n == 0)
        return;
    if (chunk == 0)
        chunk = 1;
#if defined(HAVE_POOL)
    {
        int nt = nnc_num_threads();
        if (nt > 1 && n > chunk && (n - 1) / chunk < CLOSED - 1 &&
            !__atomic_exchange_n(&pool.busy, 1, __ATOMIC_ACQUIRE)) {
            Site *s = site_get(key);
            int way = site_choose(s);
            long long t0 = now_ns();
            if (way && !pool_run(n, chunk, fn, arg, nt))
                way = -1;   /* the pool runs solo for a while: not this site's choice */
            if (way <= 0)
                solo(solo_arg);
            if (way >= 0)
                site_record(s, way, now_ns() - t0);
            STORE(&pool.busy, 0);
            return;
        }
    }
#else
    (void)key, (void)fn, (void)arg;
#endif
    solo(solo_arg);
}

int nnc_site_choice(uint64_t key)
{
#if defined(HAVE_POOL)
    int way = -1;
    if (!__atomic_exchange_n(&pool.busy, 1, __ATOMIC_ACQUIRE)) {
        const Site *s = &sites[(key ^ key >> 29) % NSITES];
        if (s->key == key && s->runs[0] >= 2 && s->runs[1] >= 2)
            way = s->choice;
        STORE(&pool.busy, 0);
    }
    return way;
#else
    (void)key;
    return -1;
#endif
}

int nnc_site_next(uint64_t key)
{
#if defined(HAVE_POOL)
    int way = -1;
    if (!__atomic_exchange_n(&pool.busy, 1, __ATOMIC_ACQUIRE)) {
        way = site_choose(site_get(key));
        STORE(&pool.busy, 0);
    }
    return way;
#else
    (void)key;
    return -1;
#endif
}

int nnc_site_note(uint64_t key, int way, long long ns)
{
#if defined(HAVE_POOL)
    if (way != 0 && way != 1)
        return -1;
    if (__atomic_exchange_n(&pool.busy, 1, __ATOMIC_ACQUIRE))
        return -1;
    site_record(site_get(key), way, ns);
    STORE(&pool.busy, 0);
    return 0;
#else
    (void)key, (void)way, (void)ns;
    return -1;
#endif
}

typedef struct Whole {
    nnc_range_fn fn;
    void *arg;
    size_t n;
} Whole;

static void run_whole(void *p)
{
    const Whole *w = p;
    w->fn(w->arg, 0, w->n);
}

void nnc_parallel_for(size_t n, size_t chunk, nnc_range_fn fn, void *arg)
{
    Whole w;
    uint64_t id = 0;
    if (n == 0)
        return;
    w.fn = fn, w.arg = arg, w.n = n;
    memcpy(&id, &fn, sizeof fn < sizeof id ? sizeof fn : sizeof id);
    nnc_parallel_site(nnc_site_key(id, n, chunk, 0), n, chunk, fn, arg, run_whole, &w);
}
