/* ferry plugin SDK: everything. */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H
#include "ferry/error.h"
#include "ferry/plugin.h"
#include "ferry/compute.h"
#include "ferry/runtime.h"
#include "ferry/store.h"
#endif
