/*
 * mpi.c - libnncrt-mpi: the hooks of nnc_fit_dist (nncrt.h) over MPI, so
 * that the training driver of libnncrt (fit.c) trains data-parallel,
 * DDP-style, with no MPI in libnncrt itself.
 *
 * A step (mpi_train_step): the model's grad_step computes this rank's
 * gradients into its gradient region; as soon as the gradients from some
 * offset to the region's end are final it says so (the ready notice of
 * PREFIX_grad_step_notify, emitted after the kernel that completes a
 * parameter's gradient; the backward finishes the last layers first), and
 * every bucket lying wholly above that offset starts its MPI_Iallreduce
 * (sum) right away, overlapping the rest of the backward. Then the loss
 * is summed, the buckets are waited for, each bucket's sums divided by
 * the number of ranks as it comes in, and the model's apply_update runs
 * the optimizer, the same on every rank. That is the default when the
 * ranks span machines; on one machine one blocking MPI_Allreduce of the
 * whole region after the backward is faster (nnc_mpi_dist).
 *
 * Same bits on every rank, and run after run: the bucket boundaries are
 * fixed (a size from the end of the region, NNC_MPI_BUCKET_KB, default
 * 256), the buckets start in the same order everywhere (the notices are
 * fixed at compile time) and only their start time depends on timing.
 * What we rely on from MPI: a reduction of a given count on a given
 * communicator uses an algorithm chosen from the count and the number of
 * ranks (as Open MPI's tuned and libnbc components do), so its sums are
 * associated the same way every time; and all ranks receive the same
 * result (the MPI standard's advice to implementors; for 2 ranks the sum
 * is one commutative addition). fit.c checks the parameters' hash across
 * ranks after training's set-up, and a divergence would show in the
 * equivalence test (tests/mpi/equiv.sh).
 *
 * Faults: MPI_COMM_WORLD keeps MPI_ERRORS_ARE_FATAL, so a failed MPI call
 * stops the job; a rank that dies makes mpirun end the others. Errors of
 * the driver itself (data, options, saving) are decided collectively in
 * fit.c (all_ok), so that no rank waits for one that gave up.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "nncrt_mpi.h"

#define MAX_COUNT (1 << 30)   /* floats per MPI call (counts are ints) */

typedef struct Bucket {
    size_t lo, hi;   /* floats [lo, hi) of the gradient region */
} Bucket;

static struct {
    MPI_Comm comm;
    int rank, size;
    float *g;               /* the gradient region the buckets are for */
    size_t n;
    Bucket *b;              /* b[0] at the region's end, b[nb - 1] at 0 */
    MPI_Request *req;
    int *idx;               /* MPI_Testsome's indices */
    int nb, next;           /* next: the first bucket not started */
    int overlap;            /* buckets during the backward (else one blocking
                             * allreduce): NNC_MPI_OVERLAP=1|0, by default
                             * when the ranks span machines */
    long steps;
    double step_s, grad_s, wait_s, window_s;
    double first;           /* when this step's first bucket started */
} S;

static nnc_fit_dist dist;

/* Buckets of NNC_MPI_BUCKET_KB (default 256) from the end of the region. */
static int set_buckets(float *g, size_t n)
{
    const char *env = getenv("NNC_MPI_BUCKET_KB");
    long kb = env ? strtol(env, NULL, 10) : 256;
    size_t size = (size_t)(kb > 0 ? kb : 256) * 256, hi = n;
    int i;
    if (size > MAX_COUNT)
        size = MAX_COUNT;
    free(S.b);
    free(S.req);
    free(S.idx);
    S.nb = n ? (int)((n + size - 1) / size) : 0;
    S.b = (Bucket *)calloc((size_t)S.nb + 1, sizeof(Bucket));
    S.req = (MPI_Request *)calloc((size_t)S.nb + 1, sizeof(MPI_Request));
    S.idx = (int *)calloc((size_t)S.nb + 1, sizeof(int));
    if (!S.b || !S.req || !S.idx)
        return 0;
    for (i = 0; i < S.nb; i++) {
        S.b[i].hi = hi;
        S.b[i].lo = hi > size ? hi - size : 0;
        S.req[i] = MPI_REQUEST_NULL;
        hi = S.b[i].lo;
    }
    S.g = g;
    S.n = n;
    return 1;
}

/* g /= the number of ranks; by its inverse when that is exact (a power
 * of two), eight at a time (blocks of a known count, which gcc -O2
 * vectorizes). */
