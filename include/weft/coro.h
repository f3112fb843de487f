/* Coroutines and generators: owned by the coroutine layer (see core/coro*.c). */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H
#include "base.h"
#endif
