/* Echo server on weft in task style: a task per connection that reads and
 * writes as sequential code (recv, send_all, repeat), and an accept task.
 * The same program runs on every backend (--backend). */
#include "weft_peer.h"

#include <errno.h>
#include <stdlib.h>
#ifndef _WIN32
#include <sys/mman.h>
#endif

static weft_loop *g_loop;

/* A connection's buffer, mapped on its own where mmap exists: freed, its
 * pages go back to the system. From malloc's heap (64 KiB is under glibc's
 * mmap threshold), 10,000 connections churning left their touched pages
 * resident in freed chunks and touched others on reuse: the soak's second
 * pass grew RSS by a third (bench/lib/soak.sh failed it). */
static char *buf_take(void)
{
#ifdef _WIN32
    return malloc(PEER_BUF);
#else
    void *p = mmap(NULL, PEER_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#endif
}

static void buf_give(char *buf)
{
#ifdef _WIN32
    free(buf);
#else
    munmap(buf, PEER_BUF);
#endif
}

/* The echo loop proper. Its buffer is as large as every other peer's
 * (PEER_BUF): a task's 64 KiB stack cannot hold it, so it is taken once
 * per connection, like libuv's peer's. */
static void echo_loop(int fd, char *buf)
{
    for (;;) {
        int64_t n = weft_recv(g_loop, fd, buf, PEER_BUF);
        if (n <= 0 || weft_send_all(g_loop, fd, buf, (size_t)n) < 0)
            return;
    }
}

/* Take the buffer only once the peer speaks: a connection that stays
 * silent costs its task and one stack page, not 64 KiB. */
static int conn_task(void *arg, intptr_t *result)
{
    (void)result;
    int fd = (int)(intptr_t)arg;
    if (weft_wait_readable(g_loop, fd) == 0) {
        char *buf = buf_take();
        if (buf) {
            echo_loop(fd, buf);
            buf_give(buf);
        }
    }
    weft_close(g_loop, fd);
    return 0;
}

static int accept_task(void *arg, intptr_t *result)
{
    (void)result;
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = weft_accept(g_loop, lfd, NULL);
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0)
            continue;
        if (weft_task_spawn(g_loop, conn_task, (void *)(intptr_t)fd, NULL) != 0)
            weft_close(g_loop, fd);
    }
}

int main(int argc, char **argv)
{
    int lfd = -1;
    if (weft_peer_start(argc, argv, "weft_echo_task", &g_loop, &lfd) != 0)
        return 1;
    int rc = weft_task_spawn(g_loop, accept_task, (void *)(intptr_t)lfd, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_echo_task: the accept task: %s\n", weft_strerror(rc));
        return 1;
    }
    return weft_peer_run(g_loop);
}
