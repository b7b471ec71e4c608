/* An environment's compute plugin, called through one place (compute.h). */
#include "compute.h"

#include "plugin.h"

static const ferry_compute_ops *compute__ops(const ferry_env *env)
{
    return env->compute ? &ferry_plugin_instance_plugin(env->compute)->ops.compute : NULL;
}

uint32_t ferry_compute_flags(const ferry_env *env)
{
    const ferry_compute_ops *ops = compute__ops(env);
    return ops ? ops->flags : 0;
}

int ferry_compute_can_describe(const ferry_env *env)
{
    const ferry_compute_ops *ops = compute__ops(env);
    return ops && ops->describe;
}

int ferry_compute_can_list(const ferry_env *env)
{
    const ferry_compute_ops *ops = compute__ops(env);
    return ops && ops->list;
}

/* The op for a call, or a code: why there is none. */
static int compute__op(ferry_env *env, int has_op, ferry_op_done_fn done, void *arg, ferry_op **op)
{
    if (!has_op)
        return FERRY_ENOTSUP;
    *op = ferry_op_new(env->compute, done, arg);
    return *op ? 0 : FERRY_ECANCELED;
}

static int compute__called(ferry_op *op, int rc)
{
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}

int ferry_compute_launch(ferry_env *env, const ferry_launch_request *req, ferry_op_done_fn done,
                         void *arg)
{
    const ferry_compute_ops *ops = compute__ops(env);
    ferry_op *op = NULL;
    int rc = compute__op(env, ops && ops->launch, done, arg, &op);
    if (rc < 0)
        return rc;
    return compute__called(op, ops->launch(ferry_plugin_instance_state(env->compute), req, op));
}

int ferry_compute_terminate(ferry_env *env, const char *instance_id, ferry_op_done_fn done,
                            void *arg)
{
    const ferry_compute_ops *ops = compute__ops(env);
    ferry_op *op = NULL;
    int rc = compute__op(env, ops && ops->terminate, done, arg, &op);
    if (rc < 0)
        return rc;
    return compute__called(
        op, ops->terminate(ferry_plugin_instance_state(env->compute), instance_id, op));
}

int ferry_compute_describe(ferry_env *env, const char *instance_id, ferry_op_done_fn done,
                           void *arg)
{
    const ferry_compute_ops *ops = compute__ops(env);
    ferry_op *op = NULL;
    int rc = compute__op(env, ops && ops->describe, done, arg, &op);
    if (rc < 0)
        return rc;
    return compute__called(
        op, ops->describe(ferry_plugin_instance_state(env->compute), instance_id, op));
}

int ferry_compute_list(ferry_env *env, const char *daemon_id, ferry_op_done_fn done, void *arg)
{
    const ferry_compute_ops *ops = compute__ops(env);
    ferry_op *op = NULL;
    int rc = compute__op(env, ops && ops->list, done, arg, &op);
    if (rc < 0)
        return rc;
    return compute__called(op, ops->list(ferry_plugin_instance_state(env->compute), daemon_id, op));
}
