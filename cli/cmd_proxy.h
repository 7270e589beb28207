/* `wsmux proxy list | stop`: the proxies running on this machine (README:
 * "Background proxies"). */
#ifndef WSMUX_CMD_PROXY_H
#define WSMUX_CMD_PROXY_H

/* argv holds the words after "proxy"; returns the exit code. */
int cmd_proxy(int argc, char **argv);

#endif
