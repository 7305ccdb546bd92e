// LD_PRELOAD shim for the benchmarks (tools/bench/lib.sh, BENCH_SLOW_FSYNC_US): every fsync and
// fdatasync of the process takes SLOWSYNC_US microseconds more (default 1000), to emulate storage
// whose flushes are slow (network-attached volumes) on a fast local disk. Not part of Lever.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long delay_us(void) { const char *s = getenv("SLOWSYNC_US"); return s ? atol(s) : 1000; }
static void pause_us(long us) { struct timespec t = { us / 1000000, (us % 1000000) * 1000 }; nanosleep(&t, 0); }
int fsync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, "fsync"); int r = real(fd); pause_us(delay_us()); return r; }
int fdatasync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, "fdatasync"); int r = real(fd); pause_us(delay_us()); return r; }
