/* test_overlay.c - the copy-on-write overlay over a raw disk: reads
 * through, writes (whole and partial pages), growth, zeroing, maybe_data,
 * foreach_written, out-of-range refusal, and a randomized comparison with
 * a plain in-memory model. The input file is checked unchanged at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk.h"
#include "overlay.h"
#include "util.h"

#define DISK_SIZE (1u << 20)   /* 1 MiB, with a hole in the middle */
#define HOLE_OFF  (512u * 1024)
#define HOLE_LEN  (256u * 1024)

struct fx {
	char path[64];
	uint8_t *orig;     /* the file's content */
	struct disk *d;
	struct overlay *o;
};

static uint8_t pat(uint64_t i) { return (uint8_t)(i * 31 + (i >> 9) + 7); }

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	strcpy(f->path, "/tmp/test_overlay.XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	f->orig = calloc(1, DISK_SIZE);
	for (uint64_t i = 0; i < DISK_SIZE; i++)
		f->orig[i] = (i >= HOLE_OFF && i < HOLE_OFF + HOLE_LEN) ? 0 : pat(i);
	/* write around the hole so that the file is sparse there */
	assert_int_equal(pwrite(fd, f->orig, HOLE_OFF, 0), HOLE_OFF);
	assert_int_equal(pwrite(fd, f->orig + HOLE_OFF + HOLE_LEN, DISK_SIZE - HOLE_OFF - HOLE_LEN,
			       HOLE_OFF + HOLE_LEN), DISK_SIZE - HOLE_OFF - HOLE_LEN);
	close(fd);
	f->d = disk_open(f->path);
	assert_non_null(f->d);
	f->o = overlay_new(f->d);
	assert_non_null(f->o);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	overlay_free(f->o);
	disk_close(f->d);
	/* the input is never modified */
	FILE *fp = fopen(f->path, "rb");
	uint8_t *now = malloc(DISK_SIZE);
	size_t n = fread(now, 1, DISK_SIZE, fp);
	fclose(fp);
	int same = n == DISK_SIZE && !memcmp(now, f->orig, DISK_SIZE);
	free(now);
	unlink(f->path);
	free(f->orig);
	free(f);
	assert_true(same);
	return 0;
}

static void reads_through(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = malloc(DISK_SIZE);
	assert_int_equal(overlay_size(f->o), DISK_SIZE);
	assert_int_equal(overlay_sector_size(f->o), 512);
	assert_int_equal(overlay_read(f->o, buf, DISK_SIZE, 0), 0);
	assert_memory_equal(buf, f->orig, DISK_SIZE);
	assert_int_equal(overlay_read(f->o, buf, 777, 4095), 0);
	assert_memory_equal(buf, f->orig + 4095, 777);
	assert_int_equal(overlay_bytes_written(f->o), 0);
	assert_false(overlay_touched(f->o, 0, DISK_SIZE));
	free(buf);
}

static void writes_partial_pages(void **state)
{
	struct fx *f = *state;
	uint8_t buf[10000], got[10000];
	memset(buf, 0xAB, sizeof buf);
	/* crosses three page boundaries, starts and ends mid-page */
	assert_int_equal(overlay_write(f->o, buf, 10000, 1000), 0);
	assert_int_equal(overlay_read(f->o, got, 10000, 1000), 0);
	assert_memory_equal(got, buf, 10000);
	/* bytes around the write come from the disk */
	assert_int_equal(overlay_read(f->o, got, 1000, 0), 0);
	assert_memory_equal(got, f->orig, 1000);
	assert_int_equal(overlay_read(f->o, got, 5000, 11000), 0);
	assert_memory_equal(got, f->orig + 11000, 5000);
	/* overwrite part of an already written page */
	uint8_t x[3] = { 1, 2, 3 };
	assert_int_equal(overlay_write(f->o, x, 3, 4094), 0);
	assert_int_equal(overlay_read(f->o, got, 6, 4092), 0);
	uint8_t want[6] = { 0xAB, 0xAB, 1, 2, 3, 0xAB };
	assert_memory_equal(got, want, 6);
	assert_true(overlay_touched(f->o, 4096 * 2, 1));
	assert_false(overlay_touched(f->o, 4096 * 3, 4096));
	assert_int_equal(overlay_bytes_written(f->o), 3 * 4096);   /* pages 0..2 */
}

