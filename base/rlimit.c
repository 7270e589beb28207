#include "base/rlimit.h"

#include <dirent.h>
#include <limits.h>
#include <stddef.h>
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

long rlimit_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX
             ? LONG_MAX
             : (long)rl.rlim_cur;
}

long rlimit_fds_open(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  long n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the walk's own descriptor */
}
