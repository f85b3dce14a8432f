/*
 * main.c - trains xor.nn on the four XOR points and prints its
 * predictions; exit status 1 unless all four are right.
 */
#include <stdio.h>

#include "xor.h"

static const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
static const float y[4] = {0, 1, 1, 0};

int main(void)
{
    xor_ctx *m = xor_create(1);
    float p[4];
    int i, right = 0;
    if (!m)
        return 1;
    for (i = 0; i < 500; i++)
        xor_train_step(m, &x[0][0], y);
    xor_predict(m, &x[0][0], p, 4);
    for (i = 0; i < 4; i++) {
        printf("%g xor %g -> %.9g\n", x[i][0], x[i][1], p[i]);
        right += (p[i] > 0.5f) == (y[i] > 0.5f);
    }
    xor_destroy(m);
    return right != 4;
}
