/* Broken on purpose: a runtime without the required stop op. */
#include "ferry/ferry.h"

static int start(void *s, const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                 ferry_run **run, ferry_error_detail *err)
{
    (void)s, (void)spec, (void)cb, (void)run, (void)err;
    return FERRY_ENOTSUP;
}

static const ferry_runtime_ops ops = {.struct_size = sizeof(ops), .start = start};

static const ferry_plugin_descriptor desc = {
    .struct_size = sizeof(desc),
    .abi_major = FERRY_ABI_MAJOR,
    .kind = FERRY_PLUGIN_RUNTIME,
    .name = "missing-stop",
    .ops = &ops,
};

FERRY_PLUGIN_DEFINE(desc)
