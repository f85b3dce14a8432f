/*
 * fit.c - the training driver behind `nnc FILE.nn --emit=main`: a
 * fit-like command line around one compiled model.
 *
 *   PROG train    --x X --y Y [options]   train, log, checkpoint, save
 *   PROG evaluate --x X --y Y [--weights PATH]
 *   PROG predict  --x X [--weights PATH] [-o out.csv]
 *   PROG train    --text FILE [options]  a sequence language model on text
 *   PROG generate --prompt TEXT [--weights PATH] [--tokens N] ...
 *
 * The emitted program describes its model in an nnc_fit_model (sizes, the
 * loss, the API as function pointers) and calls nnc_fit_main. Data come
 * from data.c (CSV, IDX, .npy, gzipped or not); labels are class indices
 * for classification losses (one-hot where the loss needs it) or values.
 *
 * Training follows Keras' fit: the validation split is the last fraction
 * of the rows (taken before shuffling); each epoch visits the training
 * rows in an order drawn from (seed, epoch) alone, so a run resumed from
 * a checkpoint repeats the uninterrupted run exactly. train_step takes
 * whole batches: the last, partial batch of an epoch is filled up with
 * rows from the start of the epoch's order. The reported training loss
 * is the mean of the batch losses; the training accuracy is measured
 * like Keras' (before each step, on the batch), on every fourth batch.
 *
 * A sequence language model (seq_len > 0: T ids in, an index loss over T
 * positions) also trains on text, by steps rather than epochs: windows of
 * T + 1 tokens at random offsets (text.c), the validation loss on fixed
 * windows of the held-out tail every --eval-every steps, and checkpoints
 * that keep the vocabulary and the window sampler's state in their
 * metadata, so that --resume draws the windows the uninterrupted run
 * would have drawn and generate encodes with the training vocabulary.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nncrt.h"
#include "nncrt_io.h"

/* ---- losses and accuracy from outputs ------------------------------------ */

static int argmax(const float *v, int n)
{
    int k = 0, j;
    for (j = 1; j < n; j++)
        k = v[j] > v[k] ? j : k;
    return k;
}

/* The mean loss of rows x nout outputs, from the kernels of nn.c that the
 * training step runs (one implementation of each loss). */
static double loss_mean(int loss, double param, const float *out, const float *y, size_t rows,
                        int nout)
{
    size_t n = rows * (size_t)nout, c = (size_t)nout;
    switch (loss) {
    case NNC_LOSS_MSE: return nnc_mse(out, y, n);
    case NNC_LOSS_MAE: return nnc_mae(out, y, n);
    case NNC_LOSS_HUBER: return nnc_huber(out, y, n, param);
    case NNC_LOSS_BCE: return nnc_bce(out, y, n);
    case NNC_LOSS_CCE: return nnc_cce(out, y, rows, c);
    case NNC_LOSS_SPARSE_CCE: return nnc_sparse_cce(out, y, rows, c);
    case NNC_LOSS_SPARSE_SOFTMAX_CE: return nnc_sparse_softmax_ce(out, y, rows, c);
    default: return nnc_softmax_ce(out, y, rows, c);   /* on logits */
    }
}

/* Each row's loss is the mean over its values (mse, mae, huber, bce) or
 * its cross-entropy, so the sum over rows is rows times the kernel's mean. */
double nnc_loss_sum(int loss, double param, const float *out, const float *y, size_t rows,
                    int nout, int ntarget, size_t *hits)
{
    size_t r, h = 0;
    for (r = 0; r < rows; r++) {
        const float *o = out + r * (size_t)nout, *t = y + r * (size_t)ntarget;
        int k;
        if (nout == 1 && ntarget == 1)
            h += (o[0] >= 0.5f) == (t[0] >= 0.5f);
        else {
            k = ntarget == nout ? argmax(t, ntarget)
                : t[0] >= 0.0f && t[0] < (float)nout ? (int)t[0] : -1;
            h += argmax(o, nout) == k;
        }
    }
    if (hits)
        *hits = h;
    return rows ? loss_mean(loss, param, out, y, rows, nout) * (double)rows : 0.0;
}

/* ---- options ------------------------------------------------------------- */

typedef struct Opts {
    const char *cmd, *x, *y, *weights, *save, *out, *checkpoint, *resume, *log;
    long epochs, ckpt_every, early_stop, threads;
    double val_split, lr, scale;
    int shuffle, argmax, quiet, keep_denormals;
    uint64_t seed;
    /* text (train --text, generate); *_set: given on the command line */
    const char *text, *prompt;
    long steps, eval_every, eval_batches, tokens, top_k;
    double val_fraction, temperature;
    int byte_vocab, epochs_set, text_set, no_cache;
    const char *init_from;  /* train --init-from: initial weights only */
} Opts;

static const nnc_fit_model *M;
static const char *prog = "train";

/* ---- data parallelism (nnc_fit_dist; NULL for one process) ----------------
 * The hooks of nnc_fit_main_dist, used in a few places below: the step,
 * the global batch's slice (gather_batch, text_steps), the sums of the
 * evaluations, the checks at start-up; rank 0 alone writes (its quiet
 * and log options are cleared on the other ranks). */
static const nnc_fit_dist *D;
static char prog_buf[96];

static int rank_of(void) { return D ? D->rank : 0; }
static int nranks(void) { return D ? D->size : 1; }

static float fit_step(void *ctx, const float *x, const float *y)
{
    return D ? D->train_step(M, ctx, x, y) : M->train_step(ctx, x, y);
}

static void sum_ranks(double *v, int n)
{
    if (D)
        D->sum(v, n);
}

/* This rank's part [*lo, *hi) of n items split evenly over the ranks. */
static void my_part(size_t n, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)rank_of() / (size_t)nranks();
    *hi = n * (size_t)(rank_of() + 1) / (size_t)nranks();
}

/* A 64-bit hash of n bytes, from h: four lanes of 8-byte little-endian
 * words (the same value on any host), each (lane ^ w) * an odd constant
 * rotated, then the lanes and the tail folded in by FNV-1a. Independent
 * lanes keep four multiplies in flight: the training set of a
 * Fashion-MNIST run (169 MB of floats) hashes in tens of milliseconds,
 * where byte-wise FNV-1a took a fifth of a second on every rank. Used to
 * compare data and models across ranks, not as a checksum on disk. */
