/* The sync suites' actors: tasks that wait on a primitive, note their name
 * in a shared trace when they get through, and keep their outcome. Each
 * suite is its own program (and Criterion runs every test in a process of
 * its own), so the trace starts empty in every test. */
#ifndef WEFT_TEST_SYNC_ACTORS_H
#define WEFT_TEST_SYNC_ACTORS_H

#include "common.h"

#include <string.h>

static char trace[256];

static inline void note(const char *s)
{
    strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

/* One task's part: what it waits on, its name in the trace, its outcome. */
typedef struct actor {
    weft_loop *loop;
    void *obj;
    const char *name;
    intptr_t item;
    int rc;
    int hold_yields; /* yields while holding a lock / unit */
    weft_future *task;
} actor;

static inline void spawn(actor *a, weft_task_fn fn)
{
    cr_assert_eq(weft_task_spawn(a->loop, fn, a, &a->task), 0);
}

static inline void drop(actor *a, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].task)
            weft_future_unref(a[i].task);
}

#endif
