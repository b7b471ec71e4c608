/* Broken on purpose: built for a future ABI major the host does not speak. */
#include "ferry/ferry.h"

static int put_file(void *s, const char *k, const char *p, ferry_op *op)
{
    (void)s, (void)k, (void)p, (void)op;
    return FERRY_ENOTSUP;
}

static const ferry_store_ops ops = {
    .struct_size = sizeof(ops), .put_file = put_file, .get_file = put_file};

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR + 1,
    .kind = FERRY_PLUGIN_STORE,
    .name = "wrong-major",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