static uint64_t word_le(const unsigned char *b)
{
    return (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
           (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 |
           (uint64_t)b[7] << 56;
}

static uint64_t mix(uint64_t lane, uint64_t w)
{
    lane = (lane ^ w) * UINT64_C(0x9E3779B97F4A7C15);
    return lane << 31 | lane >> 33;
}

static uint64_t hash_bytes(const void *v, size_t n, uint64_t h)
{
    const unsigned char *b = (const unsigned char *)v;
    uint64_t l0 = h, l1 = h + 1, l2 = h + 2, l3 = h + 3;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        l0 = mix(l0, word_le(b + i)), l1 = mix(l1, word_le(b + i + 8));
        l2 = mix(l2, word_le(b + i + 16)), l3 = mix(l3, word_le(b + i + 24));
    }
    h ^= (uint64_t)n;
    h = (h ^ l0) * UINT64_C(0x100000001B3), h = (h ^ l1) * UINT64_C(0x100000001B3);
    h = (h ^ l2) * UINT64_C(0x100000001B3), h = (h ^ l3) * UINT64_C(0x100000001B3);
    for (; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001B3);
    return h;
}

/* After each rank's set-up (ok: its own went well): all ranks go on only
 * if all succeeded and read the same data (data_hash); then rank 0's
 * parameters everywhere. */
static int dist_start(void *ctx, int ok, uint64_t data_hash)
{
    if (!D)
        return ok;
    if (!D->all_ok(ok)) {
        if (ok)
            fprintf(stderr, "%s: error: another rank failed to start; stopping\n", prog);
        return 0;
    }
    if (!D->same(data_hash)) {
        if (D->rank == 0)
            fprintf(stderr, "%s: error: the ranks read different data (the files must hold the"
                    " same rows on every host)\n", prog);
        return 0;
    }
    D->bcast_params(M, ctx);
    return 1;
}

/* The commands and options of a sequence language model. */
static const char text_usage[] =
"\n"
"text (a sequence language model: bytes as tokens):\n"
"  train --text FILE      train on a text file (gzipped or not) by steps:\n"
"  --steps N              steps in all (default 1000; a resumed run continues up to N)\n"
"  --val-fraction F       hold out the last fraction F of the text (default 0.1)\n"
"  --eval-every N         the validation loss every N steps (default 100) and at the end\n"
"  --eval-batches K       ... on K batches of fixed windows of the held-out text (default 10)\n"
"  --byte-vocab           all 256 bytes as the vocabulary (default: the text's bytes)\n"
"  --checkpoint-every N   checkpoints every N steps; --log CSV: step,loss,val_loss,lr,seconds\n"
"  generate --prompt TEXT sample text after TEXT from --weights (default NAME.safetensors)\n"
"  --tokens N             tokens to sample (default 200), printed after TEXT and a\n"
"                         newline; the speed on stderr (not with -q)\n"
"  --temperature F        divide the logits by F (default 1; 0: always the likeliest)\n"
"  --top-k K              sample from the K likeliest tokens only (default: all)\n"
"  --no-cache             a full forward of the last T tokens for every token, instead\n"
"                         of one position against the cached keys and values\n"
"  --seed S               the sampler's seed (default 42)\n";

static void usage(FILE *f)
{
    fprintf(f,
"usage: %s train    --x X --y Y [options]     train the model '%s'\n"
"       %s evaluate --x X --y Y [--weights PATH]  loss and accuracy\n"
"       %s predict  --x X [--weights PATH] [-o OUT.csv] [--argmax]\n"
"\n"
"Data files: CSV, IDX (MNIST) or NumPy .npy, each optionally gzipped.\n"
"X has %d values per sample. Y holds %s.\n"
"\n"
"train options:\n"
"  --epochs N             epochs in all (default 10; a resumed run continues up to N)\n"
"  --val-split F          hold out the last fraction F of the rows (default 0)\n"
"  --shuffle, --no-shuffle  shuffle the training rows every epoch (default on)\n"
"  --lr F                 learning rate instead of the model's (schedules scale from it)\n"
"  --checkpoint PATH      checkpoint file (weights, optimizer state, step) ...\n"
"  --checkpoint-every N   ... written every N epochs\n"
"  --resume PATH          continue from a checkpoint\n"
"  --init-from PATH       start from a checkpoint's weights (fresh optimizer, step 0;\n"
"                         e.g. to fine-tune a model whose other layers are frozen)\n"
"  --early-stop N         stop when val_loss (loss without validation) has not\n"
"                         improved for N epochs\n"
"  --log CSV              one line per epoch: %s\n"
"  --seed S               weights and shuffling (default 42)\n"
"  --save PATH            the trained weights (default %s.safetensors)\n"
"common options:\n"
"  --weights PATH         weights to evaluate or predict with (default %s.safetensors)\n"
"  --scale F              multiply every input value by F, e.g. 1/255 for bytes\n"
"  --threads N            threads for large kernels (default: the CPUs this process\n"
"                         may use, or NNC_NUM_THREADS)\n"
"  --keep-denormals       compute with IEEE subnormals instead of flushing them to\n"
"                         zero (slower; as NNC_DENORMALS=keep)\n"
"  -q, --quiet            no progress output\n"
"  --help                 this help\n"
"%s",
            prog, M->name, prog, prog, M->in,
            M->loss == NNC_LOSS_SPARSE_CCE || M->loss == NNC_LOSS_CCE ||
                    M->loss == NNC_LOSS_SOFTMAX_CE || M->loss == NNC_LOSS_SPARSE_SOFTMAX_CE
                ? "one class index per sample (or one-hot rows if the loss takes them)"
                : M->loss == NNC_LOSS_BCE ? "labels in [0, 1], one per output"
                                          : "the target values, one per output",
            "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds", M->name, M->name,
            M->seq_len > 0 ? text_usage : "");
}

static int bad_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run '%s --help' for usage)\n", prog);
    return 2;
}

static int num(const char *opt, const char *s, double lo, double hi, double *v)
{
    char *end;
    const char *slash = strchr(s, '/');
    errno = 0;
    *v = strtod(s, &end);
    if (slash && end == slash && end != s) {   /* a fraction, e.g. 1/255 */
        double d = strtod(slash + 1, &end);
        *v = d != 0.0 ? *v / d : NAN;
    }
    if (end == s || *end || errno || !(*v >= lo && *v <= hi)) {
        bad_usage("%s needs a number in [%g, %g], not '%s'", opt, lo, hi, s);
        return 0;
    }
    return 1;
}

/* The command line, read with getopt_long: options take their value as
 * --opt V or --opt=V; the command is the first argument. */
enum {
    O_X = 256, O_Y, O_WEIGHTS, O_SAVE, O_CHECKPOINT, O_RESUME, O_LOG, O_EPOCHS,
    O_CKPT_EVERY, O_EARLY_STOP, O_THREADS, O_VAL_SPLIT, O_LR, O_SCALE, O_SEED,
    O_SHUFFLE, O_NO_SHUFFLE, O_ARGMAX, O_KEEP_DENORMALS,
    O_TEXT, O_PROMPT, O_STEPS, O_EVAL_EVERY, O_EVAL_BATCHES, O_TOKENS, O_TOP_K,
    O_VAL_FRACTION, O_TEMPERATURE, O_BYTE_VOCAB, O_NO_CACHE,
    O_INIT_FROM
};

static const struct option long_opts[] = {
    {"x", required_argument, NULL, O_X},
    {"y", required_argument, NULL, O_Y},
    {"weights", required_argument, NULL, O_WEIGHTS},
    {"save", required_argument, NULL, O_SAVE},
    {"checkpoint", required_argument, NULL, O_CHECKPOINT},
    {"resume", required_argument, NULL, O_RESUME},
    {"init-from", required_argument, NULL, O_INIT_FROM},
    {"log", required_argument, NULL, O_LOG},
    {"epochs", required_argument, NULL, O_EPOCHS},
    {"checkpoint-every", required_argument, NULL, O_CKPT_EVERY},
    {"early-stop", required_argument, NULL, O_EARLY_STOP},
    {"threads", required_argument, NULL, O_THREADS},
    {"val-split", required_argument, NULL, O_VAL_SPLIT},
    {"lr", required_argument, NULL, O_LR},
    {"scale", required_argument, NULL, O_SCALE},
    {"seed", required_argument, NULL, O_SEED},
    {"shuffle", no_argument, NULL, O_SHUFFLE},
    {"no-shuffle", no_argument, NULL, O_NO_SHUFFLE},
    {"argmax", no_argument, NULL, O_ARGMAX},
    {"keep-denormals", no_argument, NULL, O_KEEP_DENORMALS},
    {"text", required_argument, NULL, O_TEXT},
    {"prompt", required_argument, NULL, O_PROMPT},
    {"steps", required_argument, NULL, O_STEPS},
    {"eval-every", required_argument, NULL, O_EVAL_EVERY},
    {"eval-batches", required_argument, NULL, O_EVAL_BATCHES},
    {"tokens", required_argument, NULL, O_TOKENS},
    {"top-k", required_argument, NULL, O_TOP_K},
    {"val-fraction", required_argument, NULL, O_VAL_FRACTION},
    {"temperature", required_argument, NULL, O_TEMPERATURE},
    {"byte-vocab", no_argument, NULL, O_BYTE_VOCAB},
    {"no-cache", no_argument, NULL, O_NO_CACHE},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}
};

/* "--epochs" for O_EPOCHS, into buf. */
static const char *opt_name(int c, char *buf, size_t size)
{
    const struct option *l;
    for (l = long_opts; l->name; l++)
        if (l->val == c)
            break;
    snprintf(buf, size, "--%s", l->name ? l->name : "?");
    return buf;
}

/* A whole number in [1, 1e9] for --epochs, --checkpoint-every,
 * --early-stop, --threads or the text options' counts. */
static int set_count(Opts *o, int c, const char *val)
{
    char name[32];
    long *field = c == O_EPOCHS ? &o->epochs : c == O_CKPT_EVERY ? &o->ckpt_every
                : c == O_EARLY_STOP ? &o->early_stop : c == O_STEPS ? &o->steps
                : c == O_EVAL_EVERY ? &o->eval_every : c == O_EVAL_BATCHES ? &o->eval_batches
                : c == O_TOKENS ? &o->tokens : c == O_TOP_K ? &o->top_k : &o->threads;
    o->epochs_set |= c == O_EPOCHS;
    o->text_set |= c == O_STEPS || c == O_EVAL_EVERY || c == O_EVAL_BATCHES;
    double v;
    if (!num(opt_name(c, name, sizeof name), val, 1, 1e9, &v))
        return 2;
    if (v != floor(v))
        return bad_usage("%s needs a whole number, not '%s'", name, val);
    *field = (long)v;
    return 0;
}

/* --val-split, --lr, --scale or --seed. */
static int set_real(Opts *o, int c, const char *val)
{
    char name[32];
    double v;
    opt_name(c, name, sizeof name);
    if (c == O_SEED) {
        if (!num(name, val, 0, 1.8e19, &v) || v != floor(v))
            return bad_usage("--seed needs a whole number, not '%s'", val);
        o->seed = (uint64_t)v;
    } else if (c == O_VAL_SPLIT) {
        if (!num(name, val, 0.0, 0.99, &o->val_split))
            return 2;
    } else if (c == O_VAL_FRACTION) {
        o->text_set = 1;
        if (!num(name, val, 0.0, 0.99, &o->val_fraction))
            return 2;
    } else if (c == O_TEMPERATURE) {
        if (!num(name, val, 0.0, 1e3, &o->temperature))
            return 2;
    } else if (c == O_LR) {
        if (!num(name, val, 1e-12, 1e6, &o->lr))
            return 2;
    } else if (!num(name, val, -1e30, 1e30, &o->scale)) {
        return 2;
    }
    return 0;
}

