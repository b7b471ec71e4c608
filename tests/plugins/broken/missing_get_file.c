/* Broken on purpose: a store without the required get_file op. */
#include "ferry/ferry.h"

static int put_file(void *s, const char *k, const char *p, ferry_op *op)
{
    (void)s, (void)k, (void)p, (void)op;
    return FERRY_ENOTSUP;
}

static const ferry_store_ops ops = {.struct_size = sizeof(ops), .put_file = put_file};

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "missing-get-file",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
