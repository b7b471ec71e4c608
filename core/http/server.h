/* ferryd's HTTP server (libh2o on the daemon's libuv loop): listening,
 * TLS, and handing each request to the route table (routes.c). */
#ifndef FERRY_SERVER_H
#define FERRY_SERVER_H

#include "daemon.h"

int ferry_server_start(ferryd *d, char *err, size_t err_cap);
void ferry_server_stop(ferryd *d);
/* The port actually bound (useful with --listen :0). */
int ferry_server_port(ferryd *d);
/* What was bound, as a URL ("https://0.0.0.0:8470"); d->server_url is what
 * agents are given (public_url, or this made reachable). */
const char *ferry_server_listen_url(ferryd *d);

#endif