/* One option c (a getopt_long result) with its value, if it takes one. */
static int set_option(Opts *o, int c, const char *val)
{
    switch (c) {
    case 'h': usage(stdout); exit(0);
    case 'q': o->quiet = 1; return 0;
    case 'o': o->out = val; return 0;
    case O_X: o->x = val; return 0;
    case O_Y: o->y = val; return 0;
    case O_WEIGHTS: o->weights = val; return 0;
    case O_SAVE: o->save = val; return 0;
    case O_CHECKPOINT: o->checkpoint = val; return 0;
    case O_RESUME: o->resume = val; return 0;
    case O_INIT_FROM: o->init_from = val; return 0;
    case O_LOG: o->log = val; return 0;
    case O_SHUFFLE: o->shuffle = 1; return 0;
    case O_NO_SHUFFLE: o->shuffle = 0; return 0;
    case O_ARGMAX: o->argmax = 1; return 0;
    case O_KEEP_DENORMALS: o->keep_denormals = 1; return 0;
    case O_TEXT: o->text = val; return 0;
    case O_PROMPT: o->prompt = val; return 0;
    case O_BYTE_VOCAB: o->byte_vocab = o->text_set = 1; return 0;
    case O_NO_CACHE: o->no_cache = 1; return 0;
    case O_EPOCHS: case O_CKPT_EVERY: case O_EARLY_STOP: case O_THREADS: case O_STEPS:
    case O_EVAL_EVERY: case O_EVAL_BATCHES: case O_TOKENS: case O_TOP_K:
        return set_count(o, c, val);
    default:
        return set_real(o, c, val);
    }
}

/* What train --text and generate need and do not take. */
static int check_text_command(const Opts *o)
{
    int gen = !strcmp(o->cmd, "generate");
    if (!gen && strcmp(o->cmd, "train"))
        return bad_usage("--text is train's (%s takes --x and --y)", o->cmd);
    if (M->seq_len <= 0)
        return bad_usage("%s is for sequence language models (token ids in, a loss over "
                         "the positions); '%s' is not one", gen ? "generate" : "--text",
                         M->name);
    if (o->x || o->y)
        return bad_usage("%s takes no --x or --y", gen ? "generate" : "train --text");
    if (gen && (o->text || o->resume || o->checkpoint || o->log || o->save || o->lr > 0 ||
                o->text_set))
        return bad_usage("generate takes no training options");
    if (!gen && (o->prompt || o->tokens || o->top_k || o->temperature >= 0 || o->no_cache))
        return bad_usage("--prompt, --tokens, --temperature, --top-k and --no-cache are "
                         "generate's");
    if (o->epochs_set || o->val_split > 0 || o->early_stop || o->out || o->argmax)
        return bad_usage("%s takes no --epochs, --val-split, --early-stop, -o or --argmax "
                         "(text trains --steps)", gen ? "generate" : "train --text");
    if ((o->ckpt_every > 0) != (o->checkpoint != NULL))
        return bad_usage("--checkpoint-every and --checkpoint go together");
    if (!gen && o->weights)
        return bad_usage("train writes --save PATH (and starts from --resume PATH)");
    return 0;
}

/* What the command needs and what it does not take. */
static int check_command(const Opts *o)
{
    if (!o->cmd)
        return bad_usage("no command (train, evaluate, predict or generate)");
    if (!strcmp(o->cmd, "generate") || o->text)
        return check_text_command(o);
    if (o->text_set || o->prompt || o->tokens || o->top_k || o->temperature >= 0 || o->no_cache)
        return bad_usage("the text options go with train --text or generate");
    if (!o->x)
        return bad_usage("%s needs --x FILE", o->cmd);
    if (strcmp(o->cmd, "predict") && !o->y)
        return bad_usage("%s needs --y FILE", o->cmd);
    if (!strcmp(o->cmd, "predict") && o->y)
        return bad_usage("predict takes no --y");
    if ((o->ckpt_every > 0) != (o->checkpoint != NULL))
        return bad_usage("--checkpoint-every and --checkpoint go together");
    if (strcmp(o->cmd, "train") &&
        (o->resume || o->checkpoint || o->log || o->save || o->early_stop || o->lr > 0 ||
         o->val_split > 0 || o->init_from))
        return bad_usage("%s takes no training options", o->cmd);
    if (o->init_from && o->resume)
        return bad_usage("--init-from and --resume exclude each other (--resume continues "
                         "a run with its optimizer state)");
    if (o->init_from && !M->load_weights)
        return bad_usage("--init-from needs a program from a newer nnc");
    if (strcmp(o->cmd, "predict") && (o->out || o->argmax))
        return bad_usage("-o and --argmax are predict's");
    if (!strcmp(o->cmd, "train") && o->weights)
        return bad_usage("train writes --save PATH (and starts from --resume PATH)");
    return 0;
}

/* The command: the first argument, train, evaluate or predict. */
static int set_command(Opts *o, const char *a, int first)
{
    if (!first || a[0] == '-')
        return bad_usage("unexpected argument '%s'", a);
    if (strcmp(a, "train") && strcmp(a, "evaluate") && strcmp(a, "predict") &&
        strcmp(a, "generate"))
        return bad_usage("unknown command '%s' (expected train, evaluate, predict or "
                         "generate)", a);
    o->cmd = a;
    return 0;
}

static int parse_opts(int argc, char **argv, Opts *o)
{
    int c, r = 0;
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->shuffle = 1;
    o->lr = -1.0;
    o->scale = 1.0;
    o->seed = 42;
    o->temperature = -1.0;   /* not given: 1 */
    o->val_fraction = 0.1;
    optind = 1;
    opterr = 0;
    /* '-': arguments come back in order as 1; ':': a missing value is ':' */
    while (r == 0 && (c = getopt_long(argc, argv, "-:qho:", long_opts, NULL)) != -1) {
        if (c == 1)
            r = set_command(o, optarg, optind == 2);
        else if (c == ':')
            r = bad_usage("option '%s' needs a value", argv[optind - 1]);
        else if (c == '?' && optopt > 0 && optopt < 256)
            r = bad_usage("unknown option '-%c'", optopt);
        else if (c == '?')
            r = bad_usage("unknown option '%s'", argv[optind - 1]);
        else
            r = set_option(o, c, optarg);
    }
    return r ? r : check_command(o);
}

/* ---- data ------------------------------------------------------------------ */

static int is_classes(void)
{
    return M->loss == NNC_LOSS_CCE || M->loss == NNC_LOSS_SPARSE_CCE ||
           M->loss == NNC_LOSS_SOFTMAX_CE || M->loss == NNC_LOSS_SPARSE_SOFTMAX_CE;
}

static int is_classification(void)
{
    return is_classes() || M->loss == NNC_LOSS_BCE;
}

static int load(const char *path, nnc_data *d)
{
    char err[512];
    if (nnc_data_load(path, d, err, sizeof err) != 0) {
        fprintf(stderr, "%s: error: %s\n", prog, err);
        return 0;
    }
    return 1;
}

static int load_x(const Opts *o, nnc_data *x)
{
    size_t i;
    if (!load(o->x, x))
        return 0;
    if (x->cols != (size_t)M->in) {
        fprintf(stderr, "%s: error: %s: %zu values per sample, the model takes %d\n", prog,
                o->x, x->cols, M->in);
        nnc_data_free(x);
        return 0;
    }
    if (o->scale != 1.0)
        for (i = 0; i < x->rows * x->cols; i++)
            x->data[i] = (float)(x->data[i] * o->scale);
    return 1;
}

/* Loads targets into rows x M->target floats: class indices checked (and
 * expanded to one-hot rows for losses that take them), labels checked. */
