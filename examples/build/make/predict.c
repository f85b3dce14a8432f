/*
 * predict.c - the deployed predictor: xor_trained.c carries the weights
 * of xor.safetensors as constant data (nnc --weights-from), so this
 * program reads no file.
 */
#include <stdio.h>

#include "xor_trained.h"

static const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};

int main(void)
{
    xor_trained_ctx *m = xor_trained_create(0);
    float p[4];
    int i;
    if (!m)
        return 1;
    xor_trained_predict(m, &x[0][0], p, 4);
    for (i = 0; i < 4; i++)
        printf("%g xor %g -> %.9g\n", x[i][0], x[i][1], p[i]);
    xor_trained_destroy(m);
    return 0;
}
