#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include "pe.h"
#include "pebuild.h"
#include "util.h"
static void t_dummy(void **st) { (void)st; assert_true(1); }
int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(t_dummy) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