static void scale(float *g, size_t n)
{
    size_t i = 0, j;
    if ((S.size & (S.size - 1)) == 0) {
        const float inv = 1.0f / (float)S.size;
        for (; i + 8 <= n; i += 8)
            for (j = 0; j < 8; j++)
                g[i + j] *= inv;
        for (; i < n; i++)
            g[i] *= inv;
    } else {
        for (i = 0; i < n; i++)
            g[i] /= (float)S.size;
    }
}

/* Each bucket whose sums are in is divided by the number of ranks right
 * away, while MPI's copy of it is still in cache (a pass of its own over
 * the region cost about a tenth of the MLP's step). wait: until all the
 * buckets started are in. */
static void reap(int wait)
{
    int done, k;
    if (S.next == 0)
        return;
    do {
        if (wait)
            MPI_Waitsome(S.next, S.req, &done, S.idx, MPI_STATUSES_IGNORE);
        else
            MPI_Testsome(S.next, S.req, &done, S.idx, MPI_STATUSES_IGNORE);
        if (done == MPI_UNDEFINED)   /* every bucket started is in */
            return;
        for (k = 0; k < done; k++)
            scale(S.g + S.b[S.idx[k]].lo, S.b[S.idx[k]].hi - S.b[S.idx[k]].lo);
    } while (wait);
}

/* The ready notice: gradients [from, n) are final. Starts the buckets
 * above from, and lets the ones started progress. */
static void ready(void *arg, size_t from)
{
    (void)arg;
    while (S.overlap && S.next < S.nb && S.b[S.next].lo >= from) {
        const Bucket *b = &S.b[S.next];
        if (S.next == 0)
            S.first = MPI_Wtime();
        MPI_Iallreduce(MPI_IN_PLACE, S.g + b->lo, (int)(b->hi - b->lo), MPI_FLOAT, MPI_SUM,
                       S.comm, &S.req[S.next]);
        S.next++;
    }
    reap(0);
}

static float mpi_train_step(const nnc_fit_model *m, void *ctx, const float *x, const float *y)
{
    double t0 = MPI_Wtime(), t1, loss;
    size_t n, i;
    float *g = m->grads(ctx, &n);
    if ((g != S.g || n != S.n) && !set_buckets(g, n)) {
        fprintf(stderr, "nncrt-mpi: out of memory\n");
        MPI_Abort(S.comm, 1);
    }
    S.next = 0;
    loss = (double)m->grad_step(ctx, x, y, ready, NULL);
    t1 = MPI_Wtime();
    S.grad_s += t1 - t0;
    if (S.overlap && S.next > 0)   /* the backward left after the first start */
        S.window_s += t1 - S.first;
    if (S.overlap) {
        ready(NULL, 0);
    } else {
        for (i = 0; i < n; i += MAX_COUNT)
            MPI_Allreduce(MPI_IN_PLACE, g + i, (int)(n - i < MAX_COUNT ? n - i : MAX_COUNT),
                          MPI_FLOAT, MPI_SUM, S.comm);
    }
    MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, S.comm);
    if (S.overlap)
        reap(1);
    else
        scale(g, n);
    S.wait_s += MPI_Wtime() - t1;
    loss /= S.size;
    if (isfinite(loss))   /* as train_step: no update on a bad loss */
        m->apply_update(ctx);
    S.steps++;
    S.step_s += MPI_Wtime() - t0;
    return (float)loss;
}

static void mpi_sum(double *v, int n)
{
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, S.comm);
}

/* max(v) and max(~v) = ~min(v): the same everywhere if max == min */
static int mpi_same(uint64_t v)
{
    uint64_t r[2];
    r[0] = v;
    r[1] = ~v;
    MPI_Allreduce(MPI_IN_PLACE, r, 2, MPI_UINT64_T, MPI_MAX, S.comm);
    return r[0] == ~r[1];
}

static int mpi_all_ok(int ok)
{
    int r = ok != 0;
    MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_INT, MPI_MIN, S.comm);
    return r;
}

static void mpi_bcast_params(const nnc_fit_model *m, void *ctx)
{
    size_t n, i;
    float *p = m->params(ctx, &n);
    for (i = 0; i < n; i += MAX_COUNT)
        MPI_Bcast(p + i, (int)(n - i < MAX_COUNT ? n - i : MAX_COUNT), MPI_FLOAT, 0, S.comm);
}

