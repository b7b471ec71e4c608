/* Broken on purpose: a kind this host does not know. */
#include "ferry/ferry.h"

static const size_t ops = sizeof(ops);

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR,
    .kind = (ferry_plugin_kind)7,
    .name = "unknown-kind",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
