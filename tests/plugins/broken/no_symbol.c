/* Broken on purpose: a shared object that exports no descriptor symbol. */
#include "ferry/ferry.h"

FERRY_PLUGIN_EXPORT int not_a_ferry_plugin(void);
FERRY_PLUGIN_EXPORT int not_a_ferry_plugin(void)
{
    return 42;
}
