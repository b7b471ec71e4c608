/* Broken on purpose: claims a descriptor smaller than any ABI 1 one. */
#include "ferry/ferry.h"

static int put_file(void *s, const char *k, const char *p, ferry_op *op)
{
    (void)s, (void)k, (void)p, (void)op;
    return FERRY_ENOTSUP;
}

static const ferry_store_ops ops = {
    .struct_size = sizeof(ops), .put_file = put_file, .get_file = put_file};

static const ferry_plugin_descriptor desc = {
    .struct_size = 16,
    .abi_major = FERRY_ABI_MAJOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "short-descriptor",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
