/* cmd_bcd.c - placeholder until the bcd command lands: refuses clearly. */
#include "cli.h"

int cmd_bcd(int argc, char **argv)
{
	err_set(E_UNSUPPORTED, "the 'bcd' command is not implemented yet");
	return cli_fail(NULL);
}