static int load_y(const Opts *o, size_t rows, nnc_data *y)
{
    char where[600];
    size_t r;
    int j;
    if (!load(o->y, y))
        return 0;
    if (y->rows != rows) {
        fprintf(stderr, "%s: error: %s has %zu samples but %s has %zu\n", prog, o->x, rows,
                o->y, y->rows);
        goto bad;
    }
    if (is_classes() && y->cols == 1) {   /* class indices */
        float *t = NULL;
        if (M->target != 1) {
            t = (float *)calloc(rows * (size_t)M->target, sizeof(float));
            if (!t) {
                fprintf(stderr, "%s: error: out of memory\n", prog);
                goto bad;
            }
        }
        for (r = 0; r < rows; r++) {
            float v = y->data[r];
            if (!(v >= 0.0f && v < (float)M->out && v == floorf(v))) {
                nnc_data_where(y, r, where, sizeof where);
                fprintf(stderr, "%s: error: %s: label %g is not a class index in [0, %d)\n",
                        prog, where, (double)v, M->out);
                free(t);
                goto bad;
            }
            if (t)
                t[r * (size_t)M->target + (size_t)v] = 1.0f;
        }
        if (t) {
            free(y->data);
            y->data = t;
            y->cols = (size_t)M->target;
        }
        return 1;
    }
    if (y->cols != (size_t)M->target) {
        if (is_classes())
            fprintf(stderr, "%s: error: %s: %zu values per sample; the model takes one class "
                    "index%s%d\n", prog, o->y, y->cols,
                    M->target > 1 ? " or one-hot rows of " : "", M->target > 1 ? M->target : 0);
        else
            fprintf(stderr, "%s: error: %s: %zu values per sample, the model's output has "
                    "%d\n", prog, o->y, y->cols, M->target);
        goto bad;
    }
    if (M->loss == NNC_LOSS_BCE)
        for (r = 0; r < rows; r++)
            for (j = 0; j < M->target; j++) {
                float v = y->data[r * (size_t)M->target + (size_t)j];
                if (!(v >= 0.0f && v <= 1.0f)) {
                    nnc_data_where(y, r, where, sizeof where);
                    fprintf(stderr, "%s: error: %s: label %g out of range [0, 1]\n", prog,
                            where, (double)v);
                    goto bad;
                }
            }
    return 1;
bad:
    nnc_data_free(y);
    return 0;
}

/* ---- evaluation ------------------------------------------------------------ */

/* Mean loss and accuracy of rows [0, n) of x, y with predict, in chunks. */
static int evaluate(void *ctx, const float *x, const float *y, size_t n, float *buf,
                    double *loss, double *acc)
{
    size_t i, hits = 0, h, lo, hi;
    double s = 0.0, sums[2];
    size_t chunk = (size_t)M->batch * 8;
    my_part(n, &lo, &hi);   /* with several ranks, each takes its part */
    for (i = lo; i < hi; i += chunk) {
        size_t k = hi - i < chunk ? hi - i : chunk;
        if (M->predict(ctx, x + i * (size_t)M->in, buf, k) != 0)
            return 0;
        s += nnc_loss_sum(M->loss, M->loss_param, buf, y + i * (size_t)M->target, k, M->out,
                          M->target, &h);
        hits += h;
    }
    sums[0] = s;
    sums[1] = (double)hits;
    sum_ranks(sums, 2);
    *loss = n ? sums[0] / (double)n : NAN;
    *acc = n ? sums[1] / (double)n : NAN;
    return 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *weights_path(const Opts *o, char *buf, size_t n)
{
    if (o->weights)
        return o->weights;
    if (o->save)
        return o->save;
    snprintf(buf, n, "%s.safetensors", M->name);
    return buf;
}

/* "PROG: error: cannot load w.st: <what the runtime said>" (issue 15: the
 * message of the failing call, which names the file, not only the
 * code's generic text); the calls clear the message first. */
static void ckpt_error(const char *verb, const char *path, int err)
{
    const char *why = nnc_last_error();
    if (why[0])
        fprintf(stderr, "%s: error: cannot %s %s\n", prog, verb, why);
    else
        fprintf(stderr, "%s: error: cannot %s '%s': %s\n", prog, verb, path, nnc_strerror(err));
}

static int load_weights(void *ctx, const char *path)
{
    int err;
    nnc_set_error(NULL);
    if ((err = M->load(ctx, path)) != 0) {
        ckpt_error("load", path, err);
        return 0;
    }
    return 1;
}

/* evaluate, predict: the parameters alone (any optimizer state in the
 * file, say of a model with other layers frozen, is not needed). */
static int load_params(void *ctx, const char *path)
{
    int err = M->load_weights ? M->load_weights(ctx, path) : M->load(ctx, path);
    if (err) {
        fprintf(stderr, "%s: error: cannot load '%s': %s\n", prog, path, nnc_strerror(err));
        return 0;
    }
    return 1;
}

static int cmd_evaluate(const Opts *o, void *ctx)
{
    nnc_data x, y;
    char wb[512];
    double loss, acc;
    float *buf;
    int ok = 0, in;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    in = load_params(ctx, weights_path(o, wb, sizeof wb)) && load_x(o, &x);
    if (!dist_start(ctx, in && load_y(o, x.rows, &y), 0)) {
        nnc_data_free(&x);
        nnc_data_free(&y);
        return 1;
    }
    buf = (float *)malloc((size_t)M->batch * 8 * (size_t)M->out * sizeof(float));
    if (buf && evaluate(ctx, x.data, y.data, x.rows, buf, &loss, &acc) && rank_of() == 0) {
        printf("loss %.6f", loss);
        if (is_classification())
            printf("  accuracy %.4f", acc);
        printf("  (%zu samples)\n", x.rows);
        ok = 1;
    } else if (rank_of() != 0) {
        ok = 1;
    } else {
        fprintf(stderr, "%s: error: out of memory\n", prog);
    }
    free(buf);
    nnc_data_free(&x);
    nnc_data_free(&y);
    return ok ? 0 : 1;
}

static int cmd_predict(const Opts *o, void *ctx)
{
    nnc_data x;
    char wb[512];
    FILE *f = stdout;
    float *buf;
    size_t i, chunk = (size_t)M->batch * 8;
    int ok = 1, j;
    if (!load_params(ctx, weights_path(o, wb, sizeof wb)) || !load_x(o, &x))
        return 1;
    if (o->out && !(f = fopen(o->out, "w"))) {
        fprintf(stderr, "%s: error: cannot write '%s': %s\n", prog, o->out, strerror(errno));
        nnc_data_free(&x);
        return 1;
    }
    buf = (float *)malloc(chunk * (size_t)M->out * sizeof(float));
    if (!buf) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        ok = 0;
    }
    for (i = 0; ok && i < x.rows; i += chunk) {
        size_t k = x.rows - i < chunk ? x.rows - i : chunk, r;
        M->predict(ctx, x.data + i * (size_t)M->in, buf, k);
        for (r = 0; r < k; r++) {
            const float *v = buf + r * (size_t)M->out;
            if (o->argmax) {
                fprintf(f, "%d\n", M->out == 1 ? v[0] >= 0.5f : argmax(v, M->out));
                continue;
            }
            for (j = 0; j < M->out; j++)
                fprintf(f, "%s%.9g", j ? "," : "", (double)v[j]);
            fputc('\n', f);
        }
    }
    if (ferror(f) || (f != stdout ? fclose(f) != 0 : fflush(f) != 0)) {
        fprintf(stderr, "%s: error: cannot write '%s'\n", prog, o->out ? o->out : "stdout");
        ok = 0;
    }
    free(buf);
    nnc_data_free(&x);
    return ok ? 0 : 1;
}

/* ---- training --------------------------------------------------------------- */

static void fmt_time(char *b, size_t n, double s)
{
    if (s >= 3600)
        snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(b, n, "%.1fs", s);
}

static void progress(long epoch, long epochs, size_t done, size_t total, double loss,
                     double acc, double t0)
{
    char bar[31], eta[32];
    double el = now() - t0, rate = el > 0 ? (double)done / el : 0;
    size_t k, fill = total ? done * 30 / total : 30;
    for (k = 0; k < 30; k++)
        bar[k] = k < fill ? '=' : k == fill ? '>' : '.';
    bar[30] = 0;
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(total - done) / rate : 0);
    fprintf(stderr, "\r\033[Kepoch %ld/%ld [%s] %zu/%zu loss %.4f", epoch, epochs, bar, done,
            total, loss);
    if (is_classification() && acc >= 0)
        fprintf(stderr, " acc %.4f", acc);
    fprintf(stderr, " %.0f samples/s ETA %s", rate, eta);
    fflush(stderr);
}

/* A checkpoint of several ranks keeps their global batch (rows per step)
 * in its metadata, so that a run on any number of ranks resumes at the
 * right epoch (resume). */
static int save_global_batch(void *ctx, const char *path)
{
    char gb[32];
    const char *more[] = {"global_batch", gb, NULL};
    snprintf(gb, sizeof gb, "%d", M->batch * nranks());
    return M->save_meta(ctx, path, more);
}

/* The global batch of the run that wrote checkpoint path: its metadata's,
 * or one process's batch. */
static size_t ckpt_global_batch(const char *path)
{
    cJSON *root = NULL;
    const cJSON *v;
    char why[256];
    long b = 0;
    if (nnc_st_read_header(path, &root, why, sizeof why) == 0) {
        v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(root, "__metadata__"), "global_batch");
        if (cJSON_IsString(v))
            b = strtol(v->valuestring, NULL, 10);
        cJSON_Delete(root);
    }
    return b > 0 ? (size_t)b : (size_t)M->batch;
}

