/* The pipelines API (docs/api.md, "Pipelines"): create, list, show, stop,
 * approve or reject a node. The engine (pipeline_engine.h) does the work;
 * this file checks who asks and answers. */
#ifndef FERRY_PIPELINES_H
#define FERRY_PIPELINES_H

#include "request.h"

void ferry_pipelines_create(ferry_http_req *r);
void ferry_pipelines_list(ferry_http_req *r);
void ferry_pipelines_show(ferry_http_req *r);
void ferry_pipelines_stop(ferry_http_req *r);
void ferry_pipelines_approve(ferry_http_req *r);
void ferry_pipelines_reject(ferry_http_req *r);

#endif
