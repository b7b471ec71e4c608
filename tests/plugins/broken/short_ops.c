/* Broken on purpose: an ops table that ends before the required get_file. */
#include "ferry/ferry.h"

static int put_file(void *s, const char *k, const char *p, ferry_op *op)
{
    (void)s, (void)k, (void)p, (void)op;
    return FERRY_ENOTSUP;
}

/* Both required ops are set, but struct_size says only put_file exists. */
static const ferry_store_ops ops = {.struct_size = sizeof(size_t) + sizeof(void (*)(void)),
                                    .put_file = put_file,
                                    .get_file = put_file};

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "short-ops",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
