/*
 * test_qgemm.c - the int8 GEMM (runtime/qgemm.c) under every ISA this CPU
 * runs against the reference of qgemm_check.h, plus the int8 helpers
 * (quantize, im2col, maxpool) against their float counterparts. Exits 77
 * (SKIP) after passing when this CPU lacks an int8 kernel set of its
 * architecture (AVX-512 VNNI on most AMD machines); NEON runs under qemu
 * in tests/runtime/neon.sh.
 */
#include <criterion/criterion.h>

#include "qgemm_check.h"
#define ISA_MAIN_SET nnc_set_qisa
#include "isa_main.h"   /* exits 77 (SKIP) for an int8 kernel set this CPU lacks */

static void all_under(const char *isa)
{
    if (nnc_set_qisa(isa) != NNC_OK)
        cr_skip_test("this CPU has no %s int8 kernels", isa);
    cr_assert_str_eq(nnc_qisa(), isa);
    cr_assert_eq(qc_all(), 0, "%s: int8 GEMM differs from the reference", isa);
}

Test(qgemm, scalar) { all_under("scalar"); }
Test(qgemm, avx2) { all_under("avx2"); }
Test(qgemm, avx512_vnni) { all_under("avx512"); }
Test(qgemm, neon_dotprod) { all_under("neon"); }

Test(qgemm, hand_computed)
{
    /* a = (2, -3), w = ((3, 4), (-1, 1)): acc = (-6, -5);
     * * 0.5 + 0.25 = (-2.75, -2.25) -> (-3, -2); relu -> (0, 0) */
    int8_t a[2] = {2, -3}, w[4] = {3, 4, -1, 1}, c[2];
    int8_t pw[64];
    int32_t wsum[16];
    float mult[16], bias[16], cf[2];
    nnc_qlayer l = {2, 2, pw, wsum, mult, bias, 0};
    for (int j = 0; j < 16; j++)
        mult[j] = 0.5f, bias[j] = 0.25f;
    cr_assert_eq(nnc_qpack_bytes(2, 2), 64);
    nnc_qpack(2, 2, w, pw, wsum);
    cr_assert_eq(wsum[0], 7);
    cr_assert_eq(wsum[1], 0);
    nnc_qgemm(&l, 1, a, 2, 0, c, NULL, 2);
    cr_assert_eq(c[0], -3);
    cr_assert_eq(c[1], -2);
    nnc_qgemm(&l, 1, a, 2, 0, NULL, cf, 2);
    cr_assert_float_eq(cf[0], -2.75f, 0);
    cr_assert_float_eq(cf[1], -2.25f, 0);
    l.relu = 1;
    nnc_qgemm(&l, 1, a, 2, 0, c, NULL, 2);
    cr_assert_eq(c[0], 0);
    cr_assert_eq(c[1], 0);
}

Test(qgemm, qconv_rejects_what_it_cannot_read_in_place)
{
    int8_t pw[16 * 16] = {0}, x[64] = {0}, y[64];   /* packed: 16 columns x k (<= 16) */
    int32_t wsum[16] = {0};
    float m[16] = {0}, b[16] = {0};
    nnc_qlayer l = {1, 9, pw, wsum, m, b, 0};   /* 3x3x1: rows of 3 padded to 4 */
    cr_assert_eq(nnc_qconv(&l, 1, 4, 4, 1, 3, 3, 1, 1, 2, 2, x, 0, y, NULL), NNC_ERR_ARG);
    l.k = 12;
    cr_assert_eq(nnc_qconv(&l, 1, 4, 4, 1, 3, 3, 1, 1, 2, 2, x, 0, y, NULL), NNC_OK);
    l.k = 4;                                    /* 1x4x1 */
    cr_assert_eq(nnc_qconv(&l, 1, 4, 4, 1, 1, 4, 1, 1, 4, 1, x, 0, y, NULL), NNC_OK);
    cr_assert_eq(nnc_qconv(&l, 1, 4, 4, 1, 1, 4, 1, 1, 5, 1, x, 0, y, NULL), NNC_ERR_ARG);
}

Test(qgemm, quantize_rounds_to_nearest_even_and_clamps)
{
    float x[6] = {0.5f, 1.5f, -2.5f, 300.0f, -300.0f, 12.3f};
    int8_t q[6];
    nnc_quantize(x, 6, 1.0f, q);
    cr_assert_eq(q[0], 0);
    cr_assert_eq(q[1], 2);
    cr_assert_eq(q[2], -2);
    cr_assert_eq(q[3], 127);
    cr_assert_eq(q[4], -127);
    cr_assert_eq(q[5], 12);
}

Test(qgemm, quantize_vector_path_matches_the_scalar_formula)
{
    float x[203];
    int8_t q[203];
    for (int i = 0; i < 203; i++)   /* halves (ties), out of range, negatives */
        x[i] = (float)(i - 101) * (i % 3 ? 0.5f : 1.37f);
    nnc_quantize(x + 1, 202, 1.25f, q + 1);
    for (int i = 1; i < 203; i++) {
        float f = x[i] * 1.25f;
        f = f < -127.0f ? -127.0f : f > 127.0f ? 127.0f : f;
        cr_assert_eq(q[i], (int8_t)lrintf(f), "element %d: %g", i, (double)x[i]);
    }
}

/* im2col and maxpool on int8 against conv.c's float ones on the same values */
Test(qgemm, im2col_and_maxpool_match_float)
{
    enum { N = 2, H = 5, W = 6, C = 3, OH = 5, OW = 6, K = 3 };
    int8_t x[N * H * W * C], col[N * OH * OW * (K * K * C + 1)], y[N * 2 * 3 * C];
    float xf[N * H * W * C], colf[N * OH * OW * K * K * C], yf[N * 2 * 3 * C];
    for (int i = 0; i < N * H * W * C; i++)
        x[i] = (int8_t)(i * 37 % 255 - 127), xf[i] = x[i];
    nnc_im2col_i8(N, H, W, C, K, K, 1, 1, 1, 1, OH, OW, x, col, K * K * C + 1);
    nnc_im2col(N, H, W, C, K, K, 1, 1, 1, 1, OH, OW, xf, colf);
    for (int r = 0; r < N * OH * OW; r++) {   /* rows padded by one zero */
        for (int i = 0; i < K * K * C; i++)
            cr_assert_eq((float)col[r * (K * K * C + 1) + i], colf[r * K * K * C + i],
                         "im2col row %d element %d", r, i);
        cr_assert_eq(col[r * (K * K * C + 1) + K * K * C], 0, "im2col row %d padding", r);
    }
    nnc_maxpool_i8(N, H, W, C, 2, 2, 2, 2, 2, 3, x, y);
    nnc_maxpool(N, H, W, C, 2, 2, 2, 2, 2, 3, xf, yf);
    for (int i = 0; i < N * 2 * 3 * C; i++)
        cr_assert_eq((float)y[i], yf[i], "maxpool element %d", i);
}
