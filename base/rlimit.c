#include "base/rlimit.h"

#include <sys/resource.h>

#define NOFILE_CAP 1048576

long rlimit_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  rlim_t want = rl.rlim_max;
  if (want == RLIM_INFINITY || want > NOFILE_CAP)
    want = NOFILE_CAP;
  if (rl.rlim_cur < want) {
    struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      rl.rlim_cur = want;
  }
  return (long)rl.rlim_cur;
}
