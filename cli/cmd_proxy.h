/* `wsmux proxy list | stop | reload`: the proxies running on this machine
 * (README: "Background proxies", "Several services in one proxy"). `wsmux
 * proxy up` is cli/proxy_up.h; wsmux_main.c dispatches. */
#ifndef WSMUX_CMD_PROXY_H
#define WSMUX_CMD_PROXY_H

/* The usage of `wsmux proxy`. */
extern const char cmd_proxy_usage[];

/* argv holds the words after the subcommand; each returns the exit code. */
int cmd_proxy_list(int argc, char **argv);
int cmd_proxy_stop(int argc, char **argv);
int cmd_proxy_reload(int argc, char **argv);

#endif