static int save_weights(void *ctx, const char *path)
{
    int err = 0;
    nnc_set_error(NULL);
    if (rank_of() == 0)
        err = D && M->save_meta ? save_global_batch(ctx, path) : M->save(ctx, path);
    if (err)
        ckpt_error("save", path, err);
    return D ? D->all_ok(err == 0) : err == 0;   /* all ranks stop if rank 0 failed */
}

/* A training run: the data, the split, the batch buffers, the log. */
typedef struct Run {
    const Opts *o;
    void *ctx;
    nnc_data x, y;
    size_t ntrain, nval, steps, *order;
    float *xb, *yb, *ob, *eb;
    FILE *log;
    int tty;
} Run;

/* Loads the data, splits it and allocates the buffers. */
static int run_setup(Run *t)
{
    const Opts *o = t->o;
    size_t n, batch = (size_t)M->batch;
    if (!load_x(o, &t->x))
        return 0;
    if (!load_y(o, t->x.rows, &t->y))
        return 0;
    n = t->x.rows;
    t->ntrain = (size_t)((double)n * (1.0 - o->val_split));
    t->nval = n - t->ntrain;
    if (t->ntrain == 0) {
        fprintf(stderr, "%s: error: --val-split %g leaves no training rows of %zu\n", prog,
                o->val_split, n);
        return 0;
    }
    if (D && t->ntrain < batch * (size_t)D->size) {
        fprintf(stderr, "%s: error: %zu training rows are fewer than the global batch of %d "
                "ranks x %zu\n", prog, t->ntrain, D->size, batch);
        return 0;
    }
    batch *= (size_t)nranks();   /* a step takes the global batch */
    t->steps = (t->ntrain + batch - 1) / batch;
    batch = (size_t)M->batch;
    t->order = (size_t *)malloc(t->ntrain * sizeof(size_t));
    t->xb = (float *)malloc(batch * (size_t)M->in * sizeof(float));
    t->yb = (float *)malloc(batch * (size_t)M->target * sizeof(float));
    t->ob = (float *)malloc(batch * (size_t)M->out * sizeof(float));
    t->eb = (float *)malloc(batch * 8 * (size_t)M->out * sizeof(float));
    if (!t->order || !t->xb || !t->yb || !t->ob || !t->eb) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return 0;
    }
    return 1;
}

/* --init-from: a checkpoint's weights as the starting point (its
 * optimizer state, if any, ignored: fresh state, step 0). */
static int init_from(void *ctx, const Opts *o)
{
    int err = M->load_weights(ctx, o->init_from);
    if (err) {
        fprintf(stderr, "%s: error: cannot load '%s': %s\n", prog, o->init_from,
                nnc_strerror(err));
        return 0;
    }
    if (!o->quiet)
        fprintf(stderr, "%s: starting from the weights of %s\n", M->name, o->init_from);
    return 1;
}

/* ---- checkpoints: stale temporary files ----
 *
 * nnc_ckpt_save writes "<path>.tmp.XXXXXX" beside the checkpoint and
 * renames it over the checkpoint, so a kill leaves the checkpoint whole
 * (the old one or the new one) but may leave the temporary file behind.
 * A run that checkpoints to path removes those of an earlier run: the
 * path is this run's to write. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0, blen = strlen(base);
    char *dir = malloc(dlen + 2), *name;
    DIR *d;
    struct dirent *e;
    if (dir == NULL)
        return;
    memcpy(dir, path, dlen);
    strcpy(dir + dlen, dlen ? "" : ".");
    d = opendir(dir);
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, blen) != 0 || strncmp(e->d_name + blen, ".tmp.", 5) != 0 ||
            strlen(e->d_name) != blen + 11 || (name = malloc(dlen + blen + 12)) == NULL)
            continue;
        memcpy(name, path, dlen);
        strcpy(name + dlen, e->d_name);
        unlink(name);
        free(name);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* --resume: the checkpoint's weights, and the epoch to continue at. */
static int resume(const Run *t, long *first)
{
    const Opts *o = t->o;
    uint64_t done_steps;
    if (!load_weights(t->ctx, o->resume))
        return 0;
    /* a checkpoint written after epoch e holds e * steps steps of the
     * global batch it was written with */
    size_t gb = ckpt_global_batch(o->resume), steps = (t->ntrain + gb - 1) / gb;
    done_steps = M->steps(t->ctx);
    *first = (long)(done_steps / steps);
    if (done_steps % steps)
        fprintf(stderr, "%s: warning: %s holds %llu steps, not whole epochs of %zu; "
                "continuing at epoch %ld\n", prog, o->resume,
                (unsigned long long)done_steps, steps, *first + 1);
    if (!o->quiet)
        fprintf(stderr, "%s: resuming after epoch %ld (step %llu)\n", M->name, *first,
                (unsigned long long)done_steps);
    return 1;
}

/* --log: opened for appending when resuming; the header if it is empty. */
static int open_log_as(const Opts *o, FILE **log, const char *header)
{
    int append = o->resume != NULL, empty = 1;
    FILE *probe = append ? fopen(o->log, "r") : NULL;
    if (probe) {
        empty = fgetc(probe) == EOF;
        fclose(probe);
    }
    *log = fopen(o->log, append ? "a" : "w");
    if (!*log) {
        fprintf(stderr, "%s: error: cannot write '%s': %s\n", prog, o->log, strerror(errno));
        return 0;
    }
    if (empty)
        fprintf(*log, "%s\n", header);
    return 1;
}

/* Closes the log (if any): status, or 1 if it could not be written. */
static int close_log(const Opts *o, FILE *log, int status)
{
    if (log && fclose(log) != 0 && status == 0) {
        fprintf(stderr, "%s: error: cannot write '%s'\n", prog, o->log);
        return 1;
    }
    return status;
}

