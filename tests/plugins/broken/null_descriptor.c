/* Broken on purpose: the entry point returns no descriptor. */
#include "ferry/ferry.h"

FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_v1(void);
FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_v1(void)
{
    return NULL;
}
