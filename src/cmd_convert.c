/* cmd_convert.c - placeholder until the convert command lands: refuses clearly. */
#include "cli.h"

int cmd_convert(int argc, char **argv)
{
	err_set(E_UNSUPPORTED, "the 'convert' command is not implemented yet");
	return cli_fail(NULL);
}
