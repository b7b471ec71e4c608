/* The artifact store, through the configured store plugin. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

static const ferry_store_ops *store__ops(ferryd *d)
{
    return &ferry_plugin_instance_plugin(d->store)->ops.store;
}

int ferry_store_init(ferryd *d, char *err, size_t err_cap)
{
    const ferry_plugin *p =
        ferry_plugin_registry_get(&d->plugins, FERRY_PLUGIN_STORE, d->cfg.store_plugin);
    if (p == NULL) {
        snprintf(err, err_cap, "store: no store plugin named '%s' was loaded", d->cfg.store_plugin);
        return FERRY_ECONFIG;
    }
    int rc = ferry_config_check_store(&d->cfg, p, err, err_cap);
    if (rc < 0)
        return rc;
    ferry_error_detail detail = {0};
    rc = ferry_plugin_instance_new(p, d->loop, "store", d->cfg.store_settings, NULL, &d->store,
                                   &detail);
    if (rc < 0)
        snprintf(err, err_cap, "store '%s': %s", d->cfg.store_plugin,
                 detail.message[0] ? detail.message : ferry_strerror(rc));
    return rc;
}

void ferry_store_close(ferryd *d)
{
    ferry_plugin_instance_free(d->store);
    d->store = NULL;
}

typedef int (*store__file_op)(void *state, const char *key, const char *path, ferry_op *op);

static int store__run(ferryd *d, store__file_op fn, const char *key, const char *path,
                      ferry_op_done_fn done, void *arg)
{
    ferry_op *op = ferry_op_new(d->store, done, arg);
    int rc = fn(ferry_plugin_instance_state(d->store), key, path, op);
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}

int ferry_store_put(ferryd *d, const char *key, const char *path, ferry_op_done_fn done, void *arg)
{
    return store__run(d, store__ops(d)->put_file, key, path, done, arg);
}

int ferry_store_get(ferryd *d, const char *key, const char *path, ferry_op_done_fn done, void *arg)
{
    return store__run(d, store__ops(d)->get_file, key, path, done, arg);
}

int ferry_store_local_path(ferryd *d, const char *key, char *path, size_t cap)
{
    const ferry_store_ops *ops = store__ops(d);
    if (ops->local_path == NULL)
        return FERRY_ENOTSUP;
    int rc = ops->local_path(ferry_plugin_instance_state(d->store), key, path, cap);
    if (rc < 0)
        return rc;
    struct stat st;
    return stat(path, &st) == 0 ? 0 : FERRY_ENOENT;
}

int ferry_store_can_presign(ferryd *d)
{
    return store__ops(d)->presign != NULL;
}

char *ferry_store_presign(ferryd *d, const char *method, const char *key, int expires_s,
                          ferry_error_detail *err)
{
    const ferry_store_ops *ops = store__ops(d);
    if (ops->presign == NULL) {
        ferry_error_set(err, FERRY_ENOTSUP, 0, NULL, "the store cannot presign URLs");
        return NULL;
    }
    char url[4096];
    if (ops->presign(ferry_plugin_instance_state(d->store), method, key, expires_s, url,
                     sizeof(url), err) != 0)
        return NULL;
    return ferry_strdup(url);
}

/* All five ops or none: a store that can only do some of it gets one PUT. */
static int store__has_uploads(const ferry_store_ops *ops)
{
    return ops->upload_begin && ops->presign_part && ops->upload_complete && ops->upload_abort &&
           ops->upload_part_size;
}

int ferry_store_part_size(ferryd *d, int64_t size, int64_t *part_size)
{
    const ferry_store_ops *ops = store__ops(d);
    *part_size = 0;
    if (!store__has_uploads(ops))
        return 0;
    int rc = ops->upload_part_size(ferry_plugin_instance_state(d->store), size, part_size);
    if (rc < 0 || *part_size < 0)
        *part_size = 0;
    return rc;
}

/* Starts an op; on a synchronous refusal `done` never runs. */
static ferry_op *store__op(ferryd *d, ferry_op_done_fn done, void *arg)
{
    return d->store ? ferry_op_new(d->store, done, arg) : NULL;
}

int ferry_store_upload_begin(ferryd *d, const char *key, ferry_op_done_fn done, void *arg)
{
    const ferry_store_ops *ops = store__ops(d);
    ferry_op *op = ops->upload_begin ? store__op(d, done, arg) : NULL;
    if (op == NULL)
        return FERRY_ENOTSUP;
    int rc = ops->upload_begin(ferry_plugin_instance_state(d->store), key, op);
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}

char *ferry_store_part_url(ferryd *d, const char *key, const char *upload_id, int n, int expires_s,
                           ferry_error_detail *err)
{
    const ferry_store_ops *ops = store__ops(d);
    char url[4096];
    if (ops->presign_part == NULL) {
        ferry_error_set(err, FERRY_ENOTSUP, 0, NULL, "the store takes no parts");
        return NULL;
    }
    if (ops->presign_part(ferry_plugin_instance_state(d->store), key, upload_id, n, expires_s, url,
                          sizeof(url), err) != 0)
        return NULL;
    return ferry_strdup(url);
}

int ferry_store_upload_complete(ferryd *d, const char *key, const char *upload_id,
                                const char *parts, ferry_op_done_fn done, void *arg)
{
    const ferry_store_ops *ops = store__ops(d);
    ferry_op *op = ops->upload_complete ? store__op(d, done, arg) : NULL;
    if (op == NULL)
        return FERRY_ENOTSUP;
    int rc = ops->upload_complete(ferry_plugin_instance_state(d->store), key, upload_id, parts, op);
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}

int ferry_store_upload_abort(ferryd *d, const char *key, const char *upload_id,
                             ferry_op_done_fn done, void *arg)
{
    const ferry_store_ops *ops = store__ops(d);
    ferry_op *op = ops->upload_abort ? store__op(d, done, arg) : NULL;
    if (op == NULL)
        return FERRY_ENOTSUP;
    int rc = ops->upload_abort(ferry_plugin_instance_state(d->store), key, upload_id, op);
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}
