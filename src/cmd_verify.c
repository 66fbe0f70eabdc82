/* cmd_verify.c - placeholder until the verify command lands: refuses clearly. */
#include "cli.h"

int cmd_verify(int argc, char **argv)
{
	err_set(E_UNSUPPORTED, "the 'verify' command is not implemented yet");
	return cli_fail(NULL);
}
