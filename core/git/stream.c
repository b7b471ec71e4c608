/* The sockets libgit2 talks to git servers over (git://, http:// and
 * https://, whose TLS runs on top of one, and ssh://, whose libssh2 uses
 * its descriptor): ours, registered as libgit2's standard stream, so that
 * a server that stops answering cannot hold a fetch, or ferryd's stop,
 * forever. libgit2 1.5 has no timeout of its own (1.7 added one). Every
 * wait is bounded by git_timeout seconds of silence, and
 * git__stream_cancel_all() (ferryd stopping) shuts every socket down, which
 * wakes whatever waits on it: our poll or libssh2's. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <git2/sys/stream.h>

#include "git_int.h"
#include "util.h"

#define STREAM__SLICE_MS 250 /* how often a wait looks at the cancel flag */

/* The first four members are libgit2's git_socket_stream, in its order:
 * its ssh transport finds the descriptor there (GIT_CONTAINER_OF). */
typedef struct stream__sock {
    git_stream parent;
    char *host;
    char *port;
    int fd;
    struct stream__sock *prev, *next; /* the open ones (stream__open) */
} stream__sock;

static pthread_mutex_t stream__lock = PTHREAD_MUTEX_INITIALIZER;
static stream__sock *stream__open;
static atomic_int stream__cancel;
static atomic_int stream__timeout_s;

static void stream__link(stream__sock *s)
{
    pthread_mutex_lock(&stream__lock);
    s->next = stream__open;
    if (stream__open)
        stream__open->prev = s;
    stream__open = s;
    pthread_mutex_unlock(&stream__lock);
}

static void stream__unlink(stream__sock *s)
{
    pthread_mutex_lock(&stream__lock);
    if (s->prev)
        s->prev->next = s->next;
    else if (stream__open == s)
        stream__open = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    pthread_mutex_unlock(&stream__lock);
}

/* Until `fd` is ready for `events`: 0, or -1 (libgit2's error set) when
 * ferryd stops or the server says nothing for git_timeout seconds. */
static int stream__wait(stream__sock *s, short events)
{
    int timeout_s = atomic_load(&stream__timeout_s);
    uint64_t deadline = ferry_mono_ms() + (uint64_t)timeout_s * 1000;
    for (;;) {
        if (atomic_load(&stream__cancel)) {
            git_error_set(GIT_ERROR_NET, "%s:%s: ferryd is stopping", s->host, s->port);
            return -1;
        }
        struct pollfd p = {.fd = s->fd, .events = events};
        int n = poll(&p, 1, STREAM__SLICE_MS);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            git_error_set(GIT_ERROR_NET, "%s:%s: %s", s->host, s->port, strerror(errno));
            return -1;
        }
        if (ferry_mono_ms() >= deadline) {
            git_error_set(GIT_ERROR_NET, "no answer from %s:%s in %d s (git_timeout)", s->host,
                          s->port, timeout_s);
            return -1;
        }
    }
}

static int stream__connect_one(stream__sock *s, const struct addrinfo *ai)
{
    s->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s->fd < 0)
        return -1;
    stream__link(s); /* from now on a stop shuts it down */
    if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    int err = errno;
    socklen_t len = sizeof(err);
    if (err == EINPROGRESS && stream__wait(s, POLLOUT) == 0 &&
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
        return 0;
    stream__unlink(s);
    close(s->fd);
    s->fd = -1;
    errno = err;
    return -1;
}

static int stream__connect(git_stream *stream)
{
    stream__sock *s = (stream__sock *)stream;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(s->host, s->port, &hints, &res);
    if (rc != 0) {
        git_error_set(GIT_ERROR_NET, "cannot resolve %s: %s", s->host, gai_strerror(rc));
        return -1;
    }
    int saved = 0;
    git_error_clear(); /* a wait that gives up sets one: then no other address is tried */
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (stream__connect_one(s, ai) == 0) {
            freeaddrinfo(res);
            return 0;
        }
        saved = errno;
        if (atomic_load(&stream__cancel) || git_error_last() != NULL)
            break; /* the wait said why: stopping, or no answer */
    }
    freeaddrinfo(res);
    if (git_error_last() == NULL)
        git_error_set(GIT_ERROR_NET, "cannot connect to %s:%s: %s", s->host, s->port,
                      strerror(saved));
    return -1;
}

static ssize_t stream__read(git_stream *stream, void *data, size_t len)
{
    stream__sock *s = (stream__sock *)stream;
    for (;;) {
        ssize_t n = recv(s->fd, data, len, 0);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            git_error_set(GIT_ERROR_NET, "reading from %s: %s", s->host, strerror(errno));
            return -1;
        }
        if (stream__wait(s, POLLIN) < 0)
            return -1;
    }
}

static ssize_t stream__write(git_stream *stream, const char *data, size_t len, int flags)
{
    (void)flags;
    stream__sock *s = (stream__sock *)stream;
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(s->fd, data + done, len - done, MSG_NOSIGNAL);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            git_error_set(GIT_ERROR_NET, "writing to %s: %s", s->host, strerror(errno));
            return -1;
        }
        if (stream__wait(s, POLLOUT) < 0)
            return -1;
    }
    return (ssize_t)done;
}

static int stream__close(git_stream *stream)
{
    stream__sock *s = (stream__sock *)stream;
    if (s->fd >= 0) {
        stream__unlink(s);
        close(s->fd);
        s->fd = -1;
    }
    return 0;
}

static void stream__free(git_stream *stream)
{
    stream__sock *s = (stream__sock *)stream;
    stream__close(stream);
    free(s->host);
    free(s->port);
    free(s);
}

static int stream__new(git_stream **out, const char *host, const char *port)
{
    stream__sock *s = ferry_xcalloc(1, sizeof(*s));
    s->parent.version = GIT_STREAM_VERSION;
    s->parent.connect = stream__connect;
    s->parent.read = stream__read;
    s->parent.write = stream__write;
    s->parent.close = stream__close;
    s->parent.free = stream__free;
    s->host = ferry_strdup(host);
    s->port = ferry_strdup(port);
    s->fd = -1;
    *out = &s->parent;
    return 0;
}

int git__stream_init(int timeout_s)
{
    atomic_store(&stream__cancel, 0);
    atomic_store(&stream__timeout_s, timeout_s > 0 ? timeout_s : 1);
    git_stream_registration reg = {.version = GIT_STREAM_VERSION, .init = stream__new};
    return git_stream_register(GIT_STREAM_STANDARD, &reg) < 0 ? FERRY_EIO : 0;
}

void git__stream_cancel_all(void)
{
    atomic_store(&stream__cancel, 1);
    pthread_mutex_lock(&stream__lock);
    for (stream__sock *s = stream__open; s; s = s->next)
        shutdown(s->fd, SHUT_RDWR); /* wakes libssh2's waits too */
    pthread_mutex_unlock(&stream__lock);
}
