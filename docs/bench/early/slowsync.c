#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
#include <stdlib.h>
static int delay_us(void){ const char*s=getenv("SLOWSYNC_US"); return s?atoi(s):2000; }
static void nap(void){ struct timespec t={0, delay_us()*1000L}; nanosleep(&t,0); }
int fdatasync(int fd){ static int(*real)(int); if(!real) real=dlsym(RTLD_NEXT,"fdatasync"); nap(); return real(fd); }
int fsync(int fd){ static int(*real)(int); if(!real) real=dlsym(RTLD_NEXT,"fsync"); nap(); return real(fd); }
