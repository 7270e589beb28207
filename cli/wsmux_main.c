/* wsmux: the command-line client. Dispatches to the commands. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd_proxy.h"
#include "cli/cmd_ssh.h"
#include "cli/commands.h"
#include "cli/exitcode.h"
#include "cli/proxy_up.h"

static const char usage[] =
    "usage: wsmux <command> [options]\n"
    "\n"
    "commands:\n"
    "  login                 check an API token and store it as a context\n"
    "  project list          list the projects\n"
    "  service list          list the services of a project\n"
    "  service ssh enable    allow SSH to a service\n"
    "  service ssh disable   refuse SSH to a service\n"
    "  ssh service           SSH into a service through the edge\n"
    "                        (--proxyOnly runs a local proxy for ssh, scp,\n"
    "                        sftp, rsync and editors)\n"
    "  ssh config            ssh_config entries for the services\n"
    "  ssh doctor            check the SSH setup of a service\n"
    "  proxy list            the proxies running on this machine\n"
    "  proxy stop            stop a proxy (or --all)\n"
    "  proxy up              serve every service of a file in one process\n"
    "  proxy reload          make a `proxy up` apply its changed file\n"
    "  ssh-identity create   create an SSH identity (public keys allowed\n"
    "                        into services)\n"
    "  ssh-identity list     list the SSH identities\n"
    "  ssh-identity get      show an SSH identity\n"
    "  ssh-identity update   change an SSH identity\n"
    "  ssh-identity delete   delete an SSH identity\n"
    "\n"
    "  wsmux <command> --help   options of a command\n"
    "  wsmux --version          print the version\n";

static const char ssh_usage[] =
    "usage: wsmux ssh <command>\n"
    "\n"
    "commands:\n"
    "  service   SSH into a service through the edge (--proxyOnly runs a\n"
    "            local proxy for ssh, scp, sftp, rsync and editors)\n"
    "  config    ssh_config entries for the services\n"
    "  doctor    check the SSH setup of a service\n"
    "\n"
    "  wsmux ssh <command> --help   options of a command\n";

static int cmd_ssh(int argc, char **argv) {
  static const cmd_sub_t subs[] = {{"service", cmd_ssh_service},
                                   {"config", cmd_ssh_config},
                                   {"doctor", cmd_ssh_doctor},
                                   {0}};
  return cmd_dispatch(ssh_usage, subs, argc, argv);
}

static int cmd_proxy(int argc, char **argv) {
  static const cmd_sub_t subs[] = {{"list", cmd_proxy_list},
                                   {"stop", cmd_proxy_stop},
                                   {"up", cmd_proxy_up},
                                   {"reload", cmd_proxy_reload},
                                   {0}};
  return cmd_dispatch(cmd_proxy_usage, subs, argc, argv);
}

int main(int argc, char **argv) {
  static const cmd_sub_t commands[] = {{"login", cmd_login},
                                       {"project", cmd_project},
                                       {"service", cmd_service},
                                       {"ssh", cmd_ssh},
                                       {"ssh-identity", cmd_identity},
                                       {"proxy", cmd_proxy},
                                       {0}};
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
    printf("wsmux %s\n", WSMUX_VERSION);
    return EXIT_OK;
  }
  return cmd_dispatch(usage, commands, argc - 1, argv + 1);
}
