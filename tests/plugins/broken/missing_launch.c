/* Broken on purpose: a compute plugin without the required launch op. */
#include "ferry/ferry.h"

static int terminate(void *s, const char *id, ferry_op *op)
{
    (void)s, (void)id, (void)op;
    return FERRY_ENOTSUP;
}

static const ferry_compute_ops ops = {.struct_size = sizeof(ops), .terminate = terminate};

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR,
    .kind = FERRY_PLUGIN_COMPUTE,
    .name = "missing-launch",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
