/*
 * fuzz_ckpt.c - libFuzzer target: the input as a safetensors checkpoint,
 * loaded as a model's <prefix>_load does, in both layouts: nnc's with the
 * optimizer state (nnc_ckpt_is_nnc, nnc_ckpt_load_opt, nnc_ckpt_load) and
 * PyTorch's (nnc_ckpt_load_torch: names exact or layer by layer, the conv
 * kernel and flattened-image permutations).
 *
 * The model: a conv kernel [2, 2, 2, 3] (torch [2, 3, 2, 2]), its bias,
 * a dense weight [2, 8] over a flattened 2x2x2 image and its bias, then
 * Adam's exp_avg of each as the optional group.
 *
 * Besides the sanitizers' checks, every call must return a documented
 * code, leave a message on failure, and leave the tensors untouched
 * unless it succeeded (a trap otherwise). And the input as JSON text:
 * io.c's recognizer, which tells cJSON's out of memory from malformed
 * text, must never accept what cJSON refuses.
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "nncrt.h"
#include "nncrt_io.h"

#define NP 4    /* parameters */
#define NT 8    /* with the optimizer state */

static float mem[NT][24];
static nnc_tensor t[NT];
static const nnc_torch_layout lay[NP] = {
    {NNC_TORCH_KERNEL, 2, 2, 3}, {NNC_TORCH_SAME, 0, 0, 0},
    {NNC_TORCH_FLAT, 2, 2, 2}, {NNC_TORCH_SAME, 0, 0, 0},
};

static void model(void)
{
    static const nnc_tensor shapes[NT] = {
        {"conv.weight", 4, {2, 2, 2, 3}, NULL},
        {"conv.bias", 1, {2}, NULL},
        {"fc.weight", 2, {2, 8}, NULL},
        {"fc.bias", 1, {2}, NULL},
        {"optimizer.conv.weight.exp_avg", 4, {2, 2, 2, 3}, NULL},
        {"optimizer.conv.bias.exp_avg", 1, {2}, NULL},
        {"optimizer.fc.weight.exp_avg", 2, {2, 8}, NULL},
        {"optimizer.fc.bias.exp_avg", 1, {2}, NULL},
    };
    memcpy(t, shapes, sizeof shapes);
    for (int i = 0; i < NT; i++) {
        t[i].data = mem[i];
        for (int j = 0; j < 24; j++)
            mem[i][j] = -7.0f;   /* the sentinel */
    }
}

static int untouched(void)
{
    for (int i = 0; i < NT; i++)
        for (int j = 0; j < 24; j++)
            if (mem[i][j] != -7.0f)
                return 0;
    return 1;
}

/* A refusal: a documented code, a message, nothing written. */
static void check(int rc)
{
    if (rc == NNC_OK)
        return;
    if (rc != NNC_ERR_FORMAT && rc != NNC_ERR_MISMATCH)   /* not NOMEM: see fuzz_data */
        __builtin_trap();
    if (nnc_last_error()[0] == '\0' || !untouched())
        __builtin_trap();
}

/* nnc_json_valid(text) implies that cJSON parses it (no memory runs
 * out here). */
static void json_agrees(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    cJSON *root;

    if (text == NULL)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    root = cJSON_ParseWithOpts(text, NULL, 1);
    if (root == NULL && nnc_json_valid(text))
        __builtin_trap();
    cJSON_Delete(root);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(data, size);
    uint64_t step = 0;
    int found = 0, rc;

    model();
    rc = nnc_ckpt_is_nnc(path);
    if (rc < 0 && rc != NNC_ERR_FORMAT)
        __builtin_trap();
    nnc_set_error(NULL);
    check(nnc_ckpt_load_opt(path, t, NP, NT, &found, &step));
    model();
    nnc_set_error(NULL);
    check(nnc_ckpt_load(path, t, NP));
    model();
    nnc_set_error(NULL);
    check(nnc_ckpt_load_torch(path, t, lay, NP));
    json_agrees(data, size);
    if (size > 8)
        json_agrees(data + 8, size - 8);   /* the header, for the seeds */
    return 0;
}
