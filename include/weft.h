/* weft: stackful coroutines and asyncio-style futures over one event loop.
 *
 * This is the one header a program includes. It is also the reference
 * manual: every public function has one comment saying what it does, who
 * owns what, and which errors it returns. Errors are negative error codes
 * (-errno style); weft_strerror() explains any of them.
 *
 * Threads: a loop belongs to the thread that runs it. The only entry that
 * may be called from another thread is weft_call_soon_threadsafe().
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/base.h"
#include "weft/loop.h"
#include "weft/op.h"
#include "weft/multi.h"
#include "weft/coro.h"
#include "weft/task.h"
#include "weft/sync.h"
#include "weft/compose.h"
#include "weft/executor.h"
#include "weft/net.h"
#include "weft/signal.h"
#include "weft/tls.h"

#endif