struct runs { uint64_t off[8], len[8]; int n; };
static int collect(void *ctx, uint64_t off, uint64_t len)
{
	struct runs *r = ctx;
	if (r->n < 8) { r->off[r->n] = off; r->len[r->n] = len; }
	r->n++;
	return 0;
}

static void foreach_runs(void **state)
{
	struct fx *f = *state;
	uint8_t b[1] = { 9 };
	overlay_write(f->o, b, 1, 8192 + 5);          /* page 2 */
	overlay_write(f->o, b, 1, 4096 * 3);          /* page 3: joins page 2 */
	overlay_write(f->o, b, 1, 4096 * 10 + 4095);  /* page 10 */
	assert_int_equal(overlay_zero(f->o, 4096 * 20, 4096 * 4), 0);   /* pages 20..23 */
	assert_int_equal(overlay_zero(f->o, 4096 * 24, 4096), 0);       /* adjacent: 20..24 */
	struct runs r = { .n = 0 };
	assert_int_equal(overlay_foreach_written(f->o, collect, &r), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.off[0], 8192);
	assert_int_equal(r.len[0], 8192);
	assert_int_equal(r.off[1], 40960);
	assert_int_equal(r.len[1], 4096);
	assert_int_equal(r.off[2], 4096 * 20);
	assert_int_equal(r.len[2], 4096 * 5);
}

static void growth(void **state)
{
	struct fx *f = *state;
	uint8_t buf[8192];
	assert_int_equal(overlay_resize(f->o, DISK_SIZE * 2 + 512), 0);
	assert_int_equal(overlay_size(f->o), DISK_SIZE * 2 + 512);
	assert_int_equal(overlay_resize(f->o, DISK_SIZE), -1);   /* never shrinks */
	assert_int_equal(err_code(), E_INTERNAL);
	/* the new area reads as zeros and is known to hold none */
	memset(buf, 0x55, sizeof buf);
	assert_int_equal(overlay_read(f->o, buf, 8192, DISK_SIZE - 4096), 0);
	assert_memory_equal(buf, f->orig + DISK_SIZE - 4096, 4096);
	assert_true(is_zero(buf + 4096, 4096));
	assert_int_equal(overlay_maybe_data(f->o, DISK_SIZE, DISK_SIZE), 0);
	/* writes up to the new end are accepted, one byte more is not */
	uint8_t x[512];
	memset(x, 0x77, sizeof x);
	assert_int_equal(overlay_write(f->o, x, 512, DISK_SIZE * 2), 0);
	assert_int_equal(overlay_read(f->o, buf, 512, DISK_SIZE * 2), 0);
	assert_memory_equal(buf, x, 512);
	assert_int_equal(overlay_maybe_data(f->o, DISK_SIZE, DISK_SIZE + 512), 1);
	assert_int_equal(overlay_write(f->o, x, 512, DISK_SIZE * 2 + 1), -1);
	assert_int_equal(err_code(), E_INTERNAL);
	/* reads past the end are zeros */
	assert_int_equal(overlay_read(f->o, buf, 1024, DISK_SIZE * 2), 0);
	assert_memory_equal(buf, x, 512);
	assert_true(is_zero(buf + 512, 512));
	/* the foreach run is clipped to the size */
	struct runs r = { .n = 0 };
	overlay_foreach_written(f->o, collect, &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.off[0] + r.len[0], DISK_SIZE * 2 + 512);
}

static void out_of_range(void **state)
{
	struct fx *f = *state;
	uint8_t x[16] = { 0 };
	err_clear();
	assert_int_equal(overlay_write(f->o, x, 16, DISK_SIZE - 8), -1);
	assert_int_equal(err_code(), E_INTERNAL);
	assert_int_equal(overlay_write(f->o, x, 1, UINT64_MAX), -1);
	assert_int_equal(overlay_zero(f->o, DISK_SIZE, 1), -1);
	assert_int_equal(overlay_zero(f->o, 4096, UINT64_MAX), -1);
	assert_int_equal(overlay_bytes_written(f->o), 0);
	assert_int_equal(overlay_write(f->o, x, 0, DISK_SIZE), 0);   /* empty at the end: fine */
}

