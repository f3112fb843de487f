/* The README's program, built against the installed library with
 * pkg-config and as a meson subproject (tests/install/check.sh). */
#include <stdio.h>
#include <weft.h>

static void hello(void *arg)
{
    puts(arg);
}

int main(void)
{
    weft_loop *loop;
    weft_handle timer = WEFT_HANDLE_INIT;
    if (weft_loop_new(NULL, &loop) < 0 ||
        weft_call_later(loop, &timer, 1000000, hello, "hello from weft, 1 ms later") < 0)
        return 1;
    int err = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    weft_loop_free(loop);
    return err < 0;
}
