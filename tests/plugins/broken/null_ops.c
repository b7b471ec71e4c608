/* Broken on purpose: a descriptor without an ops table. */
#include "ferry/ferry.h"

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "null-ops",
    .ops = NULL,
};

FERRY_PLUGIN_DEFINE(desc)
