/* `wsmux ssh ...` commands. */
#ifndef WSMUX_CMD_SSH_H
#define WSMUX_CMD_SSH_H

/* `wsmux ssh service ARGS`: argv holds the words after "service".
 * Returns the process exit code (cli/exitcode.h). */
int cmd_ssh_service(int argc, char **argv);

#endif
