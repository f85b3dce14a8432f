/* multi_main.c - two models from one .nn file used side by side. */
#include <math.h>
#include <stdio.h>

#include "multi.h"

int main(void)
{
    static float x[ENC_BATCH * ENC_IN], y[ENC_BATCH * ENC_OUT];
    static float cx[CLS_BATCH * CLS_IN], cy[CLS_BATCH * CLS_OUT];
    enc_ctx *e = enc_create(1);
    cls_ctx *c = cls_create(2);
    float l0, l1 = 0, m0, m1 = 0;
    int i, failed = 0;
    for (i = 0; i < ENC_BATCH * ENC_IN; i++)
        x[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    for (i = 0; i < ENC_BATCH * ENC_OUT; i++)
        y[i] = (float)(i % 3) / 3.0f;
    for (i = 0; i < CLS_BATCH * CLS_IN; i++)
        cx[i] = (float)((i * 13) % 7) / 7.0f - 0.5f;
    for (i = 0; i < CLS_BATCH; i++)
        cy[i * CLS_OUT + i % CLS_OUT] = 1.0f;
    l0 = enc_train_step(e, x, y);
    m0 = cls_train_step(c, cx, cy);
    for (i = 0; i < 100; i++) {
        l1 = enc_train_step(e, x, y);
        m1 = cls_train_step(c, cx, cy);
    }
    printf("enc: %.4f -> %.4f, cls: %.4f -> %.4f\n", l0, l1, m0, m1);
    failed += !(l1 < l0) + !(m1 < m0) + !isfinite(l1) + !isfinite(m1);
    failed += ENC_BATCH != 8 || CLS_BATCH != 4 || CLS_OUT != 3;
    enc_destroy(e);
    cls_destroy(c);
    printf("%d passed, %d failed\n", failed ? 0 : 1, failed ? 1 : 0);
    return failed != 0;
}
