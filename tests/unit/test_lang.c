/*
 * test_lang.c - the language front end: parsing both forms, defaults,
 * lowering to the graph, and the training graph's structure.
 */
#include <string.h>

#include "unit.h"

static bool lower(const char *text, Graph *g)
{
    Model *m = parse(text);
    cr_assert(m, "parse failed");
    return lower_model(m, g);
}

Test(lang, sequential_seed_model)
{
    Graph g;
    cr_assert(lower(seed, &g));
    cr_assert_eq(g.batch, 32);
    cr_assert_eq(g.nparams, 6);
    const char *names[] = {"dense_0.weight", "dense_0.bias", "dense_1.weight",
                           "dense_1.bias", "dense_2.weight", "dense_2.bias"};
    int rows[] = {128, 128, 64, 64, 1, 1};
    for (int i = 0; i < 6; i++) {
        const Node *p = NODE(&g, g.params[i]);
        cr_assert_str_eq(p->name, names[i]);
        cr_assert_eq(p->shape.dim[0], rows[i]);
    }
    cr_assert_eq(NODE(&g, g.params[0])->shape.dim[1], 10); /* [out, in] */
    cr_assert_eq(NODE(&g, g.output)->op, OP_SIGMOID);
    cr_assert_eq(NODE(&g, g.loss)->op, OP_BCE);
    cr_assert_eq(g.opt.kind, OPT_ADAM);
    cr_assert_float_eq(g.opt.lr, 0.001, 1e-12);
    cr_assert_float_eq(g.opt.beta1, 0.9, 1e-12);   /* Keras' defaults */
    cr_assert_float_eq(g.opt.beta2, 0.999, 1e-12);
    cr_assert_float_eq(g.opt.eps, 1e-7, 1e-18);
    cr_assert(verify(&g));
    graph_free(&g);
}

Test(lang, functional_residual_model)
{
    Graph g;
    cr_assert(lower("model res {\n"
                    "  input x[784]\n"
                    "  h = dense(x, 256, activation=relu)\n"
                    "  r = dense(h, 256)\n"
                    "  o = relu(add(h, r))\n"
                    "  logits = dense(o, 10)\n"
                    "  loss softmax_cross_entropy(logits)\n"
                    "  optimizer sgd(lr=0.1, momentum=0.9)\n"
                    "  batch 64\n"
                    "}\n", &g));
    cr_assert_eq(g.nparams, 6);
    cr_assert_str_eq(NODE(&g, g.params[0])->name, "h.weight");
    cr_assert_str_eq(NODE(&g, g.params[3])->name, "r.bias");
    cr_assert_str_eq(NODE(&g, g.params[4])->name, "logits.weight");
    cr_assert_eq(NODE(&g, g.loss)->op, OP_SOFTMAX_CE);
    cr_assert_eq(NODE(&g, g.target)->shape.dim[1], 10);
    cr_assert_eq(g.opt.kind, OPT_SGD);
    cr_assert_float_eq(g.opt.momentum, 0.9, 1e-12);
    graph_free(&g);
}

Test(lang, defaults_and_aliases)
{
    Graph g;
    cr_assert(lower("model m { input x[3]; dense(2); loss mse; optimizer sgd }", &g));
    cr_assert_eq(g.batch, 32);          /* Keras' default batch size */
    cr_assert_float_eq(g.opt.lr, 0.01, 1e-12);
    cr_assert_float_eq(g.opt.momentum, 0.0, 1e-12);
    cr_assert_eq(NODE(&g, g.output)->op, OP_ADD); /* linear: x W^T + b */
    graph_free(&g);
    cr_assert(lower("model m { input x[3] dense(2, use_bias=false) loss mse "
                    "optimizer adam(learning_rate=1e-2, beta_1=0.5) }", &g));
    cr_assert_eq(g.nparams, 1);
    cr_assert_float_eq(g.opt.lr, 0.01, 1e-12);
    cr_assert_float_eq(g.opt.beta1, 0.5, 1e-12);
    graph_free(&g);
}

Test(lang, optimizer_defaults_and_schedules)
{
    Graph g;
    cr_assert(lower("model m { input x[3] dense(2) loss mse optimizer adamw }", &g));
    cr_assert_eq(g.opt.kind, OPT_ADAMW);
    cr_assert_float_eq(g.opt.weight_decay, 0.004, 1e-12); /* Keras' AdamW */
    cr_assert_float_eq(g.opt.eps, 1e-7, 1e-15);
    cr_assert_eq(g.opt.schedule, LRS_CONSTANT);
    cr_assert_eq(g.opt.clipnorm, 0.0);
    graph_free(&g);
    cr_assert(lower("model m { input x[3] dense(2) loss mse optimizer rmsprop(learning_rate=0.1, "
                    "epsilon=1e-3, centered=true, global_clipnorm=2) }", &g));
    cr_assert(g.opt.kind == OPT_RMSPROP && g.opt.centered && g.opt.rho == 0.9);
    cr_assert(g.opt.lr == 0.1 && g.opt.eps == 1e-3 && g.opt.clipnorm == 2);
    graph_free(&g);
    cr_assert(lower("model m { input x[3] dense(2) loss mse optimizer adagrad(lr_schedule="
                    "exponential, decay_rate=0.5, decay_steps=10, staircase=true, warmup=3) }",
                    &g));
    cr_assert(g.opt.kind == OPT_ADAGRAD && g.opt.init == 0.1);
    cr_assert(g.opt.schedule == LRS_EXPONENTIAL && g.opt.staircase && g.opt.warmup == 3);
    cr_assert(g.opt.decay_rate == 0.5 && g.opt.decay_steps == 10);
    graph_free(&g);
    cr_assert(lower("model m { input x[3] dense(2) loss mse optimizer sgd(momentum=0.9, "
                    "nesterov=true, weight_decay=1e-4) }", &g));
    cr_assert(g.opt.nesterov && g.opt.weight_decay == 1e-4);
    graph_free(&g);
}

