/* wsmux: the command-line client. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd_ssh.h"
#include "cli/exitcode.h"

static const char usage[] =
    "usage: wsmux <command> [options]\n"
    "\n"
    "commands:\n"
    "  ssh service   SSH into a service through the edge (--proxyOnly runs\n"
    "                a local proxy for ssh, scp, sftp, rsync and editors)\n"
    "\n"
    "  wsmux <command> --help   options of a command\n"
    "  wsmux --version          print the version\n";

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("wsmux %s\n", WSMUX_VERSION);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "ssh") == 0) {
    if (argc >= 3 && strcmp(argv[2], "service") == 0)
      return cmd_ssh_service(argc - 3, argv + 3);
    fprintf(stderr, "wsmux: error: usage: wsmux ssh service --help\n");
    return EXIT_USAGE;
  }
  fprintf(stderr, "wsmux: error: unknown command '%s'\n%s", argv[1], usage);
  return EXIT_USAGE;
}