static int open_log(Run *t)
{
    return open_log_as(t->o, &t->log, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds");
}

/* The epoch's order of the training rows: Fisher-Yates from (seed,
 * epoch) alone. */
static void shuffle_rows(const Run *t, long epoch)
{
    size_t i, *order = t->order;
    nnc_rng rng;
    for (i = 0; i < t->ntrain; i++)
        order[i] = i;
    if (!t->o->shuffle)
        return;
    nnc_rng_seed(&rng, t->o->seed ^ ((uint64_t)(epoch + 1) * UINT64_C(0xD1B54A32D192ED03)));
    for (i = t->ntrain - 1; i > 0; i--) {
        size_t j = (size_t)(nnc_rng_next(&rng) % (uint64_t)(i + 1)), k = order[i];
        order[i] = order[j];
        order[j] = k;
    }
}

/* Copies batch b of the epoch's order into xb, yb. */
static void gather_batch(const Run *t, size_t b)
{
    int r;
    /* this rank's rows of the global batch */
    size_t first = (b * (size_t)nranks() + (size_t)rank_of()) * (size_t)M->batch;
    for (r = 0; r < M->batch; r++) {
        size_t row = t->order[(first + (size_t)r) % t->ntrain];
        memcpy(t->xb + (size_t)r * (size_t)M->in, t->x.data + row * (size_t)M->in,
               (size_t)M->in * sizeof(float));
        memcpy(t->yb + (size_t)r * (size_t)M->target, t->y.data + row * (size_t)M->target,
               (size_t)M->target * sizeof(float));
    }
}

/* One epoch of train_step: *lsum the mean batch loss, *tacc the training
 * accuracy (NAN if none); 0 if the loss diverged. */
static int train_epoch(const Run *t, long epoch, double t0, double *lsum, double *tacc)
{
    size_t ahits = 0, arows = 0, h, b;
    double last = 0.0;
    *lsum = 0.0;
    *tacc = NAN;
    for (b = 0; b < t->steps; b++) {
        float l;
        gather_batch(t, b);
        if (is_classification() && b % 4 == 0) {
            M->predict(t->ctx, t->xb, t->ob, (size_t)M->batch);
            nnc_loss_sum(M->loss, M->loss_param, t->ob, t->yb, (size_t)M->batch, M->out,
                         M->target, &h);
            ahits += h;
            arows += (size_t)M->batch;
        }
        l = fit_step(t->ctx, t->xb, t->yb);
        if (!isfinite(l)) {
            if (t->tty)
                fputc('\n', stderr);
            if (rank_of() == 0)
                fprintf(stderr, "%s: error: the loss is %g at epoch %ld, step %zu (diverged;"
                    " try a smaller --lr)\n", prog, (double)l, epoch + 1, b + 1);
            return 0;
        }
        *lsum += l;
        if (t->tty && (now() - last > 0.1 || b + 1 == t->steps)) {
            last = now();
            progress(epoch + 1, t->o->epochs, b + 1 == t->steps ? t->ntrain
                     : (b + 1) * (size_t)(M->batch * nranks()), t->ntrain, *lsum / (double)(b + 1),
                     arows ? (double)ahits / (double)arows : -1.0, t0);
        }
    }
    *lsum /= (double)t->steps;
    if (D) {   /* the accuracy over all ranks' batches */
        double v[2] = {(double)ahits, (double)arows};
        D->sum(v, 2);
        ahits = (size_t)v[0];
        arows = (size_t)v[1];
    }
    if (arows)
        *tacc = (double)ahits / (double)arows;
    return 1;
}

/* The epoch's line on stderr and in the log. */
static void report_epoch(const Run *t, long epoch, double lsum, double tacc, double vloss,
                         double vacc, double sec)
{
    float lr = M->get_lr(t->ctx);
    if (t->tty)
        fprintf(stderr, "\r\033[K");
    if (!t->o->quiet) {
        fprintf(stderr, "epoch %ld/%ld: loss %.4f", epoch + 1, t->o->epochs, lsum);
        if (is_classification())
            fprintf(stderr, " accuracy %.4f", tacc);
        if (t->nval) {
            fprintf(stderr, " val_loss %.4f", vloss);
            if (is_classification())
                fprintf(stderr, " val_accuracy %.4f", vacc);
        }
        fprintf(stderr, " lr %.3g %.2fs\n", (double)lr, sec);
    }
    if (t->log) {
        fprintf(t->log, "%ld,%.6g,", epoch + 1, lsum);
        if (is_classification())
            fprintf(t->log, "%.6g", tacc);
        fputc(',', t->log);
        if (t->nval)
            fprintf(t->log, "%.6g", vloss);
        fputc(',', t->log);
        if (t->nval && is_classification())
            fprintf(t->log, "%.6g", vacc);
        fprintf(t->log, ",%.6g,%.4g\n", (double)lr, sec);
        fflush(t->log);
    }
}

/* The epochs from first on, with validation, checkpoints and early stopping. */
static int train_epochs(const Run *t, long first)
{
    const Opts *o = t->o;
    double best = INFINITY;
    long epoch, since_best = 0;
    for (epoch = first; epoch < o->epochs; epoch++) {
        double t0 = now(), lsum, tacc, vloss = NAN, vacc = NAN, mon;
        shuffle_rows(t, epoch);
        if (!train_epoch(t, epoch, t0, &lsum, &tacc))
            return 0;
        if (t->nval && !evaluate(t->ctx, t->x.data + t->ntrain * (size_t)M->in,
                                 t->y.data + t->ntrain * (size_t)M->target, t->nval, t->eb,
                                 &vloss, &vacc))
            return 0;
        report_epoch(t, epoch, lsum, tacc, vloss, vacc, now() - t0);
        if (o->ckpt_every && (epoch + 1) % o->ckpt_every == 0 &&
            !save_weights(t->ctx, o->checkpoint))
            return 0;
        mon = t->nval ? vloss : lsum;
        if (mon < best) {
            best = mon;
            since_best = 0;
        } else if (o->early_stop && ++since_best >= o->early_stop) {
            if (!o->quiet)
                fprintf(stderr, "early stop: %s has not improved for %ld epochs "
                        "(best %.4f)\n", t->nval ? "val_loss" : "loss", since_best, best);
            break;
        }
    }
    return 1;
}

static int cmd_train(const Opts *o, void *ctx)
{
    Run t;
    long first = 0;
    int status = 1, ok;
    char wb[512];
    const char *save = o->save;
    if (!save) {
        snprintf(wb, sizeof wb, "%s.safetensors", M->name);
        save = wb;
    }
    memset(&t, 0, sizeof t);
    t.o = o;
    t.ctx = ctx;
    t.tty = isatty(2) && !o->quiet;
    ok = run_setup(&t) && (!o->resume || resume(&t, &first));
    if (!dist_start(ctx, ok, ok && D ? hash_bytes(t.x.data, t.x.rows * (size_t)M->in * 4,
                    hash_bytes(t.y.data, t.x.rows * (size_t)M->target * 4, 0)) : 0))
        goto done;
    if (o->init_from && !init_from(ctx, o))
        goto done;
    if (o->checkpoint && rank_of() == 0)   /* the writer's to clean */
        remove_stale_temps(o->checkpoint);
    if (o->lr > 0)
        M->set_lr(ctx, (float)o->lr);
    if (o->log && !open_log(&t))
        goto done;
    if (!o->quiet)
        fprintf(stderr, "%s: %zu training samples, %zu validation, batch %d, %zu steps per "
                "epoch\n", M->name, t.ntrain, t.nval, M->batch * nranks(), t.steps);
    if (!train_epochs(&t, first) || !save_weights(ctx, save))
        goto done;
    if (!o->quiet)
        fprintf(stderr, "saved %s\n", save);
    status = 0;
done:
    status = close_log(o, t.log, status);
    free(t.order);
    free(t.xb);
    free(t.yb);
    free(t.ob);
    free(t.eb);
    nnc_data_free(&t.x);
    nnc_data_free(&t.y);
    return status;
}

/* ---- text: train --text and generate --------------------------------------------- */

/* A training run on text: the tokens, the window sampler, the fixed
 * validation windows (vx, vy: nwin x T), the buffers, the log. */
typedef struct TextRun {
    const Opts *o;
    void *ctx;
    nnc_text text;
    nnc_rng rng;
    int T, V;
    size_t nwin;
    float *xb, *yb, *vx, *vy, *ob;
    FILE *log;
    int tty;
} TextRun;

/* The model's classes per position (V): the vocabulary must fit them and
 * the embedding's rows. */
static int check_vocab(const nnc_vocab *v, const char *what)
{
    int V = M->out / M->seq_len;
    if (v->n > V || v->n > M->vocab_rows) {
        fprintf(stderr, "%s: error: %s has a vocabulary of %d bytes, more than the model's "
                "%d %s\n", prog, what, v->n, v->n > M->vocab_rows ? M->vocab_rows : V,
                v->n > M->vocab_rows ? "embedding rows" : "output classes");
        return 0;
    }
    return 1;
}

/* The metadata value key of checkpoint path into buf (size bytes); 0
 * with a message if it cannot be read or is not there. */
static int ckpt_meta(const char *path, const char *key, char *buf, size_t size)
{
    char why[256];
    cJSON *root = NULL;
    const cJSON *v;
    if (nnc_st_read_header(path, &root, why, sizeof why) != 0) {
        fprintf(stderr, "%s: error: cannot read '%s': %s\n", prog, path, why);
        return 0;
    }
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "__metadata__"),
                                         key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size) {
        fprintf(stderr, "%s: error: %s has no %s (it was not written by %s train --text)\n",
                prog, path, !strcmp(key, "vocab") ? "vocabulary" : "text sampler state",
                prog);
        cJSON_Delete(root);
        return 0;
    }
    snprintf(buf, size, "%s", v->valuestring);
    cJSON_Delete(root);
    return 1;
}

/* The checkpoint's vocabulary. */
static int ckpt_vocab(const char *path, nnc_vocab *v)
{
    char hex[520];
    if (!ckpt_meta(path, "vocab", hex, sizeof hex))
        return 0;
    if (nnc_vocab_from_hex(hex, v) != 0) {
        fprintf(stderr, "%s: error: %s: a malformed vocabulary in the metadata\n", prog, path);
        return 0;
    }
    return 1;
}

/* Writes the weights with the vocabulary and the sampler's state:
 * "vocab" (nnc_vocab_hex), "text_rng" (the four xoshiro words, 16 hex
 * digits each). */
static int save_text(const TextRun *t, const char *path)
{
    char vocab[520], rng[4 * 16 + 1];
    const char *more[] = {"vocab", vocab, "text_rng", rng, NULL};
    int i, err = 0;
    nnc_vocab_hex(&t->text.vocab, vocab);
    for (i = 0; i < 4; i++)
        snprintf(rng + 16 * i, 17, "%016llx", (unsigned long long)t->rng.s[i]);
    nnc_set_error(NULL);
    if (rank_of() == 0)
        err = M->save_meta(t->ctx, path, more);
    if (err)
        ckpt_error("save", path, err);
    return D ? D->all_ok(err == 0) : err == 0;   /* all ranks stop if rank 0 failed */
}

/* --resume on text: the weights, and the sampler's state; the text's
 * vocabulary must be the checkpoint's. */
