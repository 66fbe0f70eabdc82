/* image.c - see image.h */
#include "image.h"
#include "disk.h"
#include "overlay.h"
#include "util.h"

#include <stddef.h>

struct overlay *image_open(const char *path, struct disk **disk)
{
	*disk = disk_open(path);
	if (!*disk) {
		/* disk.c leaves naming the file to this, its one caller (issue 13:
		 * "gen2prep: t1.vhdx: cannot open: ..."); it reports a failed
		 * open/stat/read as E_IO: that is about the input */
		err_prefix_file(path);
		if (err_code() == E_IO) err_recode(E_FORMAT);
		return NULL;
	}
	/* not even one sector (e.g. an empty file): not a disk image, exit 3
	 * in every command rather than "no partition table" */
	const struct disk_info *di = disk_info(*disk);
	if (di->virtual_size < 512) {
		err_set(E_FORMAT, "'%s' is not a disk image: %llu bytes, less than one 512-byte sector", path,
			(unsigned long long)di->virtual_size);
		disk_close(*disk);
		*disk = NULL;
		return NULL;
	}
	struct overlay *o = overlay_new(*disk);
	if (!o) {
		err_prefix("overlay of %s", path);
		disk_close(*disk);
		*disk = NULL;
	}
	return o;
}

void image_close(struct overlay *o, struct disk *d)
{
	if (o) overlay_free(o);
	if (d) disk_close(d);
}
