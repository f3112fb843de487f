/* Late recvs, on every POSIX backend: a long recv on a socket whose recvs
 * bring as much completes when its fd is readable and reads its data just
 * before its callback runs (io_uring: backends/uring.c; epoll, kqueue,
 * poll: backends/readiness.c). Order, close, cancel, a read that finds
 * nothing, and a short read ending the mode. Not built for Windows: IOCP
 * reads when it completes. */
#include "backend.h"
#include "common.h"

#include "harness.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

TestSuite(late, .timeout = 30);

static void run(weft_loop *loop)
{
    int rc = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    cr_assert_eq(rc, 0, "run: %s", weft_strerror(rc));
}

/* Two socket pairs whose last recvs brought 16 KiB, so the next recvs are
 * late: both fds readable in one enter, both ops in one callback batch.
 * The first callback to run (either) looks at the other socket and acts
 * on it: between its poll and its callback, a late recv's data is still
 * in the socket. */
enum { LATE_FIRST = 16384, LATE_NEXT = 10000 };

typedef struct late_pair {
    weft_loop *loop;
    int sv[2][2]; /* the loop reads [i][0], the test writes [i][1] */
    weft_op op[2];
    char buf[2][2 * LATE_FIRST];
    test_rec rec[2];
    int first;        /* which callback ran first, -1 before */
    int other_unread; /* bytes in the other socket then (FIONREAD) */
    void (*act)(struct late_pair *lp, int other);
    weft_op behind; /* act's second recv, for the order test */
    char behind_buf[64];
    test_rec behind_rec;
} late_pair;

static void late_pair_done(weft_op *op)
{
    late_pair *lp = op->data;
    int i = op == &lp->op[1];
    lp->rec[i].calls++;
    lp->rec[i].result = op->result;
    if (lp->first >= 0)
        return;
    lp->first = i;
    cr_assert_eq(ioctl(lp->sv[!i][0], FIONREAD, &lp->other_unread), 0);
    if (lp->act)
        lp->act(lp, !i);
}

static void late_pair_submit(late_pair *lp, int i)
{
    weft_op_prep_recv(&lp->op[i], lp->sv[i][0], lp->buf[i], sizeof lp->buf[i], 0, late_pair_done,
                      lp);
    cr_assert_eq(weft_op_submit(lp->loop, &lp->op[i]), 0);
}

static void late_pair_write(late_pair *lp, int i, size_t len)
{
    static char data[LATE_FIRST];
    memset(data, 'a' + i, sizeof data);
    cr_assert_eq(write(lp->sv[i][1], data, len), (ssize_t)len);
}

/* Both sockets' first recvs bring LATE_FIRST: their next long recvs are
 * late ones. */
static void late_pair_open(late_pair *lp)
{
    *lp = (late_pair){.loop = test_loop_new(), .first = -1};
    for (int i = 0; i < 2; i++) {
        test_unix_pair(lp->sv[i]);
        late_pair_write(lp, i, LATE_FIRST);
        late_pair_submit(lp, i);
    }
    run(lp->loop);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(lp->rec[i].result, LATE_FIRST);
        lp->rec[i] = (test_rec){0};
    }
    lp->first = -1;
}

/* Both recvs submitted as late ones, then LATE_NEXT bytes sent to each
 * (a readiness backend takes data that is there at submit at once). */
static void late_pair_start(late_pair *lp, void (*act)(late_pair *, int))
{
    late_pair_open(lp);
    lp->act = act;
    for (int i = 0; i < 2; i++)
        late_pair_submit(lp, i);
    for (int i = 0; i < 2; i++)
        late_pair_write(lp, i, LATE_NEXT);
}

static void late_pair_free(late_pair *lp)
{
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            if (lp->sv[i][k] >= 0)
                close(lp->sv[i][k]);
    cr_assert_eq(weft_loop_free(lp->loop), 0);
}

Test(late, a_recv_after_a_long_one_reads_its_data_just_before_its_callback)
{
    static late_pair lp;
    late_pair_start(&lp, NULL);
    run(lp.loop);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(lp.rec[i].calls, 1);
        cr_assert_eq(lp.rec[i].result, LATE_NEXT);
        cr_assert_eq(lp.buf[i][LATE_NEXT - 1], 'a' + i);
    }
    /* Read in the kernel (a recv SQE), the other's data would be gone. */
    cr_assert_eq(lp.other_unread, LATE_NEXT);
    late_pair_free(&lp);
}

/* A short read clears the mark: the recv after it goes to the kernel. */
Test(late, a_short_read_ends_late_recvs_on_its_fd)
{
    static late_pair lp;
    late_pair_start(&lp, NULL);
    run(lp.loop);
    for (int i = 0; i < 2; i++)
        lp.rec[i] = (test_rec){0};
    lp.first = -1;
    for (int i = 0; i < 2; i++)
        late_pair_submit(&lp, i); /* late: the last read brought 10000 */
    for (int i = 0; i < 2; i++)
        late_pair_write(&lp, i, 100);
    run(lp.loop);
    cr_assert_eq(lp.other_unread, 100);
    lp.first = -1;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(lp.rec[i].result, 100);
        late_pair_submit(&lp, i); /* not late: 100 bytes came last */
    }
    for (int i = 0; i < 2; i++)
        late_pair_write(&lp, i, 100);
    run(lp.loop);
    cr_assert_eq(lp.other_unread, 0);
    late_pair_free(&lp);
}

