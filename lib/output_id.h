/* output_id.h - the VHDX FileWriteGuid/DataWriteGuid seed of an output,
 * derived from what the output's virtual disk holds (lib/output_id.c). */
#ifndef GEN2PREP_OUTPUT_ID_H
#define GEN2PREP_OUTPUT_ID_H
#include "guid.h"
#include "writer.h"

struct overlay;

/* Replaces wo->file_write_guid (the plan's seed: from the input's
 * fingerprint, or random with --random-ids, and still hashed in) with a
 * GUID derived by SHA-256 from everything the output's virtual data
 * depends on: that seed, the input's DataWriteGuid in_data (zero for a
 * raw or VHD input), the output's format, subformat, sector and block
 * sizes, whether it is a differencing child, its virtual size, and every
 * range written through the overlay with its bytes. Zeroed runs are
 * hashed as their length without being read. O(bytes written), not
 * O(disk). -1 when reading the overlay failed (its error is set). */
int output_write_guid(struct overlay *o, const struct guid *in_data, struct writer_opts *wo);

#endif