const nnc_fit_dist *nnc_mpi_dist(void)
{
    if (!dist.train_step) {
        const char *ov = getenv("NNC_MPI_OVERLAP");
        MPI_Comm node;
        int local;
        MPI_Comm_dup(MPI_COMM_WORLD, &S.comm);
        MPI_Comm_rank(S.comm, &S.rank);
        MPI_Comm_size(S.comm, &S.size);
        /* Overlap by default only across machines: on one machine the
         * sums are memory copies made by the ranks' own cores inside MPI
         * calls, so nothing runs beside the backward, and Open MPI's
         * non-blocking allreduce (libnbc) in buckets was slower than one
         * blocking allreduce (tuned): the Fashion-MNIST MLP's step on 2
         * ranks, 1.47-1.57 against 1.11-1.25 ms. (Same bits for 2 ranks,
         * whose sum is one addition; with more, each way is fixed.) */
        MPI_Comm_split_type(S.comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
        S.overlap = ov ? strcmp(ov, "0") != 0 : local < S.size;
        dist.rank = S.rank;
        dist.size = S.size;
        dist.train_step = mpi_train_step;
        dist.sum = mpi_sum;
        dist.same = mpi_same;
        dist.all_ok = mpi_all_ok;
        dist.bcast_params = mpi_bcast_params;
    }
    return &dist;
}

void nnc_mpi_get_stats(nnc_mpi_stats *s)
{
    double t = 0.0;
    int k, reps = 5;
    float *v;
    memset(s, 0, sizeof *s);
    s->steps = S.steps;
    s->floats = S.n;
    s->buckets = S.nb;
    if (S.steps) {
        s->step_s = S.step_s / (double)S.steps;
        s->grad_s = S.grad_s / (double)S.steps;
        s->window_s = S.window_s / (double)S.steps;
        s->wait_s = S.wait_s / (double)S.steps;
    }
    /* every rank has reduced the same region, or none has */
    if (!S.g || !(v = (float *)calloc(S.n, sizeof(float))))
        return;
    for (k = 0; k < reps; k++) {   /* the fastest of a few */
        double t0;
        MPI_Barrier(S.comm);
        t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, v, (int)S.n, MPI_FLOAT, MPI_SUM, S.comm);
        t0 = MPI_Wtime() - t0;
        t = k == 0 || t0 < t ? t0 : t;
    }
    free(v);
    s->allreduce_s = t;
}

/* NNC_MPI_STATS: a line per rank. "Hidden" is the part of a blocking
 * allreduce's time the step did not wait for (waits include the other
 * ranks' lateness, so on a loaded machine it reads low). */
static void print_stats(void)
{
    nnc_mpi_stats st;
    double hidden;
    nnc_mpi_get_stats(&st);
    if (!st.steps)
        return;
    hidden = st.allreduce_s > st.wait_s ? 1.0 - st.wait_s / st.allreduce_s : 0.0;
    fprintf(stderr, "nncrt-mpi: rank %d of %d, %ld steps: %.3f ms a step (grad_step %.3f ms, "
            "then %.3f ms waiting for the sums); a blocking allreduce of the %zu gradient "
            "floats (%d buckets) takes %.3f ms: %.0f%% hidden; %.3f ms of backward after "
            "the first bucket\n", S.rank, S.size, st.steps, 1e3 * st.step_s, 1e3 * st.grad_s,
            1e3 * st.wait_s, st.floats, st.buckets, 1e3 * st.allreduce_s, 100.0 * hidden,
            1e3 * st.window_s);
}

/* Without NNC_NUM_THREADS, the ranks on one machine share its CPUs
 * (mpirun binds 2 ranks to a core each; without binding each would take
 * them all). --threads still decides. */
static void share_cpus(void)
{
    MPI_Comm node;
    int local, n;
    if (getenv("NNC_NUM_THREADS"))
        return;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    n = nnc_num_threads() / local;
    nnc_set_num_threads(n > 1 ? n : 1);
}

int nnc_mpi_fit_main(int argc, char **argv, const nnc_fit_model *m)
{
    int r, provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "%s: error: cannot start MPI\n", argc > 0 ? argv[0] : "train");
        return 1;
    }
    share_cpus();
    r = nnc_fit_main_dist(argc, argv, m, nnc_mpi_dist());
    if (getenv("NNC_MPI_STATS"))
        print_stats();
    MPI_Comm_free(&S.comm);
    MPI_Finalize();
    return r;
}