static void zero_and_maybe_data(void **state)
{
	struct fx *f = *state;
	uint8_t buf[20000];
	/* the sparse hole of the raw file is known-zero, data around it is not */
	assert_int_equal(overlay_maybe_data(f->o, HOLE_OFF, HOLE_LEN), 0);
	assert_int_equal(overlay_maybe_data(f->o, HOLE_OFF - 1, 2), 1);
	assert_int_equal(overlay_maybe_data(f->o, 0, 4096), 1);
	/* zeroing: partial pages at both ends */
	assert_int_equal(overlay_zero(f->o, 100, 20000), 0);
	assert_int_equal(overlay_read(f->o, buf, 20000, 100), 0);
	assert_true(is_zero(buf, 20000));
	assert_int_equal(overlay_read(f->o, buf, 100, 0), 0);
	assert_memory_equal(buf, f->orig, 100);
	assert_int_equal(overlay_read(f->o, buf, 100, 20100), 0);
	assert_memory_equal(buf, f->orig + 20100, 100);
	/* whole pages of the zeroed range are known-zero */
	assert_int_equal(overlay_maybe_data(f->o, 4096, 8192), 0);
	/* a range bridging a zero extent and the hole: still zero */
	assert_int_equal(overlay_zero(f->o, HOLE_OFF - 65536, 65536), 0);
	assert_int_equal(overlay_maybe_data(f->o, HOLE_OFF - 65536, 65536 + HOLE_LEN), 0);
	/* write after zero wins */
	uint8_t x[2] = { 0xEE, 0xEF };
	assert_int_equal(overlay_write(f->o, x, 2, 8191), 0);
	assert_int_equal(overlay_read(f->o, buf, 4, 8190), 0);
	uint8_t w1[4] = { 0, 0xEE, 0xEF, 0 };
	assert_memory_equal(buf, w1, 4);
	assert_int_equal(overlay_maybe_data(f->o, 4096, 8192), 1);
	/* zero after write wins */
	assert_int_equal(overlay_zero(f->o, 4096, 8192), 0);
	assert_int_equal(overlay_read(f->o, buf, 8192, 4096), 0);
	assert_true(is_zero(buf, 8192));
	assert_int_equal(overlay_maybe_data(f->o, 4096, 8192), 0);
	assert_true(overlay_touched(f->o, 5000, 1));
}

/* Random writes, zeros and reads against a plain buffer model. */
static void random_model(void **state)
{
	struct fx *f = *state;
	uint64_t size = DISK_SIZE + 3 * 4096 + 512;
	uint8_t *model = calloc(1, size);
	uint8_t *buf = malloc(size);
	memcpy(model, f->orig, DISK_SIZE);
	assert_int_equal(overlay_resize(f->o, size), 0);
	srand(12345);
	for (int i = 0; i < 3000; i++) {
		int op = rand() % 3;
		uint64_t len = (uint64_t)(rand() % 3 ? rand() % 9000 : rand() % 70000);
		uint64_t off = (uint64_t)rand() % size;
		if (len > size - off) len = size - off;
		if (op == 0) {
			for (uint64_t k = 0; k < len; k++) buf[k] = (uint8_t)rand();
			assert_int_equal(overlay_write(f->o, buf, len, off), 0);
			memcpy(model + off, buf, len);
		} else if (op == 1) {
			assert_int_equal(overlay_zero(f->o, off, len), 0);
			memset(model + off, 0, len);
		} else {
			assert_int_equal(overlay_read(f->o, buf, len, off), 0);
			assert_memory_equal(buf, model + off, len);
			/* maybe_data must never claim zeros over data */
			if (!is_zero(model + off, len) && len)
				assert_int_equal(overlay_maybe_data(f->o, off, len), 1);
		}
	}
	assert_int_equal(overlay_read(f->o, buf, size, 0), 0);
	assert_memory_equal(buf, model, size);
	for (uint64_t off = 0; off < size; off += 65536) {
		uint64_t len = size - off < 65536 ? size - off : 65536;
		if (!is_zero(model + off, len))
			assert_int_equal(overlay_maybe_data(f->o, off, len), 1);
	}
	free(model);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(reads_through, setup, teardown),
		cmocka_unit_test_setup_teardown(writes_partial_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(foreach_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(growth, setup, teardown),
		cmocka_unit_test_setup_teardown(out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(zero_and_maybe_data, setup, teardown),
		cmocka_unit_test_setup_teardown(random_model, setup, teardown),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
