/*
 * quantize.h - int8 inference models (quantize.c): a trained model's
 * predict program as a list of int8 steps with their quantized weights
 * and scales, for the int8 emitter (codegen/emit_quant.c) and the stats
 * (report.c).
 */
#ifndef NNC_QUANTIZE_H
#define NNC_QUANTIZE_H

#include <stdint.h>

#include "nnc.h"

typedef enum {
    QS_QUANTIZE,    /* the float input -> int8 */
    QS_IM2COL,      /* int8 image -> int8 patches */
    QS_GEMM,        /* int8 x int8 weights, fused requantization */
    QS_MAXPOOL,     /* int8 -> int8 */
    QS_SOFTMAX,     /* float logits -> float probabilities (the output) */
} QStepKind;

typedef struct QStep {
    QStepKind kind;
    Loc loc;
    char layer[64];         /* "conv2d_0": its parameters' name, or the op */
    /* QS_IM2COL: h w c kh kw sh sw pt pl oh ow; QS_MAXPOOL: the same
     * without pt, pl (zeros) */
    int geo[11];
    int ldcol;              /* QS_IM2COL: bytes per row (the GEMM's k) */
    size_t out_bytes;       /* per sample (QS_GEMM float output: floats) */
    /* QS_QUANTIZE: floats per sample and the scale */
    int count;
    double scale;           /* of the step's output (the GEMM's int8 one) */
    /* QS_GEMM */
    int rows, n, k;         /* rows per sample; outputs, inputs per row */
    bool relu, nonneg_in, float_out;
    bool conv;              /* on the image in place (nnc_qconv; geo as im2col's) */
    double in_scale;
    int8_t *packed;         /* nnc_qpack's layout */
    size_t packed_bytes;
    int32_t *wsum;          /* n16 each: */
    float *mult, *bias;
    double max_err;         /* largest |w - q sw| over the weights */
} QStep;

typedef struct QModel {
    QStep *steps;
    int nsteps;
    int batch;              /* rows per predict_rows call */
    size_t buf_bytes;       /* per sample: the largest int8 step output */
    size_t buf_stride;      /* bytes of each of the two buffers, 64-aligned */
    size_t logits_bytes;    /* per sample: the float logits under a softmax */
    size_t mem_bytes;       /* P_MEM_BYTES: 63 + context (64) + buffers
                               (+ the logits at P_BATCH rows, 64-aligned) */
    const char *calib;      /* the calibration file */
    int calib_rows;         /* rows the scales come from */
    size_t float_weight_bytes, int8_weight_bytes;  /* parameters, as floats;
                               the int8 data (packed weights, sums,
                               multipliers, biases) */
} QModel;

/* Builds q for model m (compiled as c, weights w): lowers m again, checks
 * that its predict program is a chain of dense/conv2d (+ bias, relu),
 * maxpool2d and flatten ending in a dense or conv layer, runs it in
 * double (eval.c) over the calibration rows of calib (any format
 * nnc_data_load reads, values times scale) for the activations' scales,
 * and quantizes the weights per output channel. false after an error. */
bool quant_build(const Model *m, const Compiled *c, const Weights *w, const char *calib,
                 double scale, int max_rows, QModel *q);
void quant_free(QModel *q);

/* emit_quant.c: the header and the source of the int8 model. */
void emit_quant_header(Buf *out, const Compiled *c, const QModel *q, const char *prefix);
void emit_quant_source(Buf *out, const Compiled *c, const QModel *q, const char *prefix);
/* report.c: --emit=stats of an int8 model (malloc'd JSON). */
char *report_stats_quant(const Compiled *c, const QModel *q);

#endif /* NNC_QUANTIZE_H */
