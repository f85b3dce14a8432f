/*
 * nncrt_mpi.h - data-parallel training over MPI (libnncrt-mpi, pkg-config
 * module nncrt-mpi). The `--emit=main` program includes it when built with
 *
 *     mpicc -O3 train.c $(pkg-config --cflags --libs nncrt-mpi) -lm -o train
 *     mpirun -np N ./train train --x X --y Y ...
 *
 * (the module's cflags define NNC_MPI), and then trains on N processes:
 * each step a global batch of N x BATCH rows, rank r computing rows
 * [r BATCH, (r + 1) BATCH), the gradients averaged with MPI_Allreduce,
 * the same update on every rank. libnncrt itself stays free of MPI: this
 * library fills its nnc_fit_dist hooks (nncrt.h). Across machines the
 * sums run in buckets during the backward (DDP-style); when every rank
 * shares one machine, as one blocking MPI_Allreduce after it, which
 * measured faster there. NNC_MPI_OVERLAP=1 or 0 in the environment
 * chooses either way; NNC_MPI_BUCKET_KB sets the bucket size (256).
 */
#ifndef NNCRT_MPI_H
#define NNCRT_MPI_H

#include "nncrt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* nnc_fit_main on every rank of MPI_COMM_WORLD: MPI_Init_thread (funneled:
 * only the calling thread talks to MPI), the training driver with the
 * hooks below, MPI_Finalize. One process (mpirun -np 1, or none) trains
 * as nnc_fit_main does. With NNC_MPI_STATS=1 in the environment, rank 0
 * prints the step and allreduce times at the end. */
int nnc_mpi_fit_main(int argc, char **argv, const nnc_fit_model *m);

/* The hooks over MPI_COMM_WORLD, for a driver of one's own (MPI already
 * initialized, funneled or better); valid until MPI_Finalize. Its
 * train_step needs the model's split step (m->grad_step etc.). */
const nnc_fit_dist *nnc_mpi_dist(void);

/* Times so far, in seconds: steps, their mean wall time (train_step of
 * the hooks), the mean time a step waited for its allreduces after the
 * backward (the part of the communication not hidden), and the time of
 * one blocking MPI_Allreduce of the whole gradient region (measured on
 * the spot: collective, every rank must call it). */
typedef struct nnc_mpi_stats {
    long steps;
    double step_s, grad_s, wait_s, allreduce_s;   /* grad_s: in grad_step */
    double window_s;   /* of grad_step, the part after the first bucket started */
    size_t floats;     /* gradient floats reduced per step */
    int buckets;       /* started as the backward produces them */
} nnc_mpi_stats;
void nnc_mpi_get_stats(nnc_mpi_stats *s);

#ifdef __cplusplus
}
#endif

#endif /* NNCRT_MPI_H */
