/* fuzz_bcd.c - libFuzzer harness: bcd_open + bcd_print + bcd_to_json (and
 * device decoding) on arbitrary bytes. hivex parses the hive underneath. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "bcd.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bcd_device d;
	bcd_device_decode(data, size, &d);
	struct bcd *b = bcd_open(data, size);
	if (b) {
		FILE *f = fopen("/dev/null", "w");
		if (f) {
			bcd_print(b, f, NULL, NULL);
			fclose(f);
		}
		json_t *j = bcd_to_json(b, NULL, NULL);
		json_decref(j);
		bcd_free(b);
	}
	err_clear();
	return 0;
}