Test(lang, activations_as_layers_and_arguments)
{
    const char *acts[] = {"relu", "sigmoid", "tanh", "softmax"};
    Op ops[] = {OP_RELU, OP_SIGMOID, OP_TANH, OP_SOFTMAX};
    for (int i = 0; i < 4; i++) {
        char buf[256];
        Graph g;
        snprintf(buf, sizeof buf, "model m { input x[3] dense(4) %s loss mse optimizer sgd }",
                 acts[i]);
        cr_assert(lower(buf, &g), "%s", buf);
        cr_assert_eq(NODE(&g, g.output)->op, ops[i]);
        graph_free(&g);
        snprintf(buf, sizeof buf, "model m { input x[3] h = dense(x, 4) o = %s(h) "
                 "loss mse(o) optimizer sgd }", acts[i]);
        cr_assert(lower(buf, &g), "%s", buf);
        cr_assert_eq(NODE(&g, g.output)->op, ops[i]);
        graph_free(&g);
        snprintf(buf, sizeof buf, "model m { input x[3] dense(4, activation=%s) "
                 "loss mse optimizer sgd }", acts[i]);
        cr_assert(lower(buf, &g), "%s", buf);
        cr_assert_eq(NODE(&g, g.output)->op, ops[i]);
        graph_free(&g);
    }
    Graph g;
    cr_assert(lower("model m { input x[3] dense(4) linear() loss mse optimizer sgd }", &g));
    cr_assert_eq(NODE(&g, g.output)->op, OP_ADD);
    graph_free(&g);
}

Test(lang, several_models_and_numbers)
{
    Model *m = parse("model a { input x[1] dense(1) loss mse optimizer sgd(lr=1e-3) }\n"
                     "# between models\n"
                     "model b { input x[2] dense(1) loss mse optimizer sgd(lr=.5) batch 4 }\n");
    cr_assert(m && m->next && !m->next->next);
    cr_assert_str_eq(m->name, "a");
    cr_assert_str_eq(m->next->name, "b");
    Graph g;
    cr_assert(lower_model(m, &g));
    cr_assert_float_eq(g.opt.lr, 1e-3, 1e-15);
    graph_free(&g);
    cr_assert(lower_model(m->next, &g));
    cr_assert_float_eq(g.opt.lr, 0.5, 1e-15);
    cr_assert_eq(g.batch, 4);
    graph_free(&g);
}

Test(lang, errors_are_located)
{
    Graph g;
    cr_assert(!lower("model m {\n input x[3]\n dens(4)\n loss mse\n optimizer sgd\n}", &g));
    cr_assert_eq(diag_errors, 1);
    graph_free(&g);
    /* syntax errors: the model is still returned, marked, so that
     * lowering can report its other errors */
    Model *m = parse("model m { input x[3] dense(4 }");
    cr_assert_eq(diag_errors, 1);
    cr_assert(m && m->broken);
    m = parse("model m { input x[3] @ }");
    cr_assert_eq(diag_errors, 1);
    cr_assert(m && m->broken);
    m = parse("model m {\n input x[3]\n dense(4 5)\n h = dense(2, )) )\n}\n"
              "model n {\n input x[3]\n}");
    cr_assert_eq(diag_errors, 2); /* one per bad line */
    cr_assert(m && m->broken && m->next && !m->next->broken);
    cr_assert_null(parse("modle m { }"));
    cr_assert_eq(diag_errors, 1);
}

Test(lang, suggestions)
{
    const char *c[] = {"dense", "relu", "sigmoid", NULL};
    cr_assert_str_eq(diag_suggest("dens", c), "dense");
    cr_assert_str_eq(diag_suggest("sigmiod", c), "sigmoid");
    cr_assert_null(diag_suggest("conv2d", c));
    cr_assert_null(diag_suggest("dense", c)); /* exact: nothing to suggest */
}

Test(lang, training_graph)
{
    Graph g;
    cr_assert(lower(seed, &g));
    ad_build(&g);
    optim_build(&g);
    cr_assert(verify(&g));
    int updates = 0;
    for (int i = 0; i < g.nparams; i++) {
        cr_assert_neq(g.grads[i], NODE_NONE);
        cr_assert(shape_eq(&NODE(&g, g.grads[i])->shape, &NODE(&g, g.params[i])->shape));
    }
    for (int id = 1; id < g.nnodes; id++)
        updates += optab[g.nodes[id].op].kind == K_UPDATE;
    cr_assert_eq(updates, 6);
    int before = g.nnodes;
    pass_dce(&g);
    cr_assert(verify(&g));
    /* the grad rule of the first matmul also builds d(x), which nothing
     * uses: dce removes exactly that node */
    cr_assert_eq(g.nnodes, before - 1);
    for (int id = 1; id < g.nnodes; id++)
        for (int k = 0; k < g.nodes[id].nin; k++)
            cr_assert(g.nodes[id].op != OP_MATMUL || g.nodes[id].iattr[1] != 0 ||
                      g.nodes[id].iattr[0] != 0 || g.nodes[id].in[1] != g.params[0]);
    char *j = ir_json(&g);
    cr_assert(strstr(j, "\"op\":\t\"matmul\""));
    free(j);
    graph_free(&g);
}
