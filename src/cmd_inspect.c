/* cmd_inspect.c - placeholder until the inspect command lands: refuses clearly. */
#include "cli.h"

int cmd_inspect(int argc, char **argv)
{
	err_set(E_UNSUPPORTED, "the 'inspect' command is not implemented yet");
	return cli_fail(NULL);
}