static int resume_text(TextRun *t)
{
    const char *path = t->o->resume;
    char hex[520], mine[520], rng[520];
    int i;
    if (!load_weights(t->ctx, path) || !ckpt_meta(path, "vocab", hex, sizeof hex) ||
        !ckpt_meta(path, "text_rng", rng, sizeof rng))
        return 0;
    for (i = 0; i < 4; i++) {
        char word[17], *end;
        memcpy(word, rng + 16 * i, 16);
        word[16] = 0;
        t->rng.s[i] = (uint64_t)strtoull(word, &end, 16);
        if (strlen(rng) != 64 || *end) {
            fprintf(stderr, "%s: error: %s: a malformed text_rng in the metadata\n", prog, path);
            return 0;
        }
    }
    nnc_vocab_hex(&t->text.vocab, mine);
    if (strcmp(hex, mine)) {
        fprintf(stderr, "%s: error: the vocabulary of %s (%d bytes) is not the one %s was "
                "trained with (%zu bytes)\n", prog, t->o->text, t->text.vocab.n, path,
                strlen(hex) / 2);
        return 0;
    }
    if (!t->o->quiet)
        fprintf(stderr, "%s: resuming at step %llu\n", M->name,
                (unsigned long long)M->steps(t->ctx));
    return 1;
}

/* Reads the text, seeds the window sampler (--seed; --resume then
 * restores its state) and makes the fixed validation windows. */
static int text_setup(TextRun *t)
{
    const Opts *o = t->o;
    char err[600];
    size_t k, batch = (size_t)M->batch, T;
    t->T = M->seq_len;
    t->V = M->out / M->seq_len;
    T = (size_t)t->T;
    if (nnc_text_load(o->text, o->byte_vocab, o->val_fraction, t->T, &t->text, err,
                      sizeof err) != 0) {
        fprintf(stderr, "%s: error: %s\n", prog, err);
        return 0;
    }
    if (!check_vocab(&t->text.vocab, o->text))
        return 0;
    nnc_rng_seed(&t->rng, o->seed ^ UINT64_C(0x7E47C0DE5A3B1E5D));
    t->nwin = t->text.n > t->text.ntrain ? (size_t)o->eval_batches * batch * (size_t)nranks()
                                         : 0;   /* global batches */
    t->xb = (float *)malloc(batch * T * sizeof(float));
    t->yb = (float *)malloc(batch * T * sizeof(float));
    t->ob = (float *)malloc(batch * 8 * (size_t)M->out * sizeof(float));
    t->vx = (float *)malloc((t->nwin + 1) * T * sizeof(float));
    t->vy = (float *)malloc((t->nwin + 1) * T * sizeof(float));
    if (!t->xb || !t->yb || !t->ob || !t->vx || !t->vy) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return 0;
    }
    for (k = 0; k < t->nwin; k++)
        nnc_text_window(t->text.tok, nnc_text_val_offset(&t->text, t->T, k, t->nwin), t->T,
                        t->vx + k * T, t->vy + k * T);
    return 1;
}

/* The mean loss per position over the validation windows. */
static int text_val_loss(const TextRun *t, double *loss)
{
    size_t i, chunk = (size_t)M->batch * 8, T = (size_t)t->T, lo, hi;
    double s = 0.0;
    my_part(t->nwin, &lo, &hi);   /* with several ranks, each takes its part */
    for (i = lo; i < hi; i += chunk) {
        size_t k = hi - i < chunk ? hi - i : chunk;
        if (M->predict(t->ctx, t->vx + i * T, t->ob, k) != 0)
            return 0;
        s += nnc_loss_sum(M->loss, M->loss_param, t->ob, t->vy + i * T, k * T, t->V, 1, NULL);
    }
    sum_ranks(&s, 1);
    *loss = t->nwin ? s / (double)(t->nwin * T) : NAN;
    return 1;
}

static void text_progress(const TextRun *t, uint64_t step, uint64_t first, double loss,
                          double t0)
{
    char bar[31], eta[32];
    uint64_t steps = (uint64_t)t->o->steps, done = step - first;
    double el = now() - t0, rate = el > 0 ? (double)done / el : 0;
    size_t k, fill = (size_t)(step * 30 / steps);
    for (k = 0; k < 30; k++)
        bar[k] = k < fill ? '=' : k == fill ? '>' : '.';
    bar[30] = 0;
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(steps - step) / rate : 0);
    fprintf(stderr, "\r\033[Kstep %llu/%llu [%s] loss %.4f %.0f tokens/s ETA %s",
            (unsigned long long)step, (unsigned long long)steps, bar, loss,
            rate * (double)M->batch * (double)t->T, eta);
    fflush(stderr);
}

/* The line of an evaluation on stderr and in the log. */
static void text_report(const TextRun *t, uint64_t step, double loss, double vloss, double sec)
{
    float lr = M->get_lr(t->ctx);
    if (t->tty)
        fprintf(stderr, "\r\033[K");
    if (!t->o->quiet) {
        fprintf(stderr, "step %llu/%ld: loss %.4f", (unsigned long long)step, t->o->steps, loss);
        if (t->nwin)
            fprintf(stderr, " val_loss %.4f", vloss);
        fprintf(stderr, " lr %.3g %.2fs\n", (double)lr, sec);
    }
    if (t->log) {
        fprintf(t->log, "%llu,%.6g,", (unsigned long long)step, loss);
        if (t->nwin)
            fprintf(t->log, "%.6g", vloss);
        fprintf(t->log, ",%.6g,%.4g\n", (double)lr, sec);
        fflush(t->log);
    }
}

/* Steps from the model's step count up to --steps: a batch of random
 * windows each; every --eval-every steps (and at the last) the mean
 * training loss since the last report and the validation loss. */
static int text_steps(TextRun *t)
{
    const Opts *o = t->o;
    uint64_t first = M->steps(t->ctx), step, steps = (uint64_t)o->steps;
    double t0 = now(), tl = t0, last = 0.0, lsum = 0.0, vloss = NAN;
    long n = 0;
    for (step = first; step < steps;) {
        float l;
        int r;
        /* the global batch's windows in order; this rank keeps its own
         * (the others' go to ob, which is larger) */
        for (r = 0; r < nranks(); r++)
            nnc_text_batch(&t->text, &t->rng, M->batch, t->T,
                           r == rank_of() ? t->xb : t->ob,
                           r == rank_of() ? t->yb : t->ob + (size_t)M->batch * (size_t)t->T);
        l = fit_step(t->ctx, t->xb, t->yb);
        if (!isfinite(l)) {
            if (t->tty)
                fputc('\n', stderr);
            if (rank_of() == 0)
                fprintf(stderr, "%s: error: the loss is %g at step %llu (diverged; try a smaller"
                    " --lr)\n", prog, (double)l, (unsigned long long)step + 1);
            return 0;
        }
        lsum += l;
        n++;
        step++;
        if (t->tty && (now() - last > 0.1 || step == steps)) {
            last = now();
            text_progress(t, step, first, lsum / (double)n, t0);
        }
        if (step % (uint64_t)o->eval_every == 0 || step == steps) {
            if (t->nwin && !text_val_loss(t, &vloss))
                return 0;
            text_report(t, step, lsum / (double)n, vloss, now() - tl);
            tl = now();
            lsum = 0.0;
            n = 0;
        }
        if (o->ckpt_every && step % (uint64_t)o->ckpt_every == 0 &&
            !save_text(t, o->checkpoint))
            return 0;
    }
    return 1;
}

static int cmd_train_text(const Opts *o, void *ctx)
{
    TextRun t;
    int status = 1, ok;
    char wb[512];
    const char *save = weights_path(o, wb, sizeof wb);
    memset(&t, 0, sizeof t);
    t.o = o;
    t.ctx = ctx;
    t.tty = isatty(2) && !o->quiet;
    ok = text_setup(&t) && (!o->resume || resume_text(&t));
    if (!dist_start(ctx, ok, ok && D ? hash_bytes(t.text.tok, t.text.n, t.text.ntrain) : 0))
        goto done;
    if (o->checkpoint && rank_of() == 0)   /* the writer's to clean */
        remove_stale_temps(o->checkpoint);
    if (o->lr > 0)
        M->set_lr(ctx, (float)o->lr);
    if (o->log && !open_log_as(o, &t.log, "step,loss,val_loss,lr,seconds"))
        goto done;
    if (!o->quiet)
        fprintf(stderr, "%s: %s: %zu tokens (%zu training, %zu validation), a vocabulary of "
                "%d, batch %d x %d\n", M->name, o->text, t.text.n, t.text.ntrain,
                t.text.n - t.text.ntrain, t.text.vocab.n, M->batch * nranks(), t.T);
    if (!text_steps(&t) || !save_text(&t, save))
        goto done;
    if (!o->quiet)
        fprintf(stderr, "saved %s\n", save);
    status = 0;
done:
    status = close_log(o, t.log, status);
    free(t.xb);
    free(t.yb);
    free(t.ob);
    free(t.vx);
    free(t.vy);
    nnc_text_free(&t.text);
    return status;
}

/* Generation. Each new token's logits come from next_logits: today a
 * full forward of the last T tokens (gen_full_forward); a per-token decode
 * that keeps the earlier tokens' keys and values (a KV cache emitted by
 * the compiler) takes its place through this one pointer. */
typedef struct Gen Gen;
typedef int (*NextLogits)(Gen *g, const unsigned char *tok, size_t n, float *logits);
struct Gen {
    void *ctx;
    int T, V;
    float *x, *out;   /* one window of T ids; its T x V outputs */
    NextLogits next_logits;
    size_t start, cached;   /* decode: the window's first token, tokens in the cache */
};