static void submit_behind(late_pair *lp, int other)
{
    weft_op_prep_recv(&lp->behind, lp->sv[other][0], lp->behind_buf, sizeof lp->behind_buf, 0,
                      test_on_done, &lp->behind_rec);
    cr_assert_eq(weft_op_submit(lp->loop, &lp->behind), 0);
}

Test(late, a_recv_submitted_while_a_late_one_waits_reads_after_it)
{
    static late_pair lp;
    late_pair_start(&lp, submit_behind);
    cr_assert_geq(weft_loop_run(lp.loop, WEFT_RUN_ONCE), 0);
    int other = !lp.first;
    cr_assert_eq(lp.rec[other].result, LATE_NEXT, "the late recv read first, all of it");
    cr_assert_eq(lp.behind_rec.calls, 0);
    cr_assert_eq(write(lp.sv[other][1], "tail", 4), 4);
    run(lp.loop);
    cr_assert_eq(lp.behind_rec.result, 4);
    cr_assert_eq(memcmp(lp.behind_buf, "tail", 4), 0);
    late_pair_free(&lp);
}

static void forget_and_close(late_pair *lp, int other)
{
    cr_assert_eq(weft_loop_forget_fd(lp->loop, lp->sv[other][0]), 0);
    close(lp->sv[other][0]);
    lp->sv[other][0] = -1;
}

/* act, done to the other op by the first callback, makes it end
 * -ECANCELED, once. */
static void expect_other_cancelled(void (*act)(late_pair *, int))
{
    static late_pair lp;
    late_pair_start(&lp, act);
    run(lp.loop);
    int other = !lp.first;
    cr_assert_eq(lp.rec[other].calls, 1);
    cr_assert_eq(lp.rec[other].result, -ECANCELED, "%s", weft_strerror((int)lp.rec[other].result));
    late_pair_free(&lp);
}

Test(late, closing_the_fd_of_a_waiting_late_recv_cancels_it)
{
    expect_other_cancelled(forget_and_close);
}

static void drain_other(late_pair *lp, int other)
{
    char sink[2 * LATE_FIRST];
    cr_assert_eq(recv(lp->sv[other][0], sink, sizeof sink, MSG_DONTWAIT), LATE_NEXT);
}

static void drain_and_cancel_other(late_pair *lp, int other)
{
    drain_other(lp, other);
    cr_assert_eq(weft_op_cancel(lp->loop, &lp->op[other]), -EALREADY);
}

/* Its data gone before its callback (read by someone else): the op goes
 * back to waiting, and its callback runs once, with the next data. */
Test(late, a_late_recv_that_finds_nothing_waits_again)
{
    static late_pair lp;
    late_pair_start(&lp, drain_other);
    for (int k = 0; k < 3; k++)
        cr_assert_geq(weft_loop_run(lp.loop, WEFT_RUN_NOWAIT), 0);
    int other = !lp.first;
    cr_assert_eq(lp.rec[other].calls, 0);
    cr_assert(weft_op_pending(&lp.op[other]));
    cr_assert_eq(write(lp.sv[other][1], "more", 4), 4);
    run(lp.loop);
    cr_assert_eq(lp.rec[other].calls, 1);
    cr_assert_eq(lp.rec[other].result, 4);
    late_pair_free(&lp);
}

/* ... unless a cancel came first: then it ends -ECANCELED at once. */
Test(late, a_cancelled_late_recv_that_finds_nothing_ends_cancelled)
{
    expect_other_cancelled(drain_and_cancel_other);
}

/* Two recvs queued on a socket of long reads before its data comes: the
 * first (late or not) takes all of it, the second only what comes after
 * (io_uring reads the first at once when another waits behind it). */
Test(late, two_recvs_queued_before_the_data_complete_in_order)
{
    static late_pair lp;
    late_pair_open(&lp);
    late_pair_submit(&lp, 0);
    weft_op_prep_recv(&lp.behind, lp.sv[0][0], lp.behind_buf, sizeof lp.behind_buf, 0, test_on_done,
                      &lp.behind_rec);
    cr_assert_eq(weft_op_submit(lp.loop, &lp.behind), 0);
    late_pair_write(&lp, 0, LATE_NEXT);
    for (int k = 0; k < 3; k++)
        cr_assert_geq(weft_loop_run(lp.loop, WEFT_RUN_NOWAIT), 0);
    cr_assert_eq(lp.rec[0].calls, 1);
    cr_assert_eq(lp.rec[0].result, LATE_NEXT);
    cr_assert_eq(lp.behind_rec.calls, 0);
    cr_assert_eq(write(lp.sv[0][1], "tail", 4), 4);
    run(lp.loop);
    cr_assert_eq(lp.behind_rec.result, 4);
    cr_assert_eq(memcmp(lp.behind_buf, "tail", 4), 0);
    late_pair_free(&lp);
}