/* The row as logits: the logarithms of a softmax head's probabilities. */
static void gen_logits(const float *row, int V, float *logits)
{
    int i;
    for (i = 0; i < V; i++)
        logits[i] = M->loss == NNC_LOSS_SPARSE_CCE ? logf(row[i]) : row[i];
}

/* With the model's decode (a cache of the keys and values of the
 * window's tokens): each token not yet in the cache costs one position.
 * When the window would pass T tokens it restarts from the last T/2
 * (their positions move, so the cache is refilled: T/2 positions once
 * every T/2 tokens), where a full forward slides by one and recomputes
 * all T. */
static int gen_decode(Gen *g, const unsigned char *tok, size_t n, float *logits)
{
    if (n - g->start > (size_t)g->T) {
        g->start = n - ((size_t)g->T + 1) / 2;
        g->cached = 0;
    }
    while (g->start + g->cached < n) {
        if (M->decode(g->ctx, tok[g->start + g->cached], (int)g->cached, g->out) != 0)
            return 0;
        g->cached++;
    }
    gen_logits(g->out, g->V, logits);
    return 1;
}

/* The logits of the token after tok[0 .. n): the model on the last
 * min(n, T) tokens at positions 0, 1, ... (as nanoGPT crops to its
 * block size), padded after them with id 0, read at the last real
 * position. In a causal model no position sees the ones after it, so
 * the padding changes nothing, while padding before the tokens would
 * move them to other positions and show them the pad. Outputs that are
 * probabilities (a softmax head) become logits as their logarithms. */
static int gen_full_forward(Gen *g, const unsigned char *tok, size_t n, float *logits)
{
    size_t w = n < (size_t)g->T ? n : (size_t)g->T, j;
    const float *row;
    for (j = 0; j < (size_t)g->T; j++)
        g->x[j] = j < w ? (float)tok[n - w + j] : 0.0f;
    if (M->predict(g->ctx, g->x, g->out, 1) != 0)
        return 0;
    row = g->out + (w - 1) * (size_t)g->V;
    gen_logits(row, g->V, logits);
    return 1;
}

/* The prompt as ids (an empty one: a newline, nanoGPT's start, or id 0). */
static int encode_prompt(const Opts *o, const nnc_vocab *v, unsigned char *tok, size_t *n)
{
    const unsigned char *s = (const unsigned char *)(o->prompt ? o->prompt : "");
    size_t len = strlen((const char *)s), bad;
    if (len == 0) {
        tok[0] = (unsigned char)(v->id['\n'] >= 0 ? v->id['\n'] : 0);
        *n = 1;
        return 1;
    }
    if (nnc_vocab_encode(v, s, len, tok, &bad) != 0) {
        if (s[bad] >= 32 && s[bad] < 127)
            fprintf(stderr, "%s: error: --prompt: character '%c' (byte %u, offset %zu) is not"
                    " in the model's vocabulary\n", prog, s[bad], s[bad], bad);
        else
            fprintf(stderr, "%s: error: --prompt: byte %u (offset %zu) is not in the model's"
                    " vocabulary\n", prog, s[bad], bad);
        return 0;
    }
    *n = len;
    return 1;
}

static int cmd_generate(const Opts *o, void *ctx)
{
    char wb[512];
    const char *path = weights_path(o, wb, sizeof wb);
    nnc_vocab v;
    nnc_rng rng;
    Gen g;
    float logits[256];
    unsigned char *tok;
    size_t n, i, len = o->prompt ? strlen(o->prompt) : 0, ntok = (size_t)o->tokens;
    int ok = 0, tty = isatty(1);
    double t0;
    if (!load_weights(ctx, path) || !ckpt_vocab(path, &v) || !check_vocab(&v, path))
        return 1;
    memset(&g, 0, sizeof g);
    g.ctx = ctx;
    g.T = M->seq_len;
    g.V = M->out / M->seq_len;
    g.next_logits = M->decode && !o->no_cache ? gen_decode : gen_full_forward;
    g.x = (float *)malloc((size_t)g.T * sizeof(float));
    g.out = (float *)malloc((size_t)M->out * sizeof(float));
    tok = (unsigned char *)malloc(len + ntok + 1);
    if (!g.x || !g.out || !tok) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        goto done;
    }
    if (!encode_prompt(o, &v, tok, &n))
        goto done;
    nnc_rng_seed(&rng, o->seed);
    fputs(o->prompt ? o->prompt : "", stdout);
    t0 = now();
    for (i = 0; i < ntok; i++, n++) {
        int id;
        if (!g.next_logits(&g, tok, n, logits))
            goto done;
        id = nnc_sample(logits, v.n, o->temperature, (int)o->top_k, &rng);
        tok[n] = (unsigned char)id;
        putchar(v.byte[id]);
        if (tty)   /* as they come */
            fflush(stdout);
    }
    t0 = now() - t0;
    putchar('\n');
    ok = fflush(stdout) == 0 && !ferror(stdout);
    if (!ok)
        fprintf(stderr, "%s: error: cannot write stdout\n", prog);
    else if (!o->quiet)
        fprintf(stderr, "%s: %zu tokens in %.3fs, %.0f tokens/s (%s)\n", M->name, ntok, t0,
                t0 > 0 ? (double)ntok / t0 : 0.0,
                g.next_logits == gen_decode ? "one position per token, the keys and values "
                "of the others cached" : "a full forward of the last T positions per token");
done:
    free(g.x);
    free(g.out);
    free(tok);
    return ok ? 0 : 1;
}

int nnc_fit_main(int argc, char **argv, const nnc_fit_model *m)
{
    return nnc_fit_main_dist(argc, argv, m, NULL);
}

/* Several ranks: the same model on every one, the options (checked on
 * each) fine everywhere; the others neither print nor write. */
static int dist_setup(Opts *o, int r)
{
    if (!D)
        return r;
    snprintf(prog_buf, sizeof prog_buf, "%s[rank %d]", prog, D->rank);
    prog = prog_buf;
    if (!D->all_ok(r == 0))
        return r ? r : 2;
    if (!M->grad_step || !M->apply_update || !M->grads || !M->params) {
        if (D->rank == 0)
            fprintf(stderr, "%s: error: model '%s' cannot train on several ranks (its step "
                    "has no split: recompile it with this nnc)\n", prog, M->name);
        return 1;
    }
    if (!D->same(M->hash)) {
        if (D->rank == 0)
            fprintf(stderr, "%s: error: the ranks run different models (build the program "
                    "from the same .nn file and nnc on every host)\n", prog);
        return 1;
    }
    if (D->rank != 0) {
        o->quiet = 1;
        o->log = NULL;
    }
    return 0;
}

int nnc_fit_main_dist(int argc, char **argv, const nnc_fit_model *m, const nnc_fit_dist *d)
{
    Opts o;
    void *ctx;
    int r;
    M = m;
    D = d && d->size > 1 ? d : NULL;
    if (argc > 0 && argv[0]) {
        const char *s = strrchr(argv[0], '/');
        prog = s ? s + 1 : argv[0];
    }
    if (argc < 2 && !D) {
        usage(stderr);
        return 2;
    }
    r = argc < 2 ? 2 : parse_opts(argc, argv, &o);
    if (argc < 2 && D->rank == 0)
        usage(stderr);
    if ((r = dist_setup(&o, r)) != 0)
        return r;
    if (o.threads > 0)
        nnc_set_num_threads((int)o.threads);
    if (o.keep_denormals)
        nnc_set_flush_denormals(0);
    /* other ranks: their own dropout streams (the weights come from rank 0) */
    ctx = M->create(o.seed ^ ((uint64_t)rank_of() * UINT64_C(0xA0761D6478BD642F)));
    if (!ctx) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return 1;
    }
    if (o.steps == 0)
        o.steps = 1000;
    if (o.eval_every == 0)
        o.eval_every = 100;
    if (o.eval_batches == 0)
        o.eval_batches = 10;
    if (o.tokens == 0)
        o.tokens = 200;
    if (o.temperature < 0)
        o.temperature = 1.0;
    if (rank_of() != 0 && (!strcmp(o.cmd, "generate") || !strcmp(o.cmd, "predict")))
        r = 0;   /* one rank writes the output */
    else if (!strcmp(o.cmd, "generate"))
        r = cmd_generate(&o, ctx);
    else if (!strcmp(o.cmd, "train") && o.text)
        r = cmd_train_text(&o, ctx);
    else if (!strcmp(o.cmd, "train"))
        r = cmd_train(&o, ctx);
    else if (!strcmp(o.cmd, "evaluate"))
        r = cmd_evaluate(&o, ctx);
    else
        r = cmd_predict(&o, ctx);
    M->destroy(ctx);
    return r;
}
